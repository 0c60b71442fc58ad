"""LowRankConv2d: a k×k conv to `rank` channels, then a 1×1 conv, equivalent to nn.Conv2d."""

import pytest
import torch
from torch import nn

from tinylr.layers import LowRankConv2d, LowRankLinear, dense_param_count


def test_structure_is_kxk_then_1x1():
    layer = LowRankConv2d(8, 16, 3, rank=4, stride=2, padding=1)
    assert isinstance(layer.V, nn.Conv2d) and isinstance(layer.U, nn.Conv2d)
    assert layer.V.weight.shape == (4, 8, 3, 3) and layer.V.bias is None
    assert layer.V.stride == (2, 2) and layer.V.padding == (1, 1)
    assert layer.U.weight.shape == (16, 4, 1, 1) and layer.U.bias.shape == (16,)
    assert layer.U.stride == (1, 1) and layer.U.padding == (0, 0)


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=6, out_channels=10, kernel_size=3, rank=3, padding=1),
    dict(in_channels=6, out_channels=10, kernel_size=(3, 1), rank=2, stride=(2, 1), padding=(1, 0), bias=False),
    dict(in_channels=8, out_channels=12, kernel_size=3, rank=6, groups=2, dilation=2, padding=2),
])
def test_to_dense_reproduces_outputs(kwargs):
    torch.manual_seed(0)
    layer = LowRankConv2d(**kwargs)
    if layer.has_bias:
        nn.init.normal_(layer.U.bias)
    dense = layer.to_dense()
    assert isinstance(dense, nn.Conv2d) and dense.groups == layer.groups
    x = torch.randn(2, kwargs["in_channels"], 9, 7)
    torch.testing.assert_close(dense(x), layer(x), atol=1e-5, rtol=1e-5)
    # each group's (out/g, in/g·kh·kw) matrix has rank rank/g
    g = layer.groups
    w = dense.weight.detach().reshape(g, dense.out_channels // g, -1)
    assert [torch.linalg.matrix_rank(wi).item() for wi in w] == [layer.rank // g] * g


@pytest.mark.parametrize("groups", [1, 2])
def test_param_counts_match_actual_parameters(groups):
    layer = LowRankConv2d(8, 16, 3, rank=4, groups=groups)
    assert layer.params == sum(p.numel() for p in layer.parameters())
    assert layer.dense_params == sum(p.numel() for p in layer.to_dense().parameters())


def test_worthwhile_is_the_rank_inequality_per_group():
    # m = 16, n = 8·9 = 72: r·88 < 1152  <=>  r <= 13
    assert LowRankConv2d(8, 16, 3, rank=13).worthwhile
    assert not LowRankConv2d(8, 16, 3, rank=14).worthwhile
    # groups 2: m = 8, n = 36, per-group rank r/2: (r/2)·44 < 288 <=> r/2 <= 6
    assert LowRankConv2d(8, 16, 3, rank=12, groups=2).worthwhile
    assert not LowRankConv2d(8, 16, 3, rank=14, groups=2).worthwhile


@pytest.mark.parametrize("kwargs, match", [
    (dict(rank=0), "rank"), (dict(rank=17), "rank"), (dict(rank=3, groups=2), "multiple"),
    (dict(rank=4, groups=3), "multiples of groups"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LowRankConv2d(8, 16, 3, **kwargs)


def test_dense_param_count_covers_both_layer_kinds():
    model = nn.Sequential(LowRankConv2d(3, 8, 3, rank=2), nn.Flatten(), LowRankLinear(8, 4, rank=2))
    assert dense_param_count(model) == (8 * 3 * 9 + 8) + (8 * 4 + 4)
