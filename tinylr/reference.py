"""The oracle every later stage is checked against: TFLM's own Python interpreter.

`run` executes an int8 model one sample at a time exactly as TFLM does on a board
(TFLite's desktop interpreter differs by 1 LSB on some outputs, so it is not the
reference). `quantize`/`dequantize` follow TFLite's QUANTIZE/DEQUANTIZE kernels,
rounding included. `arena_bytes` reports the arena TFLM itself allocates.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import ir
from .errors import TinylrError

# Host memory is cheap and untouched pages are never committed, while an arena
# even slightly too small can crash TFLM instead of failing cleanly.
_ARENA_FLOOR = 16 * 1024 * 1024


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float -> int8 as TFLite's QUANTIZE kernel: round(x / scale) + zp, clamped.

    The division is done in float32 like the kernel, and ties round away from
    zero (std::round), not to even as `np.round` would.
    """
    scaled = np.asarray(x, dtype=np.float32) / np.float32(scale)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float as TFLite's DEQUANTIZE kernel: scale * (q - zp), in double, cast to float."""
    return (float(scale) * (np.asarray(q, dtype=np.float64) - zero_point)).astype(np.float32)


def int8_io(graph: ir.Graph, source: str) -> tuple[ir.Tensor, ir.Tensor]:
    """The single input and output tensor of a full-integer int8 model, or a TinylrError saying why not."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinylrError(
            f"{source}: model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "tinylr verifies single-input, single-output models only")
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    floats = [t.name for t in graph.tensors if t.dtype == "FLOAT32"]
    if inp.dtype != "INT8" or out.dtype != "INT8" or floats:
        raise TinylrError(
            f"{source}: not a full-integer int8 model (input {inp.dtype}, output {out.dtype}, "
            f"{len(floats)} float32 tensors); pass the model_int8.tflite written by `tinylr export`")
    for t in (inp, out):
        if t.quantization is None or t.quantization.per_channel:
            raise TinylrError(f"{source}: tensor {t.name!r} lacks per-tensor quantization; re-export the model")
    return inp, out


def io_tensors(graph: ir.Graph, source: str) -> tuple[ir.Tensor, ir.Tensor]:
    """The single input and output of a model whose boundaries are int8 or float32
    (float boundaries: QUANTIZE/DEQUANTIZE ops inside), or a TinylrError."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinylrError(f"{source}: model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                          "tinylr runs single-input, single-output models only")
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    for t in (inp, out):
        if t.dtype not in ("INT8", "FLOAT32"):
            raise TinylrError(f"{source}: model boundary tensor {t.name!r} is {t.dtype}; tinylr takes int8 or float32")
    return inp, out


def run(model: bytes | str | os.PathLike, inputs: np.ndarray) -> np.ndarray:
    """Run a model on the TFLM interpreter, one sample at a time.

    `inputs` has the model input's type (int8, or float32 for a model with float
    boundaries), one sample per row (any trailing shape with the input's number of
    elements). Returns outputs of shape (N, output_size) in the output's type, one
    flattened output per row, as the generated C will be compared against.
    """
    data = Path(model).read_bytes() if isinstance(model, (str, os.PathLike)) else bytes(model)
    source = str(model) if isinstance(model, (str, os.PathLike)) else "<model bytes>"
    # Parsing first turns a corrupt file into a clear error instead of a TFLM crash.
    inp, out = io_tensors(ir.parse(data, source=source), source)
    inputs = np.asarray(inputs)
    if inputs.dtype != ir.numpy_dtype(inp.dtype):
        raise TinylrError(f"inputs are {inputs.dtype} but the model takes {inp.dtype.lower()}"
                          + ("; quantize them first (tinylr.reference.quantize)" if inp.dtype == "INT8" else ""))
    if inputs.ndim < 1 or inputs[0].size != inp.size:
        raise TinylrError(f"each input sample must have {inp.size} values for input shape {inp.shape}, "
                          f"got array of shape {inputs.shape}")
    from tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(data, arena_size=_ARENA_FLOOR + 10 * len(data))
        results = np.empty((len(inputs), out.size), dtype=ir.numpy_dtype(out.dtype))
        for i, sample in enumerate(inputs):
            interpreter.set_input(sample.reshape(inp.shape), 0)
            interpreter.invoke()
            results[i] = np.asarray(interpreter.get_output(0)).reshape(-1)
    except (RuntimeError, ValueError) as exc:
        raise TinylrError(f"{source}: the TFLM interpreter rejected the model ({exc}); "
                          "check that it uses only TFLM builtin ops") from exc
    return results


_ARENA_PROBE = r"""
import sys
import numpy as np
from tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
for i in range(int(sys.argv[3])):
    d = interpreter.get_input_details(i)
    interpreter.set_input(np.zeros(d["shape"], dtype=d["dtype"]), i)
interpreter.invoke()
sys.stdout.flush()
interpreter.print_allocations()
"""


def arena_bytes(model_path: str | os.PathLike) -> int:
    """TFLM's "Arena allocation total" for this model, on this (64-bit host) build.

    Measured in a child process: TFLM prints it to the C-level stderr, and a
    misbehaving model can crash the interpreter rather than raise.
    """
    path = Path(model_path)
    if not path.is_file():
        raise TinylrError(f"{path}: no such model file")
    data = path.read_bytes()
    graph = ir.parse(data, source=str(path))
    arena = _ARENA_FLOOR + 10 * len(data)
    proc = subprocess.run([sys.executable, "-c", _ARENA_PROBE, str(path), str(arena), str(len(graph.inputs))],
                          capture_output=True, text=True, timeout=300)
    match = re.search(r"Arena allocation total (\d+) bytes", proc.stderr)
    if proc.returncode != 0 or match is None:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise TinylrError(f"{path}: the TFLM interpreter failed to run the model (exit status {proc.returncode}):\n{tail}")
    return int(match.group(1))
