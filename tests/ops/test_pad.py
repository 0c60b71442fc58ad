"""PAD / PADV2 parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit
for bit, over ranks 2 to 5, padding on every dimension (batch and channels included),
asymmetric amounts, the zero-point pad value and PADV2 constants."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from tests.ops import build_spatial as b
from tinylr import codegen
from tinylr.errors import TinylrError

# id -> (input shape, paddings, constant value or None, calibration range)
CASES = {
    "nhwc_spatial": ((1, 9, 7, 3), [[0, 0], [1, 2], [0, 1], [0, 0]], None, (-1.0, 1.0)),
    "nhwc_channels_and_batch": ((1, 4, 5, 3), [[1, 0], [0, 0], [2, 0], [2, 1]], None, (-1.0, 1.0)),
    "zero_point_-128": ((1, 6, 5, 2), [[0, 0], [2, 2], [1, 3], [0, 0]], None, (0.0, 4.0)),
    "rank_2": ((1, 10), [[0, 0], [3, 2]], None, (-2.0, 1.0)),
    "rank_3": ((1, 5, 6), [[0, 0], [1, 1], [0, 2]], None, (-1.0, 3.0)),
    "rank_5": ((1, 2, 3, 4, 2), [[0, 0], [1, 0], [0, 2], [1, 1], [0, 1]], None, (-1.0, 1.0)),
    "padv2_positive_constant": ((1, 6, 5, 4), [[0, 0], [1, 2], [2, 0], [0, 1]], 0.5, (-1.0, 1.0)),
    "padv2_negative_constant": ((1, 3, 8), [[0, 0], [2, 1], [1, 1]], -0.75, (-1.0, 2.0)),
}


@cache  # shared by several tests in one worker: convert once
def _model(case: str) -> bytes:
    import tensorflow as tf

    shape, paddings, constant, calibration = CASES[case]
    if constant is None:
        fn = lambda t: tf.pad(t, paddings)
    else:
        fn = lambda t: tf.pad(t, paddings, constant_values=constant)
    return b.tf_function(fn, shape, calibration=calibration)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_pad_is_bit_exact_with_tflm(tmp_path, case):
    shape, paddings, constant, _ = CASES[case]
    expected_op = "PAD" if constant is None else "PADV2"
    parity = b.assert_bit_exact(_model(case), tmp_path, opcodes=[expected_op])
    graph = parity.graph
    out = graph.tensors[graph.outputs[0]]
    assert list(out.shape) == [d + lo + hi for d, (lo, hi) in zip(shape, paddings)]
    # the padded border holds the pad value in every sample: the zero point for PAD
    # (real 0), the quantized constant for PADV2
    pad_value = out.zero_point if constant is None else int(graph.tensors[graph.operators[0].inputs[2]].data.ravel()[0])
    outputs = parity.outputs.reshape(-1, *out.shape)
    lead = next(i for i, (lo, hi) in enumerate(paddings) if lo or hi)  # first padded dimension
    lo, hi = paddings[lead]
    edge = outputs.take(range(lo) if lo else range(out.shape[lead] - hi, out.shape[lead]), axis=lead + 1)
    assert (edge == pad_value).all()


@pytest.mark.slow
def test_negative_paddings_are_rejected(tmp_path):
    def crop(model):
        sub = model.subgraphs[0]
        paddings = model.buffers[sub.tensors[sub.operators[0].inputs[1]].buffer]
        values = np.frombuffer(bytes(paddings.data), dtype="<i4").copy()
        values[2] = -1
        paddings.data = np.frombuffer(values.tobytes(), dtype=np.uint8)

    path = tmp_path / "m.tflite"
    path.write_bytes(b.edit(_model("nhwc_spatial"), crop))
    with pytest.raises(TinylrError, match="negative paddings"):
        codegen.generate(path, tmp_path / "src", "bad")
