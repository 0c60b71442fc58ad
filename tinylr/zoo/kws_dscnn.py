"""`kws_dscnn`: the MLPerf Tiny keyword-spotting DS-CNN, on generated MFCC-like data.

Architecture (MLPerf Tiny `kws_ref_model`, 12 classes): input 49 frames x 10 MFCC
coefficients -> conv 10x4 stride 2 'same' to 64 channels -> 4 x [depthwise 3x3 ->
pointwise 1x1 to 64], each conv with batch norm and ReLU -> average pool 25x5 ->
linear 64 -> 12. Batch norms fold into the convs on export: 22,604 parameters and
2,656,768 MACs (MLPerf Tiny: 22.6 k, 2.66 M). The int8 .tflite is CONV_2D,
4 x (DEPTHWISE_CONV_2D, CONV_2D), AVERAGE_POOL_2D, FULLY_CONNECTED, after a RESHAPE
of the rank-3 input to (1, 49, 10, 1) (an alias, no copy); ReLUs fused.

Layout: the input is audio features [batch, time, features], rank 3, unsqueezed to
one channel inside the model. onnx2tf would take a rank-3 input as NCW and
transpose it; `tinylr export` keeps it as it is, so the .tflite input is (1, 49, 10)
— the same bytes as the reference's (1, 49, 10, 1) — and needs no permutation.
The 'same' stride-2 stem pads (4, 5) rows and (1, 1) columns, as TensorFlow does;
the pooling reaches 1x1 before the flatten, so no TRANSPOSE appears.

`rank` > 0 factors each pointwise conv (64 -> rank -> 64, two 1x1 convs) when that
is smaller (rank < 32); the stem, depthwise convs and classifier stay dense.

Data: no speech corpus is available offline, so `load_data` generates 12 classes of
MFCC-like patterns: per class a fixed template of a few time-frequency blobs,
shifted in time, scaled and buried in noise per sample; class 0 ("silence") is
noise only, class 1 ("unknown") a fresh random template per sample. 2,400 samples,
80/20 split, values roughly in [-4, 4]. Accuracy on it says the model trains, not
how it does on Speech Commands.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import Split, ZooEntry, register
from .blocks import conv_bn, out_size

FRAMES, COEFFS = 49, 10
N_CLASSES = 12
DATA_SEED = 12
SAMPLES_PER_CLASS = 200
TEST_FRACTION = 0.2


class DSCNN(nn.Module):
    def __init__(self, filters: int = 64, blocks: int = 4, rank: int = 0) -> None:
        super().__init__()
        size = (FRAMES, COEFFS)
        self.stem = conv_bn(1, filters, (10, 4), size=size, stride=2)
        size = out_size(size, 2)
        layers = []
        for _ in range(blocks):
            layers += [conv_bn(filters, filters, 3, size=size, groups=filters),
                       conv_bn(filters, filters, 1, size=size, rank=rank)]
        self.features = nn.Sequential(*layers)
        # 25 x 5 -> 1 x 1: the flatten below is free. With count_include_pad (irrelevant
        # here: no padding) onnx2tf adds two identity STRIDED_SLICEs after a non-square pool.
        self.pool = nn.AvgPool2d(size, count_include_pad=False)
        self.classifier = nn.Linear(filters, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x.unsqueeze(1)))  # [B, T, F] -> [B, 1, T, F]
        return self.classifier(torch.flatten(self.pool(x), 1))


def build(*, filters: int = 64, blocks: int = 4, rank: int = 0) -> DSCNN:
    return DSCNN(filters=filters, blocks=blocks, rank=rank)


def _blob_template(rng: np.random.Generator) -> np.ndarray:
    """A few Gaussian blobs on the (time, coefficient) grid: a stand-in for a word's MFCC pattern."""
    t, f = np.meshgrid(np.arange(FRAMES), np.arange(COEFFS), indexing="ij")
    template = np.zeros((FRAMES, COEFFS))
    for _ in range(rng.integers(3, 6)):
        t0, f0 = rng.uniform(10, 39), rng.uniform(0, COEFFS - 1)
        st, sf = rng.uniform(2, 6), rng.uniform(0.7, 2.5)
        template += rng.choice([-1, 1]) * rng.uniform(1.0, 2.5) * np.exp(-((t - t0) / st) ** 2 - ((f - f0) / sf) ** 2)
    return template


def load_data() -> Split:
    rng = np.random.default_rng(DATA_SEED)
    templates = [_blob_template(rng) for _ in range(N_CLASSES)]
    x, y = [], []
    for label in range(N_CLASSES):
        for _ in range(SAMPLES_PER_CLASS):
            if label == 0:                      # silence: noise only
                sample = np.zeros((FRAMES, COEFFS))
            elif label == 1:                    # unknown word: a template no other class has
                sample = _blob_template(rng)
            else:
                sample = np.roll(templates[label], rng.integers(-6, 7), axis=0) * rng.uniform(0.7, 1.3)
            x.append(sample + rng.normal(0, 0.5, (FRAMES, COEFFS)))
            y.append(label)
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_test = int(len(y) * TEST_FRACTION)
    return Split(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


ENTRY = register(ZooEntry(
    name="kws_dscnn",
    build=build,
    load_data=load_data,
    input_shape=(FRAMES, COEFFS),
    description="MLPerf Tiny KWS DS-CNN (49x10 MFCC -> 12 classes, 22.6k params, 2.66M MACs); "
                "trained on generated MFCC-like keyword patterns (no speech corpus offline)",
))
