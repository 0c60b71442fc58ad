"""A small, deterministic classification training loop with per-step hooks.

`tinylr.train` trains zoo models end to end; the low-rank methods need more
control: an optimizer made before training (OIALR swaps its parameters), hooks
after each step (OIALR, rank logging) and an extra loss term (Frobenius decay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from ..train import accuracy, deterministic  # noqa: F401  (re-exported for lowrank.bench)

StepHook = Callable[[int], None]


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, optimizer: torch.optim.Optimizer, *, epochs: int,
        batch_size: int, seed: int = 0, hooks: Iterable[StepHook] = (),
        penalty: Callable[[nn.Module], torch.Tensor] | None = None, cosine: bool = True) -> dict:
    """Cross-entropy training; `hooks` get the 1-based step number after each optimizer step.

    The learning rate follows a per-epoch cosine schedule when `cosine`. Returns
    {"steps", "final_loss"}.
    """
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if cosine else None
    order = torch.Generator().manual_seed(seed)
    hooks = list(hooks)
    step, total = 0, 0.0
    model.train()
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(xs), generator=order).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(xs[idx]), ys[idx])
            total += loss.item() * len(idx)
            if penalty is not None:
                loss = loss + penalty(model)
            loss.backward()
            optimizer.step()
            step += 1
            for hook in hooks:
                hook(step)
        if sched is not None:
            sched.step()
    model.eval()
    return {"steps": step, "final_loss": total / len(xs)}
