"""Factorize a trained MPGNN into an LR-MPGNN (then fine-tune it with `tinylr.rrm.train.train`).

Uses the low-rank library's `factorize_` with a fixed rank: each Linear W becomes
(U_r S_r^1/2)(S_r^1/2 V_r^T), the best rank-r approximation, where the factors hold
fewer weights than W (r (m + n) < m n) -- the same rule `tinylr.rrm.gnn` uses to
build an LR-MPGNN, so the result loads into `MPGNN(GNNConfig(..., rank=r))` and
its checkpoint rebuilds through the zoo like a model trained factored from scratch.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from ..layers import LowRankLinear
from .gnn import MPGNN

__all__ = ["factorize", "spectra"]


@torch.no_grad()
def factorize(model: MPGNN, rank: int) -> MPGNN:
    """A new LR-MPGNN of `rank` whose layers are the truncated SVDs of `model`'s (which must be dense)."""
    from ..lowrank import FactorizeConfig, FixedRankRule, factorize_

    if model.config.rank or any(model.config.ranks.values()):
        raise ValueError("factorize expects a dense MPGNN (rank 0)")
    factored = copy.deepcopy(model)
    factorize_(factored, FactorizeConfig(rule=FixedRankRule(rank)))
    target = MPGNN(dataclasses.replace(model.config, rank=rank))
    # strict: raises if factorize_ chose a different layer structure than the config describes
    target.load_state_dict(factored.state_dict(), strict=True)
    return target.eval()


def _layers(model: MPGNN) -> list[tuple[str, nn.Module]]:
    """Each applied weight in order: a dense nn.Linear or a LowRankLinear (not its V/U halves)."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, LowRankLinear) or (isinstance(m, nn.Linear) and not name.endswith((".U", ".V")))]


@torch.no_grad()
def spectra(model: MPGNN) -> dict[str, torch.Tensor]:
    """Singular values of the weight each layer applies (U.V for factored ones), largest first."""
    return {name: torch.linalg.svdvals(m.dense_weight() if isinstance(m, LowRankLinear) else m.weight).double()
            for name, m in _layers(model)}
