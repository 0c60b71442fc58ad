"""QUANTIZE: int8 -> int8 requantization and float32 -> int8 quantization.

int8 -> int8 (inserted by the converter where a tensor must change scale or zero
point inside an int8 graph): TFLM's reference Requantize, MultiplyByQuantizedMultiplier
of x - input_zero_point by input_scale / output_scale (in double), plus the output
zero point, clamped. Lowered to a 256-entry table computed by TFLM itself (`_lut`).

float32 -> int8 (at a float model input, or after a DEQUANTIZE inside a graph):
TFLM's AffineQuantize, round(x / scale) + zero_point clamped to int8, with the division
in float32 and std::round's halves away from zero. That is reimplemented in the
`quantize` kernel; see its comments for the out-of-range cases TFLM leaves undefined.
"""

from __future__ import annotations

from .. import cnames
from . import _lut
from ._kernel import KernelCall

OPCODE = "QUANTIZE"
# Output i depends only on input i. The planner shares storage only between tensors of
# equal size, so only the int8 -> int8 form (a table lookup) can run in place.
INPLACE = True
KERNEL = "quantize"


def check(op, graph) -> list[str]:
    problems = _lut.int8_elementwise_problems(op, graph, input_types=("INT8", "FLOAT32"))
    if problems:
        return problems
    if graph.tensors[op.inputs[0]].dtype == "INT8":
        return _lut.check(op, graph)
    return []


def lower(op, graph, names):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype == "INT8":
        return _lut.lower(op, graph, names)
    params = (
        ("size", str(y.size)),
        ("scale", cnames.float_literal(y.scale)),
        ("zero_point", str(y.zero_point)),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_quantize_f32", params_type="tinylr_quantize_f32_params",
        params=params, inputs=(x.index,), outputs=(y.index,),
    )
