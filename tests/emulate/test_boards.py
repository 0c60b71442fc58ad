"""Every board in targets/: the digits model built, emulated bit-exactly on the board's
QEMU machine, profiled per layer and repeatable; an out-of-bounds firmware caught
against the board's real regions (where the emulator placed them); a model too big for
the board refused with the reason."""

from __future__ import annotations

import pytest
from elftools.elf.elffile import ELFFile

from tests.emulate.boards import build_toy
from tinylr import pipeline
from tinylr.build import emulator_elf_path
from tinylr.emulate import FirmwareSymbols, emulate
from tinylr.errors import OverBudgetError, TinylrError
from tinylr.targets import known_targets, load_target

pytestmark = pytest.mark.slow
BOARDS = known_targets()

# Reads 16 bytes past the end of the application RAM (the top of the stack), which every
# QEMU machine has RAM behind, and calls `bx lr` placed in RAM, outside the flash image.
OUT_OF_BOUNDS = """
extern uint32_t _estack;
typedef void (*toy_fn)(void);
uint16_t toy_ram_code[2] = {0x4770u, 0xbf00u};
__attribute__((noinline)) int8_t toy_peek(void)
{
    return *(volatile const int8_t *)((uintptr_t)&_estack + 16u);
}
int toy_invoke(const int8_t *in, int8_t *out)
{
    for (int i = 0; i < TOY_IN; i++) {
        out[i] = (int8_t)(in[i] + toy_peek());
    }
    ((toy_fn)((uintptr_t)toy_ram_code | 1u))();
    return 0;
}
"""


def test_there_are_five_boards_with_distinct_cores():
    assert len(BOARDS) >= 5
    cores = {load_target(b).core for b in BOARDS}
    assert {"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"} <= cores


@pytest.fixture(scope="module")
def digits(digits_artifacts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    pipeline.generate_stage(digits_artifacts.int8_tflite, folder, "digits", digits_artifacts.reference)
    return folder / "src", digits_artifacts.reference


@pytest.mark.parametrize("board", BOARDS)
def test_digits_is_bit_exact_profiled_and_repeatable(board, digits, tmp_path):
    src, reference = digits
    target = load_target(board)
    pipeline.build_stage(target, src, reference, tmp_path, count=4)
    summary = pipeline.emulate_stage(target, tmp_path / "firmware.elf", reference, tmp_path)

    assert summary["bit_exact"] and summary["samples"] == 4 and summary["violation_count"] == 0
    assert summary["plugin_api"] == 1  # QEMU 7.2
    with open(tmp_path / "firmware.elf", "rb") as f:  # the flashable ELF has the board's addresses
        assert ELFFile(f).get_section_by_name(".isr_vector")["sh_addr"] == target.app_flash.origin
    assert summary["emulated_elf"] == str(emulator_elf_path(tmp_path / "firmware.elf") if target.is_placed
                                          else tmp_path / "firmware.elf")

    windows, profile = summary["window_instructions"], summary["profile"]
    layers = profile["layers"]
    assert sum(row["instructions"] for row in layers) == max(windows)  # the profile adds up exactly
    assert [row["name"].split(" (")[0] for row in layers if not row["overhead"]] == [
        "op 0 FULLY_CONNECTED", "op 1 FULLY_CONNECTED", "op 2 FULLY_CONNECTED"]
    assert all(row["calls"] == 1 for row in layers if not row["overhead"])
    slowest = summary["window_cycles"][profile["slowest_window"]]
    assert sum(row["cycles"] for row in layers) == pytest.approx(slowest, abs=0.05)
    assert all(0.3 < c / i < 3.0 for c, i in zip(summary["window_cycles"], windows))
    check = profile["check"]  # the histogram accounts for every instruction and every cycle
    assert check["histogram_instructions"] == check["instructions"] == summary["instructions_total"]
    assert check["histogram_cycles_centi"] == check["cycles_centi"]
    assert profile["functions"][0]["function"] == "tinylr_fully_connected"
    assert (tmp_path / "profile.png").stat().st_size > 1000 and "op 1 FULLY_CONNECTED" in (tmp_path / "profile.md").read_text()

    again = emulate(tmp_path / "firmware.elf", target)
    assert again.window_instructions == windows and again.instructions_total == summary["instructions_total"]
    assert again.window_cycles == summary["window_cycles"] and again.peak_stack_bytes == summary["peak_stack_bytes"]


@pytest.mark.parametrize("board", BOARDS)
def test_out_of_bounds_is_caught_on_every_board(board, tmp_path):
    target = load_target(board)
    elf = build_toy(tmp_path, target, "oob", OUT_OF_BOUNDS, [[1, 2, 3, 4]])
    result = emulate(elf, target, allow_violations=True)
    symbols = FirmwareSymbols.read(result.emulated_elf)
    read, execute = result.violations
    assert read["address"] == target.emulated_app_ram.end + 16 and read["kind"] == "read" and read["symbol"] == "toy_peek"
    assert execute["kind"] == "execute" and execute["address"] == symbols["toy_ram_code"]
    assert result.violation_count == 5 and result.outputs == [bytes([1, 2, 3, 4])]
    with pytest.raises(TinylrError, match=rf"outside {board}'s application memory .*toy_peek"):
        emulate(elf, target)


@pytest.mark.parametrize("board", BOARDS)
def test_model_too_big_for_the_board_is_refused(board, tmp_path):
    target = load_target(board)
    squeezed = target.with_reservations({"test_squeeze": (target.app_flash.size - 2048, 0)})
    source = "const int8_t toy_big[8192] = {1};\nint toy_invoke(const int8_t *in, int8_t *out)\n" \
             "{ for (int i = 0; i < 4; i++) out[i] = (int8_t)(in[i] + toy_big[i * 2000]); return 0; }\n"
    with pytest.raises(OverBudgetError, match=rf"does not fit {board}: FLASH over by \d+ bytes .*test_squeeze"):
        build_toy(tmp_path, squeezed, "big", source, [[1, 2, 3, 4]])


UNALIGNED = """
volatile uint8_t toy_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
__attribute__((noinline)) uint32_t toy_load(uintptr_t address)
{
    return *(volatile const uint32_t *)address;
}
int toy_invoke(const int8_t *in, int8_t *out)
{
    const uint32_t word = toy_load((uintptr_t)&toy_bytes[1] + (uintptr_t)in[0]);
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = (int8_t)(word >> (8 * i));
    }
    return 0;
}
"""


def test_v6m_rules_hold_on_the_v7m_emulator(tmp_path):
    """The M0+ board runs on QEMU's Cortex-M3; the harness makes unaligned accesses fault
    as the M0+ does, where the M4 board allows them."""
    v6m = next(load_target(b) for b in BOARDS if load_target(b).arch == "armv6-m")
    v7m = next(load_target(b) for b in BOARDS if load_target(b).arch == "armv7e-m" and not load_target(b).is_placed)
    assert v6m.qemu_cpu == "cortex-m3"
    assert emulate(build_toy(tmp_path, v7m, "unaligned", UNALIGNED, [[0, 0, 0, 0]]), v7m).outputs == [bytes([2, 3, 4, 5])]
    with pytest.raises(TinylrError, match=r"HardFault at pc 0x[0-9A-F]{8} in toy_load.*UNALIGNED"):
        emulate(build_toy(tmp_path, v6m, "unaligned", UNALIGNED, [[0, 0, 0, 0]]), v6m)
