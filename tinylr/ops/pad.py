"""PAD and PADV2, int8, up to 5 dimensions, constant paddings.

Matches TFLM's reference_ops::Pad: the output is the input's bytes surrounded by the
pad value: PADV2's constant (already quantized with the output's parameters, which
TFLM checks) or, for PAD, the output zero point (the real value 0). Bytes are copied
without requantization, as TFLM does; the converter gives input and output the same
quantization.
"""

from __future__ import annotations

from ..ir import Graph, Operator
from ._kernel import KernelCall

OPCODES = ("PAD", "PADV2")
KERNEL = "pad"
MAX_DIMS = 5  # TFLM's PadKernelMaxDimensionCount


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        return ["expects input, paddings[, constant value] and one output"]
    x, paddings = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    value = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    out = graph.tensors[op.outputs[0]]
    if x is None or paddings is None:
        return ["input and paddings are required"]
    problems = []
    for role, t in (("input", x), ("output", out)):
        if t.dtype != "INT8" or t.quantization is None:
            problems.append(f"{role} must be quantized INT8 (got {t.dtype})")
    if not 1 <= len(x.shape) <= MAX_DIMS or len(out.shape) != len(x.shape):
        problems.append(f"input and output must have the same rank, 1 to {MAX_DIMS} (got {list(x.shape)} -> {list(out.shape)})")
    if not paddings.is_constant or paddings.dtype != "INT32":
        problems.append("paddings must be a constant INT32 tensor (TFLM reads them as int32 at Prepare)")
    elif paddings.size != 2 * len(out.shape):
        problems.append(f"paddings has {paddings.size} values for a rank-{len(out.shape)} output")
    if value is not None:
        if not value.is_constant or value.dtype != "INT8" or value.size != 1:
            problems.append("the constant value must be one constant INT8")
        elif value.quantization is None or out.quantization is None or (
            value.zero_point != out.zero_point or value.scale != out.scale
        ):
            problems.append("the constant value must be quantized like the output (TFLM checks this)")
    if problems:
        return problems
    pads = paddings.data.reshape(-1, 2)
    if (pads < 0).any():
        problems.append(f"negative paddings {pads.tolist()} (cropping) are not supported")
    expected = [int(d + lo + hi) for d, (lo, hi) in zip(x.shape, pads)]
    if expected != list(out.shape):
        problems.append(f"output shape {list(out.shape)} is not input {list(x.shape)} plus paddings {pads.tolist()}")
    if 0 in x.shape:
        problems.append(f"input has an empty dimension (shape {list(x.shape)})")
    return problems


def _c_array(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, paddings = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    out = graph.tensors[op.outputs[0]]
    value = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    # TFLM: the constant as stored, else the output zero point (its int8 bits)
    pad_value = int(value.data.ravel()[0]) if value is not None else out.zero_point
    lead = MAX_DIMS - len(x.shape)  # ExtendedShape: leading dimensions of 1, never padded
    input_dims = [1] * lead + [int(d) for d in x.shape]
    output_dims = [1] * lead + [int(d) for d in out.shape]
    before = [0] * lead + [int(lo) for lo, _ in paddings.data.reshape(-1, 2)]
    params = (
        ("input_dims", _c_array(input_dims)),
        ("output_dims", _c_array(output_dims)),
        ("before", _c_array(before)),
        ("pad_value", str(pad_value)),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_pad", params_type="tinylr_pad_params",
        params=params, inputs=(x.index,), outputs=(out.index,),
    )
