"""Unsupervised training of MPGNN / LR-MPGNN: loss = -mean weighted sum rate.

No labels: the gradient of the WSR of the predicted powers flows through the rate
formula (as in Shen et al.). Adam 1e-3, batch 64, 10,000 training channels by
default. `train` leaves the same artefacts as `tinylr train`, so the next stages
(`tinylr export`, `tinylr verify`) take them unchanged:

`out_dir/checkpoint.pt`  tinylr checkpoint (zoo name `mpgnn`/`lr_mpgnn` + GNNConfig kwargs)
`out_dir/dataset.npz`    x_train / x_test packed inputs (calibration and scoring), y_* zeros
`out_dir/train.json`     summary: config, parameters, WSR history, held-out normalized WSR, time
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import TinylrError
from ..export import OUTPUTS as EXPORT_OUTPUTS
from ..fsutil import atomic_path, remove_stale, write_json
from ..layers import dense_param_count
from ..train import CHECKPOINT_FORMAT, deterministic, factored_layers
from . import data
from .channels import Channels, Scenario, pack, weighted_sum_rate
from .gnn import MPGNN, GNNConfig

__all__ = ["TrainOptions", "QUICK", "fit", "train", "zoo_name", "param_count"]


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 25
    batch_size: int = 64
    lr: float = 1e-3
    n_train: int = data.N_TRAIN
    n_test: int = data.N_TEST
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.n_train < 1 or self.n_test < 1 or not self.lr > 0:
            raise TinylrError(f"bad training options {self}: epochs, batch size and sample counts must be >= 1, lr > 0")


# For tests and smoke runs: a few seconds of CPU. Smaller batches and a larger step than the
# real budget get past the initial plateau (all powers alike) within ~400 steps: the reference
# MPGNN reaches nWSR ~0.97 (0.96-0.98 across machines' thread counts), full power is ~0.22.
QUICK = TrainOptions(epochs=3, batch_size=16, lr=3e-3, n_train=2_000, n_test=500)


def zoo_name(config: GNNConfig) -> str:
    return "lr_mpgnn" if config.rank or any(config.ranks.values()) else "mpgnn"


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(model: MPGNN, channels: Channels, feature: str, options: TrainOptions, *, progress: bool = True,
        desc: str = "train", on_optimizer=None) -> list[float]:
    """Adam on -mean WSR over `channels`; returns the mean training WSR of each epoch.

    `on_optimizer(model, optimizer)`, when given, returns an object whose `step()` runs
    after every optimizer step (e.g. `tinylr.lowrank.OIALR`).
    """
    from tqdm import tqdm

    x = torch.from_numpy(pack(channels, feature))
    gains = torch.from_numpy(channels.gains.astype(np.float32))
    alpha = torch.from_numpy(channels.alpha.astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    hook = on_optimizer(model, opt) if on_optimizer else None
    order = torch.Generator().manual_seed(options.seed)
    steps = -(-len(x) // options.batch_size)
    history = []
    model.train()
    with tqdm(total=options.epochs * steps, desc=desc, unit="batch", disable=not progress, mininterval=1.0,
              dynamic_ncols=True, leave=False) as bar:
        for epoch in range(options.epochs):
            total = 0.0
            for idx in torch.randperm(len(x), generator=order).split(options.batch_size):
                p = model(x[idx])
                wsr = weighted_sum_rate(p, gains=gains[idx], alpha=alpha[idx], noise=channels.noise,
                                        log_base=channels.log_base)
                loss = -wsr.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if hook is not None:
                    hook.step()
                total += float(wsr.detach().sum())
                bar.update()
            history.append(total / len(x))
            bar.set_postfix(epoch=epoch + 1, wsr=f"{history[-1]:.4f}")
    model.eval()
    return history


def train(config: GNNConfig, out_dir: str | Path, *, scenario: Scenario = data.DEFAULT_SCENARIO,
          options: TrainOptions | None = None, model: MPGNN | None = None, progress: bool = True,
          note: str | None = None, oialr=None) -> dict:
    """Train `model` (default: a fresh one built from `config`) and write checkpoint.pt, dataset.npz, train.json.

    Passing a `model` continues from its weights (fine-tuning a factorized MPGNN); it
    must be built from `config`. With `oialr` (a `tinylr.lowrank.OIALRConfig`), the
    dense `config` is trained with OIALR and saved with the ranks it settled on
    (`GNNConfig.ranks`). Returns the summary written to train.json.
    """
    from .evaluate import normalized_wsr_float

    options = options or TrainOptions()
    out = Path(out_dir)
    paths = {k: out / f for k, f in (("checkpoint", "checkpoint.pt"), ("dataset", "dataset.npz"),
                                     ("summary", "train.json"))}
    # a new checkpoint makes any earlier export and score of this folder stale
    remove_stale(*paths.values(), *(out / name for name in (*EXPORT_OUTPUTS, "eval.json")))
    if config.k != scenario.k:
        raise TinylrError(f"the model is built for K={config.k} users but the scenario has K={scenario.k}; "
                          "give the same K to both")
    start = time.perf_counter()
    requested = config.to_kwargs()
    oialr_runs, rank_history = [], None

    def start_oialr(m, opt):
        from ..lowrank import OIALR
        oialr_runs.append(OIALR(m, opt, oialr))
        return oialr_runs[-1]

    with deterministic(options.seed):
        model = MPGNN(config) if model is None else model
        train_ch = data.channels(scenario, "train", options.n_train)
        history = fit(model, train_ch, scenario.feature, options, progress=progress,
                      desc=f"{zoo_name(config)} {_label(config)}" + (" OIALR" if oialr else ""),
                      on_optimizer=start_oialr if oialr else None)
        if oialr:
            model, config, rank_history = _finish_oialr(model, config, oialr_runs[0])
    seconds = time.perf_counter() - start
    test_ch = data.channels(scenario, "test", options.n_test)
    score = normalized_wsr_float(model, test_ch, scenario.feature)

    split = data.split(scenario, options.n_train, options.n_test)
    with atomic_path(paths["dataset"]) as tmp, open(tmp, "wb") as f:
        np.savez(f, **split._asdict())
    name = zoo_name(config)
    rrm_info = {"scenario": asdict(scenario), "options": asdict(options)}
    with atomic_path(paths["checkpoint"]) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "model": name, "model_kwargs": config.to_kwargs(),
                    "input_shape": [config.k, config.k + 1], "state_dict": model.state_dict(), "rrm": rrm_info}, tmp)
    summary = {
        "model": name,
        "model_kwargs": config.to_kwargs(),
        "requested_kwargs": requested,
        **rrm_info,
        "oialr": None if oialr is None else {"config": asdict(oialr), "rank_history": rank_history},
        "note": note,
        "params": param_count(model),
        "dense_params": dense_param_count(model),
        "factored_layers": factored_layers(model),
        "train_wsr_per_epoch": [round(v, 5) for v in history],
        "test": score,
        "seconds": round(seconds, 2),
        "torch_version": torch.__version__,
    }
    write_json(paths["summary"], summary)
    return summary


def _finish_oialr(model: MPGNN, config: GNNConfig, run) -> tuple[MPGNN, GNNConfig, list[dict]]:
    """Fold OIALR's layers into LowRankLinear/Linear and rebuild the MPGNN whose config names those ranks."""
    import dataclasses

    decisions = run.finalize()
    ranks = {d["name"]: d["rank"] if d["factored"] else 0 for d in decisions}
    config = dataclasses.replace(config, rank=0, ranks=ranks)
    rebuilt = MPGNN(config)
    rebuilt.load_state_dict(model.state_dict(), strict=True)  # same structure, or OIALR decided differently
    return rebuilt.eval(), config, run.history


def _label(config: GNNConfig) -> str:
    widths = "-".join(map(str, config.msg + config.upd))
    return f"w{widths}" + (f" r{config.rank}" if config.rank else "")
