"""DEPTHWISE_CONV_2D parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter,
bit for bit, over shapes, strides, padding, dilation, depth multipliers, quantization
granularity, fused activations and bias."""

from __future__ import annotations

import pytest

from tests.ops import build_spatial as b
from tinylr import codegen
from tinylr.errors import TinylrError

# id -> (input_hw, channels, kernel, options)
CASES = {
    "3x3_s1_same_relu": ((9, 7), 5, 3, dict(activation="relu")),
    "3x3_s2_same_multiplier_2": ((8, 9), 3, 3, dict(strides=2, multiplier=2)),
    "3x3_s2_valid_relu6": ((9, 7), 7, 3, dict(strides=2, padding="valid", activation="relu6")),
    "3x2_kernel_1x2_strides_multiplier_3": ((7, 10), 2, (3, 2), dict(strides=(1, 2), multiplier=3)),
    "5x5_s2_same_odd_padding": ((10, 7), 3, 5, dict(strides=2)),
    "dilation_2_same": ((11, 9), 4, 3, dict(dilation=2, activation="relu6")),
    "dilation_3x2_valid": ((12, 9), 3, 3, dict(dilation=(3, 2), padding="valid")),
    "1x1_kernel": ((4, 5), 6, 1, dict(multiplier=2)),
    "1x1_image_3x3_same": ((1, 1), 6, 3, {}),
    "kernel_larger_than_image": ((4, 3), 3, 5, {}),
    "per_tensor_multiplier_2": ((6, 7), 3, 3, dict(multiplier=2, per_channel=False, activation="relu")),
    "batch_2": ((5, 4), 3, 3, dict(batch=2)),
    "positive_input_zero_point_-128": ((7, 7), 5, 3, dict(calibration=(0.0, 6.0))),
    "zero_filter_channel": ((6, 6), 4, 3, dict(zero_channel=0)),
}


def _model(case: str) -> bytes:
    hw, channels, kernel, options = CASES[case]
    return b.depthwise(hw, channels, kernel, **options)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_depthwise_conv_2d_is_bit_exact_with_tflm(tmp_path, case):
    graph = b.assert_bit_exact(_model(case), tmp_path, opcodes=["DEPTHWISE_CONV_2D"]).graph
    op = graph.operators[0]
    assert op.options["depth_multiplier"] == CASES[case][3].get("multiplier", 1)
    weights = graph.tensors[op.inputs[1]]
    assert weights.quantization.per_channel == CASES[case][3].get("per_channel", True)


@pytest.mark.slow
def test_depthwise_without_bias_input(tmp_path):
    def drop_bias(model):
        for op in model.subgraphs[0].operators:
            op.inputs = op.inputs[:2]

    graph = b.assert_bit_exact(b.edit(_model("3x3_s2_same_multiplier_2"), drop_bias), tmp_path,
                               opcodes=["DEPTHWISE_CONV_2D"]).graph
    assert len(graph.operators[0].inputs) == 2


@pytest.mark.slow
def test_depth_multiplier_option_must_agree_with_shapes(tmp_path):
    """TFLM indexes by the stored option; a model whose option disagrees with its
    shapes is refused with a message naming the option."""
    def break_multiplier(model):
        model.subgraphs[0].operators[0].builtinOptions.depthMultiplier = 3

    path = tmp_path / "m.tflite"
    path.write_bytes(b.edit(_model("3x3_s2_same_multiplier_2"), break_multiplier))
    with pytest.raises(TinylrError, match="depth_multiplier 3 disagrees"):
        codegen.generate(path, tmp_path / "src", "bad")
