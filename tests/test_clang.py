"""The generated C builds warning-free with clang as well as gcc: every kernel of every
variant, for the host and for a Cortex-M4, and a whole model that then gives TFLM's
answers."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinylr import codegen, hostcheck, reference, templates

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror")
TARGETS = {
    "host": (),
    "cortex-m4": ("--target=thumbv7em-none-eabihf", "-mcpu=cortex-m4", "-mfloat-abi=hard",
                  "-isystem", "/usr/lib/arm-none-eabi/include"),
}


def kernel_files(variant: str) -> set[str]:
    names = set()
    for folder in ("reference", variant):
        names |= {p.name[:-3] for p in (templates.TEMPLATES_DIR / "kernels" / folder).glob("*.j2")
                  if not p.name.startswith("_")}
    return names


@pytest.mark.parametrize("where", sorted(TARGETS))
@pytest.mark.parametrize("variant", codegen.variants())
def test_every_kernel_compiles_warning_free_with_clang(tmp_path, variant, where):
    for name in kernel_files(variant):
        (tmp_path / name).write_text(templates.render(codegen.kernel_template(variant, name)))
    sources = sorted(tmp_path.glob("*.c"))
    assert len(sources) >= 20
    for source in sources:
        proc = subprocess.run(["clang", *STRICT, *TARGETS[where], f"-I{tmp_path}", "-c", str(source), "-o", "/dev/null"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{variant}/{source.name} for {where}:\n{proc.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("variant", codegen.variants())
def test_a_model_built_with_clang_matches_tflm(digits_artifacts, tmp_path, variant):
    codegen.generate(digits_artifacts.int8_tflite, tmp_path / "src", "digits", variant)
    inputs = np.load(digits_artifacts.reference)["inputs"][:100]
    expected = reference.run(digits_artifacts.int8_tflite, inputs)
    assert hostcheck.compare(expected, hostcheck.run_host(tmp_path / "src", inputs, compiler="clang"))["bit_exact"]
