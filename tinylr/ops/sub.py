"""SUB, int8, with broadcasting and a fused activation (TFLM's BroadcastQuantSubSlow /
SubElementwise): ADD's arithmetic with the rescaled second input subtracted.

The multipliers are ADD's, in double precision. tflite-micro's sub_common.cc reads as
if it took them in float32, but the TFLM interpreter we check against computes them
in double; tests/ops/test_sub.py holds the exhaustive test that tells the two apart
(see `_elementwise.add_sub_multipliers`).
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "SUB"
KERNEL = "sub"
SUPPORT_FILES = ew.SUPPORT_FILES
INPLACE = (0, 1)  # reads both operands at i before writing i; a same-size operand may be overwritten


def check(op: Operator, graph: Graph) -> list[str]:
    problems = ew.check_binary(op, graph)
    return problems or ew.add_sub_problems(op, graph)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    return KernelCall(
        kernel=KERNEL, function="tinylr_sub", params_type="tinylr_sub_params",
        params=ew.add_sub_params(op, graph),
        inputs=tuple(op.inputs), outputs=tuple(op.outputs),
    )
