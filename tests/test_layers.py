import pytest
import torch
from torch import nn

from tinylr.layers import LowRankLinear, dense_param_count
from tinylr.zoo.digits_mlp import build


def test_structure_is_two_linears_first_without_bias():
    layer = LowRankLinear(64, 128, rank=8)
    assert isinstance(layer.V, nn.Linear) and isinstance(layer.U, nn.Linear)
    assert layer.V.weight.shape == (8, 64) and layer.V.bias is None
    assert layer.U.weight.shape == (128, 8) and layer.U.bias.shape == (128,)
    assert LowRankLinear(64, 128, rank=8, bias=False).U.bias is None


@pytest.mark.parametrize("bias", [True, False])
def test_to_dense_reproduces_outputs(bias):
    torch.manual_seed(0)
    layer = LowRankLinear(20, 12, rank=3, bias=bias)
    if bias:
        nn.init.normal_(layer.U.bias)  # a zero bias would hide a forgotten copy
    dense = layer.to_dense()
    assert isinstance(dense, nn.Linear) and (dense.bias is not None) == bias
    x = torch.randn(7, 20)
    torch.testing.assert_close(dense(x), layer(x), atol=1e-5, rtol=1e-5)
    # the dense weight really has the factored rank
    assert torch.linalg.matrix_rank(dense.weight).item() == 3
    # and it is a copy: editing the dense layer leaves the factored one alone
    dense.weight.data.zero_()
    assert layer.dense_weight().abs().sum() > 0


@pytest.mark.parametrize("bias", [True, False])
def test_param_counts_match_actual_parameters(bias):
    layer = LowRankLinear(64, 128, rank=8, bias=bias)
    assert layer.params == sum(p.numel() for p in layer.parameters())
    assert layer.dense_params == sum(p.numel() for p in layer.to_dense().parameters())
    assert layer.params == 8 * (64 + 128) + (128 if bias else 0)


def test_worthwhile_is_the_rank_inequality():
    # r * (m + n) < m * n  <=>  r < 64 * 128 / 192 = 42.67
    assert LowRankLinear(64, 128, rank=42).worthwhile
    assert not LowRankLinear(64, 128, rank=43).worthwhile
    assert not LowRankLinear(4, 4, rank=2).worthwhile  # 2 * 8 == 16: equal is not fewer


@pytest.mark.parametrize("rank", [0, -1, 65])
def test_rank_out_of_range_is_rejected(rank):
    with pytest.raises(ValueError, match="rank"):
        LowRankLinear(64, 128, rank=rank)


def test_dense_param_count_of_a_model():
    model = build(hidden=128, rank=8)
    assert sum(p.numel() for p in model.parameters()) == 8 * 192 + 128 + 128 * 10 + 10
    assert dense_param_count(model) == 64 * 128 + 128 + 128 * 10 + 10
