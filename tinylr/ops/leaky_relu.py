"""LEAKY_RELU, int8 -> int8, as a 256-entry table computed by TFLM (see `_lut`).

TFLM requantizes x - input_zero_point with one of two multipliers, input_scale /
output_scale for x >= zero point and input_scale * alpha / output_scale below it
(both float32 products widened to double). The one-op model that computes the table
carries the model's own float32 alpha.
"""

from __future__ import annotations

from . import _lut

OPCODE = "LEAKY_RELU"
INPLACE = True  # output i depends only on input i: may overwrite its input


def _options(op):
    return ("LeakyReluOptions", {"alpha": float(op.options.get("alpha", 0.0))})


def check(op, graph) -> list[str]:
    if "alpha" not in op.options:
        return ["LeakyReluOptions with alpha are missing from the model"]
    return _lut.check(op, graph, _options(op))


def lower(op, graph, names):
    return _lut.lower(op, graph, names, _options(op))
