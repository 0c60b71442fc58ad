"""GATHER parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit,
over axes, index shapes, repeated indices and batch_dims; out-of-range indices (which
TFLM would read past its input on) are refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_elementwise import assert_bit_exact, convert, ops_of
from tinylr import codegen
from tinylr.errors import TinylrError

CASES = [
    # input shape, indices, axis, batch_dims
    ((5, 6), [4, 0, 2, 2], 0, 0),
    ((1, 4, 6), [[2, 0], [1, 3]], 1, 0),   # 2-D indices: the output gains a dimension
    ((2, 3, 5), [4, 0], -1, 0),            # last axis: runs of one byte
    ((2, 4, 6), [[2, 0], [1, 1]], 1, 1),   # batch_dims 1: one index row per batch
]


@pytest.mark.slow
@pytest.mark.parametrize("shape,indices,axis,batch_dims", CASES)
def test_gather_is_bit_exact(tmp_path, shape, indices, axis, batch_dims):
    import tensorflow as tf

    model = convert(lambda x: tf.gather(x, indices, axis=axis, batch_dims=batch_dims), shape, seed=len(shape))
    graph = assert_bit_exact(model, tmp_path)
    (gather,) = ops_of(graph, "GATHER")
    assert gather.options["batch_dims"] == batch_dims
    assert graph.tensors[gather.inputs[1]].data.tolist() == indices


@pytest.mark.slow
def test_gather_refuses_an_index_out_of_range(tmp_path):
    import tensorflow as tf

    def out_of_range(m):
        sub = m.subgraphs[0]
        m.buffers[sub.tensors[sub.operators[0].inputs[1]].buffer].data = np.array([1, 6], "<i4").view(np.uint8)

    path = tmp_path / "m.tflite"
    path.write_bytes(edit(convert(lambda x: tf.gather(x, [1, 2], axis=1), (2, 6)), out_of_range))
    with pytest.raises(TinylrError, match=r"GATHER: index 6 is outside \[0, 6\) along axis 1"):
        codegen.generate(path, tmp_path / "src", "m")
