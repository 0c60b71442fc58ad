"""The MLPerf Tiny reference architectures in the zoo: sizes, data, and export to int8 TFLite.

Published sizes (MLPerf Tiny reference models, see the toolchain notes): KWS DS-CNN
22.6 k params / 2.66 M MACs, VWW MobileNetV1-0.25 211 k / 7.49 M, ResNet-8
77.7 k / 12.5 M, FC autoencoder 266 k / 0.264 M; TFLM arena of the official int8
models on this interpreter 24,272 / 103,680 / 55,984 / 3,984 bytes.
"""

import numpy as np
import pytest
import torch

from tinylr import build, codegen, hostcheck, ir, pipeline, reference, zoo
from tinylr.errors import OverBudgetError
from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.targets import known_targets, load_target
from tinylr.zoo.checkpoint import random_checkpoint
from tinylr.zoo.stats import count

MLPERF = {  # name: (params, MACs, TFLM arena bytes of the official int8 model)
    "kws_dscnn": (22_600, 2_660_000, 24_272),
    "vww_mobilenet": (211_000, 7_490_000, 103_680),
    "resnet8": (77_700, 12_500_000, 55_984),
    "ad_autoencoder": (266_000, 264_000, 3_984),
}
MODELS = sorted(MLPERF)

# What onnx2tf + the TFLite converter make of each model; the generator needs every op here.
EXPECTED_OPS = {
    "kws_dscnn": ["RESHAPE", "CONV_2D", *["DEPTHWISE_CONV_2D", "CONV_2D"] * 4, "AVERAGE_POOL_2D", "FULLY_CONNECTED"],
    "vww_mobilenet": ["CONV_2D", *["DEPTHWISE_CONV_2D", "CONV_2D"] * 13, "AVERAGE_POOL_2D", "FULLY_CONNECTED"],
    "resnet8": [*(["CONV_2D"] * 3 + ["ADD"]) * 3, "AVERAGE_POOL_2D", "FULLY_CONNECTED"],
    "ad_autoencoder": ["FULLY_CONNECTED"] * 10,
}


def _close(value, published, tolerance=0.02):
    return abs(value - published) <= tolerance * published


@pytest.mark.parametrize("name", MODELS)
def test_sizes_match_mlperf_tiny(name):
    entry = zoo.get(name)
    model = entry.build()
    stats = count(model, entry.input_shape)
    params, macs, _ = MLPERF[name]
    assert _close(stats.params, params), stats
    assert _close(stats.macs, macs), stats
    out = model.eval()(torch.zeros(2, *entry.input_shape))
    assert out.shape == (2, {"kws_dscnn": 12, "vww_mobilenet": 2, "resnet8": 10, "ad_autoencoder": 640}[name])


@pytest.mark.parametrize("name,factored", [
    ("kws_dscnn", 4),        # the four pointwise convs
    ("vww_mobilenet", 12),   # every pointwise conv but the first (8 -> 16: 8*(16+8) > 16*8)
    ("resnet8", 6),          # the 3x3 convs after the stem
    ("ad_autoencoder", 8),   # all but the two 8-wide bottleneck layers
])
def test_rank_factors_the_layers_where_it_saves(name, factored):
    entry = zoo.get(name)
    dense, low = entry.build(), entry.build(rank=8)
    layers = [m for m in low.modules() if isinstance(m, (LowRankConv2d, LowRankLinear))]
    assert len(layers) == factored and all(m.rank == 8 and m.worthwhile for m in layers)
    a, b = count(dense, entry.input_shape), count(low, entry.input_shape)
    assert b.params < a.params and b.macs < a.macs
    assert low.eval()(torch.zeros(1, *entry.input_shape)).shape == dense.eval()(torch.zeros(1, *entry.input_shape)).shape


@pytest.mark.parametrize("name", MODELS)
def test_data_is_deterministic_and_in_pytorch_layout(name):
    entry = zoo.get(name)
    split, again = entry.load_data(), entry.load_data()
    for a, b in zip(split, again):
        assert np.array_equal(a, b)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.shape[1:] == split.x_test.shape[1:] == entry.input_shape
    assert np.all(np.isfinite(split.x_train)) and len(split.y_test) >= 100
    n_outputs = count(entry.build(), entry.input_shape).layers[-1]["output_shape"][-1]
    assert 0 <= split.y_train.min() and split.y_train.max() < n_outputs
    assert len(np.unique(split.y_test)) >= 2


@pytest.mark.slow
def test_autoencoder_trained_the_reference_way_detects_anomalies():
    from sklearn.metrics import roc_auc_score

    from tinylr.zoo import ad_autoencoder as ad

    split = ad.load_data()
    torch.manual_seed(0)
    model = ad.build()
    ad.fit_reconstruction(model, split.x_train[split.y_train == 0][:600], epochs=3)  # a few seconds
    assert roc_auc_score(split.y_test, ad.anomaly_scores(model, split.x_test)) > 0.9


# ---------------------------------------------------------------- export + verify, real tools


