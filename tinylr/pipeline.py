"""The stages after verify, each taking the previous stage's files, and `deploy`,
which runs every stage for one model and one board into build/<target>/<model>/.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import build, codegen, fsutil, hostcheck, report
from .errors import TinylrError
from .targets import Target

EMULATED_VECTORS = 16  # test inputs embedded in the firmware and checked in the emulator


def load_reference(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise TinylrError(f"{path}: no such reference file; run `tinylr verify` to write reference.npz")
    with np.load(path) as data:
        missing = {"inputs", "outputs"} - set(data.files)
        if missing:
            raise TinylrError(f"{path} lacks {sorted(missing)}; it is not a reference file written by `tinylr verify`")
        return {k: data[k] for k in data.files}


def generate_stage(tflite: Path, out_dir: Path, name: str, reference: Path | None, variant: str = "reference") -> dict:
    """Generate C into out_dir/src and, given reference.npz, check it bit-exactly on the host."""
    out_dir = Path(out_dir)
    check_path = out_dir / "host_check.json"
    fsutil.remove_stale(check_path)
    manifest = codegen.generate(tflite, out_dir / "src", name, variant)
    if reference is None:
        return {"manifest": manifest}
    ref = load_reference(reference)
    actual = hostcheck.run_host(out_dir / "src", ref["inputs"])
    check = hostcheck.compare(ref["outputs"], actual)
    fsutil.write_json(check_path, check)
    if not check["bit_exact"]:
        raise TinylrError(
            f"generated C differs from TFLite Micro on {check['mismatched_samples']} of {check['samples']} samples "
            f"(first: sample {check['first_mismatch']}, max |diff| {check['max_abs_diff']}); this is a tinylr bug, please report it"
        )
    return {"manifest": manifest, "host_check": check}


def build_stage(target: Target, src_dir: Path, reference: Path, out_dir: Path, count: int = EMULATED_VECTORS) -> dict:
    ref = load_reference(reference)
    vectors = ref["inputs"][:count].reshape(min(count, len(ref["inputs"])), -1)
    return build.build_firmware(target, src_dir, vectors, out_dir).to_json()


def emulate_stage(target: Target, elf: Path, reference: Path, out_dir: Path, emulator: str = "qemu") -> dict:
    """Run the firmware in the emulator, check its outputs against the reference, and
    write emulate.json with the per-layer profile (profile.md, profile.png)."""
    from .emulate import emulate, profile  # imported here: only this stage needs QEMU

    out_dir = Path(out_dir)
    out_path = out_dir / "emulate.json"
    fsutil.remove_stale(out_path, out_dir / "profile.md", out_dir / "profile.png")
    build_info = Path(elf).parent / "build.json"
    ops = fsutil.read_json(build_info).get("ops") if build_info.is_file() else None
    if emulator == "renode":
        from .emulate import renode
        result = renode.emulate(Path(elf), target, work_dir=out_dir / "renode")
    elif emulator == "qemu":
        result = emulate(Path(elf), target, ops=ops)
    else:
        raise TinylrError(f"unknown emulator {emulator!r}; use qemu or renode")
    ref = load_reference(reference)
    n = len(result.outputs)
    if n == 0 or n > len(ref["outputs"]):
        raise TinylrError(f"the firmware printed {n} outputs; the reference has {len(ref['outputs'])}")
    expected = ref["outputs"][:n].reshape(n, -1)
    actual = np.frombuffer(b"".join(result.outputs), dtype=expected.dtype).reshape(n, -1)
    check = hostcheck.compare(expected, actual)
    summary = {**result.to_json(), **check, "target": target.name, "emulator": emulator}
    if not check["bit_exact"]:
        fsutil.write_json(out_path, summary)
        raise TinylrError(
            f"emulated firmware differs from TFLite Micro on {check['mismatched_samples']} of {n} samples; "
            "this is a tinylr bug, please report it"
        )
    if result.profile and result.profile.get("layers"):
        title = f"{fsutil.read_json(build_info).get('model', 'model') if build_info.is_file() else 'model'} on {target.name}"
        fsutil.write_text(out_dir / "profile.md", f"# Per-layer profile: {title}\n\n{profile.markdown_table(result.profile)}\n")
        profile.render_png(result.profile, out_dir / "profile.png", f"{title}: one inference, per layer")
    fsutil.write_json(out_path, summary)
    return summary


def emulated_outputs(summary: dict, dtype) -> np.ndarray:
    """The firmware's outputs from an emulate.json summary, one row per test input."""
    return np.stack([np.frombuffer(bytes.fromhex(h), dtype=dtype) for h in summary["outputs"]])


