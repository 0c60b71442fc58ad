"""Stage 2: checkpoint.pt or .onnx -> model.onnx -> SavedModel (onnx2tf) -> float and int8 .tflite.

Writes to `out_dir`: model.onnx, model_float.tflite, model_int8.tflite (full-integer,
per-channel weights) and export.json. Nothing is written until every check has
passed: the float .tflite matches torch/onnxruntime, the int8 model is int8 end to
end, and every factored layer is still two FULLY_CONNECTED ops.

Input layout. onnx2tf makes a convolutional model channel-last: a PyTorch input
(1, C, H, W) becomes (1, H, W, C) in the .tflite (rank 3 inputs such as audio
features (1, T, F) are kept as they are). The data a user has stays in the source
layout, so export finds the permutation `perm` with tflite_shape == source_shape[perm],
transposes the calibration data with it, checks the float .tflite against the source
model on the transposed data, and records it twice: in export.json
(`input_permutation`, `source_input_shape`) and in both .tflite files as a metadata
entry named `tinylr_input_layout` (JSON: {"source_shape": [...], "permutation": [...]}),
so that `tinylr verify` — given only the model — feeds the int8 model data in its own
(NHWC) layout. `to_model_layout` applies it; a .tflite without the entry (not written
by `tinylr export`) takes data in its own layout, i.e. the identity permutation.
Heavy libraries are imported inside functions so that importing tinylr stays fast.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import ir
from .capture import CapturedOutput, first_line, plain, tail
from .errors import TinylrError
from .fsutil import remove_stale, write_bytes, write_json
from .reference import int8_io
from .zoo import read_dataset

OPSET = 17
FLOAT_TOLERANCE = 1e-4   # max |tflite - reference|, relative to max(1, max |reference|)
OUTPUTS = ("model.onnx", "model_float.tflite", "model_int8.tflite", "export.json")
_TOOLS = ("torch", "onnx", "onnxsim", "onnx2tf", "tensorflow", "onnxruntime", "ai-edge-litert")

# onnx2tf runs the onnxsim CLI three times (≈2.5 s each, mostly imports); one child
# process doing the same passes is faster and still keeps onnxsim's native code,
# which can crash on unusual models, out of our process.
_SIMPLIFY = r"""
import sys, onnx, onnxsim
model = onnx.load(sys.argv[1])
for _ in range(3):
    before = model.SerializeToString()
    model, ok = onnxsim.simplify(model)
    if not ok:
        sys.exit("onnxsim: the simplified model does not compute the same outputs")
    if model.SerializeToString() == before:
        break
