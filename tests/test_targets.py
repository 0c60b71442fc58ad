import shutil

import pytest

from tinylr import targets
from tinylr.errors import TinylrError


def test_nrf52840_budget_is_memory_minus_radio_stack():
    t = targets.load_target("nrf52840")
    assert (t.core, t.clock_hz, t.fpu) == ("cortex-m4", 64_000_000, "fpv4-sp-d16")
    assert (t.flash.origin, t.flash.size, t.ram.origin, t.ram.size) == (0, 1 << 20, 0x20000000, 256 << 10)
    assert t.app_flash.origin == 156 * 1024 and t.app_flash.size == (1024 - 156) * 1024
    assert t.app_ram.origin == 0x20000000 + 23 * 1024 and t.app_ram.size == (256 - 23) * 1024


def test_reservations_can_be_changed_per_run():
    t = targets.load_target("nrf52840")
    name, sizes = targets.parse_reservation("radio_stack=100K,0x1000")
    changed = t.with_reservations({name: sizes})
    assert changed.app_flash.size == (1024 - 100) * 1024 and changed.app_ram.size == 252 * 1024
    both = t.with_reservations(dict([targets.parse_reservation("bootloader=16K,1K")]))
    assert both.reserved_flash == (156 + 16) * 1024 and both.reserved_ram == 24 * 1024
    with pytest.raises(TinylrError, match="leaving nothing"):
        t.with_reservations({"radio_stack": (2 << 20, 0)})


@pytest.mark.parametrize("spec", ["radio", "radio=1K", "Radio=1K,1K", "x=1G,1K", "x=,1K"])
def test_bad_reservation_specs(spec):
    with pytest.raises(TinylrError, match="NAME=FLASH,RAM|cannot read size"):
        targets.parse_reservation(spec)


def test_unknown_target_lists_known_ones():
    with pytest.raises(TinylrError, match=r"unknown target 'nrf9999'; known targets: .*nrf52840"):
        targets.load_target("nrf9999")
    with pytest.raises(TinylrError, match="unknown target"):
        targets.load_target("../targets")


def _copy_board(tmp_path, edit):
    root = tmp_path / "targets"
    shutil.copytree(targets.TARGETS_DIR, root)
    board = root / "nrf52840" / "board.toml"
    board.write_text(edit(board.read_text()))
    return root


def test_schema_violations_name_the_field(tmp_path):
    root = _copy_board(tmp_path, lambda s: s.replace("clock_hz = 64_000_000", 'clock_hz = "fast"'))
    with pytest.raises(TinylrError, match=r"cpu/clock_hz: 'fast' is not of type 'integer'"):
        targets.load_target("nrf52840", root)
    root = _copy_board(tmp_path / "b", lambda s: s + "\nsurprise = 1\n")
    with pytest.raises(TinylrError, match="surprise"):
        targets.load_target("nrf52840", root)
    root = _copy_board(tmp_path / "c", lambda s: s.replace("[memory.ram]", "[memory.rom]"))
    with pytest.raises(TinylrError, match=r"memory: .*('rom' was unexpected|'ram' is a required)"):
        targets.load_target("nrf52840", root)


def test_a_new_board_is_just_a_folder(tmp_path):
    root = _copy_board(tmp_path, lambda s: s)
    shutil.copytree(root / "nrf52840", root / "myboard")
    toml = root / "myboard" / "board.toml"
    toml.write_text(toml.read_text().replace('name = "nrf52840"', 'name = "myboard"').replace("64_000_000", "48_000_000"))
    assert "myboard" in targets.known_targets(root)
    assert targets.load_target("myboard", root).clock_hz == 48_000_000


