"""The MPGNN / LR-MPGNN results table: train, export and score each configuration.

`row(spec, root)` is the unit: it trains (or reuses) one configuration in
`root/<spec.name>/`, exports it to int8 with `tinylr.export.export`, scores the float
torch model and the int8 model on TFLM, and returns the table row as a dict.
Columns that need later stages (generated C flash bytes, normalized WSR of the
emulated MCU run) come from `COLUMN_HOOKS`: functions `(row, run_dir) -> dict`
that `row` calls last, so the pipeline can add its columns without touching this
module. `tinylr.rrm.reproduce.table` runs every spec and `write_results` rewrites
the table in docs/rrm.md and the plots in docs/img/rrm_*.png.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fsutil import read_json, write_text
from . import data
from .channels import Scenario
from .gnn import GNNConfig
from .train import QUICK, TrainOptions

__all__ = ["Spec", "COLUMN_HOOKS", "specs", "quick_specs", "row", "reusable", "markdown_table", "claims",
           "write_results", "score_int8_outputs"]

# Extra columns: each hook gets the row dict and the run folder (checkpoint.pt, dataset.npz,
# model_int8.tflite, ...) and returns {column: value}; None means "not measured".
COLUMN_HOOKS: list[Callable[[dict, Path], dict]] = []
HOOK_COLUMNS = {
    "c_flash_bytes": "generated C flash B",
    "mcu_ms_estimate": "ms / inference on the MCU (est.)",
    "mcu_normalized_wsr": "nWSR MCU (its 16 samples)",
    "int8_normalized_wsr_same_samples": "nWSR int8, same 16",
}

WIDTHS = {  # name -> (message MLP widths, update MLP hidden widths)
    "ref": ((16, 32), (16,)),      # Shen et al.'s reference sizes: 1,233 parameters
    "w64": ((64, 64), (64,)),
    "w128": ((128, 128), (128,)),
    "w256": ((256, 256), (256,)),
}
RANKS = (1, 2, 4, 8)
FACTORIZE_RANK = 2
FINETUNE_EPOCHS = 10
MARK_BEGIN, MARK_END = "<!-- rrm-results:begin -->", "<!-- rrm-results:end -->"


@dataclass(frozen=True)
class Spec:
    """One row: a model configuration and how it is obtained."""

    name: str                           # folder under the sweep root, and the row's key
    config: GNNConfig
    dense: str | None = None            # the MPGNN row (same widths) this row is compared with
    factorize_from: str | None = None   # SVD-factorize this trained dense row, then fine-tune
    epochs: int | None = None           # training epochs when not the sweep's (fine-tuning)
    oialr: bool = False                 # train `config` (dense) with OIALR: ranks found during training

    @property
    def label(self) -> str:
        w = "-".join(map(str, self.config.msg)) + "/" + "-".join(map(str, self.config.upd))
        if self.oialr:
            return f"LR-MPGNN {w} OIALR"
        if not self.config.rank:
            return f"MPGNN {w}"
        how = " SVD+fine-tune" if self.factorize_from else ""
        return f"LR-MPGNN {w} r{self.config.rank}{how}"


# The sweep: ranks per width. Width 256 only at ranks 2 and 4: its dense MPGNN alone costs
# ~4x the 128-wide one to train, and rank 1 already falls short at 64 and 128.
SWEEP = {"ref": RANKS, "w64": RANKS, "w128": RANKS, "w256": (2, 4)}
STUDY_WIDTH = "w128"   # where OIALR and SVD-then-fine-tune are compared with training factored


def specs(sweep: dict[str, tuple[int, ...]] | None = None, *, k: int = 10, study: str | None = STUDY_WIDTH,
          factorize_rank: int | None = FACTORIZE_RANK, finetune_epochs: int = FINETUNE_EPOCHS,
          oialr: bool = True) -> list[Spec]:
    """Dense MPGNN per width and LR-MPGNN per (width, rank); OIALR and the factorized MPGNN at `study`."""
    out = []
    for w, ranks in (sweep or SWEEP).items():
        msg, upd = WIDTHS[w]
        dense = Spec(f"mpgnn_{w}", GNNConfig(k=k, msg=msg, upd=upd))
        out.append(dense)
        out += [Spec(f"lr_{w}_r{r}", GNNConfig(k=k, msg=msg, upd=upd, rank=r), dense=dense.name) for r in ranks]
    if study is None:
        return out
    msg, upd = WIDTHS[study]
    if oialr:
        out.append(Spec(f"oialr_{study}", GNNConfig(k=k, msg=msg, upd=upd), dense=f"mpgnn_{study}", oialr=True))
    if factorize_rank:
        out.append(Spec(f"svd_{study}_r{factorize_rank}", GNNConfig(k=k, msg=msg, upd=upd, rank=factorize_rank),
                        dense=f"mpgnn_{study}", factorize_from=f"mpgnn_{study}", epochs=finetune_epochs))
    return out


def quick_specs(k: int = 10) -> list[Spec]:
    return specs({"ref": (2,), "w64": (2,)}, k=k, study="w64", finetune_epochs=QUICK.epochs, oialr=False)


def row(spec: Spec, root: str | Path, *, options: TrainOptions | None = None,
        scenario: Scenario = data.DEFAULT_SCENARIO, progress: bool = True, int8: bool = True,
        reuse: bool = True) -> dict:
    """Train, export and score `spec` in root/<spec.name>; return its table row.

    With `reuse`, a run folder whose train.json matches the spec and options is not
    retrained, and an export newer than its checkpoint is not redone.
    """
    from ..train import load_checkpoint
    from . import evaluate, train
    from .factorize import factorize

    evaluate._register_zoo()
    options = options or TrainOptions()
    run = Path(root) / spec.name
    opts = dataclasses.replace(options, epochs=spec.epochs or options.epochs)
    summary = _reusable_training(run, spec, opts, scenario) if reuse else None
    if summary is None:
        model = None
        if spec.factorize_from:
            dense, _ = load_checkpoint(Path(root) / spec.factorize_from / "checkpoint.pt")
            model = factorize(dense, spec.config.rank)
        oialr = None
        if spec.oialr:
            from ..lowrank import OIALRConfig
            oialr = OIALRConfig()
        summary = train.train(spec.config, run, scenario=scenario, options=opts, model=model, progress=progress,
                              note=f"SVD of {spec.factorize_from}, fine-tuned" if spec.factorize_from else None,
                              oialr=oialr)
    ranks = summary["model_kwargs"].get("ranks") or {}
    label = spec.label + (" (ranks " + "/".join(str(r) for r in ranks.values()) + ")" if ranks else "")
    result = {
        "name": spec.name, "label": label, "dense": spec.dense, "model": summary["model"],
        "msg": list(spec.config.msg), "upd": list(spec.config.upd), "rank": spec.config.rank, "ranks": ranks,
        "params": summary["params"], "dense_params": summary["dense_params"], "float32_bytes": 4 * summary["params"],
        "normalized_wsr_float": summary["test"]["normalized_wsr"], "epochs": opts.epochs,
        "train_seconds": summary["seconds"], "n_train": opts.n_train, "n_test": opts.n_test, "seed": opts.seed,
        "k": spec.config.k, "run_dir": str(run),
    }
    if spec.factorize_from:
        model, _ = load_checkpoint(Path(root) / spec.factorize_from / "checkpoint.pt")
        ch = data.channels(scenario, "test", opts.n_test)
        result["normalized_wsr_svd_only"] = evaluate.normalized_wsr(
            evaluate.powers_float(factorize(model, spec.config.rank), ch, scenario.feature), ch)
    if int8:
        result.update(_int8_columns(run, reuse, opts.n_test))
    for hook in COLUMN_HOOKS:
        result.update(hook(result, run))
    return result


def reusable(spec: Spec, root: str | Path, options: TrainOptions, scenario: Scenario = data.DEFAULT_SCENARIO) -> bool:
    """True when root/<spec.name> holds a finished training run of exactly this spec and these options."""
    opts = dataclasses.replace(options, epochs=spec.epochs or options.epochs)
    return _reusable_training(Path(root) / spec.name, spec, opts, scenario) is not None


def spectra_names(spec_list: list[Spec]) -> tuple[str, ...]:
    """Rows for the singular-value plot: the factorized MPGNN, its SVD row, and the LR row trained from scratch."""
    svd = next((s for s in spec_list if s.factorize_from), None)
    if svd is None:
        return ()
    scratch = next((s.name for s in spec_list if not s.factorize_from and s.dense == svd.factorize_from
                    and s.config.rank == svd.config.rank), None)
    return tuple(n for n in (svd.factorize_from, scratch, svd.name) if n)


def _reusable_training(run: Path, spec: Spec, options: TrainOptions, scenario: Scenario) -> dict | None:
    path = run / "train.json"
    if not (path.is_file() and (run / "checkpoint.pt").is_file() and (run / "dataset.npz").is_file()):
        return None
    if spec.factorize_from:  # a retrained source invalidates the factorized run
        source = run.parent / spec.factorize_from / "checkpoint.pt"
        if not source.is_file() or source.stat().st_mtime > (run / "checkpoint.pt").stat().st_mtime:
            return None
    summary = read_json(path)
    same = (summary.get("requested_kwargs", summary.get("model_kwargs")) == spec.config.to_kwargs()
            and summary.get("options") == dataclasses.asdict(options)
            and summary.get("scenario") == dataclasses.asdict(scenario))
    return summary if same else None


def _int8_columns(run: Path, reuse: bool, n_test: int) -> dict:
    from .. import ir
    from ..export import export
    from .evaluate import evaluate_run

    int8_path, ckpt = run / "model_int8.tflite", run / "checkpoint.pt"
    fresh = (reuse and int8_path.is_file() and (run / "export.json").is_file()
             and (run / "export.json").stat().st_mtime >= ckpt.stat().st_mtime)
    exported = read_json(run / "export.json") if fresh else export(ckpt, run, data=run / "dataset.npz")
    scores = run / "eval.json"
    scored = (read_json(scores) if fresh and scores.is_file() and scores.stat().st_mtime >= int8_path.stat().st_mtime
              else None)
    if scored is None or "int8" not in scored or scored["float"]["n"] != n_test:  # e.g. after `evaluate --samples`
        scored = evaluate_run(run, n_test=n_test)
    graph = ir.load(int8_path)
    return {
        "int8_tflite_bytes": int8_path.stat().st_size,
        "int8_constant_bytes": sum(t.nbytes for t in graph.tensors if t.is_constant),
        "normalized_wsr_int8": scored["int8"]["normalized_wsr"],
        "int8_mean_abs_power_error": scored["int8"]["mean_abs_power_error"],
        "float_tflite_max_abs_error": exported["float_max_abs_error"],
        "ops": sorted(set(graph.opcodes)),
        "op_count": len(graph.opcodes),
    }


def score_int8_outputs(run_dir: str | Path, outputs: np.ndarray) -> float:
    """Normalized WSR of int8 outputs [n, K] (e.g. printed by the emulated firmware) on the first n test channels.

    The outputs are in the int8 model's output quantization; they are scored against
    WMMSE on the same n channels, the order of `reference.npz` (x_test).
    """
    from .. import ir, reference
    from ..train import load_checkpoint
    from .channels import Scenario as _Scenario
    from .evaluate import _register_zoo, normalized_wsr

    _register_zoo()
    run = Path(run_dir)
    _, ckpt = load_checkpoint(run / "checkpoint.pt")
    scenario = _Scenario(**ckpt["rrm"]["scenario"])
    outputs = np.asarray(outputs).reshape(len(outputs), -1)
    out = reference.int8_io(ir.load(run / "model_int8.tflite"), str(run / "model_int8.tflite"))[1]
    p = np.clip(reference.dequantize(outputs, out.scale, out.zero_point).astype(np.float64), 0.0, 1.0)
    return normalized_wsr(p, data.channels(scenario, "test", len(outputs)))


def _dense_of(rows: list[dict], r: dict) -> dict | None:
    return next((d for d in rows if d["name"] == r["dense"]), None)


def relative(rows: list[dict], r: dict) -> dict:
    """Parameter reduction and relative nWSR drop (float, int8) against the row's MPGNN."""
    d = _dense_of(rows, r)
    if d is None:
        return {"reduction": None, "drop_float": None, "drop_int8": None}

    def drop(key):
        return None if r.get(key) is None or d.get(key) is None else (d[key] - r[key]) / d[key]
    return {"reduction": 1.0 - r["params"] / d["params"], "drop_float": drop("normalized_wsr_float"),
            "drop_int8": drop("normalized_wsr_int8")}


