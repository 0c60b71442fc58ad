"""ADD, int8, with broadcasting and a fused activation (TFLM's reference_integer_ops::Add).

Each input is offset by its zero point, shifted left by 20 bits, rescaled to a common
scale (twice the larger input scale), summed, rescaled to the output and clamped.
The three multipliers come from TFLM's CalculateOpDataAdd, in double precision
(`_elementwise.add_sub_multipliers`). Either input may be a constant (a bias, an offset).
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "ADD"
KERNEL = "add"
SUPPORT_FILES = ew.SUPPORT_FILES
INPLACE = (0, 1)  # reads both operands at i before writing i; a same-size operand may be overwritten


def check(op: Operator, graph: Graph) -> list[str]:
    problems = ew.check_binary(op, graph)
    return problems or ew.add_sub_problems(op, graph)


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    return KernelCall(
        kernel=KERNEL, function="tinylr_add", params_type="tinylr_add_params",
        params=ew.add_sub_params(op, graph),
        inputs=tuple(op.inputs), outputs=tuple(op.outputs),
    )
