"""REDUCE_MAX parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for
bit, over axes and keep_dims; the refusal of a requantizing REDUCE_MAX, which TFLM
rejects too; and a dense GNN layer built from the ops of this family."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_elementwise import assert_bit_exact, constant, convert, ops_of, walk_offsets
from tinylr import codegen, ops, reference
from tinylr.errors import TinylrError

CASES = [
    # input shape, axes, keep_dims
    ((1, 4, 6), [1], True),
    ((2, 4, 6), [0, 2], False),
    ((2, 3, 4, 5), [-1, 1], True),
    ((3, 5), [0, 1], False),        # everything: one value per sample
    ((2, 3, 4), [2], False),        # innermost axis
]


@pytest.mark.slow
@pytest.mark.parametrize("shape,axes,keep_dims", CASES)
def test_reduce_max_is_bit_exact(tmp_path, shape, axes, keep_dims):
    import tensorflow as tf

    model = convert(lambda x: tf.reduce_max(x, axis=axes, keepdims=keep_dims), shape, seed=len(axes))
    graph = assert_bit_exact(model, tmp_path)
    (op,) = ops_of(graph, "REDUCE_MAX")
    assert op.options["keep_dims"] == keep_dims


@pytest.mark.slow
def test_reduce_max_refuses_to_requantize_like_tflm(tmp_path):
    import tensorflow as tf

    def rescale_output(m):
        sub = m.subgraphs[0]
        q = sub.tensors[sub.operators[0].outputs[0]].quantization
        q.scale = [q.scale[0] * 2]

    model = edit(convert(lambda x: tf.reduce_max(x, axis=1), (2, 6)), rescale_output)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    with pytest.raises(TinylrError, match="REDUCE_MAX: input .* and output .* are quantized differently"):
        codegen.generate(path, tmp_path / "src", "m")
    with pytest.raises(TinylrError, match="rejected"):
        reference.run(model, np.zeros((1, 12), dtype=np.int8))


K, F, HIDDEN = 6, 5, 8
NODE_MASK = (np.random.default_rng(3).random((1, K, 1)) > 0.3).astype(np.float32)


def dense_gnn_layer(logistic: bool):
    """One message-passing layer on a dense graph of K nodes with F features:
    mask absent nodes, concatenate [features, masked messages], a shared dense layer
    per node (FULLY_CONNECTED + ReLU), optionally a sigmoid gate, max-aggregate over
    the nodes, flatten."""
    import tensorflow as tf

    w = constant((2 * F, HIDDEN), seed=5, low=-0.7, high=0.7)

    def fn(x):
        messages = x * NODE_MASK
        h = tf.concat([x, 2.0 * messages], axis=-1)                         # [1, K, 2F]
        h = tf.nn.relu(tf.matmul(tf.reshape(h, (K, 2 * F)), w))              # [K, HIDDEN]
        if logistic:
            h = tf.sigmoid(h)
        h = tf.reduce_max(tf.reshape(h, (1, K, HIDDEN)), axis=1, keepdims=True)  # [1, 1, HIDDEN]
        return tf.reshape(h, (1, HIDDEN))

    return fn


@pytest.mark.slow
@pytest.mark.parametrize("logistic", [False, True], ids=["relu", "relu+logistic"])
def test_dense_gnn_layer_is_bit_exact(tmp_path, logistic):
    if logistic and "LOGISTIC" not in ops.REGISTRY:
        pytest.skip("LOGISTIC is not supported by this tinylr yet")
    graph = assert_bit_exact(convert(dense_gnn_layer(logistic), (1, K, F), seed=9), tmp_path, samples=200)
    used = set(graph.opcodes)
    assert {"MUL", "CONCATENATION", "FULLY_CONNECTED", "REDUCE_MAX", "RESHAPE"} <= used
    assert ("LOGISTIC" in used) == logistic


@pytest.mark.parametrize("seed", range(20))
def test_reduce_walks_visit_what_numpy_max_reduces(seed):
    """The kept walk and the reduced walk of the kernel, run in Python, give numpy's max."""
    from tinylr.ops import _elementwise as ew

    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(1, 6))))
    axes = sorted({int(a) for a in rng.integers(0, len(shape), size=int(rng.integers(1, len(shape) + 1)))})
    x = rng.integers(-128, 128, size=shape)
    strides = ew.contiguous_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    kept_walk = ew.plan_walk([shape[d] for d in kept], [[strides[d] for d in kept]])
    reduced_walk = ew.plan_walk([shape[d] for d in axes], [[strides[d] for d in axes]])
    flat = x.ravel()
    result = [max(flat[walk_offsets(reduced_walk, start=base)]) for base in walk_offsets(kept_walk)]
    assert result == x.max(axis=tuple(axes)).ravel().tolist()