onnx.save(model, sys.argv[2])
"""


def export(source: str | Path, out_dir: str | Path, *, data: str | Path, calibration_samples: int = 300) -> dict:
    """Convert `source` (a checkpoint.pt from `tinylr train`, or an .onnx file) to int8 TFLite.

    `data` is a dataset.npz whose first `calibration_samples` rows of x_train
    calibrate the int8 ranges. Returns the summary written to export.json.
    """
    start = time.perf_counter()
    source, out = Path(source), Path(out_dir)
    targets = [out / name for name in OUTPUTS]
    remove_stale(*targets)
    if calibration_samples < 1:
        raise TinylrError(f"calibration_samples must be >= 1, got {calibration_samples}")
    x_cal = read_dataset(data, ("x_train",))["x_train"][:calibration_samples]
    with tempfile.TemporaryDirectory(prefix="tinylr-export-") as tmp:
        onnx_path, reference_fn, expect = _to_onnx(source, Path(tmp))
        source_shape = tuple(expect["input_shape"])
        if x_cal[0].size != int(np.prod(source_shape)):
            raise TinylrError(f"{data}: x_train samples have {x_cal[0].size} values but the model input has shape "
                              f"{source_shape}; give the data the model was trained on")
        check_source_layout(x_cal, source_shape, f"{data}: x_train")
        seconds = {"onnx": time.perf_counter() - start}
        saved_model = _onnx2tf(onnx_path, Path(tmp), x_cal, source_shape)
        seconds["onnx2tf"] = time.perf_counter() - start - sum(seconds.values())
        float_bytes, int8_bytes, float_error, tol, perm = _to_tflite(saved_model, x_cal, reference_fn, source_shape)
        layout = {"source_shape": list(source_shape), "permutation": perm}
        float_bytes, int8_bytes = (with_input_layout(b, layout) for b in (float_bytes, int8_bytes))
        seconds["tflite"] = time.perf_counter() - start - sum(seconds.values())
        graph = ir.parse(int8_bytes, source="model_int8.tflite")
        checks = _check_int8(graph, expect)
        inp, outp = int8_io(graph, "model_int8.tflite")
        onnx_bytes = onnx_path.read_bytes()
    blobs = dict(zip(OUTPUTS, (onnx_bytes, float_bytes, int8_bytes)))
    summary = {
        "source": str(source), "model": expect["model"], "ops": graph.opcodes, **checks,
        "input": _io_entry(inp), "output": _io_entry(outp),
        "source_input_shape": list(source_shape), "input_permutation": perm,
        "float_max_abs_error": float_error, "float_tolerance": tol,
        "calibration_samples": int(len(x_cal)), "onnx_opset": OPSET,
        "sizes": {name: len(blob) for name, blob in blobs.items()},
        "seconds": {k: round(v, 3) for k, v in {**seconds, "total": time.perf_counter() - start}.items()},
        "versions": {name: _version(name) for name in _TOOLS},
    }
    try:
        for name, blob in blobs.items():
            write_bytes(out / name, blob)
        write_json(targets[-1], summary)
    except BaseException:
        remove_stale(*targets)  # a partial set of artefacts must not look like a finished export
        raise
    return summary


def _to_onnx(source: Path, tmp: Path):
    """Write tmp/model.onnx (batch 1); return it, a float reference function and what to expect."""
    if not source.is_file():
        raise TinylrError(f"{source}: no such file; give a checkpoint.pt from `tinylr train` or an .onnx model")
    if source.suffix == ".onnx":
        return _from_onnx(source, tmp)
    import torch

    from .train import factored_layers, linear_calls, load_checkpoint

    model, ckpt = load_checkpoint(source)
    shape = (1, *ckpt["input_shape"])
    path = tmp / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice is not the user's business
        torch.onnx.export(model, (torch.zeros(shape),), str(path), opset_version=OPSET, dynamo=False,
                          input_names=["input"], output_names=["output"])

    def reference(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x.reshape(len(x), *shape[1:]))).numpy()

    expect = {"model": ckpt["model"], "input_shape": shape, "fully_connected": linear_calls(model, shape),
              "factored": factored_layers(model)}
    return path, reference, expect


def _from_onnx(source: Path, tmp: Path):
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(source))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise TinylrError(f"{source}: not a valid ONNX model ({exc}); re-export it from your framework") from exc
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise TinylrError(f"{source}: {len(inputs)} inputs and {len(model.graph.output)} outputs; "
                          "tinylr exports single-input, single-output models")
    dims = inputs[0].type.tensor_type.shape.dim
    if dims and not dims[0].HasField("dim_value"):
        dims[0].dim_value = 1  # a symbolic batch becomes 1: the microcontroller runs one sample at a time
    if any(not d.HasField("dim_value") for d in dims):
        raise TinylrError(f"{source}: input {inputs[0].name!r} has symbolic dimensions besides the batch; "
                          "export the model with a fixed input shape")
    path = tmp / "model.onnx"
    onnx.save(model, str(path))
    shape = tuple(d.dim_value for d in dims)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime is the float reference: a model it cannot run cannot be checked
        raise TinylrError(f"{source}: onnxruntime cannot run the model ({first_line(exc)}); fix the model") from None

    def reference(x: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(None, {inputs[0].name: s.reshape(shape)})[0] for s in x])

    initializers = {t.name for t in model.graph.initializer}
    dense = sum(1 for n in model.graph.node
                if n.op_type == "Gemm" or (n.op_type == "MatMul" and n.input[1] in initializers))
    return path, reference, {"model": None, "input_shape": shape, "fully_connected": dense, "factored": []}


def _onnx2tf(onnx_path: Path, tmp: Path, x_cal: np.ndarray, source_shape: tuple[int, ...]) -> Path:
    """Simplify (onnxsim, child process) then convert with onnx2tf; return the SavedModel dir."""
    simplified = tmp / "simplified.onnx"  # onnx2tf overwrites its input: never hand it model.onnx
    proc = subprocess.run([sys.executable, "-c", _SIMPLIFY, str(onnx_path), str(simplified)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not simplified.is_file():
        raise TinylrError(f"onnxsim could not simplify the model (exit status {proc.returncode}); "
                          f"onnx2tf needs a simplified graph. Its output:\n{tail(proc.stderr + proc.stdout)}")
    saved_model = tmp / "saved_model"
    log = CapturedOutput()
    try:
        with log, _sample_images(x_cal, source_shape):
            import onnx
            import onnx2tf

            rank3 = [i.name for i in onnx.load(str(simplified)).graph.input
                     if len(i.type.tensor_type.shape.dim) == 3]
            # onnx2tf renames ':' to '__' (torch names an input that feeds an op directly
            # e.g. 'onnx::Unsqueeze_0') before it compares names: give both spellings
            rank3 += [name.replace(":", "__") for name in rank3 if ":" in name]
            onnx2tf.convert(
                input_onnx_file_path=str(simplified), output_folder_path=str(saved_model),
                not_use_onnxsim=True, verbosity="warn",
                # rank-3 inputs would be taken as NCW and transposed; keep the user's layout
                keep_shape_absolutely_input_names=rank3 or None)
    except (Exception, SystemExit) as exc:  # onnx2tf calls sys.exit() on some unsupported models
        node = re.search(r"onnx_op_name: (\S+)", plain(log.text))
        where = f" at ONNX node {node.group(1)!r}" if node else ""
        raise TinylrError(f"onnx2tf could not convert the model{where} ({first_line(exc)}); it may use an op "
                          f"onnx2tf does not support. Its output:\n{tail(log.text)}") from None
    if not (saved_model / "saved_model.pb").is_file():
        raise TinylrError(f"onnx2tf wrote no SavedModel; its output:\n{tail(log.text)}")
    return saved_model


@contextlib.contextmanager
def _sample_images(x_cal: np.ndarray, source_shape: tuple[int, ...]):
    """Give onnx2tf our calibration images instead of letting it download its own.

    For a model whose inputs are all images with 3 channels, onnx2tf fetches sample
    photos from GitHub (no network: the conversion fails; with it, the result depends
    on a download) and runs them, resized, through both graphs to choose transposes.
    Our own data, in the channels-last layout it asks for, serves it better.
    """
    import onnx2tf.onnx2tf as converter

    def images() -> np.ndarray:
        if len(source_shape) != 4:
            raise TinylrError(f"onnx2tf asked for sample images for a model with input shape {source_shape}")
        perm = [0, *range(2, len(source_shape)), 1]
        return to_model_layout(x_cal[:20], {"source_shape": list(source_shape), "permutation": perm}).astype(np.float32)

    original = converter.download_test_image_data
    converter.download_test_image_data = images
    try:
        yield
    finally:
        converter.download_test_image_data = original


def _to_tflite(saved_model: Path, x_cal: np.ndarray, reference_fn, onnx_shape: tuple[int, ...]):
    """Float and int8 .tflite from the SavedModel; the float one checked against the reference.

    Also returns the input permutation: calibration data, given in the source layout,
    is transposed into the .tflite's layout for the float check and the int8 ranges.
    """
    log = CapturedOutput()
    try:
        with log:
            import tensorflow as tf

            float_bytes = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    except Exception as exc:
        raise TinylrError(f"the TFLite converter failed on the SavedModel ({first_line(exc)}); the model needs "
                          f"ops without a TFLite builtin kernel. Converter output:\n{tail(log.text)}") from None
    runner, (in_name, in_shape), out_name = _signature(float_bytes)
    candidates = input_permutations(onnx_shape, in_shape)
    if not candidates:
        raise TinylrError(f"onnx2tf changed the input shape from {onnx_shape} to {in_shape}, which is neither the "
                          "source layout nor its channels-last form; tinylr cannot map the data onto it. Export a "
                          "model whose input is (batch, features), (batch, time, features) or (batch, C, H, W)")
    want = reference_fn(x_cal)
    tol = FLOAT_TOLERANCE * max(1.0, float(np.max(np.abs(want))))
    errors = []
    # Several candidates only when the shape cannot tell them apart (e.g. C == H == W):
    # the one under which the float model computes what the source computes is the layout.
    for perm in candidates:
        samples = to_model_layout(x_cal, {"source_shape": list(onnx_shape), "permutation": perm})
        samples = samples.reshape(len(samples), *in_shape)
        got = np.concatenate([runner(**{in_name: s})[out_name] for s in samples])
        errors.append(float(np.max(np.abs(got - want.reshape(got.shape)))) if got.size == want.size else np.inf)
        if errors[-1] <= tol:
            break
    else:
        layouts = " or ".join(str(p) for p in candidates)
        raise TinylrError(f"the float .tflite differs from the source model by up to {errors[0]:.3g} (tolerance "
                          f"{tol:.3g}) on calibration samples (input permutation {layouts}): onnx2tf converted it "
                          "wrongly. Check the graph for ops onnx2tf mishandles (layouts, broadcasts) and simplify "
                          "the model")
    error = errors[-1]

    def representative():
        for s in samples:
            yield {in_name: s}

    try:
        with log:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
            # TF 2.21 already defaults to per-channel FULLY_CONNECTED weights; say so explicitly.
            converter._experimental_disable_per_channel_quantization_for_dense_layers = False
            int8_bytes = converter.convert()
    except Exception as exc:
        raise TinylrError(f"int8 quantization failed ({first_line(exc)}); every op must have an int8 TFLite builtin "
                          f"kernel. Converter output:\n{tail(log.text)}") from None
    return float_bytes, int8_bytes, error, tol, perm


def _signature(model_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    signature = interpreter.get_signature_list()["serving_default"]
    if len(signature["inputs"]) != 1 or len(signature["outputs"]) != 1:
        raise TinylrError("the converted model has several inputs or outputs; tinylr exports single-input, "
                          "single-output models")
    runner, in_name = interpreter.get_signature_runner("serving_default"), signature["inputs"][0]
    return runner, (in_name, tuple(int(d) for d in runner.get_input_details()[in_name]["shape"])), signature["outputs"][0]


def _check_int8(graph: ir.Graph, expect: dict) -> dict:
    """int8 throughout, per-channel FC weights, one FC per Linear call, each factored layer kept as a pair."""
    floats = [op.opcode for op in graph.operators
              if any(t.dtype == "FLOAT32" for t in graph.op_inputs(op) + graph.op_outputs(op) if t)]
    if floats:
        names = sorted(set(floats) - {"QUANTIZE", "DEQUANTIZE"} or set(floats))
        raise TinylrError(f"int8 conversion left float ops ({', '.join(names)}): TFLite has no int8 kernel "
                          "for them; replace them in the model")
    fcs = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
    if len(fcs) != expect["fully_connected"]:
        raise TinylrError(f"the int8 model has {len(fcs)} FULLY_CONNECTED ops for {expect['fully_connected']} "
                          "linear layers in the source: the converter folded or split layers (ops: "
                          f"{', '.join(graph.opcodes)}); keep factored layers as separate nn.Linear modules")
    for op in fcs:
        weight = graph.tensors[op.inputs[1]]
        if weight.shape[0] > 1 and len(weight.quantization.scale) != weight.shape[0]:
            raise TinylrError(f"FULLY_CONNECTED op {op.index} has per-tensor weights; tinylr expects per-channel")
    pairs = []
    for layer in expect["factored"]:
        pair = _find_pair(graph, fcs, layer)
        if pair is None:
            raise TinylrError(
                f"factored layer {layer['name']!r} ({layer['in_features']} -> {layer['rank']} -> "
                f"{layer['out_features']}) is not two FULLY_CONNECTED ops (the first without bias) in the int8 "
                "model: the converter folded it back into one dense layer")
        pairs.append({**layer, "ops": list(pair)})
    return {"fully_connected": len(fcs), "per_channel_weights": True, "factored_layers": pairs}


def _find_pair(graph: ir.Graph, fcs: list, layer: dict) -> tuple[int, int] | None:
    for first in fcs:
        if graph.tensors[first.inputs[1]].shape != (layer["rank"], layer["in_features"]):
            continue
        if len(first.inputs) > 2 and first.inputs[2] >= 0:
            continue
        for second in fcs:
            has_bias = len(second.inputs) > 2 and second.inputs[2] >= 0
            if (second.inputs[0] == first.outputs[0] and has_bias == layer["bias"]
                    and graph.tensors[second.inputs[1]].shape == (layer["out_features"], layer["rank"])):
                return first.index, second.index
    return None


# --- input layout: source (PyTorch) order -> the .tflite's own order -------------------------

LAYOUT_METADATA = "tinylr_input_layout"   # name of the .tflite metadata entry export writes


def input_permutations(source_shape: tuple[int, ...], tflite_shape: tuple[int, ...]) -> list[list[int]]:
    """Permutations `perm` with tflite_shape == source_shape[perm] that onnx2tf can have applied.

    onnx2tf moves the channel axis (axis 1) last for inputs of rank 4 and up, and keeps
    rank 3 inputs as they are (export names them in keep_shape_absolutely_input_names),
    so that permutation comes first; the other one is only tried when the shape alone
    cannot tell them apart. The batch axis always stays first.
    """
    rank = len(source_shape)
    identity, channels_last = list(range(rank)), [0, *range(2, rank), 1]
    order = [channels_last, identity] if rank >= 4 else [identity, channels_last]
    found: list[list[int]] = []
    for perm in order:
        if (perm not in found and len(tflite_shape) == rank
                and [source_shape[i] for i in perm] == [int(d) for d in tflite_shape]):
            found.append(perm)
    return found


def to_model_layout(x: np.ndarray, layout: dict) -> np.ndarray:
    """Samples (one per row, source layout, flat or shaped) -> (N, *tflite input shape[1:])."""
    x = np.asarray(x)
    return x.reshape(len(x), *layout["source_shape"][1:]).transpose(layout["permutation"])


def check_source_layout(x: np.ndarray, source_shape: tuple[int, ...], where: str) -> None:
    """Shaped samples must have the source model's per-sample shape (flat rows are taken as they are).

    Catches data already in the .tflite's channels-last layout, which has the right
    number of values and would silently be transposed a second time.
    """
    if x.ndim > 2 and tuple(x.shape[1:]) != tuple(source_shape[1:]):
        raise TinylrError(f"{where} samples have shape {tuple(x.shape[1:])} but the source model takes "
                          f"{tuple(source_shape[1:])} (its own layout, e.g. PyTorch's channels first); give the "
                          "data in the layout the model was trained on, or flattened")


def with_input_layout(model: bytes, layout: dict) -> bytes:
    """The .tflite `model` with a metadata entry LAYOUT_METADATA holding `layout` as JSON.

    Rebuilt through the flatbuffer object API, as the TFLite converter itself does
    when it sets int8 input/output types.
    """
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(model, 0)
    tree.buffers = list(tree.buffers or [])
    tree.metadata = [m for m in (tree.metadata or []) if _text(m.name) != LAYOUT_METADATA]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(layout).encode(), dtype=np.uint8)
    entry = schema.MetadataT()
    entry.name, entry.buffer = LAYOUT_METADATA, len(tree.buffers)
    tree.buffers.append(buffer)
    tree.metadata.append(entry)
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def input_layout(model: bytes, input_shape: tuple[int, ...], source: str) -> dict:
    """The layout recorded by `with_input_layout`, checked against the model's input shape.

    A model without the entry (not written by `tinylr export`) takes its data in its
    own layout: the identity permutation.
    """
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    identity = {"source_shape": list(input_shape), "permutation": list(range(len(input_shape)))}
    fix = "re-export the model with `tinylr export`"
    try:
        root = schema.Model.GetRootAs(model, 0)
        raw = None
        for i in range(root.MetadataLength()):
            entry = root.Metadata(i)
            if _text(entry.Name()) == LAYOUT_METADATA:
                raw = root.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        if raw is None:
            return identity
        layout = json.loads(raw)
        shape, perm = [int(d) for d in layout["source_shape"]], [int(p) for p in layout["permutation"]]
    except Exception as exc:  # corrupt flatbuffer or entry
        raise TinylrError(f"{source}: unreadable {LAYOUT_METADATA!r} metadata ({type(exc).__name__}: {exc}); {fix}") from None
    if sorted(perm) != list(range(len(shape))) or perm[:1] != [0] or [shape[p] for p in perm] != list(input_shape):
        raise TinylrError(f"{source}: {LAYOUT_METADATA!r} metadata (source shape {shape}, permutation {perm}) does "
                          f"not fit the model input {tuple(input_shape)}; {fix}")
    return {"source_shape": shape, "permutation": perm}


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _io_entry(t: ir.Tensor) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "scale": t.scale, "zero_point": t.zero_point}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
