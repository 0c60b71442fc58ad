"""HARD_SWISH, int8 -> int8, as a 256-entry table computed by TFLM (see `_lut`).

TFLM's int8 kernel works on a 16-bit "high resolution" input (x - zero_point) * 128,
with two int16 fixed-point multipliers (output and "reluish") and saturating int16
arithmetic; the table is TFLM's own output for each of the 256 inputs. TFLM refuses
an output scale small enough to need a left shift; `check` reports that case.
"""

from __future__ import annotations

from . import _lut

OPCODE = "HARD_SWISH"
INPLACE = True  # output i depends only on input i: may overwrite its input


def check(op, graph) -> list[str]:
    return _lut.check(op, graph)


def lower(op, graph, names):
    return _lut.lower(op, graph, names)
