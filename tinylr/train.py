"""Stage 1: train a zoo model and leave what the next stages need on disk.

`out_dir/checkpoint.pt`  state_dict + zoo name + kwargs (export rebuilds the model)
`out_dir/dataset.npz`    x_train, y_train, x_test, y_test (calibration and scoring)
`out_dir/train.json`     summary: accuracy, parameter counts, seed, timing

Training is deterministic for a given seed on a given machine: seeded weights,
seeded shuffling, and one intra-op thread (float sums change with the split).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import zoo
from .errors import TinylrError
from .fsutil import atomic_path, remove_stale, write_json
from .layers import LowRankLinear, dense_param_count

CHECKPOINT_FORMAT = "tinylr-checkpoint-v1"


def train(model_name: str, out_dir: str | Path, *, seed: int = 0, epochs: int = 40,
          lr: float = 1e-2, batch_size: int = 64, **model_kwargs) -> dict:
    """Train zoo model `model_name`; write checkpoint.pt, dataset.npz, train.json.

    `model_kwargs` go to the zoo builder (for digits_mlp: `hidden`, `rank`).
    Returns the summary written to train.json.
    """
    out = Path(out_dir)
    paths = {k: out / f for k, f in
             (("checkpoint", "checkpoint.pt"), ("dataset", "dataset.npz"), ("summary", "train.json"))}
    remove_stale(*paths.values())
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise TinylrError(f"epochs ({epochs}) and batch_size ({batch_size}) must be >= 1 and lr ({lr}) > 0")
    entry = zoo.get(model_name)
    start = time.perf_counter()
    with deterministic(seed):
        model = _build(entry, model_kwargs)
        split = entry.load_data()
        loss = _fit(model, split, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        train_acc = accuracy(model, split.x_train, split.y_train)
        test_acc = accuracy(model, split.x_test, split.y_test)
    seconds = time.perf_counter() - start

    with atomic_path(paths["dataset"]) as tmp, open(tmp, "wb") as f:
        np.savez(f, **split._asdict())
    with atomic_path(paths["checkpoint"]) as tmp:
        torch.save({
            "format": CHECKPOINT_FORMAT,
            "model": model_name,
            "model_kwargs": dict(model_kwargs),
            "input_shape": list(entry.input_shape),
            "state_dict": model.state_dict(),
        }, tmp)
    summary = {
        "model": model_name,
        "model_kwargs": dict(model_kwargs),
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "final_loss": loss,
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "n_train": int(len(split.y_train)),
        "n_test": int(len(split.y_test)),
        "params": sum(p.numel() for p in model.parameters()),
        "dense_params": dense_param_count(model),
        "factored_layers": factored_layers(model),
        "seconds": round(seconds, 3),
        "torch_version": torch.__version__,
    }
    write_json(paths["summary"], summary)
    return summary


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the trained model from a checkpoint.pt; returns (model in eval mode, checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise TinylrError(f"{path}: no such checkpoint; run `tinylr train` first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TinylrError(f"{path}: not a readable torch checkpoint ({exc}); re-run `tinylr train`") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise TinylrError(f"{path}: not a checkpoint written by `tinylr train`; re-run `tinylr train`")
    model = _build(zoo.get(ckpt["model"]), ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise TinylrError(f"{path}: weights do not fit model {ckpt['model']!r} ({exc}); re-run `tinylr train`") from exc
    return model.eval(), ckpt


def factored_layers(model: nn.Module) -> list[dict]:
    """One JSON-able description per LowRankLinear in `model`."""
    return [dict(name=name, in_features=m.in_features, rank=m.rank, out_features=m.out_features, bias=m.has_bias,
                 params=m.params, dense_params=m.dense_params, worthwhile=m.worthwhile)
            for name, m in model.named_modules() if isinstance(m, LowRankLinear)]


@torch.no_grad()
def linear_calls(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """How many times nn.Linear modules run for one input: a layer reused twice becomes two FC ops."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        model(torch.zeros(input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return len(calls)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float(np.mean(pred == y))


def _build(entry: zoo.ZooEntry, kwargs: dict) -> nn.Module:
    try:
        return entry.build(**kwargs)
    except (TypeError, ValueError) as exc:
        raise TinylrError(f"model {entry.name!r}: bad option ({exc})") from exc


def _fit(model: nn.Module, split: zoo.Split, *, epochs: int, lr: float, batch_size: int, seed: int) -> float:
    x = torch.from_numpy(split.x_train)
    y = torch.from_numpy(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    model.train()
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(x), generator=order).split(batch_size):
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
    model.eval()
    return total / len(x)


@contextlib.contextmanager
def deterministic(seed: int, threads: int = 1):
    """Seeded torch RNG and a fixed thread count for the block (float sums change with the
    split); the caller's RNG state and thread count come back after."""
    saved = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(saved)
