"""NOLA-style layers (after Koohpayegani et al., 2024): factors as mixtures of random bases.

U = Σᵢ αᵢ·Aᵢ and V = Σⱼ βⱼ·Bⱼ, where the basis matrices Aᵢ (m×r) and Bⱼ (r×n) are
drawn from a seeded generator and never stored: a checkpoint holds the seed, the
coefficients α, β and the bias. Only α and β are trained, so the trained (and
stored) size is k_u + k_v (+ bias) however large m, n and r are. NOLA applies
this to LoRA adapters; here it parameterizes a factored layer trained from
scratch. It is a training/compression feature: for deployment `materialize_`
turns each layer into a LowRankLinear with the actual U and V (two ops).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import LowRankLinear
from .matrices import FilterFn, candidates, load_factors_


@dataclass(frozen=True)
class NOLAConfig:
    rank: int = 8
    n_basis_u: int = 64   # k_u: coefficients α mixing the (m×r) basis of U
    n_basis_v: int = 64   # k_v: coefficients β mixing the (r×n) basis of V
    seed: int = 0         # layer i of a model uses seed + i, so no two layers share a basis

    def __post_init__(self):
        if min(self.rank, self.n_basis_u, self.n_basis_v) < 1:
            raise ValueError("NOLAConfig needs rank, n_basis_u and n_basis_v >= 1")


class NOLALinear(nn.Module):
    """y = U(V(x)) + b with U = Σ αᵢAᵢ, V = Σ βⱼBⱼ; the bases Aᵢ, Bⱼ come from `seed`."""

    def __init__(self, in_features: int, out_features: int, rank: int, n_basis_u: int, n_basis_v: int,
                 seed: int, bias: bool = True):
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"rank must be between 1 and {min(in_features, out_features)}, got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.n_basis_u, self.n_basis_v = n_basis_u, n_basis_v
        self.register_buffer("seed", torch.tensor(int(seed)))  # in the state_dict: the basis comes back with it
        self._make_basis()
        # Entries of U and V with std s give UV entries of variance r·s⁴; pick s so that
        # this is 1/(3n), the variance of torch's default nn.Linear init.
        s = (1.0 / (3 * in_features * rank)) ** 0.25
        self.alpha = nn.Parameter(torch.randn(n_basis_u) * s)
        self.beta = nn.Parameter(torch.randn(n_basis_v) * s)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def _make_basis(self) -> None:
        gen = torch.Generator().manual_seed(int(self.seed))
        # N(0, 1/k) entries: a mixture with coefficients of std s has entries of std ≈ s
        a = torch.randn(self.n_basis_u, self.out_features, self.rank, generator=gen) / self.n_basis_u ** 0.5
        b = torch.randn(self.n_basis_v, self.rank, self.in_features, generator=gen) / self.n_basis_v ** 0.5
        self.register_buffer("basis_u", a, persistent=False)
        self.register_buffer("basis_v", b, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._make_basis()  # the loaded seed, not the constructor's, defines the basis

    def u_matrix(self) -> torch.Tensor:
        return torch.einsum("k,kmr->mr", self.alpha, self.basis_u)

    def v_matrix(self) -> torch.Tensor:
        return torch.einsum("k,krn->rn", self.beta, self.basis_v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.v_matrix()), self.u_matrix(), self.bias)

    @property
    def trained_params(self) -> int:
        """What training updates and a checkpoint stores: k_u + k_v (+ bias)."""
        return self.n_basis_u + self.n_basis_v + (self.out_features if self.bias is not None else 0)

    @property
    def params(self) -> int:
        """Parameters of the materialized LowRankLinear: r·(m+n) (+ bias)."""
        return self.rank * (self.in_features + self.out_features) + (self.out_features if self.bias is not None else 0)

    @property
    def dense_params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias is not None else 0)

    @torch.no_grad()
    def materialize(self) -> LowRankLinear:
        layer = LowRankLinear(self.in_features, self.out_features, self.rank, bias=self.bias is not None,
                              device=self.alpha.device, dtype=self.alpha.dtype)
        load_factors_(layer, self.u_matrix()[None], self.v_matrix()[None])
        if self.bias is not None:
            layer.U.bias.copy_(self.bias)
        return layer

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"n_basis_u={self.n_basis_u}, n_basis_v={self.n_basis_v}, seed={int(self.seed)}")


def nola_(model: nn.Module, config: NOLAConfig | None = None, filter_fn: FilterFn | None = None) -> list[dict]:
    """Replace each accepted nn.Linear by a freshly initialized NOLALinear (for training from scratch).

    Layers where the rank would not be below min(m, n) are left alone. Returns,
    per layer, the parameter counts and the compression ratio dense / trained.
    """
    config, done = config or NOLAConfig(), []
    for i, (name, module) in enumerate(candidates(model, filter_fn)):
        if not isinstance(module, nn.Linear) or config.rank >= min(module.in_features, module.out_features):
            continue
        layer = NOLALinear(module.in_features, module.out_features, config.rank, config.n_basis_u,
                           config.n_basis_v, seed=config.seed + i, bias=module.bias is not None)
        model.set_submodule(name, layer.to(module.weight.device))
        done.append(describe(name, layer))
    return done


def describe(name: str, layer: NOLALinear) -> dict:
    return {"name": name, "rank": layer.rank, "trained_params": layer.trained_params,
            "materialized_params": layer.params, "dense_params": layer.dense_params,
            "compression_vs_dense": layer.dense_params / layer.trained_params,
            "compression_vs_lowrank": layer.params / layer.trained_params}


def materialize_(model: nn.Module) -> list[dict]:
    """Replace every NOLALinear by the LowRankLinear it computes (for export); returns their descriptions."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, NOLALinear)]
    for name, layer in found:
        model.set_submodule(name, layer.materialize())
    return [describe(name, layer) for name, layer in found]
