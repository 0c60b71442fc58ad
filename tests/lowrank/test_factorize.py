"""factorize_: truncated SVD into factored layers, in place, with rank rules and a budget."""

import pytest
import torch
from torch import nn

from tinylr.errors import TinylrError
from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.lowrank import EnergyRule, FactorizeConfig, FixedRankRule, ParamBudget, RelativeCutoffRule, factorize_

FULL = FactorizeConfig(rule=FixedRankRule(10_000), only_if_smaller=False)


class ConvNet(nn.Module):
    """Stride, padding, dilation, groups, rectangular kernels, no bias: the cases factorize_ supports."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, 12, (3, 1), padding=(1, 0), groups=2, bias=False)
        self.c = nn.Conv2d(12, 16, 3, dilation=2, padding=2)
        self.d = nn.Conv2d(16, 16, 3, padding="same")
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.a(x))
        x = torch.relu(self.b(x))
        x = torch.relu(self.c(x))
        x = self.d(x)
        return self.head(x.mean((2, 3)))


def test_full_rank_reproduces_a_dense_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5, bias=False))
    x = torch.randn(16, 20)
    want = model(x)
    decisions = factorize_(model, FULL)
    assert [type(m) for m in model] == [LowRankLinear, nn.ReLU, LowRankLinear]
    assert [d.rank for d in decisions] == [20, 5]
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)


def test_full_rank_reproduces_a_conv_net():
    torch.manual_seed(0)
    model = ConvNet()
    x = torch.randn(4, 3, 15, 13)
    want = model(x)
    decisions = factorize_(model, FULL)
    assert all(isinstance(getattr(model, n), LowRankConv2d) for n in "abcd")
    assert model.b.groups == 2 and model.b.rank == 12  # per group: min(6, 4·3) = 6
    assert [d.rank for d in decisions] == [8, 12, 16, 16, 5]  # min(m, n) each
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)


def test_low_rank_factors_are_the_truncated_svd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30))
    w = model[0].weight.detach().clone()
    factorize_(model, FactorizeConfig(rule=FixedRankRule(4)))
    u, s, vh = torch.linalg.svd(w.double())
    best = (u[:, :4] * s[:4]) @ vh[:4]
    torch.testing.assert_close(model[0].dense_weight().double(), best, atol=1e-5, rtol=1e-5)
    # √S on each side: both factors have the same singular values
    torch.testing.assert_close(torch.linalg.svdvals(model[0].U.weight), torch.linalg.svdvals(model[0].V.weight))


def test_layers_stay_dense_unless_the_factors_are_smaller():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128))
    decisions = factorize_(model, FactorizeConfig(rule=FixedRankRule(43)))  # 43·192 ≥ 8192; 43·256 < 16384
    assert isinstance(model[0], nn.Linear) and isinstance(model[2], LowRankLinear)
    assert not decisions[0].factored and "kept dense" in decisions[0].reason
    assert decisions[0].params_after == decisions[0].params_before
    assert decisions[1].factored and decisions[1].params_after == 43 * 256 + 128


def test_energy_rule_picks_the_planted_rank():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(50, 40))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(40, 3) @ torch.randn(3, 50))
    (decision,) = factorize_(model, FactorizeConfig(rule=EnergyRule(0.999)))
    assert decision.rank == 3 and decision.energy_kept == pytest.approx(1.0)


def test_per_layer_rules_and_filter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    cfg = FactorizeConfig(rule=FixedRankRule(8), layer_rules={"2": FixedRankRule(4)})
    decisions = factorize_(model, cfg, filter_fn=lambda module, name: name != "4")
    assert [d.name for d in decisions] == ["0", "2"]
    assert model[0].rank == 8 and model[2].rank == 4 and isinstance(model[4], nn.Linear)


def test_unknown_layer_names_are_an_error():
    with pytest.raises(TinylrError, match="hiden"):
        factorize_(nn.Sequential(nn.Linear(4, 4)), FactorizeConfig(layer_rules={"hiden": FixedRankRule(1)}))


def test_factored_layers_are_not_factored_again():
    model = nn.Sequential(LowRankLinear(64, 64, 8), nn.Linear(64, 64))
    decisions = factorize_(model, FactorizeConfig(rule=RelativeCutoffRule(0.5)))
    assert [d.name for d in decisions] == ["1"]
    assert model[0].rank == 8


def test_parameter_budget_for_the_whole_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():  # layer 0's singular values 10x larger: it should get the rank
        model[0].weight.mul_(10)
    budget = 5000
    decisions = factorize_(model, FactorizeConfig(rule=ParamBudget(params=budget)))
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(d.params_after for d in decisions) <= budget
    first, second, last = decisions
    assert all(d.factored for d in decisions) and first.rank > 3 * second.rank
    # greedy to the end: no layer below its cap could still afford one more rank
    left = budget - total
    for d in decisions:
        m, n = d.matrix_shape
        assert d.rank == (m * n - 1) // (m + n) or m + n > left


def test_budget_in_bytes_counts_int32_biases_and_channel_overhead():
    # rank 1: 192 int8 weights + 128 int32 biases + 16 bytes for the channel between V and U = 720
    model = nn.Sequential(nn.Linear(64, 128))
    factorize_(model, FactorizeConfig(rule=ParamBudget(bytes=720 + 207)))
    assert model[0].rank == 1  # one more rank needs 192 + 16 = 208
    model = nn.Sequential(nn.Linear(64, 128))
    factorize_(model, FactorizeConfig(rule=ParamBudget(bytes=720 + 208)))
    assert model[0].rank == 2
    with pytest.raises(TinylrError, match="at least 720"):
        factorize_(nn.Sequential(nn.Linear(64, 128)), FactorizeConfig(rule=ParamBudget(bytes=719)))


def test_config_rejects_a_budget_per_layer():
    with pytest.raises(ValueError, match="whole model"):
        FactorizeConfig(layer_rules={"x": ParamBudget(params=10)})