def claims(rows: list[dict], min_reduction: float = 0.95, max_drop: float = 0.02) -> list[dict]:
    """Rows with >= 95% fewer parameters than their MPGNN and <= 2% lower normalized WSR (float and int8)."""
    ok = []
    for r in rows:
        rel = relative(rows, r)
        if rel["reduction"] is None or rel["drop_float"] is None:
            continue
        int8_ok = rel["drop_int8"] is None or rel["drop_int8"] <= max_drop
        if rel["reduction"] >= min_reduction and rel["drop_float"] <= max_drop and int8_ok:
            ok.append({**r, **rel})
    return ok


def markdown_table(rows: list[dict]) -> str:
    def pct(v):
        return "" if v is None else f"{100 * v:.1f}%"

    def num(v, fmt="{:,}"):
        return "—" if v is None else fmt.format(v)

    head = ("| model | params | fewer than its MPGNN | float32 B | int8 .tflite B | int8 constants B | "
            + " | ".join(HOOK_COLUMNS.values()) + " | nWSR float | nWSR int8 | drop float | drop int8 | train s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        rel = relative(rows, r)
        hooks = " | ".join(num(r.get(c), "{:,}" if c.endswith("bytes") else "{:.4f}") for c in HOOK_COLUMNS)
        lines.append(
            f"| {r['label']} | {r['params']:,} | {pct(rel['reduction'])} | {r['float32_bytes']:,} | "
            f"{num(r.get('int8_tflite_bytes'))} | {num(r.get('int8_constant_bytes'))} | {hooks} | "
            f"{r['normalized_wsr_float']:.4f} | {num(r.get('normalized_wsr_int8'), '{:.4f}')} | "
            f"{pct(rel['drop_float'])} | {pct(rel['drop_int8'])} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def results_markdown(rows: list[dict], *, options: TrainOptions, scenario: Scenario, machine: str,
                     baselines: dict | None = None, command: str = "tinylr rrm table") -> str:
    met = claims(rows)
    biggest_int8 = max((r.get("int8_tflite_bytes") or 0 for r in rows), default=0)
    lines = [
        f"Measured by `{command}` on {datetime.date.today().isoformat()} ({machine}).",
        f"K = {scenario.k} users, {scenario.kind} channel ({'weighted' if scenario.weighted else 'unweighted'}), "
        f"input feature `{scenario.feature}`; {options.n_train:,} training channels, {options.epochs} epochs "
        f"(fine-tuning rows: their own), batch {options.batch_size}, Adam lr {options.lr:g}, seed {options.seed}; "
        f"scored on {options.n_test:,} held-out channels. nWSR = mean WSR / mean WSR of WMMSE (100 iterations); "
        "\"drop\" is relative to the MPGNN of the same widths; int8 = the full-integer .tflite run on the TFLM "
        "interpreter.",
        "",
        markdown_table(rows),
        "",
    ]
    if baselines:
        lines.append(f"Baselines on the same channels: WMMSE mean WSR {baselines['wmmse_wsr']:.4f} (nWSR 1 by "
                     f"definition); full power nWSR {baselines['full_power']:.4f}; random power nWSR "
                     f"{baselines['random_power']:.4f}.")
        lines.append("")
    if met:
        best = min(met, key=lambda r: r["params"])
        lines.append("Claim (>= 95% fewer parameters than its MPGNN, <= 2% lower nWSR): **met** by "
                     + ", ".join(f"{r['label']} ({100 * r['reduction']:.1f}% fewer, drop {100 * r['drop_float']:.2f}% "
                                 f"float / {100 * (r['drop_int8'] or 0):.2f}% int8)" for r in met)
                     + f". Smallest: {best['params']:,} parameters, int8 .tflite {best.get('int8_tflite_bytes', 0):,} B.")
    else:
        lines.append("Claim (>= 95% fewer parameters than its MPGNN, <= 2% lower nWSR): **not met** by any row here.")
    lines.append(f"Largest int8 .tflite in the table: {biggest_int8:,} B.")
    return "\n".join(lines)


def write_results(rows: list[dict], doc: str | Path, img_dir: str | Path, *, options: TrainOptions,
                  scenario: Scenario, machine: str, baselines: dict | None = None, command: str = "tinylr rrm table",
                  spectra_rows: tuple[str, ...] | None = None) -> None:
    """Rewrite the table between the markers in `doc` and the plots rrm_tradeoff.png, rrm_spectra.png."""
    from . import plots

    img = Path(img_dir)
    plots.tradeoff(rows, img / "rrm_tradeoff.png")
    text = results_markdown(rows, options=options, scenario=scenario, machine=machine, baselines=baselines,
                            command=command)
    if spectra_rows:
        stats = plots.spectra({r["label"]: Path(r["run_dir"]) / "checkpoint.pt" for r in rows
                               if r["name"] in spectra_rows}, img / "rrm_spectra.png")
        text += "\n\n" + spectra_markdown(stats)
    doc = Path(doc)
    old = doc.read_text() if doc.is_file() else f"# Radio resource management\n\n{MARK_BEGIN}\n{MARK_END}\n"
    if MARK_BEGIN not in old or MARK_END not in old:
        old = old.rstrip("\n") + f"\n\n## Results\n\n{MARK_BEGIN}\n{MARK_END}\n"
    head, rest = old.split(MARK_BEGIN, 1)
    tail = rest.split(MARK_END, 1)[1]
    write_text(doc, f"{head}{MARK_BEGIN}\n{text}\n{MARK_END}{tail}")


def spectra_markdown(stats: dict[str, dict[str, dict]]) -> str:
    """One line per (model, layer) of the singular-value summary (see `plots.spectrum_stats`)."""
    lines = ["Singular values of the applied weights (docs/img/rrm_spectra.png): sigma_2/sigma_1, share of "
             "||W||_F^2 in the top two, stable rank ||W||_F^2/||W||_2^2, entropy effective rank.", "",
             "| model | layer | sigma_2/sigma_1 | energy top 2 | stable rank | effective rank |", "|---|---|---|---|---|---|"]
    for label, layers in stats.items():
        for layer, s in layers.items():
            lines.append(f"| {label} | {layer} | {s['sigma2_over_sigma1']:.3f} | {s['energy_top2']:.3f} | "
                         f"{s['stable_rank']:.2f} | {s['effective_rank']:.2f} |")
    return "\n".join(lines)
