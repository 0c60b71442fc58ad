"""TRANSPOSE, int8, up to 5 dimensions like TFLM (reference_ops::Transpose).

The output is written in memory order while the input is read with its strides
permuted: output dimension d walks input dimension perm[d]. Dimensions of size 1 are
dropped and runs that stay contiguous in the input are merged at generation time,
so e.g. NHWC -> NCHW is a two-level walk. Like TFLM, the bytes are moved unchanged
(no requantization); the permutation must be a constant.
"""

from __future__ import annotations

from ..ir import Graph, Operator
from . import _elementwise as ew
from ._kernel import KernelCall

OPCODE = "TRANSPOSE"
KERNEL = "transpose"
SUPPORT_FILES = ew.SUPPORT_FILES
MAX_DIMS = 5  # TransposePrepare: "Transpose op only supports 1D-5D input arrays"


def _perm(op: Operator, graph: Graph) -> list[int] | None:
    perm = graph.tensor(op.inputs[1])
    if perm is None or not perm.is_constant or perm.dtype != "INT32" or len(perm.shape) != 1:
        return None
    return [int(v) for v in perm.data]


def check(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects an input, a permutation and one output"]
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype != "INT8" or out.dtype != "INT8":
        problems.append(f"input/output must be INT8 (got {x.dtype}/{out.dtype})")
    if not 1 <= len(x.shape) <= MAX_DIMS:
        problems.append(f"input has rank {len(x.shape)}; TFLM transposes 1-D to {MAX_DIMS}-D tensors")
    perm = _perm(op, graph)
    if perm is None:
        problems.append("the permutation must be a constant INT32 vector (TFLM does not take a computed one)")
    elif sorted(perm) != list(range(len(x.shape))):
        problems.append(f"permutation {perm} is not a permutation of the input's {len(x.shape)} dimensions")
    elif tuple(out.shape) != tuple(x.shape[p] for p in perm):
        problems.append(f"output shape {list(out.shape)} is not the input {list(x.shape)} permuted by {perm}")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    perm = _perm(op, graph)
    in_strides = ew.contiguous_strides(x.shape)
    walk = ew.plan_walk(out.shape, [[in_strides[p] for p in perm]])
    return KernelCall(
        kernel=KERNEL, function="tinylr_transpose", params_type="tinylr_transpose_params",
        params=(("walk", walk.c_initializer()),),
        inputs=(x.index,), outputs=(out.index,),
    )
