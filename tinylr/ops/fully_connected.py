"""FULLY_CONNECTED, int8 in/out, int8 weights (per-tensor or per-channel), int32 bias.

Matches TFLM's reference_integer_ops::FullyConnected / FullyConnectedPerChannel: the
int32 accumulator of (w + w_offset)·(x + x_offset) plus bias is requantized with
MultiplyByQuantizedMultiplier, offset by the output zero point and clamped to the fused
activation's range.

The input offset is folded into the bias at generation time:
Σ (w + w_off)(x + x_off) + b = Σ (w + w_off)·x + [b + x_off·Σ (w + w_off)],
the same int32 value (integer addition is exact here), one add less per MAC.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import TinylrError
from ..ir import Graph, Operator
from ._kernel import ConstArray, KernelCall

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
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
    out = graph.tensors[op.outputs[0]]
    output_depth, accum_depth = w.shape
    multipliers, shifts = quant.conv_multipliers(x.scale, w.quantization.scale, out.scale)
    act_min, act_max = quant.activation_range(
        op.options.get("fused_activation_function", "NONE"), out.scale, out.zero_point
    )
    weights_offset = -int(w.quantization.zero_point[0])
    folded = folded_bias(w.data, weights_offset, -x.zero_point, None if bias is None else bias.data)
    arrays = (
        ConstArray(names.array(op, "weights"), "int8_t", tuple(int(v) for v in w.data.ravel()),
                   f"{w.name} {list(w.shape)}"),
        ConstArray(names.array(op, "bias"), "int32_t", tuple(int(v) for v in folded),
                   f"bias + input_offset * row sums of the weights ({bias.name if bias is not None else 'no bias'})"),
        ConstArray(names.array(op, "multiplier"), "int32_t", tuple(multipliers), "requantization significands (Q31)"),
        ConstArray(names.array(op, "shift"), "int8_t", tuple(shifts), "requantization exponents (-31..30)"),
    )
    params = (
        ("batches", str(out.size // output_depth)),
        ("accum_depth", str(accum_depth)),
        ("output_depth", str(output_depth)),
        ("weights_offset", str(weights_offset)),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)),
        ("activation_max", str(act_max)),
        ("per_channel", "1" if len(multipliers) > 1 else "0"),
        ("weights", arrays[0].name),
        ("bias", arrays[1].name),
        ("multiplier", arrays[2].name),
        ("shift", arrays[3].name),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_fully_connected", params_type="tinylr_fully_connected_params",
        params=params, arrays=arrays, inputs=(x.index,), outputs=(out.index,),
    )


def folded_bias(weights: np.ndarray, weights_offset: int, input_offset: int, bias: np.ndarray | None) -> np.ndarray:
    """bias[c] + input_offset · Σ_d (w[c, d] + weights_offset), checked to fit int32."""
    rows = weights.astype(np.int64).sum(axis=1) + weights_offset * weights.shape[1]
    folded = input_offset * rows + (0 if bias is None else bias.astype(np.int64))
    if np.abs(folded).max(initial=0) >= 2**31:
        raise TinylrError("FULLY_CONNECTED bias with the input offset folded in overflows int32; the model's scales are unusable")
    return folded
