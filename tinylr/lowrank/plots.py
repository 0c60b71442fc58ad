"""Matplotlib figures for rank analysis and the low-rank benchmark (PNG files, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fsutil import atomic_path

_MARKERS = (("numerical_rank", "numerical rank (1e-3)", ":"), ("energy_rank_90", "energy 0.9", "--"),
            ("energy_rank_99", "energy 0.99", "-."), ("effective_rank", "effective rank", (0, (1, 3))))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on CI or a headless box
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    _pyplot().close(fig)
    return Path(path)


def plot_layer(entry: dict, path: Path, other: dict | None = None, labels: tuple[str, str] = ("model", "compare")) -> Path:
    """Spectrum with rank markers (left); singular value distribution, dense vs factored (right).

    The right panel compares the weight's spectrum with: the other model's layer
    (when given), else the layer's own factors (factored layers), else what
    factorize_ at energy 0.99 would keep (dense layers).
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    s = np.asarray(entry["singular_values"])
    left.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-12), ".-", label=_name(labels[0], entry))
    if other is not None:
        o = np.asarray(other["singular_values"])
        left.semilogy(np.arange(1, len(o) + 1), np.maximum(o, 1e-12), ".-", label=_name(labels[1], other))
    for key, text, style in _MARKERS:
        value = entry["metrics"][key]
        left.axvline(value, color="gray", linestyle=style, linewidth=1, label=f"{text}: {value:.3g}")
    left.set(xlabel="index i", ylabel="σᵢ", title=f"{entry['name'] or 'model'}: {entry['kind']} "
             f"{entry['matrix_shape'][0]}×{entry['matrix_shape'][1]}" + (f" ×{entry['groups']} groups" if entry["groups"] > 1 else ""))
    left.legend(fontsize=7)

    if other is not None:
        series = {_name(labels[0], entry): s, _name(labels[1], other): np.asarray(other["singular_values"])}
    elif entry.get("factors"):
        series = {"W = product": s}
        series.update({f"factor {k}": np.asarray(f["singular_values"]) for k, f in entry["factors"].items()})
    else:
        r = entry["metrics"]["energy_rank_99"]
        series = {"dense W": s, f"factored at energy 0.99 (rank {r})": s[:r]}
    # a factored product's trailing σ are float rounding (~1e-7 σ₁), not part of its distribution
    series = {k: v[v > 1e-6 * s[0]] for k, v in series.items()}
    values = np.concatenate(list(series.values()))
    bins = np.geomspace(values.min(), values.max() * 1.0001, 30) if len(values) and values.max() > values.min() else 10
    for label, v in series.items():
        right.hist(v, bins=bins, histtype="step", linewidth=1.5, label=label)
    if isinstance(bins, np.ndarray):
        from matplotlib.ticker import NullFormatter

        right.set_xscale("log")
        right.xaxis.set_minor_formatter(NullFormatter())  # minor labels on a log axis pile up
    right.set(xlabel="singular value", ylabel="count", title="singular value distribution")
    right.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _name(label: str, entry: dict) -> str:
    return label if entry["form"] in label else f"{label} ({entry['form']})"


def plot_rank_curves(runs: dict[str, list[dict]], path: Path, layer: str, x_key: str = "step") -> Path:
    """Numerical, effective and energy rank of `layer` over training, one line per run (RankLogger histories)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for label, history in runs.items():
        x = [h[x_key] for h in history]
        for ax, key in zip(axes, ("numerical_rank", "effective_rank", "energy_rank_99")):
            ax.plot(x, [h["layers"][layer][key] for h in history], label=label)
    for ax, title in zip(axes, ("numerical rank, tol 1e-3 of W/‖W‖_F", "effective rank", "energy-0.99 rank")):
        ax.set(xlabel=x_key, ylabel="rank", title=f"{layer}: {title}")
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


def plot_tradeoff(rows: list[dict], path: Path) -> Path:
    """int8 accuracy against int8 model bytes, one marker per method (named in the legend)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    markers = "os^vD<>pPX*h"
    for i, row in enumerate(rows):
        ax.scatter(row["int8_bytes"], 100 * row["int8_accuracy"], s=45, marker=markers[i % len(markers)],
                   label=f"{row['method']}: {row['params']:,} params")
    ax.set(xlabel="int8 .tflite bytes", ylabel="int8 test accuracy (%)", title="digits_mlp: size vs accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # points overlap: names go aside
    fig.tight_layout()
    return _save(fig, path)
