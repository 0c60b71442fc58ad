"""Command line: one subcommand per stage, each taking the previous stage's files.

Argument parsing only; the work lives in the stage modules.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path

from .errors import TinylrError
from .targets import known_targets, load_target, parse_reservation

# Subpackages that add their own subcommands: each module has `register(subparsers)`
# (adding `add_parser(...)` entries whose `func` takes the parsed args) and imports
# nothing heavy at module level.
COMMAND_MODULES = ("tinylr.lowrank.commands", "tinylr.rrm.commands")


def _target(args) -> Target:  # noqa: F821
    target = load_target(args.target)
    if getattr(args, "reserve", None):
        target = target.with_reservations(dict(parse_reservation(s) for s in args.reserve))
    return target


def _print(summary) -> None:
    print(json.dumps(summary, indent=2, default=str))


def cmd_train(args):
    from . import train
    kwargs = {k: v for k, v in (("rank", args.rank), ("hidden", args.hidden), ("epochs", args.epochs)) if v is not None}
    _print(train.train(args.model, args.out, seed=args.seed, **kwargs))


def cmd_export(args):
    from . import export
    _print(export.export(args.source, args.out, data=args.data))


def cmd_verify(args):
    from . import verify
    _print(verify.verify(args.tflite, args.out, data=args.data, float_tflite=args.float_tflite))


def cmd_generate(args):
    from . import pipeline
    name = args.name or args.tflite.stem.removesuffix("_int8")
    _print(pipeline.generate_stage(args.tflite, args.out, name, args.reference, args.variant))


def cmd_build(args):
    from . import pipeline
    _print(pipeline.build_stage(_target(args), args.src, args.reference, args.out, args.count))


def cmd_emulate(args):
    from . import pipeline
    summary = pipeline.emulate_stage(_target(args), args.elf, args.reference, args.out, emulator=args.emulator)
    _print({k: summary[k] for k in ("bit_exact", "samples", "window_instructions", "window_cycles", "peak_stack_bytes",
                                    "violation_count") if k in summary})
    if (summary.get("profile") or {}).get("layers"):
        from .emulate import profile
        print(profile.markdown_table(summary["profile"]))


def cmd_report(args):
    from . import report
    if args.all_targets:
        rows = report.all_targets(args.folder, args.out, emulator=args.emulator, log=lambda m: print(m, flush=True))
        print()
        print(report.all_targets_table(rows))
        print(f"\nreports: {Path(args.out) / '<board>' / rows[0]['model'] / 'report.md'}; table: {Path(args.out) / 'all_targets.md'}")
        unfit = [r["target"] for r in rows if not r["fits"]]
        if unfit:
            from .errors import OverBudgetError
            raise OverBudgetError(f"the model does not fit {', '.join(unfit)} (reasons in the table above)")
        return
    r = report.make_report(args.folder, _target(args))
    print(report.budget_table(r))
    print(f"verdict: {r['verdict']}; ~{r['latency_ms_estimate']} ms per inference ({r['cycles_model']})")
    report.enforce_budget(r)


def quality(r: dict) -> str:
    """The model's headline quality on the host and on the emulated MCU, in one phrase."""
    task = r.get("task")
    if task is None:
        return f"int8 accuracy {r['int8_accuracy']:.3f} (float {r['float_accuracy']:.3f})"
    m, e = task["metric"], task["emulated_samples"]
    return (f"{m} float {task['float'][m]:.4f} / int8 {task['int8'][m]:.4f} (all held-out), "
            f"MCU {e['mcu'][m]:.4f} on its {e['n']} samples")


def cmd_deploy(args):
    from . import pipeline, report
    target = _target(args)
    kwargs = {k: v for k, v in (("rank", args.rank),) if v is not None}
    r = pipeline.deploy(target, args.model, Path(args.out), log=lambda m: print(m, flush=True),
                        seed=args.seed, quick=args.quick, **kwargs)
    folder = Path(args.out) / target.name / r["model"]
    print()
    print(f"{r['model']} on {target.name}: bit-exact {r['bit_exact']}, "
          f"{r['instructions_per_inference']:,} instructions/inference (~{r['latency_ms_estimate']} ms estimated), "
          + quality(r))
    print(report.budget_table(r))
    print(f"\nreport: {folder / 'report.md'}")
    report.enforce_budget(r)


