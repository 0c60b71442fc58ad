"""Initializing factored layers for training from scratch.

- SpectralInit: sample the full-rank weight the layer's dense twin would start
  from (torch's usual init) and keep its best rank-r approximation, √S split
  over both factors: the product starts as close to a dense layer's start as a
  rank-r matrix can, and the factors are balanced (equal singular values),
  whereas torch's init of the two sub-layers makes U's entries √(n/r) times V's.
- FunctionMatchingInit: spectral init, then a few hundred Adam steps on the
  factors to match the dense twin's ReLU output on Gaussian inputs.
- frobenius_penalty: ‖UV‖²_F, the weight decay of the product, for use instead
  of weight decay on U and V separately.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from .matrices import FilterFn, factor_stacks, factored_layers, load_factors_, svd_factors, weight_stack


@dataclass(frozen=True)
class SpectralInit:
    """Best rank-r approximation of a freshly initialized dense weight. `seed` makes it repeatable."""

    seed: int | None = None


@dataclass(frozen=True)
class FunctionMatchingInit:
    """Spectral init refined to minimise E_x~N(0,I) ‖ReLU(Wx+b) − ReLU(UVx+b)‖².

    After Vodrahalli et al. (2022), who show that matching the layer's ReLU
    output beats matching its weights as the rank drops; this is our reading of
    the idea, not the paper's algorithm. `lr` is relative to the factors' RMS
    entry, so it does not depend on the layer's size.
    """

    steps: int = 300
    lr: float = 0.01
    batch_size: int = 256
    seed: int | None = None

    def __post_init__(self):
        if self.steps < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError("FunctionMatchingInit needs steps >= 0, batch_size >= 1 and lr > 0")


@torch.no_grad()
def init_lowrank_(model: nn.Module, config: SpectralInit | FunctionMatchingInit | None = None,
                  filter_fn: FilterFn | None = None) -> list[str]:
    """Initialize every factored layer of `model` (or `model` itself); returns their names.

    `config` defaults to SpectralInit().
    """
    config = config or SpectralInit()
    done = []
    with _seeded(config.seed):
        for name, layer in factored_layers(model):
            if filter_fn is not None and not filter_fn(layer, name):
                continue
            twin = _dense_twin(layer)
            w = weight_stack(twin)
            left, right = svd_factors(w, layer.rank // getattr(layer, "groups", 1))
            bias = None if twin.bias is None else twin.bias.detach().reshape(w.shape[0], -1)
            if isinstance(config, FunctionMatchingInit):
                with torch.enable_grad():
                    left, right = _match(w, bias, left, right, config)
            load_factors_(layer, left, right)
            if layer.has_bias:
                layer.U.bias.copy_(twin.bias)
            done.append(name)
    return done


def frobenius_penalty(model: nn.Module) -> torch.Tensor:
    """Σ over factored layers of ‖U·V‖²_F, differentiable, without forming U·V.

    ‖UV‖²_F = trace(UᵀU·VVᵀ), r×r products only. Add λ/2 of it to the loss
    (and no weight decay on U, V): it decays the layer's function, whereas
    ‖U‖² + ‖V‖² also pushes the two factors toward each other's scale.
    """
    total = None
    for _, layer in factored_layers(model):
        u, v = factor_stacks(layer)
        term = (u.transpose(1, 2) @ u * (v @ v.transpose(1, 2))).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("the model has no factored layers (LowRankLinear / LowRankConv2d)")
    return total


def _dense_twin(layer) -> nn.Module:
    """A freshly initialized dense layer of the same shape (torch's default init)."""
    if hasattr(layer, "in_features"):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.has_bias)
    return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, groups=layer.groups,
                     bias=layer.has_bias)


def _match(w, bias, left, right, cfg: FunctionMatchingInit):
    """Adam on the (g, m, r) and (g, r, n) factors; returns whichever of start/end matches better."""
    g, _, n = w.shape
    relu = torch.relu
    b = 0 if bias is None else bias[:, None, :]

    def loss(u, v, x):
        want = relu(x @ w.transpose(1, 2) + b)
        got = relu(x @ v.transpose(1, 2) @ u.transpose(1, 2) + b)
        return (got - want).pow(2).sum(-1).mean()

    probe = torch.randn(g, 4 * cfg.batch_size, n)  # held-out inputs to judge the result
    u, v = left.clone().requires_grad_(True), right.clone().requires_grad_(True)
    scale = float(torch.cat([left.flatten(), right.flatten()]).pow(2).mean().sqrt()) or 1.0
    opt = torch.optim.Adam([u, v], lr=cfg.lr * scale)
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss(u, v, torch.randn(g, cfg.batch_size, n)).backward()
        opt.step()
    with torch.no_grad():
        if loss(u, v, probe) < loss(left, right, probe):
            return u.detach(), v.detach()
    return left, right


@contextlib.contextmanager
def _seeded(seed: int | None):
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
