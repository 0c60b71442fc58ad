"""CONV_2D parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for
bit, over shapes, strides, padding, dilation, groups, quantization granularity, fused
activations, bias and the quantization edge cases; plus the padding arithmetic itself
and a small CNN through the arena planner."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops import build_spatial as b
from tinylr import codegen, ir, quant
from tinylr.errors import TinylrError
from tinylr.ops import _spatial

# id -> (input_hw, channels, filters, kernel, options)
CASES = {
    "3x3_s1_same_relu": ((9, 7), 3, 5, 3, dict(activation="relu")),
    "3x3_s2_same": ((8, 8), 4, 6, 3, dict(strides=2)),
    "3x3_s2_valid_relu6": ((9, 7), 3, 5, 3, dict(strides=2, padding="valid", activation="relu6")),
    "3x2_kernel_2x1_strides": ((10, 6), 5, 7, (3, 2), dict(strides=(2, 1))),
    "5x5_s2_same_odd_padding": ((10, 7), 3, 4, 5, dict(strides=2)),
    "dilation_2_same": ((11, 9), 3, 4, 3, dict(dilation=2, activation="relu")),
    "dilation_2x3_valid": ((12, 13), 2, 3, 3, dict(dilation=(2, 3), padding="valid")),
    "pointwise_1x1": ((5, 5), 8, 3, 1, {}),
    "1x1_image_3x3_same": ((1, 1), 6, 5, 3, {}),
    "kernel_larger_than_image": ((3, 4), 2, 3, 5, {}),
    "per_tensor_s2_relu": ((7, 6), 3, 5, 3, dict(strides=2, per_channel=False, activation="relu")),
    "grouped_2": ((6, 5), 4, 6, 3, dict(groups=2)),
    "batch_2": ((5, 4), 3, 3, 3, dict(batch=2)),
    "positive_input_zero_point_-128": ((7, 7), 3, 4, 3, dict(calibration=(0.0, 6.0))),
    "zero_filter_channel": ((6, 6), 3, 5, 3, dict(zero_channel=2)),
    "one_in_one_out_channel": ((6, 5), 1, 1, 3, dict(activation="relu6")),
}


def _model(case: str) -> bytes:
    hw, channels, filters, kernel, options = CASES[case]
    return b.conv(hw, channels, filters, kernel, **options)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_conv_2d_is_bit_exact_with_tflm(tmp_path, case):
    graph = b.assert_bit_exact(_model(case), tmp_path, opcodes=["CONV_2D"]).graph
    weights = graph.tensors[graph.operators[0].inputs[1]]
    per_channel = CASES[case][4].get("per_channel", True) and weights.shape[0] > 1
    assert weights.quantization.per_channel == per_channel


def _drop_bias(model):
    for op in model.subgraphs[0].operators:
        op.inputs = op.inputs[:2]


@pytest.mark.slow
def test_conv_2d_without_bias_input(tmp_path):
    model = b.edit(_model("3x3_s2_same"), _drop_bias)
    graph = b.assert_bit_exact(model, tmp_path, opcodes=["CONV_2D"]).graph
    assert len(graph.operators[0].inputs) == 2


@pytest.mark.slow
def test_relu_n1_to_1_clamp(tmp_path):
    """The converter rarely fuses RELU_N1_TO_1, but TFLM applies it: set it on a conv
    and check both bounds (±1 in real units) bind, bit-exactly."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def fuse(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.RELU_N1_TO_1

    parity = b.assert_bit_exact(b.edit(_model("3x3_s2_same"), fuse), tmp_path, opcodes=["CONV_2D"])
    out = parity.graph.tensors[parity.graph.outputs[0]]
    assert parity.graph.operators[0].options["fused_activation_function"] == "RELU_N1_TO_1"
    bounds = [out.zero_point + round(v / out.scale) for v in (-1.0, 1.0)]
    assert [parity.outputs.min(), parity.outputs.max()] == bounds and -128 < bounds[0] < bounds[1] < 127


@pytest.mark.slow
def test_multiplier_above_one_takes_the_left_shift(tmp_path):
    """An output scale below input_scale * filter_scale gives multipliers > 1 (positive
    shifts), the path where TFLM shifts the accumulator left before the high multiply."""
    model = _model("3x3_s1_same_relu")
    graph = ir.parse(model)
    op = graph.operators[0]
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    new_scale = float(x.scale * w.quantization.scale.min() * 0.7)

    def shrink_output_scale(m):
        m.subgraphs[0].tensors[op.outputs[0]].quantization.scale = [new_scale]

    edited = b.edit(model, shrink_output_scale)
    b.assert_bit_exact(edited, tmp_path, opcodes=["CONV_2D"])
    shifts = b.const_array(tmp_path / "src", "op0_shift")
    assert len(shifts) == 5 and min(shifts) > 0, shifts


