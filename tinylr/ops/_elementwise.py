"""Shared by the elementwise and data-movement ops: index walks and binary-op checks.

A kernel that visits a tensor in a non-trivial order (a broadcast operand, a
transposed or sliced input, the kept and reduced axes of a reduction) gets a
`tinylr_walk` (firmware_templates/kernels/reference/ndwalk.h.j2): an odometer over
the outer dimensions plus an inner run. Everything about the order is decided here:
size-1 dimensions are dropped, dimensions that are contiguous for every operand are
merged (so a plain elementwise op is one inner run), and for each outer dimension the
offset change when it advances while the inner ones wrap to zero is precomputed, so
the C only adds integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import quant
from ..ir import Graph, Operator

SUPPORT_FILES = ("ndwalk.h",)
WALK_DIMS = 6      # TINYLR_WALK_DIMS in ndwalk.h; TFLM's RuntimeShape holds at most 6 dimensions
OPERANDS = 2       # offsets a walk carries (two inputs of a binary op)
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@dataclass(frozen=True)
class Walk:
    counts: tuple[int, ...]              # extents of the outer dimensions, outermost first
    steps: tuple[tuple[int, ...], ...]   # per operand: offset change when that dimension advances
    inner: int                           # length of the innermost run
    inner_strides: tuple[int, ...]       # per operand: element stride within the run

    def c_initializer(self) -> str:
        def arr(values):
            return "{" + ", ".join(str(v) for v in values) + "}"

        pad = WALK_DIMS - len(self.counts)
        counts = list(self.counts) + [1] * pad
        steps = [list(s) + [0] * pad for s in self.steps]
        return (
            "{ .rank = " + str(len(self.counts))
            + ", .count = " + arr(counts)
            + ", .step = {" + ", ".join(arr(s) for s in steps) + "}"
            + ", .inner = " + str(self.inner)
            + ", .inner_stride = " + arr(self.inner_strides) + " }"
        )


def contiguous_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed(tuple(shape)):
        strides.append(acc)
        acc *= int(d)
    return strides[::-1]


def plan_walk(extents, strides) -> Walk:
    """A walk over `extents` (outermost first) where operand k's element offset is
    Σ index[d] · strides[k][d]. Missing operands (up to OPERANDS) get zero strides."""
    strides = [list(s) for s in strides] + [[0] * len(extents)] * (OPERANDS - len(strides))
    dims = [(int(n), [s[d] for s in strides]) for d, n in enumerate(extents) if int(n) != 1]
    merged: list[tuple[int, list[int]]] = []
    for n, st in dims:
        if merged:
            outer_n, outer_st = merged[-1]
            # the outer dimension continues the inner one for every operand: one longer dimension
            if all(o == i * n for o, i in zip(outer_st, st)):
                merged[-1] = (outer_n * n, st)
                continue
        merged.append((n, st))
    if not merged:
        merged = [(1, [0] * OPERANDS)]
    outer, (inner, inner_strides) = merged[:-1], merged[-1]
    if len(outer) > WALK_DIMS:
        raise ValueError(f"{len(outer)} outer dimensions after merging; the walk holds {WALK_DIMS}")
    steps = []
    for k in range(OPERANDS):
        per_dim = []
        for d, (_, st) in enumerate(outer):
            # advancing d resets every dimension inside it (they are at their last index)
            per_dim.append(st[k] - sum((n - 1) * s[k] for n, s in outer[d + 1:]))
        steps.append(tuple(per_dim))
    return Walk(counts=tuple(n for n, _ in outer), steps=tuple(steps), inner=inner,
                inner_strides=tuple(inner_strides))


def broadcast_shape(a, b) -> tuple[int, ...] | None:
    """numpy/TFLite broadcast of two shapes, or None when they do not broadcast."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def broadcast_walk(shape1, shape2, out_shape) -> Walk:
    """Walk of the output in memory order, with each input's offset (stride 0 along the
    dimensions it is broadcast over), as TFLM's BroadcastBinaryOpSimple indexes them."""
    rank = len(out_shape)
    ext = [(1,) * (rank - len(s)) + tuple(s) for s in (shape1, shape2)]
    strides = []
    for shape in ext:
        contiguous = contiguous_strides(shape)
        strides.append([0 if n == 1 and o != 1 else c for n, o, c in zip(shape, out_shape, contiguous)])
    return plan_walk(out_shape, strides)


