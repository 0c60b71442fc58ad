"""CLI subcommands of the low-rank library (`tinylr analyze`). Argument parsing only:
the work, and every heavy import, lives in the modules the handlers import."""

from __future__ import annotations

from pathlib import Path


def cmd_analyze(args) -> None:
    from .report import analyze_file

    out = args.out or Path(args.model).parent / "analysis"
    summary = analyze_file(args.model, out, compare=args.compare, tolerance=args.tolerance, plots=not args.no_plots)
    print(f"{'layer':24s} {'form':9s} {'shape':>11s} {'num.rank':>8s} {'stable':>7s} {'eff.':>6s} {'E0.9':>5s} {'E0.99':>5s}")
    for e in summary["layers"]:
        m = e["metrics"]
        shape = "x".join(map(str, e["matrix_shape"]))
        print(f"{e['name'] or '(model)':24s} {e['form']:9s} {shape:>11s} {m['numerical_rank']:8d} "
              f"{m['stable_rank']:7.2f} {m['effective_rank']:6.1f} {m['energy_rank_90']:5d} {m['energy_rank_99']:5d}")
    print(f"wrote {Path(out) / 'analysis.json'}" + ("" if args.no_plots else " and one PNG per layer"))


def register(subparsers) -> None:
    s = subparsers.add_parser("analyze", help="rank analysis of a model's weights: JSON + a PNG per layer",
                              description="Singular-value spectra and rank measures (numerical rank at a tolerance "
                                          "of W/‖W‖_F, stable rank, effective rank, energy ranks 0.9/0.99) of "
                                          "every Linear/Conv2d weight, factored layers included.")
    s.add_argument("model", type=Path, help="checkpoint.pt from `tinylr train`, or a torch.save'd state_dict")
    s.add_argument("--compare", type=Path, help="a second model (e.g. the factored one) shown side by side")
    s.add_argument("--out", type=Path, help="output folder (default: analysis/ beside MODEL)")
    s.add_argument("--tolerance", type=float, default=1e-3, help="numerical-rank tolerance on σ/‖W‖_F (default 1e-3)")
    s.add_argument("--no-plots", action="store_true", help="write analysis.json only")
    s.set_defaults(func=cmd_analyze)
