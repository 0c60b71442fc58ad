"""One module per TFLite builtin op: its checks and the parameters its kernel needs.

Each op module defines:
- `OPCODE`: the TFLite builtin name it handles;
- `check(op, graph) -> list[str]`: every reason the generator cannot take this op
  (empty when it can);
- either `lower(op, graph, names) -> KernelCall` (a kernel call with precomputed
  constant parameters), or `ALIAS = True` when the output is the input's bytes seen
  with another shape (no code, no copy).

The kernel template for an op lives in firmware_templates/kernels/<variant>/<KERNEL>.{h,c}.j2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from ..errors import TinylrError
from ..ir import Graph
from . import fully_connected, reshape

REGISTRY: dict[str, ModuleType] = {m.OPCODE: m for m in (fully_connected, reshape)}


@dataclass(frozen=True)
class ConstArray:
    """A constant array placed in flash by the generated data file."""

    name: str        # C identifier (already sanitized and unique)
    ctype: str       # "int8_t", "int32_t"
    values: tuple[int, ...]
    comment: str = ""


@dataclass(frozen=True)
class KernelCall:
    kernel: str                      # kernel file name, e.g. "fully_connected"
    function: str                    # C function to call
    params_type: str                 # C struct type of the constant parameters
    params: tuple[tuple[str, str], ...]  # (field, C initializer) in declaration order
    arrays: tuple[ConstArray, ...] = field(default=())
    inputs: tuple[int, ...] = ()     # activation tensors passed at run time, in order
    outputs: tuple[int, ...] = ()


def check_supported(graph: Graph) -> None:
    """Raise one error naming every op (and option) the generator cannot take."""
    problems = []
    for op in graph.operators:
        module = REGISTRY.get(op.opcode)
        if module is None:
            problems.append(f"op #{op.index} {op.opcode} is not supported yet")
            continue
        problems += [f"op #{op.index} {op.opcode}: {p}" for p in module.check(op, graph)]
    if problems:
        ops = ", ".join(sorted(set(graph.opcodes)))
        raise TinylrError(
            "cannot generate C for this model: " + "; ".join(problems)
            + f". The model's ops: {ops}. Supported: {', '.join(sorted(REGISTRY))}"
        )
