import json

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from tinylr import build
from tinylr.errors import OverBudgetError, TinylrError
from tinylr.targets import load_target

pytestmark = pytest.mark.slow  # runs the cross compiler


def toy_model(folder, table_bytes=16):
    """A model folder as the generate stage writes one: out[i] = in[i] + table[i]."""
    folder.mkdir()
    (folder / "toy.h").write_text(
        "#include <stdint.h>\n#define TOY_IN 4\n#define TOY_OUT 4\n"
        "int toy_invoke(const int8_t *in, int8_t *out);\n")
    (folder / "toy.c").write_text(
        f'#include "toy.h"\nconst int8_t toy_table[{table_bytes}] = {{1, 2, 3, 4}};\n'
        "int toy_invoke(const int8_t *in, int8_t *out)\n"
        "{ for (int i = 0; i < 4; ++i) out[i] = (int8_t)(in[i] + toy_table[i]); return 0; }\n")
    (folder / "manifest.json").write_text(json.dumps(dict(
        model="toy", header="toy.h", invoke="toy_invoke", input_bytes=4, output_bytes=4,
        input_bytes_macro="TOY_IN", output_bytes_macro="TOY_OUT")))
    return folder


VECTORS = np.array([[1, 2, 3, 4], [-1, -2, -3, -4]], np.int8)


def test_firmware_is_linked_into_the_region_beside_the_radio_stack(tmp_path):
    target = load_target("nrf52840")
    result = build.build_firmware(target, toy_model(tmp_path / "src"), VECTORS, tmp_path / "out")
    with open(result.elf, "rb") as f:
        elf = ELFFile(f)
        vectors = elf.get_section_by_name(".isr_vector")
        assert vectors["sh_addr"] == target.app_flash.origin == 0x27000
        symbols = elf.get_section_by_name(".symtab")
        estack = symbols.get_symbol_by_name("_estack")[0]["st_value"]
        assert estack == target.app_ram.end == 0x20040000
        for section in elf.iter_sections():
            if section["sh_flags"] & 0x2 and section["sh_size"]:
                start, end = section["sh_addr"], section["sh_addr"] + section["sh_size"]
                region = target.app_ram if start >= target.ram.origin else target.app_flash
                assert region.origin <= start and end <= region.end, section.name
    assert result.flash_bytes > 16 + 2 * 4  # at least the table and the test vectors
    assert json.loads((tmp_path / "out" / "build.json").read_text())["flash_bytes"] == result.flash_bytes
    # the flash image grows byte for byte with the model's constants
    bigger = build.build_firmware(target, toy_model(tmp_path / "src2", 16 + 4096), VECTORS, tmp_path / "out2")
    assert bigger.flash_bytes - result.flash_bytes == 4096


def test_model_too_big_for_flash_is_an_over_budget_error(tmp_path):
    target = load_target("nrf52840").with_reservations({"radio_stack": (1024 * 1024 - 2048, 23 * 1024)})
    with pytest.raises(OverBudgetError, match=r"FLASH over by \d+ bytes"):
        build.build_firmware(target, toy_model(tmp_path / "src", 4096), VECTORS, tmp_path / "out")
    assert not (tmp_path / "out" / "firmware.elf").exists()
    assert not (tmp_path / "out" / "build.json").exists()


def test_ram_too_small_for_the_stack_is_an_over_budget_error(tmp_path):
    target = load_target("nrf52840").with_reservations({"radio_stack": (156 * 1024, 256 * 1024 - 1024)})
    with pytest.raises(OverBudgetError, match="minimum stack"):
        build.build_firmware(target, toy_model(tmp_path / "src"), VECTORS, tmp_path / "out")


def test_wrong_vectors_and_missing_manifest(tmp_path):
    target = load_target("nrf52840")
    src = toy_model(tmp_path / "src")
    with pytest.raises(TinylrError, match=r"shape \(N, 4\)"):
        build.build_firmware(target, src, np.zeros((2, 5), np.int8), tmp_path / "out")
    (src / "manifest.json").unlink()
    with pytest.raises(TinylrError, match="not a generated model folder"):
        build.build_firmware(target, src, VECTORS, tmp_path / "out")


def test_missing_cross_compiler_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TinylrError, match="apt-get install .*gcc-arm-none-eabi"):
        build.build_firmware(load_target("nrf52840"), toy_model(tmp_path / "src"), VECTORS, tmp_path / "out")


def test_placed_board_gets_a_copy_linked_where_qemu_has_memory(tmp_path):
    target = load_target("stm32f746")
    result = build.build_firmware(target, toy_model(tmp_path / "src"), VECTORS, tmp_path / "out")
    assert result.emu_elf == build.emulator_elf_path(result.elf) and result.emu_elf.is_file()

    def layout(path):
        with open(path, "rb") as f:
            elf = ELFFile(f)
            return ({s.name: (s["sh_addr"], s["sh_size"]) for s in elf.iter_sections() if s["sh_flags"] & 0x2},
                    elf.get_section_by_name(".symtab").get_symbol_by_name("_estack")[0]["st_value"])

    (real, real_top), (emu, emu_top) = layout(result.elf), layout(result.emu_elf)
    assert real[".isr_vector"][0] == target.app_flash.origin == 0x0804_0000  # the board's own addresses
    assert emu[".isr_vector"][0] == target.emulated_app_flash.origin == 0x0004_0000
    assert {k: v[1] for k, v in real.items()} == {k: v[1] for k, v in emu.items()}  # the same bytes
    assert (real_top, emu_top) == (target.app_ram.end, target.emulated_app_ram.end)
    info = json.loads((tmp_path / "out" / "build.json").read_text())
    assert info["emu_elf"] == str(result.emu_elf) and info["invoke"] == "toy_invoke"
    assert (tmp_path / "out" / "firmware" / "linker.emu.ld").is_file()
    # an unplaced board gets no copy, and a rebuild removes a stale one
    nrf = build.build_firmware(load_target("nrf52840"), tmp_path / "src", VECTORS, tmp_path / "out")
    assert nrf.emu_elf is None and not build.emulator_elf_path(nrf.elf).exists()


def test_map_file_names_the_owner_of_every_byte(tmp_path):
    from tinylr.report import memory_by_owner

    result = build.build_firmware(load_target("nrf52840"), toy_model(tmp_path / "src", 4096), VECTORS, tmp_path / "out")
    flash, ram = memory_by_owner(result.map_file, result.sections)
    assert sum(flash.values()) == result.flash_bytes and sum(ram.values()) == result.static_ram_bytes
    assert flash["model weights and parameters"] >= 4096
    assert flash["test inputs (harness only)"] == VECTORS.size
    assert flash["libc, libgcc"] > 0 and flash["model code (kernels, invoke)"] > 0
    assert flash["harness (startup, semihosting, main)"] > 0


def test_v6m_board_gets_only_v6m_instructions(tmp_path):
    from tinylr.emulate.timing import Program

    target = load_target("rp2040")
    result = build.build_firmware(target, toy_model(tmp_path / "src"), VECTORS, tmp_path / "out")
    program = Program.read(result.elf)
    wide = {i.name for i in program.instructions.values() if i.size == 4}
    assert wide <= {"BL", "MRS", "MSR", "DMB", "DSB", "ISB"}, wide  # ARMv6-M's only 32-bit instructions
    assert not any(i.name == "IT" for i in program.instructions.values())
    startup = (tmp_path / "out" / "firmware" / "harness" / "startup.c").read_text()
    assert "SCB_CCR |= (1u << 3)" in startup and "SCB_CPACR" not in startup.split("void Reset_Handler(void)\n{")[1]
