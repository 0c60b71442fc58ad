"""QUANTIZE and DEQUANTIZE parity: generated C (host gcc, ASan+UBSan) vs the TFLM
interpreter, bit for bit (float outputs: the same float32 bits).

- int8 -> int8 QUANTIZE, DEQUANTIZE and float -> int8 QUANTIZE inside an int8 graph
  (what the converter emits after a fake-quant range, as quantization-aware training
  leaves them);
- float32 model boundaries: QUANTIZE at the input, DEQUANTIZE at the output;
- one-op models at chosen parameters: exact rounding ties, clamping, extreme zero points.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.build_activations import ALL_INT8, FakeQuant, activation, layer_model
from tinylr import codegen, hostcheck, ir, reference
from tinylr.ops import _lut


def _generate_and_compare(tmp_path, model: bytes, inputs: np.ndarray, name="q") -> ir.Graph:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    codegen.generate(path, tmp_path / "src", name)
    result = hostcheck.compare(reference.run(model, inputs), hostcheck.run_host(tmp_path / "src", inputs))
    assert result["bit_exact"], result
    return ir.load(path)


def _signature(graph: ir.Graph) -> list[tuple[str, str, str]]:
    return [(op.opcode, graph.tensors[op.inputs[0]].dtype, graph.tensors[op.outputs[0]].dtype)
            for op in graph.operators]


@pytest.mark.slow
@pytest.mark.parametrize("lo,hi,spread", [(-1.0, 2.0, 3.0), (0.1, 0.9, 1.0), (-0.3, 0.25, 6.0)])
def test_requantize_and_float_round_trip_inside_an_int8_graph(tmp_path, lo, hi, spread):
    """sigmoid -> fake-quant(lo, hi): the converter requantizes the sigmoid's fixed
    1/256 scale to the fake-quant range (int8 QUANTIZE), then goes through float to the
    output scale (DEQUANTIZE, float QUANTIZE)."""
    model = layer_model(lambda x: FakeQuant(lo, hi)(activation("LOGISTIC")(x)), (256,), spread=spread)
    inputs = np.stack([ALL_INT8, ALL_INT8[::-1], np.random.default_rng(0).permutation(ALL_INT8)])
    graph = _generate_and_compare(tmp_path, model, inputs)
    assert _signature(graph) == [
        ("LOGISTIC", "INT8", "INT8"), ("QUANTIZE", "INT8", "INT8"),
        ("DEQUANTIZE", "INT8", "FLOAT32"), ("QUANTIZE", "FLOAT32", "INT8"),
    ]


def _float_inputs(scale: float, zero_point: int, size: int, rows: int, seed: int) -> np.ndarray:
    """Floats around the quantization grid: on it, halfway between points, one ulp
    either side of halfway, far outside the int8 range, signed zeros and tiny values."""
    rng = np.random.default_rng(seed)
    k = rng.integers(-300, 300, size=(rows, size)) - zero_point
    halves = (k + 0.5).astype(np.float32) * np.float32(scale)
    special = np.array([0.0, -0.0, 1e-30, -1e-30, 1e6 * scale, -1e6 * scale, 127.5 * scale,
                        -128.5 * scale, (127.5 - zero_point) * scale, (-128.5 - zero_point) * scale],
                       dtype=np.float32)
    blocks = [
        (k.astype(np.float32) * np.float32(scale)),
        halves,
        np.nextafter(halves, np.float32(np.inf)),
        np.nextafter(halves, np.float32(-np.inf)),
        rng.normal(scale=60 * scale, size=(rows, size)).astype(np.float32),
        np.resize(special, (1, size)),
    ]
    return np.concatenate(blocks).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("opcode,spread,centre", [(None, 1.0, 0.0), ("TANH", 3.0, 1.0), ("RELU", 0.5, -0.2)])
def test_float_model_boundaries(tmp_path, opcode, spread, centre):
    """A float32-in, float32-out model: QUANTIZE (float -> int8) at the input,
    DEQUANTIZE (int8 -> float) at the output, compared as float32 bits."""
    import tensorflow as tf

    def net(x):
        h = tf.keras.layers.Dense(12)(x)
        return activation(opcode)(h) if opcode else h

    model = layer_model(net, (16,), spread=spread, centre=centre, seed=3, float_io=True)
    graph = ir.parse(model)
    x = graph.tensors[graph.operators[0].outputs[0]]
    inputs = _float_inputs(x.scale, x.zero_point, 16, rows=40, seed=1)
    graph = _generate_and_compare(tmp_path, model, inputs, name="floats")
    sig = _signature(graph)
    assert sig[0] == ("QUANTIZE", "FLOAT32", "INT8") and sig[-1] == ("DEQUANTIZE", "INT8", "FLOAT32")


@pytest.mark.slow
@pytest.mark.parametrize("scale,zero_point", [
    (2.0 ** -6, 0),        # power-of-two scale: exact halfway quotients, rounded away from zero
    (2.0 ** -3, -128),
    (0.0371, 127),
    (3.7e-5, -7),
    (12.5, 33),
])
def test_float_quantize_one_op(tmp_path, scale, zero_point):
    size = 64
    model = _lut.one_op_model("QUANTIZE", 1, None, (scale, zero_point), size, in_type="FLOAT32")
    inputs = _float_inputs(float(np.float32(scale)), zero_point, size, rows=30, seed=zero_point & 0xFF)
    _generate_and_compare(tmp_path, model, inputs)


@pytest.mark.slow
@pytest.mark.parametrize("scale,zero_point", [(2.0 ** -6, 0), (0.0371, 127), (3.7e-5, -128), (0.1, -5), (1e-38, 3)])
def test_dequantize_one_op(tmp_path, scale, zero_point):
    model = _lut.one_op_model("DEQUANTIZE", 2, (scale, zero_point), None, 256, out_type="FLOAT32")
    inputs = np.stack([ALL_INT8, ALL_INT8[::-1]])
    _generate_and_compare(tmp_path, model, inputs)


@pytest.mark.slow
@pytest.mark.parametrize("in_q,out_q", [
    ((0.05, 3), (0.07, -20)),
    ((0.05, -100), (0.005, 90)),   # multiplier > 1: a left shift, and clamping
    ((0.02, 10), (0.02, -10)),     # same scale, zero point moves
    ((1.0, 0), (300.0, 0)),        # almost everything rounds to the zero point
])
def test_int8_requantize_one_op(tmp_path, in_q, out_q):
    model = _lut.one_op_model("QUANTIZE", 1, in_q, out_q, 256)
    inputs = np.stack([ALL_INT8, ALL_INT8[::-1]])
    _generate_and_compare(tmp_path, model, inputs)


@pytest.mark.slow
def test_float_quantize_where_tflm_is_undefined(tmp_path):
    """TFLM converts round(x / scale) to int32 unchecked, undefined behaviour for NaN,
    infinities and quotients beyond int32 (x86 gives INT32_MIN, ARM saturates). The
    generated C defines them: saturation as on ARM, NaN to the zero point (ARM's
    conversion gives 0), and stays clean under the sanitizers."""
    zero_point = -3
    model = _lut.one_op_model("QUANTIZE", 1, None, (0.01, zero_point), 6, in_type="FLOAT32")
    path = tmp_path / "q.tflite"
    path.write_bytes(model)
    codegen.generate(path, tmp_path / "src", "q")
    inputs = np.array([[np.nan, np.inf, -np.inf, 3e38, -3e38, -np.nan]], dtype=np.float32)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    assert actual.tolist() == [[zero_point, 127, -128, 127, -128, zero_point]]
