"""`ad_autoencoder`: the MLPerf Tiny anomaly-detection FC autoencoder, on generated spectra.

Architecture (MLPerf Tiny `ad01`): input 640 (5 frames x 128 log-mel bins) -> 4 x
linear to 128 -> linear to 8 -> 4 x linear to 128 -> linear to 640, every hidden
layer with a batch norm and a ReLU. On export each batch norm folds into the
linear layer before it: 265,864 parameters, 264,192 MACs (MLPerf Tiny: 266 k,
0.26 M). The int8 .tflite is 10 FULLY_CONNECTED ops, ReLUs fused.

`rank` > 0 factors every layer whose factored form is smaller (LowRankLinear,
rank·(m+n) < m·n): the 640 -> 128, 128 -> 128 and 128 -> 640 layers for ranks up
to 63; the 8-wide bottleneck layers stay dense.

Data: the DCASE ToyADMOS/MIMII clips are not available offline. `load_data`
generates log-mel-like frames of a machine: a fixed harmonic spectrum with a slowly
drifting fundamental and noise (normal, label 0) and the same with an extra
resonance, a broadband burst or a shifted harmonic series (anomalous, label 1);
3,000 samples, half anomalous in the test split, 80/20 split, values standardized.

Training. The reference trains the autoencoder to reconstruct normal clips (mean
squared error) and scores anomalies by reconstruction error. `tinylr train` knows
only cross-entropy: with it, outputs 0 and 1 learn normal vs anomalous, a
supervised stand-in that gives the same graph (ops, sizes, speed, memory) but not
the reference's outputs. `fit_reconstruction` trains the reference's way and
`anomaly_scores` scores samples; the zoo's int8 export works with either.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import Split, ZooEntry, register
from .blocks import linear

N_INPUTS = 640
FRAMES, BINS = 5, 128
DATA_SEED = 640
N_SAMPLES = 3000
TEST_FRACTION = 0.2


def _dense(in_features: int, out_features: int, rank: int) -> nn.Sequential:
    return nn.Sequential(linear(in_features, out_features, rank=rank), nn.BatchNorm1d(out_features), nn.ReLU())


class FCAutoencoder(nn.Module):
    def __init__(self, hidden: int = 128, bottleneck: int = 8, rank: int = 0) -> None:
        super().__init__()
        widths = [N_INPUTS, hidden, hidden, hidden, hidden, bottleneck, hidden, hidden, hidden, hidden]
        self.body = nn.Sequential(*(_dense(a, b, rank) for a, b in zip(widths, widths[1:])))
        self.out = linear(hidden, N_INPUTS, rank=rank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def build(*, hidden: int = 128, bottleneck: int = 8, rank: int = 0) -> FCAutoencoder:
    return FCAutoencoder(hidden=hidden, bottleneck=bottleneck, rank=rank)


def _clip(rng: np.random.Generator, anomalous: bool) -> np.ndarray:
    """(FRAMES, BINS) log-mel-like frames of one clip."""
    bins = np.arange(BINS)
    f0 = 9.0 * (1 + rng.normal(0, 0.02))
    frames = []
    for _ in range(FRAMES):
        f0 *= 1 + rng.normal(0, 0.003)
        spectrum = 0.2 * np.exp(-bins / 60)
        for h in range(1, 12):
            spectrum += np.exp(-0.25 * h) * np.exp(-(((bins - h * f0) / 1.2) ** 2))
        frames.append(spectrum)
    frames = np.asarray(frames)
    if anomalous:
        kind = rng.integers(3)
        if kind == 0:    # an extra resonance between the harmonics
            centre = rng.uniform(10, 110)
            frames += rng.uniform(0.3, 0.8) * np.exp(-(((bins - centre) / 2.0) ** 2))
        elif kind == 1:  # a broadband burst in some frames
            hit = rng.random(FRAMES) < 0.6
            frames[hit] += rng.uniform(0.15, 0.4)
        else:            # the harmonics shifted (a different speed)
            shift = rng.choice([-1, 1]) * rng.uniform(2, 4)
            frames = np.stack([np.interp(bins - shift, bins, f) for f in frames])
    return np.log(frames + 0.05) + rng.normal(0, 0.05, frames.shape)


def load_data() -> Split:
    rng = np.random.default_rng(DATA_SEED)
    n_test = int(N_SAMPLES * TEST_FRACTION)
    # training clips are mostly normal (as in DCASE, where they all are); the test split is half anomalous
    y_train = (rng.random(N_SAMPLES - n_test) < 0.2).astype(np.int64)
    y_test = (np.arange(n_test) % 2).astype(np.int64)
    rng.shuffle(y_test)
    x_train = np.stack([_clip(rng, bool(a)).reshape(-1) for a in y_train])
    x_test = np.stack([_clip(rng, bool(a)).reshape(-1) for a in y_test])
    mean, std = x_train.mean(), x_train.std()
    return Split(((x_train - mean) / std).astype(np.float32), y_train,
                 ((x_test - mean) / std).astype(np.float32), y_test)


def fit_reconstruction(model: nn.Module, x: np.ndarray, *, epochs: int = 30, lr: float = 1e-3,
                       batch_size: int = 64, seed: int = 0) -> float:
    """Train `model` to reconstruct `x` (normal samples), as the reference does; returns the last epoch's MSE."""
    data = torch.from_numpy(np.asarray(x, dtype=np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    model.train()
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(data), generator=order).split(batch_size):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(data[idx]), data[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    model.eval()
    return total / len(data)


@torch.no_grad()
def anomaly_scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per sample: higher = more anomalous."""
    model.eval()
    data = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return ((model(data) - data) ** 2).mean(dim=1).numpy()


ENTRY = register(ZooEntry(
    name="ad_autoencoder",
    build=build,
    load_data=load_data,
    input_shape=(N_INPUTS,),
    description="MLPerf Tiny anomaly-detection FC autoencoder (640 -> 128x4 -> 8 -> 128x4 -> 640, 266k params, "
                "0.26M MACs); generated machine spectra; `tinylr train` fits it as a normal/anomaly "
                "classifier (outputs 0/1), fit_reconstruction() the reference's way",
))
