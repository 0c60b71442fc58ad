"""Small int8 .tflite models built with TensorFlow for generator tests.

Each builder returns the flatbuffer bytes of a full-integer int8 model (int8 input
and output) converted by the real TFLite converter with a random calibration set.
"""

from __future__ import annotations

import numpy as np


def _convert(model, input_shape, seed: int, per_channel: bool = True) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.normal(size=input_shape).astype(np.float32)] for _ in range(64)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if not per_channel:  # one scale per weight tensor, for dense and convolution layers alike
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        converter._experimental_disable_per_channel = True
    return converter.convert()


def dense_stack(widths, *, activation=None, use_bias=True, batch=1, per_channel=True, seed=0,
                input_shape=None, final_activation=None) -> bytes:
    """Input of `widths[0]` features (or `input_shape`, flattened by a Reshape) followed by
    Dense layers of the remaining widths; `activation` on all but the last layer."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    shape = tuple(input_shape) if input_shape else (widths[0],)
    inp = tf.keras.Input(shape, batch_size=batch)
    h = tf.keras.layers.Reshape((int(np.prod(shape)),))(inp) if input_shape else inp
    bias_init = tf.keras.initializers.RandomNormal(stddev=0.5, seed=seed) if use_bias else None
    for i, width in enumerate(widths[1:]):
        last = i == len(widths) - 2
        h = tf.keras.layers.Dense(
            width, activation=final_activation if last else activation, use_bias=use_bias,
            **({"bias_initializer": bias_init} if use_bias else {}),
        )(h)
    return _convert(tf.keras.Model(inp, h), (batch, *shape), seed, per_channel)


def edit(model_bytes: bytes, change) -> bytes:
    """Apply `change(model_t)` to the flatbuffer's object form and re-serialize it."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
