"""OIALR: orthogonality-informed adaptive low-rank training (Coquelin et al., 2024).

The orthogonal bases U, Vᵀ of a layer's SVD settle early in training; what keeps
changing is the mixing between them. So: train full rank for `delay` steps, then
replace each eligible layer by W = U·Σ·Vᵀ with U and Vᵀ frozen and only Σ (a full
r×r matrix, starting as diag(s)) and the bias trained. Every
`stability_frequency` steps, Σ = U_s·S·V_sᵀ is diagonalized into the bases
(U ← U·U_s, Vᵀ ← V_sᵀ·Vᵀ, Σ ← diag(S), the function is unchanged) and truncated to
the singular values S_i ≥ sigma_cutoff_fraction·S_0. For deployment Σ is folded
into U: the layer becomes a LowRankLinear/LowRankConv2d, two ops after export.

Usage:
    oialr = OIALR(model, optimizer, OIALRConfig(delay=1000, stability_frequency=100))
    for x, y in batches:
        ...; optimizer.step(); oialr.step()
    decisions = oialr.finalize()
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .matrices import FACTORABLE, FilterFn, candidates, factored_like, load_factors_, weight_stack, worthwhile


@dataclass(frozen=True)
class OIALRConfig:
    """Schedule and truncation rule; the defaults are the paper's."""

    delay: int = 1000                    # full-rank steps before the switch to U·Σ·Vᵀ
    stability_frequency: int = 100       # steps between rotate-and-truncate updates
    sigma_cutoff_fraction: float = 0.1   # keep S_i ≥ this · S_0
    max_cut_fraction: float = 0.5        # never drop more than this share of the rank in one update
    min_rank_fraction: float = 0.01      # never go below this share of min(m, n) (and never below 1)
    keep_last_full_rank: bool = True     # the last Linear/Conv2d (registration order) stays dense

    def __post_init__(self):
        if self.delay < 0 or self.stability_frequency < 1:
            raise ValueError("OIALRConfig needs delay >= 0 and stability_frequency >= 1")
        if not (0 < self.sigma_cutoff_fraction < 1 and 0 < self.max_cut_fraction <= 1
                and 0 <= self.min_rank_fraction <= 1):
            raise ValueError("sigma_cutoff_fraction must be in (0, 1), max_cut_fraction in (0, 1], "
                             "min_rank_fraction in [0, 1]")


