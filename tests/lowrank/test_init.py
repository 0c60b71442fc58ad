"""Spectral and function-matching init, and the Frobenius decay penalty."""

import pytest
import torch
from torch import nn

from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.lowrank import FunctionMatchingInit, SpectralInit, frobenius_penalty, init_lowrank_


def test_spectral_init_is_the_best_approximation_of_a_default_init():
    layer = LowRankLinear(64, 32, rank=6)
    init_lowrank_(layer, SpectralInit(seed=3))
    torch.manual_seed(3)
    twin = nn.Linear(64, 32)  # what torch would have started a dense layer from, with that seed
    u, s, vh = torch.linalg.svd(twin.weight.detach().double())
    torch.testing.assert_close(layer.dense_weight().double(), (u[:, :6] * s[:6]) @ vh[:6], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layer.U.bias, twin.bias)


def test_spectral_init_balances_the_factors():
    # torch's default init gives U (fan-in r) entries far larger than V's (fan-in n)
    torch.manual_seed(0)
    plain, spectral = LowRankLinear(256, 256, rank=16), LowRankLinear(256, 256, rank=16)
    init_lowrank_(spectral, SpectralInit(seed=0))
    assert plain.U.weight.norm() > 3 * plain.V.weight.norm()
    torch.testing.assert_close(torch.linalg.svdvals(spectral.U.weight), torch.linalg.svdvals(spectral.V.weight))


def test_spectral_init_of_grouped_conv_and_whole_models():
    model = nn.Sequential(LowRankConv2d(8, 16, 3, rank=4, groups=2), nn.ReLU(), nn.Flatten(), LowRankLinear(16, 4, 2))
    names = init_lowrank_(model, SpectralInit(seed=0))
    assert names == ["0", "3"]
    w = model[0].dense_weight().reshape(2, 8, -1)
    assert [torch.linalg.matrix_rank(g).item() for g in w] == [2, 2]


def _relu_mismatch(layer, twin, x):
    return (torch.relu(layer(x)) - torch.relu(twin(x))).pow(2).sum(-1).mean().item()


def test_function_matching_beats_spectral_init_on_the_relu_output():
    spectral, matched = LowRankLinear(64, 128, rank=2), LowRankLinear(64, 128, rank=2)
    init_lowrank_(spectral, SpectralInit(seed=1))
    init_lowrank_(matched, FunctionMatchingInit(seed=1, steps=300))
    torch.manual_seed(1)
    twin = nn.Linear(64, 128)
    x = torch.randn(4096, 64)
    assert _relu_mismatch(matched, twin, x) < 0.97 * _relu_mismatch(spectral, twin, x)


def test_frobenius_penalty_is_the_norm_of_the_product_with_its_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(LowRankLinear(10, 12, 3), LowRankConv2d(4, 6, 3, rank=4, groups=2))
    penalty = frobenius_penalty(model)
    want = model[0].U.weight @ model[0].V.weight
    conv = model[1]
    u, v = conv.U.weight.reshape(2, 3, 2), conv.V.weight.reshape(2, 2, -1)
    direct = want.pow(2).sum() + torch.bmm(u, v).pow(2).sum()
    torch.testing.assert_close(penalty, direct)
    penalty.backward()
    grad_u = model[0].U.weight.grad.clone()
    torch.testing.assert_close(grad_u, 2 * want.detach() @ model[0].V.weight.detach().T, atol=1e-6, rtol=1e-5)


def test_frobenius_penalty_needs_factored_layers():
    with pytest.raises(ValueError, match="no factored layers"):
        frobenius_penalty(nn.Linear(3, 3))
