"""The MCU columns of the results table: each exported run through the C generator,
the cross compiler and the emulator, scored as normalized WSR on the samples the
firmware ran (`results.COLUMN_HOOKS`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import fsutil
from ..targets import load_target

VECTORS = 16


def columns(row: dict, run: Path, target_name: str = "nrf52840") -> dict:
    """{'c_flash_bytes', 'mcu_normalized_wsr', 'mcu_instructions', 'mcu_ms_estimate', ...} for one run folder."""
    from .. import pipeline, verify
    from .results import score_int8_outputs

    run, target = Path(run), load_target(target_name)
    folder = run / f"mcu_{target.name}"
    folder.mkdir(exist_ok=True)
    verify.verify(run / "model_int8.tflite", folder, data=run / "dataset.npz")
    generated = pipeline.generate_stage(run / "model_int8.tflite", folder, row["name"], folder / "reference.npz",
                                        target.kernel_variant)
    built = pipeline.build_stage(target, folder / "src", folder / "reference.npz", folder, VECTORS)
    emulated = pipeline.emulate_stage(target, folder / "firmware.elf", folder / "reference.npz", folder)
    outputs = pipeline.emulated_outputs(emulated, np.int8)
    windows = emulated["window_instructions"]
    summary = {
        "c_flash_bytes": built["flash_bytes"],
        "c_const_bytes": generated["manifest"]["const_bytes"],
        "mcu_normalized_wsr": score_int8_outputs(run, outputs),
        "mcu_samples": len(outputs),
        "mcu_target": target.name,
        "mcu_instructions": max(windows),
        "mcu_bit_exact": emulated["bit_exact"],
        "int8_normalized_wsr_same_samples": score_int8_outputs(
            run, np.load(folder / "reference.npz")["outputs"][: len(outputs)]),
    }
    cycles = emulated.get("window_cycles")  # the timing model's estimate per inference
    if cycles:
        summary["mcu_ms_estimate"] = round(max(cycles) / target.clock_hz * 1e3, 3)
    fsutil.write_json(folder / "mcu.json", summary)
    return summary
