"""`mpgnn` and `lr_mpgnn`: power control on the K=10 Gaussian interference channel.

The model maps one packed input [K, K+1] (row k: |h_k1| .. |h_kK|, alpha_k; see
`tinylr.rrm.channels.pack`) to powers p [K] in [0, 1]; it is trained without labels
(loss = -weighted sum rate) by `tinylr rrm train`, not by the classifier trainer
`tinylr train`. The zoo entries exist so that checkpoints written by `tinylr rrm
train` rebuild through `tinylr.train.load_checkpoint` and export with `tinylr export`.

`load_data` gives the packed channels as x and **all-zero labels** as y: the zoo's
Split carries integer class labels, and a power allocation has none (the WMMSE
powers are float vectors; `tinylr rrm evaluate` recomputes them from the seeds).
"""

from __future__ import annotations

from ..rrm import data
from ..rrm.gnn import MPGNN, GNNConfig
from . import Split, ZooEntry, register

K = 10

# `lr_mpgnn`: Shen et al.'s layer sizes with every worthwhile Linear at rank 4 (557
# parameters, ~88 k MACs): small enough for the radio MCU, the default of `make deploy`.
# `lr_mpgnn_w256`: the row of docs/rrm.md that meets the paper's claim on every seed
# tried (95.4% fewer parameters than the 256-wide MPGNN, the same nWSR; rank 2 is smaller
# but lost 1.6-4% on two seeds of three): 6,177 parameters, ~15 KB of int8 constants, but
# ~1 M MACs per inference (docs/rrm.md).
LR_DEFAULTS = {"msg": (16, 32), "upd": (16,), "rank": 4}
LR_W256_DEFAULTS = {"msg": (256, 256), "upd": (256,), "rank": 4}
CONFIG_KEYS = ("msg", "upd", "rank", "layers", "ranks")
_DEFAULTS = {"mpgnn": {}, "lr_mpgnn": LR_DEFAULTS, "lr_mpgnn_w256": LR_W256_DEFAULTS}


def config(name: str, **kwargs) -> GNNConfig:
    """The GNNConfig a zoo name and keyword arguments stand for."""
    return GNNConfig(**{"k": K, **_DEFAULTS[name], **kwargs})


def build_mpgnn(**kwargs) -> MPGNN:
    return MPGNN(config("mpgnn", **kwargs))


def build_lr_mpgnn(**kwargs) -> MPGNN:
    return MPGNN(config("lr_mpgnn", **kwargs))


def build_lr_mpgnn_w256(**kwargs) -> MPGNN:
    return MPGNN(config("lr_mpgnn_w256", **kwargs))


def load_data() -> Split:
    return data.split(data.DEFAULT_SCENARIO)


register(ZooEntry(
    name="mpgnn",
    build=build_mpgnn,
    load_data=load_data,
    input_shape=(K, K + 1),
    description="MPGNN power control, K=10 Gaussian IC: packed [K, K+1] -> p [K] (dense layers; train with `tinylr rrm train`)",
    task="power_control",
))

register(ZooEntry(
    name="lr_mpgnn",
    build=build_lr_mpgnn,
    load_data=load_data,
    input_shape=(K, K + 1),
    description="LR-MPGNN power control, K=10 Gaussian IC: MPGNN 16-32/16 with LowRankLinear layers at rank 4",
    task="power_control",
))

register(ZooEntry(
    name="lr_mpgnn_w256",
    build=build_lr_mpgnn_w256,
    load_data=load_data,
    input_shape=(K, K + 1),
    description="LR-MPGNN power control, K=10 Gaussian IC: message 256-256, update 256, rank 4 (the paper's claim)",
    task="power_control",
))
