"""Small int8 image models for the spatial-op tests, and the parity check they share.

Every builder makes a Keras model and converts it with the real TFLiteConverter to a
full-integer int8 .tflite (int8 input and output), as tests/modelbuild.py does; the
options here add per-tensor conv weights and control of the calibration range (which
decides the input zero point). `assert_bit_exact` generates C for the model, runs it
on the host under ASan/UBSan and compares every output element with TFLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tinylr import codegen, hostcheck, ir, reference

SAMPLES = 200


def convert(model, input_shape, *, seed: int = 0, per_channel: bool = True, calibration=(-1.0, 1.0)) -> bytes:
    """Full-integer int8 conversion calibrated on uniform inputs in `calibration`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    lo, hi = calibration
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(lo, hi, size=input_shape).astype(np.float32)] for _ in range(48)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True
    return converter.convert()


def _spread_channels(layer, seed: int, axis) -> None:
    """Scale each output channel of a conv kernel differently (per-channel scales that
    differ by up to 30x) and give the bias real values."""
    rng = np.random.default_rng(seed)
    weights = layer.get_weights()
    kernel = weights[0]
    shape = [1] * kernel.ndim
    for a in (axis if isinstance(axis, tuple) else (axis,)):
        shape[a] = kernel.shape[a]
    weights[0] = kernel * rng.uniform(0.1, 3.0, size=shape).astype(np.float32)
    if len(weights) > 1:
        weights[1] = rng.normal(0.0, 0.3, size=weights[1].shape).astype(np.float32)
    layer.set_weights(weights)


def single_layer(input_hw, channels, layer_fn, *, batch=1, seed=0, per_channel=True, calibration=(-1.0, 1.0),
                 spread_axis=None, zero_channel=None) -> bytes:
    """Input [batch, h, w, channels] -> one Keras layer -> int8 .tflite bytes.

    `spread_axis`: the kernel's channel axis (or axes), to diversify per-channel scales;
    `zero_channel`: a channel along the first of them whose filter is all zeros."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((*input_hw, channels), batch_size=batch)
    layer = layer_fn()
    out = layer(inp)
    if spread_axis is not None:
        _spread_channels(layer, seed, spread_axis)
    if zero_channel is not None:
        weights = layer.get_weights()
        index = [slice(None)] * weights[0].ndim
        # Conv2D [h, w, in, out]: one filter; DepthwiseConv2D [h, w, in, m]: the filters of one input channel
        index[spread_axis if isinstance(spread_axis, int) else spread_axis[0]] = zero_channel
        weights[0][tuple(index)] = 0.0
        layer.set_weights(weights)
    return convert(tf.keras.Model(inp, out), (batch, *input_hw, channels), seed=seed,
                   per_channel=per_channel, calibration=calibration)


@cache  # models are immutable bytes: tests sharing one convert it once per worker
def conv(input_hw, channels, filters, kernel, *, strides=1, padding="same", dilation=1, activation=None,
         use_bias=True, groups=1, **kw) -> bytes:
    import tensorflow as tf

    return single_layer(input_hw, channels, lambda: tf.keras.layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, dilation_rate=dilation, activation=activation,
        use_bias=use_bias, groups=groups), spread_axis=3, **kw)


@cache
def depthwise(input_hw, channels, kernel, *, multiplier=1, strides=1, padding="same", dilation=1,
              activation=None, use_bias=True, **kw) -> bytes:
    import tensorflow as tf

    # Keras' depthwise kernel is [h, w, in, multiplier]: output channel in*m + j
    return single_layer(input_hw, channels, lambda: tf.keras.layers.DepthwiseConv2D(
        kernel, strides=strides, padding=padding, depth_multiplier=multiplier, dilation_rate=dilation,
        activation=activation, use_bias=use_bias), spread_axis=(2, 3), **kw)


@cache
def pool(kind, input_hw, channels, size, *, strides=None, padding="valid", activation=None, **kw) -> bytes:
    """AveragePooling2D / MaxPooling2D, optionally followed by an activation the
    converter fuses into the pool."""
    import tensorflow as tf

    layer_class = {"avg": tf.keras.layers.AveragePooling2D, "max": tf.keras.layers.MaxPooling2D}[kind]

    def layer():
        pooling = layer_class(size, strides=strides, padding=padding)
        if activation is None:
            return pooling
        act = {"relu": tf.keras.layers.ReLU(), "relu6": tf.keras.layers.ReLU(6.0)}[activation]
        return lambda t: act(pooling(t))

    return single_layer(input_hw, channels, layer, **kw)


def tf_function(fn, input_shape, *, calibration=(-1.0, 1.0), seed=0) -> bytes:
    """A model made of one TensorFlow function (tf.pad, tf.reduce_mean) on any input rank."""
    import tensorflow as tf

    inp = tf.keras.Input(input_shape[1:], batch_size=input_shape[0])
    out = tf.keras.layers.Lambda(fn)(inp)
    return convert(tf.keras.Model(inp, out), tuple(input_shape), seed=seed, calibration=calibration)


def edit(model_bytes: bytes, change) -> bytes:
    from tests.modelbuild import edit as _edit

    return _edit(model_bytes, change)


def random_inputs(size: int, seed: int, samples: int = SAMPLES) -> np.ndarray:
    """Uniform int8 samples plus the extremes (all -128, all 127, all 0), which
    drive sums, clamps and rounding to their limits."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(-128, 128, size=(samples, size), dtype=np.int8)
    rows[:3] = np.array([-128, 127, 0], dtype=np.int8)[:, None]
    return rows


@dataclass(frozen=True)
class Parity:
    graph: ir.Graph
    outputs: np.ndarray  # the generated C's int8 outputs, one sample per row


def assert_bit_exact(model: bytes, tmp_path: Path, *, opcodes=None, seed: int = 1, samples: int = SAMPLES) -> Parity:
    """Generate C for `model` into tmp_path/src, run it on the host and require TFLM's
    outputs bit for bit."""
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    graph = ir.load(path)
    if opcodes is not None:
        assert graph.opcodes == list(opcodes), graph.opcodes
    codegen.generate(path, tmp_path / "src", "spatial")
    inputs = random_inputs(graph.tensors[graph.inputs[0]].size, seed, samples)
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    result = hostcheck.compare(expected, actual)
    assert result["bit_exact"], result
    # a constant output would hide almost any bug
    assert len(np.unique(actual)) > 2, "degenerate test: the model's output barely varies"
    return Parity(graph, actual)


def const_array(src_dir: Path, name: str) -> list[int]:
    """The values of a generated const array `<prefix>_<name>[N] = {...}` in spatial_data.c."""
    import re

    text = (Path(src_dir) / "spatial_data.c").read_text()
    match = re.search(rf"_{re.escape(name)}\[\d+\] = \{{([^}}]*)\}}", text)
    assert match, f"no array {name} in the generated data"
    return [int(v) for v in re.findall(r"-?\d+", match.group(1))]
