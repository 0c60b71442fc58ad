import numpy as np
import pytest

from tinylr import planner
from tinylr.errors import TinylrError
from tinylr.ir import Graph, Operator, Quantization, Tensor

Q = Quantization(np.array([0.1], np.float32), np.array([0]), 0)


def act(i, n):
    return Tensor(i, f"t{i}", (1, n), "INT8", Q, None)


def const(i, n):
    return Tensor(i, f"w{i}", (n,), "INT8", Q, np.zeros(n, np.int8))


def chain(sizes, reshape_at=()):
    """t0 -> op0 -> t1 -> op1 -> ... ; op k is a RESHAPE when k in reshape_at."""
    tensors = [act(i, n) for i, n in enumerate(sizes)]
    tensors.append(const(len(sizes), 4))
    ops = [Operator(k, "RESHAPE" if k in reshape_at else "FULLY_CONNECTED", 1, (k, len(sizes)), (k + 1,), {})
           for k in range(len(sizes) - 1)]
    return Graph(tuple(tensors), tuple(ops), (0,), (len(sizes) - 1,))


def test_chain_reuses_memory_of_dead_tensors():
    g = chain([64, 100, 30, 50, 10])
    p = planner.plan(g, set())
    assert p.placements[0].kind == "input" and p.placements[4].kind == "output"
    # never more than two intermediates alive at once: 100 + 30, 30 + 50 -> 132 (aligned)
    assert p.arena_bytes == 132
    assert 2 not in p.placements or p.placements[2].kind == "arena"


def test_reshape_output_aliases_its_input():
    g = chain([8, 16, 16, 4], reshape_at={1})
    p = planner.plan(g, {1})
    assert p.placements[1] == p.placements[2]
    assert p.arena_bytes == 16


def test_reshape_of_output_writes_into_caller_buffer():
    g = chain([8, 16, 16], reshape_at={1})
    p = planner.plan(g, {1})
    assert p.placements[1].kind == "output" and p.arena_bytes == 0


def test_model_that_is_only_a_reshape_is_refused():
    g = chain([8, 8], reshape_at={0})
    with pytest.raises(TinylrError, match="reshape of its input"):
        planner.plan(g, {0})


def test_live_buffers_never_overlap_on_random_graphs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(3, 12))
        sizes = [int(s) for s in rng.integers(1, 300, size=n)]
        tensors = [act(i, s) for i, s in enumerate(sizes)]
        ops = []
        for k in range(1, n):  # each tensor made from one or two earlier ones: branches and joins
            srcs = tuple(sorted(set(int(s) for s in rng.integers(0, k, size=2))))
            ops.append(Operator(k - 1, "ADD", 1, srcs, (k,), {}))
        g = Graph(tuple(tensors), tuple(ops), (0,), (n - 1,))
        p = planner.plan(g, set())
        spans = [(p.placements[i].offset, p.placements[i].offset + sizes[i], *p.lifetimes[i])
                 for i in range(1, n - 1) if i in p.placements]
        for a in range(len(spans)):
            for b in range(a + 1, len(spans)):
                o1, e1, f1, l1 = spans[a]
                o2, e2, f2, l2 = spans[b]
                if not (l1 < f2 or l2 < f1):  # alive together
                    assert e1 <= o2 or e2 <= o1, (sizes, spans[a], spans[b])
        assert all(e <= p.arena_bytes for _, e, _, _ in spans)
        assert all(o % planner.ALIGNMENT == 0 for o, _, _, _ in spans)


def elementwise_chain(sizes, extra_reader=None):
    """t0 -op0-> t1 -op1-> ... where every op is in-place capable; `extra_reader`
    (k, j): an extra op at the end reads tensor k and writes a fresh tensor."""
    tensors = [act(i, n) for i, n in enumerate(sizes)]
    ops = [Operator(k, "LOGISTIC", 1, (k,), (k + 1,), {}) for k in range(len(sizes) - 1)]
    outputs = (len(sizes) - 1,)
    if extra_reader is not None:
        k = extra_reader
        tensors.append(act(len(sizes), 4))
        ops.append(Operator(len(ops), "ADD", 1, (len(sizes) - 1, k), (len(sizes),), {}))
        outputs = (len(sizes),)
    return Graph(tuple(tensors), tuple(ops), (0,), outputs)


def test_elementwise_ops_run_in_place_when_the_input_dies():
    g = elementwise_chain([16, 16, 16, 16, 16])
    inplace = {op.index: (0,) for op in g.operators}
    without = planner.plan(g, set())
    with_inplace = planner.plan(g, set(), inplace)
    assert without.arena_bytes == 32
    # op0 cannot write over the caller's input; from there on every tensor is computed
    # in the caller's output buffer, and no arena is needed at all
    assert with_inplace.arena_bytes == 0
    assert with_inplace.placements[0].kind == "input"
    assert all(with_inplace.placements[i].kind == "output" for i in (1, 2, 3, 4))


def test_no_in_place_over_a_tensor_read_later_or_of_another_size():
    g = elementwise_chain([16, 16, 16, 4], extra_reader=1)  # t1 is read again by the last op
    p = planner.plan(g, set(), {0: (0,), 1: (0,), 2: (0,)})
    assert p.placements[1] != p.placements[2]
    g = elementwise_chain([16, 16, 8, 8])  # op1 changes size: no in place there
    p = planner.plan(g, set(), {0: (0,), 1: (0,), 2: (0,)})
    assert p.placements[1] != p.placements[2]
