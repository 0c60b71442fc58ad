import numpy as np
import pytest
import torch

from tinylr.layers import LowRankLinear, dense_param_count
from tinylr.rrm import channels as ch
from tinylr.rrm.gnn import MPGNN, GNNConfig, build

CONFIGS = [GNNConfig(), GNNConfig(msg=(32, 32), upd=(32,), rank=2)]


def _packed(n, k, seed=0):
    return torch.from_numpy(ch.pack(ch.gaussian_ic(n, k, seed=seed), "amplitude"))


@torch.no_grad()
def _message_passing(model: MPGNN, packed: torch.Tensor) -> torch.Tensor:
    """The MPGNN of Shen et al. written edge by edge, as a graph library would run it."""
    k = packed.shape[0]
    h = packed[:, :k]
    alpha = packed[:, k]
    p = torch.ones(k)
    for _ in range(model.config.layers):
        x = torch.stack((torch.diagonal(h), alpha, p), dim=1)
        new_p = torch.empty(k)
        for i in range(k):
            msgs = [model.msg(torch.cat((x[j], torch.stack((h[j, i], h[i, j]))))) for j in range(k) if j != i]
            aggregate = torch.stack(msgs).amax(0) if msgs else torch.zeros(model.config.msg[-1])
            new_p[i] = torch.sigmoid(model.upd(torch.cat((x[i], aggregate))))[0]
        p = new_p
    return p


def test_reference_size_and_factored_layers():
    dense = build()
    assert sum(p.numel() for p in dense.parameters()) == 1233          # Shen et al.'s MPGNN
    assert not any(isinstance(m, LowRankLinear) for m in dense.modules())
    low = build(msg=[128, 128], upd=[128], rank=2)
    factored = {n: m for n, m in low.named_modules() if isinstance(m, LowRankLinear)}
    # every Linear whose factors are smaller is factored: 5->128, 128->128, 131->128; not 128->1
    assert sorted((m.in_features, m.out_features) for m in factored.values()) == [(5, 128), (128, 128), (131, 128)]
    assert all(m.rank == 2 for m in factored.values())
    assert sum(p.numel() for p in low.parameters()) == 1809 and dense_param_count(low) == 34305


@pytest.mark.parametrize("config", CONFIGS, ids=["mpgnn", "lr_mpgnn"])
def test_dense_form_equals_edge_by_edge_message_passing(config):
    torch.manual_seed(0)
    model = MPGNN(config).eval()
    x = _packed(3, config.k, seed=1)
    with torch.no_grad():
        y = model(x)
    for s in range(3):
        assert torch.allclose(y[s], _message_passing(model, x[s]), atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS, ids=["mpgnn", "lr_mpgnn"])
def test_permuting_users_permutes_powers(config):
    torch.manual_seed(1)
    model = MPGNN(config).eval()
    c = ch.gaussian_ic(4, config.k, seed=3)
    perm = np.random.default_rng(0).permutation(config.k)
    permuted = ch.Channels(c.gains[:, perm][:, :, perm], c.alpha[:, perm], c.noise, c.log_base)
    with torch.no_grad():
        p = model(torch.from_numpy(ch.pack(c, "amplitude")))
        q = model(torch.from_numpy(ch.pack(permuted, "amplitude")))
    assert torch.allclose(q, p[:, perm], atol=1e-6)
    assert not torch.allclose(p, p[:, 0:1].expand_as(p), atol=1e-3)    # the powers do differ between users


def test_batch_and_size_independence():
    torch.manual_seed(2)
    model = build(rank=1).eval()
    x = _packed(5, 10)
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(5)])
        assert torch.allclose(together, alone, atol=1e-6)
        # the same weights run any number of users (only the constant masks depend on K)
        small = MPGNN(GNNConfig(k=4, rank=1))
        small.load_state_dict(model.state_dict())
        assert torch.allclose(small(_packed(2, 4))[0], _message_passing(small, _packed(2, 4)[0]), atol=1e-5)
        single = MPGNN(GNNConfig(k=1))
        assert single(_packed(1, 1)).shape == (1, 1)   # K = 1: no neighbour, aggregate 0


def test_bad_sizes_are_rejected():
    for bad in (dict(k=0), dict(msg=()), dict(rank=-1), dict(upd=(0,))):
        with pytest.raises(ValueError):
            GNNConfig(**bad)