def cmd_targets(args):
    rows = [("board", "core", "clock", "flash free/total", "RAM free/total", "reserved", "QEMU")]
    for name in known_targets():
        t = load_target(name)
        size = lambda n: f"{n // 1024}K" if n % 1024 == 0 else f"{n}B"  # noqa: E731
        reserved = ", ".join(f"{r.name} {size(r.flash_bytes)}/{size(r.ram_bytes)}" for r in t.reservations) or "-"
        emulator = f"{t.qemu_machine} ({t.qemu_cpu}{', placed' if t.is_placed else ''})"
        rows.append((name, t.core + ("F" if t.fpu else ""), f"{t.clock_hz / 1e6:.0f} MHz",
                     f"{t.app_flash.size // 1024}/{t.flash.size // 1024} KB", f"{t.app_ram.size // 1024}/{t.ram.size // 1024} KB",
                     reserved, emulator))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if args.verbose:
        for name in known_targets():
            print(f"\n{name}: {load_target(name).description}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinylr", description="Low-rank int8 models on Cortex-M: train, export, verify, generate C, build, emulate, report.")
    sub = p.add_subparsers(dest="command", required=True)

    def target_args(s):
        s.add_argument("--target", default="nrf52840", help="board folder under targets/ (see `tinylr targets`)")
        s.add_argument("--reserve", action="append", metavar="NAME=FLASH,RAM",
                       help="set a reservation, e.g. radio_stack=156K,23K (repeatable)")

    s = sub.add_parser("train", help="train a zoo model with factored layers")
    s.add_argument("--model", default="digits_mlp")
    s.add_argument("--rank", type=int)
    s.add_argument("--hidden", type=int)
    s.add_argument("--epochs", type=int, help="training epochs (default: the trainer's)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, default=Path("build/models/digits_mlp"))
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", help="checkpoint.pt or .onnx -> int8 .tflite")
    s.add_argument("source", type=Path)
    s.add_argument("--data", type=Path, required=True, help="dataset.npz (x_train is the calibration set)")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("verify", help="run the int8 model in the TFLite Micro interpreter; write reference.npz")
    s.add_argument("tflite", type=Path)
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--float-tflite", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("generate", help="int8 .tflite -> C sources (+ host bit-exactness check)")
    s.add_argument("tflite", type=Path)
    s.add_argument("--name", help="model name for C identifiers (default: from the file name)")
    s.add_argument("--reference", type=Path, help="reference.npz from `tinylr verify`: check the C on the host")
    s.add_argument("--variant", default="reference",
                   help="kernel variant under firmware_templates/kernels/ (default: the portable reference)")
    s.add_argument("--out", type=Path, required=True, help="folder; the C goes to OUT/src")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("build", help="generated C + harness -> firmware ELF for a board")
    s.add_argument("src", type=Path, help="the src folder written by `tinylr generate`")
    s.add_argument("--reference", type=Path, required=True, help="reference.npz: inputs to embed")
    s.add_argument("--count", type=int, default=16, help="number of test inputs to embed")
    s.add_argument("--out", type=Path, required=True)
    target_args(s)
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("emulate", help="run the firmware in QEMU; count instructions; profile layers; check outputs")
    s.add_argument("elf", type=Path)
    s.add_argument("--reference", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--emulator", choices=("qemu", "renode"), default="qemu",
                   help="qemu (default) or renode (needs `renode` on PATH and a platform in the board file)")
    target_args(s)
    s.set_defaults(func=cmd_emulate)

    s = sub.add_parser("report", help="budget report from a model's build folder (or one model on every board)")
    s.add_argument("folder", help="the model's build folder; with --all-targets also a zoo model name")
    s.add_argument("--all-targets", action="store_true",
                   help="build, emulate and report the model on every board into OUT/<board>/<model>/, then one table")
    s.add_argument("--out", default="build", help="with --all-targets: where the boards' folders go")
    s.add_argument("--emulator", choices=("qemu", "renode"), default="qemu")
    target_args(s)
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("deploy", help="every stage for one model and one board")
    s.add_argument("--model", default="lr_mpgnn", help="a zoo model (default: the MCU-sized LR-MPGNN power control)")
    s.add_argument("--rank", type=int)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="a small training budget (seconds), for smoke tests")
    s.add_argument("--out", default="build")
    target_args(s)
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("targets", help="list the boards and their budgets")
    s.add_argument("--verbose", "-v", action="store_true", help="also print each board's description")
    s.set_defaults(func=cmd_targets)

    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name.rpartition(".")[0]) and importlib.util.find_spec(name):
            importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except TinylrError as exc:
        print(f"tinylr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tinylr: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
