"""Static memory plan: every activation tensor gets a fixed place before the model runs.

Tensors that alias (RESHAPE) share one storage, and so do the input and output of an
elementwise op that may run in place (its module sets `INPLACE`: output element i
depends only on element i of that input) when that input is not read again
afterwards, is not the caller's input or output, and has the output's size. The model's input lives in the
caller's input buffer and its output is written straight into the caller's output
buffer; every other activation gets an offset in one arena. Offsets are chosen
greedily, largest buffer first, at the lowest offset that does not overlap a buffer
alive at the same time (the strategy of TFLM's GreedyMemoryPlanner). Constants stay
in flash and never appear here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TinylrError
from .ir import Graph

ALIGNMENT = 4  # bytes; int32 accesses in kernels stay aligned


@dataclass(frozen=True)
class Placement:
    kind: str        # "input", "output" or "arena"
    offset: int = 0  # byte offset in the arena (kind == "arena")


@dataclass(frozen=True)
class Plan:
    placements: dict[int, Placement]   # tensor index -> where its bytes live
    arena_bytes: int
    lifetimes: dict[int, tuple[int, int]]  # storage root -> (first op, last op)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan(graph: Graph, alias_ops: set[int], inplace_ops: dict[int, tuple[int, ...]] | None = None) -> Plan:
    """Plan the storage of every non-constant tensor; `alias_ops` are op indices whose
    output aliases their first input; `inplace_ops` maps op indices to the input
    positions their output may overwrite (tried in order) where that is safe."""
    inplace_ops = inplace_ops or {}
    root = {t.index: t.index for t in graph.tensors if not t.is_constant}

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for op in graph.operators:
        if op.index in alias_ops:
            a, b = find(op.inputs[0]), find(op.outputs[0])
            if a != b:
                root[b] = a

    boundary = {*graph.inputs, *graph.outputs}
    for op in graph.operators:
        for position in inplace_ops.get(op.index, ()):
            if position >= len(op.inputs) or op.inputs[position] not in root:
                continue
            a, b = find(op.inputs[position]), find(op.outputs[0])
            members = [i for i in root if find(i) == a]
            read_later = any(find(i) == a for later in graph.operators[op.index + 1:] for i in later.inputs if i in root)
            # another operand in the same storage might be read at other indices (broadcast)
            others = [i for k, i in enumerate(op.inputs) if k != position]
            read_twice = any(i in root and find(i) == a for i in others)
            same_size = all(graph.tensors[i].nbytes == graph.tensors[op.outputs[0]].nbytes for i in members)
            if a != b and same_size and not read_later and not read_twice and not boundary.intersection(members):
                root[a] = b
                break

    groups: dict[int, list[int]] = {}
    for i in root:
        groups.setdefault(find(i), []).append(i)

    external: dict[int, str] = {}
    for kind, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for i in indices:
            r = find(i)
            if external.get(r, kind) != kind:
                raise TinylrError(
                    "the model's output is only a reshape of its input; there is nothing to generate"
                )
            external[r] = kind

    # lifetime of each storage: first op touching any member .. last op touching any member
    lifetimes: dict[int, tuple[int, int]] = {}
    for op in graph.operators:
        for i in (*op.inputs, *op.outputs):
            if i < 0 or i not in root:
                continue
            r = find(i)
            first, last = lifetimes.get(r, (op.index, op.index))
            lifetimes[r] = (min(first, op.index), max(last, op.index))

    sizes = {r: max(graph.tensors[i].nbytes for i in members) for r, members in groups.items()}
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[int, int] = {}
    arena_roots = [r for r in lifetimes if r not in external]
    for r in sorted(arena_roots, key=lambda r: (-sizes[r], lifetimes[r][0], r)):
        size, (first, last) = _align(sizes[r]), lifetimes[r]
        offset = 0
        for o, s, _, _ in sorted(p for p in placed if not (p[3] < first or last < p[2])):
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        offsets[r] = offset
        placed.append((offset, size, first, last))

    placements = {}
    for r, members in groups.items():
        place = Placement(external[r]) if r in external else Placement("arena", offsets.get(r, 0))
        if r not in external and r not in offsets:
            continue  # a tensor no op reads or writes
        for i in members:
            placements[i] = place
    arena = max((o + s for o, s, _, _ in placed), default=0)
    return Plan(placements=placements, arena_bytes=arena, lifetimes=lifetimes)
