"""`factorize_`: replace a trained model's Linear/Conv2d layers by factored ones, in place.

Each chosen layer's weight W (a conv's reshaped to (out, in·kh·kw) per group) is
split by its truncated SVD into U_r·diag(√S_r) and diag(√S_r)·V_rᵀ, at the rank a
rule picks. A layer stays dense when the factors would not be smaller
(r·(m+n) ≥ m·n); the returned decisions say so, layer by layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from torch import nn

from ..errors import TinylrError
from .matrices import (
    FilterFn,
    candidates,
    factored_like,
    load_factors_,
    max_worthwhile_rank,
    spectrum,
    svd_factors,
    weight_stack,
    worthwhile,
)
from .rules import EnergyRule, ParamBudget, RankRule, allocate_budget


@dataclass(frozen=True)
class FactorizeConfig:
    """How `factorize_` picks ranks.

    rule: a per-layer rule (EnergyRule, RelativeCutoffRule, EffectiveRankRule,
        OptimalHardThresholdRule, FixedRankRule) or a ParamBudget for the model.
    layer_rules: per-layer overrides by module name (as in `model.named_modules()`).
    only_if_smaller: keep a layer dense when its factors would not hold fewer
        weights (r·(m+n) ≥ m·n). False factors every layer at the chosen rank,
        e.g. to check that full rank reproduces the dense model.
    """

    rule: RankRule | ParamBudget = EnergyRule(0.99)
    layer_rules: Mapping[str, RankRule] = field(default_factory=dict)
    only_if_smaller: bool = True

    def __post_init__(self):
        if any(isinstance(r, ParamBudget) for r in self.layer_rules.values()):
            raise ValueError("a ParamBudget is for the whole model: give it as `rule`, not in `layer_rules`")


@dataclass(frozen=True)
class LayerDecision:
    """What factorize_ did with one layer. Ranks count all groups (per-group rank × groups)."""

    name: str
    kind: str                      # "linear" or "conv2d"
    matrix_shape: tuple[int, int]  # one group's (m, n)
    groups: int
    full_rank: int
    rank: int
    factored: bool
    energy_kept: float             # Σ_{i≤r} σᵢ² / Σ σᵢ²
    params_before: int
    params_after: int
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def factorize_(model: nn.Module, config: FactorizeConfig | None = None,
               filter_fn: FilterFn | None = None) -> list[LayerDecision]:
    """Factor every Linear/Conv2d of `model` that `filter_fn(module, name)` accepts (all by default).

    `config` defaults to FactorizeConfig() (energy rule, τ = 0.99). Returns one
    LayerDecision per layer considered, in registration order.
    """
    config = config or FactorizeConfig()
    layers = list(candidates(model, filter_fn))
    unknown = set(config.layer_rules) - {name for name, _ in layers}
    if unknown:
        raise TinylrError(f"layer_rules name layers that are not factorable Linear/Conv2d layers of the model: "
                          f"{', '.join(sorted(unknown))}; use names from model.named_modules()")
    stacks = {name: weight_stack(module) for name, module in layers}
    spectra = {name: spectrum(w) for name, w in stacks.items()}
    ranks = {}
    for name, _ in layers:
        rule = config.layer_rules.get(name, config.rule)
        if not isinstance(rule, ParamBudget):
            ranks[name] = rule.select(spectra[name], tuple(stacks[name].shape[1:]))
    if isinstance(config.rule, ParamBudget):
        ranks.update(_budget_ranks(model, config.rule, {n: stacks[n] for n, _ in layers if n not in ranks},
                                   spectra, ranks, stacks))

    decisions = []
    for name, module in layers:
        g, m, n = stacks[name].shape
        r = ranks[name]
        s2 = spectra[name].pow(2)
        energy = float(s2[:r].sum() / s2.sum()) if s2.sum() > 0 else 1.0
        before = sum(p.numel() for p in module.parameters())
        bias = before - module.weight.numel()
        keep = worthwhile(r, m, n) or not config.only_if_smaller
        per_group = f" per group (x{g})" if g > 1 else ""
        if keep:
            layer = factored_like(module, r)
            load_factors_(layer, *svd_factors(stacks[name], r))
            model.set_submodule(name, layer)
            reason = f"rank {r} of {min(m, n)}{per_group}: {r}·({m}+{n}) {'<' if worthwhile(r, m, n) else '≥'} {m}·{n}"
        else:
            reason = f"kept dense: rank {r}{per_group} needs {r}·({m}+{n}) ≥ {m}·{n} weights"
        decisions.append(LayerDecision(
            name=name, kind="linear" if isinstance(module, nn.Linear) else "conv2d", matrix_shape=(m, n),
            groups=g, full_rank=g * min(m, n), rank=g * r, factored=keep, energy_kept=energy,
            params_before=before, params_after=g * r * (m + n) + bias if keep else before, reason=reason))
    return decisions


def _budget_ranks(model, budget: ParamBudget, budget_stacks: dict, spectra: dict, fixed_ranks: dict,
                  stacks: dict) -> dict[str, int]:
    """Per-group ranks for the layers under the budget; everything else is a fixed cost."""
    layer_weights = {f"{name}.weight": name for name in stacks}
    fixed = 0
    for pname, p in model.named_parameters():
        layer = layer_weights.get(pname)
        if layer is None:
            fixed += budget.param_cost(pname) * p.numel()
        elif layer in fixed_ranks:  # an explicit rule: its weights at the rank that rule chose
            g, m, n = stacks[layer].shape
            r = fixed_ranks[layer]
            fixed += r * budget.rank_cost(m, n, g) if worthwhile(r, m, n) else p.numel() * budget.param_cost(pname)
    names, unit_costs, caps = [], [], []
    for name, w in budget_stacks.items():
        g, m, n = w.shape
        cap = max_worthwhile_rank(m, n)
        if cap == 0:  # not even rank 1 pays off: stays dense, its weights are fixed cost
            fixed += w.numel() * budget.param_cost(f"{name}.weight")
            continue
        names.append(name)
        unit_costs.append(budget.rank_cost(m, n, g))
        caps.append(cap)
    unit = "parameters" if budget.params is not None else "bytes"
    try:
        chosen = allocate_budget([spectra[n] for n in names], unit_costs, caps, budget.total - fixed)
    except ValueError:
        raise TinylrError(f"a budget of {budget.total} {unit} is too small: the layers left out of the budget "
                          f"take {fixed} and rank 1 in each budgeted layer {sum(unit_costs)} more; raise it to "
                          f"at least {fixed + sum(unit_costs)}") from None
    ranks = dict(zip(names, chosen))
    for name in budget_stacks:
        ranks.setdefault(name, min(budget_stacks[name].shape[1:]))  # dense ones: full rank
    return ranks
