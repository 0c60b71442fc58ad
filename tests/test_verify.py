"""Verify: int8 accuracy on TFLM, float accuracy, reference vectors for the C."""

import json

import numpy as np
import pytest

from tinylr import reference
from tinylr.errors import TinylrError
from tinylr.verify import OUTPUTS, verify

pytestmark = pytest.mark.slow


def test_int8_accuracy_is_close_to_float(digits_artifacts):
    summary = digits_artifacts.verify
    assert summary == json.loads((digits_artifacts.dir / "verify.json").read_text())
    assert summary["n_test"] == 360
    assert summary["float_accuracy"] >= 0.90
    assert abs(summary["int8_accuracy"] - summary["float_accuracy"]) <= 0.03
    assert summary["agreement"] >= 0.95
    # the float .tflite scores what torch scored (one near-tie may flip)
    assert abs(summary["float_accuracy"] - digits_artifacts.train["test_accuracy"]) <= 1 / 360 + 1e-9
    assert summary["tflm_arena_bytes"] > 0


def test_reference_npz_holds_the_int8_vectors(digits_artifacts):
    ref = np.load(digits_artifacts.reference)
    data = np.load(digits_artifacts.dataset)
    assert set(ref.files) == {"inputs", "outputs", "labels"}
    assert ref["inputs"].dtype == np.int8 and ref["inputs"].shape == (360, 64)
    assert ref["outputs"].dtype == np.int8 and ref["outputs"].shape == (360, 10)
    assert np.array_equal(ref["labels"], data["y_test"])
    # the inputs are x_test quantized with the model's input parameters
    q = digits_artifacts.export["input"]
    assert np.array_equal(ref["inputs"], reference.quantize(data["x_test"], q["scale"], q["zero_point"]))
    # and the stored outputs give the reported int8 accuracy
    o = digits_artifacts.export["output"]
    pred = reference.dequantize(ref["outputs"], o["scale"], o["zero_point"]).argmax(1)
    assert np.mean(pred == ref["labels"]) == digits_artifacts.verify["int8_accuracy"]


def _stale(folder):
    for name in OUTPUTS:
        (folder / name).write_bytes(b"old")


def test_float_model_given_as_int8_is_rejected(digits_artifacts, tmp_path):
    _stale(tmp_path)
    with pytest.raises(TinylrError, match="not a full-integer int8 model.*model_int8.tflite"):
        verify(digits_artifacts.float_tflite, tmp_path, data=digits_artifacts.dataset)
    assert list(tmp_path.iterdir()) == []


def test_int8_model_given_as_float_is_rejected(digits_artifacts, tmp_path):
    with pytest.raises(TinylrError, match="model_float.tflite"):
        verify(digits_artifacts.int8_tflite, tmp_path, data=digits_artifacts.dataset,
               float_tflite=digits_artifacts.int8_tflite)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_corrupt_model_is_a_clear_error(digits_artifacts, tmp_path, damage):
    model = tmp_path / "model_int8.tflite"
    good = digits_artifacts.int8_tflite.read_bytes()
    if damage == "truncate":
        model.write_bytes(good[: len(good) // 3])
    elif damage == "garbage":
        model.write_bytes(good[:8] + bytes(range(256)) * 8)  # a valid identifier, nonsense after it
    out = tmp_path / "out"
    with pytest.raises(TinylrError, match="corrupt|not a TFLite|no such model file"):
        verify(model, out, data=digits_artifacts.dataset)
    assert not out.exists() or list(out.iterdir()) == []


def test_data_that_does_not_fit_the_model_is_rejected(digits_artifacts, tmp_path):
    data = tmp_path / "data.npz"
    np.savez(data, x_test=np.zeros((5, 32), np.float32), y_test=np.zeros(5, np.int64))
    with pytest.raises(TinylrError, match="32 values"):
        verify(digits_artifacts.int8_tflite, tmp_path / "out", data=data)
    np.savez(data, x_test=np.zeros((5, 64), np.float32), y_test=np.full(5, 12))
    with pytest.raises(TinylrError, match="labels range"):
        verify(digits_artifacts.int8_tflite, tmp_path / "out", data=data)
