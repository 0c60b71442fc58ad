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
    _print(pipeline.generate_stage(args.tflite, args.out, name, args.reference))


def cmd_build(args):
    from . import pipeline
    _print(pipeline.build_stage(_target(args), args.src, args.reference, args.out, args.count))


def cmd_emulate(args):
    from . import pipeline
    summary = pipeline.emulate_stage(_target(args), args.elf, args.reference, args.out)
    _print({k: summary[k] for k in ("bit_exact", "samples", "window_instructions", "peak_stack_bytes", "violation_count")})


def cmd_report(args):
    from . import report
    r = report.make_report(args.folder, _target(args))
    print(report.budget_table(r))
    report.enforce_budget(r)


def cmd_deploy(args):
    from . import pipeline, report
    target = _target(args)
    kwargs = {k: v for k, v in (("rank", args.rank),) if v is not None}
    r = pipeline.deploy(target, args.model, Path(args.out), log=lambda m: print(m, flush=True), **kwargs)
    folder = Path(args.out) / target.name / r["model"]
    print()
    print(f"{r['model']} on {target.name}: bit-exact {r['bit_exact']}, "
          f"{r['instructions_per_inference']:,} instructions/inference (~{r['latency_ms_estimate']} ms estimated), "
          f"int8 accuracy {r['int8_accuracy']:.3f} (float {r['float_accuracy']:.3f})")
    print(report.budget_table(r))
    print(f"\nreport: {folder / 'report.md'}")
    report.enforce_budget(r)


def cmd_targets(args):
    for name in known_targets():
        t = load_target(name)
        print(f"{name:12s} {t.core:11s} {t.clock_hz / 1e6:6.0f} MHz  flash {t.app_flash.size // 1024:5d}/{t.flash.size // 1024} KB  "
              f"RAM {t.app_ram.size // 1024:4d}/{t.ram.size // 1024} KB free  {t.description}")


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
    s.add_argument("--out", type=Path, required=True, help="folder; the C goes to OUT/src")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("build", help="generated C + harness -> firmware ELF for a board")
    s.add_argument("src", type=Path, help="the src folder written by `tinylr generate`")
    s.add_argument("--reference", type=Path, required=True, help="reference.npz: inputs to embed")
    s.add_argument("--count", type=int, default=16, help="number of test inputs to embed")
    s.add_argument("--out", type=Path, required=True)
    target_args(s)
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("emulate", help="run the firmware in QEMU; count instructions; check outputs")
    s.add_argument("elf", type=Path)
    s.add_argument("--reference", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    target_args(s)
    s.set_defaults(func=cmd_emulate)

    s = sub.add_parser("report", help="budget report from a model's build folder")
    s.add_argument("folder", type=Path)
    target_args(s)
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("deploy", help="every stage for one model and one board")
    s.add_argument("--model", default="digits_mlp")
    s.add_argument("--rank", type=int)
    s.add_argument("--out", default="build")
    target_args(s)
    s.set_defaults(func=cmd_deploy)

    s = sub.add_parser("targets", help="list the boards and their budgets")
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
