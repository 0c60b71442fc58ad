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
from .build import Manifest, harness_context
from .errors import TinylrError

HOST_CFLAGS = (
    "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
)


# Other host compilers build the same C without the sanitizers (gcc's run has them).
PLAIN_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off")


def compile_host(src_dir: Path, work: Path, compiler: str = "gcc") -> Path:
    """Build the generated model with the host harness; return the executable."""
    manifest = Manifest.load(src_dir)
    cc = toolchain.require(compiler)
    flags = HOST_CFLAGS if compiler == "gcc" else PLAIN_CFLAGS
    main_c = work / "host_main.c"
    main_c.write_text(templates.render("harness/host_main.c.j2", **harness_context(manifest)))
    exe = work / "host_model"
    cmd = [cc, *flags, f"-I{src_dir}", *map(str, sorted(Path(src_dir).glob("*.c"))), str(main_c), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinylrError(f"host build of the generated C with {compiler} failed (a tinylr bug; please report): "
                          f"{proc.stderr.strip()[:2000]}")
    return exe


def run_host(src_dir: Path, inputs: np.ndarray, compiler: str = "gcc") -> np.ndarray:
    """Outputs of the generated C for each row of `inputs` (the model's input type,
    one sample per row), built with `compiler` (gcc: with ASan and UBSan)."""
    manifest = Manifest.load(src_dir)
    dtype = manifest.numpy_dtype("input")
    inputs = np.asarray(inputs)
    if inputs.dtype != dtype:
        raise TinylrError(f"inputs are {inputs.dtype}; the generated model takes {np.dtype(dtype)}")
    inputs = np.ascontiguousarray(inputs).reshape(len(inputs), -1)
    if inputs.shape[1] != manifest.count("input"):
        raise TinylrError(f"inputs have {inputs.shape[1]} values per sample; the model takes {manifest.count('input')}")
    with tempfile.TemporaryDirectory(prefix="tinylr-host-") as tmp:
        work = Path(tmp)
        exe = compile_host(Path(src_dir), work, compiler)
        (work / "in.bin").write_bytes(inputs.tobytes())
        proc = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise TinylrError(f"generated C failed on the host (sanitizer report follows; a tinylr bug): {proc.stderr.strip()[:2000]}")
        out = np.frombuffer((work / "out.bin").read_bytes(), dtype=manifest.numpy_dtype("output"))
    return out.reshape(len(inputs), manifest.count("output"))


def compare(expected: np.ndarray, actual: np.ndarray) -> dict:
    """Element-wise comparison of two output sets of the same type; for float outputs
    "bit-exact" means the same float32 bits."""
    actual = np.asarray(actual)
    expected = np.asarray(expected).reshape(actual.shape)
    if expected.dtype != actual.dtype:
        raise TinylrError(f"cannot compare {expected.dtype} reference outputs with {actual.dtype} outputs")
    if actual.dtype.kind == "f":
        differs = expected.view(np.uint32) != actual.view(np.uint32)
        diff = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    else:
        diff = np.abs(expected.astype(np.int64) - actual.astype(np.int64))
        differs = diff != 0
    mismatched = np.flatnonzero(differs.reshape(len(differs), -1).any(axis=1))
    max_diff = diff.max(initial=0)
    return dict(
        bit_exact=not bool(differs.any()),
        samples=int(len(actual)),
        mismatched_samples=int(len(mismatched)),
        mismatched_elements=int(np.count_nonzero(differs)),
        max_abs_diff=float(max_diff) if actual.dtype.kind == "f" else int(max_diff),
        first_mismatch=int(mismatched[0]) if len(mismatched) else None,
    )
