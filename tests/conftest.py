"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

# Few epochs: enough for >90% on digits, and the fixture stays a few seconds of CPU.
DIGITS_EPOCHS = 20


@dataclass(frozen=True)
class DigitsArtifacts:
    """Paths and summaries of one digits_mlp run of `train` -> `export` -> `verify`.

    All files live in `dir`, named as the CLI names them:
    checkpoint.pt, dataset.npz, train.json (train); model.onnx, model_float.tflite,
    model_int8.tflite, export.json (export); reference.npz, verify.json (verify).
    `train`, `export`, `verify` are the dicts those functions returned.
    Treat everything as read-only: the fixture is shared by the whole session.
    """

    dir: Path
    checkpoint: Path
    dataset: Path
    onnx: Path
    float_tflite: Path
    int8_tflite: Path
    reference: Path
    train: dict
    export: dict
    verify: dict


@pytest.fixture(scope="session")
def digits_artifacts(tmp_path_factory) -> DigitsArtifacts:
    """A trained, exported and verified digits_mlp (64 -> LowRankLinear(64, 128, rank 8) -> ReLU -> 10).

    Built once per test session (once per xdist worker) with the real converter and
    the real TFLM interpreter, ~10-15 s. The int8 model is three FULLY_CONNECTED ops
    (64->8 without bias, 8->128 with fused ReLU, 128->10), per-channel weights, int8
    input/output; reference.npz holds the TFLM int8 outputs for the 360 test digits.
    Tests using it should be marked `@pytest.mark.slow`.
    """
    from tinylr.export import export
    from tinylr.train import train
    from tinylr.verify import verify

    out = tmp_path_factory.mktemp("digits")
    trained = train("digits_mlp", out, seed=0, epochs=DIGITS_EPOCHS)
    exported = export(out / "checkpoint.pt", out, data=out / "dataset.npz")
    verified = verify(out / "model_int8.tflite", out, data=out / "dataset.npz",
                      float_tflite=out / "model_float.tflite")
    return DigitsArtifacts(
        dir=out,
        checkpoint=out / "checkpoint.pt",
        dataset=out / "dataset.npz",
        onnx=out / "model.onnx",
        float_tflite=out / "model_float.tflite",
        int8_tflite=out / "model_int8.tflite",
        reference=out / "reference.npz",
        train=trained,
        export=exported,
        verify=verified,
    )
