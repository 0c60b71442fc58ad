"""Per-layer profile: probes found by disassembling invoke, the probe log cut into
windows and layers, layers named by the manifest's ops."""

from __future__ import annotations

import pytest

from tests.emulate.boards import build_toy
from tinylr.emulate import emulate
from tinylr.emulate.profile import (
    EPILOGUE_ROW,
    FIRST_CALL_PROBE,
    HARNESS_ROW,
    PROBE_BEGIN,
    PROBE_END,
    PROBE_INVOKE,
    CallSite,
    ProfilePlan,
    label_calls,
    plan_profile,
    split_windows,
    window_rows,
)
from tinylr.emulate.timing import Program
from tinylr.targets import known_targets, load_target

# Three "layers": two calls to one kernel (like three FULLY_CONNECTED ops) and one to
# another, each doing in[0] * k turns of a loop, so their sizes are known.
LAYERED = """
__attribute__((noinline)) void toy_dense(volatile uint32_t *acc, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        *acc += i;
    }
}
__attribute__((noinline)) void toy_relu(volatile uint32_t *acc, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        *acc ^= i;
    }
}
volatile uint8_t toy_turns[3] = {10u, 20u, 30u};  /* volatile: every call sets up its argument alike */
int toy_invoke(const int8_t *in, int8_t *out)
{
    volatile uint32_t acc = 0;
    toy_dense(&acc, toy_turns[0] * (uint32_t)in[0]);
    toy_relu(&acc, toy_turns[1] * (uint32_t)in[0]);
    toy_dense(&acc, toy_turns[2] * (uint32_t)in[0]);
    for (int i = 0; i < TOY_OUT; i++) {
        out[i] = (int8_t)(acc >> (8 * i));
    }
    return 0;
}
"""


def test_calls_are_named_by_the_manifest_ops_in_order():
    calls = tuple(CallSite(FIRST_CALL_PROBE + i, 0x100 + 4 * i, 0x104 + 4 * i, name)
                  for i, name in enumerate(["tinylr_conv_2d", "memcpy", "tinylr_fully_connected", None]))
    labels = label_calls(calls, ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"])
    assert labels == ["op 0 CONV_2D (tinylr_conv_2d)", "call memcpy", "op 2 FULLY_CONNECTED (tinylr_fully_connected)",
                      "call indirect call"]
    assert label_calls(calls[:1], None) == ["call tinylr_conv_2d"]
    depthwise = (CallSite(3, 0, 4, "tinylr_depthwise_conv_2d"), CallSite(4, 4, 8, "tinylr_conv_2d"))
    assert label_calls(depthwise, ["DEPTHWISE_CONV_2D", "CONV_2D"]) == [
        "op 0 DEPTHWISE_CONV_2D (tinylr_depthwise_conv_2d)", "op 1 CONV_2D (tinylr_conv_2d)"]


def test_windows_and_rows_add_up():
    # [probe, instructions, cycles (1/100), fetch misses, data misses]
    log = [[PROBE_INVOKE, 1, 100, 0, 0],  # outside a window: ignored
           [PROBE_BEGIN, 10, 1000, 0, 0], [PROBE_INVOKE, 15, 1500, 0, 0], [3, 115, 12500, 1, 2],
           [4, 140, 15000, 1, 2], [3, 240, 26000, 2, 2], [PROBE_END, 250, 27000, 2, 3],
           [PROBE_BEGIN, 300, 30000, 2, 3], [PROBE_END, 310, 31000, 2, 3]]
    windows = split_windows(log)
    assert [len(w) for w in windows] == [6, 2]
    plan = ProfilePlan("toy_invoke", 0x200, (CallSite(3, 0x202, 0x206, "k"), CallSite(4, 0x208, 0x20c, "j")), None)
    target = load_target(known_targets()[0])
    rows = window_rows(windows[0], plan, ["layer a", "layer b"], target)
    assert [r["name"] for r in rows] == [HARNESS_ROW, "layer a", "layer b", EPILOGUE_ROW]
    assert [r["instructions"] for r in rows] == [5, 200, 25, 10]  # probe 3 fired twice: one row, two calls
    assert [r["calls"] for r in rows] == [1, 2, 1, 0]
    assert sum(r["instructions"] for r in rows) == 250 - 10
    ws = target.flash_timing.wait_states
    assert sum(r["cycles"] for r in rows) == pytest.approx((27000 - 1000) / 100 + 5 * ws)


@pytest.mark.slow
def test_layers_of_a_toy_have_their_known_sizes(tmp_path):
    target = load_target(known_targets()[0])
    elf = build_toy(tmp_path, target, "layered", LAYERED, [[1, 0, 0, 0], [2, 0, 0, 0]])
    plan = plan_profile(Program.read(elf))
    assert plan.invoke == "toy_invoke"
    assert [c.callee for c in plan.calls] == ["toy_dense", "toy_relu", "toy_dense"]

    result = emulate(elf, target, ops=["DENSE", "RELU", "DENSE"])
    layers = result.profile["layers"]
    assert [r["name"] for r in layers] == [HARNESS_ROW, "op 0 DENSE (toy_dense)", "op 1 RELU (toy_relu)",
                                           "op 2 DENSE (toy_dense)", EPILOGUE_ROW]
    assert sum(r["instructions"] for r in layers) == max(result.window_instructions)
    assert result.profile["slowest_window"] == 1  # in[0] = 2
    # op 1 and op 2 have the same fixed part (argument set-up in invoke, the kernels'
    # entry and return): they differ by their loops, 2 * 30 turns of toy_dense against
    # 2 * 20 of toy_relu, whose lengths come from the disassembly.
    program = Program.read(elf)

    def turn(function: str) -> int:
        body = program.body(function)
        back = next(i for i in body if i.control and i.target is not None and i.target < i.address)
        return sum(1 for i in body if back.target <= i.address <= back.address)

    _, op1, op2 = (r["instructions"] for r in layers[1:4])
    assert op2 - op1 == 60 * turn("toy_dense") - 40 * turn("toy_relu")
    assert [r["calls"] for r in layers] == [1, 1, 1, 1, 0]
    unnamed = emulate(elf, target).profile["layers"]  # without ops: two rows named alike, kept apart
    assert [r["name"] for r in unnamed[1:4]] == ["call toy_dense", "call toy_relu", "call toy_dense"]
    assert [r["instructions"] for r in unnamed] == [r["instructions"] for r in layers]
