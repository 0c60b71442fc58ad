"""SOFTMAX parity: generated C (host gcc, ASan+UBSan) vs the TFLM interpreter, bit for
bit, over row lengths, batches, input scales (different calibration ranges), beta and
a classifier head; plus the generation-time checks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modelbuild import edit
from tests.ops.build_activations import layer_model, with_tensor_quantization
from tinylr import codegen, hostcheck, ir, reference
from tinylr.errors import TinylrError
from tinylr.ir import Graph, Operator, Quantization, Tensor
from tinylr.ops import softmax

CASES = [
    # per-sample shape, batch, calibration spread
    ((1,), 1, 1.0),
    ((2,), 1, 1.0),
    ((2,), 3, 0.3),
    ((10,), 1, 1.0),
    ((10,), 4, 8.0),     # coarse input scale: diff_min cuts off the far tail
    ((37,), 1, 2.0),
    ((37,), 2, 0.05),    # fine input scale: every entry counts
    ((6, 12), 2, 1.5),   # softmax over the last axis of a 3-D tensor
]


def _softmax(x):
    import tensorflow as tf

    return tf.keras.layers.Softmax()(x)


def _inputs(size: int, depth: int, seed: int) -> np.ndarray:
    """Random rows, plus rows that exercise ties, a single peak and the clamps."""
    rng = np.random.default_rng(seed)
    rows = [rng.integers(-128, 128, size=size, dtype=np.int8) for _ in range(150)]
    rows.append(np.full(size, 127, dtype=np.int8))
    rows.append(np.full(size, -128, dtype=np.int8))
    peak = np.full(size, -128, dtype=np.int8)
    peak[::depth] = 127
    rows.append(peak)
    rows.append(np.resize(np.arange(-128, 128, 7, dtype=np.int16).astype(np.int8), size))
    rows.append(np.resize(rng.integers(100, 128, size=depth, dtype=np.int8), size))  # near-equal values
    return np.stack(rows)


def _check(tmp_path, model: bytes, name="sm") -> ir.Graph:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(model)
    graph = ir.load(path)
    codegen.generate(path, tmp_path / "src", name)
    x = graph.tensors[graph.inputs[0]]
    inputs = _inputs(x.size, x.shape[-1], seed=x.size)
    result = hostcheck.compare(reference.run(model, inputs), hostcheck.run_host(tmp_path / "src", inputs))
    assert result["bit_exact"], result
    return graph


@pytest.mark.slow
@pytest.mark.parametrize("shape,batch,spread", CASES)
def test_softmax_is_bit_exact_with_tflm(tmp_path, shape, batch, spread):
    model = layer_model(_softmax, shape, batch=batch, spread=spread, centre=0.3, seed=len(shape) + batch)
    graph = _check(tmp_path, model)
    assert graph.opcodes == ["SOFTMAX"]


@pytest.mark.slow
def test_coarse_input_scale_skips_entries_below_diff_min():
    model = layer_model(_softmax, (10,), spread=8.0)
    graph = ir.parse(model)
    _, _, diff_min = softmax.scaling(1.0, graph.tensors[graph.inputs[0]].scale)
    assert diff_min > -255  # some int8 differences fall outside: the skip path runs


@pytest.mark.slow
@pytest.mark.parametrize("beta", (0.25, 2.0, 7.5))
def test_softmax_beta(tmp_path, beta):
    """The converter always writes beta = 1; an edited model checks TFLM's beta scaling."""

    def set_beta(m):
        m.subgraphs[0].operators[0].builtinOptions.beta = beta

    model = edit(layer_model(_softmax, (12,), batch=2, spread=1.0), set_beta)
    graph = _check(tmp_path, model)
    assert graph.operators[0].options["beta"] == pytest.approx(beta)


@pytest.mark.slow
def test_classifier_head(tmp_path):
    """Dense -> Dense -> Softmax, the usual end of a classifier: the softmax input
    scale is the last layer's output scale."""
    import tensorflow as tf

    def net(x):
        h = tf.keras.layers.Dense(32, activation="relu")(x)
        return tf.keras.layers.Softmax()(tf.keras.layers.Dense(10)(h))

    graph = _check(tmp_path, layer_model(net, (20,), spread=2.0, seed=4), name="head")
    assert graph.opcodes == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]


@pytest.mark.slow
def test_output_quantization_tflm_refuses_is_reported(tmp_path):
    model = layer_model(_softmax, (10,))
    graph = ir.parse(model)
    path = tmp_path / "bad.tflite"
    path.write_bytes(with_tensor_quantization(model, graph.outputs[0], 1.0 / 128.0, 0))
    with pytest.raises(TinylrError, match="scale 1/256 and zero point -128"):
        codegen.generate(path, tmp_path / "src", "bad")
    assert not (tmp_path / "src").exists()


def test_scaling_follows_tflm():
    # input scale 1/16: beta * scale * 2^26 = 2^22 = 0.5 * 2^23 -> (2^30, 23);
    # radius = floor(31 * 2^26 / 2^23) = 248
    assert softmax.scaling(1.0, 1.0 / 16.0) == (1 << 30, 23, -248)
    multiplier, shift, diff_min = softmax.scaling(1.0, 0.1)
    assert multiplier * 2.0 ** (shift - 31) == pytest.approx(0.1 * 2**26, rel=1e-9)
    assert diff_min == -int(np.floor(31 * 2**26 / 2**shift))
    # a huge multiplier is capped at 2^31 - 1: only the row maximum survives
    assert softmax.scaling(1.0, 1000.0) == ((1 << 31) - 1, 31, 0)
    with pytest.raises(ValueError):
        softmax.scaling(1.0, 1e-9)


def _graph(depth: int, out_scale=1.0 / 256.0, out_zero_point=-128) -> tuple[Operator, Graph]:
    q = lambda s, z: Quantization(np.array([s], np.float32), np.array([z]), 0)  # noqa: E731
    tensors = (
        Tensor(0, "x", (1, depth), "INT8", q(0.05, 3), None),
        Tensor(1, "y", (1, depth), "INT8", q(out_scale, out_zero_point), None),
    )
    op = Operator(0, "SOFTMAX", 1, (0,), (1,), {"beta": 1.0})
    return op, Graph(tensors, (op,), (0,), (1,))


def test_check_limits():
    assert softmax.check(*_graph(4095)) == []
    assert any("at most 4095" in p for p in softmax.check(*_graph(4096)))
    assert any("1/256" in p for p in softmax.check(*_graph(10, out_zero_point=0)))
