"""Elementwise activations (LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, LEAKY_RELU, PRELU):
generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for bit, on all 256
int8 inputs, at several input/output scales and zero points from different
calibration ranges, alone and between FULLY_CONNECTED layers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.build_activations import ALL_INT8, activation, layer_model, with_tensor_quantization
from tinylr import codegen, hostcheck, ir, reference
from tinylr.errors import TinylrError
from tinylr.ops import _lut, prelu

LUT_OPS = ("LOGISTIC", "TANH", "RELU", "RELU6", "HARD_SWISH", "LEAKY_RELU")
# (spread, centre) of the calibration data: different input scales and zero points
CALIBRATIONS = ((1.0, 0.0), (6.0, 2.0))


def _generate(tmp_path, model: bytes, name: str):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    codegen.generate(path, tmp_path / name, name)
    return ir.load(path), tmp_path / name


def _exhaustive_inputs(size: int) -> np.ndarray:
    """Every int8 value at every position, in ascending, descending and shuffled order."""
    rng = np.random.default_rng(size)
    reps = -(-size // 256)
    rows = [np.tile(ALL_INT8, reps), np.tile(ALL_INT8[::-1], reps)]
    rows += [np.roll(np.tile(rng.permutation(ALL_INT8), reps), k) for k in range(4)]
    return np.stack([r[:size] for r in rows])


def _assert_bit_exact(model: bytes, src, inputs: np.ndarray) -> np.ndarray:
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(src, inputs)
    result = hostcheck.compare(expected, actual)
    assert result["bit_exact"], result
    return actual


@pytest.mark.slow
@pytest.mark.parametrize("spread,centre", CALIBRATIONS)
@pytest.mark.parametrize("opcode", LUT_OPS)
def test_activation_is_bit_exact_on_every_int8_value(tmp_path, opcode, spread, centre):
    model = layer_model(lambda x: activation(opcode)(x), (256,), spread=spread, centre=centre,
                        seed=len(opcode))
    graph, src = _generate(tmp_path, model, "act")
    assert graph.opcodes == [opcode]
    actual = _assert_bit_exact(model, src, _exhaustive_inputs(256))
    # the whole table is in play: a wrong index or table would show
    assert len(np.unique(actual)) > 20
    assert "tinylr_lut_s8(" in (src / "act.c").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("opcode", ("LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU"))
def test_activation_between_dense_layers(tmp_path, opcode):
    """The activation's scales come from the layer before it, batch of 3 samples."""
    import tensorflow as tf

    def net(x):
        h = tf.keras.layers.Dense(24)(x)
        return tf.keras.layers.Dense(6)(activation(opcode)(h))

    model = layer_model(net, (10,), batch=3, spread=2.0, seed=5)
    graph, src = _generate(tmp_path, model, "net")
    assert graph.opcodes == ["FULLY_CONNECTED", opcode, "FULLY_CONNECTED"]
    inputs = np.random.default_rng(3).integers(-128, 128, size=(200, 30), dtype=np.int8)
    _assert_bit_exact(model, src, inputs)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", (0.05, 0.3, 1.7))
def test_leaky_relu_alphas(tmp_path, alpha):
    model = layer_model(lambda x: activation("LEAKY_RELU", alpha=alpha)(x), (256,), spread=3.0, centre=-1.0)
    graph, src = _generate(tmp_path, model, "leaky")
    assert graph.operators[0].options["alpha"] == pytest.approx(alpha)
    _assert_bit_exact(model, src, _exhaustive_inputs(256))


@pytest.mark.slow
@pytest.mark.parametrize("shape,shared_axes", [
    ((4, 4, 3), [1, 2]),   # one alpha per channel
    ((4, 4, 3), None),     # one alpha per element
    ((3, 5, 2), [2]),      # alpha [3, 1, 2]: broadcast in the middle
    ((20,), None),
])
def test_prelu_is_bit_exact(tmp_path, shape, shared_axes):
    import tensorflow as tf

    layer = lambda x: tf.keras.layers.PReLU(  # noqa: E731
        alpha_initializer=tf.keras.initializers.RandomUniform(-0.6, 0.9, seed=1), shared_axes=shared_axes)(x)
    model = layer_model(layer, shape, batch=2, spread=2.0, centre=-0.5, seed=2)
    graph, src = _generate(tmp_path, model, "prelu_net")  # a model named "prelu" would clash with the kernel header
    assert graph.opcodes == ["PRELU"]
    size = 2 * int(np.prod(shape))
    inputs = np.concatenate([
        _exhaustive_inputs(size),
        np.random.default_rng(6).integers(-128, 128, size=(150, size), dtype=np.int8),
    ])
    _assert_bit_exact(model, src, inputs)


def test_prelu_alpha_period():
    alpha = np.arange(6, dtype=np.int8).reshape(3, 1, 2)
    out_shape = (2, 3, 5, 2)
    period = prelu.alpha_period(alpha, out_shape)
    full = np.broadcast_to(alpha, out_shape).reshape(-1)
    assert len(period) == 30
    assert np.array_equal(np.resize(period, full.size), full)
    assert list(prelu.alpha_period(np.array([[[4, 5]]], dtype=np.int8), out_shape)) == [4, 5]
    assert list(prelu.alpha_period(np.array(7, dtype=np.int8).reshape(()), out_shape)) == [7]


