"""AVERAGE_POOL_2D, int8 NHWC, input and output sharing one quantization.

Matches TFLM's reference_integer_ops::AveragePool: the window is clipped to the input
(SAME padding shrinks the divisor at the borders; padding never counts as zeros), the
int32 sum is divided by the number of taps rounding half away from zero
((sum ± count/2) / count with C's truncating division), then clamped to the fused
activation's range. No requantization: TFLM requires equal input and output scales.
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _spatial
from ._kernel import KernelCall

OPCODE = "AVERAGE_POOL_2D"
KERNEL = "average_pool_2d"


def check(op: Operator, graph: Graph) -> list[str]:
    return _spatial.pool_problems(op, graph)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    return KernelCall(
        kernel=KERNEL, function="tinylr_average_pool_2d", params_type="tinylr_average_pool_2d_params",
        params=_spatial.pool_params(op, graph), inputs=(op.inputs[0],), outputs=(op.outputs[0],),
    )
