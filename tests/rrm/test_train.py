import json

import numpy as np
import torch

from tinylr.rrm import data
from tinylr.rrm.gnn import GNNConfig
from tinylr.rrm.train import QUICK, train
from tinylr.train import load_checkpoint
from tinylr.zoo import read_dataset


def test_quick_training_learns_and_leaves_pipeline_artefacts(tmp_path):
    summary = train(GNNConfig(rank=2), tmp_path, options=QUICK, progress=False)
    assert summary == json.loads((tmp_path / "train.json").read_text())
    test = summary["test"]
    # full power scores ~0.22 of WMMSE here; a few hundred steps already get most of the way
    assert test["full_power"] < 0.3 and test["normalized_wsr"] > 0.85
    assert summary["train_wsr_per_epoch"][-1] > summary["train_wsr_per_epoch"][0]
    assert summary["model"] == "lr_mpgnn" and summary["params"] < summary["dense_params"] == 1233

    # the checkpoint rebuilds through the zoo like any `tinylr train` checkpoint
    import tinylr.zoo.rrm  # noqa: F401  (registers mpgnn / lr_mpgnn)
    model, ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["input_shape"] == [10, 11] and ckpt["rrm"]["scenario"]["k"] == 10
    arrays = read_dataset(tmp_path / "dataset.npz", ("x_train", "y_train", "x_test", "y_test"))
    assert arrays["x_train"].shape == (QUICK.n_train, 10, 11) and not arrays["y_train"].any()
    x = torch.from_numpy(arrays["x_test"][:50])
    p = model(x).detach().numpy()
    assert p.shape == (50, 10) and 0.0 <= p.min() and p.max() <= 1.0
    # dataset.npz holds exactly the held-out channels the score was computed on
    assert np.allclose(arrays["x_test"], data.split(n_train=1, n_test=QUICK.n_test).x_test)


def test_training_is_deterministic_for_a_seed(tmp_path):
    def run(folder, seed):
        import dataclasses
        train(GNNConfig(msg=(8, 8), upd=(8,)), folder, options=dataclasses.replace(QUICK, epochs=1, n_train=200, seed=seed),
              progress=False)
        return torch.load(folder / "checkpoint.pt", weights_only=True)["state_dict"]

    a, b, c = run(tmp_path / "a", 1), run(tmp_path / "b", 1), run(tmp_path / "c", 2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_oialr_training_saves_the_ranks_it_found(tmp_path):
    import tinylr.zoo.rrm  # noqa: F401
    from tinylr.layers import LowRankLinear
    from tinylr.lowrank import OIALRConfig

    config = GNNConfig(msg=(32, 32), upd=(32,))
    summary = train(config, tmp_path, options=QUICK, progress=False,
                    oialr=OIALRConfig(delay=100, stability_frequency=50, sigma_cutoff_fraction=0.2))
    ranks = summary["model_kwargs"]["ranks"]
    assert summary["model"] == "lr_mpgnn" and summary["requested_kwargs"] == config.to_kwargs()
    assert set(ranks) == {"msg.0", "msg.2", "upd.0"}            # the 1-wide output stays dense
    assert summary["params"] < summary["dense_params"] and summary["test"]["normalized_wsr"] > 0.8
    assert summary["oialr"]["rank_history"][0]["step"] == 100
    model, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    layers = dict(model.named_modules())
    for name, r in ranks.items():
        assert (layers[name].rank == r) if r else not isinstance(layers[name], LowRankLinear)
