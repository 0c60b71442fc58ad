"""Model zoo: a registry of named models, each with its builder and its data set.

A zoo name plus keyword arguments is all a checkpoint needs to rebuild its model,
so `tinylr export` can turn any `checkpoint.pt` written by `tinylr train` back
into the exact torch module it was trained as. Adding a model means writing one
module here that calls `register()`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import TinylrError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Split", "ZooEntry", "register", "get", "names", "read_dataset"]


class Split(NamedTuple):
    """A train/test split: float32 features, int64 labels, one sample per row."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class ZooEntry:
    name: str
    build: Callable[..., nn.Module]    # keyword arguments only, all with defaults
    load_data: Callable[[], Split]     # deterministic: the same split on every call
    input_shape: tuple[int, ...]       # one sample, without the batch dimension
    description: str
    # what the model is for: names a `tinylr.tasks` entry that trains it and scores its
    # outputs (accuracy for a classifier, normalized WSR for power control, ...)
    task: str = "classification"


_REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"zoo model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def get(name: str) -> ZooEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TinylrError(f"unknown model {name!r}; choose one of: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def read_dataset(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load and check arrays of a dataset.npz (as written by `tinylr train`).

    Features (`x_*`) must be finite floats with one sample per row; labels (`y_*`)
    integers, as many as the matching features. Anything else is a TinylrError.
    """
    fix = "give the dataset.npz written by `tinylr train` (arrays x_train, y_train, x_test, y_test)"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                found = ", ".join(npz.files[:6]) + (", ..." if len(npz.files) > 6 else "") or "none"
                raise TinylrError(f"{path}: no array {', '.join(missing)} (found: {found}); {fix}")
            arrays = {k: npz[k] for k in keys}
    except TinylrError:
        raise
    except Exception as exc:  # missing file, not a zip, pickled objects, truncated data
        raise TinylrError(f"{path}: cannot read data ({type(exc).__name__}: {exc}); {fix}") from exc
    for key, arr in arrays.items():
        if key.startswith("x_"):
            if arr.dtype.kind != "f" or arr.ndim < 2 or len(arr) == 0 or not np.all(np.isfinite(arr)):
                raise TinylrError(f"{path}: {key} must be finite floats, one sample per row "
                                  f"(got {arr.dtype} array of shape {arr.shape}); {fix}")
            arrays[key] = arr.astype(np.float32, copy=False)
        elif key.startswith("y_"):
            if arr.dtype.kind not in "iu" or arr.ndim != 1:
                raise TinylrError(f"{path}: {key} must be integer labels, one per sample "
                                  f"(got {arr.dtype} array of shape {arr.shape}); {fix}")
            x = arrays.get("x" + key[1:])
            if x is not None and len(x) != len(arr):
                raise TinylrError(f"{path}: {len(arr)} labels in {key} for {len(x)} samples; {fix}")
            arrays[key] = arr.astype(np.int64, copy=False)
    return arrays


# Registration happens on import; keep this list in sync with the modules above.
from . import ad_autoencoder, digits_mlp, kws_dscnn, resnet8, rrm, vww_mobilenet  # noqa: E402,F401
