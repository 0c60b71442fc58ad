"""Input layouts: PyTorch's channels-first data onto the .tflite's channels-last input.

The permutation export records must be the one onnx2tf applied, and verify must
apply it before quantizing, so that reference.npz holds the bytes TFLM and the
generated C read. The expected layouts are written out here independently
(np.moveaxis, explicit index loops) rather than with tinylr's own helpers.
"""

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from tinylr import ir, reference
from tinylr.errors import TinylrError
from tinylr.export import (
    LAYOUT_METADATA,
    check_source_layout,
    export,
    input_layout,
    input_permutations,
    to_model_layout,
    with_input_layout,
)
from tinylr.verify import verify

# ---------------------------------------------------------------- no converter needed


@pytest.mark.parametrize("source,tflite,expected", [
    ((1, 3, 32, 32), (1, 32, 32, 3), [[0, 2, 3, 1]]),          # image: channels last
    ((1, 3, 12, 20), (1, 12, 20, 3), [[0, 2, 3, 1]]),
    ((1, 49, 10), (1, 49, 10), [[0, 1, 2]]),                   # audio features kept as they are
    ((1, 49, 10), (1, 10, 49), [[0, 2, 1]]),                   # ... or taken as NCW
    ((1, 64), (1, 64), [[0, 1]]),
    ((1, 8, 8, 8), (1, 8, 8, 8), [[0, 2, 3, 1], [0, 1, 2, 3]]),  # the shape cannot tell: onnx2tf's rule first
    ((1, 3, 32, 32), (1, 32, 3, 32), []),                      # no layout tinylr knows
    ((1, 3, 32, 32), (1, 3072), []),
])
def test_input_permutations(source, tflite, expected):
    assert input_permutations(source, tflite) == expected


def test_to_model_layout_moves_channels_last():
    x = np.random.default_rng(0).normal(size=(5, 3, 4, 6)).astype(np.float32)
    layout = {"source_shape": [1, 3, 4, 6], "permutation": [0, 2, 3, 1]}
    nhwc = to_model_layout(x, layout)
    assert nhwc.shape == (5, 4, 6, 3)
    for n, c, h, w in np.ndindex(x.shape):
        assert nhwc[n, h, w, c] == x[n, c, h, w]
    # flattened rows in the source layout give the same result
    assert np.array_equal(to_model_layout(x.reshape(5, -1), layout), nhwc)


def test_data_already_channels_last_is_refused():
    check_source_layout(np.zeros((2, 3, 4, 6)), (1, 3, 4, 6), "x")      # source layout: fine
    check_source_layout(np.zeros((2, 72)), (1, 3, 4, 6), "x")           # flat rows: taken as source layout
    with pytest.raises(TinylrError, match=r"samples have shape \(4, 6, 3\) but the source model takes \(3, 4, 6\)"):
        check_source_layout(np.zeros((2, 4, 6, 3)), (1, 3, 4, 6), "x")


# ---------------------------------------------------------------- real converter, real TFLM


class SmallCNN(nn.Module):
    """Channels-first image model whose output depends on where each channel's pixels are."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))             # TF 'same' for the stride-2 conv
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.AvgPool2d((6, 10))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(self.pad(x))))
        return self.fc(torch.flatten(self.pool(torch.relu(self.dw(x))), 1))


class SequenceModel(nn.Module):
    """[B, T, F] audio-feature model; the first op takes the input directly (torch names it 'onnx::...')."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, (5, 3), stride=2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = torch.relu(self.conv(x.unsqueeze(1)))
        return self.fc(x.mean(dim=(2, 3)))


def _onnx(model: nn.Module, shape, path, input_names=None):
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=0.5)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(shape),), str(path), opset_version=17, dynamo=False,
                          input_names=input_names)
    return path


def _data(path, shape, n_train=60, n_test=24, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.uniform(0, 1, (n_train, *shape)).astype(np.float32),
             y_train=rng.integers(0, 4, n_train), x_test=rng.uniform(0, 1, (n_test, *shape)).astype(np.float32),
             y_test=rng.integers(0, 4, n_test))
    return path


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    """SmallCNN (1, 3, 12, 20) exported from an .onnx file: every axis has a different size."""
    folder = tmp_path_factory.mktemp("image")
    model = _onnx(SmallCNN(), (1, 3, 12, 20), folder / "cnn.onnx")
    data = _data(folder / "data.npz", (3, 12, 20))
    summary = export(model, folder, data=data)
    return folder, data, summary


@pytest.mark.slow
def test_image_model_takes_nhwc_and_export_records_the_permutation(image_export):
    folder, _, summary = image_export
    assert summary["input_permutation"] == [0, 2, 3, 1]
    assert summary["source_input_shape"] == [1, 3, 12, 20]
    assert summary["input"]["shape"] == [1, 12, 20, 3]
    assert summary["float_max_abs_error"] <= summary["float_tolerance"]
    assert json.loads((folder / "export.json").read_text()) == summary
    assert "TRANSPOSE" not in summary["ops"] and "PAD" not in summary["ops"]   # pooled before the flatten
    for name in ("model_int8.tflite", "model_float.tflite"):
        data = (folder / name).read_bytes()
        graph = ir.parse(data)
        shape = graph.tensors[graph.inputs[0]].shape
        assert input_layout(data, shape, name) == {"source_shape": [1, 3, 12, 20], "permutation": [0, 2, 3, 1]}


