"""FULLY_CONNECTED, int8 in/out, int8 weights (per-tensor or per-channel), int32 bias.

Matches TFLM's reference_integer_ops::FullyConnected / FullyConnectedPerChannel: the
int32 accumulator of (w + w_offset)·(x + x_offset) plus bias is requantized with
MultiplyByQuantizedMultiplier, offset by the output zero point and clamped to the fused
activation's range.
"""

from __future__ import annotations

from .. import quant
from ..ir import Graph, Operator

OPCODE = "FULLY_CONNECTED"
KERNEL = "fully_connected"
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def check(op: Operator, graph: Graph) -> list[str]:
    problems = []
    ins = graph.op_inputs(op)
    if len(ins) < 2 or len(op.outputs) != 1:
        return ["expects input, weights[, bias] and one output"]
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    out = graph.tensors[op.outputs[0]]
    if x is None or x.dtype != "INT8" or out.dtype != "INT8":
        problems.append(f"input/output must be INT8 (got {x and x.dtype}/{out.dtype})")
    if w is None or not w.is_constant or w.dtype != "INT8" or len(w.shape) != 2:
        problems.append("weights must be a constant INT8 matrix (int4/float/hybrid weights are not supported)")
    if bias is not None and (not bias.is_constant or bias.dtype != "INT32"):
        problems.append("bias must be a constant INT32 vector")
    for t in (x, w, out):
        if t is not None and t.quantization is None:
            problems.append(f"tensor {t.index} has no quantization parameters")
    if problems:
        return problems
    if w.quantization.per_channel and (w.quantization.axis != 0 or len(w.quantization.scale) != w.shape[0]):
        problems.append("per-channel weights must be quantized along the output dimension")
    if w.quantization.per_channel and any(int(z) != 0 for z in w.quantization.zero_point):
        problems.append("per-channel weights must be symmetric (zero point 0)")
    if x.quantization.per_channel or out.quantization.per_channel:
        problems.append("activations must be quantized per tensor")
    act = op.options.get("fused_activation_function", "NONE")
    if act not in ACTIVATIONS:
        problems.append(f"fused activation {act} (supported: {', '.join(ACTIVATIONS)})")
    if op.options.get("weights_format", "DEFAULT") != "DEFAULT":
        problems.append(f"weights format {op.options['weights_format']}")
    if op.options.get("asymmetric_quantize_inputs"):
        problems.append("hybrid (asymmetric_quantize_inputs) quantization")
    if x.size % w.shape[1] != 0 or out.shape[-1] != w.shape[0]:
        problems.append(f"shapes do not agree: input {x.shape}, weights {w.shape}, output {out.shape}")
    return problems


def lower(op: Operator, graph: Graph, names):
    from . import ConstArray, KernelCall

    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
    out = graph.tensors[op.outputs[0]]
    output_depth, accum_depth = w.shape
    multipliers, shifts = quant.conv_multipliers(x.scale, w.quantization.scale, out.scale)
    act_min, act_max = quant.activation_range(
        op.options.get("fused_activation_function", "NONE"), out.scale, out.zero_point
    )
    arrays = [
        ConstArray(names.array(op, "weights"), "int8_t", tuple(int(v) for v in w.data.ravel()),
                   f"{w.name} {list(w.shape)}"),
        ConstArray(names.array(op, "multiplier"), "int32_t", tuple(multipliers), "requantization significands (Q31)"),
        ConstArray(names.array(op, "shift"), "int32_t", tuple(shifts), "requantization exponents"),
    ]
    if bias is not None:
        arrays.append(ConstArray(names.array(op, "bias"), "int32_t", tuple(int(v) for v in bias.data.ravel()),
                                 f"{bias.name} {list(bias.shape)}"))
    params = (
        ("batches", str(out.size // output_depth)),
        ("accum_depth", str(accum_depth)),
        ("output_depth", str(output_depth)),
        ("input_offset", str(-x.zero_point)),
        ("weights_offset", str(-int(w.quantization.zero_point[0]))),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)),
        ("activation_max", str(act_max)),
        ("per_channel", "1" if len(multipliers) > 1 else "0"),
        ("weights", arrays[0].name),
        ("bias", arrays[3].name if bias is not None else "NULL"),
        ("multiplier", arrays[1].name),
        ("shift", arrays[2].name),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_fully_connected", params_type="tinylr_fully_connected_params",
        params=params, arrays=tuple(arrays), inputs=(x.index,), outputs=(out.index,),
    )
