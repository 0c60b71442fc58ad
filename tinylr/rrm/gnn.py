"""MPGNN and LR-MPGNN for power control, written with dense tensors for export.

Shen et al.'s MPGNN (JSAC 2021) on the complete directed graph of K users:
node features x_k = [h_kk, alpha_k, p_k], edge features for the message from j to i
e_ij = [H_ji, H_ij] (H[k, j]: transmitter j to receiver k), one layer
    m_ij  = MLP_msg(cat[x_j, e_ij])              (every Linear followed by ReLU)
    a_i   = max_{j != i} m_ij
    p_i   = sigmoid(Linear(MLP_upd(cat[x_i, a_i])))
applied `layers` times with shared weights, x_i = [h_ii, alpha_i, p_i] between them.
The reference sizes 5 -> 16 -> 32 and 35 -> 16 -> 1 give 1,233 parameters.

Dense form: nodes [B*K, F], edges [B*K*K, Fe] (row i*K + j: the edge j -> i), the max
over j a masked REDUCE_MAX; no scatter/gather and no data-dependent indices, so torch.onnx ->
onnx2tf -> int8 TFLite keeps it as MUL, CONCATENATION, FULLY_CONNECTED, RESHAPE,
REDUCE_MAX, LOGISTIC plus the STRIDED_SLICE and TRANSPOSE that unpack the input (and
QUANTIZE int8 -> int8 where CONCATENATION needs one scale on all its inputs).

One input, one output: `packed` [B, K, K+1] (row k: features of G[k, :], then
alpha_k; see `tinylr.rrm.channels.pack`) -> p [B, K] in [0, 1] (Pmax = 1).
The diagonal is read as max_j(F * I): exact because the features are >= 0. The
messages are >= 0 (ReLU), so zeroing the diagonal with a constant mask before the
max gives the max over j != i (K = 1: no neighbour, aggregate 0).

LR-MPGNN: every Linear whose rank-r factorization stores fewer weights,
r (m + n) < m n, becomes a `tinylr.layers.LowRankLinear`; the others (the 5 -> h input
layer at larger ranks, the 1-wide output) stay dense: factoring them would only add weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..layers import LowRankLinear

__all__ = ["GNNConfig", "MPGNN", "build", "NODE_FEATURES", "EDGE_FEATURES"]

NODE_FEATURES = 3  # h_kk, alpha_k, p_k
EDGE_FEATURES = 2  # H_ji, H_ij


@dataclass(frozen=True)
class GNNConfig:
    """Sizes of the shared layer. `rank=0` is the dense MPGNN; `rank=r` makes LR-MPGNN."""

    k: int = 10                                   # users (the exported input is [1, k, k+1])
    msg: tuple[int, ...] = (16, 32)               # message MLP widths after the 5 inputs
    upd: tuple[int, ...] = (16,)                  # update MLP hidden widths before the 1 output
    rank: int = 0
    layers: int = 3                               # applications of the shared layer
    ranks: dict = field(default_factory=dict)     # per-Linear override by module name ('msg.0'), 0 = dense

    def __post_init__(self):
        object.__setattr__(self, "msg", tuple(int(w) for w in self.msg))
        object.__setattr__(self, "upd", tuple(int(w) for w in self.upd))
        if self.k < 1 or self.layers < 1 or self.rank < 0 or not self.msg or min(self.msg + self.upd, default=1) < 1:
            raise ValueError(f"bad GNN sizes: {self}")

    def to_kwargs(self) -> dict:
        """Plain JSON-able keyword arguments for `build` (what a checkpoint stores)."""
        d = asdict(self)
        d["msg"], d["upd"] = list(self.msg), list(self.upd)
        return d


def _linear(n: int, m: int, rank: int) -> nn.Module:
    if rank and rank * (n + m) < n * m:
        return LowRankLinear(n, m, rank)
    return nn.Linear(n, m)


def _mlp(sizes: list[int], prefix: str, cfg: GNNConfig, relu_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(_linear(n, m, cfg.ranks.get(f"{prefix}.{len(layers)}", cfg.rank)))
        if relu_last or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MPGNN(nn.Module):
    """Dense-tensor MPGNN; LR-MPGNN when `config.rank` > 0. Input [B, K, K+1], output p [B, K]."""

    def __init__(self, config: GNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GNNConfig()
        k = config.k
        msg = [NODE_FEATURES + EDGE_FEATURES, *config.msg]
        upd = [NODE_FEATURES + config.msg[-1], *config.upd, 1]
        self.msg = _mlp(msg, "msg", config, relu_last=True)
        self.upd = _mlp(upd, "upd", config, relu_last=False)
        # Constants of the dense formulation (buffers: exported as initializers, never trained).
        eye = torch.eye(k)
        self.register_buffer("eye", eye, persistent=False)                                 # [K, K]
        self.register_buffer("off_diagonal", (1.0 - eye).reshape(k * k, 1), persistent=False)  # row i*K+j: i != j
        self.register_buffer("ones_k", torch.ones(1, k, 1), persistent=False)              # copies x_j for every i

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        # Rank-2 tensors throughout ([B*K, F] nodes, [B*K*K, F] edges, row i*K+j = edge j -> i),
        # rank 3 only where a reshape feeds a max or the transpose: onnx2tf guesses layouts of
        # rank-3/4 tensors (NCW/NCHW) and mis-converts concatenations of [.., K, 1]-shaped pieces.
        b, k = packed.shape[0], self.config.k
        rows = packed.reshape(b * k, k + 1)
        g = rows[:, :k]                                                   # [B*K, K] features of G[i, j]
        alpha = rows[:, k:]                                               # [B*K, 1]
        g3 = g.reshape(b, k, k)
        direct = (g3 * self.eye).amax(dim=2).reshape(b * k, 1)           # features of G[i, i] (g >= 0)
        edges = torch.cat((g3.transpose(1, 2).reshape(b * k * k, 1),     # H_ji: i's interference at j
                           g.reshape(b * k * k, 1)), dim=1)               # H_ij: j's interference at i
        off_diagonal = self.off_diagonal.repeat(b, 1)                     # a constant once exported (b = 1)
        p = torch.ones_like(alpha)                                        # full power to start
        for _ in range(self.config.layers):
            p = self.layer(torch.cat((direct, alpha, p), dim=1), edges, off_diagonal)
        return p.reshape(b, k)

    def layer(self, x: torch.Tensor, edges: torch.Tensor, off_diagonal: torch.Tensor) -> torch.Tensor:
        """One message-passing step: nodes x [B*K, 3], edges [B*K*K, 2] -> new powers [B*K, 1]."""
        k = self.config.k
        b = x.shape[0] // k
        senders = (x.reshape(b, 1, k * NODE_FEATURES) * self.ones_k).reshape(b * k * k, NODE_FEATURES)  # x_j
        messages = self.msg(torch.cat((senders, edges), dim=1)) * off_diagonal   # >= 0, zero for j == i
        aggregate = messages.reshape(b * k, k, -1).amax(dim=1)                   # max over j != i
        return torch.sigmoid(self.upd(torch.cat((x, aggregate), dim=1)))


def build(**kwargs) -> MPGNN:
    """MPGNN from `GNNConfig` keyword arguments (lists are fine for msg/upd)."""
    return MPGNN(GNNConfig(**kwargs))
