"""The stages as a user runs them: one CLI subcommand each, taking the previous
stage's files; bad input gives one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tinylr import cli

pytestmark = pytest.mark.slow


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def staged(digits_artifacts, tmp_path_factory):
    """generate -> build -> emulate -> report through the CLI, from the verified model."""
    folder = tmp_path_factory.mktemp("staged")
    for name in ("verify.json",):
        shutil.copy(digits_artifacts.dir / name, folder / name)
    ref = digits_artifacts.reference
    steps = [
        ("generate", digits_artifacts.int8_tflite, "--name", "digits", "--reference", ref, "--out", folder),
        ("build", folder / "src", "--reference", ref, "--count", 8, "--out", folder),
        ("emulate", folder / "firmware.elf", "--reference", ref, "--out", folder),
        ("report", folder),
    ]
    outputs = {}
    for step in steps:
        code = cli.main([str(a) for a in step])
        assert code == 0, step
        outputs[step[0]] = code
    return folder


def test_each_stage_leaves_its_file(staged):
    for name in ("src/digits.c", "src/manifest.json", "host_check.json", "firmware.elf", "build.json",
                 "emulate.json", "report.json", "report.md"):
        assert (staged / name).is_file(), name
    report = json.loads((staged / "report.json").read_text())
    assert report["bit_exact"] and report["fits"]
    assert report["emulator_samples"] == 8 and report["host_samples"] == 360
    assert report["instructions_per_inference"] > 1000
    assert report["peak_stack_bytes"] > 0 and report["memory_violations"] == 0


def test_over_budget_report_exits_3_naming_the_budget(staged, capsys):
    report = json.loads((staged / "report.json").read_text())
    ram_budget = report["ram_bytes"] - 100  # 100 B too little RAM beside the radio stack
    code, out, err = run(capsys, "report", staged, "--reserve", f"radio_stack=156K,{256 * 1024 - ram_budget}")
    assert code == 3
    assert "RAM" in err and "by 100 B" in err and len(err.strip().splitlines()) == 1
    assert json.loads((staged / "report.json").read_text())["fits"] is False
    assert run(capsys, "report", staged)[0] == 0  # and back


def test_emulating_with_other_reservations_than_the_build_is_refused(staged, digits_artifacts, capsys):
    code, _, err = run(capsys, "emulate", staged / "firmware.elf", "--reference", digits_artifacts.reference,
                       "--out", staged / "other", "--reserve", "radio_stack=100K,10K")
    assert code == 2 and "not linked for nrf52840" in err


@pytest.mark.parametrize("args,message", [
    (["build", "SRC", "--target", "nrf9999", "--reference", "R", "--out", "OUT"], "unknown target 'nrf9999'; known targets: nrf52840"),
    (["generate", "CORRUPT", "--out", "OUT"], "not a TFLite flatbuffer"),
    (["generate", "FLOAT", "--out", "OUT"], "not quantized INT8"),
    (["verify", "FLOAT", "--data", "DATA", "--out", "OUT"], "not a full-integer int8 model"),
    (["build", "NOSRC", "--reference", "R", "--out", "OUT"], "not a generated model folder"),
    (["emulate", "CORRUPT", "--reference", "R", "--out", "OUT"], "cannot read"),
    (["deploy", "--reserve", "radio_stack=2M,0"], "leaving nothing for the application"),
])
def test_bad_input_one_line_and_nonzero_exit(digits_artifacts, tmp_path, capsys, args, message):
    (tmp_path / "corrupt.tflite").write_bytes(b"\x00" * 64)
    subs = {"SRC": digits_artifacts.dir, "R": digits_artifacts.reference, "OUT": tmp_path / "out",
            "CORRUPT": tmp_path / "corrupt.tflite", "FLOAT": digits_artifacts.float_tflite,
            "DATA": digits_artifacts.dataset, "NOSRC": tmp_path}
    code, _, err = run(capsys, *[subs.get(a, a) for a in args])
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("tinylr: error: ")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_targets_lists_the_boards():
    out = subprocess.run([sys.executable, "-m", "tinylr", "targets"], capture_output=True, text=True, check=True).stdout
    assert "nrf52840" in out and "cortex-m4" in out and "64 MHz" in out
