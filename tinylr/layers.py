"""Factored (low-rank) layers: W ≈ U·V stored and run as two explicit sub-layers.

Keeping the two factors as separate `nn.Linear` modules (rather than one module
that multiplies U·V on the fly) is what makes the factorization survive export:
torch.onnx writes two MatMul/Gemm nodes, onnx2tf keeps two FULLY_CONNECTED ops,
and the microcontroller does rank·(m+n) multiply-accumulates instead of m·n.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LowRankLinear", "dense_param_count"]


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


def dense_param_count(model: nn.Module) -> int:
    """Parameters `model` would have if every LowRankLinear in it were dense."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, LowRankLinear):
            total += module.dense_params - module.params
    return total
