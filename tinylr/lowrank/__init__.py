"""Low-rank training library: factored layers, SVD factorization with rank rules,
spectral and function-matching init, OIALR adaptive-rank training, NOLA-style
layers, and rank analysis. Configs are frozen dataclasses, verbs end in `_` when
they change a model in place (torchao style):

    from tinylr.lowrank import factorize_, FactorizeConfig, EnergyRule
    decisions = factorize_(model, FactorizeConfig(rule=EnergyRule(0.99)))

Names are imported on first use: the CLI imports `tinylr.lowrank.commands`, and
that must not pull in torch just to list subcommands.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "..layers": ("LowRankLinear", "LowRankConv2d", "dense_param_count"),
    ".rules": ("EnergyRule", "RelativeCutoffRule", "EffectiveRankRule", "OptimalHardThresholdRule",
               "FixedRankRule", "ParamBudget", "effective_rank", "gavish_donoho_omega"),
    ".factorize": ("FactorizeConfig", "LayerDecision", "factorize_"),
    ".init": ("SpectralInit", "FunctionMatchingInit", "init_lowrank_", "frobenius_penalty"),
    ".oialr": ("OIALRConfig", "OIALR", "SVDLayer"),
    ".nola": ("NOLAConfig", "NOLALinear", "nola_", "materialize_"),
    ".analysis": ("spectrum_metrics", "analyze_model", "analyze_state_dict", "RankLogger"),
    ".deploy": ("export_model",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
