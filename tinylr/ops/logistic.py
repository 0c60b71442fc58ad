"""LOGISTIC (sigmoid), int8 -> int8, as a 256-entry table computed by TFLM (see `_lut`).

TFLM's int8 kernel (reference_integer_ops::Logistic) rescales the input to Q4.27,
evaluates gemmlowp's fixed-point logistic and writes the result assuming an output
scale of 1/256 and zero point -128, whatever the output tensor says (the converter
always writes those). The table is TFLM's output, so it follows that behaviour too.
"""

from __future__ import annotations

from . import _lut

OPCODE = "LOGISTIC"
INPLACE = True  # output i depends only on input i: may overwrite its input


def check(op, graph) -> list[str]:
    return _lut.check(op, graph)


def lower(op, graph, names):
    return _lut.lower(op, graph, names)
