"""RELU (standalone, not fused), int8 -> int8, as a 256-entry table computed by TFLM.

TFLM requantizes x - input_zero_point by input_scale / output_scale (a float32
quotient widened to double) and clamps below at the output's quantized zero; the
table (see `_lut`) is TFLM's own output for each of the 256 inputs.
"""

from __future__ import annotations

from . import _lut

OPCODE = "RELU"
INPLACE = True  # output i depends only on input i: may overwrite its input


def check(op, graph) -> list[str]:
    return _lut.check(op, graph)


def lower(op, graph, names):
    return _lut.lower(op, graph, names)
