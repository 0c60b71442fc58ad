"""Each rank rule on spectra built so that the right answer is known by hand."""

import math

import pytest
import torch

from tinylr.lowrank.rules import (
    EffectiveRankRule,
    EnergyRule,
    FixedRankRule,
    OptimalHardThresholdRule,
    ParamBudget,
    RelativeCutoffRule,
    allocate_budget,
    effective_rank,
    gavish_donoho_omega,
)


def s(*values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("tau, want", [(0.5, 1), (0.64, 1), (0.65, 2), (0.9, 3), (0.99, 4), (1.0, 4)])
def test_energy_rule(tau, want):
    # energies 64, 16, 16, 4 out of 100: cumulative shares 0.64, 0.80, 0.96, 1.00
    assert EnergyRule(tau).select(s(8, 4, 4, 2)) == want


def test_energy_rule_on_exact_low_rank_spectrum():
    assert EnergyRule(0.99).select(s(3, 2, 1, 0, 0, 0)) == 3
    assert EnergyRule(1.0).select(s(3, 2, 1, 0, 0, 0)) == 3  # exactly all the energy: no zero σ needed


@pytest.mark.parametrize("beta, want", [(0.1, 4), (0.2, 3), (0.25, 3), (0.3, 2), (0.5, 2), (0.51, 1)])
def test_relative_cutoff(beta, want):
    assert RelativeCutoffRule(beta).select(s(10, 5, 2.5, 1, 0.5)) == want


def test_effective_rank_of_flat_and_geometric_spectra():
    # k equal singular values: entropy ln k, erank exactly k, and the rule must not round k up to k + 1
    for k in (1, 3, 7, 64):
        spectrum = torch.cat([torch.ones(k), torch.zeros(5)]).double()
        assert effective_rank(spectrum) == pytest.approx(k)
        assert EffectiveRankRule().select(spectrum) == k
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, erank = 2^1.5 = 2.83 -> 3
    assert effective_rank(s(2, 1, 1)) == pytest.approx(2 ** 1.5)
    assert EffectiveRankRule().select(s(2, 1, 1)) == 3


def test_gavish_donoho_omega_matches_the_paper():
    # Gavish & Donoho (2014), table for unknown noise: ω(1) ≈ 2.858
    assert gavish_donoho_omega(1.0) == pytest.approx(0.56 - 0.95 + 1.82 + 1.43)
    assert gavish_donoho_omega(1.0) == pytest.approx(2.86, abs=0.01)
    assert gavish_donoho_omega(0.5) == pytest.approx(0.56 / 8 - 0.95 / 4 + 0.91 + 1.43)


def test_optimal_hard_threshold_on_constructed_spectrum():
    # square (β = 1, ω = 2.86); median of 9 values is the fifth, 1.0: threshold 2.86
    spectrum = s(50, 20, 2.9, 2.8, 1.0, 1.0, 0.9, 0.8, 0.7)
    assert OptimalHardThresholdRule().select(spectrum, (9, 9)) == 3
    # a tall 9x36 matrix (β = 1/4): ω ≈ 1.82; 2.8 and 2.9 now count as signal, 1.0 does not
    assert OptimalHardThresholdRule().select(spectrum, (9, 36)) == 4


def test_optimal_hard_threshold_recovers_planted_rank():
    torch.manual_seed(0)
    m, n, rank = 100, 200, 5
    signal = torch.randn(m, rank) @ torch.randn(rank, n)
    noisy = signal + 0.05 * torch.randn(m, n)
    values = torch.linalg.svdvals(noisy.double())
    assert OptimalHardThresholdRule().select(values, (m, n)) == rank


def test_fixed_rank_is_capped_at_full_rank():
    assert FixedRankRule(3).select(s(5, 4, 3, 2)) == 3
    assert FixedRankRule(10).select(s(5, 4, 3, 2)) == 4


@pytest.mark.parametrize("bad", [lambda: EnergyRule(0), lambda: EnergyRule(1.5), lambda: RelativeCutoffRule(0),
                                 lambda: FixedRankRule(0), lambda: ParamBudget(), lambda: ParamBudget(params=5, bytes=5),
                                 lambda: ParamBudget(params=0)])
def test_bad_rule_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        bad()


def test_rules_reject_unsorted_spectra():
    with pytest.raises(ValueError, match="descending"):
        EnergyRule().select(s(1, 2, 3))


def test_zero_matrix_gets_rank_one():
    zeros = torch.zeros(4, dtype=torch.float64)
    assert EnergyRule().select(zeros) == 1 and EffectiveRankRule().select(zeros) == 1


def test_budget_goes_to_the_largest_singular_values():
    a, b = s(10, 9, 1, 0.5), s(8, 7, 6, 5)
    # every rank costs 1: start at 1 + 1, then take 9, 7, 6 (the three largest left) -> ranks 2 and 3
    assert allocate_budget([a, b], [1, 1], [4, 4], budget=5) == [2, 3]
    # b's ranks cost 3: rank 1 each costs 4; 9 (a) -> 5 spent; 7 (b) would make 8 > 7, so b stops;
    # a's 1 and 0.5 still fit -> a gets everything
    assert allocate_budget([a, b], [1, 3], [4, 4], budget=7) == [4, 1]
    # one more unit and b's 7 fits (8 spent), after which nothing does
    assert allocate_budget([a, b], [1, 3], [4, 4], budget=8) == [2, 2]
    # caps hold whatever the budget
    assert allocate_budget([a, b], [1, 1], [2, 2], budget=100) == [2, 2]


def test_budget_too_small_for_rank_one():
    with pytest.raises(ValueError, match="over the budget"):
        allocate_budget([s(1, 1)], [10], [2], budget=9)


def test_effective_rank_is_between_one_and_length():
    torch.manual_seed(1)
    values = torch.rand(20).double().sort(descending=True).values
    assert 1 <= effective_rank(values) <= 20
    assert math.isclose(effective_rank(s(1, 0, 0)), 1.0)
