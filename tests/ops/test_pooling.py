"""AVERAGE_POOL_2D and MAX_POOL_2D parity: generated C (host gcc, ASan+UBSan) vs the
TFLM interpreter, bit for bit, over window sizes, strides, SAME/VALID padding (windows
clipped at the borders, so the average's divisor varies), fused activations and batch."""

from __future__ import annotations

import pytest

from tests.ops import build_spatial as b
from tinylr import codegen
from tinylr.errors import TinylrError

OPCODES = {"avg": "AVERAGE_POOL_2D", "max": "MAX_POOL_2D"}
# id -> (input_hw, channels, size, options)
CASES = {
    "2x2_valid": ((8, 6), 4, 2, {}),
    "3x3_s2_same_odd_image": ((9, 7), 5, 3, dict(strides=2, padding="same")),
    "3x3_s1_same_border_windows": ((5, 6), 3, 3, dict(strides=1, padding="same")),
    "3x2_window_1x2_strides_same": ((7, 8), 3, (3, 2), dict(strides=(1, 2), padding="same")),
    "window_larger_than_image_same": ((3, 4), 2, 5, dict(strides=2, padding="same")),
    "whole_image_valid": ((5, 3), 7, (5, 3), {}),
    "stride_larger_than_window": ((10, 9), 2, 2, dict(strides=3, padding="same")),
    "fused_relu": ((6, 6), 3, 2, dict(activation="relu", calibration=(-3.0, 1.0))),
    "batch_2": ((4, 5), 3, 2, dict(batch=2, padding="same")),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("case", list(CASES))
def test_pool_is_bit_exact_with_tflm(tmp_path, kind, case):
    hw, channels, size, options = CASES[case]
    graph = b.assert_bit_exact(b.pool(kind, hw, channels, size, **options), tmp_path, opcodes=[OPCODES[kind]]).graph
    activation = {"relu": "RELU", "relu6": "RELU6"}.get(options.get("activation"), "NONE")
    assert graph.operators[0].options["fused_activation_function"] == activation


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_fused_activation_clamp_is_exercised(tmp_path, kind):
    """RELU6 on an input range well beyond 6: both bounds of the clamp must bind."""
    parity = b.assert_bit_exact(b.pool(kind, (6, 6), 3, 2, activation="relu6", calibration=(-2.0, 9.0)), tmp_path)
    graph = parity.graph
    assert graph.operators[0].options["fused_activation_function"] == "RELU6"
    out = graph.tensors[graph.outputs[0]]
    low, high = out.zero_point, out.zero_point + round(6.0 / out.scale)
    assert parity.outputs.min() == low > -128 and parity.outputs.max() == high < 127


@pytest.mark.slow
def test_rescaling_pool_is_rejected(tmp_path):
    """TFLM refuses an int8 pool whose output scale differs from its input's."""
    model = b.pool("avg", (8, 6), 4, 2)

    def rescale_output(m):
        sub = m.subgraphs[0]
        q = sub.tensors[sub.operators[0].outputs[0]].quantization
        q.scale = [q.scale[0] * 2]

    path = tmp_path / "m.tflite"
    path.write_bytes(b.edit(model, rescale_output))
    with pytest.raises(TinylrError, match="input and output quantization must match"):
        codegen.generate(path, tmp_path / "src", "bad")