def test_every_board_has_its_datasheet_numbers():
    expect = {  # core, MHz, flash KB, RAM KB, FPU, DSP
        "nrf5340_app": ("cortex-m33", 128, 1024, 512, True, True),
        "stm32f746": ("cortex-m7", 216, 1024, 320, True, True),
        "stm32l4r5": ("cortex-m4", 120, 2048, 640, True, True),
        "rp2040": ("cortex-m0plus", 125, 2048, 264, False, False),
        "nrf52840": ("cortex-m4", 64, 1024, 256, True, True),
    }
    for name, (core, mhz, flash_kb, ram_kb, fpu, dsp) in expect.items():
        t = targets.load_target(name)
        assert (t.core, t.clock_hz, t.flash.size, t.ram.size) == (core, mhz * 10**6, flash_kb << 10, ram_kb << 10), name
        assert (t.fpu is not None, t.dsp) == (fpu, dsp), name
        assert t.reservations and t.flash_timing.source and t.core_table
        assert f"-mcpu={core}" in t.cflags
    assert targets.load_target("stm32f746").flash_timing.wait_states == 7
    assert targets.load_target("rp2040").flash.origin == 0x1000_0000 and targets.load_target("rp2040").arch == "armv6-m"


def test_reservations_at_the_end_shrink_without_moving_the_image():
    t = targets.load_target("nrf5340_app")
    end = [r for r in t.reservations if r.position == "end"]
    start = sum(r.flash_bytes for r in t.reservations if r.position == "start")
    assert end and t.app_flash.origin == t.flash.origin + start
    assert t.app_flash.end == t.flash.end - sum(r.flash_bytes for r in end)
    bigger = t.with_reservations({end[0].name: (0x1000, 0)})  # keeps its position
    assert bigger.app_flash.origin == t.app_flash.origin and bigger.app_flash.end == t.flash.end - 0x1000


def test_placed_boards_keep_alignment_and_fit_their_machine():
    placed = [targets.load_target(n) for n in targets.known_targets() if targets.load_target(n).is_placed]
    assert {t.name for t in placed} >= {"nrf5340_app", "stm32f746", "stm32l4r5", "rp2040"}
    for t in placed:
        assert t.flash_shift % targets.PLACEMENT_ALIGN == 0 and t.ram_shift % targets.PLACEMENT_ALIGN == 0
        assert t.emulated_app_flash.size == t.app_flash.size and t.emulated_app_ram.size == t.app_ram.size
        assert any(m.contains(t.emulated_app_flash) for m in t.placement.memory)
        assert any(m.contains(t.emulated_app_ram) for m in t.placement.memory)
    nrf = targets.load_target("nrf52840")
    assert not nrf.is_placed and nrf.emulated_app_flash == nrf.app_flash


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.replace("flash_at = 0x0000_0000", "flash_at = 0x0000_8000"), "not a multiple of 0x10000"),
    (lambda s: s.replace("flash_at = 0x0000_0000", "flash_at = 0x0100_0000"), r"placed at 0x01000000-.* not inside the memory"),
    (lambda s: s.replace('core_table = "cortex-m7"', 'core_table = "cortex-m99"'), "cores/cortex-m99.toml does not exist"),
    (lambda s: s.replace("wait_states = 7", 'wait_states = "slow"'), r"timing/flash/wait_states: 'slow' is not of type"),
    (lambda s: s.replace('arch = "armv7e-m"', 'arch = "armv9"'), r"cpu/arch: 'armv9' is not one of"),
])
def test_bad_board_data_names_the_field(tmp_path, edit, message):
    root = tmp_path / "targets"
    shutil.copytree(targets.TARGETS_DIR, root)
    board = root / "stm32f746" / "board.toml"
    board.write_text(edit(board.read_text()))
    with pytest.raises(TinylrError, match=message):
        targets.load_target("stm32f746", root)


def test_reset_vector_inside_the_image_is_refused(tmp_path):
    root = tmp_path / "targets"
    shutil.copytree(targets.TARGETS_DIR, root)
    board = root / "nrf5340_app" / "board.toml"
    board.write_text(board.read_text().replace("reset_vector_at = 0x1000_0000", "reset_vector_at = 0x1004_0000"))
    with pytest.raises(TinylrError, match="reads its reset vector at 0x10040000, inside the application image"):
        targets.load_target("nrf5340_app", root)
