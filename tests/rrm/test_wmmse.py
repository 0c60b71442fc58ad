import itertools
import math

import numpy as np
import pytest

from tinylr.rrm import channels as ch
from tinylr.rrm import wmmse


def _two_users(h, alpha, noise=0.1):
    """Channels of one K=2 sample from amplitudes h[rx][tx]."""
    return ch.Channels(np.asarray(h, dtype=float)[None] ** 2, np.asarray(alpha, dtype=float)[None], noise, math.e)


def _grid_optimum(c: ch.Channels, steps: int = 201) -> float:
    grid = np.linspace(0.0, 1.0, steps)
    p = np.array(list(itertools.product(grid, repeat=c.k)))
    many = ch.Channels(np.repeat(c.gains, len(p), 0), np.repeat(c.alpha, len(p), 0), c.noise, c.log_base)
    return float(ch.weighted_sum_rate(p, many).max())


@pytest.mark.parametrize("make", [lambda: ch.gaussian_ic(300, 10, seed=5), lambda: ch.d2d_layout(10, 50, seed=5)])
def test_objective_never_decreases(make):
    c = make()
    p, trace = wmmse.wmmse(c, trace=True)
    assert trace.shape == (wmmse.ITERATIONS + 1, c.n)
    natural = trace * math.log(c.log_base)   # WMMSE is monotone in the natural-log WSR; same sign in log2
    assert np.all(np.diff(natural, axis=0) >= -1e-9 * np.abs(natural[1:]))
    assert np.all(trace[-1] >= trace[0] - 1e-12)       # never worse than the full-power start
    assert 0.0 <= p.min() and p.max() <= 1.0
    assert np.allclose(ch.weighted_sum_rate(p, c), trace[-1])


def test_single_user_transmits_at_full_power():
    rng = np.random.default_rng(0)
    c = ch.Channels(rng.exponential(1.0, (50, 1, 1)), rng.uniform(0.1, 1.0, (50, 1)), 0.1, math.e)
    assert np.allclose(wmmse.wmmse(c), 1.0)
    assert np.allclose(wmmse.wmmse(c, pmax=0.3), 0.3)


def test_two_users_without_interference_both_full_power():
    assert np.allclose(wmmse.wmmse(_two_users([[1.0, 0.0], [0.0, 0.7]], [1.0, 0.4])), 1.0)


def test_two_symmetric_users_stay_symmetric_and_weak_interference_is_full_power():
    for cross in (0.05, 0.2, 1.0, 2.0):
        p = wmmse.wmmse(_two_users([[1.0, cross], [cross, 1.0]], [0.5, 0.5]))
        assert p[0, 0] == pytest.approx(p[0, 1], abs=1e-12)    # a symmetric problem gets a symmetric answer
    # Weak symmetric interference: both at full power is the global optimum (grid search agrees).
    c = _two_users([[1.0, 0.2], [0.2, 1.0]], [1.0, 1.0])
    assert np.allclose(wmmse.wmmse(c), 1.0)
    assert float(ch.weighted_sum_rate(np.ones((1, 2)), c)[0]) == pytest.approx(_grid_optimum(c), rel=1e-9)


def test_two_users_strong_interference_favours_the_heavier_weight():
    # Strong interference, weights 1 and 0.2: user 0 alone at full power is optimal.
    c = _two_users([[1.0, 1.5], [1.5, 1.0]], [1.0, 0.2])
    p = wmmse.wmmse(c)
    assert p[0, 0] == pytest.approx(1.0) and p[0, 1] < 1e-3
    assert float(ch.weighted_sum_rate(p, c)[0]) == pytest.approx(_grid_optimum(c), rel=1e-4)


def test_wmmse_beats_the_simple_baselines():
    c = ch.gaussian_ic(500, 10, seed=9)
    wsr = {name: ch.weighted_sum_rate(p, c).mean() for name, p in
           (("wmmse", wmmse.wmmse(c)), ("full", wmmse.full_power(c)), ("random", wmmse.random_power(c, seed=1)))}
    assert wsr["wmmse"] > 2.0 * wsr["full"] and wsr["wmmse"] > 2.0 * wsr["random"]
