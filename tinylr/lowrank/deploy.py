"""Export any torch model (factored or not) through the pipeline's export stage.

`tinylr.export` rebuilds zoo models from checkpoints; a model changed by
factorize_, OIALR or NOLA is usually no zoo configuration. This writes its ONNX
(the same exporter settings as the export stage) and hands that to
`tinylr.export.export`, which converts it with onnx2tf, checks the float .tflite
against onnxruntime and quantizes it to int8. Then it checks what the .onnx
route cannot: that every nn.Linear / nn.Conv2d call is still its own op, i.e.
no factored pair was folded back into one dense layer.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import ir
from ..errors import TinylrError
from ..export import OPSET, export

_OPS = {nn.Linear: "FULLY_CONNECTED", nn.Conv2d: "CONV_2D"}


def module_calls(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """How many FULLY_CONNECTED / CONV_2D ops the model should become: one per Linear / Conv2d call."""
    counts = dict.fromkeys(_OPS.values(), 0)
    hooks = [m.register_forward_hook(lambda mod, *_: counts.__setitem__(_OPS[type(mod)], counts[_OPS[type(mod)]] + 1))
             for m in model.modules() if type(m) in _OPS]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def export_model(model: nn.Module, x_calibration: np.ndarray, out_dir: str | Path) -> dict:
    """int8 .tflite of `model` in `out_dir` (model_int8.tflite, model_float.tflite, export.json).

    `x_calibration` holds samples in the model's input shape (e.g. (N, C, H, W)).
    Returns export's summary plus `expected_ops` and the op counts found.
    """
    model = model.eval()
    x = np.ascontiguousarray(x_calibration, dtype=np.float32)
    expected = module_calls(model, x.shape[1:])
    with tempfile.TemporaryDirectory(prefix="tinylr-lowrank-") as tmp:
        onnx_path, data = Path(tmp) / "model.onnx", Path(tmp) / "dataset.npz"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(model, (torch.zeros(1, *x.shape[1:]),), str(onnx_path), opset_version=OPSET,
                              dynamo=False, input_names=["input"], output_names=["output"])
        np.savez(data, x_train=x)
        summary = export(onnx_path, out_dir, data=data, calibration_samples=len(x))
    opcodes = ir.load(Path(out_dir) / "model_int8.tflite").opcodes
    found = {op: opcodes.count(op) for op in expected}
    if found != expected:
        raise TinylrError(f"the int8 model has {found} for {expected} Linear/Conv2d calls in the source: the "
                          f"converter folded or split layers (ops: {', '.join(opcodes)})")
    return {**summary, "expected_ops": expected}
