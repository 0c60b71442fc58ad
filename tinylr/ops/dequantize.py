"""DEQUANTIZE, int8 -> float32: scale * (x - zero_point), as TFLM's reference Dequantize.

TFLM multiplies in double and rounds the product to float once. The product of a
float32 scale and an integer of at most 9 bits has at most 33 significant bits, so the
double product is exact and its rounding to float is the correctly rounded product:
exactly what one float32 multiplication gives. The kernel therefore multiplies in
float32 (no double arithmetic on an FPU without it), bit for bit TFLM's result.
"""

from __future__ import annotations

from .. import cnames
from ._kernel import KernelCall

OPCODE = "DEQUANTIZE"
KERNEL = "dequantize"


def check(op, graph) -> list[str]:
    if len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects one input and one output"]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype != "INT8" or y.dtype != "FLOAT32":
        problems.append(f"only INT8 -> FLOAT32 is supported (got {x.dtype} -> {y.dtype})")
    elif x.quantization is None or x.quantization.per_channel:
        problems.append(f"input tensor {x.name!r} must be quantized per tensor")
    if x.is_constant:
        problems.append("a constant input (float16/int8 weights stored for dequantization); "
                        "export with full-integer quantization so weights stay int8")
    if x.size != y.size:
        problems.append(f"input {list(x.shape)} and output {list(y.shape)} differ in size")
    return problems


def lower(op, graph, names):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    params = (
        ("size", str(x.size)),
        ("scale", cnames.float_literal(x.scale)),
        ("zero_point", str(x.zero_point)),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_dequantize_s8", params_type="tinylr_dequantize_s8_params",
        params=params, inputs=(x.index,), outputs=(y.index,),
    )
