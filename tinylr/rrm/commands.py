"""`tinylr rrm ...`: power control with MPGNN / LR-MPGNN. Argument parsing only.

Imported by `tinylr.cli` for every command line, so nothing heavy at module level:
torch and the converter are imported inside the handlers.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TinylrError

DEFAULT_ROOT = Path("build/rrm")


def register(subparsers) -> None:
    p = subparsers.add_parser("rrm", help="radio power control: channels, WMMSE, MPGNN / LR-MPGNN (docs/rrm.md)")
    sub = p.add_subparsers(dest="rrm_command", required=True)

    s = sub.add_parser("train", help="train one MPGNN / LR-MPGNN without labels (loss = -weighted sum rate)")
    _model_args(s)
    _train_args(s)
    s.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt, dataset.npz, train.json")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("factorize", help="SVD-factorize a trained dense MPGNN to LR-MPGNN, then fine-tune")
    s.add_argument("source", type=Path, help="run folder of a dense MPGNN (from `tinylr rrm train`)")
    s.add_argument("--rank", type=int, required=True)
    _train_args(s, epochs_help="fine-tuning epochs (0: SVD only)")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_factorize)

    s = sub.add_parser("export", help="run folder -> model.onnx, model_float.tflite, model_int8.tflite (tinylr export)")
    s.add_argument("run", type=Path)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("evaluate", help="normalized WSR of the float model and the int8 model on TFLM -> eval.json")
    s.add_argument("run", type=Path)
    s.add_argument("--no-int8", action="store_true", help="score the float torch model only")
    s.add_argument("--samples", type=int, help="held-out channels (default: the run's)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("baselines", help="WMMSE, full-power and random-power WSR on held-out channels")
    _scenario_args(s)
    s.add_argument("--samples", type=int, default=2000)
    s.set_defaults(func=cmd_baselines)

    s = sub.add_parser("table", help="the whole sweep: train, export, score; rewrite docs/rrm.md's table and plots")
    s.add_argument("--quick", action="store_true", help="two widths, rank 2, a few epochs (a smoke run, minutes)")
    s.add_argument("--epochs", type=int, help="epochs per model (default 25; --quick: 3)")
    s.add_argument("--seed", type=int, help="training seed (default 0; the channel sets never change)")
    s.add_argument("--only", help="comma-separated row names to (re)compute, e.g. mpgnn_w64,lr_w64_r2")
    s.add_argument("--fresh", action="store_true", help="retrain and re-export even where a matching run exists")
    s.add_argument("--root", type=Path, default=None, help=f"run folders (default {DEFAULT_ROOT}, --quick: "
                                                             f"{DEFAULT_ROOT}-quick)")
    s.add_argument("--doc", type=Path, default=None, help="markdown file whose results section is rewritten "
                                                          "(default docs/rrm.md; --quick: ROOT/rrm.md)")
    s.add_argument("--img", type=Path, default=None, help="plot folder (default docs/img; --quick: ROOT/img)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--mcu", default="nrf52840", help="board whose emulated run fills the MCU columns (default nrf52840)")
    s.add_argument("--no-mcu", action="store_true", help="skip the C generator / emulator columns")
    s.set_defaults(func=cmd_table)

    s = sub.add_parser("seeds", help="seed spread: rows of the sweep retrained with other seeds; rewrites docs/rrm.md's "
                                      "seeds section")
    s.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    s.add_argument("--rows", help="comma-separated row names (default: the MPGNN/LR-MPGNN pairs of docs/rrm.md)")
    s.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="seed 0 runs; seed s goes to ROOT-seed<s>")
    s.add_argument("--doc", type=Path, default=Path("docs/rrm.md"))
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_seeds)

    s = sub.add_parser("generalize", help="D2D: train at K=50, score at K in {20, 50, 100, 200} at fixed density")
    s.add_argument("--quick", action="store_true")
    s.add_argument("--rank", type=int, default=0, help="LR-MPGNN rank (0: dense MPGNN)")
    s.add_argument("--width", type=int, help="hidden width of every layer (default: the reference sizes)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--samples", type=int, help="training channels")
    s.add_argument("--k", default="20,50,100,200", help="comma-separated test sizes")
    s.add_argument("--out", type=Path, default=DEFAULT_ROOT / "d2d")
    s.add_argument("--doc", type=Path, help="markdown file whose D2D section is rewritten (default docs/rrm.md; "
                                            "--quick: none)")
    s.add_argument("--fresh", action="store_true", help="retrain even if OUT holds a matching run")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_generalize)


def _scenario_args(s) -> None:
    s.add_argument("--scenario", choices=("gaussian", "d2d"), default="gaussian")
    s.add_argument("--k", type=int, help="users (default: 10 for gaussian, 50 for d2d)")
    s.add_argument("--unweighted", action="store_true", help="all weights alpha_k = 1")


def _model_args(s) -> None:
    _scenario_args(s)
    s.add_argument("--msg", default="16,32", help="message MLP widths (default 16,32: Shen et al.)")
    s.add_argument("--upd", default="16", help="update MLP hidden widths (default 16)")
    s.add_argument("--width", type=int, help="shorthand: --msg W,W --upd W")
    s.add_argument("--rank", type=int, default=0, help="LowRankLinear rank (0: dense MPGNN)")
    s.add_argument("--layers", type=int, default=3, help="applications of the shared layer")


def _train_args(s, epochs_help: str = "epochs (default 25; --quick: 3)") -> None:
    s.add_argument("--epochs", type=int, help=epochs_help)
    s.add_argument("--samples", type=int, help="training channels (default 10000; --quick: 2000)")
    s.add_argument("--test-samples", type=int, help="held-out channels (default 2000; --quick: 500)")
    s.add_argument("--batch-size", type=int, help="default 64 (--quick: 16)")
    s.add_argument("--lr", type=float, help="Adam step (default 1e-3; --quick: 3e-3)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="a small budget for smoke tests")
    s.add_argument("--no-progress", action="store_true")


def _widths(text: str, what: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise TinylrError(f"--{what} {text!r}: give comma-separated integers, e.g. 64,64") from None
    if not widths or min(widths) < 1:
        raise TinylrError(f"--{what} {text!r}: give one or more positive widths, e.g. 64,64")
    return widths


def _scenario(args):
    from .channels import SCENARIOS, Scenario

    base = SCENARIOS[args.scenario]
    try:
        return Scenario(base.kind, base.k if args.k is None else args.k, not args.unweighted, base.feature)
    except ValueError as exc:
        raise TinylrError(f"bad scenario: {exc}") from None


def _options(args, default_epochs: int | None = None):
    from .train import QUICK, TrainOptions

    base = QUICK if args.quick else TrainOptions(epochs=default_epochs or TrainOptions().epochs)
    return TrainOptions(epochs=base.epochs if args.epochs is None else args.epochs,
                        batch_size=args.batch_size or base.batch_size, lr=args.lr or base.lr,
                        n_train=args.samples or base.n_train, n_test=args.test_samples or base.n_test, seed=args.seed)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_train(args) -> None:
    from .gnn import GNNConfig
    from .train import train

    scenario = _scenario(args)
    msg, upd = ((args.width, args.width), (args.width,)) if args.width else (_widths(args.msg, "msg"), _widths(args.upd, "upd"))
    try:
        config = GNNConfig(k=scenario.k, msg=msg, upd=upd, rank=args.rank, layers=args.layers)
    except ValueError as exc:
        raise TinylrError(f"bad model sizes: {exc}") from None
    summary = train(config, args.out, scenario=scenario, options=_options(args), progress=not args.no_progress)
    _print({k: summary[k] for k in ("model", "model_kwargs", "params", "dense_params", "test", "seconds")})


def cmd_factorize(args) -> None:
    from ..train import load_checkpoint
    from .channels import Scenario
    from .evaluate import _register_zoo
    from .factorize import factorize
    from .train import train

    _register_zoo()
    model, ckpt = load_checkpoint(Path(args.source) / "checkpoint.pt")
    if "rrm" not in ckpt:
        raise TinylrError(f"{args.source}: not a run of `tinylr rrm train`")
    try:
        low = factorize(model, args.rank)
    except ValueError as exc:
        raise TinylrError(f"{args.source}: {exc}; factorize a run trained with --rank 0") from None
    scenario = Scenario(**ckpt["rrm"]["scenario"])
    epochs = 10 if args.epochs is None and not args.quick else args.epochs
    if epochs == 0:  # SVD only: score it, save nothing
        from . import data
        from .evaluate import normalized_wsr_float

        n_test = args.test_samples or ckpt["rrm"]["options"]["n_test"]
        _print({"test": normalized_wsr_float(low, data.channels(scenario, "test", n_test), scenario.feature),
                "note": "SVD only, not saved (give --epochs >= 1 to fine-tune and save a run)"})
        return
    options = _options(args, default_epochs=10)
    summary = train(low.config, args.out, scenario=scenario, options=options, model=low, progress=not args.no_progress,
                    note=f"SVD of {args.source} at rank {args.rank}, fine-tuned {options.epochs} epochs")
    _print({k: summary[k] for k in ("model", "model_kwargs", "params", "dense_params", "note", "test", "seconds")})


def cmd_export(args) -> None:
    from ..export import export
    from .evaluate import _register_zoo

    _register_zoo()
    run = Path(args.run)
    summary = export(run / "checkpoint.pt", run, data=run / "dataset.npz")
    _print({k: summary[k] for k in ("model", "ops", "fully_connected", "float_max_abs_error", "sizes", "seconds")})


def cmd_evaluate(args) -> None:
    from .evaluate import evaluate_run

    _print(evaluate_run(args.run, n_test=args.samples, int8=not args.no_int8))


def cmd_baselines(args) -> None:
    import numpy as np

    from . import data, wmmse
    from .channels import weighted_sum_rate

    scenario = _scenario(args)
    ch = data.channels(scenario, "test", args.samples)
    ref = wmmse.wmmse(ch)
    wsr = {name: float(weighted_sum_rate(p, ch).mean()) for name, p in
           (("wmmse", ref), ("full_power", wmmse.full_power(ch)), ("random_power", wmmse.random_power(ch)))}
    _print({"scenario": vars(scenario), "samples": ch.n, "mean_wsr": wsr,
            "normalized": {k: v / wsr["wmmse"] for k, v in wsr.items()},
            "wmmse_mean_power": float(np.mean(ref))})


def cmd_table(args) -> None:
    from . import results
    from .reproduce import table

    root = args.root or (Path(f"{DEFAULT_ROOT}-quick") if args.quick else DEFAULT_ROOT)
    doc = args.doc or (root / "rrm.md" if args.quick else Path("docs/rrm.md"))
    img = args.img or (root / "img" if args.quick else Path("docs/img"))
    only = set(args.only.split(",")) if args.only else None
    if only:
        known = {s.name for s in (results.quick_specs() if args.quick else results.specs())}
        unknown = only - known
        if unknown:
            raise TinylrError(f"--only: unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}")
    table(root, doc, img, quick=args.quick, epochs=args.epochs, seed=args.seed, only=only, fresh=args.fresh,
          progress=not args.no_progress, mcu_target=None if args.no_mcu else args.mcu)


def cmd_seeds(args) -> None:
    from . import results
    from .reproduce import SEED_ROWS, seeds

    try:
        seed_list = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise TinylrError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2") from None
    rows = tuple(args.rows.split(",")) if args.rows else SEED_ROWS
    unknown = set(rows) - {s.name for s in results.specs()}
    if unknown:
        raise TinylrError(f"--rows: unknown rows {', '.join(sorted(unknown))}")
    seeds(args.root, seed_list, rows, doc=args.doc, progress=not args.no_progress)


def cmd_generalize(args) -> None:
    from .reproduce import generalize

    try:
        ks = tuple(int(k) for k in args.k.split(","))
    except ValueError:
        raise TinylrError(f"--k {args.k!r}: give comma-separated integers, e.g. 20,50,100,200") from None
    _print(generalize(args.out, quick=args.quick, rank=args.rank, width=args.width, epochs=args.epochs,
                      n_train=args.samples, test_ks=ks, progress=not args.no_progress,
                      doc=args.doc or (None if args.quick else Path("docs/rrm.md")), reuse=not args.fresh))
