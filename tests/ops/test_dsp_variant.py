"""The `dsp` kernel variant (SMLAD / SXTB16 on Armv7E-M and Armv8-M Mainline) is bit-exact
with TFLM on both of its code paths: the portable fallback on the host (gcc, ASan+UBSan)
and the SIMD path in the emulated Cortex-M4 (nRF52840 build, QEMU), over shapes that
exercise every loop tail (depths not multiple of 4, odd filter and pixel counts), padding,
strides, groups, dilation, per-tensor and per-channel weights, and each kernel's fallbacks.
Also: the ELF really executes the DSP instructions, the portable models equal the
instructions on the emulated core, and every board with the DSP extension uses the
variant."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.emulate.boards import build_toy
from tests.modelbuild import dense_stack, edit
from tests.ops import build_spatial as b
from tinylr import codegen, hostcheck, ir, pipeline, reference, templates, toolchain
from tinylr.targets import known_targets, load_target

pytestmark = pytest.mark.slow

EMULATED = 6  # samples run in the emulator: the three extremes (all -128, 127, 0) and three random

FC_CASES = {
    # depths 13 and 7 (word tails of 1 and 3), 7 and 6 outputs (row tails of 3 and 2)
    "tails_relu_per_channel": dict(widths=(13, 7, 6), activation="relu"),
    "per_tensor_batch_2": dict(widths=(37, 9), per_channel=False, batch=2),
    "one_output_long_depth": dict(widths=(300, 5, 1), activation="relu6"),
}

# id -> (input_hw, channels, filters, kernel, options)
CONV_CASES = {
    # 45 taps (tail 1), 7 filters (odd), 42 pixels, SAME border: im2col of two pixels
    "3x3_same_odd_filters": ((7, 6), 5, 7, 3, dict(activation="relu")),
    "3x3_s2_valid_per_tensor": ((9, 7), 3, 5, 3, dict(strides=2, padding="valid", per_channel=False)),
    "kws_like_first_layer": ((12, 6), 1, 10, (5, 3), dict(strides=2)),
    "dilation_2_same": ((11, 9), 3, 4, 3, dict(dilation=2, activation="relu6")),
    "grouped_3x3": ((6, 5), 4, 6, 3, dict(groups=2)),
    # 1x1: the input pixels are the columns (adjacent pixels, 25 = odd count, depth tail 2)
    "pointwise_adjacent": ((5, 5), 6, 5, 1, {}),
    "pointwise_s2": ((7, 6), 8, 6, 1, dict(strides=2, padding="valid")),
    "pointwise_grouped": ((5, 3), 6, 9, 1, dict(groups=3)),
    "batch_2_zero_point_-128": ((5, 4), 3, 3, 3, dict(batch=2, calibration=(0.0, 6.0))),
    # windows of 630 taps (one pixel per pass) and 1170 taps (no im2col: row by row)
    "one_column_window": ((4, 5), 70, 3, 3, {}),
    "large_window": ((4, 3), 130, 3, 3, {}),
}

# id -> (input_hw, channels, kernel, options)
DEPTHWISE_CASES = {
    "3x3_same_6_channels": ((9, 7), 6, 3, dict(activation="relu")),      # 4 + a tail of 2
    "3x3_s2_same_8_channels": ((8, 9), 8, 3, dict(strides=2)),
    "3x3_s2_valid_7_channels": ((9, 7), 7, 3, dict(strides=2, padding="valid", activation="relu6")),
    "dilation_2_per_tensor": ((11, 9), 5, 3, dict(dilation=2, per_channel=False)),
    "kernel_larger_than_image": ((4, 3), 4, 5, {}),
    "multiplier_2": ((6, 5), 3, 3, dict(multiplier=2)),                     # the reference loops
    "batch_2_zero_point_-128": ((5, 4), 9, 3, dict(batch=2, calibration=(0.0, 6.0))),
}


def _check(model: bytes, tmp_path: Path, kernel: str, seed: int = 1) -> Path:
    """Generate with the dsp variant; require TFLM's outputs bit for bit on the host
    (portable fallback) and in QEMU (SIMD path). Returns the firmware folder."""
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    graph = ir.load(path)
    manifest = codegen.generate(path, tmp_path / "src", "dspcase", variant="dsp")
    assert manifest["kernel_variant"] == "dsp" and manifest["kernel_files"][f"{kernel}.c"] == "dsp"
    assert manifest["kernel_files"][f"{kernel}.h"] == "reference"  # same params struct as the reference

    inputs = b.random_inputs(graph.tensors[graph.inputs[0]].size, seed)
    expected = reference.run(model, inputs)
    actual = hostcheck.run_host(tmp_path / "src", inputs)
    result = hostcheck.compare(expected, actual)
    assert result["bit_exact"], result
    assert len(np.unique(actual)) > 2, "degenerate test: the model's output barely varies"

    np.savez(tmp_path / "reference.npz", inputs=inputs, outputs=expected)
    target = load_target("nrf52840")
    firmware = tmp_path / "firmware"
    pipeline.build_stage(target, tmp_path / "src", tmp_path / "reference.npz", firmware, count=EMULATED)
    summary = pipeline.emulate_stage(target, firmware / "firmware.elf", tmp_path / "reference.npz", firmware)
    assert summary["bit_exact"] and summary["samples"] == EMULATED and summary["violation_count"] == 0
    return firmware


def _mnemonics(firmware: Path, kernel: str) -> set[str]:
    """Instructions in the ELF's functions that come from the kernel's object file."""
    nm = toolchain.require("arm-none-eabi-nm")
    objdump = toolchain.require("arm-none-eabi-objdump")
    obj = firmware / "firmware" / "obj" / "model" / f"{kernel}.o"
    symbols = {line.split()[-1] for line in subprocess.run([nm, "--defined-only", str(obj)], capture_output=True,
                                                           text=True, check=True).stdout.splitlines()
               if line.split()[1] in ("T", "t")}
    assert f"tinylr_{kernel}" in symbols
    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(firmware / "firmware.elf")],
                             capture_output=True, text=True, check=True).stdout
    found, inside = set(), False
    for line in listing.splitlines():
        if line.endswith(">:"):
            inside = line.split("<", 1)[1][:-2] in symbols
        elif inside and "\t" in line:
            found.add(line.split("\t")[1].split()[0].split(".")[0])
    return found


@pytest.mark.parametrize("case", list(FC_CASES))
def test_fully_connected_dsp_is_bit_exact_on_host_and_emulator(tmp_path, case):
    options = dict(FC_CASES[case])
    model = dense_stack(options.pop("widths"), seed=len(case), **options)
    firmware = _check(model, tmp_path, "fully_connected")
    assert {"smlad", "sxtb16"} <= _mnemonics(firmware, "fully_connected")


def test_fully_connected_dsp_asymmetric_weights(tmp_path):
    """A nonzero weights zero point (hand-edited: converters emit symmetric weights) takes
    the kernel's offset loop, still bit-exact."""
    def shift_zero_point(m):
        sub = m.subgraphs[0]
        for op in sub.operators:
            weights = sub.tensors[op.inputs[1]]
            weights.quantization.zeroPoint = [5] * len(weights.quantization.scale)

    model = edit(dense_stack((16, 6), final_activation="relu", per_channel=False, seed=3), shift_zero_point)
    _check(model, tmp_path, "fully_connected")
    assert ".weights_offset = -5" in (tmp_path / "src" / "dspcase.c").read_text()


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_2d_dsp_is_bit_exact_on_host_and_emulator(tmp_path, case):
    hw, channels, filters, kernel, options = CONV_CASES[case]
    firmware = _check(b.conv(hw, channels, filters, kernel, **options), tmp_path, "conv_2d")
    if case == "3x3_same_odd_filters":
        assert {"smlad", "sxtb16"} <= _mnemonics(firmware, "conv_2d")


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_depthwise_conv_2d_dsp_is_bit_exact_on_host_and_emulator(tmp_path, case):
    hw, channels, kernel, options = DEPTHWISE_CASES[case]
    firmware = _check(b.depthwise(hw, channels, kernel, **options), tmp_path, "depthwise_conv_2d")
    if case == "3x3_same_6_channels":
        assert {"smlabb", "smlatt", "sxtab16", "sxtb16"} <= _mnemonics(firmware, "depthwise_conv_2d")


