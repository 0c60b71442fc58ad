"""Power control as a pipeline task: train MPGNN / LR-MPGNN without labels, and score
int8 outputs (TFLM's or the emulated firmware's) as normalized weighted sum rate
against WMMSE on the same held-out channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TinylrError


class PowerControl:
    name = "power_control"
    metric = "nwsr"

    def train(self, model: str, folder: Path, *, seed: int, quick: bool, **model_kwargs) -> dict:
        from ..zoo import rrm as zoo_rrm
        from . import data
        from .train import QUICK, TrainOptions, train

        unknown = set(model_kwargs) - set(zoo_rrm.CONFIG_KEYS)
        if unknown:
            raise TinylrError(f"{model} takes {', '.join(zoo_rrm.CONFIG_KEYS)}; not {', '.join(sorted(unknown))}")
        config = zoo_rrm.config(model, **model_kwargs)
        options = QUICK if quick else TrainOptions()
        options = TrainOptions(**{**options.__dict__, "seed": seed})
        return train(config, folder, scenario=data.DEFAULT_SCENARIO, options=options, progress=False)

    def score(self, folder: Path, outputs: np.ndarray) -> dict:
        from .results import score_int8_outputs

        return {"nwsr": score_int8_outputs(folder, outputs), "n": int(len(outputs))}

    def float_score(self, folder: Path, n: int | None = None) -> dict:
        from ..train import load_checkpoint
        from . import data
        from .channels import Scenario
        from .evaluate import normalized_wsr_float

        model, ckpt = load_checkpoint(folder / "checkpoint.pt")
        scenario = Scenario(**ckpt["rrm"]["scenario"])
        with np.load(folder / "dataset.npz") as d:
            available = len(d["x_test"])
        n = available if n is None else min(n, available)
        result = normalized_wsr_float(model, data.channels(scenario, "test", n), scenario.feature)
        return {"nwsr": result["normalized_wsr"], "n": n, "full_power_nwsr": result["full_power"]}


TASK = PowerControl()
