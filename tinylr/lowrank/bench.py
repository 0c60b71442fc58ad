"""The low-rank section of `make bench`: every method on digits, through export and verify.

Rows: the dense MLP; factorize_ of it at energy 0.9 / 0.99 (as is, and 0.9 after a
short fine-tune); rank-8 training from spectral and function-matching init; OIALR
(cutoff 0.1 and 0.2); NOLA. Each model goes through the export stage (onnx2tf,
int8) and TFLM (verify): params, int8 .tflite bytes, float and int8 accuracy are
measured in this run. A second experiment trains the dense MLP with SGD at batch 16
vs 512, with and without weight decay, logging ranks each epoch (RankLogger).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..layers import dense_param_count
from ..verify import verify
from ..zoo import get
from ..zoo.digits_mlp import build
from .analysis import RankLogger, analyze_model
from .deploy import export_model
from .factorize import FactorizeConfig, factorize_
from .fit import accuracy, deterministic, fit
from .init import FunctionMatchingInit, SpectralInit, init_lowrank_
from .nola import NOLAConfig, materialize_, nola_
from .oialr import OIALR, OIALRConfig
from .plots import plot_layer, plot_rank_curves, plot_tradeoff
from .rules import EnergyRule, ParamBudget

IMG_DIR = Path(__file__).resolve().parents[2] / "docs" / "img"
HIDDEN, EPOCHS, BATCH, LR, SEED = 128, 20, 64, 1e-2, 0
BUDGET_BYTES = 4000  # int8 weights + int32 biases; the dense model stores 10,024
# OIALR's paper defaults (delay 1000, every 100) assume long training; digits trains
# for 460 steps, so the schedule is scaled to it.
OIALR_SCHEDULE = {"delay": 100, "stability_frequency": 20}


def _train(model, split, epochs=EPOCHS, hooks_fn=None):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    hooks = hooks_fn(model, opt) if hooks_fn else []
    fit(model, split.x_train, split.y_train, opt, epochs=epochs, batch_size=BATCH, seed=SEED, hooks=hooks)
    return model


def _methods(split):
    """(name, make) pairs; make() returns (model ready for export, notes)."""
    trained = {}

    def dense():  # trained once, as its own row; factorize_ starts from it
        if "dense" not in trained:
            trained["dense"] = _train(build(hidden=HIDDEN, rank=0), split)
        return trained["dense"]

    def factorized(rule, finetune=0):
        model = build(hidden=HIDDEN, rank=0)
        model.load_state_dict(dense().state_dict())
        decisions = factorize_(model, FactorizeConfig(rule=rule))
        if finetune:
            _train(model, split, epochs=finetune)
        return model, "; ".join(f"{d.name}: {d.reason}" for d in decisions)

    def initialized(config):
        model = build(hidden=HIDDEN, rank=8)
        init_lowrank_(model, config)
        return _train(model, split), "hidden rank 8"

    def oialr(cutoff):
        box = {}

        def hooks(model, opt):
            box["o"] = OIALR(model, opt, OIALRConfig(**OIALR_SCHEDULE, sigma_cutoff_fraction=cutoff))
            return [lambda step: box["o"].step()]

        model = _train(build(hidden=HIDDEN, rank=0), split, hooks_fn=hooks)
        done = box["o"].finalize()
        return model, "; ".join(f"{d['name']}: rank {d['rank']} of {d['full_rank']}"
                                + ("" if d["factored"] else " (kept dense)") for d in done)

    def nola():
        model = build(hidden=HIDDEN, rank=0)
        nola_(model, NOLAConfig(rank=8, n_basis_u=64, n_basis_v=64), filter_fn=lambda m, name: name == "hidden")
        trained = sum(p.numel() for p in model.parameters())
        _train(model, split)
        (info,) = materialize_(model)
        return model, (f"hidden rank 8 from {info['trained_params']} trained numbers (α, β, bias): "
                       f"{info['compression_vs_dense']:.1f}x fewer than dense, {info['compression_vs_lowrank']:.1f}x "
                       f"fewer than rank 8; whole model trains {trained:,}")

    return [
        ("dense", lambda: (dense(), "hidden dense 128x64")),
        ("factorize_ energy 0.99", lambda: factorized(EnergyRule(0.99))),
        ("factorize_ energy 0.9", lambda: factorized(EnergyRule(0.9))),
        ("factorize_ energy 0.9 + 5 ep. fine-tune", lambda: factorized(EnergyRule(0.9), finetune=5)),
        (f"factorize_ budget {BUDGET_BYTES} B + 5 ep. fine-tune",
         lambda: factorized(ParamBudget(bytes=BUDGET_BYTES), finetune=5)),
        ("spectral init, rank 8", lambda: initialized(SpectralInit(seed=SEED))),
        ("function-matching init, rank 8", lambda: initialized(FunctionMatchingInit(seed=SEED))),
        ("OIALR, cutoff 0.1", lambda: oialr(0.1)),
        ("OIALR, cutoff 0.2", lambda: oialr(0.2)),
        ("NOLA, rank 8, k=64+64", nola),
    ]


def run(out_dir: Path) -> tuple[list[dict], dict]:
    """One row per method, and the models by method name."""
    split = get("digits_mlp").load_data()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / "dataset.npz"
    np.savez(data, **split._asdict())
    rows, models = [], {}
    for i, (name, make) in enumerate(_methods(split)):
        with deterministic(SEED):  # each method from the same seed, whatever ran before it
            start = time.perf_counter()
            model, notes = make()
            seconds = time.perf_counter() - start
        folder = out_dir / f"m{i}"
        exported = export_model(model, split.x_train[:300], folder)
        checked = verify(folder / "model_int8.tflite", folder, data=data, float_tflite=folder / "model_float.tflite")
        models[name] = model
        rows.append({"method": name, "params": sum(p.numel() for p in model.parameters()),
                     "dense_params": dense_param_count(model), "int8_bytes": exported["sizes"]["model_int8.tflite"],
                     "ops": exported["ops"], "float_accuracy": accuracy(model, split.x_test, split.y_test),
                     "int8_accuracy": checked["int8_accuracy"], "train_seconds": round(seconds, 1), "notes": notes})
        print(f"low rank: {name}: {rows[-1]['params']:,} params, {rows[-1]['int8_bytes']:,} B int8, "
              f"int8 accuracy {checked['int8_accuracy']:.3f}", flush=True)
    return rows, models


def rank_experiment(epochs: int = 40) -> dict[str, list[dict]]:
    """Dense digits MLP, SGD (lr 0.05, momentum 0.9): batch 16 vs 512, weight decay 5e-3 vs none."""
    split = get("digits_mlp").load_data()
    runs = {}
    for batch, wd in ((16, 5e-3), (512, 0.0), (16, 0.0), (512, 5e-3)):
        with deterministic(SEED):
            model = build(hidden=HIDDEN, rank=0)
            per_epoch = math.ceil(len(split.y_train) / batch)
            logger = RankLogger(model, every=per_epoch)
            logger.record(0)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=wd)
            fit(model, split.x_train, split.y_train, opt, epochs=epochs, batch_size=batch, seed=SEED,
                hooks=[logger], cosine=False)
            label = f"batch {batch}, wd {wd:g} (test acc {accuracy(model, split.x_test, split.y_test):.3f})"
            runs[label] = [{**h, "epoch": h["step"] / per_epoch} for h in logger.history]
    return runs


def section(out_dir: Path, img_dir: Path = IMG_DIR) -> str:
    """Run everything; save plots under `img_dir`; return the markdown section for docs/benchmarks.md."""
    rows, models = run(Path(out_dir))
    plot_tradeoff(rows, img_dir / "lowrank_bench.png")
    dense_hidden, oialr_hidden = (analyze_model(models[k])[0] for k in ("dense", "OIALR, cutoff 0.2"))
    plot_layer(dense_hidden, img_dir / "lowrank_spectrum_hidden.png", oialr_hidden, labels=("dense", "OIALR 0.2"))
    runs = rank_experiment()
    plot_rank_curves(runs, img_dir / "lowrank_rank_curves.png", layer="hidden", x_key="epoch")
    return markdown(rows, runs)


def markdown(rows: list[dict], runs: dict[str, list[dict]]) -> str:
    dense = rows[0]
    lines = [
        "## Low-rank methods (`tinylr.lowrank`)",
        "",
        f"digits_mlp (64 -> {HIDDEN} -> 10, scikit-learn digits, 1437 train / 360 test), Adam lr {LR}, "
        f"{EPOCHS} epochs, batch {BATCH}, seed {SEED}. Every model went through `tinylr.export` (onnx2tf, int8) and",
        "`tinylr verify` (TFLM) in this run; params are those of the exported model.",
        "",
        "| method | params | vs dense | int8 .tflite B | float acc | int8 acc | train s | ops | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['params']:,} | {r['params'] / dense['params']:.2f} | {r['int8_bytes']:,} "
                     f"| {100 * r['float_accuracy']:.1f}% | {100 * r['int8_accuracy']:.1f}% | {r['train_seconds']} "
                     f"| {len(r['ops'])} ({r['ops'].count('FULLY_CONNECTED')} FC) | {r['notes']} |")
    lines += ["", "![size vs accuracy](img/lowrank_bench.png)", "",
              "Spectrum of the hidden layer, dense vs OIALR (cutoff 0.2):", "",
              "![hidden layer spectrum](img/lowrank_spectrum_hidden.png)", "",
              "Rank of the dense hidden layer during training with SGD (RankLogger, once per epoch):", "",
              "| run | numerical rank (1e-3) | effective rank | energy-0.99 rank |", "|---|---:|---:|---:|"]
    for label, history in runs.items():
        first, last = history[0]["layers"]["hidden"], history[-1]["layers"]["hidden"]
        lines.append(f"| {label} | {first['numerical_rank']} -> {last['numerical_rank']} "
                     f"| {first['effective_rank']:.1f} -> {last['effective_rank']:.1f} "
                     f"| {first['energy_rank_99']} -> {last['energy_rank_99']} |")
    lines += ["", "![rank curves](img/lowrank_rank_curves.png)", ""]
    return "\n".join(lines)