@pytest.mark.slow
def test_per_tensor_conv_multiplier_uses_the_double_product(tmp_path):
    """FULLY_CONNECTED takes float32(input_scale * filter_scale) for per-tensor weights;
    TFLM's conv broadcasts the filter scale and multiplies in double. Pick a filter scale
    where the two give different multipliers and check we follow the conv rule."""
    model = _model("per_tensor_s2_relu")
    graph = ir.parse(model)
    op = graph.operators[0]
    a = np.float32(graph.tensors[op.inputs[0]].scale)
    c = np.float32(graph.tensors[op.outputs[0]].scale)
    s = np.float32(graph.tensors[op.inputs[1]].scale)
    for _ in range(20000):
        s = np.nextafter(s, np.float32(1.0), dtype=np.float32)
        via_double = quant.quantize_multiplier(float(np.float64(a) * np.float64(s) / np.float64(c)))
        via_float = quant.quantize_multiplier(float(np.float64(np.float32(a * s)) / np.float64(c)))
        if via_double != via_float:
            break
    else:
        pytest.fail("no filter scale separates the float32 and double products")

    def set_filter_scale(m):
        m.subgraphs[0].tensors[op.inputs[1]].quantization.scale = [float(s)]

    edited = b.edit(model, set_filter_scale)
    b.assert_bit_exact(edited, tmp_path, opcodes=["CONV_2D"])
    assert b.const_array(tmp_path / "src", "op0_multiplier") == [via_double[0]] * 5


@pytest.mark.slow
def test_asymmetric_filters_are_rejected(tmp_path):
    """TFLM's int8 conv ignores a filter zero point; a model with one must not pass."""
    def shift_zero_point(m):
        weights = m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[1]]
        weights.quantization.zeroPoint = [3] * len(weights.quantization.scale)

    path = tmp_path / "m.tflite"
    path.write_bytes(b.edit(_model("3x3_s2_same"), shift_zero_point))
    with pytest.raises(TinylrError, match="filter zero points must be 0"):
        codegen.generate(path, tmp_path / "src", "bad")
    assert not (tmp_path / "src").exists()


@pytest.mark.slow
def test_small_cnn_composes_through_the_arena(tmp_path):
    """conv -> depthwise -> average pool -> reshape -> dense: every op generated (the
    reshape as an alias), the planner reuses the arena, and the whole network is
    bit-exact with TFLM."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(5)
    layers = tf.keras.layers
    inp = tf.keras.Input((12, 10, 3), batch_size=1)
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    h = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6")(h)
    h = layers.AveragePooling2D(2)(h)
    h = layers.Reshape((-1,))(h)
    h = layers.Dense(10)(h)
    model = b.convert(tf.keras.Model(inp, h), (1, 12, 10, 3), seed=5)
    graph = b.assert_bit_exact(model, tmp_path).graph
    assert graph.opcodes == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]
    manifest = codegen.generate(tmp_path / "m.tflite", tmp_path / "src2", "cnn")
    conv_out, depthwise_out, pooled = (graph.tensors[op.outputs[0]].nbytes for op in graph.operators[:3])
    # conv (6x5x8) and depthwise (6x5x16) outputs are alive together; the pooled
    # tensor (and its reshape) reuses the conv output's bytes
    assert manifest["arena_bytes"] == conv_out + depthwise_out < conv_out + depthwise_out + pooled


# --- the padding arithmetic, against a brute-force reading of TFLite's rules ---------

WINDOWS = [
    (padding, in_size, filter_size, stride, dilation)
    for padding in ("SAME", "VALID")
    for in_size in (1, 2, 5, 8, 11)
    for filter_size, stride, dilation in ((1, 1, 1), (3, 1, 1), (3, 2, 1), (5, 2, 1), (3, 1, 2), (2, 3, 1), (4, 1, 3))
    if padding == "SAME" or (filter_size - 1) * dilation + 1 <= in_size  # VALID needs the filter to fit
]


@pytest.mark.parametrize("padding,in_size,filter_size,stride,dilation", WINDOWS)
def test_window_matches_tflite_padding(padding, in_size, filter_size, stride, dilation):
    effective = (filter_size - 1) * dilation + 1
    w = _spatial.window(padding, in_size, filter_size, stride, dilation)
    # TensorFlow's GetWindowedOutputSize
    expected_out = -(-in_size // stride) if padding == "SAME" else -(-(in_size - effective + 1) // stride)
    assert w.out_size == expected_out
    total = max((expected_out - 1) * stride + effective - in_size, 0)
    assert w.pad == total // 2 and (padding == "SAME" or w.pad == 0)
    interior = [o for o in range(w.out_size)
                if all(0 <= o * stride - w.pad + k * dilation < in_size for k in range(filter_size))]
    assert list(range(w.interior_lo, w.interior_hi)) == interior