MODELS_VS_INSTRUCTIONS = """
{simd}
static uint32_t toy_state;
static uint32_t toy_next(void)
{{
    toy_state = toy_state * 1664525u + 1013904223u;
    return toy_state;
}}
int toy_invoke(const int8_t *in, int8_t *out)
{{
    static const uint32_t edges[] = {{0u, 0xFFFFFFFFu, 0x80808080u, 0x7F7F7F7Fu, 0x80007FFFu, 0x7FFF8000u}};
    uint32_t mismatches = 0;
    uint32_t checksum = 0;
    toy_state = tinylr_load4(in);
    for (int i = 0; i < 4000; ++i) {{
        const uint32_t x = i < 36 ? edges[i % 6] : toy_next();
        const uint32_t y = i < 36 ? edges[i / 6] : toy_next();
        const int32_t acc = i % 3 == 0 ? (int32_t)(0x7FFFFFF0u + (uint32_t)i) : (int32_t)toy_next();
        const uint32_t got[7] = {{
            tinylr_sxtb16(x), tinylr_sxtb16_ror8(x), tinylr_sxtab16(y, x), tinylr_sxtab16_ror8(y, x),
            (uint32_t)tinylr_smlad(x, y, acc), (uint32_t)tinylr_smlabb(x, y, acc), (uint32_t)tinylr_smlatt(x, y, acc)}};
        const uint32_t want[7] = {{
            tinylr_model_sxtab16(0u, x), tinylr_model_sxtab16(0u, tinylr_model_ror8(x)), tinylr_model_sxtab16(y, x),
            tinylr_model_sxtab16(y, tinylr_model_ror8(x)), (uint32_t)tinylr_model_smlad(x, y, acc),
            (uint32_t)tinylr_model_smla(x, y, acc, 0), (uint32_t)tinylr_model_smla(x, y, acc, 1)}};
        for (int k = 0; k < 7; ++k) {{
            mismatches += got[k] != want[k];
            checksum = (checksum ^ got[k]) * 16777619u;
        }}
    }}
    out[0] = (int8_t)(mismatches > 127u ? 127u : mismatches);
    out[1] = (int8_t)TINYLR_DSP_INTRINSICS;
    out[2] = (int8_t)(checksum & 0x7Fu);
    out[3] = (int8_t)((checksum >> 8) & 0x7Fu);
    return 0;
}}
"""


def test_portable_models_equal_the_instructions_on_the_emulated_core(tmp_path):
    """What the host parity build runs (the portable models) is what the Cortex-M4 computes
    (the intrinsics), for seven instructions over 4,000 operand sets per test vector: edge
    words (-128/127 bytes, ±32768 halfwords, sums that wrap), then pseudo-random words."""
    from tinylr.emulate import emulate

    target = load_target("nrf52840")
    source = MODELS_VS_INSTRUCTIONS.format(simd=templates.render("kernels/dsp/_simd.inc.j2"))
    vectors = [[1, 2, 3, 4], [-7, 99, -128, 127]]
    result = emulate(build_toy(tmp_path, target, "simd", source, vectors), target)
    assert [o[:2] for o in result.outputs] == [bytes([0, 1])] * 2
    assert result.outputs[0][2:] != result.outputs[1][2:]  # the seeds reached the operands


def test_boards_with_the_dsp_extension_use_the_dsp_kernels():
    targets = [load_target(name) for name in known_targets()]
    assert "dsp" in codegen.variants()
    assert {t.name for t in targets if t.kernel_variant == "dsp"} == {t.name for t in targets if t.dsp}
    assert any(not t.dsp and t.kernel_variant == "reference" for t in targets)  # the M0+
