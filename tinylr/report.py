"""Stage 7, report: flash, RAM and latency against the board's budget beside its
reservations, plus the correctness verdicts of the earlier stages.

Reads the JSON each earlier stage left in the model's build folder (and the linker map
the build wrote); writes `report.json`, `report.md` and `report.png` there. Flash and
RAM are split by section and by owner (model weights, model code, harness, test inputs,
libc); latency is the cycle estimate of the timing model (docs/timing.md) at the board's
clock, with the flat cycles-per-instruction of the board as the fallback when the
emulation recorded no estimate. A model that does not fit gets its report (with
`fits: false` and the reasons) and then an OverBudgetError naming the budget and the
excess. `all_targets` runs one model through build, emulate and report on every board.
"""

from __future__ import annotations

import platform
import re
import shutil
from importlib import metadata
from pathlib import Path

from . import fsutil, toolchain
from .build import parse_map
from .errors import OverBudgetError, TinylrError
from .targets import Target, known_targets, load_target

PACKAGES = ("torch", "tensorflow", "onnx", "onnx2tf", "tflite-micro", "numpy", "capstone")
RAM_ONLY = {".bss", ".noinit", ".heap", ".stack"}
OWNERS_FLASH = ("model weights and parameters", "model code (kernels, invoke)", "harness (startup, semihosting, main)",
                "test inputs (harness only)", "libc, libgcc", "padding")
OWNERS_RAM = ("model arena and state", "harness (startup, semihosting, main)", "libc, libgcc", "padding")


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


def owner_of(file: str, section: str) -> str:
    """Who put an input section into the image, from the object or archive it came from."""
    if file in ("*fill*", "linker stubs"):
        return "padding"
    if re.search(r"\.a\([^)]*\)$", file) or file.endswith(".a"):
        return "libc, libgcc"
    m = re.search(r"/obj/(model|harness)/([^/]+)\.o$", file)
    if m is None:
        return "padding"
    if m.group(1) == "model":
        if section.startswith(".text"):
            return "model code (kernels, invoke)"
        return "model weights and parameters"
    return "test inputs (harness only)" if m.group(2) == "test_vectors" else "harness (startup, semihosting, main)"