FLOAT_FUNCTIONS = {
    "LOGISTIC": lambda v: 1 / (1 + np.exp(-v)),
    "TANH": np.tanh,
    "RELU": lambda v: np.maximum(v, 0),
    "HARD_SWISH": lambda v: v * np.clip(v + 3, 0, 6) / 6,
    "LEAKY_RELU": lambda v: np.where(v >= 0, v, 0.2 * v),
}


@pytest.mark.slow
@pytest.mark.parametrize("opcode", sorted(FLOAT_FUNCTIONS))
def test_tables_follow_the_float_function(opcode):
    """Not only TFLM's answers but the right answers: the table, dequantized, is the
    float activation of the dequantized input to within the fixed-point error."""
    model = layer_model(lambda x: activation(opcode)(x), (16,), spread=3.0, centre=0.5)
    graph = ir.parse(model)
    op = graph.operators[0]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    options = ("LeakyReluOptions", {"alpha": op.options["alpha"]}) if opcode == "LEAKY_RELU" else None
    table = np.array(_lut.table(op, graph, options))
    exact = FLOAT_FUNCTIONS[opcode](x.scale * (ALL_INT8.astype(np.float64) - x.zero_point))
    ideal = np.clip(np.round(exact / y.scale) + y.zero_point, -128, 127)
    assert np.abs(table - ideal).max() <= 1


@pytest.mark.slow
def test_relu6_keeps_tflms_input_scale_quirk():
    """TFLM's int8 RELU6 clamps in the input's units and never requantizes, although the
    converter gives its output another scale; the table must be exactly that."""
    model = layer_model(lambda x: activation("RELU6")(x), (16,), spread=4.0, centre=1.0)
    graph = ir.parse(model)
    op = graph.operators[0]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    assert (x.scale, x.zero_point) != (y.scale, y.zero_point)
    six = x.zero_point + int(np.floor(float(np.float32(6.0) / np.float32(x.scale)) + 0.5))  # float32 quotient, as TFLM
    expected = np.clip(ALL_INT8.astype(int), x.zero_point, min(six, 127))
    assert list(_lut.table(op, graph)) == list(expected)


@pytest.mark.slow
def test_parameters_tflm_rejects_are_reported(tmp_path):
    """HARD_SWISH with an output scale far below input_scale / 128 needs a left shift that
    TFLM refuses; generation must fail with a clear error and leave no sources."""
    model = layer_model(lambda x: activation("HARD_SWISH")(x), (16,))
    graph = ir.parse(model)
    x_scale = graph.tensors[graph.inputs[0]].scale
    bad = with_tensor_quantization(model, graph.outputs[0], x_scale / 1000.0, 0)
    path = tmp_path / "bad.tflite"
    path.write_bytes(bad)
    with pytest.raises(TinylrError, match="TFLM rejects HARD_SWISH"):
        codegen.generate(path, tmp_path / "src", "bad")
    assert not (tmp_path / "src").exists()


@pytest.mark.slow
def test_same_parameters_share_one_reference_run():
    model = layer_model(lambda x: activation("TANH")(x), (16,))
    graph = ir.parse(model)
    before = _lut._reference_table.cache_info().hits
    first = _lut.table(graph.operators[0], graph)
    second = _lut.table(graph.operators[0], graph)
    assert first == second and len(first) == 256
    assert _lut._reference_table.cache_info().hits > before


@pytest.mark.slow
def test_every_op_of_this_family_on_the_emulated_board(tmp_path):
    """One float32-boundary model with all of these ops, cross-compiled for the nRF52840
    (Cortex-M4F: hardware float, ARM shifts and conversions) and run in QEMU: the
    outputs are TFLM's, float32 bit for bit."""
    import tensorflow as tf

    from tinylr import build
    from tinylr.emulate import emulate
    from tinylr.targets import load_target

    def net(x):
        h = activation("TANH")(tf.keras.layers.Dense(24)(x))
        h = activation("HARD_SWISH")(tf.keras.layers.Dense(16)(h))
        h = activation("LEAKY_RELU")(tf.keras.layers.PReLU()(h))
        h = tf.keras.layers.Dense(10)(activation("LOGISTIC")(activation("RELU")(h)))
        return tf.keras.layers.Softmax()(h)

    model = layer_model(net, (12,), spread=2.0, seed=9, float_io=True)
    graph, src = _generate(tmp_path, model, "family")
    assert set(graph.opcodes) >= {"QUANTIZE", "TANH", "HARD_SWISH", "PRELU", "LEAKY_RELU", "RELU",
                                  "LOGISTIC", "SOFTMAX", "DEQUANTIZE"}
    inputs = (np.random.default_rng(8).normal(size=(12, 12)) * 2).astype(np.float32)
    expected = reference.run(model, inputs)
    target = load_target("nrf52840")
    firmware = build.build_firmware(target, src, inputs, tmp_path / "firmware")
    result = emulate(firmware.emu_elf or firmware.elf, target)
    actual = np.stack([np.frombuffer(o, dtype=np.float32) for o in result.outputs])
    assert hostcheck.compare(expected, actual)["bit_exact"]
