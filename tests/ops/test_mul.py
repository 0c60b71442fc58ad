"""MUL parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit,
over masks, per-channel scales, scalars, products of computed tensors, broadcast up to
6-D and fused activations."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.build_elementwise import assert_bit_exact, constant, convert, dense, ops_of

MASK = (np.random.default_rng(0).random((1, 5, 1)) > 0.4).astype(np.float32)

CASES = [
    # input shape, operand kind, activation, calibration scale
    ((1, 5, 4), "mask", "none", 1.0),              # 0/1 node mask over the feature axis
    ((2, 8), "channel-scale", "relu6", 1.0),       # a per-feature scale vector
    ((2, 8), "scalar", "relu", 4.0),
    ((1, 12), "dense*dense", "none", 1.0),         # two computed branches
    ((3, 6), "x*x", "none", 0.5),                  # the same tensor twice
    ((1, 4, 1, 6), "both-broadcast", "relu_n1_to_1", 1.0),
    ((1, 2, 1, 3, 1, 2), "6d", "none", 1.0),       # TFLM's largest rank
]


def _fn(kind, activation):
    import tensorflow as tf

    act = {"none": lambda t: t, "relu": tf.nn.relu, "relu6": tf.nn.relu6,
           "relu_n1_to_1": lambda t: tf.clip_by_value(t, -1.0, 1.0)}[activation]
    body = {
        "mask": lambda x: x * MASK,
        "channel-scale": lambda x: constant((8,), 1, -3, 3) * x,
        "scalar": lambda x: x * 0.37,
        "dense*dense": lambda x: dense(x, 12, 1) * dense(x, 12, 2),
        "x*x": lambda x: x * x,
        "both-broadcast": lambda x: x * constant((3, 1, 5, 1), 2, -2, 2),
        "6d": lambda x: x * constant((2, 1, 2, 1, 3, 1), 3, -2, 2),
    }[kind]
    return lambda x: act(body(x))


@pytest.mark.slow
@pytest.mark.parametrize("shape,kind,activation,scale", CASES)
def test_mul_is_bit_exact(tmp_path, shape, kind, activation, scale):
    graph = assert_bit_exact(convert(_fn(kind, activation), shape, calibration_scale=scale, seed=len(kind)), tmp_path)
    (mul,) = ops_of(graph, "MUL")
    assert mul.options["fused_activation_function"] == activation.upper()
    a, b = graph.op_inputs(mul)
    if kind in ("mask", "channel-scale", "scalar", "both-broadcast", "6d"):
        assert a.is_constant or b.is_constant
    if kind == "6d":
        assert len(graph.tensors[mul.outputs[0]].shape) == 6
    if kind == "x*x":
        assert a is b
