import json

import pytest

from tinylr import fsutil, report
from tinylr.errors import OverBudgetError, TinylrError
from tinylr.targets import load_target


def stage_files(folder, *, flash=20_000, static_ram=3_000, stack=900, windows=(41_000, 41_002)):
    (folder / "src").mkdir(parents=True)
    fsutil.write_json(folder / "build.json", {"flash_bytes": flash, "static_ram_bytes": static_ram})
    fsutil.write_json(folder / "emulate.json", {
        "peak_stack_bytes": stack, "window_instructions": list(windows), "bit_exact": True,
        "samples": 16, "violation_count": 0})
    fsutil.write_json(folder / "host_check.json", {"bit_exact": True, "samples": 360})
    fsutil.write_json(folder / "src" / "manifest.json", {"model": "toy", "arena_bytes": 256, "const_bytes": 9000})
    fsutil.write_json(folder / "verify.json", {"tflm_arena_bytes": 1200, "int8_accuracy": 0.95, "float_accuracy": 0.96})


def test_report_sums_and_estimates(tmp_path):
    stage_files(tmp_path)
    target = load_target("nrf52840")
    r = report.make_report(tmp_path, target)
    assert r["ram_bytes"] == 3_900 and r["flash_bytes"] == 20_000
    assert r["flash_budget_bytes"] == (1024 - 156) * 1024 and r["ram_budget_bytes"] == (256 - 23) * 1024
    assert r["fits"] and r["bit_exact"]
    assert r["instructions_per_inference"] == 41_002
    assert r["latency_ms_estimate"] == pytest.approx(41_002 * target.cycles_per_instruction / 64e6 * 1e3, rel=1e-3)
    saved = json.loads((tmp_path / "report.json").read_text())
    for key in ("target", "model", "flash_bytes", "ram_bytes", "arena_bytes", "peak_stack_bytes", "tflm_arena_bytes",
                "instructions_per_inference", "latency_ms_estimate", "fits", "bit_exact", "int8_accuracy",
                "float_accuracy", "tool_versions"):
        assert key in saved
    assert "fits" in (tmp_path / "report.md").read_text()
    report.enforce_budget(r)  # no error


def test_over_budget_names_the_budget_and_the_excess(tmp_path):
    stage_files(tmp_path, static_ram=3_000, stack=1_000)
    target = load_target("nrf52840").with_reservations({"radio_stack": (156 * 1024, 256 * 1024 - 3_500)})
    r = report.make_report(tmp_path, target)
    assert r["fits"] is False
    assert json.loads((tmp_path / "report.json").read_text())["fits"] is False
    with pytest.raises(OverBudgetError, match=r"RAM 4,000 B > 3,500 B by 500 B"):
        report.enforce_budget(r)


def test_missing_stage_output_says_which_stage_to_run(tmp_path):
    stage_files(tmp_path)
    (tmp_path / "emulate.json").unlink()
    with pytest.raises(TinylrError, match="run `tinylr emulate`"):
        report.make_report(tmp_path, load_target("nrf52840"))
