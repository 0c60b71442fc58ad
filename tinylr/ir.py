"""The typed graph the generator works on, read from a .tflite flatbuffer.

Parsed with the flatbuffer schema module shipped in the tflite-micro package (never
from text dumps). One subgraph; tensors keep their shape, dtype, per-tensor or
per-channel quantization and constant data; operators keep their builtin name,
version and options (enum values as their schema names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from .errors import TinylrError

_NUMPY_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64,
    "INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16,
    "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64,
    "BOOL": np.bool_,
}

# Option fields whose integer values are schema enums: keep their names instead.
_ENUM_FIELDS = {
    "fused_activation_function": schema.ActivationFunctionType,
    "padding": schema.Padding,
    "weights_format": schema.FullyConnectedOptionsWeightsFormat,
    "quantized_bias_type": schema.TensorType,
}


@cache
def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Quantization:
    scale: np.ndarray        # float32, one value (per tensor) or one per channel
    zero_point: np.ndarray   # int64, same length as scale
    axis: int                # quantized dimension for per-channel tensors

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True, eq=False)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                       # schema name: "INT8", "INT32", "FLOAT32", ...
    quantization: Quantization | None
    data: np.ndarray | None          # constant contents, already shaped; None for activations

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(_NUMPY_DTYPES[self.dtype]).itemsize

    @property
    def scale(self) -> float:
        """Per-tensor scale (float32 as stored)."""
        return float(self.quantization.scale[0])

    @property
    def zero_point(self) -> int:
        return int(self.quantization.zero_point[0])


@dataclass(frozen=True, eq=False)
class Operator:
    index: int
    opcode: str                      # builtin name, e.g. "FULLY_CONNECTED"
    version: int
    inputs: tuple[int, ...]          # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict


@dataclass(frozen=True, eq=False)
class Graph:
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""

    def tensor(self, index: int) -> Tensor | None:
        return None if index < 0 else self.tensors[index]

    def op_inputs(self, op: Operator) -> list[Tensor | None]:
        return [self.tensor(i) for i in op.inputs]

    def op_outputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs]

    @property
    def opcodes(self) -> list[str]:
        return [op.opcode for op in self.operators]


def load(path: str | Path) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise TinylrError(f"{path}: no such file; give the path of a .tflite model")
    return parse(path.read_bytes(), source=str(path))


def parse(buf: bytes, source: str = "<bytes>") -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TinylrError(
            f"{source}: not a TFLite flatbuffer (no 'TFL3' identifier); give a .tflite file written by the TFLite converter"
        )
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
        return _graph(model, buf)
    except TinylrError as exc:
        raise TinylrError(f"{source}: {exc}") from exc
    except Exception as exc:  # flatbuffers raises assorted errors on truncated/corrupt data
        raise TinylrError(f"{source}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc}); re-export the model") from exc


def _graph(model, buf: bytes) -> Graph:
    if not model.subgraphs or len(model.subgraphs) != 1:
        count = len(model.subgraphs or [])
        raise TinylrError(f"model has {count} subgraphs; tinylr generates code for exactly one (no control flow ops)")
    sub = model.subgraphs[0]
    opcode_names = _enum_names(schema.BuiltinOperator)
    tensors = tuple(_tensor(i, t, model.buffers, buf) for i, t in enumerate(sub.tensors or []))
    operators = []
    for i, op in enumerate(sub.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        # builtinCode superseded deprecatedBuiltinCode (an int8 field) once opcodes passed 127
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = opcode_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"CUSTOM:{custom}"
        operators.append(
            Operator(
                index=i,
                opcode=name,
                version=code.version,
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else [])),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else [])),
                options=_options(op.builtinOptions),
            )
        )
    description = model.description.decode(errors="replace") if isinstance(model.description, bytes) else (model.description or "")
    return Graph(
        tensors=tensors,
        operators=tuple(operators),
        inputs=tuple(int(x) for x in sub.inputs),
        outputs=tuple(int(x) for x in sub.outputs),
        description=description,
    )


def _tensor(index: int, t, buffers, buf: bytes) -> Tensor:
    dtype = _enum_names(schema.TensorType).get(t.type, f"TYPE_{t.type}")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else (t.name or "")
    quant = None
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        zero_point = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale), dtype=np.int64)
        quant = Quantization(
            scale=np.asarray(q.scale, dtype=np.float32),
            zero_point=zero_point,
            axis=int(q.quantizedDimension),
        )
    data = None
    buffer = buffers[t.buffer] if buffers and 0 < t.buffer < len(buffers) else None
    raw = None
    if buffer is not None:
        if buffer.data is not None and len(buffer.data) > 0:
            raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
        elif buffer.offset > 1:  # large models keep buffers after the flatbuffer
            raw = buf[buffer.offset: buffer.offset + buffer.size]
    if raw is not None:
        if dtype not in _NUMPY_DTYPES:
            raise TinylrError(f"tensor {name!r} holds constant data of type {dtype}, which tinylr cannot read")
        data = np.frombuffer(raw, dtype=np.dtype(_NUMPY_DTYPES[dtype]).newbyteorder("<"))
        expected = int(np.prod(shape, dtype=np.int64))
        if data.size != expected:
            raise TinylrError(f"tensor {name!r}: {data.size} stored values for shape {shape}; the file is corrupt")
        data = data.reshape(shape).astype(_NUMPY_DTYPES[dtype])
    return Tensor(index=index, name=name, shape=shape, dtype=dtype, quantization=quant, data=data)


def _options(options) -> dict:
    if options is None:
        return {}
    result = {}
    for key, value in vars(options).items():
        key = _snake(key)
        if key in _ENUM_FIELDS and isinstance(value, int):
            value = _enum_names(_ENUM_FIELDS[key]).get(value, value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        result[key] = value
    return result


def numpy_dtype(dtype: str):
    return _NUMPY_DTYPES[dtype]
