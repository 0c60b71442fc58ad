"""TANH, int8 -> int8, as a 256-entry table computed by TFLM (see `_lut`).

TFLM's int8 kernel (reference_integer_ops::Tanh) rescales the input to Q4.27,
evaluates gemmlowp's fixed-point tanh and writes it assuming an output scale of 1/128
and zero point 0, ignoring the output tensor's parameters (the converter always
writes those). The table is TFLM's output, so it follows that behaviour too.
"""

from __future__ import annotations

from . import _lut

OPCODE = "TANH"
INPLACE = True  # output i depends only on input i: may overwrite its input


def check(op, graph) -> list[str]:
    return _lut.check(op, graph)


def lower(op, graph, names):
    return _lut.lower(op, graph, names)
