"""Every factored layer kind through the real export stage (torch.onnx -> onnx2tf -> int8 TFLite):
each factored layer must come out as two ops, the first without a (non-zero) bias."""

import numpy as np
import pytest
import torch
from torch import nn

from tinylr import ir
from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.lowrank import FactorizeConfig, FixedRankRule, NOLAConfig, SVDLayer, factorize_, materialize_, nola_
from tinylr.lowrank.deploy import export_model, module_calls

pytestmark = pytest.mark.slow


def _oialr_deployable(dense: nn.Module, rank: int) -> nn.Module:
    """What OIALR.finalize makes of a layer truncated to `rank`: Σ folded into U."""
    layer = SVDLayer(dense)
    _, s, _ = layer.rotate_()
    layer.truncate_(s, rank)
    return layer.to_deployable()


def _weights(graph, op):
    return graph.tensors[op.inputs[1]]


def _no_bias(graph, op):
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return True
    bias = graph.tensors[op.inputs[2]]  # CONV_2D always has one; the converter fills it with zeros
    return bias.data is not None and not np.any(bias.data)


def test_linear_kinds_are_two_fully_connected_ops_each(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 40), nn.ReLU(), nn.Linear(40, 32), nn.ReLU(),
                          nn.Linear(32, 10))
    factorize_(model, FactorizeConfig(rule=FixedRankRule(6)), filter_fn=lambda m, name: name == "0")
    model[2] = _oialr_deployable(model[2], rank=5)
    nola_(model, NOLAConfig(rank=4, n_basis_u=16, n_basis_v=16), filter_fn=lambda m, name: name == "4")
    materialize_(model)
    assert [type(model[i]) for i in (0, 2, 4, 6)] == [LowRankLinear] * 3 + [nn.Linear]
    assert module_calls(model, (64,)) == {"FULLY_CONNECTED": 7, "CONV_2D": 0}

    x = np.random.default_rng(0).random((200, 64), dtype=np.float32)
    summary = export_model(model, x, tmp_path)
    graph = ir.load(tmp_path / "model_int8.tflite")
    assert graph.opcodes == ["FULLY_CONNECTED"] * 7 and summary["ops"] == graph.opcodes
    shapes = [_weights(graph, op).shape for op in graph.operators]
    assert shapes == [(6, 64), (48, 6), (5, 48), (40, 5), (4, 40), (32, 4), (10, 32)]
    ops = graph.operators
    for v, u in ((ops[0], ops[1]), (ops[2], ops[3]), (ops[4], ops[5])):
        assert _no_bias(graph, v) and u.inputs[0] == v.outputs[0]
        assert _weights(graph, v).dtype == _weights(graph, u).dtype == "INT8"


def test_conv_kinds_are_two_conv_2d_ops_each(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 5))
    factorize_(model, FactorizeConfig(rule=FixedRankRule(4)), filter_fn=lambda m, name: name == "0")
    model[2] = _oialr_deployable(model[2], rank=6)
    assert isinstance(model[0], LowRankConv2d) and isinstance(model[2], LowRankConv2d)

    x = np.random.default_rng(0).random((100, 3, 12, 12), dtype=np.float32)
    export_model(model, x, tmp_path)
    graph = ir.load(tmp_path / "model_int8.tflite")
    convs = [op for op in graph.operators if op.opcode == "CONV_2D"]
    assert len(convs) == 4 and graph.opcodes.count("FULLY_CONNECTED") == 1
    # TFLite filters are (out, kh, kw, in): k×k to the rank, then 1×1 back up
    assert [_weights(graph, op).shape for op in convs] == [(4, 3, 3, 3), (16, 1, 1, 4), (6, 3, 3, 16), (24, 1, 1, 6)]
    for v, u in ((convs[0], convs[1]), (convs[2], convs[3])):
        assert _no_bias(graph, v) and u.inputs[0] == v.outputs[0]
