"""Rank analysis: how low-rank each weight of a model is, by several measures.

Per layer, from the singular values σ of its weight W (a conv's reshaped to
(out, in·kh·kw); a grouped conv's spectrum is the union of its groups', the
spectrum of the block-diagonal matrix it applies):
- numerical rank: #{σᵢ/‖W‖_F > tol}, tol 1e-3 (Galanti & Poggio's measure);
- stable rank ‖W‖²_F/σ₁²; effective rank exp(−Σ pᵢ ln pᵢ), pᵢ = σᵢ/Σσ;
- energy-rule ranks at τ = 0.9 and 0.99.
Factored layers are measured on the product they apply, and their factors too.
`RankLogger` records the same numbers during training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers import FACTORED_LAYERS
from .matrices import FACTORABLE, factor_stacks, weight_stack
from .nola import NOLALinear
from .oialr import SVDLayer
from .rules import EnergyRule, effective_rank

TOLERANCE = 1e-3


@dataclass
class LayerWeights:
    name: str
    kind: str                    # "linear" or "conv2d"
    form: str                    # "dense", "factored", "oialr" (U·Σ·Vᵀ) or "nola"
    weight: torch.Tensor         # (g, m, n)
    factors: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> (g, m, n)


def singular_values(stack: torch.Tensor) -> torch.Tensor:
    """All singular values of the block-diagonal matrix the (g, m, n) stack stands for, descending."""
    return torch.linalg.svdvals(stack.detach().double()).flatten().sort(descending=True).values


def spectrum_metrics(s: torch.Tensor, tolerance: float = TOLERANCE) -> dict:
    s = torch.as_tensor(s, dtype=torch.float64)
    frob = float(s.pow(2).sum().sqrt())
    top = float(s[0])
    return {
        "full_rank": len(s),
        "numerical_rank": int((s > tolerance * frob).sum()) if frob > 0 else 0,
        "stable_rank": frob**2 / top**2 if top > 0 else 0.0,
        "effective_rank": effective_rank(s),
        "energy_rank_90": EnergyRule(0.9).select(s),
        "energy_rank_99": EnergyRule(0.99).select(s),
        "sigma_max": top,
        "frobenius_norm": frob,
    }


def module_layers(model: nn.Module) -> list[LayerWeights]:
    """Every Linear/Conv2d-like layer of a live model, factored forms included, in registration order."""
    out, inside = [], ()
    for name, m in model.named_modules():
        if inside and name.startswith(inside):
            continue  # the U and V sub-layers of a factored layer are measured with it
        kind = "conv2d" if isinstance(m, nn.Conv2d) or getattr(m, "kernel_size", None) else "linear"
        if isinstance(m, FACTORED_LAYERS):
            u, v = factor_stacks(m)
            out.append(LayerWeights(name, kind, "factored", weight_stack(m), {"U": u.detach(), "V": v.detach()}))
            inside = name + "."
        elif isinstance(m, SVDLayer):
            mix = (m.u @ m.sigma).detach()
            kind = "conv2d" if isinstance(m.source, nn.Conv2d) else "linear"
            out.append(LayerWeights(name, kind, "oialr", (mix @ m.vt)[None], {"U·Σ": mix[None], "Vᵀ": m.vt[None]}))
        elif isinstance(m, NOLALinear):
            u, v = m.u_matrix().detach(), m.v_matrix().detach()
            out.append(LayerWeights(name, "linear", "nola", (u @ v)[None], {"U": u[None], "V": v[None]}))
        elif isinstance(m, FACTORABLE):
            out.append(LayerWeights(name, kind, "dense", weight_stack(m)))
    return out


def state_dict_layers(state: dict[str, torch.Tensor]) -> list[LayerWeights]:
    """The same, from a bare state_dict (no model class needed).

    Recognizes factored layers by their `U.weight`/`V.weight` pair and OIALR
    layers by `u`/`sigma`/`vt`. A grouped dense conv cannot be told from the
    state_dict alone and is measured as one (out, in/g·kh·kw) matrix.
    """
    out, used = [], set()
    for key in state:
        prefix = _prefix(key, "V.weight")
        if prefix is not None and prefix + "U.weight" in state:
            u, v = state[prefix + "U.weight"], state[key]
            g = v.shape[0] // u.shape[1]
            us, vs = u.reshape(g, -1, u.shape[1]), v.reshape(g, v.shape[0] // g, -1)
            out.append(LayerWeights(prefix.rstrip("."), "conv2d" if v.ndim == 4 else "linear", "factored",
                                    us @ vs, {"U": us, "V": vs}))
            used |= {key, prefix + "U.weight"}
        prefix = _prefix(key, "sigma")
        if prefix is not None and prefix + "u" in state and prefix + "vt" in state:
            mix, vt = state[prefix + "u"] @ state[key], state[prefix + "vt"]
            out.append(LayerWeights(prefix.rstrip("."), "linear", "oialr", (mix @ vt)[None],
                                    {"U·Σ": mix[None], "Vᵀ": vt[None]}))
    for key, t in state.items():
        prefix = _prefix(key, "weight")
        if prefix is not None and key not in used and torch.is_tensor(t) and t.ndim in (2, 4) and t.is_floating_point():
            out.append(LayerWeights(prefix.rstrip("."), "conv2d" if t.ndim == 4 else "linear", "dense",
                                    t.reshape(1, t.shape[0], -1)))
    order = list(state)

    def first_key(layer: LayerWeights) -> int:
        head = layer.name + "." if layer.name else ""
        return min(i for i, k in enumerate(order) if k.startswith(head))

    return sorted(out, key=first_key)


def _prefix(key: str, suffix: str) -> str | None:
    """'a.b.V.weight' -> 'a.b.' for suffix 'V.weight' (whole name components only)."""
    if key == suffix:
        return ""
    return key[: -len(suffix)] if key.endswith("." + suffix) else None


def analyze_layers(layers: list[LayerWeights], tolerance: float = TOLERANCE) -> list[dict]:
    report = []
    for layer in layers:
        s = singular_values(layer.weight)
        g, m, n = layer.weight.shape
        entry = {"name": layer.name, "kind": layer.kind, "form": layer.form, "groups": g, "matrix_shape": [m, n],
                 "metrics": spectrum_metrics(s, tolerance), "singular_values": s.tolist()}
        if layer.factors:
            entry["factors"] = {label: {"shape": list(f.shape[1:]), "singular_values": singular_values(f).tolist()}
                                for label, f in layer.factors.items()}
        report.append(entry)
    return report


def analyze_model(model: nn.Module, tolerance: float = TOLERANCE) -> list[dict]:
    return analyze_layers(module_layers(model), tolerance)


def analyze_state_dict(state: dict, tolerance: float = TOLERANCE) -> list[dict]:
    return analyze_layers(state_dict_layers(state), tolerance)


def file_stem(name: str) -> str:
    """A layer name as a file name: 'blocks.0.conv' -> 'blocks.0.conv', anything odd -> '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


class RankLogger:
    """A training hook: every `every` steps, record each layer's rank metrics.

    `logger(step)` fits `tinylr.lowrank.fit.fit(hooks=[...])` or any loop.
    `history` is a list of {"step", "layers": {name: metrics}} (no spectra, to stay small).
    """

    def __init__(self, model: nn.Module, every: int = 100, tolerance: float = TOLERANCE):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.every, self.tolerance = model, every, tolerance
        self.history: list[dict] = []

    def __call__(self, step: int) -> None:
        if step % self.every == 0:
            self.record(step)

    @torch.no_grad()
    def record(self, step: int) -> None:
        layers = {layer.name: spectrum_metrics(singular_values(layer.weight), self.tolerance)
                  for layer in module_layers(self.model)}
        self.history.append({"step": step, "layers": layers})
