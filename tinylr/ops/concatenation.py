"""CONCATENATION, int8, along any axis (TFLM's reference_ops::Concatenation).

For each index of the dimensions before the axis, the inputs' slabs are copied one
after another. TFLM's int8 kernel does no rescaling: its Prepare fails unless every
input has the output's scale and zero point (the TFLite converter arranges that), and
it takes at most 10 inputs of at most 6 dimensions; we refuse the same models.
Inputs may be constants (copied from flash).
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Operator
from ._kernel import ConstArray, KernelCall

OPCODE = "CONCATENATION"
KERNEL = "concatenation"
MAX_INPUTS = 10   # TFLM's kMaxInputNum: it refuses more, so we do too
MAX_DIMS = 6


def _axis(op: Operator, rank: int) -> int:
    axis = int(op.options.get("axis", 0))
    return axis + rank if axis < 0 else axis


def check(op: Operator, graph: Graph) -> list[str]:
    if not op.inputs or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["expects at least one input and one output"]
    ins, out = graph.op_inputs(op), graph.tensors[op.outputs[0]]
    problems = []
    if len(ins) > MAX_INPUTS:
        problems.append(f"{len(ins)} inputs; TFLM concatenates at most {MAX_INPUTS}")
    act = op.options.get("fused_activation_function", "NONE")
    if act != "NONE":
        problems.append(f"fused activation {act} (TFLM accepts none on CONCATENATION)")
    for t in (*ins, out):
        if t.dtype != "INT8":
            problems.append(f"tensor {t.name!r} is {t.dtype}; only INT8 is supported")
        elif t.quantization is None or t.quantization.per_channel:
            problems.append(f"tensor {t.name!r} needs per-tensor quantization")
        if len(t.shape) > MAX_DIMS or len(t.shape) != len(out.shape):
            problems.append(f"tensor {t.name!r} has rank {len(t.shape)}; all must have the output's rank "
                            f"{len(out.shape)} (at most {MAX_DIMS})")
    if problems:
        return problems
    for t in ins:
        if np.float64(t.scale) != np.float64(out.scale) or t.zero_point != out.zero_point:
            problems.append(
                f"input {t.name!r} is quantized (scale {t.scale:.6g}, zero point {t.zero_point}) unlike the output "
                f"(scale {out.scale:.6g}, zero point {out.zero_point}); TFLM's int8 CONCATENATION does not rescale "
                "and rejects such models: requantize the input first (the TFLite converter normally unifies the scales)"
            )
    axis = _axis(op, len(out.shape))
    if not 0 <= axis < len(out.shape):
        return problems + [f"axis {op.options.get('axis')} is out of range for rank {len(out.shape)}"]
    for t in ins:
        if any(t.shape[d] != out.shape[d] for d in range(len(out.shape)) if d != axis):
            problems.append(f"input shape {list(t.shape)} does not match output {list(out.shape)} off axis {axis}")
    if sum(t.shape[axis] for t in ins) != out.shape[axis]:
        problems.append(f"input extents along axis {axis} do not add up to the output's {out.shape[axis]}")
    return problems


def lower(op: Operator, graph: Graph, names) -> KernelCall:
    ins, out = graph.op_inputs(op), graph.tensors[op.outputs[0]]
    axis = _axis(op, len(out.shape))
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    inner = int(np.prod(out.shape[axis + 1:], dtype=np.int64))
    copy = ConstArray(names.array(op, "copy_size"), "int32_t", tuple(t.shape[axis] * inner for t in ins),
                      "bytes of each input per outer index")
    params = (
        ("outer_size", str(outer)),
        ("inputs_count", str(len(ins))),
        ("copy_size", copy.name),
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_concatenation", params_type="tinylr_concatenation_params",
        params=params, arrays=(copy,), inputs=tuple(op.inputs), outputs=tuple(op.outputs), inputs_as_array=True,
    )
