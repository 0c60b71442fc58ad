"""CONV_2D, int8 NHWC in/out, int8 OHWI weights (per-channel or per-tensor), int32 bias.

Matches TFLM's reference_integer_ops::ConvPerChannel: for every output pixel and
channel, acc = Σ w·(x + input_offset) over the filter taps that fall inside the image
(padding contributes nothing, not the zero point), plus the bias; then
MultiplyByQuantizedMultiplier with the channel's multiplier, the output zero point, and
the fused activation's clamp. Grouped convolutions (filter depth < input depth) follow
TFLM too. TFLM's int8 kernel ignores the filter zero point, so only symmetric filters
are accepted.

Optimization (exact): where the whole window lies inside the image, the taps are the
same for every pixel, so input_offset · Σ w folds into a per-channel bias at generation
time. Border pixels (SAME padding) see fewer taps; folding there would add the offset
for taps TFLM skips, so they keep the raw bias and add the offset per tap.
"""

from __future__ import annotations

import numpy as np

from ..errors import TinylrError
from ..ir import Graph, Operator
from . import _spatial
from ._kernel import ConstArray, KernelCall

OPCODE = "CONV_2D"
KERNEL = "conv_2d"


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        return ["expects input, filter[, bias] and one output"]
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    out = graph.tensors[op.outputs[0]]
    problems = _spatial.nhwc_problems(x, "input") + _spatial.nhwc_problems(out, "output")
    problems += _spatial.options_problems(op, dilation=True)
    if w is None or not w.is_constant or w.dtype != "INT8" or len(w.shape) != 4 or w.quantization is None:
        problems.append("filter must be a constant, quantized INT8 tensor [out, h, w, in] (int4/float/hybrid filters are not supported)")
    if bias is not None and (not bias.is_constant or bias.dtype != "INT32"):
        problems.append("bias must be a constant INT32 vector (int64 bias is for int16 activations)")
    if problems:
        return problems
    out_c, fh, fw, filter_depth = w.shape
    q = w.quantization
    if q.per_channel and (q.axis != 0 or len(q.scale) != out_c):
        problems.append("per-channel filters must be quantized along the output-channel dimension (0)")
    if any(int(z) != 0 for z in q.zero_point):
        problems.append("filter zero points must be 0: TFLM's int8 convolution assumes symmetric filters")
    if bias is not None and bias.size != out_c:
        problems.append(f"bias has {bias.size} values for {out_c} output channels")
    in_c = x.shape[3]
    if filter_depth < 1 or in_c % filter_depth != 0 or out_c % (in_c // filter_depth) != 0:
        problems.append(f"input depth {in_c} and filter {list(w.shape)} do not form whole groups")
        return problems
    wy, wx = _spatial.windows(op, x.shape[1:3], (fh, fw), dilation=True)
    expected = [x.shape[0], wy.out_size, wx.out_size, out_c]
    if list(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)} disagrees with {op.options['padding']} padding (expected {expected})")
    bound = 255 * np.abs(w.data.astype(np.int64)).reshape(out_c, -1).sum(axis=1)
    if bias is not None:
        bound = bound + np.abs(bias.data.astype(np.int64))
    if not _spatial.fits_int32(bound):
        problems.append("the filter is too large for an int32 accumulator")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    out = graph.tensors[op.outputs[0]]
    out_c, fh, fw, filter_depth = w.shape
    wy, wx = _spatial.windows(op, x.shape[1:3], (fh, fw), dilation=True)
    multipliers, shifts = _spatial.conv_requantization(x.scale, w.quantization.scale, out.scale, out_c)
    act_min, act_max = _spatial.activation_bounds(op, out)
    input_offset = -x.zero_point
    raw_bias = np.zeros(out_c, dtype=np.int64) if bias is None else bias.data.astype(np.int64)
    folded = raw_bias + input_offset * w.data.astype(np.int64).reshape(out_c, -1).sum(axis=1)
    if not _spatial.fits_int32(folded):
        raise TinylrError("CONV_2D bias with the input offset folded in overflows int32; the model's scales are unusable")
    groups = x.shape[3] // filter_depth
    weights = ConstArray(names.array(op, "weights"), "int8_t", tuple(int(v) for v in w.data.ravel()),
                         f"{w.name} {list(w.shape)}")
    folded_bias = ConstArray(names.array(op, "bias_folded"), "int32_t", tuple(int(v) for v in folded),
                             "bias + input_offset * filter sums (interior pixels)")
    multiplier = ConstArray(names.array(op, "multiplier"), "int32_t", tuple(multipliers), "requantization significands (Q31)")
    shift = ConstArray(names.array(op, "shift"), "int8_t", tuple(shifts), "requantization exponents (-31..30)")
    # the raw bias serves only output pixels whose window reaches into the padding
    border = _spatial.has_border(wy) or _spatial.has_border(wx)
    raw = ConstArray(names.array(op, "bias"), "int32_t", tuple(int(v) for v in raw_bias),
                     bias.name if bias is not None else "no bias: zeros") if border else None
    arrays = tuple(a for a in (weights, raw, folded_bias, multiplier, shift) if a is not None)
    params = (
        ("batches", str(x.shape[0])),
        ("input_height", str(x.shape[1])), ("input_width", str(x.shape[2])), ("input_depth", str(x.shape[3])),
        ("output_height", str(out.shape[1])), ("output_width", str(out.shape[2])), ("output_depth", str(out_c)),
        ("filter_height", str(fh)), ("filter_width", str(fw)), ("filter_depth", str(filter_depth)),
        ("filters_per_group", str(out_c // groups)),
        *_spatial.window_params(wy, wx),
        ("input_offset", str(input_offset)),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)), ("activation_max", str(act_max)),
        ("weights", weights.name), ("bias", raw.name if raw else "NULL"), ("bias_folded", folded_bias.name),
        ("multiplier", multiplier.name), ("shift", shift.name),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_conv_2d", params_type="tinylr_conv_2d_params",
        params=params, arrays=arrays, inputs=(x.index,), outputs=(out.index,),
    )
