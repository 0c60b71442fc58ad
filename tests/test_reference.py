"""The TFLM oracle: quantization arithmetic, runs and arena measurement."""

import numpy as np
import pytest

from tinylr import reference
from tinylr.errors import TinylrError


def test_quantize_rounds_half_away_from_zero_like_tflite():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 300.0, -300.0], dtype=np.float32)
    # np.round would give 0, 2, 2, -0, -2, -2 (ties to even)
    assert reference.quantize(x, 1.0, 0).tolist() == [1, 2, 3, -1, -2, -3, 0, 127, -128]
    assert reference.quantize(np.array([0.0, 1.0]), 1 / 255, -128).tolist() == [-128, 127]


def test_dequantize_inverts_quantize_within_half_a_step():
    scale, zp = 0.0371, 5
    x = np.linspace(-4.5, 4.5, 1001, dtype=np.float32)
    back = reference.dequantize(reference.quantize(x, scale, zp), scale, zp)
    assert back.dtype == np.float32
    assert np.max(np.abs(back - x)) <= scale / 2 + 1e-6
    assert reference.dequantize(np.array([-128, 127], np.int8), 0.5, -128).tolist() == [0.0, 127.5]


@pytest.mark.slow
def test_run_reproduces_the_reference_outputs(digits_artifacts):
    ref = np.load(digits_artifacts.reference)
    model = digits_artifacts.int8_tflite.read_bytes()
    outputs = reference.run(model, ref["inputs"])
    assert outputs.dtype == np.int8 and outputs.shape == (360, 10)
    assert np.array_equal(outputs, ref["outputs"])
    # outputs depend on the input: not a constant vector
    assert len({row.tobytes() for row in outputs}) > 100
    # a path works too, and one sample at a time gives the same rows as the batch
    assert np.array_equal(reference.run(digits_artifacts.int8_tflite, ref["inputs"][:3]), outputs[:3])


@pytest.mark.slow
def test_tflm_and_tflite_agree_within_one_lsb(digits_artifacts):
    """An independent interpreter: TFLM may differ by 1 LSB (rounding), never more."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    ref = np.load(digits_artifacts.reference)
    it = Interpreter(model_path=str(digits_artifacts.int8_tflite),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    litert = []
    for sample in ref["inputs"]:
        it.set_tensor(inp["index"], sample.reshape(1, -1))
        it.invoke()
        litert.append(it.get_tensor(out["index"]).reshape(-1))
    diff = np.abs(np.stack(litert).astype(int) - ref["outputs"].astype(int))
    assert diff.max() <= 1


@pytest.mark.slow
def test_arena_bytes_is_measured_by_tflm(digits_artifacts):
    arena = reference.arena_bytes(digits_artifacts.int8_tflite)
    # at least the input (64 B) and the widest activation (128 B); far below a board's RAM
    assert 64 + 128 <= arena < 32 * 1024
    assert reference.arena_bytes(digits_artifacts.int8_tflite) == arena
    assert digits_artifacts.verify["tflm_arena_bytes"] == arena


@pytest.mark.slow
def test_bad_models_and_inputs_are_clear_errors(digits_artifacts, tmp_path):
    int8 = digits_artifacts.int8_tflite.read_bytes()
    inputs = np.zeros((2, 64), np.int8)
    # a float model runs too (float boundaries), but only on float inputs
    with pytest.raises(TinylrError, match="inputs are int8 but the model takes float32"):
        reference.run(digits_artifacts.float_tflite.read_bytes(), inputs)
    with pytest.raises(TinylrError, match="corrupt|not a TFLite"):
        reference.run(int8[: len(int8) // 2], inputs)
    with pytest.raises(TinylrError, match="not a TFLite"):
        reference.run(b"\0" * 64, inputs)
    with pytest.raises(TinylrError, match="takes int8; quantize them first"):
        reference.run(int8, inputs.astype(np.float32))
    with pytest.raises(TinylrError, match="64 values"):
        reference.run(int8, np.zeros((2, 63), np.int8))
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(int8[:100])
    with pytest.raises(TinylrError):
        reference.arena_bytes(corrupt)
