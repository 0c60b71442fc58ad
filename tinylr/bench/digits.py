"""The default model at several ranks and dense, side by side, through every stage."""

from __future__ import annotations

import time
from pathlib import Path

from .. import fsutil, pipeline
from ..targets import load_target

RANKS = (0, 4, 8, 16, 32)  # 0 = the dense baseline


def run(target_name: str, out_root: Path, ranks=RANKS) -> list[dict]:
    target = load_target(target_name)
    rows = []
    for rank in ranks:
        start = time.monotonic()
        r = pipeline.deploy(target, "digits_mlp", out_root / f"rank{rank}", log=lambda m: None, rank=rank)
        train = fsutil.read_json(out_root / f"rank{rank}" / target.name / "digits_mlp" / "train.json")
        rows.append({**r, "rank": rank, "params": train["params"], "dense_params": train["dense_params"],
                     "wall_seconds": round(time.monotonic() - start, 1)})
        print(f"rank {rank or 'dense'}: {r['instructions_per_inference']:,} instructions, "
              f"{r['flash_bytes']:,} B flash, bit-exact {r['bit_exact']}", flush=True)
    return rows


def section(out_root: Path, target_name: str = "nrf52840") -> str:
    return markdown(run(target_name, out_root / "digits"), target_name)


def markdown(rows: list[dict], target_name: str) -> str:
    dense = next((r for r in rows if r["rank"] == 0), rows[0])
    lines = [
        "## Factored vs dense, every stage (digits)",
        "",
        f"Target: {target_name} (emulated in QEMU with the tinylr plugin). Model: `digits_mlp`",
        "(64 -> hidden 128 -> 10 on scikit-learn digits; the hidden layer factored at the given rank, or dense).",
        "Every row ran train -> export -> verify -> generate -> build -> emulate -> report in this run.",
        "",
        "| rank | params | int8 acc | float acc | flash B | model const B | arena B (ours) | TFLM arena B | ours/TFLM | "
        "instr./inference | vs dense | est. ms | bit-exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rank'] or 'dense'} | {r['params']:,} | {100 * r['int8_accuracy']:.1f}% | {100 * r['float_accuracy']:.1f}% "
            f"| {r['flash_bytes']:,} | {r['model_const_bytes']:,} | {r['arena_bytes']:,} | {r['tflm_arena_bytes']:,} "
            f"| {r['arena_bytes'] / r['tflm_arena_bytes']:.2f} | {r['instructions_per_inference']:,} "
            f"| {r['instructions_per_inference'] / dense['instructions_per_inference']:.2f} | {r['latency_ms_estimate']} "
            f"| {r['bit_exact']} |")
    lines += [
        "",
        "- instructions: exact count between the markers around one invoke, the slowest of 16 test inputs.",
        "- est. ms: the timing model's cycle estimate (instruction classes, flash wait states; docs/timing.md) at the board's clock.",
        "- TFLM arena: `print_allocations` total of the tflite-micro Python interpreter (x86-64 host build) for the",
        "  same .tflite; it holds activations plus the interpreter's own per-op and per-tensor state.",
        f"- wall seconds per full pipeline run: {', '.join(str(r['wall_seconds']) for r in rows)} (orientation only).",
        "",
    ]
    return "\n".join(lines)
