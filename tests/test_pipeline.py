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
    proc = deploy(tmp_path)
    assert proc.returncode == 0, proc.stderr
    for stage in ("train", "export", "verify", "generate", "build", "emulate", "report"):
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
    assert report["instructions_per_inference"] > 2816  # at least one instruction per MAC
    assert report["latency_ms_estimate"] > 0
    # the factored hidden layer reached the firmware as two FULLY_CONNECTED ops
    manifest = json.loads((folder / "src" / "manifest.json").read_text())
    assert manifest["ops"] == ["FULLY_CONNECTED"] * 3


def test_deploy_over_budget_exits_3_and_names_the_budget(tmp_path):
    proc = deploy(tmp_path, "--reserve", "radio_stack=1020K,23K")  # leaves 4 KB of flash
    assert proc.returncode == 3
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("tinylr: error: does not fit nrf52840: FLASH over by")
    folder = tmp_path / "nrf52840" / "digits_mlp"
    assert not (folder / "firmware.elf").exists() and not (folder / "report.json").exists()
