"""Per-layer and per-function profile of an emulated run, from the plugin's probes and
per-instruction histogram.

Layers: the harness calls the model's invoke between the two marker functions; invoke
calls one kernel per op. The plugin logs its counters (instructions, cycle estimate,
flash misses) at the entry of invoke and at the return address of each call inside it,
found here by disassembling invoke; nothing in the generated code changes. The
difference between consecutive logs is one layer (its argument set-up included), so the
layers and the two overhead rows (harness markers and call, invoke's own prologue and
epilogue) add up to the marker window exactly.

Functions: the histogram holds every executed address with its count; each address
belongs to one function of the ELF's symbol table.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..errors import TinylrError
from ..targets import Target
from .timing import CENTI, Cost, Program, flash_penalty

PROBE_BEGIN, PROBE_END, PROBE_INVOKE = 0, 1, 2  # 0 and 1 are the plugin's marker windows
FIRST_CALL_PROBE = 3
HARNESS_ROW = "(harness: marker and call into invoke)"
EPILOGUE_ROW = "(invoke: set-up between calls, return, marker)"


@dataclass(frozen=True)
class CallSite:
    probe_id: int
    address: int         # of the call instruction
    return_address: int  # where the probe sits
    callee: str | None   # None for an indirect call


@dataclass(frozen=True)
class ProfilePlan:
    invoke: str
    invoke_entry: int
    calls: tuple[CallSite, ...]
    tail_call: str | None  # a kernel invoke branches to instead of calling (last op)

    def probes(self) -> list[tuple[int, int]]:
        return [(self.invoke_entry, PROBE_INVOKE)] + [(c.return_address, c.probe_id) for c in self.calls]


def find_invoke(program: Program) -> str:
    """The function `main` calls between tinylr_marker_begin() and tinylr_marker_end()."""
    begin, _ = program.function("tinylr_marker_begin")
    end, _ = program.function("tinylr_marker_end")
    seen_begin = False
    for insn in program.body("main"):
        if insn.cls != "call" or insn.target is None:
            continue
        if insn.target == begin:
            seen_begin = True
        elif seen_begin and insn.target != end:
            name = program.function_at(insn.target)
            if name:
                return name
    raise TinylrError("cannot find the model's invoke between the marker calls in main; build the firmware with `tinylr build`")


def plan_profile(program: Program, invoke: str | None = None) -> ProfilePlan:
    invoke = invoke or find_invoke(program)
    start, end = program.function(invoke)
    calls, tail = [], None
    body = program.body(invoke)
    for insn in body:
        if insn.cls == "call" or (insn.name == "BLX" and insn.control):
            callee = program.function_at(insn.target) if insn.target is not None else None
            calls.append(CallSite(FIRST_CALL_PROBE + len(calls), insn.address, insn.address + insn.size, callee))
        elif insn.name == "B" and not insn.conditional and insn.target is not None and not start <= insn.target < end:
            tail = program.function_at(insn.target)
    return ProfilePlan(invoke, start, tuple(calls), tail)


def label_calls(calls: tuple[CallSite, ...], ops: list[str] | None) -> list[str]:
    """'op 0 FULLY_CONNECTED (tinylr_fully_connected)': calls matched to the manifest's
    ops in order; an op without a call (folded away, e.g. RESHAPE) is skipped."""
    labels, j = [], 0
    ops = list(ops or [])
    for call in calls:
        callee = call.callee or "indirect call"
        match = next((k for k in range(j, len(ops)) if _kernel_of(ops[k], callee)), None)
        if match is not None:
            labels.append(f"op {match} {ops[match]} ({callee})")
            j = match + 1
        else:
            labels.append(f"call {callee}")
    return labels


def _kernel_of(op: str, callee: str) -> bool:
    """Is `callee` the kernel of `op`? tinylr_conv_2d (and tinylr_conv_2d_<variant>) is
    CONV_2D's, not DEPTHWISE_CONV_2D's; other names match when they contain the op."""
    op, callee = op.lower(), callee.lower()
    if callee.startswith("tinylr_"):
        return callee == f"tinylr_{op}" or callee.startswith(f"tinylr_{op}_")
    return op in callee


def split_windows(records: list[list[int]]) -> list[list[list[int]]]:
    """The probe log cut into marker windows: each from a begin record to its end record."""
    windows, current = [], None
    for record in records:
        if record[0] == PROBE_BEGIN:
            current = [record]
        elif current is not None:
            current.append(record)
            if record[0] == PROBE_END:
                windows.append(current)
                current = None
    return windows


def window_rows(window: list[list[int]], plan: ProfilePlan, labels: list[str], target: Target) -> list[dict]:
    """One row per call site of invoke (in address order), then the overhead rows; they
    add up to the window. A call site that runs more than once (a loop in invoke) is one
    row with its calls counted."""
    epilogue = f"{EPILOGUE_ROW[:-1]}, tail call {plan.tail_call})" if plan.tail_call else EPILOGUE_ROW
    names = {PROBE_INVOKE: HARNESS_ROW, PROBE_END: epilogue, **{c.probe_id: label for c, label in zip(plan.calls, labels)}}
    order = [PROBE_INVOKE, *(c.probe_id for c in plan.calls), PROBE_END]
    rows: dict[int, list[float]] = {}
    for prev, cur in zip(window, window[1:]):
        probe = cur[0] if cur[0] in names else PROBE_END
        acc = rows.setdefault(probe, [0, 0, 0, 0, 0])
        acc[0] += 1 if probe != PROBE_END else 0
        for i, (a, b) in enumerate(zip(prev[1:], cur[1:])):
            acc[i + 1] += b - a
    out = []
    for probe in order:
        if probe not in rows:
            continue
        calls, instructions, centi, fmiss, dmiss = rows[probe]
        cycles = centi / CENTI + flash_penalty(target, fmiss, dmiss)
        out.append({
            "name": names[probe], "calls": int(calls), "instructions": int(instructions), "cycles": round(cycles, 2),
            "ms": round(cycles / target.clock_hz * 1e3, 6), "flash_misses": int(fmiss + dmiss),
            "overhead": probe in (PROBE_INVOKE, PROBE_END),
        })
    return out


def function_table(histogram: list[list[int]], program: Program, costs: dict[int, Cost], target: Target,
                   top: int = 12) -> list[dict]:
    """Whole run: instructions and estimated cycles per function of the ELF."""
    starts = [f[0] for f in program.functions]
    per: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    ws = target.flash_timing.wait_states if target.flash_timing else 0
    for pc, count, taken, dmiss, fmiss in histogram:
        i = bisect_right(starts, pc) - 1
        name = program.functions[i][2] if i >= 0 and pc < program.functions[i][1] else "(outside the ELF's functions)"
        cost = costs.get(pc, Cost(1.0, 0.0))
        per[name][0] += count
        per[name][1] += count * cost.base + taken * cost.taken + (dmiss + fmiss) * ws
    total = sum(v[0] for v in per.values()) or 1
    rows = [{"function": name, "instructions": int(v[0]), "cycles": round(v[1], 1), "share": round(v[0] / total, 4)}
            for name, v in sorted(per.items(), key=lambda kv: -kv[1][0])]
    return rows[:top]


def instruction_mix(histogram: list[list[int]], program: Program) -> dict[str, int]:
    """Executed instructions per timing class over the whole run."""
    mix: dict[str, int] = defaultdict(int)
    for pc, count, *_ in histogram:
        insn = program.instructions.get(pc)
        mix[insn.cls if insn else "unknown"] += count
    return dict(sorted(mix.items(), key=lambda kv: -kv[1]))


def histogram_cycles_centi(histogram: list[list[int]], costs: dict[int, Cost], outside: int) -> int:
    """The cycle counter the plugin should have reached (a consistency check)."""
    total = outside * CENTI
    for pc, count, taken, *_ in histogram:
        cost = costs.get(pc, Cost(1.0, 0.0))
        total += count * round(cost.base * CENTI) + taken * round(cost.taken * CENTI)
    return total


def analyze(stats: dict, plan: ProfilePlan, program: Program, costs: dict[int, Cost], target: Target,
            ops: list[str] | None = None) -> dict:
    """Cycle estimates per window, the per-layer profile of the slowest inference, the
    busiest functions and the instruction mix of the whole run."""
    windows = split_windows(stats["probes"])
    labels = label_calls(plan.calls, ops)
    window_cycles = [round(w[-1][2] / CENTI - w[0][2] / CENTI + flash_penalty(
        target, w[-1][3] - w[0][3], w[-1][4] - w[0][4]), 2) for w in windows]
    slowest = max(range(len(windows)), key=lambda i: (windows[i][-1][1] - windows[i][0][1], -i), default=None)
    layers = window_rows(windows[slowest], plan, labels, target) if slowest is not None else []
    return {
        "invoke": plan.invoke,
        "window_cycles": window_cycles,
        "window_flash_misses": [(w[-1][3] - w[0][3]) + (w[-1][4] - w[0][4]) for w in windows],
        "slowest_window": slowest,
        "layers": layers,
        "functions": function_table(stats["histogram"], program, costs, target),
        "mix": instruction_mix(stats["histogram"], program),
        "core_table": target.core_table,
        "clock_hz": target.clock_hz,
        "fetch_misses": stats["fetch_misses"],
        "data_misses": stats["data_misses"],
        "flash_reads": stats["flash_reads"],
        # both pairs must be equal: the histogram accounts for every counted instruction and cycle
        "check": {
            "instructions": stats["instructions"],
            "histogram_instructions": sum(h[1] for h in stats["histogram"]) + stats["hist_outside"],
            "cycles_centi": stats["cycles_centi"],
            "histogram_cycles_centi": histogram_cycles_centi(stats["histogram"], costs, stats["hist_outside"]),
        },
    }


def markdown_table(profile: dict) -> str:
    rows = profile["layers"]
    total_i = sum(r["instructions"] for r in rows) or 1
    lines = ["| layer | calls | instructions (exact) | share | est. cycles | est. ms | flash misses |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['calls']} | {r['instructions']:,} | {100 * r['instructions'] / total_i:.1f}% | "
                     f"{r['cycles']:,.0f} | {r['ms']:.4f} | {r['flash_misses']:,} |")
    lines.append(f"| **total (one inference)** | | **{sum(r['instructions'] for r in rows):,}** | 100% | "
                 f"**{sum(r['cycles'] for r in rows):,.0f}** | **{sum(r['ms'] for r in rows):.4f}** | "
                 f"{sum(r['flash_misses'] for r in rows):,} |")
    return "\n".join(lines)


def render_png(profile: dict, path: Path, title: str) -> Path:
    """Horizontal bars: estimated cycles per layer, instructions written beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = profile["layers"]
    names = [r["name"] for r in rows][::-1]
    cycles = [r["cycles"] for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6))
    bars = ax.barh(names, cycles, color=["#b0b0b0" if r["overhead"] else "#3a78b5" for r in rows][::-1])
    for bar, r in zip(bars, rows[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['instructions']:,} instr, {r['ms']:.3f} ms",
                va="center", fontsize=8)
    ax.set_xlabel("estimated cycles per inference (bars); exact instructions (labels)")
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.35)
    fig.tight_layout()
    from .. import fsutil

    with fsutil.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
