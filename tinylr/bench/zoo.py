"""The generator on every zoo model: memory against TFLM, flash against the weights,
instructions per inference on the Cortex-M4, bit-exactness.

Random weights (tinylr.zoo.checkpoint): they change neither graph nor sizes nor
instruction counts (the kernels have no data-dependent paths beyond clamps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import fsutil, ir, pipeline, zoo
from ..targets import load_target
from ..zoo.checkpoint import random_checkpoint
from ..zoo.stats import count

MODELS = ("ad_autoencoder", "kws_dscnn", "resnet8", "vww_mobilenet", "digits_mlp")
# TFLM (commit 90b983c2, arm-none-eabi-gcc 12.2) on the same QEMU Cortex-M4 with an
# instruction-counting plugin, official MLPerf Tiny int8 models: instructions per
# inference with its reference kernels / with CMSIS-NN (shared/notes/toolchain-facts.md).
TFLM_INSTRUCTIONS = {
    "kws_dscnn": (43.0e6, 7.70e6),
    "vww_mobilenet": (100.3e6, 24.1e6),
    "resnet8": (107.4e6, 29.9e6),
    "ad_autoencoder": (1.95e6, 0.58e6),
}
VECTORS = 4


def weight_bytes(graph: ir.Graph) -> int:
    """Raw bytes of the model's constant tensors (weights, biases) in the .tflite."""
    return sum(t.nbytes for t in graph.tensors if t.is_constant)


def measure(name: str, folder: Path, target_name: str) -> dict:
    from ..export import export
    from ..verify import verify

    folder.mkdir(parents=True, exist_ok=True)
    target = load_target(target_name)
    checkpoint, dataset = random_checkpoint(name, folder)
    export(checkpoint, folder, data=dataset)
    verified = verify(folder / "model_int8.tflite", folder, data=dataset)
    runs = {}
    for variant in dict.fromkeys(("reference", target.kernel_variant)):  # the board's own variant too
        out = folder / variant
        generated = pipeline.generate_stage(folder / "model_int8.tflite", out, name, folder / "reference.npz", variant)
        built = pipeline.build_stage(target, out / "src", folder / "reference.npz", out, VECTORS)
        emulated = pipeline.emulate_stage(target, out / "firmware.elf", folder / "reference.npz", out)
        runs[variant] = (generated, built, emulated)
    generated, built, emulated = runs["reference"]
    best = runs[target.kernel_variant]
    graph = ir.load(folder / "model_int8.tflite")
    entry = zoo.get(name)
    stats = count(entry.build(), entry.input_shape)
    manifest = generated["manifest"]
    return dict(
        model=name, ops=len(graph.operators), params=stats.params, macs=stats.macs,
        arena=manifest["arena_bytes"], tflm_arena=verified["tflm_arena_bytes"],
        weights=weight_bytes(graph), const=manifest["const_bytes"],
        flash=built["flash_bytes"], tflite=(folder / "model_int8.tflite").stat().st_size,
        instructions=max(emulated["window_instructions"]),
        variant=target.kernel_variant,
        variant_instructions=max(best[2]["window_instructions"]),
        variant_ms=round(max(best[2].get("window_cycles") or [np.nan]) / target.clock_hz * 1e3, 2),
        bit_exact=all(g["host_check"]["bit_exact"] and e["bit_exact"] for g, _, e in runs.values()),
    )


def target_clock(target_name: str) -> str:
    return f"{load_target(target_name).clock_hz / 1e6:g} MHz"


def section(out_dir: Path, target_name: str = "nrf52840") -> str:
    rows = []
    for name in MODELS:
        rows.append(measure(name, Path(out_dir) / name, target_name))
        print(f"  {name}: {rows[-1]['instructions']:,} instructions, arena {rows[-1]['arena']:,} B", flush=True)
    fsutil.write_json(Path(out_dir) / "zoo.json", rows)
    lines = [
        "## The generator on the model zoo",
        "",
        f"Each model with random weights through export → verify → generate → build ({target_name}) → emulate.",
        "",
        "| model | ops | params | MACs | arena B | TFLM arena B | arena / TFLM | weights B | flash consts B | consts / weights "
        "| firmware flash B | .tflite B | instr. (reference kernels) | instr./MAC | TFLM ref. kernels instr. "
        f"| instr. ({rows[0]['variant']} kernels) | instr./MAC | est. ms at {target_clock(target_name)} | TFLM+CMSIS-NN instr. | bit-exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ref, cmsis = TFLM_INSTRUCTIONS.get(r["model"], (np.nan, np.nan))
        ratio = lambda a, b: f"{a / b:.2f}" if b == b and b else "-"  # noqa: E731
        fmt = lambda v: f"{v / 1e6:.2f} M" if v == v else "-"  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['ops']} | {r['params']:,} | {r['macs']:,} | {r['arena']:,} | {r['tflm_arena']:,} "
            f"| {ratio(r['arena'], r['tflm_arena'])} | {r['weights']:,} | {r['const']:,} | {ratio(r['const'], r['weights'])} "
            f"| {r['flash']:,} | {r['tflite']:,} | {r['instructions']:,} | {r['instructions'] / max(r['macs'], 1):.2f} "
            f"| {fmt(ref)} | {r['variant_instructions']:,} | {r['variant_instructions'] / max(r['macs'], 1):.2f} "
            f"| {r['variant_ms']} | {fmt(cmsis)} | {r['bit_exact']} |")
    lines += [
        "",
        "- arena: our statically planned activation memory; TFLM arena: `print_allocations` total of the",
        "  tflite-micro Python interpreter for the same .tflite (activations plus its per-op state).",
        "- weights: raw bytes of the .tflite's constant tensors; flash consts: everything the generator puts in",
        "  flash for the model (weights, biases with the input offset folded in, per-channel multipliers and shifts,",
        "  lookup tables); firmware flash: the whole ELF (kernels, harness, libc, test inputs) for the target.",
        "- instructions: exact count for one inference on the emulated Cortex-M4 (slowest of the test inputs).",
        "  TFLM columns: TFLM's own counts for the official MLPerf Tiny models, measured the same way on",
        "  these machines (toolchain notes), not rerun here. Our reference kernels are portable C; the board's",
        "  own variant (dsp: SMLAD/SXTB16, docs/kernels.md) is what `make deploy` uses; est. ms from the timing model.",
        "",
    ]
    return "\n".join(lines)
