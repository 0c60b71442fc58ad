"""Benchmark section for `make bench`: emulator speed with and without tinylr's plugin,
and the default digits model on every board.

    from tinylr.emulate import bench
    markdown = bench.section(Path("build/bench"))

Speed: a toy firmware (the real harness around a loop of loads and multiply-adds,
~`iterations` x 8 instructions) runs on the first board's QEMU machine three times
without the plugin and three times with it; the instruction count comes from the
plugin run (it is exact and the same every run), the speed is count / best wall time.
Numbers are measured, never asserted; on a shared machine compare the ratio.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import toolchain
from ..build import build_firmware
from ..errors import TinylrError
from ..targets import known_targets, load_target

TOY_SOURCE = """#include "toy.h"
static const int8_t toy_table[256] = { {{TABLE}} };
int toy_invoke(const int8_t *in, int8_t *out)
{
    int32_t acc = 0;
    for (uint32_t i = 0; i < TOY_ITERATIONS; ++i) {
        acc += toy_table[i & 255u] * in[i & 3u];
    }
    for (int i = 0; i < 4; ++i) {
        out[i] = (int8_t)(acc >> (8 * i));
    }
    return 0;
}
"""


def _toy_model(folder: Path, iterations: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "toy.h").write_text(f"#include <stdint.h>\n#define TOY_IN 4\n#define TOY_OUT 4\n#define TOY_ITERATIONS {iterations}u\n"
                                  "int toy_invoke(const int8_t *in, int8_t *out);\n")
    table = ", ".join(str((i * 37) % 251 - 125) for i in range(256))
    (folder / "toy.c").write_text(TOY_SOURCE.replace("{{TABLE}}", table))
    (folder / "manifest.json").write_text(json.dumps(dict(
        model="toy", header="toy.h", invoke="toy_invoke", input_bytes=4, output_bytes=4,
        input_bytes_macro="TOY_IN", output_bytes_macro="TOY_OUT")))
    return folder


def emulator_speed(target_name: str | None = None, iterations: int = 40_000_000, repeats: int = 3) -> dict:
    """Instructions per second of QEMU alone and of QEMU with the plugin, on one toy."""
    from .plugin import plugin_path
    from .qemu import FirmwareSymbols, _run, boot_stub, emulate, emulated_elf, needs_boot_stub, qemu_command

    target = load_target(target_name or known_targets()[0])
    with tempfile.TemporaryDirectory(prefix="tinylr-bench-") as tmp:
        src = _toy_model(Path(tmp) / "src", iterations)
        elf = build_firmware(target, src, np.array([[1, 2, 3, 4]], np.int8), Path(tmp) / "out").elf
        with_plugin, counted = [], None
        for _ in range(repeats):
            result = emulate(elf, target, timeout_s=600, max_instructions=10**12)
            with_plugin.append(result.wall_seconds)  # QEMU's run only, not the disassembly before it
            counted = result.instructions_total
        qemu = toolchain.require("qemu-system-arm")
        placed = emulated_elf(elf, target)
        stub = Path(tmp) / "stub.bin"
        stub.write_bytes(boot_stub(FirmwareSymbols.read(placed)))
        cmd = qemu_command(qemu, target, placed, stub if needs_boot_stub(target) else None, None)
        without = []
        for _ in range(repeats):
            start = time.monotonic()
            code, console, _, _ = _run(cmd, 600)
            without.append(time.monotonic() - start)
            if code != 0 or "TINYLR_DONE" not in console:
                raise TinylrError(f"the speed toy failed without the plugin (exit {code}): {console[-200:]}")
        plugin_path()  # built already; named for the record
    best_with, best_without = min(with_plugin), min(without)
    return {
        "target": target.name, "machine": f"{target.qemu_machine} ({target.qemu_cpu})",
        "qemu": toolchain.version("qemu-system-arm"), "instructions": counted,
        "wall_with_plugin": [round(t, 3) for t in with_plugin], "wall_without_plugin": [round(t, 3) for t in without],
        "ips_with_plugin": counted / best_with, "ips_without_plugin": counted / best_without,
        "slowdown": best_with / best_without,
    }


def speed_markdown(s: dict) -> str:
    return "\n".join([
        f"Toy firmware on {s['target']} ({s['machine']}, {s['qemu']}): {s['instructions']:,} instructions per run, "
        "best of the runs below (the wall time includes QEMU's start-up and, with the plugin, its set-up).",
        "",
        "| run | wall s | M instructions/s |",
        "|---|---|---:|",
        f"| QEMU alone | {', '.join(map(str, s['wall_without_plugin']))} | {s['ips_without_plugin'] / 1e6:,.0f} |",
        f"| QEMU + tinylr plugin (exact counts, histogram, cycle estimate, probes, bounds, stack) | "
        f"{', '.join(map(str, s['wall_with_plugin']))} | {s['ips_with_plugin'] / 1e6:,.0f} |",
        "",
        f"The plugin makes a run {s['slowdown']:.1f}x slower.",
    ])


def boards_markdown(rows: list[dict]) -> str:
    from ..report import all_targets_table

    lines = [all_targets_table(rows), ""]
    for r in rows:
        layers = r.get("profile") or []
        if layers:
            parts = ", ".join(f"{x['name'].split(' (')[0]} {x['instructions']:,} instr / {x['ms']:.4f} ms"
                              for x in layers if not x["overhead"])
            lines.append(f"- {r['target']}: {parts}")
    return "\n".join(lines)


def section(out_dir: Path, target_name: str | None = None) -> str:
    """Markdown for docs/benchmarks.md: emulator speed, and digits_mlp on every board
    (trained, exported, verified and generated once, then built, emulated and reported
    per board under out_dir/boards/)."""
    from ..report import all_targets

    out_dir = Path(out_dir)
    speed = emulator_speed(target_name)
    rows = all_targets("digits_mlp", out_dir / "boards", log=lambda m: print(m, flush=True))
    return "\n".join([
        "## Emulator speed",
        "",
        speed_markdown(speed),
        "",
        "## digits_mlp on every board",
        "",
        "Flash and RAM are the firmware's (model, harness with 16 test inputs, libc) against what the board's "
        "reservations leave; instructions are exact (slowest of 16 inferences); cycles and ms are the timing "
        "model's estimate (docs/timing.md) at the board's clock.",
        "",
        boards_markdown(rows),
        "",
    ])
