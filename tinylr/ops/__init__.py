"""One module per TFLite builtin op: its checks and the parameters its kernel needs.

Each op module defines:
- `OPCODE`: the TFLite builtin name it handles (or `OPCODES`, a tuple);
- `check(op, graph) -> list[str]`: every reason the generator cannot take this op
  (empty when it can), worded for the user;
- either `lower(op, graph, names) -> KernelCall` (a kernel call with precomputed
  constant parameters; `names.array(op, role)` gives unique C names for its arrays),
  or `ALIAS = True` when the output is the input's bytes seen with another shape (no
  code, no copy).
- optionally `INPLACE`: `True` when output element i depends only on element i of the
  first input (same size), or a tuple of the input positions for which that holds
  (e.g. `(0, 1)` for ADD), so the planner may let the output overwrite such an input
  once nothing else reads it;
- optionally `SUPPORT_FILES`: names of extra files its kernel includes (rendered from
  firmware_templates/kernels/<variant>/<name>.j2 when the op is used), e.g. a header
  shared by several elementwise kernels.

The kernel template for an op lives in firmware_templates/kernels/<variant>/<KERNEL>.{h,c}.j2.
Every public module in this package is an op: adding one needs no edit here. Modules
whose name starts with `_` are helpers shared by several ops.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ..errors import TinylrError
from ..ir import Graph
from ._kernel import ConstArray, KernelCall

__all__ = ["REGISTRY", "ConstArray", "KernelCall", "check_supported", "inplace_positions"]


def inplace_positions(module: ModuleType) -> tuple[int, ...]:
    flag = getattr(module, "INPLACE", False)
    return (0,) if flag is True else tuple(flag or ())


def _discover() -> dict[str, ModuleType]:
    registry: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for opcode in getattr(module, "OPCODES", None) or (module.OPCODE,):
            if opcode in registry:
                raise RuntimeError(f"{opcode} is claimed by {registry[opcode].__name__} and {module.__name__}")
            registry[opcode] = module
    return registry


REGISTRY: dict[str, ModuleType] = _discover()


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
