"""Building blocks shared by the convolutional zoo models (not a zoo entry itself).

Two conventions make a PyTorch CNN convert to the same int8 graph as the MLPerf
Tiny reference models, which were written in Keras:
- TensorFlow's 'same' padding. For stride 1 and odd kernels it is symmetric and
  stays inside the Conv2d. For stride 2 on an even size it puts the extra row and
  column after the data (e.g. (0, 1)), which PyTorch's `padding=` cannot express; an
  explicit `nn.ZeroPad2d` in front of an unpadded conv can, and onnx2tf folds the
  pair back into one CONV_2D with padding=SAME (measured: a symmetric `padding=1`
  instead gives a separate PAD op and its padded copy of the input in RAM).
- No `flatten` of a feature map: onnx2tf keeps PyTorch's C,H,W order there with a
  TRANSPOSE op. The models pool down to 1x1 first (AVERAGE_POOL_2D), after which the
  flatten is free and the classifier is a single FULLY_CONNECTED.

`rank` > 0 factors a conv or linear layer (`LowRankConv2d`: k x k conv to `rank`
channels, then 1x1; `LowRankLinear`) wherever that stores fewer weights, i.e.
rank·(m+n) < m·n for its (m, n) weight matrix; elsewhere the layer stays dense.
"""

from __future__ import annotations

import math

from torch import nn

from ..layers import LowRankConv2d, LowRankLinear


def same_padding(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """TensorFlow 'same' padding as (left, right, top, bottom), the order of nn.ZeroPad2d."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


def worthwhile(m: int, n: int, rank: int) -> bool:
    """A rank-`rank` factorization of an (m, n) matrix stores fewer weights than the matrix."""
    return 0 < rank and rank * (m + n) < m * n


def conv(in_channels: int, out_channels: int, kernel, *, size: tuple[int, int], stride=1, groups: int = 1,
         bias: bool = False, rank: int = 0) -> nn.Module:
    """A conv with TensorFlow 'same' padding on an input of spatial `size` (H, W), factored when worthwhile."""
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    left, right, top, bottom = same_padding(size, kernel, stride)
    symmetric = left == right and top == bottom
    padding = (top, left) if symmetric else 0
    m, n = out_channels // groups, in_channels // groups * kernel[0] * kernel[1]
    if groups == 1 and worthwhile(m, n, rank):
        layer = LowRankConv2d(in_channels, out_channels, kernel, rank, stride=stride, padding=padding, bias=bias)
    else:
        layer = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    return layer if symmetric else nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), layer)


def conv_bn(in_channels: int, out_channels: int, kernel, *, size: tuple[int, int], stride=1, groups: int = 1,
            rank: int = 0, relu: bool = True) -> nn.Sequential:
    """conv -> BatchNorm (folded into the conv on export) -> ReLU (fused into it)."""
    layers = [conv(in_channels, out_channels, kernel, size=size, stride=stride, groups=groups, rank=rank),
              nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def linear(in_features: int, out_features: int, *, rank: int = 0) -> nn.Module:
    """nn.Linear, or LowRankLinear where that is smaller."""
    if worthwhile(out_features, in_features, rank):
        return LowRankLinear(in_features, out_features, rank)
    return nn.Linear(in_features, out_features)


def out_size(size: tuple[int, int], stride) -> tuple[int, int]:
    """Spatial size after a 'same' conv of this stride."""
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    return tuple(math.ceil(n / s) for n, s in zip(size, stride))
