"""The cycle model: hand-written instruction mixes get the per-core table's numbers,
decoded statically and accumulated by the plugin in real runs; flash misses are priced
at the board's wait states."""

from __future__ import annotations

import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from tests.emulate.boards import build_toy
from tinylr.emulate import emulate
from tinylr.emulate.timing import CLASSES, Program, cache_lines, decode, instruction_cost, load_core_table
from tinylr.targets import TARGETS_DIR, known_targets, load_target

M4_SNIPPET = """
    subs r0, r0, #1
    bne 1f
1:  ldr r1, [r0]
    ldr r2, [r0, #4]
    ldr r3, [r2]
    sdiv r1, r2, r3
    smlad r1, r2, r3, r1
    mla r1, r2, r3, r1
    smull r1, r2, r3, r1
    vmla.f32 s0, s1, s2
    vdiv.f32 s0, s1, s2
    vmov r1, s0
    push {r4-r7, lr}
    pop {r4-r7, pc}
"""
# (class, base cycles, extra cycles when it branches) on the Cortex-M4, from its TRM
# (DDI 0439B Table 3-1): the second load pipelines behind the first; the third's base
# register is the second's result, so it does not.
M4_EXPECTED = [
    ("alu", 1, 0), ("branch", 1, 2), ("load", 2, 0), ("load", 1, 0), ("load", 2, 0), ("div", 7, 0),
    ("dsp_mac", 1, 0), ("mla", 2, 0), ("mul_long", 1, 0), ("fp_mac", 3, 0), ("fp_div", 14, 0),
    ("fp_move", 1, 0), ("store_multiple", 6, 0), ("load_multiple", 6, 2),
]
M0PLUS_SNIPPET = """
    subs r0, r0, #1
    bne 1f
1:  ldr r1, [r0]
    ldr r2, [r0, #4]
    muls r1, r2
    push {r4-r7, lr}
    pop {r4-r7, pc}
"""
M0PLUS_EXPECTED = [("alu", 1, 0), ("branch", 1, 1), ("load", 2, 0), ("load", 2, 0), ("mul", 1, 0),
                   ("store_multiple", 6, 0), ("load_multiple", 6, 2)]
# Cortex-M7: independent ALU pairs and ALU + load dual-issue; a dependent pair does not.
M7_SNIPPET = """
    adds r0, r0, #1
    adds r1, r1, #1
    adds r2, r2, r0
    ldr r3, [r4]
    mla r5, r6, r7, r5
    adds r6, r6, #1
"""
M7_EXPECTED = [("alu", 1, 0), ("alu", 0, 0), ("alu", 1, 0), ("load", 0, 0), ("mla", 1, 0), ("alu", 0, 0)]


def assemble(snippet: str, cpu_flags: list[str], tmp_path) -> bytes:
    source = tmp_path / "snippet.s"
    source.write_text(".syntax unified\n.thumb\n.text\n" + snippet)
    obj = tmp_path / "snippet.o"
    subprocess.run(["arm-none-eabi-gcc", *cpu_flags, "-c", str(source), "-o", str(obj)], check=True, capture_output=True)
    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".text").data()


def costs_of(code: bytes, table_name: str) -> list[tuple[str, float, float]]:
    table, out, previous, paired = load_core_table(table_name), [], None, False
    for insn in decode(code, 0x1000):
        cost, paired = instruction_cost(insn, table, previous, paired)
        out.append((insn.cls, cost.base, cost.taken))
        previous = None if insn.control else insn
    return out


