"""OIALR: full rank, then U·Σ·Vᵀ with only Σ trained, rotated and truncated on a schedule."""

import pytest
import torch
from torch import nn

from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.lowrank import OIALR, OIALRConfig, SVDLayer
from tinylr.lowrank.fit import accuracy, deterministic, fit
from tinylr.zoo import get
from tinylr.zoo.digits_mlp import build


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 4))


def _steps(model, opt, oialr, n, x, y):
    for _ in range(n):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        oialr.step()


def test_switch_after_delay_keeps_the_function_and_the_last_layer():
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
    oialr = OIALR(model, opt, OIALRConfig(delay=3, stability_frequency=2))
    _steps(model, opt, oialr, 2, x, y)
    assert not oialr.layers and isinstance(model[0], nn.Linear)
    want = model(x)
    _steps(model, opt, oialr, 1, x, y)  # the optimizer step happens before the switch: compare after it
    assert set(oialr.layers) == {"0", "2"} and isinstance(model[4], nn.Linear)
    assert oialr.ranks == {"0": 32, "2": 48}
    # only Σ and the biases are trainable, and the optimizer now holds exactly those
    trainable = {n for n, p in model.named_parameters()}
    assert trainable == {"0.sigma", "0.bias", "2.sigma", "2.bias", "4.weight", "4.bias"}
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in model.parameters()}
    assert model(x).shape == want.shape


def test_rotation_keeps_the_function_and_diagonalizes_sigma():
    torch.manual_seed(0)
    layer = SVDLayer(nn.Linear(10, 8))
    with torch.no_grad():
        layer.sigma.add_(0.1 * torch.randn(8, 8))  # training makes Σ a full matrix
    x = torch.randn(5, 10)
    want = layer(x)
    us, s, vs = layer.rotate_()
    layer.truncate_(s, 8)
    torch.testing.assert_close(layer(x), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.sigma.detach(), torch.diag(s).float())
    torch.testing.assert_close(layer.u.T @ layer.u, torch.eye(8), atol=1e-5, rtol=0)


def test_truncation_rule_cutoff_half_step_and_floor():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: Σ stays what we set
    oialr = OIALR(model, opt, OIALRConfig(delay=0, stability_frequency=1, sigma_cutoff_fraction=0.1,
                                          min_rank_fraction=0.1))
    layer = oialr.layers["0"]  # 64 x 32: full rank 32, floor ceil(0.1 * 32) = 4
    with torch.no_grad():
        layer.sigma.copy_(torch.diag(torch.tensor([10.0] * 2 + [0.01] * 30)))
    x, y = torch.randn(8, 32), torch.randint(0, 4, (8,))
    ranks = []
    for _ in range(5):
        _steps(model, opt, oialr, 1, x, y)
        ranks.append(oialr.ranks["0"])
    # the cutoff wants 2, but each update may halve the rank at most, and 4 is the floor
    assert ranks == [16, 8, 4, 4, 4]
    assert [h["ranks"]["0"] for h in oialr.history] == [32, 16, 8, 4, 4, 4]


def test_optimizer_state_follows_sigma():
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    oialr = OIALR(model, opt, OIALRConfig(delay=0, stability_frequency=2, sigma_cutoff_fraction=0.5))
    x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
    _steps(model, opt, oialr, 2, x, y)
    for layer in oialr.layers.values():
        state = opt.state[layer.sigma]
        assert state["exp_avg"].shape == state["exp_avg_sq"].shape == layer.sigma.shape
        assert (state["exp_avg_sq"] >= 0).all() and int(state["step"]) == 2
    _steps(model, opt, oialr, 4, x, y)  # training goes on with the truncated Σ
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_finalize_folds_sigma_into_u():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 36, 64),
                          nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    # a fresh init has a flat spectrum: a high cutoff makes the ranks fall within a few steps
    oialr = OIALR(model, opt, OIALRConfig(delay=0, stability_frequency=1, sigma_cutoff_fraction=0.6))
    x, y = torch.randn(32, 8, 6, 6), torch.randint(0, 4, (32,))
    _steps(model, opt, oialr, 6, x, y)
    want = model(x)
    ranks = oialr.ranks
    done = oialr.finalize()
    assert isinstance(model[0], LowRankConv2d) and model[0].rank == ranks["0"] < 16
    assert isinstance(model[3], LowRankLinear) and model[3].rank == ranks["3"] < 64
    assert [d["factored"] for d in done] == [True, True]
    torch.testing.assert_close(model(x), want, atol=1e-4, rtol=1e-4)
    # Σ went into U: V's rows are orthonormal
    v = model[3].V.weight.detach()
    torch.testing.assert_close(v @ v.T, torch.eye(v.shape[0]), atol=1e-4, rtol=0)


def test_optimizer_must_hold_the_model():
    model = _mlp()
    with pytest.raises(ValueError, match="optimizer"):
        OIALR(model, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), OIALRConfig(delay=0))


def test_digits_rank_falls_and_accuracy_holds():
    """A short schedule on digits: ranks fall; test accuracy stays within 1 point of dense."""
    split = get("digits_mlp").load_data()

    def train(with_oialr):
        with deterministic(0):
            model = build(hidden=128, rank=0)
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            hooks = []
            if with_oialr:
                oialr = OIALR(model, opt, OIALRConfig(delay=100, stability_frequency=20, sigma_cutoff_fraction=0.2))
                hooks = [lambda step: oialr.step()]
            fit(model, split.x_train, split.y_train, opt, epochs=15, batch_size=64, hooks=hooks)
            if with_oialr:
                ranks = oialr.ranks
                oialr.finalize()
                return model, ranks
            return model, None

    dense, _ = train(False)
    low, ranks = train(True)
    assert ranks["hidden"] <= 32  # of 64; the output layer stays full rank
    assert isinstance(low.hidden, LowRankLinear) and isinstance(low.out, nn.Linear)
    dense_acc = accuracy(dense, split.x_test, split.y_test)
    low_acc = accuracy(low, split.x_test, split.y_test)
    assert dense_acc > 0.95
    assert low_acc >= dense_acc - 0.01
    assert sum(p.numel() for p in low.parameters()) < 0.6 * sum(p.numel() for p in dense.parameters())


def test_finalize_keeps_a_layer_dense_when_factors_would_be_larger():
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    oialr = OIALR(model, opt, OIALRConfig(delay=0))
    x = torch.randn(4, 32)
    want = model(x)
    done = oialr.finalize()  # still full rank: 32·(64+32) ≥ 64·32
    assert [d["factored"] for d in done] == [False, False]
    assert type(model[0]) is nn.Linear and set(dict(model.named_parameters())) == {
        f"{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")}
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)
