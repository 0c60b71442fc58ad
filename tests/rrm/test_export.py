"""The LR-MPGNN through the real converter and the TFLM interpreter (slow: onnx2tf, ~30 s per worker)."""

import json

import numpy as np
import pytest

from tinylr import ir, reference
from tinylr.rrm import data
from tinylr.rrm.gnn import GNNConfig
from tinylr.rrm.train import QUICK

pytestmark = pytest.mark.slow

# int8 may cost at most this much normalized WSR against the float model (absolute, WMMSE = 1).
# Measured here: see the nWSR float and int8 columns of docs/rrm.md (a quick-trained model is noisier).
INT8_TOLERANCE = 0.02
# What the packed dense-tensor GNN may become; anything else is an op our C generator would not expect.
EXPECTED_OPS = {"RESHAPE", "STRIDED_SLICE", "TRANSPOSE", "MUL", "REDUCE_MAX", "CONCATENATION", "FULLY_CONNECTED",
                "LOGISTIC", "QUANTIZE"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import tinylr.zoo.rrm  # noqa: F401
    from tinylr.export import export
    from tinylr.rrm.train import train

    run = tmp_path_factory.mktemp("lr_mpgnn")
    trained = train(GNNConfig(msg=(32, 32), upd=(32,), rank=2), run, options=QUICK, progress=False)
    summary = export(run / "checkpoint.pt", run, data=run / "dataset.npz")
    return run, trained, summary


def test_packed_single_input_export_converts(exported):
    run, trained, summary = exported
    assert summary["input"]["shape"] == [1, 10, 11] and summary["output"]["shape"] == [1, 10]
    assert summary["input"]["dtype"] == summary["output"]["dtype"] == "INT8"
    graph = ir.load(run / "model_int8.tflite")
    assert set(graph.opcodes) <= EXPECTED_OPS, set(graph.opcodes) - EXPECTED_OPS
    assert {"FULLY_CONNECTED", "REDUCE_MAX", "CONCATENATION", "LOGISTIC"} <= set(graph.opcodes)
    # 3 applications x (message 5->32->32 and update 35->32->1), the three factorable ones as pairs
    assert summary["fully_connected"] == 3 * (2 * 3 + 1)
    assert {(f["in_features"], f["out_features"]) for f in summary["factored_layers"]} == {(5, 32), (32, 32), (35, 32)}
    assert summary["float_max_abs_error"] <= summary["float_tolerance"]
    assert graph.opcodes.count("REDUCE_MAX") == 3 + 1   # the diagonal once, then one max per layer


def test_int8_wsr_stays_within_tolerance_of_float(exported):
    from tinylr.rrm.evaluate import evaluate_run

    run, trained, _ = exported
    result = evaluate_run(run)
    assert json.loads((run / "eval.json").read_text()) == result
    f, q = result["float"]["normalized_wsr"], result["int8"]["normalized_wsr"]
    assert f == pytest.approx(trained["test"]["normalized_wsr"])
    assert abs(q - f) <= INT8_TOLERANCE, (f, q)
    assert q > 2 * result["float"]["full_power"]
    assert result["int8"]["mean_abs_power_error"] < 0.05


def test_int8_outputs_score_like_the_reference(exported):
    """The hook that scores firmware outputs gives TFLM's own outputs the evaluator's score."""
    from tinylr.rrm.evaluate import normalized_wsr, powers_int8
    from tinylr.rrm.results import score_int8_outputs

    run, _, summary = exported
    n = 16
    x = np.load(run / "dataset.npz")["x_test"][:n]
    q = reference.quantize(x, summary["input"]["scale"], summary["input"]["zero_point"])
    outputs = reference.run(run / "model_int8.tflite", q)
    ch = data.channels(data.DEFAULT_SCENARIO, "test", n)
    expected = normalized_wsr(powers_int8(run / "model_int8.tflite", ch, "amplitude"), ch)
    assert score_int8_outputs(run, outputs) == pytest.approx(expected)


def test_cli_evaluate_and_wrong_k(exported, capsys):
    from tinylr.cli import main
    from tinylr.errors import TinylrError
    from tinylr.rrm.channels import gaussian_ic
    from tinylr.rrm.evaluate import powers_int8

    run, _, _ = exported
    assert main(["rrm", "evaluate", str(run), "--samples", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["float"]["n"] == 40 and "int8" in out
    with pytest.raises(TinylrError, match="do not fit K=5 users"):
        powers_int8(run / "model_int8.tflite", gaussian_ic(2, 5, seed=0), "amplitude")
