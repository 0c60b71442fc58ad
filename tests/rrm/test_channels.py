import math

import numpy as np
import pytest

from tinylr.rrm import channels as ch
from tinylr.rrm import data


def test_gaussian_ic_gain_statistics():
    c = ch.gaussian_ic(2000, 10, seed=0)
    assert c.gains.shape == (2000, 10, 10) and c.alpha.shape == (2000, 10)
    # |CN(0,1)|^2 ~ Exp(1): mean 1, variance 1 (20,000 ... 200,000 draws)
    assert abs(c.gains.mean() - 1.0) < 0.01
    assert abs(c.gains.var() - 1.0) < 0.03
    assert abs(np.mean(c.gains > 1.0) - math.exp(-1.0)) < 0.005
    assert 0.0 <= c.alpha.min() and c.alpha.max() <= 1.0 and abs(c.alpha.mean() - 0.5) < 0.01
    assert c.noise == pytest.approx(0.1) and c.log_base == pytest.approx(math.e)
    assert np.all(ch.gaussian_ic(5, 3, seed=0, weighted=False).alpha == 1.0)


def test_path_loss_values_below_and_above_the_breakpoint():
    # 2.4 GHz, h1 = h2 = 1.5 m: lambda = 0.12492 m, R_bp = 4 h1 h2 / lambda = 72.05 m,
    # L_bp = |20 log10(lambda^2 / (8 pi h1 h2))| = 71.18 dB (worked by hand).
    assert ch.path_loss_db(72.048) == pytest.approx(71.184 + 6.0, abs=0.01)
    assert ch.path_loss_db(10.0) == pytest.approx(60.03, abs=0.01)      # 77.18 + 20 log10(10 / 72.05)
    assert ch.path_loss_db(100.0) == pytest.approx(82.88, abs=0.01)     # 77.18 + 40 log10(100 / 72.05)
    assert ch.path_loss_db(500.0) == pytest.approx(110.84, abs=0.01)    # 77.18 + 40 log10(500 / 72.05)
    # 20 dB per decade below the breakpoint, 40 dB per decade above, continuous at it
    assert ch.path_loss_db(20.0) - ch.path_loss_db(2.0) == pytest.approx(20.0)
    assert ch.path_loss_db(1000.0) - ch.path_loss_db(100.0) == pytest.approx(40.0)
    assert ch.path_loss_db(72.047) == pytest.approx(ch.path_loss_db(72.049), abs=1e-3)


def test_d2d_geometry_and_density():
    rng = np.random.default_rng(0)
    tx, rx = ch.d2d_geometry(200, 50, rng)
    link = np.linalg.norm(rx - tx, axis=-1)
    assert 2.0 <= link.min() and link.max() <= 65.0 and abs(link.mean() - 33.5) < 0.5
    assert 0.0 <= tx.min() and tx.max() <= 1000.0
    cfg = ch.D2D()
    assert cfg.side(200) == pytest.approx(2000.0) and cfg.side(50) == pytest.approx(1000.0)  # same links per m^2
    assert cfg.noise_dbm == pytest.approx(-169.0 + 10 * math.log10(5e6))


def test_d2d_gains_follow_the_link_budget():
    # Without shadowing the gain is P_tx - noise - PL (+2.5 dB on direct links) times Exp(1) fading.
    cfg = ch.D2D(shadowing_db=0.0)
    c = ch.d2d_layout(400, 20, seed=3, cfg=cfg)
    tx, rx = ch.d2d_geometry(400, 20, np.random.default_rng(3), cfg)   # the same draws as the layout
    mean_db = ch.d2d_gains_db(tx, rx, cfg)
    d = np.linalg.norm(rx[:, 0] - tx[:, 0], axis=-1)
    expected = 40.0 - cfg.noise_dbm + 2.5 - ch.path_loss_db(d)
    assert np.allclose(mean_db[:, 0, 0], expected)
    fading = c.gains / 10.0 ** (mean_db / 10.0)
    assert abs(fading.mean() - 1.0) < 0.02 and c.noise == 1.0 and c.log_base == 2.0
    # shadowing on: 8 dB log-normal spread of the direct gains around the link budget
    shadowed = ch.d2d_layout(400, 20, seed=3)
    ratio_db = 10 * np.log10(shadowed.gains / 10.0 ** (mean_db / 10.0) / fading)
    assert abs(ratio_db.std() - 8.0) < 0.2


def test_pack_layout_and_features():
    c = ch.gaussian_ic(4, 3, seed=1)
    x = ch.pack(c, "amplitude")
    assert x.dtype == np.float32 and x.shape == (4, 3, 4)
    assert np.allclose(x[..., :3], np.sqrt(c.gains), rtol=1e-6)      # row k: what receiver k hears
    assert np.allclose(x[..., 3], c.alpha)
    gains, alpha = ch.unpack_gains(x, c.noise, "amplitude")
    assert np.allclose(gains, c.gains, rtol=1e-5) and np.allclose(alpha, c.alpha, rtol=1e-6)

    d = ch.d2d_layout(20, 50, seed=0)
    f = ch.pack(d, "log")[..., :50]
    assert f.min() >= 0.0 and f.max() < 8.0        # 13 orders of magnitude of gain in an int8-friendly range
    assert np.allclose(ch.unpack_gains(ch.pack(d, "log"), 1.0, "log")[0], d.gains, rtol=1e-3)


def test_rates_numpy_and_torch_agree():
    torch = pytest.importorskip("torch")
    c = ch.gaussian_ic(8, 5, seed=2)
    p = np.random.default_rng(0).uniform(0, 1, (8, 5))
    wsr_np = ch.weighted_sum_rate(p, c)
    wsr_t = ch.weighted_sum_rate(torch.from_numpy(p), gains=torch.from_numpy(c.gains),
                                 alpha=torch.from_numpy(c.alpha), noise=c.noise, log_base=c.log_base)
    assert np.allclose(wsr_np, wsr_t.numpy())
    # one user by hand
    g, n0 = c.gains[0], c.noise
    r0 = math.log(1 + g[0, 0] * p[0, 0] / (g[0, 1:] @ p[0, 1:] + n0))
    assert ch.rates(p, c.gains, n0)[0, 0] == pytest.approx(r0)


def test_data_sets_are_fixed_and_prefixes():
    a = data.channels(data.DEFAULT_SCENARIO, "test", 700)
    b = data.channels(data.DEFAULT_SCENARIO, "test", 300)
    assert np.array_equal(a.gains[:300], b.gains) and np.array_equal(a.alpha[:300], b.alpha)
    t = data.channels(data.DEFAULT_SCENARIO, "train", 300)
    assert not np.allclose(t.gains, b.gains)        # train and held-out sets are different draws
    split = data.split(n_train=30, n_test=20)
    assert split.x_train.shape == (30, 10, 11) and split.y_test.dtype == np.int64 and not split.y_test.any()
