"""`digits_mlp`: an MLP with one factored hidden layer on scikit-learn's 8x8 digits.

64 pixels -> LowRankLinear(64, hidden, rank) -> ReLU -> Linear(hidden, 10) logits.
rank=0 builds the dense baseline (an nn.Linear hidden layer) for comparisons.
After export this is three FULLY_CONNECTED ops (the first without bias, the second
with a fused ReLU), which makes it the smallest model that exercises the whole
factored pipeline. The data set ships with scikit-learn, so it works offline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers import LowRankLinear
from . import Split, ZooEntry, register

N_PIXELS = 64
N_CLASSES = 10
# The split is fixed, independent of the training seed, so runs with different
# seeds are scored on the same held-out digits.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int = 128, rank: int = 8) -> None:
        super().__init__()
        self.hidden = LowRankLinear(N_PIXELS, hidden, rank) if rank else nn.Linear(N_PIXELS, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)))


def build(*, hidden: int = 128, rank: int = 8) -> DigitsMLP:
    return DigitsMLP(hidden=hidden, rank=rank)


def load_data() -> Split:
    """80/20 stratified split; pixels (integers 0..16) scaled to [0, 1].

    A fixed scale rather than per-feature standardization: border pixels are
    almost always 0, and dividing by their tiny spread would blow up the input
    range that int8 quantization has to cover.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return Split(x_train, y_train, x_test, y_test)


ENTRY = register(ZooEntry(
    name="digits_mlp",
    build=build,
    load_data=load_data,
    input_shape=(N_PIXELS,),
    description="8x8 digits, 64 -> LowRankLinear(64, hidden, rank) -> ReLU -> Linear(hidden, 10)",
))
