"""Export with the real torch.onnx -> onnxsim -> onnx2tf -> TFLite converter chain."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinylr import ir
from tinylr.errors import TinylrError
from tinylr.export import OUTPUTS, _check_int8, export

pytestmark = pytest.mark.slow


def test_factored_layer_is_two_fully_connected_ops(digits_artifacts):
    graph = ir.load(digits_artifacts.int8_tflite)
    assert graph.opcodes == ["FULLY_CONNECTED"] * 3
    v, u, out = graph.operators
    # V: 64 -> 8 without bias; U: 8 -> 128 with bias and the ReLU fused; then 128 -> 10
    assert graph.tensors[v.inputs[1]].shape == (8, 64) and (len(v.inputs) < 3 or v.inputs[2] == -1)
    assert graph.tensors[u.inputs[1]].shape == (128, 8) and u.inputs[2] >= 0
    assert u.inputs[0] == v.outputs[0] and out.inputs[0] == u.outputs[0]
    assert [op.options["fused_activation_function"] for op in graph.operators] == ["NONE", "RELU", "NONE"]
    assert digits_artifacts.export["factored_layers"][0]["ops"] == [0, 1]


def test_int8_model_is_int8_with_per_channel_weights(digits_artifacts):
    graph = ir.load(digits_artifacts.int8_tflite)
    for i in graph.inputs + graph.outputs:
        assert graph.tensors[i].dtype == "INT8" and graph.tensors[i].shape in ((1, 64), (1, 10))
    for op in graph.operators:
        weight = graph.tensors[op.inputs[1]]
        assert weight.dtype == "INT8" and len(weight.quantization.scale) == weight.shape[0]
    # the input covers the data range [0, 1] exactly: scale 1/255, zero point -128
    inp = graph.tensors[graph.inputs[0]]
    assert inp.zero_point == -128 and abs(inp.scale - 1 / 255) < 1e-6


def test_export_json_matches_the_files(digits_artifacts):
    summary = json.loads((digits_artifacts.dir / "export.json").read_text())
    assert summary == digits_artifacts.export
    assert summary["ops"] == ["FULLY_CONNECTED"] * 3 and summary["per_channel_weights"]
    assert summary["float_max_abs_error"] <= 1e-4  # float .tflite vs torch on calibration samples
    for name, size in summary["sizes"].items():
        assert (digits_artifacts.dir / name).stat().st_size == size
    graph = ir.load(digits_artifacts.int8_tflite)
    out = graph.tensors[graph.outputs[0]]
    assert summary["output"]["scale"] == out.scale and summary["output"]["zero_point"] == out.zero_point
    assert summary["versions"]["onnx2tf"] == "1.28.8"


def test_onnx_keeps_the_factored_pair(digits_artifacts):
    model = onnx.load(digits_artifacts.onnx)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Gemm", "Relu", "Gemm"]
    assert model.opset_import[0].version == 17
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 64]


def test_a_users_onnx_file_exports_the_same_model(digits_artifacts, tmp_path):
    summary = export(digits_artifacts.onnx, tmp_path, data=digits_artifacts.dataset)
    assert summary["ops"] == ["FULLY_CONNECTED"] * 3 and summary["fully_connected"] == 3
    assert summary["float_max_abs_error"] <= 1e-4  # here against onnxruntime
    # same weights, same calibration: the same int8 model (tensor names may differ)
    ours, theirs = ir.load(tmp_path / "model_int8.tflite"), ir.load(digits_artifacts.int8_tflite)
    assert len(ours.tensors) == len(theirs.tensors)
    for a, b in zip(ours.tensors, theirs.tensors):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert (a.data is None and b.data is None) or np.array_equal(a.data, b.data)
        assert np.array_equal(a.quantization.scale, b.quantization.scale)
        assert np.array_equal(a.quantization.zero_point, b.quantization.zero_point)


def test_folded_factored_layer_is_reported(digits_artifacts):
    graph = ir.load(digits_artifacts.int8_tflite)
    layer = dict(name="hidden", in_features=64, rank=8, out_features=128, bias=True)
    assert _check_int8(graph, {"fully_connected": 3, "factored": [layer]})["factored_layers"][0]["ops"] == [0, 1]
    # a layer the graph does not hold as a pair (as after folding U·V into one dense FC)
    with pytest.raises(TinylrError, match="factored layer 'hidden' .* folded"):
        _check_int8(graph, {"fully_connected": 3, "factored": [{**layer, "rank": 16}]})
    with pytest.raises(TinylrError, match="3 FULLY_CONNECTED ops for 4 linear layers"):
        _check_int8(graph, {"fully_connected": 4, "factored": []})


def _onnx_with(op: str, path, **attrs):
    """x[N, 8] -> MatMul -> `op` -> y: a small valid model that onnxruntime runs."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node(op, ["h"], ["y"], **attrs)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _stale_outputs(folder):
    """Files of an earlier, successful-looking run: a failed export must remove them."""
    for name in OUTPUTS:
        (folder / name).write_bytes(b"old")


@pytest.mark.parametrize("op,match", [
    ("Bernoulli", "onnx2tf could not convert the model at ONNX node 'Bernoulli"),
    ("RandomUniformLike", "float .tflite differs from the source model"),   # caught by the float check
    ("Sin", r"int8 conversion left float ops \(SIN\)"),
])
def test_failed_export_leaves_no_artefact(tmp_path, op, match):
    data = tmp_path / "data.npz"
    np.savez(data, x_train=np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    out = tmp_path / "out"
    out.mkdir()
    _stale_outputs(out)
    with pytest.raises(TinylrError, match=match):
        export(_onnx_with(op, tmp_path / f"{op}.onnx"), out, data=data)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("content,match", [
    (None, "cannot read data"),                       # no such file
    (b"not an npz", "cannot read data"),
    ({"x_test": np.zeros((3, 64), np.float32)}, "no array x_train"),
    ({"x_train": np.full((3, 64), np.nan, np.float32)}, "finite floats"),
    ({"x_train": np.zeros((3, 65), np.float32)}, "65 values"),
])
def test_bad_data_file_is_a_clear_error(digits_artifacts, tmp_path, content, match):
    data = tmp_path / "data.npz"
    if isinstance(content, bytes):
        data.write_bytes(content)
    elif content is not None:
        np.savez(data, **content)
    _stale_outputs(tmp_path)
    with pytest.raises(TinylrError, match=match):
        export(digits_artifacts.checkpoint, tmp_path, data=data)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data.npz"] if content is not None else [])
