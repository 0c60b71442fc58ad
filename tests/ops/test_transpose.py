"""TRANSPOSE parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for
bit, from 2-D to TFLM's 5-D limit; 6-D is refused, as TFLM refuses it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.build_elementwise import assert_bit_exact, convert, ops_of, walk_offsets
from tinylr import codegen, reference
from tinylr.errors import TinylrError
from tinylr.ops import _elementwise as ew

CASES = [
    ((5, 7), (1, 0)),
    ((1, 3, 4), (0, 2, 1)),
    ((2, 3, 4), (2, 0, 1)),
    ((1, 4, 5, 3), (0, 3, 1, 2)),      # NHWC -> NCHW
    ((2, 3, 1, 4), (3, 1, 2, 0)),      # a size-1 dimension
    ((2, 3, 1, 4, 2), (4, 2, 0, 3, 1)),
]


@pytest.mark.slow
@pytest.mark.parametrize("shape,perm", CASES)
def test_transpose_is_bit_exact(tmp_path, shape, perm):
    import tensorflow as tf

    graph = assert_bit_exact(convert(lambda x: tf.transpose(x, perm), shape, seed=len(shape)), tmp_path)
    (op,) = ops_of(graph, "TRANSPOSE")
    assert tuple(graph.tensors[op.inputs[1]].data) == perm


@pytest.mark.slow
def test_six_dimensional_transpose_is_refused_like_tflm(tmp_path):
    import tensorflow as tf

    model = convert(lambda x: tf.transpose(x, (5, 4, 2, 0, 3, 1)), (2, 3, 1, 4, 2, 2))
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    with pytest.raises(TinylrError, match="TRANSPOSE: input has rank 6; TFLM transposes 1-D to 5-D"):
        codegen.generate(path, tmp_path / "src", "m")
    with pytest.raises(TinylrError, match="rejected"):
        reference.run(model, np.zeros((1, 96), dtype=np.int8))


@pytest.mark.parametrize("seed", range(20))
def test_transpose_walk_visits_what_numpy_transpose_reads(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(1, 6))))
    perm = [int(p) for p in rng.permutation(len(shape))]
    strides = ew.contiguous_strides(shape)
    walk = ew.plan_walk([shape[p] for p in perm], [[strides[p] for p in perm]])
    expected = np.transpose(np.arange(int(np.prod(shape))).reshape(shape), perm)
    assert walk_offsets(walk) == expected.ravel().tolist()
