"""`tinylr analyze`: read a checkpoint, write analysis.json and one PNG per layer."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TinylrError
from ..fsutil import remove_stale, write_json
from .analysis import TOLERANCE, analyze_state_dict, file_stem

_FIX = "give a checkpoint.pt from `tinylr train` or a file saved with torch.save(model.state_dict())"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in a tinylr checkpoint, a {'state_dict': ...} file, or a bare state_dict."""
    path = Path(path)
    if not path.is_file():
        raise TinylrError(f"{path}: no such file; {_FIX}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a zip/pickle, or pickled code that weights_only refuses
        raise TinylrError(f"{path}: not a readable torch weights file ({type(exc).__name__}); {_FIX}") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise TinylrError(f"{path}: holds no state_dict (a mapping of names to tensors); {_FIX}")
    return obj


def analyze_file(model: str | Path, out_dir: str | Path, *, compare: str | Path | None = None,
                 tolerance: float = TOLERANCE, plots: bool = True) -> dict:
    """Analyze `model` (and, side by side, `compare`); write out_dir/analysis.json and out_dir/<layer>.png."""
    from .plots import plot_layer

    out = Path(out_dir)
    summary_path = out / "analysis.json"
    remove_stale(summary_path)
    if not 0 < tolerance < 1:
        raise TinylrError(f"tolerance must be in (0, 1), got {tolerance}")
    layers = analyze_state_dict(load_state_dict(model), tolerance)
    if not layers:
        raise TinylrError(f"{model}: no Linear/Conv2d-shaped weights (2-D or 4-D '*.weight' tensors) to analyze")
    others = {e["name"]: e for e in analyze_state_dict(load_state_dict(compare), tolerance)} if compare else {}
    images = {}
    if plots:
        for entry in layers:
            target = out / f"{file_stem(entry['name'])}.png"
            remove_stale(target)
            plot_layer(entry, target, others.get(entry["name"]), labels=_labels(model, compare))
            images[entry["name"]] = target.name
    summary = {
        "model": str(model), "compare": None if compare is None else str(compare), "tolerance": tolerance,
        "layers": [{**e, "plot": images.get(e["name"]),
                    "compare": {k: others[e["name"]][k] for k in ("form", "metrics")} if e["name"] in others else None}
                   for e in layers],
    }
    write_json(summary_path, summary)
    return summary


def _labels(model, compare) -> tuple[str, str]:
    """Short names for the legend: the file stems, with their folder when the stems are alike."""
    a, b = Path(model), Path(compare or "compare")
    if a.stem == b.stem:
        return f"{a.parent.name}/{a.stem}", f"{b.parent.name}/{b.stem}"
    return a.stem, b.stem