@pytest.mark.slow
@pytest.mark.parametrize("table,flags,snippet,expected", [
    ("cortex-m4", ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"], M4_SNIPPET, M4_EXPECTED),
    ("cortex-m33", ["-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"], M4_SNIPPET, M4_EXPECTED),
    ("cortex-m0plus", ["-mcpu=cortex-m0plus"], M0PLUS_SNIPPET, M0PLUS_EXPECTED),
    ("cortex-m7", ["-mcpu=cortex-m7"], M7_SNIPPET, M7_EXPECTED),
])
def test_instruction_mix_gets_the_table_numbers(table, flags, snippet, expected, tmp_path):
    assert costs_of(assemble(snippet, ["-mthumb", *flags], tmp_path), table) == expected


def test_every_core_table_loads_and_names_its_source():
    for path in sorted((TARGETS_DIR / "cores").glob("*.toml")):
        table = load_core_table(path.stem)
        assert table.source and set(table.cycles) <= set(CLASSES) | {"pipelined_load_store", "per_register",
                                                                      "branch_taken", "pc_write_penalty"}
        assert table.cost("alu") == 1 and table.cost("branch_taken") > table.cost("branch")
    for board in known_targets():
        assert load_core_table(load_target(board).core_table)


def test_cache_lines_are_powers_of_two():
    assert [cache_lines(n, 16) for n in (0, 16, 2048, 3000)] == [0, 1, 128, 128]


# Two instructions per turn, in[0] * 100 turns: the window difference between inputs is
# 100 turns of exactly subs + a taken bne.
LOOP = """
int toy_invoke(const int8_t *in, int8_t *out)
{
    uint32_t n = (uint32_t)in[0] * 100u;
    __asm__ volatile(".syntax unified\\n1: subs %0, %0, #1\\n\\tbne 1b" : "+l"(n) : : "cc");
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = (int8_t)n;
    }
    return 0;
}
"""
# cycles per turn: subs (alu) + bne taken (branch + taken extra); on the M7, subs and bne
# dual-issue (the branch is free) and a predicted taken branch costs 1 more.
LOOP_CYCLES = {"cortex-m4": 1 + 3, "cortex-m33": 1 + 3, "cortex-m0plus": 1 + 2, "cortex-m7": 1 + 0 + 1}


@pytest.mark.slow
@pytest.mark.parametrize("board", known_targets())
def test_plugin_accumulates_the_model_exactly(board, tmp_path):
    target = load_target(board)
    elf = build_toy(tmp_path, target, "loop", LOOP, [[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0]])
    result = emulate(elf, target)
    w1, w2, w3 = result.window_instructions
    assert w2 - w1 == w3 - w2 == 200
    _, c2, c3 = result.window_cycles  # the first window also pays for cold caches
    _, m2, m3 = result.profile["window_flash_misses"]  # the test input's line may or may not be buffered
    assert c3 - c2 - (m3 - m2) * target.flash_timing.wait_states == 100 * LOOP_CYCLES[target.core_table]


# Reads in[0] * 512 bytes of a 16-byte aligned table in flash, one byte per turn.
FLASH_READS = """
__attribute__((aligned(64))) const uint8_t toy_table[4096] = {1, 2, 3};
int toy_invoke(const int8_t *in, int8_t *out)
{
    const uint8_t *p = toy_table;
    uint32_t n = (uint32_t)in[0] * 512u, sum = 0, byte;
    __asm__ volatile(".syntax unified\\n1: ldrb %1, [%2]\\n\\tadds %2, %2, #1\\n\\tadds %0, %0, %1\\n\\tsubs %3, %3, #1\\n\\tbne 1b"
                     : "+l"(sum), "=&l"(byte), "+l"(p), "+l"(n) : : "cc", "memory");
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = (int8_t)(sum >> (8 * i));
    }
    return 0;
}
"""


@pytest.mark.slow
def test_flash_data_misses_cost_the_wait_states(tmp_path):
    target = next(load_target(b) for b in known_targets() if load_target(b).flash_timing.dcache_bytes == 0
                  and not load_target(b).flash_timing.unified)
    ft = target.flash_timing
    elf = build_toy(tmp_path, target, "reads", FLASH_READS, [[1, 0, 0, 0], [2, 0, 0, 0], [4, 0, 0, 0]])
    result = emulate(elf, target)
    misses = result.profile["window_flash_misses"]
    # no data cache: one line buffer, so every line of the table read is a miss
    assert misses[2] - misses[1] == 2 * 512 // ft.line_bytes
    cycles = result.window_cycles
    per_turn = 2 + 1 + 1 + 1 + 3  # ldrb (not pipelined), adds, adds, subs, taken bne on the M4 table
    assert cycles[2] - cycles[1] == 1024 * per_turn + (misses[2] - misses[1]) * ft.wait_states


@pytest.mark.slow
def test_program_decodes_every_function_of_a_firmware(tmp_path):
    target = load_target(known_targets()[0])
    elf = build_toy(tmp_path, target, "loop", LOOP, [[1, 0, 0, 0]])
    program = Program.read(elf)
    body = program.body("toy_invoke")
    assert any(i.name == "SUBS" or i.text.startswith("subs") for i in body)
    assert program.function_at(body[0].address) == "toy_invoke"
    lo, hi = program.code_range
    assert all(lo <= a < hi for a in program.instructions)


def test_docs_show_the_tables_the_code_reads():
    from tinylr.emulate.timing import markdown_tables

    assert markdown_tables() in (TARGETS_DIR.parent / "docs" / "timing.md").read_text()
