import json

import numpy as np
import pytest
import torch

from tinylr.errors import TinylrError
from tinylr.train import load_checkpoint, train
from tinylr.zoo import read_dataset


def test_train_writes_artefacts_and_learns(tmp_path):
    summary = train("digits_mlp", tmp_path, seed=0, epochs=15)
    assert summary == json.loads((tmp_path / "train.json").read_text())
    assert summary["test_accuracy"] >= 0.90
    assert summary["params"] < summary["dense_params"]
    assert summary["factored_layers"][0]["rank"] == 8 and summary["factored_layers"][0]["worthwhile"]

    data = read_dataset(tmp_path / "dataset.npz", ("x_train", "y_train", "x_test", "y_test"))
    assert data["x_train"].dtype == np.float32 and data["y_test"].dtype == np.int64
    assert len(data["x_train"]) + len(data["x_test"]) == 1797
    assert abs(len(data["x_test"]) / 1797 - 0.2) < 0.01
    assert 0.0 <= data["x_train"].min() and data["x_train"].max() <= 1.0
    assert set(np.unique(data["y_test"])) == set(range(10))  # stratified: every digit is scored

    # the checkpoint rebuilds the trained model: same test accuracy
    model, ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["model"] == "digits_mlp"
    with torch.no_grad():
        pred = model(torch.from_numpy(data["x_test"])).argmax(1).numpy()
    assert np.mean(pred == data["y_test"]) == summary["test_accuracy"]


def test_training_is_deterministic_for_a_seed(tmp_path):
    def weights(folder, seed):
        train("digits_mlp", folder, seed=seed, epochs=2, hidden=32, rank=4)
        return load_checkpoint(folder / "checkpoint.pt")[0].state_dict()

    a, b, c = weights(tmp_path / "a", 1), weights(tmp_path / "b", 1), weights(tmp_path / "c", 2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # the split does not depend on the training seed: seeds are compared on the same digits
    assert np.array_equal(np.load(tmp_path / "a/dataset.npz")["y_test"], np.load(tmp_path / "c/dataset.npz")["y_test"])


def test_model_kwargs_reach_the_model(tmp_path):
    summary = train("digits_mlp", tmp_path, epochs=1, hidden=16, rank=2)
    model, ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["model_kwargs"] == {"hidden": 16, "rank": 2}
    assert model.hidden.V.weight.shape == (2, 64) and model.out.weight.shape == (10, 16)
    assert summary["params"] == 2 * (64 + 16) + 16 + 16 * 10 + 10


@pytest.mark.parametrize("name,kwargs,match", [
    ("no_such_model", {}, "unknown model"),
    ("digits_mlp", {"rank": -1}, "rank"),  # rank 0 is the dense baseline; negative is nonsense
    ("digits_mlp", {"width": 3}, "width"),
])
def test_bad_requests_fail_clearly_and_leave_nothing(tmp_path, name, kwargs, match):
    (tmp_path / "train.json").write_text("{}")  # from an earlier run: must not survive
    with pytest.raises(TinylrError, match=match):
        train(name, tmp_path, epochs=1, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TinylrError, match="tinylr train"):
        load_checkpoint(tmp_path / "checkpoint.pt")
