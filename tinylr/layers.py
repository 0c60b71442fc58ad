"""Factored (low-rank) layers: W ≈ U·V stored and run as two explicit sub-layers.

Keeping the two factors as separate `nn.Linear` (or `nn.Conv2d`) modules, rather
than one module that multiplies U·V on the fly, is what makes the factorization
survive export: torch.onnx writes two MatMul/Gemm (Conv) nodes, onnx2tf keeps two
FULLY_CONNECTED (CONV_2D) ops, and the microcontroller does rank·(m+n)
multiply-accumulates instead of m·n.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = ["LowRankLinear", "LowRankConv2d", "FACTORED_LAYERS", "dense_param_count"]


class LowRankLinear(nn.Module):
    """A linear map `y = U(V(x))` of rank at most `rank`, equivalent to `nn.Linear`.

    `V` projects the input down to `rank` features (no bias: a bias there would be
    redundant with U's), `U` projects back up to `out_features` and carries the bias.
    The dense weight it represents is `U.weight @ V.weight`, of shape
    (out_features, in_features), exactly like `nn.Linear.weight`.

    Args:
        in_features: size of each input sample (n).
        out_features: size of each output sample (m).
        rank: inner dimension r, 1 <= r <= min(m, n).
        bias: whether `U` learns an additive bias, like `nn.Linear(bias=...)`.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        if min(in_features, out_features) < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features} and {out_features}")
        if not 1 <= rank <= min(in_features, out_features):
            # A rank above min(m, n) adds parameters without adding expressiveness.
            raise ValueError(
                f"rank must be between 1 and min(in_features, out_features) = "
                f"{min(in_features, out_features)}, got {rank}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.rank = rank
        factory = {"device": device, "dtype": dtype}
        self.V = nn.Linear(in_features, rank, bias=False, **factory)
        self.U = nn.Linear(rank, out_features, bias=bias, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.U(self.V(x))

    @property
    def has_bias(self) -> bool:
        return self.U.bias is not None

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(m, n) = (out_features, in_features), the shape of the weight it stands for."""
        return self.out_features, self.in_features

    @property
    def params(self) -> int:
        """Parameters stored: r·(m+n) weights plus m biases."""
        return self.rank * (self.in_features + self.out_features) + (self.out_features if self.has_bias else 0)

    @property
    def dense_params(self) -> int:
        """Parameters of the equivalent `nn.Linear`: m·n weights plus m biases."""
        return self.in_features * self.out_features + (self.out_features if self.has_bias else 0)

    @property
    def worthwhile(self) -> bool:
        """True when the factored weights are fewer than the dense ones: r·(m+n) < m·n.

        The same inequality holds for multiply-accumulates per sample, so a layer
        that is not worthwhile is both larger and slower than its dense form.
        """
        return self.rank * (self.in_features + self.out_features) < self.in_features * self.out_features

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The (out_features, in_features) matrix U·V this layer applies."""
        return self.U.weight @ self.V.weight

    @torch.no_grad()
    def to_dense(self) -> nn.Linear:
        """An `nn.Linear` computing the same function (up to float rounding)."""
        weight = self.dense_weight()
        dense = nn.Linear(self.in_features, self.out_features, bias=self.has_bias,
                          device=weight.device, dtype=weight.dtype)
        dense.weight.copy_(weight)
        if self.has_bias:
            dense.bias.copy_(self.U.bias)
        return dense

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, bias={self.has_bias}")


class LowRankConv2d(nn.Module):
    """A conv `y = U(V(x))`: a k×k conv to `rank` channels, then a 1×1 conv to `out_channels`.

    The dense weight it represents has `nn.Conv2d`'s shape (out, in/groups, kh, kw);
    as a matrix (out, in·kh·kw per group) its rank is at most `rank`. Stride,
    padding and dilation belong to the k×k conv `V` (the 1×1 conv cannot change the
    spatial grid). With `groups=g` both convs are grouped, which factors each
    group's (out/g, in/g·kh·kw) matrix separately at rank/g: the block-diagonal
    structure of a grouped conv survives, and at full rank the layer is exact.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
        bias: as for `nn.Conv2d` (bias lives on `U`).
        rank: channels between the two convs; a multiple of `groups`, and
            rank/groups <= min(out/groups, in/groups·kh·kw).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, rank: int, stride=1, padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, device=None, dtype=None) -> None:
        super().__init__()
        if min(in_channels, out_channels, groups) < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be positive "
                             f"multiples of groups ({groups})")
        kh, kw = _pair(kernel_size)
        full = min(out_channels // groups, in_channels // groups * kh * kw)
        if rank % groups or not 1 <= rank // groups <= full:
            raise ValueError(f"rank must be a multiple of groups ({groups}) with rank/groups between 1 and "
                             f"min(out/groups, in/groups·kh·kw) = {full}, got {rank}")
        self.in_channels, self.out_channels, self.rank, self.groups = in_channels, out_channels, rank, groups
        self.kernel_size = (kh, kw)
        factory = {"device": device, "dtype": dtype}
        self.V = nn.Conv2d(in_channels, rank, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                           groups=groups, bias=False, **factory)
        self.U = nn.Conv2d(rank, out_channels, 1, groups=groups, bias=bias, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.U(self.V(x))

    @property
    def has_bias(self) -> bool:
        return self.U.bias is not None

    @property
    def stride(self):
        return self.V.stride

    @property
    def padding(self):
        return self.V.padding

    @property
    def dilation(self):
        return self.V.dilation

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(m, n) of one group's weight matrix: out/g rows, in/g·kh·kw columns."""
        kh, kw = self.kernel_size
        return self.out_channels // self.groups, self.in_channels // self.groups * kh * kw

    @property
    def params(self) -> int:
        m, n = self.matrix_shape
        return self.rank * (m + n) + (self.out_channels if self.has_bias else 0)

    @property
    def dense_params(self) -> int:
        m, n = self.matrix_shape
        return self.groups * m * n + (self.out_channels if self.has_bias else 0)

    @property
    def worthwhile(self) -> bool:
        """r·(m+n) < m·n per group: fewer weights, and as many fewer MACs per output pixel."""
        m, n = self.matrix_shape
        return self.rank // self.groups * (m + n) < m * n

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The (out, in/groups, kh, kw) kernel of the equivalent `nn.Conv2d`."""
        g, r = self.groups, self.rank // self.groups
        m, n = self.matrix_shape
        u = self.U.weight.reshape(g, m, r)
        v = self.V.weight.reshape(g, r, n)
        return torch.bmm(u, v).reshape(self.out_channels, self.in_channels // g, *self.kernel_size)

    @torch.no_grad()
    def to_dense(self) -> nn.Conv2d:
        """An `nn.Conv2d` computing the same function (up to float rounding)."""
        weight = self.dense_weight()
        dense = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                          padding=self.padding, dilation=self.dilation, groups=self.groups, bias=self.has_bias,
                          device=weight.device, dtype=weight.dtype)
        dense.weight.copy_(weight)
        if self.has_bias:
            dense.bias.copy_(self.U.bias)
        return dense

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, rank={self.rank}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.has_bias}")


FACTORED_LAYERS = (LowRankLinear, LowRankConv2d)


def dense_param_count(model: nn.Module) -> int:
    """Parameters `model` would have if every factored layer in it were dense."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, FACTORED_LAYERS):
            total += module.dense_params - module.params
    return total
