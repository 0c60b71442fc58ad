"""Stage 7, report: flash, RAM and latency against the board's budget beside its
reservations, plus the correctness verdicts of the earlier stages.

Reads the JSON each earlier stage left in the model's build folder; writes
`report.json` and `report.md` there. A model that does not fit gets its report
(with `fits: false`) and then an OverBudgetError naming the budget and the excess.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from . import fsutil, toolchain
from .errors import OverBudgetError, TinylrError
from .targets import Target

PACKAGES = ("torch", "tensorflow", "onnx", "onnx2tf", "tflite-micro", "numpy")


def tool_versions() -> dict:
    versions = {"python": platform.python_version(), "tinylr": metadata.version("tinylr")}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "gcc"):
        versions[tool] = toolchain.version(tool)
    return versions


def _load(folder: Path, name: str, stage: str) -> dict:
    path = folder / name
    if not path.is_file():
        raise TinylrError(f"{path} is missing; run `tinylr {stage}` for this model first (or `tinylr deploy`)")
    return fsutil.read_json(path)


def make_report(folder: str | Path, target: Target) -> dict:
    folder = Path(folder)
    build = _load(folder, "build.json", "build")
    emulation = _load(folder, "emulate.json", "emulate")
    host = _load(folder, "host_check.json", "generate")
    manifest = _load(folder / "src", "manifest.json", "generate")
    verify = _load(folder, "verify.json", "verify")

    flash_bytes = build["flash_bytes"]
    peak_stack = emulation["peak_stack_bytes"]
    ram_bytes = build["static_ram_bytes"] + peak_stack
    flash_budget, ram_budget = target.app_flash.size, target.app_ram.size
    windows = emulation["window_instructions"]
    instructions = max(windows) if windows else 0
    cycles = instructions * target.cycles_per_instruction
    report = {
        "target": target.name,
        "model": manifest["model"],
        "flash_bytes": flash_bytes,
        "ram_bytes": ram_bytes,
        "arena_bytes": manifest["arena_bytes"],
        "static_ram_bytes": build["static_ram_bytes"],
        "peak_stack_bytes": peak_stack,
        "tflm_arena_bytes": verify.get("tflm_arena_bytes"),
        "model_const_bytes": manifest["const_bytes"],
        "instructions_per_inference": instructions,
        "instructions_per_inference_min": min(windows) if windows else 0,
        "inferences_measured": len(windows),
        "cycles_per_instruction_assumed": target.cycles_per_instruction,
        "latency_ms_estimate": round(cycles / target.clock_hz * 1e3, 4),
        "latency_method": (
            f"exact instruction count of the slowest measured inference (QEMU TCG plugin) x "
            f"{target.cycles_per_instruction} assumed cycles/instruction / {target.clock_hz / 1e6:g} MHz; "
            f"timing source: {target.timing_source}"
        ),
        "flash_budget_bytes": flash_budget,
        "ram_budget_bytes": ram_budget,
        "reservations": {r.name: {"flash_bytes": r.flash_bytes, "ram_bytes": r.ram_bytes, "note": r.note}
                         for r in target.reservations},
        "fits": flash_bytes <= flash_budget and ram_bytes <= ram_budget,
        "bit_exact": bool(host["bit_exact"] and emulation["bit_exact"]),
        "bit_exact_host": host["bit_exact"],
        "bit_exact_emulator": emulation["bit_exact"],
        "host_samples": host["samples"],
        "emulator_samples": emulation["samples"],
        "memory_violations": emulation["violation_count"],
        "int8_accuracy": verify.get("int8_accuracy"),
        "float_accuracy": verify.get("float_accuracy"),
        "tool_versions": tool_versions(),
    }
    fsutil.write_json(folder / "report.json", report)
    fsutil.write_text(folder / "report.md", markdown(report))
    return report


def _pct(used: int, budget: int) -> str:
    return f"{100 * used / budget:.1f}%" if budget else "-"


def budget_table(r: dict) -> str:
    rows = [
        ("flash", f"{r['flash_bytes']:,} B", f"{r['flash_budget_bytes']:,} B", _pct(r["flash_bytes"], r["flash_budget_bytes"])),
        ("RAM", f"{r['ram_bytes']:,} B", f"{r['ram_budget_bytes']:,} B", _pct(r["ram_bytes"], r["ram_budget_bytes"])),
    ]
    lines = ["| budget | used | available | share |", "|---|---:|---:|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def markdown(r: dict) -> str:
    reserved = ", ".join(f"{n} ({v['flash_bytes']:,} B flash, {v['ram_bytes']:,} B RAM)" for n, v in r["reservations"].items())
    acc = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    return f"""# {r['model']} on {r['target']}

Verdict: **{'fits' if r['fits'] else 'DOES NOT FIT'}**, outputs **{'bit-exact' if r['bit_exact'] else 'NOT bit-exact'}** with the TFLite Micro reference.

Budget beside the reservations: {reserved or 'none'}.

{budget_table(r)}

RAM = .data + .bss ({r['static_ram_bytes']:,} B, of which the planned arena is {r['arena_bytes']:,} B) + peak stack ({r['peak_stack_bytes']:,} B, measured in the emulator).
TFLite Micro's interpreter needs an arena of {r['tflm_arena_bytes'] if r['tflm_arena_bytes'] is not None else 'n/a'} B for the same model (host build, `print_allocations`), before its own code and state.

| measure | value |
|---|---:|
| instructions per inference (exact) | {r['instructions_per_inference']:,} |
| latency estimate | {r['latency_ms_estimate']} ms |
| model constants (weights, biases, multipliers) | {r['model_const_bytes']:,} B |
| bit-exact on the host (ASan+UBSan build) | {r['bit_exact_host']} ({r['host_samples']} samples) |
| bit-exact in the emulator | {r['bit_exact_emulator']} ({r['emulator_samples']} samples) |
| memory accesses outside the board's regions | {r['memory_violations']} |
| int8 accuracy (TFLM) | {acc(r['int8_accuracy'])} |
| float accuracy | {acc(r['float_accuracy'])} |

Latency: {r['latency_method']}.

Tools: {', '.join(f'{k} {v}' for k, v in r['tool_versions'].items())}.
"""


def enforce_budget(r: dict) -> None:
    over = []
    if r["flash_bytes"] > r["flash_budget_bytes"]:
        over.append(f"flash {r['flash_bytes']:,} B > {r['flash_budget_bytes']:,} B by {r['flash_bytes'] - r['flash_budget_bytes']:,} B")
    if r["ram_bytes"] > r["ram_budget_bytes"]:
        over.append(f"RAM {r['ram_bytes']:,} B > {r['ram_budget_bytes']:,} B by {r['ram_bytes'] - r['ram_budget_bytes']:,} B")
    if over:
        raise OverBudgetError(
            f"{r['model']} does not fit {r['target']} beside its reservations: " + "; ".join(over)
            + " (shrink the model, e.g. a lower rank, or the reservations with --reserve)"
        )
