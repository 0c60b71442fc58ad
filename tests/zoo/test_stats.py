"""tinylr.zoo.stats: parameters and MACs as the deployed int8 model has them."""

import torch
from torch import nn

from tinylr.layers import LowRankLinear
from tinylr.zoo.stats import count


def test_conv_with_batch_norm_counts_folded_bias_and_macs():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    stats = count(model, (3, 10, 12))
    # conv: 8*3*3*3 weights + 8 biases folded from the batch norm; linear 8*4 + 4
    assert stats.params == 216 + 8 + 36
    # conv: 8*10*12 outputs x 27 MACs; linear 4 x 8
    assert stats.macs == 960 * 27 + 32
    assert stats.torch_params == 216 + 16 + 36   # batch norm scale and shift as torch holds them
    assert [layer["kind"] for layer in stats.layers] == ["Conv2d", "Linear"]


def test_grouped_conv_and_stride():
    model = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
    stats = count(model, (16, 8, 8))
    assert stats.macs == 16 * 4 * 4 * 9
    assert stats.params == 16 * 9 + 16


def test_batch_norm_that_follows_no_layer_is_counted():
    model = nn.Sequential(nn.BatchNorm1d(5), nn.Linear(5, 2, bias=False))
    stats = count(model, (5,))
    assert stats.params == 2 * 5 + 10
    assert stats.macs == 10


def test_batch_norm_after_an_activation_is_not_folded():
    model = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.BatchNorm1d(6))
    assert count(model, (4,)).params == 24 + 12


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(6, 6)

    def forward(self, x):
        return self.layer(torch.relu(self.layer(x)))


def test_a_reused_layer_costs_macs_twice_and_params_once():
    stats = count(Twice(), (6,))
    assert stats.macs == 72 and stats.params == 42


def test_factored_linear_counts_both_factors_without_a_bias_on_v():
    stats = count(LowRankLinear(64, 128, 8), (64,))
    assert stats.params == 8 * 64 + 128 * 8 + 128
    assert stats.macs == 8 * 64 + 128 * 8


def test_counting_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    model.train()
    before = model[1].running_mean.clone()
    count(model, (3,))
    assert model.training and torch.equal(model[1].running_mean, before)
    assert not model[0]._forward_hooks and not model[1]._forward_hooks