# --- checks shared by ADD, SUB and MUL -----------------------------------------------

def check_binary(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["expects two inputs and one output"]
    a, b = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    problems = []
    for role, t in (("input 1", a), ("input 2", b), ("output", out)):
        if t.dtype != "INT8":
            problems.append(f"{role} {t.name!r} is {t.dtype}; only INT8 is supported")
        elif t.quantization is None or t.quantization.per_channel:
            problems.append(f"{role} {t.name!r} needs per-tensor quantization (one scale and zero point)")
        elif not t.scale > 0:
            problems.append(f"{role} {t.name!r} has scale {t.scale}; scales must be positive")
    act = op.options.get("fused_activation_function", "NONE")
    if act not in ACTIVATIONS:
        problems.append(f"fused activation {act} (supported: {', '.join(ACTIVATIONS)})")
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        problems.append(f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast")
    elif tuple(out.shape) != shape:
        problems.append(f"output shape {list(out.shape)} is not the broadcast shape {list(shape)}")
    if max(len(a.shape), len(b.shape), len(out.shape)) > WALK_DIMS:
        problems.append(f"tensors of rank above {WALK_DIMS} (TFLM's limit)")
    return problems


# --- ADD / SUB requantization, as TFLM's CalculateOpDataAdd / CalculateOpDataSub ------

LEFT_SHIFT = 20  # int8: inputs are scaled by 2^20 before rescaling, room for the sum in int32


def add_sub_multipliers(s1: float, s2: float, so: float) -> list[float]:
    """Real input1, input2 and output multipliers of ADD and SUB, in double precision.

    TFLM's add_common.cc computes them in double. sub_common.cc, as read in the
    tflite-micro sources, keeps twice_max_input_scale and the quotients in float32,
    which changes the last bits of nearly every multiplier; yet the TFLM interpreter
    this project checks against gives SUB the double-precision results (an exhaustive
    test over all 65536 input pairs, tests/ops/test_sub.py, tells the two apart), so
    both ops use this function.
    """
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    return [float(s1) / twice_max, float(s2) / twice_max,
            twice_max / ((1 << LEFT_SHIFT) * float(so))]


def smaller_than_one(reals: list[float]) -> list[tuple[int, int]] | str:
    """QuantizeMultiplierSmallerThanOneExp for each, or why TFLM would abort."""
    pairs = []
    for r in reals:
        if not 0.0 < r < 1.0:
            return f"a rescaling multiplier is {r:.3g}, outside (0, 1) as TFLM requires"
        pairs.append(quant.quantize_multiplier(r))
    return pairs


def add_sub_problems(op: Operator, graph: Graph) -> list[str]:
    """Call after check_binary found nothing wrong."""
    a, b = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    pairs = smaller_than_one(add_sub_multipliers(a.scale, b.scale, out.scale))
    if isinstance(pairs, str):
        return [pairs + " (the output scale is too small for the inputs' scales)"]
    return []


def add_sub_params(op: Operator, graph: Graph) -> tuple[tuple[str, str], ...]:
    a, b = graph.op_inputs(op)
    out = graph.tensors[op.outputs[0]]
    (m1, s1), (m2, s2), (mo, so) = smaller_than_one(add_sub_multipliers(a.scale, b.scale, out.scale))
    act_min, act_max = quant.activation_range(op.options.get("fused_activation_function", "NONE"),
                                              out.scale, out.zero_point)
    walk = broadcast_walk(a.shape, b.shape, out.shape)
    return (
        ("input1_offset", str(-a.zero_point)),
        ("input2_offset", str(-b.zero_point)),
        ("left_shift", str(LEFT_SHIFT)),
        ("input1_multiplier", str(m1)),
        ("input1_shift", str(s1)),
        ("input2_multiplier", str(m2)),
        ("input2_shift", str(s2)),
        ("output_multiplier", str(mo)),
        ("output_shift", str(so)),
        ("output_offset", str(out.zero_point)),
        ("activation_min", str(act_min)),
        ("activation_max", str(act_max)),
        ("walk", walk.c_initializer()),
    )
