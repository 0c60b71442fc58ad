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


def test_cycle_estimate_replaces_the_flat_rate(tmp_path):
    stage_files(tmp_path, windows=(41_000, 41_002))
    emulation = json.loads((tmp_path / "emulate.json").read_text())
    emulation.update(window_cycles=[70_000.0, 64_000.0], profile={"core_table": "cortex-m4", "layers": [
        {"name": "op 0 FULLY_CONNECTED (k)", "calls": 1, "instructions": 41_002, "cycles": 64_000.0, "ms": 1.0,
         "flash_misses": 0, "overhead": False}]})
    fsutil.write_json(tmp_path / "emulate.json", emulation)
    r = report.make_report(tmp_path, load_target("nrf52840"))
    assert r["cycles_per_inference_estimate"] == 64_000 and r["cycles_model"] == "timing table"
    assert r["latency_ms_estimate"] == pytest.approx(64_000 / 64e6 * 1e3)
    assert r["latency_ms_first_inference"] == pytest.approx(70_000 / 64e6 * 1e3, abs=1e-4)
    md = (tmp_path / "report.md").read_text()
    assert "op 0 FULLY_CONNECTED (k) | 1 | 41,002" in md and "timing table" in md


def test_verdict_gives_reasons(tmp_path):
    stage_files(tmp_path, static_ram=3_000, stack=1_000)
    fine = report.make_report(tmp_path, load_target("nrf52840"))
    assert fine["verdict"] == "fits" and any(x.startswith("flash 20,000 B of") for x in fine["reasons"])
    tight = load_target("nrf52840").with_reservations({"radio_stack": (156 * 1024, 256 * 1024 - 3_500)})
    r = report.make_report(tmp_path, tight)
    assert r["verdict"] == "does not fit"
    assert "RAM 4,000 B > 3,500 B left beside the reservations, by 500 B" in r["reasons"]
    assert "does not fit" in (tmp_path / "report.md").read_text()


def test_all_targets_table_shows_boards_that_do_not_fit():
    rows = [{"target": "big", "model": "m", "core": "cortex-m0plus", "clock_hz": 48_000_000, "fits": False,
             "verdict": "does not fit", "reasons": ["FLASH over by 10 bytes"], "flash_budget_bytes": 1, "ram_budget_bytes": 2}]
    assert "| big | cortex-m0plus | 48 | - / 1 | - / 2 | - | - | - | does not fit: FLASH over by 10 bytes |" in \
        report.all_targets_table(rows)


@pytest.mark.slow
def test_report_from_a_real_build_splits_memory_by_owner(tmp_path):
    from tests.test_build import VECTORS, toy_model
    from tinylr import build

    target = load_target("nrf52840")
    stage_files(tmp_path)
    result = build.build_firmware(target, toy_model(tmp_path / "model_src"), VECTORS, tmp_path)
    r = report.make_report(tmp_path, target)
    assert sum(r["flash_by_owner"].values()) == r["flash_bytes"] == result.flash_bytes
    assert sum(r["ram_by_owner"].values()) == r["ram_bytes"]
    assert r["ram_by_owner"]["peak stack (measured)"] == r["peak_stack_bytes"]
    assert set(r["flash_by_section"]) >= {".isr_vector", ".text", ".rodata"}
    png = tmp_path / "report.png"
    assert r["png"] == "report.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "flash by owner" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_one_model_on_every_board_in_one_table(digits_artifacts, tmp_path, capsys):
    import shutil

    from tinylr import cli, pipeline
    from tinylr.targets import known_targets

    model = tmp_path / "model"
    pipeline.generate_stage(digits_artifacts.int8_tflite, model, "digits", digits_artifacts.reference)
    for name in ("verify.json", "reference.npz"):
        shutil.copy(digits_artifacts.dir / name, model / name)
    code = cli.main(["report", "--all-targets", str(model), "--out", str(tmp_path / "boards")])
    out = capsys.readouterr().out
    assert code == 0
    for board in known_targets():
        r = json.loads((tmp_path / "boards" / board / "digits" / "report.json").read_text())
        assert r["fits"] and r["bit_exact"] and r["memory_violations"] == 0, board
        assert sum(row["instructions"] for row in r["profile"]) == r["instructions_per_inference"]
        assert f"| {board} | {r['core']} |" in out
        assert (tmp_path / "boards" / board / "digits" / "report.png").is_file()
    assert (tmp_path / "boards" / "all_targets.md").read_text().count("| fits |") == len(known_targets())
