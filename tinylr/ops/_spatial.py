"""Helpers shared by the spatial (NHWC) ops: windows, padding, per-channel requantization.

Everything here mirrors what TFLM computes at Prepare time (tensorflow/lite/kernels/
padding.h, kernel_util.cc's PopulateConvolutionQuantizationParams), so the generated
kernels get the same integers the reference kernels get.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import quant
from ..errors import TinylrError
from ..ir import Graph, Operator, Tensor
from ._kernel import ConstArray

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
PADDINGS = ("SAME", "VALID")


@dataclass(frozen=True)
class Window:
    """One spatial axis of a sliding window, as TFLM's ComputePaddingHeightWidth sees it."""

    in_size: int
    filter_size: int
    stride: int
    dilation: int
    out_size: int       # what the padding rule gives (the output tensor must agree)
    pad: int            # padding before the first element (TFLM uses only this side)
    interior_lo: int    # output positions [interior_lo, interior_hi) see only real input
    interior_hi: int

    @property
    def effective_filter(self) -> int:
        return (self.filter_size - 1) * self.dilation + 1


def window(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> Window:
    """Output size and leading padding of one axis, exactly as tensorflow/lite/kernels/padding.h.

    SAME: out = ceil(in / stride); VALID: out = floor((in - effective_filter) / stride) + 1.
    total = max((out - 1) * stride + effective_filter - in, 0); the leading pad is
    total // 2 (the odd pixel, if any, goes after the input).
    """
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - effective) // stride
    out = max(out, 0)
    total = max((out - 1) * stride + effective - in_size, 0)
    pad = total // 2
    # Output o reads input rows o*stride - pad + [0, effective): all inside when
    # o*stride >= pad and o*stride - pad + effective <= in_size.
    lo = min(-(-pad // stride), out)
    last_fit = in_size - effective + pad
    hi = max(min(last_fit // stride + 1 if last_fit >= 0 else 0, out), lo)
    return Window(in_size, filter_size, stride, dilation, out, pad, lo, hi)


def options_problems(op: Operator, *, dilation: bool) -> list[str]:
    """Unsupported padding/stride/dilation/activation options of a windowed op."""
    o = op.options
    problems = []
    if o.get("padding") not in PADDINGS:
        problems.append(f"padding {o.get('padding')} (supported: SAME, VALID)")
    if o.get("stride_h", 0) < 1 or o.get("stride_w", 0) < 1:
        problems.append(f"strides must be positive (got {o.get('stride_h')}x{o.get('stride_w')})")
    if dilation and (o.get("dilation_h_factor", 0) < 1 or o.get("dilation_w_factor", 0) < 1):
        problems.append(f"dilation factors must be positive (got {o.get('dilation_h_factor')}x{o.get('dilation_w_factor')})")
    act = o.get("fused_activation_function", "NONE")
    if act not in ACTIVATIONS:
        problems.append(f"fused activation {act} (supported: {', '.join(ACTIVATIONS)})")
    return problems


def windows(op: Operator, in_hw: tuple[int, int], filter_hw: tuple[int, int], *, dilation: bool) -> tuple[Window, Window]:
    o = op.options
    dh = o.get("dilation_h_factor", 1) if dilation else 1
    dw = o.get("dilation_w_factor", 1) if dilation else 1
    return (window(o["padding"], in_hw[0], filter_hw[0], o["stride_h"], dh),
            window(o["padding"], in_hw[1], filter_hw[1], o["stride_w"], dw))


def has_border(w: Window) -> bool:
    """Whether some output position's window reaches outside the input on this axis."""
    return not (w.interior_lo == 0 and w.interior_hi == w.out_size)


def window_params(wy: Window, wx: Window) -> list[tuple[str, str]]:
    return [
        ("stride_h", str(wy.stride)), ("stride_w", str(wx.stride)),
        ("dilation_h", str(wy.dilation)), ("dilation_w", str(wx.dilation)),
        ("pad_h", str(wy.pad)), ("pad_w", str(wx.pad)),
        ("interior_y_begin", str(wy.interior_lo)), ("interior_y_end", str(wy.interior_hi)),
        ("interior_x_begin", str(wx.interior_lo)), ("interior_x_end", str(wx.interior_hi)),
    ]


def nhwc_problems(t: Tensor | None, role: str) -> list[str]:
    if t is None:
        return [f"{role} is missing"]
    problems = []
    if t.dtype != "INT8":
        problems.append(f"{role} must be INT8 (got {t.dtype})")
    if len(t.shape) != 4:
        problems.append(f"{role} must be 4-D NHWC (got shape {list(t.shape)})")
    elif min(t.shape) < 1:
        problems.append(f"{role} has an empty dimension (shape {list(t.shape)})")
    if t.quantization is None:
        problems.append(f"{role} has no quantization parameters")
    elif t.quantization.per_channel:
        problems.append(f"{role} must be quantized per tensor")
    return problems


def conv_requantization(input_scale: float, filter_scales: np.ndarray, output_scale: float,
                        channels: int) -> tuple[list[int], list[int]]:
    """Per-output-channel (multiplier, shift) for CONV_2D / DEPTHWISE_CONV_2D.

    Unlike FULLY_CONNECTED, TFLM's PopulateConvolutionQuantizationParams broadcasts a
    per-tensor filter scale to every channel and always takes
    double(input_scale) * double(filter_scale) / double(output_scale): there is no
    float32 product for conv, per tensor or not. `quant.conv_multipliers`' per-tensor
    branch (FULLY_CONNECTED's rule) would be wrong here, and broadcasting before calling
    it still hits that branch for a one-channel conv, so this applies the double rule
    to every channel itself.
    """
    scales = np.asarray(filter_scales, dtype=np.float32)
    if scales.size == 1:
        scales = np.full(channels, scales[0], dtype=np.float32)
    pairs = [quant.quantize_multiplier(float(np.float64(input_scale) * np.float64(s) / np.float64(output_scale)))
             for s in scales]
    return [m for m, _ in pairs], [s for _, s in pairs]


def activation_bounds(op: Operator, out: Tensor) -> tuple[int, int]:
    return quant.activation_range(op.options.get("fused_activation_function", "NONE"), out.scale, out.zero_point)


def fits_int32(values: np.ndarray) -> bool:
    return bool(np.abs(np.asarray(values, dtype=np.int64)).max(initial=0) < 2**31)


def pool_problems(op: Operator, graph: Graph) -> list[str]:
    """Checks shared by AVERAGE_POOL_2D and MAX_POOL_2D (TFLM's PoolingPrepare)."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        return ["expects one input and one output"]
    x, out = graph.tensor(op.inputs[0]), graph.tensors[op.outputs[0]]
    problems = nhwc_problems(x, "input") + nhwc_problems(out, "output")
    problems += options_problems(op, dilation=False)
    o = op.options
    if o.get("filter_height", 0) < 1 or o.get("filter_width", 0) < 1:
        problems.append(f"filter must be at least 1x1 (got {o.get('filter_height')}x{o.get('filter_width')})")
    if problems:
        return problems
    # TFLM's Prepare: |input_scale - output_scale| (float32) <= 1e-6 and equal zero points
    if float(abs(np.float32(x.scale) - np.float32(out.scale))) > 1.0e-6 or x.zero_point != out.zero_point:
        problems.append("input and output quantization must match (TFLM rejects a rescaling pool)")
    wy, wx = windows(op, x.shape[1:3], (o["filter_height"], o["filter_width"]), dilation=False)
    if (out.shape[0], out.shape[1], out.shape[2], out.shape[3]) != (x.shape[0], wy.out_size, wx.out_size, x.shape[3]):
        problems.append(f"output shape {list(out.shape)} disagrees with {o['padding']} padding "
                        f"(expected {[x.shape[0], wy.out_size, wx.out_size, x.shape[3]]})")
    elif any(not _window_has_input(w) for w in (wy, wx)):
        problems.append("a pooling window lies entirely in the padding (TFLM fails on it)")
    return problems


def _window_has_input(w: Window) -> bool:
    return all(o * w.stride - w.pad < w.in_size and o * w.stride - w.pad + w.filter_size > 0 for o in range(w.out_size))


def pool_params(op: Operator, graph: Graph) -> tuple[tuple[str, str], ...]:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    o = op.options
    wy, wx = windows(op, x.shape[1:3], (o["filter_height"], o["filter_width"]), dilation=False)
    act_min, act_max = activation_bounds(op, out)
    return (
        ("batches", str(x.shape[0])),
        ("input_height", str(x.shape[1])), ("input_width", str(x.shape[2])),
        ("depth", str(x.shape[3])),
        ("output_height", str(out.shape[1])), ("output_width", str(out.shape[2])),
        ("filter_height", str(wy.filter_size)), ("filter_width", str(wx.filter_size)),
        ("stride_h", str(wy.stride)), ("stride_w", str(wx.stride)),
        ("pad_h", str(wy.pad)), ("pad_w", str(wx.pad)),
        ("activation_min", str(act_min)), ("activation_max", str(act_max)),
    )


def convolution_lowering(op: Operator, graph: Graph, names, filter_sums: np.ndarray,
                         wy: Window, wx: Window) -> tuple[tuple, list[tuple[str, str]]]:
    """The constant arrays and the parameters CONV_2D and DEPTHWISE_CONV_2D share.

    `filter_sums[c]` is the sum of output channel c's filter taps: the input offset times
    it is folded into the bias for interior pixels (exact there: no padding taps). The
    unfolded bias is kept only when some window reaches into the padding.
    """
    x, w, out = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    out_c = len(filter_sums)
    multipliers, shifts = conv_requantization(x.scale, w.quantization.scale, out.scale, out_c)
    act_min, act_max = activation_bounds(op, out)
    input_offset = -x.zero_point
    raw_bias = np.zeros(out_c, dtype=np.int64) if bias is None else bias.data.astype(np.int64)
    folded = raw_bias + input_offset * filter_sums.astype(np.int64)
    if not fits_int32(folded):
        raise TinylrError(f"{op.opcode} bias with the input offset folded in overflows int32; the model's scales are unusable")
    weights = ConstArray(names.array(op, "weights"), "int8_t", tuple(int(v) for v in w.data.ravel()),
                         f"{w.name} {list(w.shape)}")
    folded_bias = ConstArray(names.array(op, "bias_folded"), "int32_t", tuple(int(v) for v in folded),
                             "bias + input_offset * filter sums (interior pixels)")
    multiplier = ConstArray(names.array(op, "multiplier"), "int32_t", tuple(multipliers), "requantization significands (Q31)")
    shift = ConstArray(names.array(op, "shift"), "int8_t", tuple(shifts), "requantization exponents (-31..30)")
    raw = ConstArray(names.array(op, "bias"), "int32_t", tuple(int(v) for v in raw_bias),
                     bias.name if bias is not None else "no bias: zeros") if has_border(wy) or has_border(wx) else None
    arrays = tuple(a for a in (weights, raw, folded_bias, multiplier, shift) if a is not None)
    params = [
        ("batches", str(x.shape[0])),
        ("input_height", str(x.shape[1])), ("input_width", str(x.shape[2])), ("input_depth", str(x.shape[3])),
        ("output_height", str(out.shape[1])), ("output_width", str(out.shape[2])), ("output_depth", str(out_c)),
        *window_params(wy, wx),
        ("input_offset", str(input_offset)),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)), ("activation_max", str(act_max)),
        ("weights", weights.name), ("bias", raw.name if raw else "NULL"), ("bias_folded", folded_bias.name),
        ("multiplier", multiplier.name), ("shift", shift.name),
    ]
    return arrays, params
