"""Stage 4, generate: int8 .tflite -> IR -> plain C99 sources for one model.

Writes a folder with `<model>.h/.c` (the `tinylr_<model>_invoke` wrapper, constant
per-op parameters, the statically planned arena), `<model>_data.h/.c` (weights, biases,
requantization multipliers and shifts as const arrays: flash, not RAM), one kernel
file per op used, and `manifest.json` for the build stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import cnames, fsutil, ir, ops, planner, templates
from .errors import TinylrError

REFERENCE_VARIANT = "reference"


def variants() -> list[str]:
    return sorted(p.name for p in (templates.TEMPLATES_DIR / "kernels").iterdir() if p.is_dir())


def kernel_template(variant: str, name: str) -> str:
    """A variant's file for `name` when it has one, else the portable reference's:
    a variant only carries the kernels it makes faster (as tflite-micro's cmsis_nn/)."""
    if (templates.TEMPLATES_DIR / "kernels" / variant / f"{name}.j2").is_file():
        return f"kernels/{variant}/{name}.j2"
    return f"kernels/{REFERENCE_VARIANT}/{name}.j2"
COMMON_KERNEL_FILES = ("requantize.h",)
CTYPES = {"INT8": "int8_t", "UINT8": "uint8_t", "INT16": "int16_t", "INT32": "int32_t", "FLOAT32": "float"}


@dataclass(frozen=True)
class ArrayNames:
    prefix: str

    def array(self, op: ir.Operator, role: str) -> str:
        return f"{self.prefix}_op{op.index}_{role}"


def reserved_names() -> set[str]:
    """File stems the generated folder or the harness already use: a model may not take them."""
    stems = {p.name.split(".")[0] for p in (templates.TEMPLATES_DIR / "kernels").rglob("*.j2")}
    stems |= {p.name.split(".")[0] for p in (templates.TEMPLATES_DIR / "harness").glob("*.j2")}
    return stems | {"manifest"}


def check_name(model: str) -> None:
    clashes = {model, f"{model}_data"} & reserved_names()
    if clashes:
        raise TinylrError(
            f"model name {model!r} would collide with the generated file {sorted(clashes)[0]}.h; "
            "choose another name (--name)"
        )


def check_io(graph: ir.Graph) -> None:
    """One input, one output; each int8 (quantized) or float32 (a float boundary, with
    QUANTIZE/DEQUANTIZE inside); and an int8 graph in between."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinylrError(
            f"model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "tinylr generates models with one input and one output"
        )
    for role, index in (("input", graph.inputs[0]), ("output", graph.outputs[0])):
        t = graph.tensors[index]
        if not (t.dtype == "FLOAT32" or (t.dtype == "INT8" and t.quantization is not None)):
            raise TinylrError(
                f"model {role} {t.name!r} is {t.dtype}, not quantized INT8 (or a FLOAT32 boundary); export with "
                "full-integer quantization, e.g. `tinylr export`"
            )
    if all(graph.tensors[i].dtype == "FLOAT32" for i in (*graph.inputs, *graph.outputs)) and not any(
        op.opcode in ("QUANTIZE", "DEQUANTIZE") for op in graph.operators
    ):
        raise TinylrError(
            "model is FLOAT32 end to end, not quantized INT8; export with full-integer quantization, e.g. `tinylr export`"
        )


def _io(t: ir.Tensor) -> dict:
    """How a boundary tensor appears in the C API and the manifest."""
    quantized = t.dtype == "INT8"
    return dict(
        ctype=CTYPES[t.dtype], count=t.size, bytes=t.nbytes, dtype=t.dtype.lower(),
        shape=", ".join(map(str, t.shape)),
        scale=cnames.float_literal(t.scale) if quantized else None,
        zero_point=t.zero_point if quantized else None,
    )


def lower(graph: ir.Graph, prefix: str) -> tuple[list[tuple[ir.Operator, ops.KernelCall]], planner.Plan]:
    check_io(graph)
    ops.check_supported(graph)
    names = ArrayNames(prefix)
    alias_ops = {op.index for op in graph.operators if getattr(ops.REGISTRY[op.opcode], "ALIAS", False)}
    calls = [
        (op, ops.REGISTRY[op.opcode].lower(op, graph, names))
        for op in graph.operators
        if op.index not in alias_ops
    ]
    inplace_ops = {op.index: ops.inplace_positions(ops.REGISTRY[op.opcode]) for op in graph.operators}
    return calls, planner.plan(graph, alias_ops, inplace_ops)


def constant_inputs(graph: ir.Graph, calls, prefix: str) -> dict[int, ops.ConstArray]:
    """Const arrays for constant tensors that kernels take as run-time arguments."""
    arrays = {}
    for _, call in calls:
        for i in call.inputs:
            t = graph.tensors[i]
            if t.is_constant and i not in arrays:
                if t.dtype not in CTYPES:
                    raise TinylrError(f"constant tensor {t.name!r} has type {t.dtype}, which tinylr cannot place in flash")
                values = t.data.ravel().tolist()
                arrays[i] = ops.ConstArray(f"{prefix}_t{i}", CTYPES[t.dtype], tuple(values), f"{t.name} {list(t.shape)}")
    return arrays


def _pointer(graph: ir.Graph, plan: planner.Plan, consts: dict[int, ops.ConstArray], index: int) -> str:
    if index in consts:
        return consts[index].name
    place = plan.placements[index]
    if place.kind != "arena":
        return place.kind  # the invoke function's `input` / `output` parameter
    ctype = CTYPES[graph.tensors[index].dtype]
    if ctype == "int8_t":
        return f"&arena.bytes[{place.offset}]"
    return f"({ctype} *)(void *)&arena.bytes[{place.offset}]"  # offsets are 4-byte aligned


def _arguments(graph: ir.Graph, plan: planner.Plan, consts, call: ops.KernelCall) -> list[str]:
    inputs = [_pointer(graph, plan, consts, i) for i in call.inputs]
    if call.inputs_as_array:  # a C99 compound literal: no named temporaries in invoke
        ctype = CTYPES[graph.tensors[call.inputs[0]].dtype]
        inputs = [f"(const {ctype} *const[]){{{', '.join(inputs)}}}"]
    return inputs + [_pointer(graph, plan, consts, i) for i in call.outputs]


def _rows(array: ops.ConstArray) -> list[str]:
    if array.ctype == "float":
        texts = [cnames.float_literal(v) for v in array.values]
        return [", ".join(texts[i: i + 8]) for i in range(0, len(texts), 8)]
    return cnames.rows(array.values)


def _describe(graph: ir.Graph, op: ir.Operator) -> str:
    outs = ", ".join(graph.tensors[i].name for i in op.outputs)
    act = op.options.get("fused_activation_function")
    suffix = f" + {act}" if act and act != "NONE" else ""
    return cnames.comment(f"op {op.index}: {op.opcode}{suffix} -> {outs}")


def generate(tflite_path: str | Path, out_dir: str | Path, model_name: str, variant: str = REFERENCE_VARIANT) -> dict:
    """Generate C for the model into `out_dir`: replaced whole on success, removed on
    failure (an older model's sources must not pass for this one's)."""
    fsutil.remove_stale(out_dir)
    if variant not in variants():
        raise TinylrError(f"unknown kernel variant {variant!r}; known: {', '.join(variants())}")
    graph = ir.load(tflite_path)
    model = cnames.identifier(model_name)
    check_name(model)
    prefix = f"tinylr_{model}"
    upper = prefix.upper()
    calls, plan = lower(graph, prefix)
    x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]

    consts = constant_inputs(graph, calls, prefix)
    arrays = [a for _, call in calls for a in call.arrays] + list(consts.values())
    kernels = sorted({call.kernel for _, call in calls})
    invocations = [
        dict(
            comment=_describe(graph, op),
            params_name=f"op{op.index}_params",
            params_type=call.params_type,
            params=[dict(field=f, value=v) for f, v in call.params],
            function=call.function,
            args=_arguments(graph, plan, consts, call),
        )
        for op, call in calls
    ]
    context = dict(
        model=model, prefix=prefix, upper=upper, source=cnames.comment(Path(tflite_path).name),
        kernels=kernels, invocations=invocations, arena_bytes=plan.arena_bytes,
        input=_io(x), output=_io(y),
        arrays=[dict(name=a.name, ctype=a.ctype, length=len(a.values), rows=_rows(a),
                     comment=cnames.comment(a.comment)) for a in arrays],
    )
    files = {
        f"{model}.h": "model/model.h.j2",
        f"{model}.c": "model/model.c.j2",
        f"{model}_data.h": "model/data.h.j2",
        f"{model}_data.c": "model/data.c.j2",
    }
    support = set(COMMON_KERNEL_FILES)
    for op, _ in calls:  # headers shared by several kernels, named by the op modules that need them
        support.update(getattr(ops.REGISTRY[op.opcode], "SUPPORT_FILES", ()))
    for name in sorted(support):
        files[name] = kernel_template(variant, name)
    for kernel in kernels:
        for ext in ("h", "c"):
            files[f"{kernel}.{ext}"] = kernel_template(variant, f"{kernel}.{ext}")

    manifest = dict(
        model=model, header=f"{model}.h", invoke=f"{prefix}_invoke",
        input_bytes=x.nbytes, output_bytes=y.nbytes,
        input_bytes_macro=f"{upper}_INPUT_BYTES", output_bytes_macro=f"{upper}_OUTPUT_BYTES",
        input_ctype=CTYPES[x.dtype], output_ctype=CTYPES[y.dtype],
        input_count=x.size, output_count=y.size,
        input_count_macro=f"{upper}_INPUT_COUNT", output_count_macro=f"{upper}_OUTPUT_COUNT",
        arena_bytes=plan.arena_bytes, kernel_variant=variant,
        kernel_files={name: template.split("/")[1] for name, template in files.items() if template.startswith("kernels/")}, ops=graph.opcodes,
        input_scale=x.scale if x.dtype == "INT8" else None, input_zero_point=x.zero_point if x.dtype == "INT8" else None,
        output_scale=y.scale if y.dtype == "INT8" else None, output_zero_point=y.zero_point if y.dtype == "INT8" else None,
        const_bytes=sum(a.nbytes for a in arrays),
    )
    with fsutil.atomic_path(out_dir) as staging:
        staging.mkdir()
        for name, template in files.items():
            (staging / name).write_text(templates.render(template, **context))
        fsutil.write_json(staging / "manifest.json", manifest)
    return manifest
