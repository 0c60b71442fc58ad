"""`make bench`: measurements side by side in one run, written to docs/benchmarks.md with
the machine and the date.

Numbers are measured, never asserted: instruction counts are exact (QEMU plugin), sizes
come from the ELF, TFLM's arena from its own interpreter. Wall times are for orientation
only (a shared machine drifts), so comparisons are given as ratios. Each section is a
function returning markdown; a section that fails is reported as failed, not hidden.
"""

from __future__ import annotations

import datetime
import os
import platform
import traceback
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def sections() -> dict:
    """Section name -> callable(out_dir: Path) -> markdown. Imported lazily: heavy."""
    from . import digits, zoo

    found = {"digits": digits.section, "zoo": zoo.section}
    try:
        from ..lowrank import bench as lowrank_bench
        found["lowrank"] = lowrank_bench.section
    except ImportError:
        pass
    try:
        from ..emulate import bench as emulate_bench
        found["emulator"] = emulate_bench.section
    except ImportError:
        pass
    return found


MARK = "<!-- bench section: {} -->"


def previous_parts(text: str) -> dict[str, str]:
    """The sections of an earlier docs/benchmarks.md, to keep those not rerun."""
    parts = {}
    chunks = text.split("<!-- bench section: ")[1:]
    for chunk in chunks:
        name, _, body = chunk.partition(" -->\n")
        parts[name] = body.rstrip() + "\n"
    return parts


def document(parts: dict[str, str]) -> str:
    head = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.date.today().isoformat()}; machine: {machine()}.",
        "Regenerate with `make bench` (or one section: `python -m tinylr.bench --only zoo`).",
        "",
    ]
    body = "\n".join(MARK.format(name) + "\n" + text for name, text in parts.items())
    return "\n".join(head) + body


def run(out_dir: Path, only: list[str] | None = None) -> dict[str, str]:
    parts = {}
    for name, section in sections().items():
        if only and name not in only:
            continue
        print(f"bench: {name} ...", flush=True)
        try:
            parts[name] = section(out_dir / name).rstrip() + "\n"
        except Exception:  # a broken section is shown as such, the others still run
            parts[name] = f"## {name}\n\nFAILED in this run:\n\n```\n{traceback.format_exc()[-3000:]}\n```\n"
            print(parts[name], flush=True)
    return parts
