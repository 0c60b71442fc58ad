"""FULLY_CONNECTED parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter,
bit for bit, over quantization granularity, fused activations, bias and batch."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import dense_stack
from tinylr import codegen, hostcheck, ir, reference

CASES = [
    # widths, activation, per_channel, use_bias, batch
    ((20, 16, 5), "relu", True, True, 1),
    ((20, 16, 5), "relu", False, True, 1),
    ((64, 8, 128, 10), "relu", True, False, 1),   # a factored pair: 64->8 (no bias) ->128
    ((33, 7), None, True, True, 1),
    ((12, 24, 6), "relu6", True, True, 1),
    ((12, 24, 6), "relu6", False, False, 1),
    ((10, 9, 4), "relu", True, True, 3),           # batch > 1
    ((300, 40, 3), "relu", False, True, 1),        # long accumulation
]
# single layers whose own output is clamped by a fused activation
CLAMPED = [("relu", True), ("relu", False), ("relu6", True)]


@pytest.mark.slow
@pytest.mark.parametrize("widths,activation,per_channel,use_bias,batch", CASES)
def test_generated_fc_is_bit_exact_with_tflm(tmp_path, widths, activation, per_channel, use_bias, batch):
    model = dense_stack(widths, activation=activation, use_bias=use_bias, batch=batch,
                        per_channel=per_channel, seed=sum(widths))
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    graph = ir.load(path)
    assert set(graph.opcodes) == {"FULLY_CONNECTED"}
    weights = [graph.tensors[op.inputs[1]] for op in graph.operators]
    assert all(w.quantization.per_channel == per_channel for w in weights if w.shape[0] > 1)

    codegen.generate(path, tmp_path / "src", "fc")
    rng = np.random.default_rng(1)
    inputs = rng.integers(-128, 128, size=(300, batch * widths[0]), dtype=np.int8)
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    result = hostcheck.compare(expected, actual)
    assert result["bit_exact"], result


@pytest.mark.slow
@pytest.mark.parametrize("activation,per_channel", CLAMPED)
def test_fused_activation_clamp_is_bit_exact(tmp_path, activation, per_channel):
    model = dense_stack((24, 12), final_activation=activation, per_channel=per_channel, seed=7)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    codegen.generate(path, tmp_path / "src", "clamped")
    inputs = np.random.default_rng(2).integers(-128, 128, size=(300, 24), dtype=np.int8)
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    assert hostcheck.compare(expected, actual)["bit_exact"]
    # the clamp must actually be exercised, or a wrong activation range could hide
    assert (actual == actual.min()).mean() > 0.05


@pytest.mark.slow
def test_fc_weights_and_multipliers_land_in_flash(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(dense_stack((16, 8, 4), activation="relu"))
    codegen.generate(path, tmp_path / "src", "fc")
    data_c = (tmp_path / "src" / "fc_data.c").read_text()
    model_c = (tmp_path / "src" / "fc.c").read_text()
    assert "const int8_t tinylr_fc_op0_weights[128]" in data_c
    assert "const int32_t tinylr_fc_op0_multiplier[8]" in data_c
    # the only writable state is the arena; every parameter struct is const
    assert model_c.count("static const tinylr_fully_connected_params") == 2
    assert "static union" in model_c and "malloc" not in model_c


@pytest.mark.slow
def test_asymmetric_per_tensor_weights_use_the_general_loop(tmp_path):
    """int8 weights are symmetric in practice, but TFLM's per-tensor kernel applies a
    weights offset; an edited model with a nonzero weights zero point checks that path."""
    from tests.modelbuild import edit

    def shift_zero_point(m):
        sub = m.subgraphs[0]
        for op in sub.operators:
            weights = sub.tensors[op.inputs[1]]
            weights.quantization.zeroPoint = [5] * len(weights.quantization.scale)

    model = edit(dense_stack((16, 6), final_activation="relu", per_channel=False, seed=3), shift_zero_point)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert ir.load(path).tensors[ir.load(path).operators[0].inputs[1]].quantization.zero_point[0] == 5
    codegen.generate(path, tmp_path / "src", "asym")
    assert ".weights_offset = -5" in (tmp_path / "src" / "asym.c").read_text()
    inputs = np.random.default_rng(4).integers(-128, 128, size=(300, 16), dtype=np.int8)
    assert hostcheck.compare(reference.run(model, inputs), hostcheck.run_host(tmp_path / "src", inputs))["bit_exact"]
