"""Channel models: the K-user Gaussian interference channel and the D2D layout.

Both produce the same thing, a `Channels` batch: power gains G[n, k, j] from
transmitter j to receiver k (rows are receivers, as in the WMMSE update of Shen et
al.'s code), weights alpha[n, k], and the noise power, all in units where every
transmitter's maximum power is Pmax = 1. The direct link of user k is G[n, k, k].

Rate of user k:  R_k = log(1 + G_kk p_k / (sum_{j != k} G_kj p_j + noise)),
natural log for the Gaussian IC, log2 for D2D (as in the references); the
normalized WSR is a ratio, so the base does not change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Channels", "Scenario", "D2D", "SCENARIOS", "gaussian_ic", "d2d_geometry", "d2d_gains_db", "d2d_layout",
           "path_loss_db", "generate",
           "rates", "weighted_sum_rate", "features", "pack", "unpack_gains"]


@dataclass(frozen=True)
class Channels:
    """A batch of N channel realisations of K users."""

    gains: np.ndarray      # float64 [N, K, K], G[n, rx, tx], power gain normalized to Pmax = 1
    alpha: np.ndarray      # float64 [N, K], weights of the weighted sum rate
    noise: float           # noise power sigma^2 in the same units
    log_base: float        # e for the Gaussian IC, 2 for D2D

    @property
    def n(self) -> int:
        return self.gains.shape[0]

    @property
    def k(self) -> int:
        return self.gains.shape[1]

    def __getitem__(self, idx) -> Channels:
        return Channels(self.gains[idx], self.alpha[idx], self.noise, self.log_base)


@dataclass(frozen=True)
class Scenario:
    """What to generate: `kind` 'gaussian' (K-user Gaussian IC) or 'd2d'; the input features for the GNN."""

    kind: str = "gaussian"
    k: int = 10
    weighted: bool = True
    # 'amplitude': |h| = sqrt(G) (Shen et al.'s input for the Gaussian IC; Rayleigh, 0..~4);
    # 'log': log10(1 + G / noise) / 2, i.e. SNR in dB / 20 for strong links (D2D gains span
    # ~13 orders of magnitude; this maps them to 0..~7 where int8 keeps ~0.5 dB resolution).
    feature: str = "amplitude"

    def __post_init__(self):
        if self.kind not in ("gaussian", "d2d"):
            raise ValueError(f"scenario kind must be 'gaussian' or 'd2d', got {self.kind!r}")
        if self.feature not in FEATURES:
            raise ValueError(f"feature must be one of {sorted(FEATURES)}, got {self.feature!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


GAUSSIAN_NOISE = 0.1  # 10 dB below Pmax = 1


def gaussian_ic(n: int, k: int, seed, *, weighted: bool = True, noise: float = GAUSSIAN_NOISE) -> Channels:
    """H[k, j] = |CN(0, 1)|: power gains |h|^2 ~ Exp(1) (mean 1); alpha ~ U[0, 1] or 1."""
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((n, k, k)) + 1j * rng.standard_normal((n, k, k))) / math.sqrt(2.0)
    alpha = rng.uniform(0.0, 1.0, (n, k)) if weighted else np.ones((n, k))
    return Channels(np.abs(h) ** 2, alpha, noise, math.e)


@dataclass(frozen=True)
class D2D:
    """The D2D layout of Shen et al. (after Cui et al.'s spatial deep learning setup)."""

    side_m: float = 1000.0         # for K = 50; other K keep the density (side scales with sqrt(K / 50))
    reference_k: int = 50
    min_link_m: float = 2.0
    max_link_m: float = 65.0
    carrier_hz: float = 2.4e9
    bandwidth_hz: float = 5e6
    height_m: float = 1.5           # both antennas
    antenna_gain_db: float = 2.5    # direct links only
    tx_power_dbm: float = 40.0
    noise_dbm_hz: float = -169.0
    shadowing_db: float = 8.0

    def side(self, k: int) -> float:
        return self.side_m * math.sqrt(k / self.reference_k)

    @property
    def noise_dbm(self) -> float:
        return self.noise_dbm_hz + 10.0 * math.log10(self.bandwidth_hz)


def path_loss_db(d: np.ndarray, *, carrier_hz: float = 2.4e9, h1: float = 1.5, h2: float = 1.5) -> np.ndarray:
    """Dual-slope path loss (ITU-R P.1411 style) in dB at distance d (m).

    R_bp = 4 h1 h2 / lambda, L_bp = |20 log10(lambda^2 / (8 pi h1 h2))|,
    PL = L_bp + 6 + 20 log10(d / R_bp) below R_bp, with another 20 log10(d / R_bp) beyond it.
    """
    lam = 2.998e8 / carrier_hz
    r_bp = 4.0 * h1 * h2 / lam
    l_bp = abs(20.0 * math.log10(lam ** 2 / (8.0 * math.pi * h1 * h2)))
    term = 20.0 * np.log10(np.asarray(d, dtype=np.float64) / r_bp)
    return l_bp + 6.0 + term + np.where(np.asarray(d) > r_bp, term, 0.0)


def d2d_geometry(n: int, k: int, rng: np.random.Generator, cfg: D2D | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Transmitter and receiver positions [n, k, 2] (m): transmitters uniform in a square of side
    `cfg.side(k)`, each receiver U[2, 65] m from its transmitter at a uniform angle."""
    cfg = cfg or D2D()
    tx = rng.uniform(0.0, cfg.side(k), (n, k, 2))
    dist = rng.uniform(cfg.min_link_m, cfg.max_link_m, (n, k))
    angle = rng.uniform(0.0, 2.0 * math.pi, (n, k))
    return tx, tx + np.stack((dist * np.cos(angle), dist * np.sin(angle)), axis=-1)


def d2d_gains_db(tx: np.ndarray, rx: np.ndarray, cfg: D2D | None = None) -> np.ndarray:
    """Mean gain in dB relative to the noise power, before shadowing and fading: [n, rx, tx]."""
    cfg = cfg or D2D()
    k = tx.shape[1]
    d = np.linalg.norm(rx[:, :, None, :] - tx[:, None, :, :], axis=-1)
    d = np.maximum(d, cfg.min_link_m)  # a foreign transmitter closer than 2 m: keep the model in its range
    return (cfg.tx_power_dbm - cfg.noise_dbm + np.eye(k) * cfg.antenna_gain_db
            - path_loss_db(d, carrier_hz=cfg.carrier_hz, h1=cfg.height_m, h2=cfg.height_m))


def d2d_layout(n: int, k: int, seed, *, weighted: bool = True, cfg: D2D | None = None) -> Channels:
    """Gains of N random D2D layouts of K links, normalized so the noise power is 1 and Pmax = 1.

    G = P_tx * antenna gain (direct links) / path loss * log-normal shadowing (8 dB)
    * Exp(1) fading / noise power, for the geometry of `d2d_geometry`.
    """
    cfg = cfg or D2D()
    rng = np.random.default_rng(seed)
    tx, rx = d2d_geometry(n, k, rng, cfg)
    gain_db = d2d_gains_db(tx, rx, cfg) + rng.normal(0.0, cfg.shadowing_db, (n, k, k))
    gains = 10.0 ** (gain_db / 10.0) * rng.exponential(1.0, (n, k, k))
    alpha = rng.uniform(0.0, 1.0, (n, k)) if weighted else np.ones((n, k))
    return Channels(gains, alpha, 1.0, 2.0)


def generate(scenario: Scenario, n: int, seed) -> Channels:
    if scenario.kind == "gaussian":
        return gaussian_ic(n, scenario.k, seed, weighted=scenario.weighted)
    return d2d_layout(n, scenario.k, seed, weighted=scenario.weighted)


def rates(p, gains, noise: float, log_base: float = math.e):
    """Per-user rates [N, K] for powers p [N, K]; numpy or torch (same formula, same library as the input)."""
    lib = _lib(p)
    received = gains * p[..., None, :]                     # [N, rx, tx]: G_kj p_j
    signal = lib.diagonal(received, 0, -2, -1)
    interference = received.sum(-1) - signal
    return lib.log1p(signal / (interference + noise)) / math.log(log_base)


def weighted_sum_rate(p, ch: Channels | None = None, *, gains=None, alpha=None, noise=None, log_base=None):
    """Sum_k alpha_k R_k per sample [N]; give a `Channels` or its fields (torch tensors for training)."""
    if ch is not None:
        gains, alpha, noise, log_base = ch.gains, ch.alpha, ch.noise, ch.log_base
    return (alpha * rates(p, gains, noise, log_base)).sum(-1)


def _amplitude(g: np.ndarray, noise: float) -> np.ndarray:
    return np.sqrt(g)


def _log(g: np.ndarray, noise: float) -> np.ndarray:
    return np.log10(1.0 + g / noise) / 2.0


def _amplitude_inv(f: np.ndarray, noise: float) -> np.ndarray:
    return f ** 2


def _log_inv(f: np.ndarray, noise: float) -> np.ndarray:
    return (10.0 ** (2.0 * f) - 1.0) * noise


FEATURES = {"amplitude": (_amplitude, _amplitude_inv), "log": (_log, _log_inv)}


# The defaults of the issue: K=10 Gaussian IC (weighted), K=50 D2D with log features.
SCENARIOS = {
    "gaussian": Scenario("gaussian", 10, True, "amplitude"),
    "d2d": Scenario("d2d", 50, True, "log"),
}


def features(gains: np.ndarray, noise: float, feature: str) -> np.ndarray:
    """The GNN's view of the gains: non-negative, of moderate range (see `Scenario.feature`)."""
    return FEATURES[feature][0](gains, noise)


def pack(ch: Channels, feature: str) -> np.ndarray:
    """The single network input, float32 [N, K, K+1]: row k = [features(G[k, :]), alpha_k].

    Row k is what receiver k hears from every transmitter plus its weight: the
    firmware fills it from its channel estimates. Features are >= 0, which the
    network relies on to read the diagonal with a mask and a max.
    """
    f = features(ch.gains, ch.noise, feature)
    return np.concatenate((f, ch.alpha[..., None]), axis=-1).astype(np.float32)


def unpack_gains(packed: np.ndarray, noise: float, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `pack` (up to float32 rounding): (gains, alpha)."""
    k = packed.shape[-2]
    f = packed[..., :k].astype(np.float64)
    return FEATURES[feature][1](f, noise), packed[..., k].astype(np.float64)


def _lib(x):
    if isinstance(x, np.ndarray):
        return np
    import torch
    return torch
