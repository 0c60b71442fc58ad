"""Rank analysis: the measures on matrices with known spectra, the training hook, `tinylr analyze`."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from tinylr import cli
from tinylr.layers import LowRankConv2d, LowRankLinear
from tinylr.lowrank import RankLogger, analyze_model, analyze_state_dict, spectrum_metrics
from tinylr.lowrank.fit import fit
from tinylr.lowrank.oialr import OIALR, OIALRConfig


def _with_spectrum(m, n, values, seed=0):
    """An m×n matrix with the given singular values (random orthogonal bases)."""
    gen = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    s = torch.zeros(m, n, dtype=torch.float64)
    s[range(len(values)), range(len(values))] = torch.tensor(values, dtype=torch.float64)
    return q1 @ s @ q2.T


def test_metrics_on_a_known_spectrum():
    values = [4.0, 2.0, 2.0, 1.0, 1e-4, 0, 0, 0]
    w = _with_spectrum(8, 12, values)
    m = spectrum_metrics(torch.linalg.svdvals(w))
    # ‖W‖²_F = 16 + 4 + 4 + 1 = 25 (+1e-8): σ/‖W‖_F = 0.8, 0.4, 0.4, 0.2, 2e-5 -> four above 1e-3
    assert m["numerical_rank"] == 4
    assert m["stable_rank"] == pytest.approx(25 / 16)
    assert m["energy_rank_90"] == 3 and m["energy_rank_99"] == 4  # 0.64, 0.80, 0.96, 1.0
    p = torch.tensor([4, 2, 2, 1]) / 9
    # (the 1e-4 value adds ~1e-4 to the entropy)
    assert m["effective_rank"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-3)
    assert m["full_rank"] == 8 and m["frobenius_norm"] == pytest.approx(5.0)


def test_factored_layers_are_measured_on_their_product_and_factors():
    model = nn.Sequential(LowRankLinear(16, 12, 3), nn.ReLU(), nn.Linear(12, 4),
                          nn.Unflatten(1, (1, 2, 2)), LowRankConv2d(1, 6, 2, rank=2))
    report = analyze_model(model)
    assert [(e["name"], e["form"]) for e in report] == [("0", "factored"), ("2", "dense"), ("4", "factored")]
    assert report[0]["metrics"]["numerical_rank"] == 3
    assert report[0]["factors"]["U"]["shape"] == [12, 3] and len(report[0]["factors"]["V"]["singular_values"]) == 3
    assert report[2]["matrix_shape"] == [6, 4] and report[2]["metrics"]["numerical_rank"] == 2
    # the same numbers straight from the state_dict, without the model class
    from_file = analyze_state_dict(model.state_dict())
    assert [e["metrics"] for e in from_file] == [e["metrics"] for e in report]


def test_oialr_layers_are_analyzed_as_their_product():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 2))
    OIALR(model, torch.optim.SGD(model.parameters(), lr=0.1), OIALRConfig(delay=0))
    (first, last) = analyze_model(model)
    assert first["form"] == "oialr" and set(first["factors"]) == {"U·Σ", "Vᵀ"}
    assert analyze_state_dict(model.state_dict())[0]["metrics"] == pytest.approx(first["metrics"])


def test_rank_logger_records_every_n_steps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    logger = RankLogger(model, every=5)
    x = torch.randn(40, 8).numpy()
    y = torch.randint(0, 3, (40,)).numpy()
    result = fit(model, x, y, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, batch_size=8, hooks=[logger])
    assert result["steps"] == 15
    assert [h["step"] for h in logger.history] == [5, 10, 15]
    assert set(logger.history[0]["layers"]) == {"0", "2"}
    assert logger.history[-1]["layers"]["0"]["full_rank"] == 8


def test_analyze_command_writes_json_and_a_plot_per_layer(tmp_path, capsys):
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))
    factored = nn.Sequential(LowRankLinear(16, 12, 3), nn.ReLU(), nn.Linear(12, 4))
    torch.save(dense.state_dict(), tmp_path / "dense.pt")
    torch.save({"format": "anything", "state_dict": factored.state_dict()}, tmp_path / "factored.pt")
    out = tmp_path / "analysis"
    code = cli.main(["analyze", str(tmp_path / "factored.pt"), "--compare", str(tmp_path / "dense.pt"),
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "analysis.json").read_text())
    assert [e["name"] for e in summary["layers"]] == ["0", "2"]
    assert summary["layers"][0]["metrics"]["numerical_rank"] == 3
    assert summary["layers"][0]["compare"]["form"] == "dense"
    for name in ("0.png", "2.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "factored" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_analyze_rejects_bad_input(tmp_path, capsys, content):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    code = cli.main(["analyze", str(path), "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and "model.pt" in err and "state_dict" in err
    assert not (tmp_path / "a" / "analysis.json").exists()


def test_analyze_rejects_a_file_without_weights(tmp_path, capsys):
    torch.save({"step": torch.tensor(3)}, tmp_path / "x.pt")
    assert cli.main(["analyze", str(tmp_path / "x.pt"), "--out", str(tmp_path / "a")]) == 2
    assert "no Linear/Conv2d" in capsys.readouterr().err


def test_cli_registration_imports_no_torch():
    code = "import sys, tinylr.lowrank.commands, tinylr.lowrank; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
