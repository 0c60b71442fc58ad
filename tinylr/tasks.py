"""What a model is for: how the pipeline trains it and how it scores its outputs.

A zoo entry names its task. A task trains the model into a folder (the files
`tinylr train` leaves: checkpoint.pt, dataset.npz, train.json) and turns int8 outputs
(TFLM's, or the emulated firmware's) into the task's own measure of quality, so the
report can put the float, int8 and on-MCU numbers side by side.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from . import fsutil, ir, reference
from .errors import TinylrError


class Task(Protocol):
    name: str
    metric: str   # the headline measure, e.g. "accuracy" or "nwsr"

    def train(self, model: str, folder: Path, *, seed: int, quick: bool, **model_kwargs) -> dict: ...

    def score(self, folder: Path, outputs: np.ndarray) -> dict:
        """Quality of int8 `outputs` for the first len(outputs) test samples, in reference.npz order."""
        ...

    def float_score(self, folder: Path, n: int | None = None) -> dict:
        """Quality of the float model on the first n test samples (all when None)."""
        ...


def dequantized_outputs(folder: Path, outputs: np.ndarray) -> np.ndarray:
    graph = ir.load(folder / "model_int8.tflite")
    out = graph.tensors[graph.outputs[0]]
    return reference.dequantize(np.asarray(outputs).reshape(len(outputs), -1), out.scale, out.zero_point)


class Classification:
    name = "classification"
    metric = "accuracy"
    QUICK_EPOCHS = 5

    def train(self, model: str, folder: Path, *, seed: int, quick: bool, **model_kwargs) -> dict:
        from .train import train

        if quick:
            model_kwargs.setdefault("epochs", self.QUICK_EPOCHS)
        return train(model, folder, seed=seed, **model_kwargs)

    def score(self, folder: Path, outputs: np.ndarray) -> dict:
        with np.load(folder / "reference.npz") as ref:
            labels = ref["labels"][: len(outputs)]
        predicted = np.argmax(dequantized_outputs(folder, outputs), axis=1)
        return {"accuracy": float(np.mean(predicted == labels)), "n": int(len(outputs))}

    def float_score(self, folder: Path, n: int | None = None) -> dict:
        import torch

        from .train import load_checkpoint

        model, _ = load_checkpoint(folder / "checkpoint.pt")
        with np.load(folder / "dataset.npz") as data:
            x, y = data["x_test"][:n], data["y_test"][:n]
        with torch.no_grad():
            predicted = model.eval()(torch.from_numpy(x)).argmax(dim=1).numpy()
        return {"accuracy": float(np.mean(predicted == y)), "n": int(len(y))}


_BUILTIN = {"classification": Classification}
# Tasks that live with their workload, imported only when a model needs them.
_MODULES = {"power_control": "tinylr.rrm.task"}


def get(name: str) -> Task:
    if name in _BUILTIN:
        return _BUILTIN[name]()
    if name in _MODULES:
        return importlib.import_module(_MODULES[name]).TASK
    raise TinylrError(f"unknown task {name!r}; known: {', '.join(sorted({*_BUILTIN, *_MODULES}))}")


def train_request(model: str, seed: int, quick: bool, model_kwargs: dict) -> dict:
    """What a training run was asked for: a later deploy reuses the run when it asks the same."""
    from . import __version__

    return {"model": model, "seed": seed, "quick": quick, "model_kwargs": model_kwargs, "tinylr": __version__}


def reusable(folder: Path, request: dict) -> bool:
    path = folder / "deploy_train_request.json"
    needed = ("checkpoint.pt", "dataset.npz", "train.json")
    return path.is_file() and all((folder / f).is_file() for f in needed) and fsutil.read_json(path) == request