@pytest.mark.slow
def test_verify_feeds_tflm_the_permuted_inputs(image_export, tmp_path):
    folder, data, export_summary = image_export
    summary = verify(folder / "model_int8.tflite", tmp_path, data=data, float_tflite=folder / "model_float.tflite")
    assert summary["input"]["permutation"] == [0, 2, 3, 1]
    ref = np.load(tmp_path / "reference.npz")
    x_test = np.load(data)["x_test"]                                  # (N, C, H, W)
    nhwc = np.moveaxis(x_test, 1, -1)                                 # (N, H, W, C), built independently
    q = export_summary["input"]
    expected_inputs = reference.quantize(nhwc, q["scale"], q["zero_point"]).reshape(len(x_test), -1)
    assert ref["inputs"].shape == (24, 12 * 20 * 3)
    assert np.array_equal(ref["inputs"], expected_inputs)
    assert np.array_equal(ref["outputs"], reference.run(folder / "model_int8.tflite", expected_inputs))
    # the check can fail: the same values in PyTorch's order give other answers
    unpermuted = reference.quantize(x_test, q["scale"], q["zero_point"]).reshape(len(x_test), -1)
    assert not np.array_equal(ref["outputs"], reference.run(folder / "model_int8.tflite", unpermuted))
    # and the float .tflite, fed the same permuted data, agrees with the int8 model on most samples
    assert summary["agreement"] >= 0.75


@pytest.mark.slow
def test_verify_refuses_data_in_the_tflite_layout(image_export, tmp_path):
    folder, _, _ = image_export
    data = tmp_path / "nhwc.npz"
    np.savez(data, x_test=np.zeros((4, 12, 20, 3), np.float32), y_test=np.zeros(4, np.int64))
    with pytest.raises(TinylrError, match=r"samples have shape \(12, 20, 3\) but the source model takes \(3, 12, 20\)"):
        verify(folder / "model_int8.tflite", tmp_path / "out", data=data)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def _without_layout(model: bytes) -> bytes:
    """The same model with the tinylr metadata entry removed (as a .tflite from another tool)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    tree.metadata = [m for m in tree.metadata if m.name.decode() != LAYOUT_METADATA]
    builder = flatbuffers.Builder(len(model))
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.mark.slow
def test_a_model_without_layout_metadata_takes_its_own_layout(image_export, tmp_path):
    folder, data, _ = image_export
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(_without_layout((folder / "model_int8.tflite").read_bytes()))
    ours = verify(folder / "model_int8.tflite", tmp_path / "ours", data=data)
    # data already channels last, as a user of a TF-made model would have it
    x = np.load(data)
    nhwc = tmp_path / "nhwc.npz"
    np.savez(nhwc, x_test=np.moveaxis(x["x_test"], 1, -1), y_test=x["y_test"])
    theirs = verify(foreign, tmp_path / "theirs", data=nhwc)
    assert theirs["input"]["permutation"] == [0, 1, 2, 3]
    assert theirs["int8_accuracy"] == ours["int8_accuracy"]
    a, b = np.load(tmp_path / "ours" / "reference.npz"), np.load(tmp_path / "theirs" / "reference.npz")
    assert np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["outputs"], b["outputs"])


@pytest.mark.slow
def test_layout_metadata_that_does_not_fit_is_an_error(image_export, tmp_path):
    folder, data, _ = image_export
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(with_input_layout((folder / "model_int8.tflite").read_bytes(),
                                      {"source_shape": [1, 3, 12, 20], "permutation": [0, 1, 2, 3]}))
    with pytest.raises(TinylrError, match="metadata .* does not fit the model input"):
        verify(bad, tmp_path / "out", data=data)


@pytest.mark.slow
def test_rank3_input_named_by_torch_keeps_its_layout(tmp_path):
    # torch names the input 'onnx::Unsqueeze_0'; onnx2tf renames it 'onnx__Unsqueeze_0' before it
    # looks at keep_shape_absolutely_input_names, so only the original name would not keep the layout
    model = _onnx(SequenceModel(), (1, 20, 9), tmp_path / "seq.onnx")
    import onnx

    assert ":" in onnx.load(str(model)).graph.input[0].name
    data = _data(tmp_path / "data.npz", (20, 9))
    summary = export(model, tmp_path / "out", data=data)
    assert summary["input"]["shape"] == [1, 20, 9] and summary["input_permutation"] == [0, 1, 2]
    verified = verify(tmp_path / "out" / "model_int8.tflite", tmp_path / "out", data=data)
    ref = np.load(tmp_path / "out" / "reference.npz")
    q = summary["input"]
    x_test = np.load(data)["x_test"]
    assert np.array_equal(ref["inputs"], reference.quantize(x_test.reshape(len(x_test), -1), q["scale"], q["zero_point"]))
    assert verified["input"]["permutation"] == [0, 1, 2]


@pytest.mark.slow
def test_cube_input_is_resolved_by_the_float_check(tmp_path):
    # (1, 3, 3, 3): channels-first and channels-last have the same shape; only the float
    # comparison with the source model can tell which one onnx2tf produced
    model = nn.Sequential(nn.Conv2d(3, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 4))
    path = _onnx(model, (1, 3, 3, 3), tmp_path / "cube.onnx")
    data = _data(tmp_path / "data.npz", (3, 3, 3))
    summary = export(path, tmp_path / "out", data=data)
    assert summary["input_permutation"] == [0, 2, 3, 1]
    assert summary["float_max_abs_error"] <= summary["float_tolerance"]
    verify(tmp_path / "out" / "model_int8.tflite", tmp_path / "out", data=data)
    ref = np.load(tmp_path / "out" / "reference.npz")
    q = summary["input"]
    x_test = np.load(data)["x_test"]
    expected = reference.quantize(np.moveaxis(x_test, 1, -1), q["scale"], q["zero_point"]).reshape(len(x_test), -1)
    assert np.array_equal(ref["inputs"], expected)
