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
