"""REDUCE_MAX, int8, over any set of axes, with or without keep_dims (TFLM's
ReduceGeneric with the max reducer).

Each output element starts at -128 and takes the max of the input elements that
differ from it only along the reduced axes. Axes may be negative or repeated (TFLM
resolves and deduplicates them); they must be constants. TFLM's int8 kernel does not
requantize: it fails unless input and output share scale and zero point, and so do we.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "REDUCE_MAX"
KERNEL = "reduce_max"
SUPPORT_FILES = ew.SUPPORT_FILES


def _axes(op: Operator, graph: Graph) -> list[int] | None:
    """Resolved axes in first-seen order, or None when they are not usable."""
    x, axis = graph.tensors[op.inputs[0]], graph.tensor(op.inputs[1])
    if axis is None or not axis.is_constant or axis.dtype != "INT32":
        return None
    rank, resolved = len(x.shape), []
    for a in (int(v) for v in axis.data.ravel()):
        a = a + rank if a < 0 else a
        if not 0 <= a < rank:
            return None
        if a not in resolved:
            resolved.append(a)
    return resolved


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects an input, the axes and one output"]
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "INT8" or out.dtype != "INT8":
        return [f"input/output must be INT8 (got {x.dtype}/{out.dtype})"]
    problems = []
    if x.quantization is None or out.quantization is None or x.quantization.per_channel:
        problems.append("input and output need per-tensor quantization")
    elif np.float64(x.scale) != np.float64(out.scale) or x.zero_point != out.zero_point:
        problems.append(f"input (scale {x.scale:.6g}, zero point {x.zero_point}) and output (scale {out.scale:.6g}, "
                        f"zero point {out.zero_point}) are quantized differently; TFLM's int8 REDUCE_MAX does not "
                        "requantize and rejects such models")
    if len(x.shape) > ew.WALK_DIMS:
        problems.append(f"input rank {len(x.shape)} is above {ew.WALK_DIMS}")
    axes = _axes(op, graph)
    if axes is None:
        problems.append(f"the axes must be a constant INT32 tensor of values in [-{len(x.shape)}, {len(x.shape)})")
    else:
        keep = bool(op.options.get("keep_dims", False))
        expected = tuple(1 if d in axes else n for d, n in enumerate(x.shape) if keep or d not in axes)
        if tuple(out.shape) != expected:
            problems.append(f"output shape {list(out.shape)} is not {list(expected)} "
                            f"(input {list(x.shape)}, axes {axes}, keep_dims {keep})")
    if x.size == 0:
        problems.append("the input is empty")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axes = _axes(op, graph)
    strides = ew.contiguous_strides(x.shape)
    kept = [d for d in range(len(x.shape)) if d not in axes]
    reduced = [d for d in range(len(x.shape)) if d in axes]
    kept_walk = ew.plan_walk([x.shape[d] for d in kept], [[strides[d] for d in kept]])
    reduced_walk = ew.plan_walk([x.shape[d] for d in reduced], [[strides[d] for d in reduced]])
    return KernelCall(
        kernel=KERNEL, function="tinylr_reduce_max", params_type="tinylr_reduce_max_params",
        params=(("kept", kept_walk.c_initializer()), ("reduced", reduced_walk.c_initializer())),
        inputs=(x.index,), outputs=(out.index,),
    )
