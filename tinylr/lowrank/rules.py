"""Rank rules: how many singular values of a weight to keep.

Each per-layer rule is a frozen dataclass with `select(s, shape) -> int`, where `s`
holds the singular values in descending order and `shape` is (m, n) of the
matrix; the answer is clamped to [1, min(m, n)]. `ParamBudget` is the one global
rule: it needs every layer's spectrum at once (`allocate_budget`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

import torch

# Ranks are integers computed from floats: a spectrum built to give exactly 3.0
# must not round up to 4 because exp(log(3)) came out as 3.0000000000000004.
_SLACK = 1e-9
# int8 TFLite bytes per channel between V and U: int32 bias + float32 scale + int64 zero point
_BYTES_PER_INNER_CHANNEL = 4 + 4 + 8


class RankRule(Protocol):
    def select(self, s: torch.Tensor, shape: tuple[int, int]) -> int: ...


def _clamp(r: int, s: torch.Tensor) -> int:
    return max(1, min(int(r), len(s)))


def _check_spectrum(s: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(s, dtype=torch.float64)
    if s.ndim != 1 or len(s) == 0 or bool((s < 0).any()) or bool((s[1:] > s[:-1]).any()):
        raise ValueError("singular values must be a non-empty, non-negative, descending 1-D sequence")
    return s


@dataclass(frozen=True)
class EnergyRule:
    """Smallest r with Σ_{i≤r} σᵢ² / Σ σᵢ² ≥ τ: the kept factors hold a τ share of ‖W‖²_F."""

    tau: float = 0.99

    def __post_init__(self):
        if not 0 < self.tau <= 1:
            raise ValueError(f"energy threshold tau must be in (0, 1], got {self.tau}")

    def select(self, s, shape=None) -> int:
        s = _check_spectrum(s)
        energy = s.pow(2)
        if energy.sum() == 0:
            return 1
        share = energy.cumsum(0) / energy.sum()
        return _clamp(int((share < self.tau - _SLACK).sum()) + 1, s)


@dataclass(frozen=True)
class RelativeCutoffRule:
    """Keep σᵢ ≥ β·σ₁ (OIALR's rule, with β 0.1-0.2)."""

    beta: float = 0.1

    def __post_init__(self):
        if not 0 < self.beta <= 1:
            raise ValueError(f"relative cutoff beta must be in (0, 1], got {self.beta}")

    def select(self, s, shape=None) -> int:
        s = _check_spectrum(s)
        return _clamp(int((s >= self.beta * s[0] * (1 - _SLACK)).sum()), s)


def effective_rank(s) -> float:
    """Roy & Vetterli's effective rank exp(−Σ pᵢ ln pᵢ), pᵢ = σᵢ / Σσ (a real number in [1, len(s)])."""
    s = _check_spectrum(s)
    total = s.sum()
    if total == 0:
        return 1.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


@dataclass(frozen=True)
class EffectiveRankRule:
    """⌈erank⌉: the entropy of the normalized spectrum, as a number of singular values."""

    def select(self, s, shape=None) -> int:
        s = _check_spectrum(s)
        return _clamp(math.ceil(effective_rank(s) - _SLACK), s)


def gavish_donoho_omega(beta: float) -> float:
    """ω(β) ≈ 0.56β³ − 0.95β² + 1.82β + 1.43 for aspect ratio β = min(m,n)/max(m,n)."""
    return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43


@dataclass(frozen=True)
class OptimalHardThresholdRule:
    """Gavish & Donoho (2014) optimal hard threshold, noise level unknown: keep σᵢ > ω(β)·median(σ).

    Assumes W = low-rank signal + i.i.d. noise; the median singular value
    estimates the noise level, ω(β) the threshold that minimises the error.
    """

    def select(self, s, shape) -> int:
        s = _check_spectrum(s)
        m, n = shape
        # quantile(0.5), not torch.median: the latter returns the lower middle value for even lengths
        threshold = gavish_donoho_omega(min(m, n) / max(m, n)) * float(s.quantile(0.5))
        return _clamp(int((s > threshold).sum()), s)


@dataclass(frozen=True)
class FixedRankRule:
    """The same rank for every layer (capped at each layer's full rank)."""

    rank: int

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"fixed rank must be >= 1, got {self.rank}")

    def select(self, s, shape=None) -> int:
        return _clamp(self.rank, _check_spectrum(s))


@dataclass(frozen=True)
class ParamBudget:
    """A size for the whole model, in parameters or in int8-deployment bytes (give one).

    Bytes count 1 per weight and 4 per bias (TFLite int8 models keep int32 biases);
    each unit of rank also costs the 16 bytes its channel adds between the two ops
    (V's int32 bias, which TFLite stores even when it is zero, and V's per-channel
    float32 scale and int64 zero point). The .tflite file is larger by its
    flatbuffer structure and the quantization parameters of each layer's outputs
    (a few KB, the same whatever the ranks). Rank is given, one singular value at
    a time, to the layer whose next singular value is largest, while the budget lasts.
    """

    params: int | None = None
    bytes: int | None = None

    def __post_init__(self):
        if (self.params is None) == (self.bytes is None):
            raise ValueError("give exactly one of ParamBudget(params=...) or ParamBudget(bytes=...)")
        if self.total < 1:
            raise ValueError(f"the budget must be positive, got {self.total}")

    @property
    def total(self) -> int:
        return self.params if self.params is not None else self.bytes

    def param_cost(self, name: str) -> int:
        """What one stored parameter costs in the budget's unit."""
        if self.params is not None:
            return 1
        return 4 if name.rsplit(".", 1)[-1] == "bias" else 1

    def rank_cost(self, m: int, n: int, groups: int) -> int:
        """What one more rank per group costs in a layer of g groups of (m, n) matrices."""
        return groups * (m + n + (0 if self.params is not None else _BYTES_PER_INNER_CHANNEL))


def allocate_budget(spectra: list[torch.Tensor], unit_costs: list[int], max_ranks: list[int], budget: int) -> list[int]:
    """Ranks (≥ 1 each) spending at most `budget` with cost Σ rᵢ·unit_costᵢ.

    Greedy on the next singular value across all layers: each step adds the
    largest σ not yet kept anywhere, so the kept spectrum is (up to what fits)
    the globally largest singular values. A layer stops at its `max_ranks` cap.
    Raises ValueError when even rank 1 everywhere does not fit.
    """
    ranks = [1] * len(spectra)
    spent = sum(unit_costs)
    if spent > budget:
        raise ValueError(f"rank 1 in every factored layer already costs {spent}, over the budget of {budget}")
    heap = [(-float(s[1]), i) for i, s in enumerate(spectra) if max_ranks[i] > 1 and len(s) > 1]
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        if spent + unit_costs[i] > budget:
            continue  # this layer's next rank does not fit; a cheaper layer's might
        ranks[i] += 1
        spent += unit_costs[i]
        if ranks[i] < min(max_ranks[i], len(spectra[i])):
            heapq.heappush(heap, (-float(spectra[i][ranks[i]]), i))
    return ranks
