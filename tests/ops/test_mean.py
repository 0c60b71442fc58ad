"""MEAN parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit:
global average pooling (keep_dims true and false), other axes and ranks, counts that
are and are not powers of two, rescaling up and down, and batch."""

from __future__ import annotations

import re
from functools import cache

import pytest

from tests.ops import build_spatial as b
from tinylr import ir
from tinylr.ops import mean

# id -> (input shape, axes, keep_dims, calibration range)
CASES = {
    "global_pool": ((1, 6, 5, 4), (1, 2), False, (-1.0, 1.0)),
    "global_pool_keep_dims": ((1, 7, 3, 6), (1, 2), True, (-1.0, 1.0)),
    "global_pool_power_of_two_count": ((1, 8, 8, 3), (1, 2), False, (-2.0, 1.0)),
    "global_pool_large_count": ((1, 24, 20, 2), (2, 1), True, (0.0, 6.0)),
    "global_pool_batch_2": ((2, 5, 3, 7), (1, 2), False, (-1.0, 1.0)),
    "channels": ((1, 6, 5, 4), (-1,), False, (-1.0, 1.0)),
    "height_only": ((1, 5, 4, 3), (1,), True, (-1.0, 3.0)),
    "rank_3_middle_axis": ((1, 9, 5), (1,), False, (-1.0, 1.0)),
    "interleaved_axes": ((2, 3, 4, 5), (0, 2), False, (-1.0, 1.0)),
    "all_axes": ((1, 4, 3, 2), (0, 1, 2, 3), False, (-1.0, 1.0)),
}


@cache  # shared by several tests in one worker: convert once
def _model(case: str) -> bytes:
    import tensorflow as tf

    shape, axes, keep_dims, calibration = CASES[case]
    return b.tf_function(lambda t: tf.reduce_mean(t, axis=list(axes), keepdims=keep_dims), shape,
                         calibration=calibration)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_mean_is_bit_exact_with_tflm(tmp_path, case):
    shape, axes, keep_dims, _ = CASES[case]
    graph = b.assert_bit_exact(_model(case), tmp_path, opcodes=["MEAN"]).graph
    op = graph.operators[0]
    assert op.options["keep_dims"] == keep_dims
    assert graph.tensors[op.outputs[0]].size * _count(shape, axes) == graph.tensors[op.inputs[0]].size


def _count(shape, axes):
    n = 1
    for a in {a % len(shape) for a in axes}:
        n *= shape[a]
    return n


@pytest.mark.slow
@pytest.mark.parametrize("case,factor,shift_sign", [("global_pool", 3.0, -1), ("channels", 0.15, 1)])
def test_mean_rescaling_both_ways_is_bit_exact(tmp_path, case, factor, shift_sign):
    """The output scale against input_scale / count decides the final shift: a larger
    output scale gives a right shift, a much smaller one a left shift (TFLM shifts the
    sum left before the high multiply). Both must match TFLM."""
    model = _model(case)
    graph = ir.parse(model)
    op = graph.operators[0]
    x_scale = graph.tensors[op.inputs[0]].scale

    def set_output_scale(m):
        m.subgraphs[0].tensors[op.outputs[0]].quantization.scale = [x_scale * factor]

    b.assert_bit_exact(b.edit(model, set_output_scale), tmp_path, opcodes=["MEAN"])
    shift = int(re.search(r"\.shift = (-?\d+),", (tmp_path / "src" / "spatial.c").read_text()).group(1))
    assert shift * shift_sign > 0


def test_mean_multiplier_folds_the_count_as_tflm_does():
    """QuantizeMultiplier(1.0) = (2^30, 1); a count of 30 gives s = 4:
    (2^30 << 4) // 30 = 572662306, shift 1 - 4 = -3."""
    assert mean.requantization(0.5, 0.5, 30) == (572662306, -3)
    # s is capped at 31 + shift: QuantizeMultiplier(2^-25) = (2^30, -24), so a count
    # of 2^20 folds in only 2^7 and the rest of the division is lost, as in TFLM
    assert mean.requantization(2.0 ** -25, 1.0, 1 << 20) == ((1 << 30 << 7) >> 20, -31)
