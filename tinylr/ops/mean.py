"""MEAN, int8 in/out, constant axes (what GlobalAveragePooling2D becomes).

Matches TFLM's int8 path (reference_ops::QuantizedMeanOrSum as set up by
PrepareMeanOrSumHelper): (multiplier, shift) = QuantizeMultiplier(double(input_scale) /
double(output_scale)); the 1/count of the mean is folded into that multiplier with
integer arithmetic: s = min(floor(log2(count)), 32, 31 + shift),
multiplier' = (multiplier << s) / count (int64, truncated), shift' = shift - s. Each
output is then MultiplyByQuantizedMultiplier(sum - input_zero_point·count,
multiplier', shift') + output_zero_point, clamped to int8 — with no fused activation.
keep_dims changes only the output's shape, not its bytes.

The kernel needs no scratch memory: it walks the kept dimensions in order (the output's
order) and, for each output, sums the reduced dimensions. Adjacent dimensions of the
same kind are merged at generation time, so any rank works as long as at most
MAX_GROUPS runs of kept and of reduced dimensions remain.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..ir import Graph, Operator
from ._kernel import KernelCall

OPCODE = "MEAN"
KERNEL = "mean"
MAX_GROUPS = 4


def _axes(op: Operator, graph: Graph) -> list[int]:
    """The reduced axes as TFLM's ResolveAxis gives them: negatives wrapped, duplicates dropped."""
    rank = len(graph.tensors[op.inputs[0]].shape)
    resolved = []
    for a in graph.tensors[op.inputs[1]].data.ravel().tolist():
        a = a + rank if a < 0 else a
        if a not in resolved:
            resolved.append(a)
    return resolved


def _groups(shape: tuple[int, ...], axes: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(size, element stride) runs of kept and of reduced dimensions, outermost first;
    adjacent dimensions of the same kind merged."""
    strides = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(len(shape))]
    kept: list[tuple[int, int]] = []
    reduced: list[tuple[int, int]] = []
    previous = None
    for d, size in enumerate(shape):
        if size == 1:
            continue  # contributes nothing to either walk
        kind = d in axes
        runs = reduced if kind else kept
        if previous == kind:
            last_size, _ = runs[-1]
            runs[-1] = (last_size * size, strides[d])
        else:
            runs.append((size, strides[d]))
        previous = kind
    return kept, reduced


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        return ["expects input, axes and one output"]
    x, axes = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out = graph.tensors[op.outputs[0]]
    if x is None or axes is None:
        return ["input and axes are required"]
    problems = []
    for role, t in (("input", x), ("output", out)):
        if t.dtype != "INT8" or t.quantization is None:
            problems.append(f"{role} must be quantized INT8 (got {t.dtype})")
        elif t.quantization.per_channel:
            problems.append(f"{role} must be quantized per tensor")
    if not axes.is_constant or axes.dtype != "INT32":
        problems.append("axes must be a constant INT32 tensor")
    if problems:
        return problems
    rank = len(x.shape)
    if any(not -rank <= int(a) < rank for a in axes.data.ravel()):
        problems.append(f"axes {axes.data.ravel().tolist()} out of range for rank {rank}")
        return problems
    if x.size == 0:
        problems.append(f"input has an empty dimension (shape {list(x.shape)})")
        return problems
    reduced_axes = _axes(op, graph)
    kept_shape = [d for i, d in enumerate(x.shape) if i not in reduced_axes]
    if [d for d in out.shape if d != 1] != [d for d in kept_shape if d != 1] or out.size != int(np.prod(kept_shape)):
        problems.append(f"output shape {list(out.shape)} does not match input {list(x.shape)} reduced over {reduced_axes}")
    kept, reduced = _groups(x.shape, reduced_axes)
    if len(kept) > MAX_GROUPS or len(reduced) > MAX_GROUPS:
        problems.append(f"the axes interleave kept and reduced dimensions more than {MAX_GROUPS} times")
    count = x.size // out.size if out.size else 0
    if count * 255 >= 2**31:
        problems.append(f"{count} values per mean overflow the int32 sum")
    return problems


def requantization(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM's multiplier and shift for an int8 mean of `count` values."""
    multiplier, shift = quant.quantize_multiplier(float(np.float64(np.float32(input_scale)) / np.float64(np.float32(output_scale))))
    s = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << s) // count, shift - s


def _c_array(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def _padded(runs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    # missing runs: outer loops of one iteration
    runs = [(1, 0)] * (MAX_GROUPS - len(runs)) + runs
    return [s for s, _ in runs], [t for _, t in runs]


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    count = x.size // out.size
    multiplier, shift = requantization(x.scale, out.scale, count)
    kept, reduced = _groups(x.shape, _axes(op, graph))
    kept_size, kept_stride = _padded(kept)
    reduced_size, reduced_stride = _padded(reduced)
    params = (
        ("kept_size", _c_array(kept_size)), ("kept_stride", _c_array(kept_stride)),
        ("reduced_size", _c_array(reduced_size)), ("reduced_stride", _c_array(reduced_stride)),
        ("input_correction", str(x.zero_point * count)),
        ("multiplier", str(multiplier)), ("shift", str(shift)),
        ("output_offset", str(out.zero_point)),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_mean", params_type="tinylr_mean_params",
        params=params, inputs=(x.index,), outputs=(out.index,),
    )
