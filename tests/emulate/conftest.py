"""Toy firmwares for the emulator tests: a model folder written by the test, built for
the nRF52840 with the real harness and cross compiler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinylr.build import build_firmware
from tinylr.targets import load_target

TOY_HEADER = """#include <stdint.h>
#define TOY_IN 4
#define TOY_OUT 4
int toy_invoke(const int8_t *in, int8_t *out);
"""

TOY_MANIFEST = {
    "model": "toy", "header": "toy.h", "invoke": "toy_invoke", "input_bytes": 4, "output_bytes": 4,
    "input_bytes_macro": "TOY_IN", "output_bytes_macro": "TOY_OUT",
}


@pytest.fixture(scope="session")
def target():
    return load_target("nrf52840")


@pytest.fixture(scope="module")
def build_toy(tmp_path_factory, target):
    """build_toy(name, c_source, vectors) -> firmware.elf; each toy is built once per module."""
    root = tmp_path_factory.mktemp("toys")
    built: dict[str, Path] = {}

    def build(name: str, source: str, vectors) -> Path:
        if name not in built:
            src = root / name / "src"
            src.mkdir(parents=True)
            (src / "manifest.json").write_text(json.dumps(TOY_MANIFEST))
            (src / "toy.h").write_text(TOY_HEADER)
            (src / "toy.c").write_text('#include "toy.h"\n' + source)
            vectors = np.asarray(vectors, dtype=np.int8)
            built[name] = build_firmware(target, src, vectors, root / name / "out").elf
        return built[name]

    return build
