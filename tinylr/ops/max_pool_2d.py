"""MAX_POOL_2D, int8 NHWC, input and output sharing one quantization.

Matches TFLM's reference_integer_ops::MaxPool: the maximum over the window clipped to
the input (padding never takes part), clamped to the fused activation's range.
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _spatial
from ._kernel import KernelCall

OPCODE = "MAX_POOL_2D"
KERNEL = "max_pool_2d"


def check(op: Operator, graph: Graph) -> list[str]:
    return _spatial.pool_problems(op, graph)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    return KernelCall(
        kernel=KERNEL, function="tinylr_max_pool_2d", params_type="tinylr_max_pool_2d_params",
        params=_spatial.pool_params(op, graph), inputs=(op.inputs[0],), outputs=(op.outputs[0],),
    )
