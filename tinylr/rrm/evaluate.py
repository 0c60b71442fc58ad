"""Normalized weighted sum rate: mean WSR of a power allocation / mean WSR of WMMSE (100 iterations).

Scored on the held-out set (2,000 channels by default) for the float torch model
and for the int8 .tflite run on the TFLM interpreter (`tinylr.reference.run`, the
same reference the generated C is checked against), with full and random power
as baselines.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import TinylrError
from ..fsutil import write_json
from . import wmmse as baselines
from .channels import Channels, pack, weighted_sum_rate

__all__ = ["normalized_wsr", "powers_float", "powers_int8", "normalized_wsr_float", "evaluate_run"]


def normalized_wsr(p: np.ndarray, ch: Channels, reference: np.ndarray | None = None) -> float:
    """mean_n WSR(p_n) / mean_n WSR(WMMSE_n); `reference` = precomputed WMMSE powers."""
    reference = baselines.wmmse(ch) if reference is None else reference
    return float(weighted_sum_rate(np.asarray(p, dtype=np.float64), ch).mean()
                 / weighted_sum_rate(reference, ch).mean())


def powers_float(model, ch: Channels, feature: str, batch: int = 256) -> np.ndarray:
    """Powers [N, K] from the torch model in eval mode."""
    import torch

    x = torch.from_numpy(pack(ch, feature))
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(x[i:i + batch]).double().numpy() for i in range(0, len(x), batch)])


def powers_int8(tflite: str | Path, ch: Channels, feature: str) -> np.ndarray:
    """Powers [N, K] from the int8 model on TFLM: quantize the packed input, run, dequantize, clip to [0, 1]."""
    from .. import ir, reference

    path = Path(tflite)
    if not path.is_file():
        raise TinylrError(f"{path}: no such model; run `tinylr rrm export` first")
    model = path.read_bytes()
    inp, out = reference.int8_io(ir.parse(model, source=str(path)), str(path))
    if inp.size != ch.k * (ch.k + 1) or out.size != ch.k:
        raise TinylrError(f"{path}: input {inp.shape} / output {out.shape} do not fit K={ch.k} users "
                          f"(expected [1, {ch.k}, {ch.k + 1}] -> [1, {ch.k}]); evaluate on the K it was exported for")
    q = reference.quantize(pack(ch, feature), inp.scale, inp.zero_point)
    y = reference.dequantize(reference.run(model, q), out.scale, out.zero_point)
    return np.clip(y.astype(np.float64), 0.0, 1.0)


def normalized_wsr_float(model, ch: Channels, feature: str) -> dict:
    """Float score of a torch model with the WMMSE / full / random baselines on the same channels."""
    ref = baselines.wmmse(ch)
    wmmse_wsr = float(weighted_sum_rate(ref, ch).mean())
    return {
        "n": ch.n,
        "k": ch.k,
        "wmmse_wsr": wmmse_wsr,
        "normalized_wsr": normalized_wsr(powers_float(model, ch, feature), ch, ref),
        "full_power": normalized_wsr(baselines.full_power(ch), ch, ref),
        "random_power": normalized_wsr(baselines.random_power(ch), ch, ref),
    }


def evaluate_run(run_dir: str | Path, *, n_test: int | None = None, int8: bool = True) -> dict:
    """Score a run folder (checkpoint.pt, and model_int8.tflite when exported); writes eval.json."""
    from ..train import load_checkpoint
    from . import data
    from .channels import Scenario

    _register_zoo()
    run = Path(run_dir)
    start = time.perf_counter()
    model, ckpt = load_checkpoint(run / "checkpoint.pt")
    if "rrm" not in ckpt:
        raise TinylrError(f"{run / 'checkpoint.pt'}: not an rrm checkpoint; train it with `tinylr rrm train`")
    scenario = Scenario(**ckpt["rrm"]["scenario"])
    ch = data.channels(scenario, "test", n_test or ckpt["rrm"]["options"]["n_test"])
    result = {"run": str(run), "model": ckpt["model"], "scenario": ckpt["rrm"]["scenario"],
              "float": normalized_wsr_float(model, ch, scenario.feature)}
    tflite = run / "model_int8.tflite"
    if int8:
        ref = baselines.wmmse(ch)
        p8 = powers_int8(tflite, ch, scenario.feature)
        pf = powers_float(model, ch, scenario.feature)
        result["int8"] = {"normalized_wsr": normalized_wsr(p8, ch, ref), "tflite_bytes": tflite.stat().st_size,
                          "max_abs_power_error": float(np.max(np.abs(p8 - pf))),
                          "mean_abs_power_error": float(np.mean(np.abs(p8 - pf)))}
    result["seconds"] = round(time.perf_counter() - start, 2)
    write_json(run / "eval.json", result)
    return result


def _register_zoo() -> None:
    """Checkpoints name the zoo entries `mpgnn`/`lr_mpgnn`; make sure they are registered."""
    from ..zoo import rrm  # noqa: F401
