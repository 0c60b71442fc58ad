"""Plots for docs/rrm.md: accuracy vs size, and the singular values of the trained weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fsutil import atomic_path

__all__ = ["tradeoff", "spectra", "spectrum_stats"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def tradeoff(rows: list[dict], path: str | Path) -> None:
    """Normalized WSR (float and int8) against parameters, one marker per row."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    dense = [r for r in rows if r["model"] == "mpgnn"]
    low = [r for r in rows if r["model"] != "mpgnn"]
    for group, marker, name in ((dense, "s", "MPGNN"), (low, "o", "LR-MPGNN")):
        if not group:
            continue
        x = [r["params"] for r in group]
        ax.scatter(x, [r["normalized_wsr_float"] for r in group], marker=marker, label=f"{name} float")
        if all(r.get("normalized_wsr_int8") is not None for r in group):
            ax.scatter(x, [r["normalized_wsr_int8"] for r in group], marker=marker, facecolors="none",
                       edgecolors="k", label=f"{name} int8 (TFLM)")
    for r in rows:
        ax.annotate(r["label"].replace("LR-MPGNN ", "").replace("MPGNN ", ""), (r["params"], r["normalized_wsr_float"]),
                    fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("normalized WSR (WMMSE = 1)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def spectra(checkpoints: dict[str, Path], path: str | Path) -> dict[str, dict[str, dict]]:
    """Singular values of each layer's weight, one column per layer: sigma_i / sigma_1 above, sigma_i below.

    Returns {model label: {layer: spectrum_stats}} for the plotted layers.
    """
    from ..train import load_checkpoint
    from .evaluate import _register_zoo
    from .factorize import spectra as layer_spectra

    _register_zoo()
    plt = _pyplot()
    per_model = {label: layer_spectra(load_checkpoint(ckpt)[0]) for label, ckpt in checkpoints.items()}
    layers = [name for name, s in next(iter(per_model.values())).items() if len(s) > 1]  # not the 1-wide output
    fig, axes = plt.subplots(2, len(layers), figsize=(3.6 * len(layers), 6.4), squeeze=False)
    for col, layer in enumerate(layers):
        for label, spec in per_model.items():
            s = spec[layer].numpy()
            s = s[s > s[0] * 1e-6]  # exact zeros of a rank-r product are not plotted on the log axis
            i = np.arange(1, len(s) + 1)
            axes[0][col].plot(i, s / s[0], marker=".", ms=3, label=label)
            axes[1][col].plot(i, s, marker=".", ms=3, label=label)
        axes[0][col].set_title(f"layer {layer}", fontsize=9)
        for ax in axes[:, col]:
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[1][col].set_xlabel("index i")
    axes[0][0].set_ylabel("sigma_i / sigma_1")
    axes[1][0].set_ylabel("sigma_i")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    return {label: {layer: spectrum_stats(spec[layer].numpy()) for layer in layers} for label, spec in per_model.items()}


def spectrum_stats(s: np.ndarray) -> dict:
    """Summary numbers of one spectrum (largest first): sigma_2 / sigma_1, the energy share of the
    top two, stable rank ||W||_F^2 / ||W||_2^2, and the entropy effective rank of Roy & Vetterli."""
    s = np.asarray(s, dtype=np.float64)
    s = s[s > s[0] * 1e-7]
    energy = s ** 2 / np.sum(s ** 2)
    q = s / s.sum()
    return {"sigma2_over_sigma1": float(s[1] / s[0]) if len(s) > 1 else 0.0,
            "energy_top2": float(energy[:2].sum()),
            "stable_rank": float(np.sum(s ** 2) / s[0] ** 2),
            "effective_rank": float(np.exp(-np.sum(q * np.log(q))))}


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