def task_stage(folder: Path, model: str) -> dict:
    """The model's own measure of quality (accuracy, normalized WSR, ...) for the float
    model, the int8 model on TFLM, and the emulated firmware, side by side: task.json."""
    from . import tasks, zoo

    folder = Path(folder)
    fsutil.remove_stale(folder / "task.json")
    task = tasks.get(zoo.get(model).task)
    ref = load_reference(folder / "reference.npz")
    emulated = fsutil.read_json(folder / "emulate.json")
    mcu = emulated_outputs(emulated, ref["outputs"].dtype)
    n = len(mcu)
    summary = {
        "task": task.name, "metric": task.metric,
        "float": task.float_score(folder),
        "int8": task.score(folder, ref["outputs"]),
        "emulated_samples": {
            "n": n,
            "float": task.float_score(folder, n),
            "int8": task.score(folder, ref["outputs"][:n]),
            "mcu": task.score(folder, mcu),
        },
    }
    fsutil.write_json(folder / "task.json", summary)
    return summary


def train_stage(folder: Path, model: str, *, seed: int = 0, quick: bool = False, log=print, **model_kwargs) -> dict:
    """Train with the model's task, or reuse an earlier run that asked for exactly this."""
    from . import tasks, zoo

    task = tasks.get(zoo.get(model).task)
    request = tasks.train_request(model, seed, quick, model_kwargs)
    if tasks.reusable(folder, request):
        log("[   train] reusing the earlier run with the same model, settings and seed (train.json)")
        return fsutil.read_json(folder / "train.json")
    fsutil.remove_stale(folder / "deploy_train_request.json")
    summary = task.train(model, folder, seed=seed, quick=quick, **model_kwargs)
    fsutil.write_json(folder / "deploy_train_request.json", request)
    return summary


def deploy(target: Target, model: str = "lr_mpgnn", out_root: Path = Path("build"), log=print,
           seed: int = 0, quick: bool = False, **model_kwargs) -> dict:
    """Every stage, train to report, for one zoo model on one board."""
    from . import export, verify  # heavy imports (torch, tensorflow) only when deploying

    folder = Path(out_root) / target.name / model
    folder.mkdir(parents=True, exist_ok=True)
    fsutil.remove_stale(folder / "report.json", folder / "report.md")
    steps = [
        ("train", lambda: train_stage(folder, model, seed=seed, quick=quick, log=log, **model_kwargs)),
        ("export", lambda: export.export(folder / "checkpoint.pt", folder, data=folder / "dataset.npz")),
        ("verify", lambda: verify.verify(folder / "model_int8.tflite", folder, data=folder / "dataset.npz",
                                         float_tflite=folder / "model_float.tflite")),
        ("generate", lambda: generate_stage(folder / "model_int8.tflite", folder, model, folder / "reference.npz",
                                            target.kernel_variant)),
        ("build", lambda: build_stage(target, folder / "src", folder / "reference.npz", folder)),
        ("emulate", lambda: emulate_stage(target, folder / "firmware.elf", folder / "reference.npz", folder)),
        ("task", lambda: task_stage(folder, model)),
        ("report", lambda: report.make_report(folder, target)),
    ]
    result = None
    for name, step in steps:
        start = time.monotonic()
        result = step()
        log(f"[{name:>8}] done in {time.monotonic() - start:5.1f} s")
    return result
