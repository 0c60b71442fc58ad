"""One command per result of docs/rrm.md: `table` (the sweep) and `generalize` (D2D, K = 20..200)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..fsutil import write_json, write_text
from . import data, results
from .channels import D2D, SCENARIOS, Scenario
from .train import QUICK, TrainOptions

SWEEP_EPOCHS = TrainOptions().epochs  # 25: the wide models plateau by ~10, the reference by ~30
D2D_MARK_BEGIN, D2D_MARK_END = "<!-- rrm-d2d:begin -->", "<!-- rrm-d2d:end -->"
SEEDS_MARK_BEGIN, SEEDS_MARK_END = "<!-- rrm-seeds:begin -->", "<!-- rrm-seeds:end -->"
SEED_ROWS = ("mpgnn_ref", "lr_ref_r2", "lr_ref_r4", "mpgnn_w128", "lr_w128_r2", "mpgnn_w256", "lr_w256_r2", "lr_w256_r4")


def table(root: Path, doc: Path, img: Path, *, quick: bool = False, epochs: int | None = None, seed: int | None = None,
          only: set[str] | None = None, fresh: bool = False, progress: bool = True, log=print,
          mcu_target: str | None = "nrf52840") -> list[dict]:
    """Run (or reuse) every row of the sweep, then rewrite the results section of `doc` and the plots in `img`.

    With `only`, just those rows are (re)computed; the others are taken from `root` where a
    matching run exists and left out otherwise (so several processes can share a sweep).
    With `mcu_target`, every row is also generated as C, built for that board and run in
    the emulator (the MCU columns).
    """
    import functools

    from ..bench import machine
    from . import mcu

    hook = functools.partial(mcu.columns, target_name=mcu_target) if mcu_target else None
    if hook:
        results.COLUMN_HOOKS.append(hook)
    try:
        return _table(root, doc, img, quick=quick, epochs=epochs, seed=seed, only=only, fresh=fresh,
                      progress=progress, log=log, machine=machine)
    finally:
        if hook:
            results.COLUMN_HOOKS.remove(hook)


def _table(root, doc, img, *, quick, epochs, seed, only, fresh, progress, log, machine) -> list[dict]:
    spec_list = results.quick_specs() if quick else results.specs()
    options = QUICK if quick else TrainOptions(epochs=SWEEP_EPOCHS)
    if epochs is not None:
        options = dataclasses.replace(options, epochs=epochs)
    if seed is not None:
        options = dataclasses.replace(options, seed=seed)
    scenario = data.DEFAULT_SCENARIO
    rows = []
    for spec in spec_list:
        start = time.monotonic()
        if only is not None and spec.name not in only:
            if not results.reusable(spec, root, options, scenario):
                log(f"{spec.label:38s} skipped: no matching run in {root}")
                continue
            r = results.row(spec, root, options=options, scenario=scenario, progress=progress, reuse=True)
        else:
            r = results.row(spec, root, options=options, scenario=scenario, progress=progress, reuse=not fresh)
        rows.append(r)
        log(f"{spec.label:38s} {r['params']:>7,} params  nWSR float {r['normalized_wsr_float']:.4f}  "
            f"int8 {r['normalized_wsr_int8']:.4f}  ({time.monotonic() - start:.0f} s)")
    if not rows:
        return rows
    baselines = _baselines(scenario, options.n_test)
    write_json(root / "results.json", {"options": dataclasses.asdict(options), "scenario": dataclasses.asdict(scenario),
                                       "baselines": baselines, "rows": rows})
    spectra_rows = tuple(n for n in results.spectra_names(spec_list) if any(r["name"] == n for r in rows))
    command = ("tinylr rrm table" + (" --quick" if quick else "") + (f" --epochs {epochs}" if epochs else "")
               + (f" --seed {seed}" if seed is not None else ""))
    results.write_results(rows, doc, img, options=options, scenario=scenario, machine=machine(),
                          baselines=baselines, command=command, spectra_rows=spectra_rows)
    log(results.markdown_table(rows))
    log(f"\nwrote {doc} and {img}/rrm_*.png")
    return rows


def _baselines(scenario: Scenario, n: int) -> dict:
    from . import wmmse
    from .channels import weighted_sum_rate
    from .evaluate import normalized_wsr

    ch = data.channels(scenario, "test", n)
    ref = wmmse.wmmse(ch)
    return {"wmmse_wsr": float(weighted_sum_rate(ref, ch).mean()),
            "full_power": normalized_wsr(wmmse.full_power(ch), ch, ref),
            "random_power": normalized_wsr(wmmse.random_power(ch), ch, ref)}


D2D_FULL = TrainOptions(epochs=20, n_train=10_000, n_test=500)  # ~13 min here
D2D_QUICK = TrainOptions(epochs=2, n_train=200, n_test=50)


def generalize(out: Path, *, quick: bool = False, rank: int = 0, width: int | None = None, epochs: int | None = None,
               n_train: int | None = None, test_ks=(20, 50, 100, 200), progress: bool = True,
               doc: Path | None = None, reuse: bool = True) -> dict:
    """Train on D2D K=50, score the float model at each K of `test_ks` (same density); writes out/generalize.json.

    The GNN is size-agnostic: the same weights are rebuilt for each K (only the constant
    masks depend on K). With `reuse`, a finished training run in `out` with the same
    model and options is scored again instead of retrained.
    """
    import torch

    from ..train import load_checkpoint
    from . import wmmse
    from .evaluate import _register_zoo, normalized_wsr, powers_float
    from .gnn import MPGNN, GNNConfig
    from .train import train

    _register_zoo()
    base = D2D_QUICK if quick else D2D_FULL
    options = dataclasses.replace(base, epochs=epochs or base.epochs, n_train=n_train or base.n_train)
    scenario = SCENARIOS["d2d"]
    sizes = {"msg": (width, width), "upd": (width,)} if width else {}
    config = GNNConfig(k=scenario.k, rank=rank, **sizes)
    summary = _finished(out, config, options, scenario) if reuse else None
    if summary is None:
        summary = train(config, out, scenario=scenario, options=options, progress=progress)
    model, _ = load_checkpoint(out / "checkpoint.pt")
    scores = []
    for k in test_ks:
        sc = dataclasses.replace(scenario, k=k)
        ch = data.channels(sc, "test", max(10, options.n_test * 50 // max(k, 50)))  # fewer samples for large K
        sized = MPGNN(dataclasses.replace(config, k=k))
        sized.load_state_dict(model.state_dict())
        start = time.perf_counter()
        ref = wmmse.wmmse(ch)
        wmmse_s = time.perf_counter() - start
        with torch.no_grad():
            start = time.perf_counter()
            p = powers_float(sized, ch, sc.feature)
            gnn_s = time.perf_counter() - start
        scores.append({"k": k, "samples": ch.n, "normalized_wsr": normalized_wsr(p, ch, ref),
                       "full_power": normalized_wsr(wmmse.full_power(ch), ch, ref),
                       "random_power": normalized_wsr(wmmse.random_power(ch), ch, ref),
                       "wmmse_ms_per_sample": 1e3 * wmmse_s / ch.n, "gnn_ms_per_sample": 1e3 * gnn_s / ch.n})
    result = {"model": summary["model"], "model_kwargs": summary["model_kwargs"], "params": summary["params"],
              "options": dataclasses.asdict(options), "train_seconds": summary["seconds"], "scores": scores}
    write_json(out / "generalize.json", result)
    if doc is not None:
        _write_d2d(doc, result, quick)
    return result


def _finished(out: Path, config, options: TrainOptions, scenario: Scenario) -> dict | None:
    from ..fsutil import read_json

    path = out / "train.json"
    if not (path.is_file() and (out / "checkpoint.pt").is_file()):
        return None
    summary = read_json(path)
    same = (summary.get("model_kwargs") == config.to_kwargs() and summary.get("options") == dataclasses.asdict(options)
            and summary.get("scenario") == dataclasses.asdict(scenario))
    return summary if same else None


def d2d_markdown(result: dict, quick: bool = False) -> str:
    o = result["options"]
    kw = result["model_kwargs"]
    lines = [f"Measured by `tinylr rrm generalize{' --quick' if quick else ''}`: {result['model']} "
             f"(message {kw['msg']}, update {kw['upd']}, rank {kw['rank']}; {result['params']:,} parameters) trained "
             f"on D2D K=50 ({o['n_train']:,} layouts, {o['epochs']} epochs, {result['train_seconds']:.0f} s), float "
             "torch, scored at the same density on new layouts.", "",
             "| K | side m | test layouts | nWSR GNN | nWSR full power | nWSR random power |",
             "|---|---|---|---|---|---|"]
    for s in result["scores"]:
        lines.append(f"| {s['k']} | {D2D().side(s['k']):.0f} | {s['samples']} | {s['normalized_wsr']:.4f} | "
                     f"{s['full_power']:.4f} | {s['random_power']:.4f} |")
    return "\n".join(lines)


def _write_d2d(doc: Path, result: dict, quick: bool) -> None:
    _replace_section(doc, D2D_MARK_BEGIN, D2D_MARK_END, d2d_markdown(result, quick))


def _replace_section(doc: Path, begin: str, end: str, text: str) -> None:
    old = doc.read_text() if doc.is_file() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}"
    else:
        new = old.rstrip("\n") + f"\n\n{begin}\n{text}\n{end}\n"
    write_text(doc, new)


def seeds(root: Path, seed_list=(0, 1, 2), rows=SEED_ROWS, *, doc: Path | None = None, progress: bool = True,
          log=print) -> dict[str, list[dict]]:
    """The rows `rows` of the sweep trained with each seed (seed 0 in `root`, seed s in `root`-seed<s>).

    Runs (or reuses) what is missing, then writes the spread of nWSR over seeds into the
    seeds section of `doc`. Returns {row name: [row of each seed]}.
    """
    spec_list = [s for s in results.specs() if s.name in rows]
    per_row: dict[str, list[dict]] = {s.name: [] for s in spec_list}
    for seed in seed_list:
        folder = root if seed == 0 else root.parent / f"{root.name}-seed{seed}"
        options = TrainOptions(epochs=SWEEP_EPOCHS, seed=seed)
        for spec in spec_list:
            r = results.row(spec, folder, options=options, progress=progress, reuse=True)
            per_row[spec.name].append(r)
            log(f"seed {seed} {spec.label:38s} nWSR float {r['normalized_wsr_float']:.4f} int8 "
                f"{r['normalized_wsr_int8']:.4f}")
    if doc is not None:
        _replace_section(doc, SEEDS_MARK_BEGIN, SEEDS_MARK_END, seeds_markdown(per_row, seed_list))
    return per_row


def seeds_markdown(per_row: dict[str, list[dict]], seed_list) -> str:
    lines = [f"Measured by `tinylr rrm seeds`: the same rows trained with seeds {', '.join(map(str, seed_list))} "
             "(same channels; only the initial weights and the batch order change).", "",
             "| model | params | nWSR float per seed | mean | nWSR int8 per seed | mean |", "|---|---|---|---|---|---|"]
    for runs in per_row.values():
        f = [r["normalized_wsr_float"] for r in runs]
        q = [r["normalized_wsr_int8"] for r in runs]
        lines.append(f"| {runs[0]['label']} | {runs[0]['params']:,} | {' / '.join(f'{v:.4f}' for v in f)} | "
                     f"{sum(f) / len(f):.4f} | {' / '.join(f'{v:.4f}' for v in q)} | {sum(q) / len(q):.4f} |")
    return "\n".join(lines)
