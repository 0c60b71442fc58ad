"""RESHAPE: the same bytes seen with another shape, so no code and no copy.

The memory planner gives the output the input's storage (an alias).
"""

from __future__ import annotations

from ..ir import Graph, Operator

OPCODE = "RESHAPE"
ALIAS = True


def check(op: Operator, graph: Graph) -> list[str]:
    if not op.inputs or len(op.outputs) != 1:
        return ["expects a data input and one output"]
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problems = []
    if x.size != out.size:
        problems.append(f"input {x.shape} and output {out.shape} differ in size")
    if x.dtype != out.dtype:
        problems.append(f"input {x.dtype} and output {out.dtype} differ in type")
    if x.quantization is not None and out.quantization is not None and (
        x.scale != out.scale or x.zero_point != out.zero_point
    ):
        problems.append("input and output quantization differ")
    return problems
