"""`vww_mobilenet`: the MLPerf Tiny Visual Wake Words MobileNetV1-0.25, on generated scenes.

Architecture (MLPerf Tiny `mobilenet_v1`, width 0.25, 2 classes): input 3x96x96 ->
conv 3x3 stride 2 to 8 channels -> 13 depthwise-separable blocks (depthwise 3x3,
then pointwise 1x1) widening 16, 32, 32, 64, 64, 128, 128 x 5, 256, 256 with stride 2
at the 2nd, 4th, 6th and 12th block -> average pool 3x3 -> linear 256 -> 2. Every
conv has a batch norm (folded on export) and a ReLU. 210,850 parameters and 7,489,664
MACs (MLPerf Tiny: 211 k, 7.49 M). The int8 .tflite is CONV_2D, 13 x (DEPTHWISE_CONV_2D,
CONV_2D), AVERAGE_POOL_2D, FULLY_CONNECTED, ReLUs fused.

Layout: the input is PyTorch's (C, H, W); the .tflite takes (1, 96, 96, 3), NHWC,
with the permutation [0, 2, 3, 1] recorded by `tinylr export`. Stride-2 convs pad
TensorFlow's way through a ZeroPad2d that onnx2tf folds into padding=SAME; the
pool reaches 1x1 before the flatten, so no TRANSPOSE appears.

`rank` > 0 factors each pointwise conv into two 1x1 convs through `rank` channels
(`LowRankConv2d`) where that stores fewer weights (rank < m·n/(m+n)); the stem,
depthwise convs and classifier stay dense.

Data: the COCO-based Visual Wake Words set is not available offline. `load_data`
draws 600 scenes (seeded, 480 train / 120 test): a smooth colour gradient with
random rectangles and ellipses as clutter; in half of them a "person" — a head
ellipse above a torso with two legs, random position, size and colours. Label 1 =
person present. Values in [0, 1]. It is a real detection task, but a much easier
one than VWW; use it for the pipeline, speed and memory, not as a VWW score.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import Split, ZooEntry, register
from .blocks import conv_bn, out_size

SIZE = 96
N_CLASSES = 2
DATA_SEED = 96
N_SAMPLES = 600
TEST_FRACTION = 0.2
# (pointwise output channels, depthwise stride) of the 13 separable blocks at width 1.0
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    def __init__(self, alpha: float = 0.25, rank: int = 0) -> None:
        super().__init__()
        size = (SIZE, SIZE)
        channels = int(32 * alpha)
        self.stem = conv_bn(3, channels, 3, size=size, stride=2)
        size = out_size(size, 2)
        layers = []
        for width, stride in BLOCKS:
            layers.append(conv_bn(channels, channels, 3, size=size, stride=stride, groups=channels))
            size = out_size(size, stride)
            layers.append(conv_bn(channels, int(width * alpha), 1, size=size, rank=rank))
            channels = int(width * alpha)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(size)  # 3 x 3 -> 1 x 1: the flatten below is free
        self.classifier = nn.Linear(channels, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(self.stem(x))), 1))


def build(*, alpha: float = 0.25, rank: int = 0) -> MobileNetV1:
    return MobileNetV1(alpha=alpha, rank=rank)


def _scene(rng: np.random.Generator, person: bool) -> np.ndarray:
    """One (3, SIZE, SIZE) image in [0, 1]."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    a, b = rng.uniform(0, 1, (2, 3, 1, 1))
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    img = a + (b - a) * ramp[None]
    for _ in range(rng.integers(2, 6)):  # clutter: rectangles and ellipses
        colour = rng.uniform(0, 1, (3, 1))
        cy, cx, h, w = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)
        if rng.random() < 0.5:
            mask = (np.abs(yy - cy) < h / 2) & (np.abs(xx - cx) < w / 2)
        else:
            mask = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 < 1
        img[:, mask] = colour
    if person:
        s = rng.uniform(0.35, 0.8)                          # figure height, fraction of the image
        cx, top = rng.uniform(0.15, 0.85), rng.uniform(0, 1 - s)
        skin, shirt, trousers = (rng.uniform(0, 1, (3, 1)) for _ in range(3))
        head = ((yy - top - 0.1 * s) / (0.1 * s)) ** 2 + ((xx - cx) / (0.075 * s)) ** 2 < 1
        torso = (yy > top + 0.2 * s) & (yy < top + 0.6 * s) & (np.abs(xx - cx) < 0.14 * s)
        legs = ((yy >= top + 0.6 * s) & (yy < top + s)
                & (np.abs(np.abs(xx - cx) - 0.07 * s) < 0.045 * s))
        img[:, torso] = shirt
        img[:, legs] = trousers
        img[:, head] = skin
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(img, 0.0, 1.0)


def load_data() -> Split:
    rng = np.random.default_rng(DATA_SEED)
    y = np.arange(N_SAMPLES, dtype=np.int64) % N_CLASSES
    rng.shuffle(y)
    x = np.stack([_scene(rng, bool(label)) for label in y]).astype(np.float32)  # N, 3, 96, 96
    n_test = int(N_SAMPLES * TEST_FRACTION)
    return Split(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


ENTRY = register(ZooEntry(
    name="vww_mobilenet",
    build=build,
    load_data=load_data,
    input_shape=(3, SIZE, SIZE),
    description="MLPerf Tiny Visual Wake Words MobileNetV1-0.25 (3x96x96 -> person/no person, 211k params, "
                "7.49M MACs); trained on generated scenes with and without a drawn figure (VWW not offline)",
))
