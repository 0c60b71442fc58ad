"""Fixed training and held-out channel sets, regenerated from seeds (nothing to download).

Seeds depend only on the part (train / test), never on the model's training seed,
so every model of a sweep is trained and scored on the same channels.
"""

from __future__ import annotations

import numpy as np

from .channels import SCENARIOS, Channels, Scenario, generate, pack

__all__ = ["DEFAULT_SCENARIO", "N_TRAIN", "N_TEST", "channels", "split"]

DEFAULT_SCENARIO = SCENARIOS["gaussian"]
N_TRAIN = 10_000
N_TEST = 2_000
_SEEDS = {"train": 1, "test": 2}


def channels(scenario: Scenario, part: str, n: int) -> Channels:
    """The first `n` samples of the `part` ('train' or 'test') set of `scenario`."""
    if part not in _SEEDS:
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    if n < 1:
        raise ValueError(f"need at least one sample, got n={n}")
    # Fixed-size blocks, each with its own seed: a smaller set is a prefix of a larger one,
    # so a --quick run is scored on the first samples of the full held-out set.
    block = max(1, min(500, 2_000_000 // scenario.k ** 2))  # bounded memory for large K
    blocks = [generate(scenario, block, seed=np.random.SeedSequence((_SEEDS[part], scenario.k, b)))
              for b in range(-(-n // block))]
    return Channels(np.concatenate([c.gains for c in blocks])[:n], np.concatenate([c.alpha for c in blocks])[:n],
                    blocks[0].noise, blocks[0].log_base)


def split(scenario: Scenario = DEFAULT_SCENARIO, n_train: int = N_TRAIN, n_test: int = N_TEST):
    """A zoo `Split`: x = packed float32 inputs [N, K, K+1], y = zeros (no class labels; see tinylr.zoo.rrm)."""
    from ..zoo import Split

    train, test = channels(scenario, "train", n_train), channels(scenario, "test", n_test)
    return Split(pack(train, scenario.feature), np.zeros(n_train, dtype=np.int64),
                 pack(test, scenario.feature), np.zeros(n_test, dtype=np.int64))
