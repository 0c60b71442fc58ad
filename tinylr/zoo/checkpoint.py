"""Zoo models with seeded random weights, saved as `tinylr train` saves a checkpoint.

For speed and memory measurements (and converter/generator tests) the weights do not
matter: they change neither the graph, nor the sizes, nor the arena. Batch-norm
statistics are measured on real training data so activations stay in a realistic
range for int8 calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import get as get_entry


def random_checkpoint(name: str, folder: Path, n_train: int = 200, n_test: int = 40, **kwargs) -> tuple[Path, Path]:
    """Seeded random weights, batch-norm statistics measured on the training data, as `tinylr train` saves them.

    Weights do not change the graph, the sizes or the arena; measured batch-norm
    statistics keep activations in a realistic range for calibration.
    """
    from ..train import CHECKPOINT_FORMAT

    entry = get_entry(name)
    split = entry.load_data()
    torch.manual_seed(0)
    model = entry.build(**kwargs)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for batch in torch.from_numpy(split.x_train[:n_train]).split(50):
            model(batch)
    torch.save({"format": CHECKPOINT_FORMAT, "model": name, "model_kwargs": kwargs,
                "input_shape": list(entry.input_shape), "state_dict": model.eval().state_dict()},
               folder / "checkpoint.pt")
    np.savez(folder / "dataset.npz", x_train=split.x_train[:n_train], y_train=split.y_train[:n_train],
             x_test=split.x_test[:n_test], y_test=split.y_test[:n_test])
    return folder / "checkpoint.pt", folder / "dataset.npz"
