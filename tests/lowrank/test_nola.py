"""NOLA-style layers: factors mixed from a seeded random basis; only the mixing coefficients train."""

import torch
from torch import nn

from tinylr.layers import LowRankLinear
from tinylr.lowrank import NOLAConfig, NOLALinear, materialize_, nola_


def test_forward_is_the_materialized_product():
    torch.manual_seed(0)
    layer = NOLALinear(20, 30, rank=4, n_basis_u=16, n_basis_v=8, seed=7)
    nn.init.normal_(layer.bias)
    x = torch.randn(5, 20)
    u, v = layer.u_matrix(), layer.v_matrix()
    assert u.shape == (30, 4) and v.shape == (4, 20)
    torch.testing.assert_close(layer(x), x @ (u @ v).T + layer.bias)
    low = layer.materialize()
    assert isinstance(low, LowRankLinear) and low.rank == 4
    torch.testing.assert_close(low(x), layer(x), atol=1e-5, rtol=1e-5)


def test_only_coefficients_and_bias_train_and_the_basis_is_not_stored():
    layer = NOLALinear(64, 128, rank=8, n_basis_u=32, n_basis_v=16, seed=0)
    assert {n: p.numel() for n, p in layer.named_parameters()} == {"alpha": 32, "beta": 16, "bias": 128}
    assert set(layer.state_dict()) == {"alpha", "beta", "bias", "seed"}
    assert layer.trained_params == 32 + 16 + 128
    assert layer.dense_params / layer.trained_params > 47


def test_loading_a_state_dict_regenerates_the_basis_from_its_seed():
    a = NOLALinear(12, 10, rank=3, n_basis_u=5, n_basis_v=5, seed=1)
    b = NOLALinear(12, 10, rank=3, n_basis_u=5, n_basis_v=5, seed=2)
    x = torch.randn(4, 12)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x))


def test_gradients_reach_only_alpha_and_beta():
    layer = NOLALinear(8, 6, rank=2, n_basis_u=4, n_basis_v=4, seed=0)
    layer(torch.randn(3, 8)).sum().backward()
    assert layer.alpha.grad.abs().sum() > 0 and layer.beta.grad.abs().sum() > 0
    assert not layer.basis_u.requires_grad


def test_nola_and_materialize_on_a_model():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    infos = nola_(model, NOLAConfig(rank=8, n_basis_u=64, n_basis_v=64, seed=3))
    # the 128 -> 10 layer has min(m, n) = 10 > 8, so both are replaced, each with its own basis
    assert [i["name"] for i in infos] == ["0", "2"]
    assert int(model[0].seed) != int(model[2].seed)
    assert infos[0]["compression_vs_dense"] == (64 * 128 + 128) / (64 + 64 + 128)
    x = torch.randn(3, 64)
    want = model(x)
    done = materialize_(model)
    assert [type(m) for m in model] == [LowRankLinear, nn.ReLU, LowRankLinear] and len(done) == 2
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)
