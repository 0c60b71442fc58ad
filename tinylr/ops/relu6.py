"""RELU6 (standalone, not fused), int8 -> int8, as a 256-entry table computed by TFLM.

TFLM's int8 RELU6 clamps the raw input between the input's quantized 0 and 6 and
does not requantize: it assumes the output has the input's scale and zero point.
TFLite's converter (TF 2.21) gives a standalone RELU6 its own output scale, so TFLM's
answer can be far from relu6(x) in the output's units (TFLite's desktop kernel does
requantize). tinylr's contract is TFLM's answer bit for bit, so the table (see `_lut`)
is TFLM's own output, quirk included; the verify stage's int8-vs-float accuracy shows
the cost. A RELU6 fused into the op before it has no such problem.
"""

from __future__ import annotations

from . import _lut

OPCODE = "RELU6"
INPLACE = True  # output i depends only on input i: may overwrite its input


def check(op, graph) -> list[str]:
    return _lut.check(op, graph)


def lower(op, graph, names):
    return _lut.lower(op, graph, names)
