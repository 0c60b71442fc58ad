"""ADD parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit,
over broadcast patterns, constant and computed operands, input scales and fused
activations."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.build_elementwise import assert_bit_exact, constant, convert, dense, ops_of, walk_offsets
from tinylr import codegen, ir
from tinylr.errors import TinylrError
from tinylr.ops import _elementwise as ew

ACTIVATIONS = {
    "none": lambda t: t,
    "relu": lambda t: __import__("tensorflow").nn.relu(t),
    "relu6": lambda t: __import__("tensorflow").nn.relu6(t),
    "relu_n1_to_1": lambda t: __import__("tensorflow").clip_by_value(t, -1.0, 1.0),
}
FUSED = {"none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}

CONSTANT_CASES = [
    # input shape, constant shape, constant first?, activation, calibration scale
    ((2, 8), (8,), False, "none", 1.0),               # bias over the last axis
    ((1, 4, 6), (4, 1), True, "relu", 3.0),           # constant first, broadcast over the last axis
    ((1, 4, 6), (1, 4, 6), False, "relu6", 0.5),      # same shape: one flat run
    ((2, 8), (), False, "relu_n1_to_1", 0.7),         # scalar
    ((1, 4, 1, 6), (3, 1, 5, 1), False, "none", 1.0), # both operands broadcast
    ((2, 1, 3, 1, 4), (1, 5, 1, 2, 1), False, "relu", 1.0),  # 5-D, alternating
]


@pytest.mark.slow
@pytest.mark.parametrize("shape,const_shape,const_first,activation,scale", CONSTANT_CASES)
def test_add_with_a_constant_is_bit_exact(tmp_path, shape, const_shape, const_first, activation, scale):
    c = constant(const_shape, seed=len(shape), low=-2.0, high=2.0)
    act = ACTIVATIONS[activation]
    model = convert((lambda x: act(c + x)) if const_first else (lambda x: act(x + c)), shape,
                    calibration_scale=scale, seed=len(const_shape))
    graph = assert_bit_exact(model, tmp_path)
    (add,) = ops_of(graph, "ADD")
    assert add.options["fused_activation_function"] == FUSED[activation]
    assert any(graph.tensors[i].is_constant for i in add.inputs)


BRANCH_CASES = [
    # input shape, the two operands (as functions of x), activation
    ((1, 12), "dense+dense", "relu"),     # two FULLY_CONNECTED branches, different scales
    ((3, 10), "x+dense", "none"),         # the input itself and a branch (a residual)
    ((1, 4, 6), "x+row", "none"),         # broadcast between activations: x + x[:, :1, :]
    ((1, 4, 6), "col+x", "relu6"),        # x[:, :, :1] (broadcast over the last axis) first
]


def _branches(kind):
    import tensorflow as tf

    return {
        "dense+dense": lambda x: (dense(x, x.shape[-1], 1), 3.0 * dense(x, x.shape[-1], 2)),
        "x+dense": lambda x: (x, dense(x, x.shape[-1], 3)),
        "x+row": lambda x: (x, 2.0 * tf.reduce_max(x, axis=1, keepdims=True)),
        "col+x": lambda x: (x[:, :, :1], x),
    }[kind]


@pytest.mark.slow
@pytest.mark.parametrize("shape,kind,activation", BRANCH_CASES)
def test_add_of_two_computed_tensors_is_bit_exact(tmp_path, shape, kind, activation):
    branches, act = _branches(kind), ACTIVATIONS[activation]
    model = convert(lambda x: act(sum(branches(x))), shape, seed=7)
    graph = assert_bit_exact(model, tmp_path)
    (add,) = ops_of(graph, "ADD")
    a, b = graph.op_inputs(add)
    assert not a.is_constant and not b.is_constant
    if kind == "dense+dense":
        assert a.scale != b.scale  # the rescaling of each input is exercised


@pytest.mark.slow
def test_add_output_overwrites_its_dying_input(tmp_path):
    """x -> dense + relu -> (+ constant) -> dense: the planner runs ADD in place."""
    import tensorflow as tf

    c = constant((8,), seed=4)
    model = convert(lambda x: dense(tf.nn.relu(dense(x, 8, 5)) + c, 4, 6), (1, 8), seed=2)
    assert_bit_exact(model, tmp_path)
    model_c = (tmp_path / "src" / "m.c").read_text()
    call = next(line for line in model_c.splitlines() if "tinylr_add(&" in line)
    args = [a.strip() for a in call.split("(", 1)[1].rstrip(");").split(",")]
    assert args[1] == args[3], call  # input1 and output share their arena bytes


@pytest.mark.slow
def test_add_refuses_an_output_scale_tflm_cannot_rescale_to(tmp_path):
    from tests.modelbuild import edit

    def tiny_output_scale(m):
        sub = m.subgraphs[0]
        sub.tensors[sub.operators[0].outputs[0]].quantization.scale = [1e-9]

    model = edit(convert(lambda x: x + constant((8,), 1), (2, 8)), tiny_output_scale)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert ir.load(path).opcodes == ["ADD"]
    with pytest.raises(TinylrError, match=r"ADD: a rescaling multiplier is .* outside \(0, 1\)"):
        codegen.generate(path, tmp_path / "src", "m")
    assert not (tmp_path / "src").exists()


@pytest.mark.parametrize("seed", range(20))
def test_broadcast_walk_visits_what_numpy_broadcasting_reads(seed):
    """The precomputed walk (merged dimensions, wrap-around steps) gives each input the
    offsets numpy's broadcasting reads, in output order."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 7))
    out = tuple(int(n) for n in rng.integers(1, 4, size=rank))
    shapes = [tuple(n if rng.random() < 0.5 else 1 for n in out)[int(rng.integers(0, rank)):] for _ in range(2)]
    walk = ew.broadcast_walk(*shapes, ew.broadcast_shape(*shapes))
    for k, shape in enumerate(shapes):
        expected = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), ew.broadcast_shape(*shapes))
        assert walk_offsets(walk, k) == expected.ravel().tolist()
