"""GATHER, int8 data with constant INT32 indices, any axis and batch_dims (TFLM's gather.cc).

For each batch (the first batch_dims dimensions, shared by data and indices), each
index of the dimensions between batch_dims and axis, and each index value, one run of
the dimensions after the axis is copied. Indices are checked against the axis size
here: TFLM only DCHECKs them, and an index out of range would read outside the input.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from ._kernel import ConstArray, KernelCall

OPCODE = "GATHER"
KERNEL = "gather"


def _dims(op: Operator, graph: Graph) -> tuple[int, int]:
    x, idx = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    axis, batch_dims = int(op.options.get("axis", 0)), int(op.options.get("batch_dims", 0))
    return (axis + len(x.shape) if axis < 0 else axis,
            batch_dims + len(idx.shape) if batch_dims < 0 else batch_dims)


def _sizes(x_shape, idx_shape, axis: int, batch_dims: int) -> dict:
    prod = lambda dims: int(np.prod(dims, dtype=np.int64))  # noqa: E731
    return dict(batch_size=prod(x_shape[:batch_dims]), outer_size=prod(x_shape[batch_dims:axis]),
                axis_size=int(x_shape[axis]), coord_size=prod(idx_shape[batch_dims:]),
                inner_size=prod(x_shape[axis + 1:]))


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["expects data, indices and one output"]
    x, idx = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype != "INT8" or out.dtype != "INT8":
        problems.append(f"data/output must be INT8 (got {x.dtype}/{out.dtype})")
    if idx.dtype != "INT32" or not idx.is_constant:
        problems.append(f"indices must be a constant INT32 tensor (got {'constant' if idx.is_constant else 'computed'} "
                        f"{idx.dtype}); TFLM takes INT32 indices only and tinylr only constant ones")
    if problems:
        return problems
    axis, batch_dims = _dims(op, graph)
    if not 0 <= axis < len(x.shape):
        return [f"axis {op.options.get('axis')} is out of range for data of rank {len(x.shape)}"]
    if not (0 <= batch_dims <= axis and batch_dims < len(x.shape) and batch_dims <= len(idx.shape)):
        return [f"batch_dims {op.options.get('batch_dims')} must lie in [0, axis] and within both ranks"]
    if tuple(x.shape[:batch_dims]) != tuple(idx.shape[:batch_dims]):
        return [f"the first {batch_dims} dimensions of data {list(x.shape)} and indices {list(idx.shape)} differ"]
    expected = (*x.shape[:axis], *idx.shape[batch_dims:], *x.shape[axis + 1:])
    if tuple(out.shape) != expected:
        problems.append(f"output shape {list(out.shape)} is not {list(expected)}")
    bad = idx.data[(idx.data < 0) | (idx.data >= x.shape[axis])]
    if bad.size:
        problems.append(f"index {int(bad.ravel()[0])} is outside [0, {x.shape[axis]}) along axis {axis} "
                        "(TFLM would read outside the data)")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, idx = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    axis, batch_dims = _dims(op, graph)
    sizes = _sizes(x.shape, idx.shape, axis, batch_dims)
    indices = ConstArray(names.array(op, "indices"), "int32_t", tuple(int(v) for v in idx.data.ravel()),
                         f"{idx.name} {list(idx.shape)}")
    params = tuple((k, str(v)) for k, v in sizes.items()) + (("indices", indices.name),)
    return KernelCall(
        kernel=KERNEL, function="tinylr_gather", params_type="tinylr_gather_params",
        params=params, arrays=(indices,), inputs=(x.index,), outputs=(out.index,),
    )
