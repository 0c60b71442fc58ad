"""The emulate stage on real QEMU with toy firmwares built by the real cross compiler."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tinylr.emulate import EmulationResult, FirmwareSymbols, emulate
from tinylr.emulate.qemu import parse_outputs
from tinylr.errors import TinylrError

DOUBLE = """
int toy_invoke(const int8_t *in, int8_t *out)
{
    for (int i = 0; i < TOY_IN; i++) {
        out[i] = (int8_t)(in[i] * 2);
    }
    return 0;
}
"""

# in[0] * 10 turns of a two-instruction loop written in assembly, so the count per
# iteration is known from the source, not measured.
LOOP = """
int toy_invoke(const int8_t *in, int8_t *out)
{
    uint32_t n = (uint32_t)in[0] * 10u;
    const uint32_t iterations = n;
    __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = (int8_t)(iterations >> (8 * i));
    }
    return (int)n; /* 0 once the loop has run */
}
"""

BAD_POINTER = """
typedef void (*toy_fn)(void);
volatile uintptr_t toy_pointer = 0xFFFFFFF1u;
int toy_invoke(const int8_t *in, int8_t *out)
{
    ((toy_fn)toy_pointer)();
    out[0] = in[0];
    return 0;
}
"""

FAULT = """
__attribute__((noinline)) void toy_poke(void)
{
    *(volatile uint32_t *)0xFFFFFFF0u = 1u; /* nothing there: a precise bus fault */
}
int toy_invoke(const int8_t *in, int8_t *out)
{
    if (in[0] == 1) {
        toy_poke();
    }
    out[0] = in[0];
    return 0;
}
"""

SPIN = """
volatile uint32_t toy_sink;
__attribute__((noinline)) void toy_spin(void)
{
    for (;;) {
        toy_sink++;
    }
}
int toy_invoke(const int8_t *in, int8_t *out)
{
    toy_spin();
    out[0] = in[0];
    return 0;
}
"""

# 0x20040010 is 16 bytes past the nRF52840's 256 KB of RAM (QEMU's AN386 has RAM there);
# toy_ram_code is `bx lr` placed in RAM, outside the application flash.
OUT_OF_BOUNDS = """
typedef void (*toy_fn)(void);
uint16_t toy_ram_code[2] = {0x4770u, 0xbf00u};
__attribute__((noinline)) int8_t toy_peek(void)
{
    return *(volatile const int8_t *)0x20040010u;
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

STACK_BUFFER = """
int toy_invoke(const int8_t *in, int8_t *out)
{
    volatile int8_t buffer[2048];
    for (int i = 0; i < 2048; i++) {
        buffer[i] = in[i & 3];
    }
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = buffer[2047 - i];
    }
    return 0;
}
"""

VECTORS = [[1, 2, 3, 4], [5, 6, 7, -8], [100, -100, 63, -64]]


@pytest.mark.slow
def test_outputs_are_what_the_toy_computes(build_toy, target, tmp_path):
    elf = build_toy("double", DOUBLE, VECTORS)
    result = emulate(elf, target, result_path=tmp_path / "emulation.json")

    expected = (np.array(VECTORS, dtype=np.int16) * 2).astype(np.int8)
    assert result.outputs == [row.tobytes() for row in expected]
    assert result.exit_code == 0 and result.console.endswith("TINYLR_DONE\n")
    assert len(result.window_instructions) == len(VECTORS)
    assert 0 < sum(result.window_instructions) < result.instructions_total
    assert result.violations == [] and result.violation_count == 0
    assert result.qemu_version.startswith("QEMU emulator version")
    assert result.command[:5] == [result.command[0], "-M", target.qemu_machine, "-cpu", target.qemu_cpu]
    written = json.loads((tmp_path / "emulation.json").read_text())
    assert written == json.loads(json.dumps(result.to_json()))
    assert written["outputs"][0] == expected[0].tobytes().hex()


@pytest.mark.slow
def test_counts_repeat_exactly_and_grow_linearly(build_toy, target):
    elf = build_toy("loop", LOOP, [[10, 3, 0, 0], [20, 3, 0, 0], [30, 3, 0, 0]])
    first, second = emulate(elf, target), emulate(elf, target)

    assert first.instructions_total == second.instructions_total
    assert first.window_instructions == second.window_instructions
    w100, w200, w300 = first.window_instructions
    assert w200 - w100 == 200 and w300 - w200 == 200  # subs + bne per iteration, nothing else
    assert 0 < w100 - 200 < 60  # the call, the marker functions and the output loop
    assert first.outputs == [n.to_bytes(4, "little") for n in (100, 200, 300)]


@pytest.mark.slow
def test_fault_names_pc_and_function(build_toy, target):
    elf = build_toy("fault", FAULT, [[0, 0, 0, 0], [1, 0, 0, 0]])
    with pytest.raises(TinylrError) as info:
        emulate(elf, target)
    message = str(info.value)
    pc = int(re.search(r"at pc 0x([0-9A-F]{8}) in toy_poke", message).group(1), 16)
    assert FirmwareSymbols.read(elf).function_at(pc) == "toy_poke"
    assert "HardFault" in message and "PRECISERR" in message and "in toy_invoke" in message

    with pytest.raises(TinylrError, match=r"at pc 0xFFFFFFF0 .*called from lr 0x[0-9A-F]{8} in toy_invoke.*IACCVIOL"):
        emulate(build_toy("bad_pointer", BAD_POINTER, [[0, 0, 0, 0]]), target)


@pytest.mark.slow
def test_endless_loop_stops_at_the_instruction_limit(build_toy, target):
    elf = build_toy("spin", SPIN, [[0, 0, 0, 0]])
    with pytest.raises(TinylrError, match=r"instruction limit of 100,000 .*pc 0x[0-9A-F]{8} in toy_spin"):
        emulate(elf, target, max_instructions=100_000)


@pytest.mark.slow
def test_endless_loop_stops_at_the_wall_time_limit(build_toy, target):
    elf = build_toy("spin", SPIN, [[0, 0, 0, 0]])
    with pytest.raises(TinylrError, match=r"longer than 0.5 s wall time .*pc 0x[0-9A-F]{8} in toy_spin"):
        emulate(elf, target, timeout_s=0.5, max_instructions=10**15)


@pytest.mark.slow
def test_access_past_ram_is_a_violation(build_toy, target, tmp_path):
    elf = build_toy("oob", OUT_OF_BOUNDS, [[1, 2, 3, 4]])
    result = emulate(elf, target, allow_violations=True)
    symbols = FirmwareSymbols.read(elf)

    read, execute = result.violations
    assert read["address"] == 0x20040010 and read["size"] == 1 and read["kind"] == "read"
    assert read["symbol"] == "toy_peek" and symbols.function_at(read["pc"]) == "toy_peek"
    assert execute == {"pc": symbols["toy_ram_code"], "symbol": None, "address": symbols["toy_ram_code"],
                       "size": 2, "kind": "execute"}
    assert result.violation_count == 5  # four reads (one per input byte) and one call
    assert result.outputs == [bytes([1, 2, 3, 4])]  # QEMU's RAM beyond the chip reads zero

    stale = tmp_path / "emulation.json"
    stale.write_text("{}")
    with pytest.raises(TinylrError, match=r"5 times.*read of 1 B at 0x20040010 from pc 0x[0-9A-F]{8} in toy_peek"):
        emulate(elf, target, result_path=stale)
    assert not stale.exists()  # a failed run leaves no result that looks valid


@pytest.mark.slow
def test_stack_buffer_shows_in_peak_stack(build_toy, target):
    small = emulate(build_toy("double", DOUBLE, VECTORS), target)
    big = emulate(build_toy("stack", STACK_BUFFER, [[1, 2, 3, 4]]), target)

    assert big.outputs == [bytes([4, 3, 2, 1])]
    assert big.peak_stack_bytes >= 2048 and big.window_peak_stack_bytes >= 2048
    assert big.window_peak_stack_bytes <= big.peak_stack_bytes
    assert big.window_peak_stack_bytes - small.window_peak_stack_bytes >= 2048
    assert small.peak_stack_bytes < 512


@pytest.mark.slow
def test_invoke_error_and_unfinished_harness(build_toy, target):
    failing = build_toy("fails", "int toy_invoke(const int8_t *in, int8_t *out) { (void)in; (void)out; return 3; }", [[0] * 4])
    with pytest.raises(TinylrError, match=r"exited with status 1: invoke returned 3"):
        emulate(failing, target)
    quits = build_toy("quits", '#include "semihost.h"\nint toy_invoke(const int8_t *in, int8_t *out) '
                      "{ (void)in; (void)out; sh_exit(0); }", [[0] * 4])
    with pytest.raises(TinylrError, match="without printing TINYLR_DONE"):
        emulate(quits, target)


@pytest.mark.slow
def test_lockup_is_reported_with_its_function(build_toy, target):
    # A vector table QEMU cannot read makes the bus fault unhandleable: the core locks up.
    source = FAULT.replace("void toy_poke(void)\n{", "void toy_poke(void)\n{\n    *(volatile uint32_t *)0xE000ED08u = 0x30000000u;")
    elf = build_toy("lockup", source, [[1, 0, 0, 0]])
    with pytest.raises(TinylrError, match=r"Lockup.*in toy_poke"):
        emulate(elf, target)


@pytest.mark.slow
def test_wrong_target_layout_is_refused(build_toy, target):
    elf = build_toy("double", DOUBLE, VECTORS)
    other = target.with_reservations({"radio_stack": (0x1000, 0x1000)})
    with pytest.raises(TinylrError, match="not linked for nrf52840"):
        emulate(elf, other)


def test_missing_qemu_is_a_clear_error(target, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TinylrError, match=r"qemu-system-arm not found.*apt-get install .*qemu-system-arm"):
        emulate(tmp_path / "firmware.elf", target)


def test_outputs_must_be_complete_and_unique():
    assert parse_outputs("TINYLR_OUT 1 ff\nTINYLR_OUT 0 0102\n") == [b"\x01\x02", b"\xff"]
    with pytest.raises(TinylrError, match="skip index 1"):
        parse_outputs("TINYLR_OUT 0 00\nTINYLR_OUT 2 00\n")
    with pytest.raises(TinylrError, match="output 0 twice"):
        parse_outputs("TINYLR_OUT 0 00\nTINYLR_OUT 0 00\n")
    assert EmulationResult.__dataclass_params__.frozen
