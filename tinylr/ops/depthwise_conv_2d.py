"""DEPTHWISE_CONV_2D, int8 NHWC in/out, int8 [1, h, w, out] filter (per-channel or
per-tensor), int32 bias.

Matches TFLM's reference_integer_ops::DepthwiseConvPerChannel: output channel
ic·depth_multiplier + m sums w·(x + input_offset) over the taps of input channel ic
inside the image, adds its bias, requantizes with its own multiplier, adds the output
zero point and clamps. TFLM takes the depth multiplier from the op's options and
ignores the filter zero point; we require the option to agree with the shapes and the
filter to be symmetric.

As in CONV_2D, input_offset · Σ w folds into the bias for pixels whose window is
wholly inside the image (exact); border pixels add the offset per tap.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from . import _spatial
from ._kernel import KernelCall

OPCODE = "DEPTHWISE_CONV_2D"
KERNEL = "depthwise_conv_2d"


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) not in (2, 3) or len(op.outputs) != 1:
        return ["expects input, filter[, bias] and one output"]
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    bias = graph.tensor(op.inputs[2]) if len(op.inputs) == 3 else None
    out = graph.tensors[op.outputs[0]]
    problems = _spatial.nhwc_problems(x, "input") + _spatial.nhwc_problems(out, "output")
    problems += _spatial.options_problems(op, dilation=True)
    if w is None or not w.is_constant or w.dtype != "INT8" or len(w.shape) != 4 or w.shape[0] != 1 or w.quantization is None:
        problems.append("filter must be a constant, quantized INT8 tensor [1, h, w, channels] (int4/float/hybrid filters are not supported)")
    if bias is not None and (not bias.is_constant or bias.dtype != "INT32"):
        problems.append("bias must be a constant INT32 vector")
    if problems:
        return problems
    _, fh, fw, out_c = w.shape
    q = w.quantization
    if q.per_channel and (q.axis != 3 or len(q.scale) != out_c):
        problems.append("per-channel filters must be quantized along the channel dimension (3)")
    if any(int(z) != 0 for z in q.zero_point):
        problems.append("filter zero points must be 0: TFLM's int8 depthwise convolution assumes symmetric filters")
    if bias is not None and bias.size != out_c:
        problems.append(f"bias has {bias.size} values for {out_c} output channels")
    in_c = x.shape[3]
    multiplier = op.options.get("depth_multiplier", 0)
    if multiplier < 1 or in_c * multiplier != out_c:
        problems.append(f"depth_multiplier {multiplier} disagrees with {in_c} input and {out_c} output channels "
                        "(TFLM uses the option as stored)")
        return problems
    wy, wx = _spatial.windows(op, x.shape[1:3], (fh, fw), dilation=True)
    expected = [x.shape[0], wy.out_size, wx.out_size, out_c]
    if list(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)} disagrees with {op.options['padding']} padding (expected {expected})")
    bound = 255 * np.abs(w.data.astype(np.int64)).reshape(-1, out_c).sum(axis=0)
    if bias is not None:
        bound = bound + np.abs(bias.data.astype(np.int64))
    if not _spatial.fits_int32(bound):
        problems.append("the filter is too large for an int32 accumulator")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    _, fh, fw, out_c = w.shape
    wy, wx = _spatial.windows(op, x.shape[1:3], (fh, fw), dilation=True)
    sums = w.data.astype(np.int64).reshape(-1, out_c).sum(axis=0)
    arrays, params = _spatial.convolution_lowering(op, graph, names, sums, wy, wx)
    params += [
        ("depth_multiplier", str(out_c // x.shape[3])),
        ("filter_height", str(fh)), ("filter_width", str(fw)),
    ]
    return KernelCall(
        kernel=KERNEL, function="tinylr_depthwise_conv_2d", params_type="tinylr_depthwise_conv_2d_params",
        params=tuple(params), arrays=arrays, inputs=(x.index,), outputs=(op.outputs[0],),
    )
