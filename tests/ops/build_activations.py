"""Models for the activation, softmax and quantize parity tests.

Keras models converted by the real TFLiteConverter to full-integer int8 (int8 input
and output), calibrated on a normal distribution of chosen spread and centre so each
case gets different input scales and zero points (or with float32 input and output:
QUANTIZE and DEQUANTIZE at the model's boundaries).
"""

from __future__ import annotations

import numpy as np

# All 256 int8 values, in several orders so every value meets different neighbours.
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def convert(model, input_shape, *, spread=1.0, centre=0.0, seed=0, float_io=False) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [(centre + spread * rng.normal(size=input_shape)).astype(np.float32)] for _ in range(64)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def layer_model(layer_fn, shape=(256,), *, batch=1, spread=1.0, centre=0.0, seed=0, float_io=False) -> bytes:
    """Input of `shape` (per sample) -> layer_fn(input) -> output."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input(tuple(shape), batch_size=batch)
    return convert(tf.keras.Model(inp, layer_fn(inp)), (batch, *shape), spread=spread, centre=centre,
                   seed=seed, float_io=float_io)


def activation(name: str, **kwargs):
    """A Keras layer that the converter turns into the TFLite op `name`."""
    import tensorflow as tf

    layers = {
        "LOGISTIC": lambda: tf.keras.layers.Activation("sigmoid"),
        "TANH": lambda: tf.keras.layers.Activation("tanh"),
        "RELU": lambda: tf.keras.layers.ReLU(),
        "RELU6": lambda: tf.keras.layers.ReLU(max_value=6.0),
        "HARD_SWISH": lambda: tf.keras.layers.Activation("hard_swish"),
        "LEAKY_RELU": lambda: tf.keras.layers.LeakyReLU(negative_slope=kwargs.get("alpha", 0.2)),
    }
    return layers[name]()


class FakeQuant:
    """A layer pinning its output's float range, as quantization-aware training does; the
    converter then inserts QUANTIZE (and DEQUANTIZE) ops to move between scales."""

    def __new__(cls, lo: float, hi: float):
        import tensorflow as tf

        class _FakeQuant(tf.keras.layers.Layer):
            def call(self, x):
                return tf.quantization.fake_quant_with_min_max_args(x, lo, hi, num_bits=8)

        return _FakeQuant()


def with_tensor_quantization(model_bytes: bytes, tensor_index: int, scale: float, zero_point: int) -> bytes:
    """The model with one tensor's (per-tensor) quantization replaced."""
    from tests.modelbuild import edit

    def change(m):
        q = m.subgraphs[0].tensors[tensor_index].quantization
        q.scale, q.zeroPoint = [scale], [zero_point]

    return edit(model_bytes, change)