def _tflite_layout(x: np.ndarray) -> np.ndarray:
    """Source samples in the layout the .tflite takes: channels last for images, unchanged otherwise."""
    return np.moveaxis(x, 1, -1) if x.ndim == 4 else x


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_exports_to_int8_and_verifies_on_tflm(name, tmp_path):
    from tinylr.export import export
    from tinylr.train import train
    from tinylr.verify import verify

    entry = zoo.get(name)
    if name == "kws_dscnn":  # one real epoch through `tinylr train`: the accuracy check below means something
        trained = train(name, tmp_path, seed=0, epochs=1)
        checkpoint, dataset = tmp_path / "checkpoint.pt", tmp_path / "dataset.npz"
    else:
        trained = None
        checkpoint, dataset = random_checkpoint(name, tmp_path)
    exported = export(checkpoint, tmp_path, data=dataset)
    assert exported["ops"] == EXPECTED_OPS[name]
    assert exported["float_max_abs_error"] <= exported["float_tolerance"]

    graph = ir.load(tmp_path / "model_int8.tflite")
    shape = entry.input_shape
    nhwc = (1, *shape[1:], shape[0]) if len(shape) == 3 and name != "kws_dscnn" else (1, *shape)
    assert graph.tensors[graph.inputs[0]].shape == nhwc
    assert exported["input_permutation"] == ([0, 2, 3, 1] if len(nhwc) == 4 else list(range(len(nhwc))))
    assert all(graph.tensors[i].dtype == "INT8" for i in graph.inputs + graph.outputs)
    weights = [graph.tensors[op.inputs[1]] for op in graph.operators if op.opcode in ("CONV_2D", "FULLY_CONNECTED")]
    assert all(w.dtype == "INT8" and len(w.quantization.scale) == w.shape[0] for w in weights)  # per channel

    verified = verify(tmp_path / "model_int8.tflite", tmp_path, data=dataset, float_tflite=tmp_path / "model_float.tflite")
    ref = np.load(tmp_path / "reference.npz")
    x_test = np.load(dataset)["x_test"]
    q = exported["input"]
    inputs = reference.quantize(_tflite_layout(x_test), q["scale"], q["zero_point"]).reshape(len(x_test), -1)
    assert np.array_equal(ref["inputs"], inputs)
    assert np.array_equal(ref["outputs"], reference.run(tmp_path / "model_int8.tflite", inputs))

    params, _, mlperf_arena = MLPERF[name]
    if name != "ad_autoencoder":
        # the same activation plan as the official models; the autoencoder's arena is larger
        # because its FC weights are per-channel here (TFLM keeps per-channel multipliers in the arena)
        assert _close(verified["tflm_arena_bytes"], mlperf_arena, 0.03), verified["tflm_arena_bytes"]
    # int8 weights: about one byte per parameter, plus int32 biases and the flatbuffer around them
    assert params < exported["sizes"]["model_int8.tflite"] < 1.5 * params + 16_000
    if trained is not None:
        assert trained["test_accuracy"] >= 0.6
        assert abs(verified["int8_accuracy"] - verified["float_accuracy"]) <= 0.03

    # the generated C: bit-exact with TFLM on 100 random inputs, on the host (ASan + UBSan)
    # and cross-compiled for the Cortex-M4; its arena smaller than TFLM's
    manifest = codegen.generate(tmp_path / "model_int8.tflite", tmp_path / "src", name)
    rng = np.random.default_rng(0)
    random_inputs = rng.integers(-128, 128, size=(100, manifest["input_count"]), dtype=np.int8)
    expected = reference.run(tmp_path / "model_int8.tflite", random_inputs)
    assert hostcheck.compare(expected, hostcheck.run_host(tmp_path / "src", random_inputs))["bit_exact"]
    firmware = build.build_firmware(load_target("nrf52840"), tmp_path / "src", random_inputs[:2], tmp_path / "fw")
    assert firmware.flash_bytes > manifest["const_bytes"]
    assert manifest["arena_bytes"] < verified["tflm_arena_bytes"]

    # on every board: fits and runs bit-exactly in the emulator, or is refused for its budget
    ran = []
    for board in known_targets():
        target, folder = load_target(board), tmp_path / board
        try:
            pipeline.build_stage(target, tmp_path / "src", tmp_path / "reference.npz", folder, count=2)
        except OverBudgetError as exc:
            assert board in str(exc) and "over by" in str(exc)
            continue
        emulated = pipeline.emulate_stage(target, folder / "firmware.elf", tmp_path / "reference.npz", folder)
        assert emulated["bit_exact"] and emulated["samples"] == 2 and emulated["violation_count"] == 0
        ran.append(board)
    assert "stm32l4r5" in ran  # 2 MB / 640 KB: every zoo model fits the MLPerf Tiny reference board


@pytest.mark.slow
def test_factored_convs_stay_two_conv_ops(tmp_path):
    from tinylr.export import export

    checkpoint, dataset = random_checkpoint("kws_dscnn", tmp_path, rank=8)
    exported = export(checkpoint, tmp_path, data=dataset)
    assert exported["ops"] == ["RESHAPE", "CONV_2D", *["DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D"] * 4,
                               "AVERAGE_POOL_2D", "FULLY_CONNECTED"]
    graph = ir.load(tmp_path / "model_int8.tflite")
    pointwise = [graph.tensors[op.inputs[1]].shape for op in graph.operators
                 if op.opcode == "CONV_2D" and graph.tensors[op.inputs[1]].shape[1:3] == (1, 1)]
    assert pointwise == [(8, 1, 1, 64), (64, 1, 1, 8)] * 4
