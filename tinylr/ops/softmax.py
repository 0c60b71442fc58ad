"""SOFTMAX, int8 -> int8 over the last axis, TFLM's integer algorithm reimplemented.

TFLM's int8 path (micro/kernels/softmax.cc -> reference_ops::Softmax in
kernels/internal/reference/softmax.h) is gemmlowp fixed point, not a lookup table
(TFLM's exp tables are for int16 softmax only):
1. per row, d = x - max(x); entries with d < diff_min are skipped (their output is -128);
2. d is scaled to Q5.26 by MultiplyByQuantizedMultiplierGreaterThanOne with the
   multiplier of beta * input_scale * 2^26 (capped at 2^31 - 1), and exp(d) evaluated
   by gemmlowp's exp_on_negative_values (Q0.31);
3. the exps, rescaled to Q12.19, are summed; 1/sum comes from gemmlowp's
   one_over_one_plus_x_for_x_in_0_1 on the sum normalised to [1, 2);
4. out = RoundingDivideByPOT(recip * exp, num_bits_over_unit + 23) - 128, clamped.

The multiplier, shift and diff_min are computed here as TFLM's PreprocessSoftmaxScaling
and CalculateInputRadius do; the kernel does steps 1-4 in integers.
"""

from __future__ import annotations

import math

import numpy as np

from .. import quant
from ..ir import Graph, Operator
from ._kernel import KernelCall

OPCODE = "SOFTMAX"
KERNEL = "softmax"
SCALED_DIFF_INTEGER_BITS = 5
# The Q12.19 sum of exps (each at most 1.0) stays below 2^31 for up to 4095 entries.
MAX_DEPTH = 4095
OUTPUT_SCALE = np.float32(1.0 / 256.0)
OUTPUT_ZERO_POINT = -128


def scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, diff_min) as TFLM's CalculateSoftmaxParams."""
    real = min(float(beta) * float(input_scale) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError(f"beta * input scale = {float(beta) * float(input_scale):.3g} is too small")
    multiplier, shift = quant.quantize_multiplier(real)
    radius = math.floor(((1 << SCALED_DIFF_INTEGER_BITS) - 1) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS))
                        / float(1 << shift))
    return multiplier, shift, -radius


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects one input and one output"]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "INT8" or y.dtype != "INT8":
        return [f"only INT8 -> INT8 is supported (got {x.dtype} -> {y.dtype})"]
    if x.quantization is None or y.quantization is None:
        return ["input and output need quantization parameters"]
    problems = []
    if x.quantization.per_channel or y.quantization.per_channel:
        problems.append("activations must be quantized per tensor")
    if np.float32(y.scale) != OUTPUT_SCALE or y.zero_point != OUTPUT_ZERO_POINT:
        problems.append(f"output must have scale 1/256 and zero point -128 as TFLM requires "
                        f"(got {y.scale:.6g} / {y.zero_point})")
    if x.shape != y.shape or not x.shape:
        problems.append(f"input {list(x.shape)} and output {list(y.shape)} must have the same non-scalar shape")
    elif x.shape[-1] > MAX_DEPTH:
        problems.append(f"softmax over {x.shape[-1]} values (at most {MAX_DEPTH}: TFLM's int32 sum of exps overflows)")
    if x.is_constant:
        problems.append("a constant input (fold it when exporting the model)")
    try:
        scaling(op.options.get("beta", 1.0), x.scale)
    except ValueError as exc:
        problems.append(f"{exc}; TFLM cannot run this softmax (it needs beta * scale * 2^26 > 1)")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    multiplier, shift, diff_min = scaling(op.options.get("beta", 1.0), x.scale)
    depth = x.shape[-1]
    params = (
        ("outer_size", str(x.size // depth if depth else 0)),
        ("depth", str(depth)),
        ("input_multiplier", str(multiplier)),
        ("input_left_shift", str(shift)),
        ("diff_min", str(diff_min)),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_softmax_s8", params_type="tinylr_softmax_s8_params",
        params=params, inputs=(x.index,), outputs=(y.index,),
    )
