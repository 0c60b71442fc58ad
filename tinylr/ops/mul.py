"""MUL, int8, with broadcasting and a fused activation (TFLM's reference_integer_ops::Mul
and BroadcastMul6DSlow).

out = clamp(zp_out + MultiplyByQuantizedMultiplier((x1 - zp1)·(x2 - zp2), M, shift))
with M·2^shift = s1·s2/s_out taken in double (mul_common.cc). A constant operand (a
mask, a per-channel scale) is placed in flash by the generator.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "MUL"
KERNEL = "mul"
SUPPORT_FILES = ew.SUPPORT_FILES
INPLACE = (0, 1)  # reads both operands at i before writing i; a same-size operand may be overwritten


def check(op: Operator, graph: Graph) -> list[str]:
    return ew.check_binary(op, graph)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    a, b = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    real = float(np.float64(a.scale) * np.float64(b.scale) / np.float64(out.scale))
    multiplier, shift = quant.quantize_multiplier(real)
    act_min, act_max = quant.activation_range(op.options.get("fused_activation_function", "NONE"),
                                              out.scale, out.zero_point)
    params = (
        ("input1_offset", str(-a.zero_point)),
        ("input2_offset", str(-b.zero_point)),
        ("output_multiplier", str(multiplier)),
        ("output_shift", str(shift)),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)),
        ("activation_max", str(act_max)),
        ("walk", ew.broadcast_walk(a.shape, b.shape, out.shape).c_initializer()),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_mul", params_type="tinylr_mul_params",
        params=params, inputs=tuple(op.inputs), outputs=tuple(op.outputs),
    )
