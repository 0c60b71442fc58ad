"""Small int8 models for the elementwise and data-movement op tests, and the parity check
they share.

Models are `tf.function`s converted by the real TFLiteConverter, full-integer int8
(int8 input and output), with a random calibration set, like tests/modelbuild.py. The
single model input can feed several branches, which is how two-activation-input ops
(ADD of two branches) are built within the one-input/one-output limit of the generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinylr import codegen, hostcheck, ir, reference

SAMPLES = 160


def convert(fn, input_shape, *, seed: int = 0, calibration_scale: float = 1.0) -> bytes:
    """Full-integer int8 .tflite of `fn` (float32 tensor of `input_shape` -> one tensor).

    `calibration_scale` sets the spread of the calibration data, hence the input scale."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    function = tf.function(fn, input_signature=[tf.TensorSpec(input_shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [(calibration_scale * rng.normal(size=input_shape)).astype(np.float32)] for _ in range(48)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def constant(shape, seed: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def dense(x, width: int, seed: int):
    """x @ W over the last axis: a FULLY_CONNECTED branch with its own output scale."""
    import tensorflow as tf

    w = constant((x.shape[-1], width), seed, -0.8, 0.8)
    return tf.tensordot(x, w, axes=[[len(x.shape) - 1], [0]]) if len(x.shape) > 2 else tf.matmul(x, w)


def assert_bit_exact(model: bytes, tmp_path: Path, *, samples: int = SAMPLES, seed: int = 0) -> ir.Graph:
    """Generate C for `model`, run it on the host (ASan+UBSan) and on the TFLM
    interpreter over random int8 inputs; every output byte must agree. Returns the graph."""
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    graph = ir.load(path)
    codegen.generate(path, tmp_path / "src", "m")
    size = graph.tensors[graph.inputs[0]].size
    inputs = np.random.default_rng(seed).integers(-128, 128, size=(samples, size), dtype=np.int8)
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    result = hostcheck.compare(expected, actual)
    assert result["bit_exact"], result
    # a constant output would hide a wrong kernel
    assert len(np.unique(actual)) > 2, "outputs barely vary; the test would not catch a wrong kernel"
    return graph


def ops_of(graph: ir.Graph, opcode: str) -> list[ir.Operator]:
    return [op for op in graph.operators if op.opcode == opcode]


def walk_offsets(walk, operand: int = 0, start: int = 0) -> list[int]:
    """The element offsets a `tinylr_walk` visits for one operand, in order: a Python
    model of ndwalk.h, to check walks against numpy without compiling anything."""
    offsets, index, base = [], [0] * len(walk.counts), start
    while True:
        offsets += [base + i * walk.inner_strides[operand] for i in range(walk.inner)]
        for d in reversed(range(len(walk.counts))):
            index[d] += 1
            if index[d] < walk.counts[d]:
                base += walk.steps[operand][d]
                break
            index[d] = 0
        else:
            return offsets
