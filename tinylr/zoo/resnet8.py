"""`resnet8`: the MLPerf Tiny image-classification ResNet-8, on upsampled scikit-learn digits.

Architecture (MLPerf Tiny `resnet_v1_eembc`, 10 classes): input 3x32x32 -> conv 3x3
to 16 -> three residual stacks of two 3x3 convs (16, 32, 64 channels; the second
and third start with stride 2 and add a 1x1 stride-2 conv on the shortcut) -> ReLU
after each addition -> average pool 8x8 -> linear 64 -> 10. Every 3x3 conv has a
batch norm (folded on export); the shortcut convs have a bias. 77,706 parameters,
12,501,632 MACs (MLPerf Tiny: 77.7 k, 12.5 M). The int8 .tflite is CONV_2D x 9,
ADD x 3, AVERAGE_POOL_2D, FULLY_CONNECTED, ReLUs fused.

Layout: the input is PyTorch's (C, H, W); the .tflite takes (1, 32, 32, 3), NHWC,
and `tinylr export` records the permutation [0, 2, 3, 1] (see `tinylr.export`).
Stride-2 3x3 convs pad TensorFlow's way (nothing before, one row/column after) with
an explicit ZeroPad2d that onnx2tf folds into CONV_2D padding=SAME; the feature map
is pooled to 1x1 before the flatten, so no TRANSPOSE appears.

`rank` > 0 factors each 3x3 conv after the stem into a 3x3 conv to `rank` channels
and a 1x1 conv (`LowRankConv2d`) where that stores fewer weights; the stem, the 1x1
shortcuts and the classifier stay dense.

Data: CIFAR-10 is not available offline. `load_data` upsamples scikit-learn's 8x8
digits (1,797 images, 10 classes) to 32x32 with bilinear interpolation and tints
each image with a random colour (seeded), pixels in [0, 1]; 80/20 stratified split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import Split, ZooEntry, register
from .blocks import conv_bn, out_size

SIZE = 32
N_CLASSES = 10
SPLIT_SEED = 0
COLOUR_SEED = 8
TEST_FRACTION = 0.2


class ResidualStack(nn.Module):
    """Two 3x3 convs with a shortcut; a 1x1 conv on the shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, size: tuple[int, int], rank: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, out_channels, 3, size=size, stride=stride, rank=rank)
        size = out_size(size, stride)
        self.conv2 = conv_bn(out_channels, out_channels, 3, size=size, rank=rank, relu=False)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels else
                         nn.Conv2d(in_channels, out_channels, 1, stride=stride))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.conv2(self.conv1(x)))


class ResNet8(nn.Module):
    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), rank: int = 0) -> None:
        super().__init__()
        size = (SIZE, SIZE)
        self.stem = conv_bn(3, widths[0], 3, size=size)
        stacks, channels = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            stacks.append(ResidualStack(channels, width, stride, size, rank))
            size, channels = out_size(size, stride), width
        self.stacks = nn.Sequential(*stacks)
        self.pool = nn.AvgPool2d(size)  # 8 x 8 -> 1 x 1: the flatten below is free
        self.classifier = nn.Linear(channels, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.stacks(self.stem(x))), 1))


def build(*, widths: tuple[int, int, int] = (16, 32, 64), rank: int = 0) -> ResNet8:
    return ResNet8(widths=tuple(widths), rank=rank)


def load_data() -> Split:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)  # N, 1, 8, 8
    gray = nn.functional.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False).numpy()
    tint = np.random.default_rng(COLOUR_SEED).uniform(0.4, 1.0, size=(len(gray), 3, 1, 1)).astype(np.float32)
    x = np.clip(gray * tint, 0.0, 1.0).astype(np.float32)  # N, 3, 32, 32: PyTorch layout
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return Split(x_train, y_train, x_test, y_test)


ENTRY = register(ZooEntry(
    name="resnet8",
    build=build,
    load_data=load_data,
    input_shape=(3, SIZE, SIZE),
    description="MLPerf Tiny ResNet-8 image classifier (3x32x32 -> 10 classes, 77.7k params, 12.5M MACs); "
                "trained on scikit-learn digits upsampled to 32x32 and colour-tinted (CIFAR-10 not offline)",
))
