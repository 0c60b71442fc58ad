"""Elementwise int8 -> int8 ops as 256-entry lookup tables computed by TFLM itself.

An elementwise int8 op maps each of the 256 possible input values to one output value,
fixed by the input/output quantization and the op's options. Rather than reimplementing
each TFLM kernel's fixed-point arithmetic (gemmlowp's logistic and tanh, hard-swish's
int16 path, leaky ReLU's two multipliers, the requantization of QUANTIZE, ...), the
generator builds a one-op model with the same opcode, version, quantization and options,
runs it through TFLM's Python interpreter (`tinylr.reference.run`) on all 256 values,
and emits the answers as a const table. The table is TFLM's own output, so the
generated kernel (one load per element) is bit-exact by construction.

Ops that lower here: LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, LEAKY_RELU and the int8 ->
int8 form of QUANTIZE. They share one kernel, `lut` (`tinylr_lut_s8`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import TinylrError
from ..ir import Graph, Operator, Tensor
from ._kernel import ConstArray, KernelCall

KERNEL = "lut"
INPUTS = np.arange(-128, 128, dtype=np.int8)


def int8_elementwise_problems(op: Operator, graph: Graph, input_types=("INT8",)) -> list[str]:
    """Why `op` is not a one-input one-output per-tensor quantized elementwise op."""
    if len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["expects one input and one output"]
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problems = []
    if x.dtype not in input_types or y.dtype != "INT8":
        problems.append(f"input must be {' or '.join(input_types)} and output INT8 (got {x.dtype} -> {y.dtype})")
    if x.is_constant:
        problems.append("a constant input (fold it when exporting the model)")
    for role, t in (("input", x), ("output", y)):
        if t.dtype == "INT8" and t.quantization is None:
            problems.append(f"{role} tensor {t.name!r} has no quantization parameters")
        elif t.dtype == "INT8" and t.quantization.per_channel:
            problems.append(f"{role} tensor {t.name!r} is quantized per channel; activations must be per tensor")
    if x.size != y.size:
        problems.append(f"input {list(x.shape)} and output {list(y.shape)} differ in size")
    return problems


def check(op: Operator, graph: Graph, options=None) -> list[str]:
    """Type checks, then whether TFLM itself accepts the op with these parameters."""
    problems = int8_elementwise_problems(op, graph)
    if problems:
        return problems
    try:
        table(op, graph, options)
    except TinylrError as exc:
        return [str(exc)]
    return []


def table(op: Operator, graph: Graph, options=None) -> tuple[int, ...]:
    """TFLM's output for each int8 input -128..127 of this op.

    `options` is None or (BuiltinOptions type name, {schema field: value}), e.g.
    ("LeakyReluOptions", {"alpha": 0.2}); values must be the float32/int values read
    from the model so the one-op model carries exactly the same parameters.
    """
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    key_options = None if options is None else (options[0], tuple(sorted(options[1].items())))
    return _reference_table(op.opcode, op.version, _quant(x), _quant(y), key_options)


def lower(op: Operator, graph: Graph, names, options=None) -> KernelCall:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    values = table(op, graph, options)
    array = ConstArray(
        names.array(op, "table"), "int8_t", values,
        f"{op.opcode} output for inputs -128..127 (in {x.scale:.6g}/{x.zero_point}, "
        f"out {y.scale:.6g}/{y.zero_point}), computed by TFLM",
    )
    return KernelCall(
        kernel=KERNEL, function="tinylr_lut_s8", params_type="tinylr_lut_s8_params",
        params=(("size", str(y.size)), ("table", array.name)),
        arrays=(array,), inputs=(x.index,), outputs=(y.index,),
    )


def _quant(t: Tensor) -> tuple[float, int]:
    return float(t.quantization.scale[0]), int(t.quantization.zero_point[0])


@lru_cache(maxsize=256)
def _reference_table(opcode: str, version: int, in_q: tuple[float, int], out_q: tuple[float, int],
                     options) -> tuple[int, ...]:
    from .. import reference

    model = one_op_model(opcode, version, in_q, out_q, len(INPUTS), options)
    try:
        out = reference.run(model, INPUTS[None, :])[0]
    except TinylrError as exc:
        raise TinylrError(
            f"TFLM rejects {opcode} with input scale {in_q[0]:.6g} / zero point {in_q[1]} and output "
            f"scale {out_q[0]:.6g} / zero point {out_q[1]} ({exc}); re-export the model with "
            "calibrated int8 quantization"
        ) from exc
    return tuple(int(v) for v in out)


def one_op_model(opcode: str, version: int, in_q, out_q, size: int, options=None,
                 in_type: str = "INT8", out_type: str = "INT8") -> bytes:
    """A .tflite with one builtin op from a [1, size] tensor to a [1, size] tensor.

    `in_q`/`out_q` are (scale, zero_point), or None for a float tensor; `options` is None
    or (BuiltinOptions type name, ((schema field, value), ...)).
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    code = getattr(schema.BuiltinOperator, opcode)
    op_code = schema.OperatorCodeT()
    op_code.builtinCode = code
    op_code.deprecatedBuiltinCode = min(code, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    op_code.version = version

    def tensor(name, dtype, q):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [1, size], getattr(schema.TensorType, dtype), 0
        if q is not None:
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [q[0]], [q[1]]
        return t

    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0], [1]
    if options is not None:
        type_name, fields = options
        operator.builtinOptionsType = getattr(schema.BuiltinOptions, type_name)
        operator.builtinOptions = getattr(schema, f"{type_name}T")()
        for field, value in dict(fields).items():
            setattr(operator.builtinOptions, field, value)
    subgraph = schema.SubGraphT()
    subgraph.tensors = [tensor("input", in_type, in_q), tensor("output", out_type, out_q)]
    subgraph.inputs, subgraph.outputs, subgraph.operators = [0], [1], [operator]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [op_code], [subgraph]
    model.buffers = [schema.BufferT()]  # buffer 0: the empty sentinel every activation points at
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
