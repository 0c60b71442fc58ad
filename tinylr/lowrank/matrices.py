"""Layers seen as stacks of matrices, and the truncated SVD split into two factors.

Every layer kind is treated as g matrices of shape (m, n): a Linear is one
(out, in) matrix; a Conv2d with `groups=g` is one (out/g, in/g·kh·kw) matrix per
group. That is torch's own conv weight layout, so a reshape is all it takes, and
the factors reshape straight back into the k×k and 1×1 convs of LowRankConv2d.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..layers import FACTORED_LAYERS, LowRankConv2d, LowRankLinear

FilterFn = Callable[[nn.Module, str], bool]
FACTORABLE = (nn.Linear, nn.Conv2d)


def weight_stack(module: nn.Module) -> torch.Tensor:
    """The (g, m, n) matrices a Linear, Conv2d or factored layer applies (detached)."""
    if isinstance(module, FACTORED_LAYERS):
        weight, groups = module.dense_weight(), getattr(module, "groups", 1)
    elif isinstance(module, FACTORABLE):
        weight, groups = module.weight.detach(), getattr(module, "groups", 1)
    else:
        raise TypeError(f"{type(module).__name__} is not a Linear, Conv2d or factored layer")
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def svd_factors(stack: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rank-`rank` factors of each matrix: U_r·diag(√S_r) (g, m, r) and diag(√S_r)·V_rᵀ (g, r, n).

    Splitting √S evenly keeps both factors on the same scale, which int8
    quantization of each factor (and gradient descent on both) prefers. The SVD
    runs in float64 so that a full-rank split reproduces the weight to float
    rounding.
    """
    u, s, vh = torch.linalg.svd(stack.double(), full_matrices=False)
    root = s[:, :rank].sqrt()
    left = u[:, :, :rank] * root[:, None, :]
    right = root[:, :, None] * vh[:, :rank, :]
    return left.to(stack.dtype), right.to(stack.dtype)


def spectrum(stack: torch.Tensor) -> torch.Tensor:
    """Per-index singular values pooled over groups, √(Σ_g σ_{g,i}²), float64, descending.

    Rank rules need one spectrum per layer, but a grouped layer must keep the
    same rank in every group; pooling the energy of each index does both (and is
    the plain spectrum when g = 1).
    """
    return torch.linalg.svdvals(stack.double()).pow(2).sum(0).sqrt()


def factored_like(module: nn.Module, rank_per_group: int) -> LowRankLinear | LowRankConv2d:
    """An empty factored layer with `module`'s hyperparameters (bias copied, factors not)."""
    ref = module.weight
    factory = {"device": ref.device, "dtype": ref.dtype}
    if isinstance(module, nn.Linear):
        layer = LowRankLinear(module.in_features, module.out_features, rank_per_group,
                              bias=module.bias is not None, **factory)
    elif isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":  # reflect/replicate/circular would need a pad op before V
            raise ValueError(f"padding_mode {module.padding_mode!r} cannot be factored; use 'zeros'")
        layer = LowRankConv2d(module.in_channels, module.out_channels, module.kernel_size,
                              rank_per_group * module.groups, stride=module.stride, padding=module.padding,
                              groups=module.groups, bias=module.bias is not None, dilation=module.dilation, **factory)
    else:
        raise TypeError(f"cannot factor a {type(module).__name__}")
    if module.bias is not None:
        with torch.no_grad():
            layer.U.bias.copy_(module.bias)
    return layer


@torch.no_grad()
def load_factors_(layer: LowRankLinear | LowRankConv2d, left: torch.Tensor, right: torch.Tensor) -> None:
    """Write (g, m, r) and (g, r, n) factors into the U and V sub-layers."""
    layer.U.weight.copy_(left.reshape(layer.U.weight.shape))
    layer.V.weight.copy_(right.reshape(layer.V.weight.shape))


def worthwhile(rank: int, m: int, n: int) -> bool:
    """r·(m+n) < m·n: the factors hold fewer weights (and cost fewer MACs) than the matrix."""
    return rank * (m + n) < m * n


def max_worthwhile_rank(m: int, n: int) -> int:
    """The largest r with r·(m+n) < m·n (0 when even rank 1 is not)."""
    return (m * n - 1) // (m + n)


def candidates(model: nn.Module, filter_fn: FilterFn | None = None,
               skip: tuple[type, ...] = ()) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) of each Linear/Conv2d in `model`, in registration order.

    Never descends into factored layers (their U and V are Linear/Conv2d too,
    and factoring a factor makes no sense) nor into modules of the `skip` types.
    """
    def walk(module: nn.Module, prefix: str):
        for name, child in module.named_children():
            fqn = f"{prefix}.{name}" if prefix else name
            if isinstance(child, FACTORED_LAYERS + skip):
                continue
            if isinstance(child, FACTORABLE):
                if filter_fn is None or filter_fn(child, fqn):
                    yield fqn, child
            else:
                yield from walk(child, fqn)

    if isinstance(model, FACTORABLE):
        raise TypeError("pass the model that contains the layer: a layer cannot replace itself in place")
    yield from walk(model, "")


def factor_stacks(layer: LowRankLinear | LowRankConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Views (with gradients) of a factored layer's U as (g, m, r) and V as (g, r, n)."""
    g = getattr(layer, "groups", 1)
    u, v = layer.U.weight, layer.V.weight
    return u.reshape(g, u.shape[0] // g, -1), v.reshape(g, v.shape[0] // g, -1)


def factored_layers(model: nn.Module) -> Iterator[tuple[str, LowRankLinear | LowRankConv2d]]:
    """(name, layer) of every factored layer, `model` itself included."""
    for name, module in model.named_modules():
        if isinstance(module, FACTORED_LAYERS):
            yield name, module