def memory_by_owner(map_file: Path, sections: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(flash by owner, static RAM by owner) from the linker map; an output section's
    bytes that no input section claims (alignment) count as padding, so both add up to
    the ELF's section sizes."""
    parsed = parse_map(map_file)
    flash = dict.fromkeys(OWNERS_FLASH, 0)
    ram = dict.fromkeys(OWNERS_RAM, 0)
    for name, size in sections.items():
        inputs = parsed.get(name, [])
        claimed = 0
        for section, nbytes, file in inputs:
            owner = owner_of(file, section)
            claimed += nbytes
            if name not in RAM_ONLY:
                flash[owner if owner in flash else "padding"] += nbytes
            if name in RAM_ONLY or name == ".data":
                ram_owner = "model arena and state" if owner.startswith("model") else owner
                ram[ram_owner if ram_owner in ram else "harness (startup, semihosting, main)"] += nbytes
        rest = max(size - claimed, 0)
        if name not in RAM_ONLY:
            flash["padding"] += rest
        if name in RAM_ONLY or name == ".data":
            ram["padding"] += rest
    return flash, ram


def _latency(target: Target, emulation: dict, windows: list[int]) -> dict:
    """Cycles of the slowest measured inference from the timing model, or the flat
    cycles-per-instruction fallback when the emulation has no estimate."""
    instructions = max(windows) if windows else 0
    estimates = emulation.get("window_cycles") or []
    if estimates and len(estimates) == len(windows):
        slowest = max(range(len(windows)), key=lambda i: (windows[i], -i))
        cycles = estimates[slowest]
        profile = emulation.get("profile") or {}
        method = (f"cycle estimate of the slowest measured inference: the {profile.get('core_table', target.core_table)} "
                  f"timing table applied to each executed instruction plus {target.flash_timing.wait_states} wait states "
                  f"per flash line miss (docs/timing.md), at {target.clock_hz / 1e6:g} MHz; the instruction count itself is exact")
        return {"cycles": cycles, "first": estimates[0], "method": method, "model": "timing table"}
    cycles = instructions * target.cycles_per_instruction
    method = (f"exact instruction count of the slowest measured inference (QEMU TCG plugin) x "
              f"{target.cycles_per_instruction} assumed cycles/instruction / {target.clock_hz / 1e6:g} MHz; "
              f"timing source: {target.timing_source}")
    return {"cycles": cycles, "first": cycles, "method": method, "model": "flat cycles per instruction (fallback)"}


def make_report(folder: str | Path, target: Target, model_dir: str | Path | None = None) -> dict:
    """Write report.json/.md/.png for the build in `folder`; `model_dir` holds the
    generate/verify outputs when they are not in `folder` (see all_targets)."""
    folder = Path(folder)
    model_dir = Path(model_dir) if model_dir is not None else folder
    fsutil.remove_stale(folder / "report.png")
    build = _load(folder, "build.json", "build")
    emulation = _load(folder, "emulate.json", "emulate")
    host = _load(model_dir, "host_check.json", "generate")
    manifest = _load(model_dir / "src", "manifest.json", "generate")
    verify = _load(model_dir, "verify.json", "verify")
    task = fsutil.read_json(model_dir / "task.json") if (model_dir / "task.json").is_file() else None
    classification = task is None or task["task"] == "classification"

    flash_bytes = build["flash_bytes"]
    peak_stack = emulation["peak_stack_bytes"]
    ram_bytes = build["static_ram_bytes"] + peak_stack
    flash_budget, ram_budget = target.app_flash.size, target.app_ram.size
    windows = emulation["window_instructions"]
    instructions = max(windows) if windows else 0
    latency = _latency(target, emulation, windows)
    map_file = build.get("map_file")
    flash_owner, ram_owner = ({}, {})
    if map_file and Path(map_file).is_file():
        flash_owner, ram_owner = memory_by_owner(Path(map_file), build.get("sections", {}))
    if ram_owner:
        ram_owner = {**ram_owner, "peak stack (measured)": peak_stack}
    report = {
        "target": target.name,
        "model": manifest["model"],
        "core": target.core,
        "clock_hz": target.clock_hz,
        "flash_bytes": flash_bytes,
        "ram_bytes": ram_bytes,
        "arena_bytes": manifest["arena_bytes"],
        "static_ram_bytes": build["static_ram_bytes"],
        "peak_stack_bytes": peak_stack,
        "tflm_arena_bytes": verify.get("tflm_arena_bytes"),
        "model_const_bytes": manifest["const_bytes"],
        "flash_by_section": {k: v for k, v in build.get("sections", {}).items() if v},
        "flash_by_owner": flash_owner,
        "ram_by_owner": ram_owner,
        "instructions_per_inference": instructions,
        "instructions_per_inference_min": min(windows) if windows else 0,
        "inferences_measured": len(windows),
        "cycles_per_inference_estimate": round(latency["cycles"], 1),
        "cycles_model": latency["model"],
        "cycles_per_instruction_assumed": target.cycles_per_instruction,
        "latency_ms_estimate": round(latency["cycles"] / target.clock_hz * 1e3, 4),
        "latency_ms_first_inference": round(latency["first"] / target.clock_hz * 1e3, 4),
        "latency_method": latency["method"],
        "profile": (emulation.get("profile") or {}).get("layers", []),
        "flash_budget_bytes": flash_budget,
        "ram_budget_bytes": ram_budget,
        "reservations": {r.name: {"flash_bytes": r.flash_bytes, "ram_bytes": r.ram_bytes, "position": r.position,
                                  "note": r.note} for r in target.reservations},
        "fits": flash_bytes <= flash_budget and ram_bytes <= ram_budget,
        "bit_exact": bool(host["bit_exact"] and emulation["bit_exact"]),
        "bit_exact_host": host["bit_exact"],
        "bit_exact_emulator": emulation["bit_exact"],
        "host_samples": host["samples"],
        "emulator_samples": emulation["samples"],
        "memory_violations": emulation["violation_count"],
        "emulated_on": f"QEMU {target.qemu_machine} ({target.qemu_cpu})"
                       + (f"; {target.placement.note}" if target.is_placed and target.placement.note else ""),
        # argmax accuracy means something only for classifiers; other tasks report in `task`
        "int8_accuracy": verify.get("int8_accuracy") if classification else None,
        "float_accuracy": verify.get("float_accuracy") if classification else None,
        "task": task,
        "tool_versions": tool_versions(),
    }
    report["verdict"], report["reasons"] = verdict(report)
    if flash_owner:
        render_png(report, target, folder / "report.png")
        report["png"] = "report.png"
    fsutil.write_json(folder / "report.json", report)
    fsutil.write_text(folder / "report.md", markdown(report))
    return report


def _task_table(task: dict | None) -> str:
    """The model's own quality measure: float, int8 on TFLM, and the emulated firmware."""
    if not task:
        return ""
    metric = task["metric"]
    fmt = lambda d: f"{d[metric]:.4f} ({d['n']} samples)"  # noqa: E731
    e = task["emulated_samples"]
    return f"""
## Task quality: {task['task'].replace('_', ' ')} ({metric})

| model | all held-out samples | the {e['n']} samples run on the emulated MCU |
|---|---:|---:|
| float (PyTorch) | {fmt(task['float'])} | {fmt(e['float'])} |
| int8 (TFLite Micro) | {fmt(task['int8'])} | {fmt(e['int8'])} |
| generated C on the emulated MCU | | {fmt(e['mcu'])} |
"""


def verdict(r: dict) -> tuple[str, list[str]]:
    """'fits' or 'does not fit' (budgets), qualified by the correctness checks; every
    reason is a sentence a firmware engineer can act on."""
    reasons = []
    for what, used, budget in (("flash", r["flash_bytes"], r["flash_budget_bytes"]), ("RAM", r["ram_bytes"], r["ram_budget_bytes"])):
        if used > budget:
            reasons.append(f"{what} {used:,} B > {budget:,} B left beside the reservations, by {used - budget:,} B")
        else:
            reasons.append(f"{what} {used:,} B of {budget:,} B ({_pct(used, budget)}) left beside the reservations")
    if not r["bit_exact"]:
        reasons.append("outputs are NOT bit-exact with TFLite Micro (host: "
                       f"{r['bit_exact_host']}, emulator: {r['bit_exact_emulator']})")
    if r["memory_violations"]:
        reasons.append(f"{r['memory_violations']} memory accesses outside the board's regions")
    reasons.append(f"{r['latency_ms_estimate']} ms per inference estimated at {r['clock_hz'] / 1e6:g} MHz "
                   f"({r['instructions_per_inference']:,} instructions, exact)")
    ok = r["fits"] and r["bit_exact"] and not r["memory_violations"]
    if not r["fits"]:
        return "does not fit", reasons
    return ("fits" if ok else "fits, but fails its checks"), reasons


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


def _owner_table(title: str, owners: dict[str, int]) -> str:
    total = sum(owners.values()) or 1
    lines = [f"| {title} | bytes | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:,} | {100 * v / total:.1f}% |" for k, v in owners.items() if v]
    lines.append(f"| **total** | **{sum(owners.values()):,}** | |")
    return "\n".join(lines)


def _profile_table(rows: list[dict]) -> str:
    if not rows:
        return "(no per-layer profile: the emulation recorded none)"
    total = sum(r["instructions"] for r in rows) or 1
    lines = ["| layer | calls | instructions (exact) | share | est. cycles | est. ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r.get('calls', '')} | {r['instructions']:,} | {100 * r['instructions'] / total:.1f}% "
                     f"| {r['cycles']:,.0f} | {r['ms']:.4f} |")
    lines.append(f"| **total** | | **{sum(r['instructions'] for r in rows):,}** | 100% | "
                 f"**{sum(r['cycles'] for r in rows):,.0f}** | **{sum(r['ms'] for r in rows):.4f}** |")
    return "\n".join(lines)


def markdown(r: dict) -> str:
    reserved = ", ".join(f"{n} ({v['flash_bytes']:,} B flash, {v['ram_bytes']:,} B RAM)" for n, v in r["reservations"].items())
    acc = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    sections = ", ".join(f"{k} {v:,} B" for k, v in r.get("flash_by_section", {}).items())
    owners = ""
    if r.get("flash_by_owner"):
        owners = (f"\n{_owner_table('flash by owner', r['flash_by_owner'])}\n\n"
                  f"{_owner_table('RAM by owner', r['ram_by_owner'])}\n\n![budget](report.png)\n")
    reasons = "\n".join(f"- {x}" for x in r.get("reasons", []))
    return f"""# {r['model']} on {r['target']}

Verdict: **{r.get('verdict', 'fits' if r['fits'] else 'does not fit')}**, outputs **{'bit-exact' if r['bit_exact'] else 'NOT bit-exact'}** with the TFLite Micro reference.

{reasons}

Budget beside the reservations: {reserved or 'none'}.

{budget_table(r)}

RAM = .data + .bss ({r['static_ram_bytes']:,} B, of which the planned arena is {r['arena_bytes']:,} B) + peak stack ({r['peak_stack_bytes']:,} B, measured in the emulator).
TFLite Micro's interpreter needs an arena of {r['tflm_arena_bytes'] if r['tflm_arena_bytes'] is not None else 'n/a'} B for the same model (host build, `print_allocations`), before its own code and state.
Flash by section: {sections or 'n/a'}.
{owners}
## Time per inference

| measure | value |
|---|---:|
| instructions per inference (exact, slowest of {r['inferences_measured']}) | {r['instructions_per_inference']:,} |
| cycles per inference (estimate, {r.get('cycles_model', '')}) | {r.get('cycles_per_inference_estimate', 0):,.0f} |
| latency estimate at {r.get('clock_hz', 0) / 1e6:g} MHz | {r['latency_ms_estimate']} ms |
| first inference (cold caches) | {r.get('latency_ms_first_inference', r['latency_ms_estimate'])} ms |

Latency: {r['latency_method']}.

### Per layer (one inference; the rows add up to the exact count)

{_profile_table(r.get('profile', []))}

## Checks

| measure | value |
|---|---:|
| model constants (weights, biases, multipliers) | {r['model_const_bytes']:,} B |
| bit-exact on the host (ASan+UBSan build) | {r['bit_exact_host']} ({r['host_samples']} samples) |
| bit-exact in the emulator | {r['bit_exact_emulator']} ({r['emulator_samples']} samples) |
| memory accesses outside the board's regions | {r['memory_violations']} |
| int8 accuracy (TFLM) | {acc(r['int8_accuracy'])} |
| float accuracy | {acc(r['float_accuracy'])} |
{_task_table(r.get('task'))}
Emulated on {r.get('emulated_on', 'QEMU')}.
Tools: {', '.join(f'{k} {v}' for k, v in r['tool_versions'].items())}.
"""


def render_png(r: dict, target: Target, path: Path) -> Path:
    """Per memory, two bars: the whole device (reservations, what the image uses, what
    is left), and the image alone split by owner (RAM: with the measured peak stack)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = ["#3a78b5", "#e08a2c", "#5aa05a", "#c9c35a", "#8c6bb1", "#bbbbbb", "#d05050"]
    fig, axes = plt.subplots(4, 1, figsize=(10, 5.2), gridspec_kw={"hspace": 1.1})
    memories = (("flash", target.flash.size, r["flash_by_owner"], r["flash_bytes"], r["flash_budget_bytes"]),
                ("RAM", target.ram.size, r["ram_by_owner"], r["ram_bytes"], r["ram_budget_bytes"]))
    for (device_ax, image_ax), (what, total, owners, used, budget) in zip(zip(axes[::2], axes[1::2]), memories):
        kind = "flash" if what == "flash" else "ram"
        at_end = sum(getattr(res, f"{kind}_bytes") for res in target.reservations if res.position == "end")
        left, right = 0, total - at_end
        for res in target.reservations:
            size = getattr(res, f"{kind}_bytes")
            if not size:
                continue
            x = left if res.position == "start" else right
            device_ax.barh(0, size, left=x, color="#dddddd", hatch="//", edgecolor="#999999")
            if size > 0.06 * total:
                device_ax.text(x + size / 2, 0, res.name, ha="center", va="center", fontsize=7)
            if res.position == "start":
                left += size
            else:
                right += size
        device_ax.barh(0, used, left=left, color="#d05050" if used > budget else "#3a78b5")
        device_ax.barh(0, max(total - at_end - left - used, 0), left=left + used, color="white", edgecolor="#999999")
        device_ax.set_xlim(0, total)
        device_ax.set_yticks([])
        device_ax.set_title(f"{what} of the device ({total:,} B): reservations (hatched), this image "
                            f"{used:,} B = {_pct(used, budget)} of the {budget:,} B left", fontsize=8, loc="left")
        x = 0
        for i, (owner, size) in enumerate((k, v) for k, v in owners.items() if v):
            image_ax.barh(0, size, left=x, color=palette[i % len(palette)], label=f"{owner}: {size:,} B")
            x += size
        image_ax.set_xlim(0, max(x, 1))
        image_ax.set_yticks([])
        image_ax.set_title(f"the image's {what} by owner", fontsize=8, loc="left")
        image_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.6), frameon=False)
    fig.suptitle(f"{r['model']} on {r['target']}: {r['verdict']}, ~{r['latency_ms_estimate']} ms per inference", fontsize=10)
    fig.subplots_adjust(left=0.03, right=0.66, top=0.88, bottom=0.06)
    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


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


def prepare_model(source: str | Path, out_root: Path, log=print) -> Path:
    """A folder with src/ (generated C), reference.npz, verify.json and host_check.json:
    `source` itself when it is one, else a zoo model name run through train, export,
    verify and generate into out_root/models/<name>/."""
    source_path = Path(source)
    if source_path.is_dir():
        missing = [n for n in ("src/manifest.json", "reference.npz", "verify.json", "host_check.json")
                   if not (source_path / n).is_file()]
        if missing:
            raise TinylrError(f"{source_path} lacks {', '.join(missing)}; give a model folder written by "
                              "`tinylr deploy` (or verify + generate), or a zoo model name")
        return source_path
    from . import export, pipeline, train, verify, zoo

    name = str(source)
    if name not in zoo.names():
        raise TinylrError(f"{name!r} is neither a model folder nor a zoo model ({', '.join(zoo.names())})")
    folder = out_root / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    log(f"[{name}] train, export, verify, generate -> {folder}")
    train.train(name, folder)
    export.export(folder / "checkpoint.pt", folder, data=folder / "dataset.npz")
    verify.verify(folder / "model_int8.tflite", folder, data=folder / "dataset.npz", float_tflite=folder / "model_float.tflite")
    pipeline.generate_stage(folder / "model_int8.tflite", folder, name, folder / "reference.npz")
    return folder


def all_targets(source: str | Path, out_root: str | Path = "build", targets: list[str] | None = None,
                emulator: str = "qemu", log=print) -> list[dict]:
    """One model on every board: build, emulate and report per board into
    out_root/<board>/<model>/, then all_targets.md/.json in out_root. A board the model
    does not fit gets a row with the reason instead of a report."""
    from . import pipeline

    out_root = Path(out_root)
    model_dir = prepare_model(source, out_root, log)
    model = fsutil.read_json(model_dir / "src" / "manifest.json")["model"]
    rows = []
    for name in targets or known_targets():
        target = load_target(name)
        folder = out_root / name / model
        folder.mkdir(parents=True, exist_ok=True)
        fsutil.remove_stale(folder / "report.json", folder / "report.md")
        if folder.resolve() != model_dir.resolve():  # each board's folder can be reported on its own later
            for item in ("verify.json", "host_check.json"):
                shutil.copy(model_dir / item, folder / item)
            with fsutil.atomic_path(folder / "src") as src:
                shutil.copytree(model_dir / "src", src)
        try:
            pipeline.build_stage(target, folder / "src", model_dir / "reference.npz", folder)
            pipeline.emulate_stage(target, folder / "firmware.elf", model_dir / "reference.npz", folder, emulator=emulator)
            r = make_report(folder, target)
        except OverBudgetError as exc:
            r = {"target": name, "model": model, "core": target.core, "clock_hz": target.clock_hz, "fits": False,
                 "verdict": "does not fit", "reasons": [str(exc)], "flash_budget_bytes": target.app_flash.size,
                 "ram_budget_bytes": target.app_ram.size}
        log(f"[{name}] {r['verdict']}")
        rows.append(r)
    fsutil.write_json(out_root / "all_targets.json", rows)
    fsutil.write_text(out_root / "all_targets.md", f"# {model} on every board\n\n{all_targets_table(rows)}\n")
    return rows


def all_targets_table(rows: list[dict]) -> str:
    lines = ["| board | core | MHz | flash used / budget | RAM used / budget | instructions | est. cycles | est. ms | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "flash_bytes" not in r:
            lines.append(f"| {r['target']} | {r['core']} | {r['clock_hz'] / 1e6:g} | - / {r['flash_budget_bytes']:,} | "
                         f"- / {r['ram_budget_bytes']:,} | - | - | - | {r['verdict']}: {r['reasons'][0]} |")
            continue
        lines.append(
            f"| {r['target']} | {r['core']} | {r['clock_hz'] / 1e6:g} | {r['flash_bytes']:,} / {r['flash_budget_bytes']:,} | "
            f"{r['ram_bytes']:,} / {r['ram_budget_bytes']:,} | {r['instructions_per_inference']:,} | "
            f"{r['cycles_per_inference_estimate']:,.0f} | {r['latency_ms_estimate']:.4f} | {r['verdict']} |")
    return "\n".join(lines)
