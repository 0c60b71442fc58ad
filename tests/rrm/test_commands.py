import json

import pytest

from tinylr.cli import main


def test_baselines_command(capsys):
    assert main(["rrm", "baselines", "--samples", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 50 and out["normalized"]["wmmse"] == 1.0
    assert out["normalized"]["full_power"] < 0.5


def test_train_command_quick(tmp_path, capsys):
    assert main(["rrm", "train", "--quick", "--epochs", "1", "--samples", "64", "--test-samples", "20",
                 "--width", "8", "--rank", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "lr_mpgnn" and out["model_kwargs"]["msg"] == [8, 8] and out["test"]["n"] == 20
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "dataset.npz").is_file()

    # factorize that (dense) run: SVD only scores without saving, with epochs it fine-tunes and saves
    dense = tmp_path / "dense"
    assert main(["rrm", "train", "--quick", "--epochs", "1", "--samples", "64", "--test-samples", "20",
                 "--width", "8", "--no-progress", "--out", str(dense)]) == 0
    capsys.readouterr()
    assert main(["rrm", "factorize", str(dense), "--rank", "2", "--epochs", "0", "--test-samples", "20",
                 "--out", str(tmp_path / "svd")]) == 0
    assert "SVD only" in capsys.readouterr().out and not (tmp_path / "svd").exists()
    assert main(["rrm", "factorize", str(dense), "--rank", "2", "--quick", "--epochs", "1", "--samples", "64",
                 "--test-samples", "20", "--no-progress", "--out", str(tmp_path / "svd")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "lr_mpgnn" and out["model_kwargs"]["rank"] == 2
    assert main(["rrm", "factorize", str(tmp_path), "--rank", "1", "--epochs", "0", "--out", "x"]) == 2
    assert "factorize expects a dense MPGNN" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["rrm", "train", "--msg", "16,x", "--out", "unused"], "--msg '16,x': give comma-separated integers"),
    (["rrm", "train", "--k", "0", "--out", "unused"], "bad scenario"),
    (["rrm", "evaluate", "nowhere"], "no such checkpoint"),
    (["rrm", "table", "--only", "mpgnn_w999"], "unknown rows mpgnn_w999"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()
