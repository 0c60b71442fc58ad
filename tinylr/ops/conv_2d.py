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

from ..ir import Graph, Operator
from . import _spatial
from ._kernel import KernelCall

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
    out_c, fh, fw, filter_depth = w.shape
    wy, wx = _spatial.windows(op, x.shape[1:3], (fh, fw), dilation=True)
    sums = w.data.astype(np.int64).reshape(out_c, -1).sum(axis=1)
    arrays, params = _spatial.convolution_lowering(op, graph, names, sums, wy, wx)
    groups = x.shape[3] // filter_depth
    params += [
        ("filter_height", str(fh)), ("filter_width", str(fw)), ("filter_depth", str(filter_depth)),
        ("filters_per_group", str(out_c // groups)),
    ]
    return KernelCall(
        kernel=KERNEL, function="tinylr_conv_2d", params_type="tinylr_conv_2d_params",
        params=tuple(params), arrays=arrays, inputs=(x.index,), outputs=(op.outputs[0],),
    )
