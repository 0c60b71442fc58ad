"""PRELU, int8 -> int8 with a constant int8 alpha, TFLM's arithmetic reimplemented.

As reference_ops::BroadcastPrelu4DSlow: v = x - input_zero_point; for v >= 0 the
output is MultiplyByQuantizedMultiplier(v, M1, s1), else
MultiplyByQuantizedMultiplier(v * (alpha - alpha_zero_point), M2, s2); plus the output
zero point, clamped. M1 = input_scale / output_scale and M2 = input_scale *
alpha_scale / output_scale, both in double (`tinylr.quant`).

Alpha broadcasts against the input. Seen from the output's flat index, the broadcast
alpha repeats with the period of the output's dimensions from alpha's first non-1
dimension on; that one period is stored (e.g. [C] for channel-shared alpha), so the
kernel needs no broadcasting logic and no table larger than one sample.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import Graph, Operator
from ._kernel import ConstArray, KernelCall

OPCODE = "PRELU"
INPLACE = True  # output i depends only on input i (and constant alpha): may overwrite its input
KERNEL = "prelu"


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["expects input, alpha and one output"]
    x, alpha = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype != "INT8" or alpha.dtype != "INT8" or y.dtype != "INT8":
        return [f"input, alpha and output must be INT8 (got {x.dtype}, {alpha.dtype}, {y.dtype})"]
    if not alpha.is_constant:
        problems.append("alpha must be a constant tensor")
    if x.is_constant:
        problems.append("a constant input (fold it when exporting the model)")
    for role, t in (("input", x), ("alpha", alpha), ("output", y)):
        if t.quantization is None or t.quantization.per_channel:
            problems.append(f"{role} tensor {t.name!r} must be quantized per tensor")
    try:
        broadcast = np.broadcast_shapes(x.shape, alpha.shape)
    except ValueError:
        return problems + [f"alpha {list(alpha.shape)} does not broadcast against input {list(x.shape)}"]
    if tuple(broadcast) != tuple(x.shape) or tuple(y.shape) != tuple(x.shape):
        problems.append(f"input {list(x.shape)}, alpha {list(alpha.shape)} and output {list(y.shape)}: "
                        "only alpha may be broadcast")
    return problems


def alpha_period(alpha: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """The smallest block of the broadcast alpha that repeats along the output's flat index."""
    extended = (1,) * (len(out_shape) - alpha.ndim) + tuple(alpha.shape)
    first = next((i for i, d in enumerate(extended) if d != 1), len(extended))
    full = np.broadcast_to(alpha.reshape(extended), out_shape)
    return full[(0,) * first].reshape(-1)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, alpha = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    m1, s1 = quant.quantize_multiplier(float(np.float64(x.scale) / np.float64(y.scale)))
    m2, s2 = quant.quantize_multiplier(
        float(np.float64(x.scale) * np.float64(alpha.scale) / np.float64(y.scale)))
    period = alpha_period(alpha.data, tuple(y.shape))
    array = ConstArray(names.array(op, "alpha"), "int8_t", tuple(int(v) for v in period),
                       f"{alpha.name} {list(alpha.shape)}, one period of its broadcast")
    params = (
        ("outer_size", str(y.size // len(period))),
        ("period", str(len(period))),
        ("input_offset", str(-x.zero_point)),
        ("alpha_offset", str(-alpha.zero_point)),
        ("output_offset", str(y.zero_point)),
        ("multiplier_positive", str(m1)),
        ("shift_positive", str(s1)),
        ("multiplier_negative", str(m2)),
        ("shift_negative", str(s2)),
        ("alpha", array.name),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_prelu_s8", params_type="tinylr_prelu_s8_params",
        params=params, arrays=(array,), inputs=(x.index,), outputs=(y.index,),
    )
