"""`tinylr deploy`, the command behind `make deploy`: every stage, for real."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def deploy(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "tinylr", "deploy", "--out", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=900)


def test_deploy_runs_every_stage_and_prints_the_budget(tmp_path):
    proc = deploy(tmp_path, "--model", "digits_mlp")
    assert proc.returncode == 0, proc.stderr
    for stage in ("train", "export", "verify", "generate", "build", "emulate", "task", "report"):
        assert f"[{stage:>8}] done" in proc.stdout
    assert "| flash |" in proc.stdout and "| RAM |" in proc.stdout
    folder = tmp_path / "nrf52840" / "digits_mlp"
    report = json.loads((folder / "report.json").read_text())
    assert report["bit_exact"] is True and report["fits"] is True
    assert report["target"] == "nrf52840" and report["model"] == "digits_mlp"
    assert report["int8_accuracy"] > 0.9 and abs(report["int8_accuracy"] - report["float_accuracy"]) < 0.03
    assert 0 < report["arena_bytes"] < report["tflm_arena_bytes"]
    assert report["flash_bytes"] > report["model_const_bytes"]
    assert report["ram_bytes"] == report["static_ram_bytes"] + report["peak_stack_bytes"]
    assert report["instructions_per_inference"] > 2816 / 2  # two MACs per SMLAD at best
    assert report["latency_ms_estimate"] > 0
    # the factored hidden layer reached the firmware as two FULLY_CONNECTED ops
    manifest = json.loads((folder / "src" / "manifest.json").read_text())
    assert manifest["ops"] == ["FULLY_CONNECTED"] * 3
    # the board has the DSP extension, so its kernels are the dsp variant
    assert manifest["kernel_variant"] == "dsp"
    task = report["task"]
    assert task["int8"]["accuracy"] == pytest.approx(report["int8_accuracy"])
    assert task["emulated_samples"]["mcu"] == task["emulated_samples"]["int8"]

    # a second run reuses the training (same model, settings and seed) and is faster
    again = deploy(tmp_path, "--model", "digits_mlp")
    assert again.returncode == 0, again.stderr
    assert "reusing the earlier run" in again.stdout


def test_default_model_is_lr_mpgnn_power_control_on_the_mcu(tmp_path):
    proc = deploy(tmp_path, "--quick")  # the default model, a small training budget
    assert proc.returncode == 0, proc.stderr
    assert "lr_mpgnn on nrf52840: bit-exact True" in proc.stdout and "nwsr" in proc.stdout
    report = json.loads((tmp_path / "nrf52840" / "lr_mpgnn" / "report.json").read_text())
    assert report["bit_exact"] and report["fits"] and report["int8_accuracy"] is None
    task = report["task"]
    assert task["task"] == "power_control"
    # the quick budget already beats full power (~0.22) by far; int8 stays near float
    assert task["float"]["nwsr"] > 0.85 and abs(task["int8"]["nwsr"] - task["float"]["nwsr"]) < 0.03
    e = task["emulated_samples"]
    assert e["mcu"] == e["int8"] and e["n"] == 16
    ops = json.loads((tmp_path / "nrf52840" / "lr_mpgnn" / "src" / "manifest.json").read_text())["ops"]
    assert {"FULLY_CONNECTED", "MUL", "REDUCE_MAX", "CONCATENATION", "LOGISTIC"} <= set(ops)
    assert "## Task quality: power control (nwsr)" in (tmp_path / "nrf52840" / "lr_mpgnn" / "report.md").read_text()


def test_deploy_over_budget_exits_3_and_names_the_budget(tmp_path):
    proc = deploy(tmp_path, "--model", "digits_mlp", "--reserve", "radio_stack=1020K,23K")  # leaves 4 KB of flash
    assert proc.returncode == 3
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tinylr: error: does not fit nrf52840: FLASH over by")
    folder = tmp_path / "nrf52840" / "digits_mlp"
    assert not (folder / "firmware.elf").exists() and not (folder / "report.json").exists()
