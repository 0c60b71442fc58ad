import numpy as np
import pytest

from tests.modelbuild import dense_stack, edit
from tinylr import ir
from tinylr.errors import TinylrError

pytestmark = pytest.mark.slow  # builds models with the TFLite converter


@pytest.fixture(scope="module")
def model_bytes():
    return dense_stack((10, 6, 3), activation="relu", input_shape=(2, 5))


def test_reads_ops_tensors_and_quantization(model_bytes, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(model_bytes)
    g = ir.load(path)
    assert g.opcodes.count("FULLY_CONNECTED") == 2
    fc = [op for op in g.operators if op.opcode == "FULLY_CONNECTED"]
    assert fc[0].options["fused_activation_function"] == "RELU"
    assert fc[1].options["fused_activation_function"] == "NONE"
    w = g.tensors[fc[0].inputs[1]]
    assert w.is_constant and w.dtype == "INT8" and w.shape == (6, 10)
    assert w.quantization.per_channel and len(w.quantization.scale) == 6
    assert np.all(w.quantization.zero_point == 0)
    bias = g.tensors[fc[0].inputs[2]]
    assert bias.dtype == "INT32" and bias.data.shape == (6,) and np.any(bias.data != 0)
    x = g.tensors[g.inputs[0]]
    assert x.dtype == "INT8" and not x.is_constant and x.shape == (1, 2, 5)


@pytest.mark.parametrize("mangle", [
    lambda b: b[: len(b) // 2],                  # truncated
    lambda b: b[:4] + b"XXXX" + b[8:],           # wrong identifier
    lambda b: b"",                                # empty
    lambda b: b[:8] + bytes(len(b) - 8),          # zeroed body
])
def test_corrupt_files_give_a_clear_error(model_bytes, tmp_path, mangle):
    path = tmp_path / "bad.tflite"
    path.write_bytes(mangle(model_bytes))
    with pytest.raises(TinylrError, match="bad.tflite"):
        ir.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(TinylrError, match="no such file"):
        ir.load(tmp_path / "nope.tflite")


def test_edited_model_round_trips(model_bytes):
    def rename(m):
        m.subgraphs[0].tensors[0].name = b"renamed"
    g = ir.parse(edit(model_bytes, rename))
    assert g.tensors[0].name == "renamed"
