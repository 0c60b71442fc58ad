"""Bit-exactness on the host: the generated C, compiled with the host gcc under
AddressSanitizer and UBSan, run on the reference inputs, must give TFLM's int8 outputs.

emlearn's lesson: every generated artefact can run on the build machine as its own
oracle, so a mismatch is caught before any cross compiler or emulator is involved.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import templates, toolchain
from .build import Manifest
from .errors import TinylrError

HOST_CFLAGS = (
    "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
)


def compile_host(src_dir: Path, work: Path) -> Path:
    """Build the generated model with the host harness; return the executable."""
    manifest = Manifest.load(src_dir)
    gcc = toolchain.require("gcc")
    main_c = work / "host_main.c"
    main_c.write_text(templates.render(
        "harness/host_main.c.j2", model=manifest.model, model_header=manifest.header,
        invoke_fn=manifest.invoke, input_bytes_macro=manifest.input_bytes_macro,
        output_bytes_macro=manifest.output_bytes_macro,
    ))
    exe = work / "host_model"
    cmd = [gcc, *HOST_CFLAGS, f"-I{src_dir}", *map(str, sorted(Path(src_dir).glob("*.c"))), str(main_c), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinylrError(f"host build of the generated C failed (a tinylr bug; please report): {proc.stderr.strip()[:2000]}")
    return exe


def run_host(src_dir: Path, inputs: np.ndarray) -> np.ndarray:
    """Outputs of the generated C for each row of `inputs` (int8, shape (N, input_bytes))."""
    manifest = Manifest.load(src_dir)
    inputs = np.ascontiguousarray(inputs, dtype=np.int8).reshape(len(inputs), -1)
    if inputs.shape[1] != manifest.input_bytes:
        raise TinylrError(f"inputs have {inputs.shape[1]} bytes per sample; the model takes {manifest.input_bytes}")
    with tempfile.TemporaryDirectory(prefix="tinylr-host-") as tmp:
        work = Path(tmp)
        exe = compile_host(Path(src_dir), work)
        (work / "in.bin").write_bytes(inputs.tobytes())
        proc = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise TinylrError(f"generated C failed on the host (sanitizer report follows; a tinylr bug): {proc.stderr.strip()[:2000]}")
        out = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.int8)
    return out.reshape(len(inputs), manifest.output_bytes)


def compare(expected: np.ndarray, actual: np.ndarray) -> dict:
    """Element-wise comparison summary of two int8 output sets."""
    expected = np.asarray(expected, dtype=np.int8).reshape(actual.shape)
    diff = np.abs(expected.astype(np.int32) - actual.astype(np.int32))
    mismatched = np.flatnonzero(diff.reshape(len(diff), -1).max(axis=1))
    return dict(
        bit_exact=bool(diff.max(initial=0) == 0),
        samples=int(len(actual)),
        mismatched_samples=int(len(mismatched)),
        mismatched_elements=int(np.count_nonzero(diff)),
        max_abs_diff=int(diff.max(initial=0)),
        first_mismatch=int(mismatched[0]) if len(mismatched) else None,
    )
