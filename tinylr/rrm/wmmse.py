"""Baselines: WMMSE (Shi et al. 2011, batched as in Shen et al.'s code), full power, random power.

With amplitudes H = sqrt(G) (H[k, j]: transmitter j to receiver k) and b = sqrt(p):
    f_k = H_kk b_k / (sum_j H_kj^2 b_j^2 + sigma^2)
    w_k = 1 / (1 - f_k H_kk b_k)
    b_k = clip(alpha_k w_k f_k H_kk / sum_j alpha_j w_j f_j^2 H_jk^2, 0, sqrt(Pmax))
starting from full power. Block-coordinate descent on the weighted MSE, so the
weighted sum rate (natural log) of b never decreases from one iteration to the next.
"""

from __future__ import annotations

import numpy as np

from .channels import Channels, weighted_sum_rate

__all__ = ["wmmse", "full_power", "random_power", "ITERATIONS"]

ITERATIONS = 100
_CHUNK_ELEMENTS = 4_000_000  # samples per step: keeps [chunk, K, K] float64 arrays at ~32 MB


def wmmse(ch: Channels, *, iterations: int = ITERATIONS, pmax: float = 1.0, trace: bool = False):
    """WMMSE powers [N, K] in [0, pmax]; with `trace`, also the WSR [iterations + 1, N] after each iteration."""
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    chunk = max(1, _CHUNK_ELEMENTS // (ch.k * ch.k))
    parts = [_wmmse(ch[i:i + chunk], iterations, pmax, trace) for i in range(0, ch.n, chunk)]
    p = np.concatenate([q for q, _ in parts])
    if trace:
        return p, np.concatenate([t for _, t in parts], axis=1)
    return p


def _wmmse(ch: Channels, iterations: int, pmax: float, trace: bool):
    h = np.sqrt(ch.gains)                         # [N, rx, tx]
    h_direct = np.diagonal(h, 0, 1, 2)            # [N, K]
    h_sq = ch.gains
    alpha, noise = ch.alpha, ch.noise
    b = np.full(ch.alpha.shape, np.sqrt(pmax))

    def receiver(b):
        received = (h_sq @ (b * b)[..., None])[..., 0] + noise   # sum_j H_kj^2 b_j^2 + sigma^2
        f = h_direct * b / received
        w = 1.0 / (1.0 - f * h_direct * b)
        return f, w

    history = [weighted_sum_rate(b * b, ch)] if trace else None
    f, w = receiver(b)
    for _ in range(iterations):
        num = alpha * w * f * h_direct
        # sum over receivers j of alpha_j w_j f_j^2 H_jk^2, for each transmitter k
        den = ((alpha * w * f * f)[:, None, :] @ h_sq)[:, 0, :]
        b = np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 0), 0.0, np.sqrt(pmax))
        f, w = receiver(b)
        if trace:
            history.append(weighted_sum_rate(b * b, ch))
    return b * b, (np.stack(history) if trace else None)


def full_power(ch: Channels, pmax: float = 1.0) -> np.ndarray:
    return np.full(ch.alpha.shape, pmax)


def random_power(ch: Channels, seed: int = 0, pmax: float = 1.0) -> np.ndarray:
    """p_k ~ U[0, pmax] independently."""
    return np.random.default_rng(seed).uniform(0.0, pmax, ch.alpha.shape)
