"""STRIDED_SLICE, int8, up to 4 dimensions like TFLM (reference_ops::StridedSlice).

begin, end and strides must be constants (TFLM requires it), so the whole slice is
resolved here exactly as TFLM's Eval resolves it (StridedSliceStartForAxis /
StridedSliceEndForAxis: negative indices wrap once, then clamp, then begin/end masks
override; a shrunk axis takes one element) and the kernel is a strided copy from a
precomputed start offset. Negative strides are supported.

Not supported, and refused: ellipsis_mask, new_axis_mask and offset. TFLM's
BuildStridedSliceParams ignores all three, so TFLM would silently compute a different
slice than the model means (the TFLite converter normally rewrites them into plain
masks and RESHAPEs).
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "STRIDED_SLICE"
KERNEL = "strided_slice"
SUPPORT_FILES = ew.SUPPORT_FILES
MAX_DIMS = 4  # strided_slice_common.cc: "input dim should not exceed 4"


def _vector(graph: Graph, index: int, rank: int) -> list[int] | None:
    t = graph.tensor(index)
    if t is None or not t.is_constant or t.dtype != "INT32" or t.data.ravel().size != rank:
        return None
    return [int(v) for v in t.data.ravel()]


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def resolve(shape, begin, end, strides, options) -> list[tuple[int, int, int]]:
    """(start, count, stride) per input axis, as TFLM's Eval iterates them."""
    begin_mask, end_mask = int(options.get("begin_mask", 0)), int(options.get("end_mask", 0))
    shrink_mask = int(options.get("shrink_axis_mask", 0))
    axes = []
    for axis, size in enumerate(shape):
        stride = strides[axis]
        start = begin[axis] + size if begin[axis] < 0 else begin[axis]
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if begin_mask >> axis & 1:
            start = 0 if stride > 0 else size - 1
        if shrink_mask >> axis & 1:
            stop = start if start >= size else start + 1
        else:
            stop = end[axis] + size if end[axis] < 0 else end[axis]
            stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
            if end_mask >> axis & 1:
                stop = size if stride > 0 else -1
        span = stop - start if stride > 0 else start - stop
        count = max(0, -(-span // abs(stride)))  # iterations of `for (i = start; i < stop; i += stride)`
        axes.append((start, count, stride))
    return axes


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 4 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects an input, begin, end, strides and one output"]
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype != "INT8" or out.dtype != "INT8":
        problems.append(f"input/output must be INT8 (got {x.dtype}/{out.dtype})")
    if not 1 <= len(x.shape) <= MAX_DIMS:
        problems.append(f"input has rank {len(x.shape)}; TFLM slices 1-D to {MAX_DIMS}-D tensors")
    for name in ("ellipsis_mask", "new_axis_mask"):
        if int(op.options.get(name, 0)):
            problems.append(f"{name} {op.options[name]} (TFLM ignores it and would compute another slice; "
                            "rewrite the slice without it)")
    if op.options.get("offset"):
        problems.append("offset=True (TFLM ignores it and would compute another slice)")
    vectors = [_vector(graph, i, len(x.shape)) for i in op.inputs[1:]]
    for name, v in zip(("begin", "end", "strides"), vectors):
        if v is None:
            problems.append(f"{name} must be a constant INT32 vector with one entry per input dimension")
    if problems:
        return problems
    begin, end, strides = vectors
    if 0 in strides:
        return [f"strides {strides} contain 0"]
    axes = resolve(x.shape, begin, end, strides, op.options)
    shrink = int(op.options.get("shrink_axis_mask", 0))
    shape = [n for axis, (_, n, _) in enumerate(axes) if not shrink >> axis & 1]
    if any(n != 1 for axis, (_, n, _) in enumerate(axes) if shrink >> axis & 1):
        problems.append("a shrunk axis indexes past the end of its dimension")
    elif tuple(shape) != tuple(out.shape):
        problems.append(f"the slice has shape {shape} but the output tensor is {list(out.shape)}")
    elif 0 in shape:
        problems.append("the slice is empty")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    begin, end, strides = (_vector(graph, i, len(x.shape)) for i in op.inputs[1:])
    axes = resolve(x.shape, begin, end, strides, op.options)
    in_strides = ew.contiguous_strides(x.shape)
    start = sum(s * st for (s, _, _), st in zip(axes, in_strides))
    walk = ew.plan_walk([n for _, n, _ in axes], [[step * st for (_, _, step), st in zip(axes, in_strides)]])
    return KernelCall(
        kernel=KERNEL, function="tinylr_strided_slice", params_type="tinylr_strided_slice_params",
        params=(("start", str(start)), ("walk", walk.c_initializer())),
        inputs=(x.index,), outputs=(out.index,),
    )