class SVDLayer(nn.Module):
    """A Linear or (ungrouped) Conv2d as U·Σ·Vᵀ: U, Vᵀ frozen buffers, Σ and bias trained."""

    def __init__(self, source: nn.Linear | nn.Conv2d):
        super().__init__()
        if isinstance(source, nn.Conv2d) and (source.groups != 1 or source.padding_mode != "zeros"):
            raise ValueError("OIALR handles Conv2d with groups=1 and zero padding only")
        w = weight_stack(source)[0]
        u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
        self.register_buffer("u", u.to(w.dtype))
        self.register_buffer("vt", vh.to(w.dtype))
        self.sigma = nn.Parameter(torch.diag(s).to(w.dtype))
        self.bias = source.bias  # the same Parameter: its optimizer state carries over
        # The source layer is the template for conv settings and for a dense fallback;
        # a tuple keeps it out of this module's parameters and state_dict.
        self._source = (source,)

    @property
    def source(self) -> nn.Linear | nn.Conv2d:
        return self._source[0]

    @property
    def rank(self) -> int:
        return self.sigma.shape[0]

    @property
    def matrix_shape(self) -> tuple[int, int]:
        return self.u.shape[0], self.vt.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mix = self.u @ self.sigma
        if isinstance(self.source, nn.Linear):
            return F.linear(F.linear(x, self.vt), mix, self.bias)
        c = self.source
        h = F.conv2d(x, self.vt.reshape(self.rank, c.in_channels, *c.kernel_size), None, c.stride, c.padding,
                     c.dilation)
        return F.conv2d(h, mix[:, :, None, None], self.bias)

    @torch.no_grad()
    def rotate_(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Move Σ's own singular vectors into the bases; Σ becomes diag(S). Returns (U_s, S, V_s)."""
        us, s, vsh = torch.linalg.svd(self.sigma.double())
        self.u.copy_((self.u.double() @ us).to(self.u.dtype))
        self.vt.copy_((vsh @ self.vt.double()).to(self.vt.dtype))
        return us, s, vsh.T

    @torch.no_grad()
    def truncate_(self, s: torch.Tensor, rank: int) -> nn.Parameter:
        """Keep the first `rank` components (after rotate_); returns the new Σ parameter."""
        self.u = self.u[:, :rank].contiguous()
        self.vt = self.vt[:rank].contiguous()
        self.sigma = nn.Parameter(torch.diag(s[:rank]).to(self.u.dtype))
        return self.sigma

    @torch.no_grad()
    def to_deployable(self) -> nn.Module:
        """Σ folded into U: a factored layer (or the dense layer, when factors would not be smaller)."""
        m, n = self.matrix_shape
        left, right = (self.u @ self.sigma)[None], self.vt[None]
        if not worthwhile(self.rank, m, n):
            dense = self.source
            dense.weight.copy_((left @ right).reshape(dense.weight.shape))
            return dense
        layer = factored_like(self.source, self.rank)
        load_factors_(layer, left, right)
        if self.bias is not None:
            layer.U.bias.copy_(self.bias)
        return layer


class OIALR:
    """Drives the OIALR schedule on `model` and keeps `optimizer` in step with the new parameters."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, config: OIALRConfig | None = None,
                 filter_fn: FilterFn | None = None):
        config = config or OIALRConfig()
        self.model, self.optimizer, self.config, self.filter_fn = model, optimizer, config, filter_fn
        self.steps = 0
        self.layers: dict[str, SVDLayer] = {}
        self.history: list[dict] = []  # {"step", "ranks": {name: rank}} at each switch/update
        if config.delay == 0:
            self._switch()

    def step(self) -> None:
        """Call once after every optimizer.step()."""
        self.steps += 1
        cfg = self.config
        if self.steps == cfg.delay:
            self._switch()
        elif self.steps > cfg.delay and (self.steps - cfg.delay) % cfg.stability_frequency == 0:
            for layer in self.layers.values():
                self._update(layer)
            self._record()

    @property
    def ranks(self) -> dict[str, int]:
        return {name: layer.rank for name, layer in self.layers.items()}

    def finalize(self) -> list[dict]:
        """Fold Σ into U in every SVD layer of the model, for export; returns what became of each."""
        out = []
        for name, layer in self.layers.items():
            m, n = layer.matrix_shape
            deployable = layer.to_deployable()
            self.model.set_submodule(name, deployable)
            out.append({"name": name, "matrix_shape": [m, n], "rank": layer.rank, "full_rank": min(m, n),
                        "factored": not isinstance(deployable, FACTORABLE)})
        self.layers = {}
        return out

    def _switch(self) -> None:
        eligible = list(candidates(self.model, self.filter_fn))
        if self.config.keep_last_full_rank:
            every = list(candidates(self.model))
            eligible = [(n, m) for n, m in eligible if every and n != every[-1][0]]
        for name, module in eligible:
            if isinstance(module, nn.Conv2d) and module.groups != 1:
                continue  # a grouped conv's block-diagonal weight has no single U, Vᵀ pair
            layer = SVDLayer(module)
            self.model.set_submodule(name, layer)
            _swap_param(self.optimizer, module.weight, layer.sigma)
            self.layers[name] = layer
        self._record()

    def _update(self, layer: SVDLayer) -> None:
        old = layer.sigma
        us, s, vs = layer.rotate_()
        rank = self._new_rank(s, layer)
        new = layer.truncate_(s, rank)
        _swap_param(self.optimizer, old, new, lambda key, t: _rotate_state(key, t, us, vs, rank))

    def _new_rank(self, s: torch.Tensor, layer: SVDLayer) -> int:
        cfg, prev = self.config, layer.rank
        keep = int((s >= cfg.sigma_cutoff_fraction * s[0]).sum())
        floor = max(1, math.ceil(cfg.min_rank_fraction * min(layer.matrix_shape)),
                    math.ceil(prev * (1 - cfg.max_cut_fraction)))
        return min(prev, max(keep, floor))

    def _record(self) -> None:
        self.history.append({"step": self.steps, "ranks": self.ranks})


def _swap_param(optimizer, old: nn.Parameter, new: nn.Parameter, transform=None) -> None:
    """Put `new` where `old` was in the optimizer's groups; carry its state through `transform`."""
    found = False
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            if p is old:
                group["params"][i], found = new, True
    if not found:
        raise ValueError("the optimizer does not hold the layer's weight; create OIALR with the optimizer "
                         "that trains the model")
    state = optimizer.state.pop(old, None)
    if state and transform is not None:
        optimizer.state[new] = {key: transform(key, value) for key, value in state.items()}


def _rotate_state(key: str, t, us: torch.Tensor, vs: torch.Tensor, rank: int):
    """Express Σ's optimizer state in the rotated basis, then truncate it.

    The gradient w.r.t. the new Σ' = U_sᵀ·Σ·V_s is U_sᵀ·G·V_s, so first moments
    (exp_avg, momentum_buffer) rotate exactly. Second moments are averages of
    squares, which no rotation maps exactly; (U_s²)ᵀ·v·(V_s²) is their value if
    the entries of G are uncorrelated, a fair guess that keeps Adam's step sizes.
    """
    if not torch.is_tensor(t) or t.ndim != 2 or t.shape != (us.shape[0], vs.shape[0]):
        return t
    a, b = (us.pow(2), vs.pow(2)) if "sq" in key else (us, vs)
    return (a.T @ t.double() @ b)[:rank, :rank].to(t.dtype).contiguous()
