"""Toy firmwares for any board: a model folder written by the test, built with the real
harness and cross compiler (shared by the board, timing and profile tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinylr.build import build_firmware
from tinylr.targets import Target

TOY_HEADER = """#include <stdint.h>
#define TOY_IN 4
#define TOY_OUT 4
int toy_invoke(const int8_t *in, int8_t *out);
"""

TOY_MANIFEST = {
    "model": "toy", "header": "toy.h", "invoke": "toy_invoke", "input_bytes": 4, "output_bytes": 4,
    "input_bytes_macro": "TOY_IN", "output_bytes_macro": "TOY_OUT",
}


def build_toy(root: Path, target: Target, name: str, source: str, vectors) -> Path:
    """firmware.elf of `source` (defining toy_invoke) for `target`, in root/<target>/<name>."""
    src = root / target.name / name / "src"
    src.mkdir(parents=True)
    (src / "manifest.json").write_text(json.dumps(TOY_MANIFEST))
    (src / "toy.h").write_text(TOY_HEADER)
    (src / "toy.c").write_text('#include "toy.h"\n' + source)
    return build_firmware(target, src, np.asarray(vectors, dtype=np.int8), src.parent / "out").elf
