"""Stage 3: score the int8 model on the TFLM interpreter and record the reference vectors.

Writes `out_dir/reference.npz` (inputs, outputs, labels) — the int8 vectors the
generated C must reproduce bit for bit — and `out_dir/verify.json` (accuracies,
int8/float agreement, TFLM arena bytes).

x_test is given in the source model's layout (PyTorch's channels first for image
models). The int8 model carries the permutation onto its own layout (channels last)
in its `tinylr_input_layout` metadata, written by `tinylr export`; verify applies it
before quantizing, so `reference.npz` inputs are in the .tflite's layout, flattened:
exactly the bytes the generated C and TFLM read. A model without that entry is fed
the data as it is.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import ir, reference
from .errors import TinylrError
from .export import check_source_layout, input_layout, to_model_layout
from .fsutil import atomic_path, remove_stale, write_json
from .zoo import read_dataset

OUTPUTS = ("reference.npz", "verify.json")


def verify(int8_tflite: str | Path, out_dir: str | Path, *, data: str | Path,
           float_tflite: str | Path | None = None) -> dict:
    """Run x_test through the int8 model on TFLM (and the float model, when given).

    Returns the summary written to verify.json.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    targets = [out / name for name in OUTPUTS]
    remove_stale(*targets)
    int8_path = Path(int8_tflite)
    model = _read(int8_path)
    inp, outp = reference.int8_io(ir.parse(model, source=str(int8_path)), str(int8_path))
    layout = input_layout(model, inp.shape, str(int8_path))
    test = read_dataset(data, ("x_test", "y_test"))
    x, y = test["x_test"], test["y_test"]
    if x[0].size != inp.size:
        raise TinylrError(f"{data}: x_test samples have {x[0].size} values but {int8_path} takes {inp.size} "
                          f"(shape {inp.shape}); give the dataset the model was trained on")
    check_source_layout(x, layout["source_shape"], f"{data}: x_test")
    x = to_model_layout(x, layout).reshape(len(x), -1)  # the .tflite's own layout, one flat row per sample
    if y.size and (y.min() < 0 or y.max() >= outp.size):  # accuracy = argmax over the flattened output
        raise TinylrError(f"{data}: labels range over {y.min()}..{y.max()} but the model has {outp.size} outputs; "
                          "give the dataset the model was trained on")

    inputs = reference.quantize(x, inp.scale, inp.zero_point)
    outputs = reference.run(model, inputs)
    int8_pred = np.argmax(reference.dequantize(outputs, outp.scale, outp.zero_point), axis=1)
    summary = {
        "int8_tflite": str(int8_path),
        "float_tflite": None if float_tflite is None else str(float_tflite),
        "n_test": int(len(y)),
        "int8_accuracy": float(np.mean(int8_pred == y)),
        "float_accuracy": None,
        "agreement": None,
    }
    if float_tflite is not None:
        float_pred = np.argmax(_run_float(Path(float_tflite), x, inp.shape, layout), axis=1)
        summary["float_accuracy"] = float(np.mean(float_pred == y))
        summary["agreement"] = float(np.mean(float_pred == int8_pred))  # argmax int8 vs float
    summary["tflm_arena_bytes"] = reference.arena_bytes(int8_path)
    summary["input"] = {"shape": list(inp.shape), "scale": inp.scale, "zero_point": inp.zero_point,
                        "source_shape": layout["source_shape"], "permutation": layout["permutation"]}
    summary["output"] = {"shape": list(outp.shape), "scale": outp.scale, "zero_point": outp.zero_point}
    summary["seconds"] = round(time.perf_counter() - start, 3)

    with atomic_path(targets[0]) as tmp, open(tmp, "wb") as f:
        np.savez(f, inputs=inputs, outputs=outputs, labels=y)
    write_json(targets[1], summary)
    return summary


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise TinylrError(f"{path}: no such model file; run `tinylr export` first")
    return path.read_bytes()


def _run_float(path: Path, x: np.ndarray, shape: tuple[int, ...], layout: dict) -> np.ndarray:
    """Float logits from the float .tflite (TFLite's interpreter, no delegates), one row per sample.

    `x` is already in the int8 model's layout; the float model must share it.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = _read(path)
    graph = ir.parse(data, source=str(path))
    if len(graph.inputs) != 1 or graph.tensors[graph.inputs[0]].dtype != "FLOAT32":
        raise TinylrError(f"{path}: not a single-input float model; pass the model_float.tflite "
                          "written by `tinylr export` as the float model")
    float_shape = graph.tensors[graph.inputs[0]].shape
    if float_shape != tuple(shape) or input_layout(data, float_shape, str(path)) != layout:
        raise TinylrError(f"{path}: input shape {float_shape} does not match the int8 model's {tuple(shape)} "
                          f"(or its recorded layout differs); pass the float and int8 models of one export")
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    in_detail, out_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    logits = []
    for sample in x:
        interpreter.set_tensor(in_detail["index"], sample.reshape(in_detail["shape"]))
        interpreter.invoke()
        logits.append(interpreter.get_tensor(out_detail["index"]).reshape(-1))
    return np.stack(logits)
