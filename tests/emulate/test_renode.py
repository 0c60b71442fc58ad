"""The Renode backend's generated script (Renode itself cannot be installed here, so no
run is tested: see docs/emulator.md)."""

from __future__ import annotations

import pytest

from tests.emulate.boards import build_toy
from tinylr import pipeline
from tinylr.build import emulator_elf_path
from tinylr.emulate import FirmwareSymbols, renode
from tinylr.errors import TinylrError
from tinylr.targets import known_targets, load_target

DOUBLE = "int toy_invoke(const int8_t *in, int8_t *out) { for (int i = 0; i < 4; i++) out[i] = (int8_t)(2 * in[i]); return 0; }\n"
RENODE_BOARDS = [b for b in known_targets() if load_target(b).renode_platform]


def test_marks_pair_into_windows():
    out = "x\nTINYLR_MARK begin 100\nTINYLR_MARK end 150\nnoise\nTINYLR_MARK begin 200\nTINYLR_MARK end 260\nTINYLR_EXIT 0 300\n"
    assert renode.parse_marks(out) == [50, 60]


@pytest.mark.slow
@pytest.mark.parametrize("board", RENODE_BOARDS)
def test_script_loads_the_board_platform_and_hooks_the_markers(board, tmp_path):
    target = load_target(board)
    elf = build_toy(tmp_path, target, "double", DOUBLE, [[1, 2, 3, 4]])
    symbols = FirmwareSymbols.read(elf)
    script = renode.resc_script(elf, target, tmp_path / "console.txt", virtual_seconds=5)
    lines = script.splitlines()
    assert f"machine LoadPlatformDescription @{target.renode_platform}" in lines
    assert f"sysbus LoadELF @{elf}" in lines  # the board-address ELF: Renode has the real memory map
    assert f"cpu VectorTableOffset {target.app_flash.origin:#x}" in lines
    assert any("SemihostingUart" in line for line in lines)
    assert any(line.startswith("sysbus.cpu.tinylr_semihosting.tinylr_console CreateFileBackend @") for line in lines)
    for marker, kind in (("tinylr_marker_begin", "begin"), ("tinylr_marker_end", "end")):
        hook = f"cpu AddHook {symbols[marker] & ~1:#x} \"print 'TINYLR_MARK {kind} %d' % self.ExecutedInstructions\""
        assert hook in lines
    assert any(line.startswith(f"cpu AddHook {symbols['sh_exit'] & ~1:#x} ") and "TINYLR_EXIT" in line for line in lines)
    assert lines[-2:] == ['emulation RunFor "5"', "quit"]
    if target.is_placed:
        with pytest.raises(TinylrError, match="not the QEMU copy"):
            renode.resc_script(emulator_elf_path(elf), target, tmp_path / "console.txt")


@pytest.mark.slow
def test_board_without_a_platform_and_missing_renode(tmp_path, monkeypatch):
    target = next(load_target(b) for b in known_targets() if not load_target(b).renode_platform)
    elf = build_toy(tmp_path, target, "double", DOUBLE, [[1, 2, 3, 4]])
    with pytest.raises(TinylrError, match=r"names no Renode platform; add \[emulator.renode\]"):
        renode.resc_script(elf, target, tmp_path / "console.txt")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TinylrError, match="renode not found on PATH.*--emulator qemu"):
        pipeline.emulate_stage(target, elf, tmp_path / "reference.npz", tmp_path / "out", emulator="renode")
