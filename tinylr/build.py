"""Stage 5, build: generated model C + harness -> firmware ELF for a board.

Input: a generated source folder (with its `manifest.json`, written by the generate
stage) and the int8 test inputs to embed. Output: `firmware.elf`, its map file and
`build.json` with section sizes. The linker script comes from the board's folder.

Every source is compiled to its own object (`firmware/obj/{model,harness}/`), so the map
file names who owns each byte (the report splits flash and RAM by owner). When the
board's QEMU machine has no memory at the board's addresses, the same objects are linked
a second time at the emulator's placement into `firmware.emu.elf` (see
docs/adding-a-board.md); `firmware.elf` always has the board's real addresses.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from . import cnames, fsutil, templates, toolchain
from .errors import OverBudgetError, TinylrError
from .targets import Target

HARNESS = {
    "harness/startup.c.j2": "startup.c",
    "harness/semihost.c.j2": "semihost.c",
    "harness/semihost.h.j2": "semihost.h",
    "harness/main.c.j2": "main.c",
    "harness/test_vectors.c.j2": "test_vectors.c",
}

# Warnings are errors for our code; -ffp-contract=off keeps float math identical to the host.
COMMON_CFLAGS = (
    "-std=c99", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
    "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
)
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")

_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


NUMPY_CTYPES = {"int8_t": np.int8, "float": np.float32}


@dataclass(frozen=True)
class Manifest:
    """What the generate stage promises the build: names of the model's C entry points
    and the C types and sizes of its input and output."""

    model: str
    header: str
    invoke: str
    input_bytes: int
    output_bytes: int
    input_bytes_macro: str
    output_bytes_macro: str
    input_ctype: str = "int8_t"
    output_ctype: str = "int8_t"
    input_count: int = -1    # elements; -1: same as bytes (int8)
    output_count: int = -1
    input_count_macro: str = ""   # "": use the bytes macro (int8)
    output_count_macro: str = ""

    @classmethod
    def load(cls, src_dir: Path) -> Manifest:
        path = Path(src_dir) / "manifest.json"
        if not path.is_file():
            raise TinylrError(f"{src_dir} has no manifest.json; it is not a generated model folder (run `tinylr generate` first)")
        data = fsutil.read_json(path)
        try:
            m = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise TinylrError(f"{path} is incomplete ({exc}); regenerate the model with `tinylr generate`") from exc
        if m.input_ctype not in NUMPY_CTYPES or m.output_ctype not in NUMPY_CTYPES:
            raise TinylrError(f"{path}: input/output types {m.input_ctype}/{m.output_ctype}; tinylr handles int8_t and float")
        return m

    def numpy_dtype(self, role: str):
        return NUMPY_CTYPES[getattr(self, f"{role}_ctype")]

    def count(self, role: str) -> int:
        n = getattr(self, f"{role}_count")
        return n if n >= 0 else getattr(self, f"{role}_bytes")

    def count_macro(self, role: str) -> str:
        return getattr(self, f"{role}_count_macro") or getattr(self, f"{role}_bytes_macro")


@dataclass(frozen=True)
class BuildResult:
    elf: Path
    sections: dict[str, int]
    flash_bytes: int      # everything stored in flash: vectors, text, rodata, .data image
    static_ram_bytes: int  # .data + .bss
    emu_elf: Path | None = None  # the same objects linked at the emulator's placement
    map_file: Path | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("elf", "emu_elf", "map_file"):
            d[key] = None if d[key] is None else str(d[key])
        return d


def emulator_elf_path(elf: Path) -> Path:
    """firmware.elf -> firmware.emu.elf, where a placed board's emulator copy lives."""
    elf = Path(elf)
    return elf.with_name(elf.name.removesuffix(".elf") + ".emu.elf")


def hexs(value: int) -> str:
    return f"0x{value:08X}"


def render_linker_script(target: Target, emulated: bool = False) -> str:
    """The board's linker script for its application regions, or (emulated) for the
    same regions at the emulator's placement."""
    flash, ram = (target.emulated_app_flash, target.emulated_app_ram) if emulated else (target.app_flash, target.app_ram)
    reservations = ", ".join(
        f"{r.name} {r.flash_bytes} B flash / {r.ram_bytes} B RAM" for r in target.reservations
    ) or "no reservations"
    if emulated:
        reservations += (f"; placed for QEMU {target.qemu_machine}: flash moved by {target.flash_shift:+#x}, "
                         f"RAM by {target.ram_shift:+#x}")
    return templates.render(
        target.linker_template,
        board=target.name,
        flash_origin=hexs(flash.origin), flash_size=hexs(flash.size),
        ram_origin=hexs(ram.origin), ram_size=hexs(ram.size),
        stack_bytes=target.stack_bytes, reservations_comment=reservations,
    )


def render_harness(target: Target, manifest: Manifest, vectors: np.ndarray, out_dir: Path) -> None:
    vectors = np.asarray(vectors)
    dtype, count = manifest.numpy_dtype("input"), manifest.count("input")
    if vectors.dtype != dtype or vectors.ndim != 2 or vectors.shape[1] != count:
        raise TinylrError(
            f"test inputs must be {np.dtype(dtype)} of shape (N, {count}); got {vectors.dtype} {vectors.shape}"
        )
    if len(vectors) == 0:
        raise TinylrError("no test inputs to embed in the firmware; give at least one")
    context = dict(
        target=target.name, core=target.core, fpu=target.fpu is not None, armv6m=target.arch == "armv6-m",
        **harness_context(manifest), num_vectors=len(vectors),
        rows=[", ".join(cnames.float_literal(v) if dtype == np.float32 else str(int(v)) for v in row) for row in vectors],
    )
    for template, name in HARNESS.items():
        (out_dir / name).write_text(templates.render(template, **context))


def harness_context(manifest: Manifest) -> dict:
    """What the harness templates (firmware and host) need to call the model."""
    return dict(
        model=manifest.model, model_header=manifest.header, invoke_fn=manifest.invoke,
        input_ctype=manifest.input_ctype, output_ctype=manifest.output_ctype,
        input_count_macro=manifest.count_macro("input"), output_count_macro=manifest.count_macro("output"),
        input_count=manifest.count("input"),
    )


def section_sizes(elf_path: Path) -> dict[str, int]:
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        return {
            s.name: s["sh_size"]
            for s in elf.iter_sections()
            if s["sh_flags"] & 0x2  # SHF_ALLOC: occupies target memory
        }


def sizes_from_sections(sections: dict[str, int]) -> tuple[int, int]:
    ram_only = {".bss", ".noinit", ".heap", ".stack"}
    flash = sum(size for name, size in sections.items() if name not in ram_only)
    ram = sections.get(".data", 0) + sum(sections.get(n, 0) for n in ram_only)
    return flash, ram


def compile_objects(gcc: str, target: Target, groups: list[tuple[str, Path]], includes: list[Path],
                    obj_dir: Path, log: list[str]) -> list[Path]:
    """Compile every .c of each (owner, folder) group into obj_dir/<owner>/, in parallel."""
    jobs = []
    for owner, folder in groups:
        (obj_dir / owner).mkdir(parents=True, exist_ok=True)
        for source in sorted(Path(folder).glob("*.c")):
            obj = obj_dir / owner / (source.stem + ".o")
            cmd = [gcc, *COMMON_CFLAGS, *target.cflags, *(f"-I{i}" for i in includes), "-c", str(source), "-o", str(obj)]
            log.append(" ".join(cmd))
            jobs.append((obj, cmd))
    objects, errors = [], []
    width = max(1, os.cpu_count() or 1)
    for start in range(0, len(jobs), width):
        running = [(obj, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                   for obj, cmd in jobs[start:start + width]]
        for obj, proc in running:
            _, err = proc.communicate()
            if proc.returncode != 0:
                errors.append(err)
            objects.append(obj)
    if errors:
        raise_build_error(target, "\n".join(errors))
    return objects


def link(gcc: str, target: Target, objects: list[Path], script: Path, map_file: Path, elf: Path, log: list[str]) -> None:
    cmd = [gcc, *COMMON_CFLAGS, *target.cflags, *map(str, objects), "-T", str(script), *LINK_FLAGS,
           f"-Wl,-Map={map_file}", "-o", str(elf), "-lc", "-lgcc"]
    log.append(" ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise_build_error(target, proc.stderr)


def build_firmware(target: Target, src_dir: Path, vectors: np.ndarray, out_dir: Path) -> BuildResult:
    """Cross-compile the model in `src_dir` with the harness for `target` into `out_dir`."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    manifest = Manifest.load(src_dir)
    gcc = toolchain.require("arm-none-eabi-gcc")
    elf_path = out_dir / "firmware.elf"
    emu_path = emulator_elf_path(elf_path)
    fsutil.remove_stale(elf_path, emu_path, out_dir / "build.json")
    out_dir.mkdir(parents=True, exist_ok=True)

    with fsutil.atomic_path(out_dir / "firmware") as work:
        work.mkdir()
        harness_dir = work / "harness"
        harness_dir.mkdir()
        render_harness(target, manifest, vectors, harness_dir)
        (work / "linker.ld").write_text(render_linker_script(target))
        log: list[str] = []
        try:
            objects = compile_objects(gcc, target, [("model", src_dir), ("harness", harness_dir)],
                                      [src_dir, harness_dir], work / "obj", log)
            link(gcc, target, objects, work / "linker.ld", work / "firmware.map", work / "firmware.elf", log)
            if target.is_placed:
                (work / "linker.emu.ld").write_text(render_linker_script(target, emulated=True))
                link(gcc, target, objects, work / "linker.emu.ld", work / "firmware.emu.map", work / "firmware.emu.elf", log)
        finally:
            (work / "build_command.txt").write_text("\n".join(log) + "\n")
    # the folder holds the harness sources, objects, linker scripts, maps and ELFs of the last good build
    (out_dir / "firmware" / "firmware.elf").replace(elf_path)
    if target.is_placed:
        (out_dir / "firmware" / "firmware.emu.elf").replace(emu_path)
    sections = section_sizes(elf_path)
    flash, ram = sizes_from_sections(sections)
    result = BuildResult(elf=elf_path, sections=sections, flash_bytes=flash, static_ram_bytes=ram,
                         emu_elf=emu_path if target.is_placed else None, map_file=out_dir / "firmware" / "firmware.map")
    ops = fsutil.read_json(src_dir / "manifest.json").get("ops", [])
    fsutil.write_json(out_dir / "build.json", {"target": target.name, "model": manifest.model, "invoke": manifest.invoke,
                                               "ops": ops, **result.to_json()})
    return result


def raise_build_error(target: Target, stderr: str) -> None:
    overflows = _OVERFLOW.findall(stderr)
    if overflows:
        what = "; ".join(f"{region} over by {n} bytes" for region, n in overflows)
        raise OverBudgetError(
            f"does not fit {target.name}: {what} (application flash {target.app_flash.size} B, RAM "
            f"{target.app_ram.size} B after reservations {[r.name for r in target.reservations]}); "
            "shrink the model (lower rank) or the reservations (--reserve)"
        )
    if "tinylr: RAM overflow" in stderr:
        raise OverBudgetError(
            f"does not fit {target.name}: .data + .bss leave less than the {target.stack_bytes} B minimum stack "
            f"in {target.app_ram.size} B of application RAM; shrink the model or the reservations (--reserve)"
        )
    first = next((line for line in stderr.splitlines() if "error" in line), stderr.strip()[:500])
    raise TinylrError(f"cross compile for {target.name} failed: {first}")


_MAP_OUTPUT = re.compile(r"^(\.[^\s]+|/DISCARD/)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+))?")
_MAP_INPUT = re.compile(r"^ (\S+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+(.*))?)?$")
_MAP_CONTINUED = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.+)$")


def parse_map(map_file: Path) -> dict[str, list[tuple[str, int, str]]]:
    """GNU ld map file -> {output section: [(input section, size, file), ...]}.

    `file` is the object (e.g. .../obj/model/fully_connected.o), the archive member
    (.../libc_nano.a(lib_a-memcpy.o)), "*fill*" for padding or "linker stubs".
    """
    sections: dict[str, list[tuple[str, int, str]]] = {}
    current, pending = None, None
    started = False
    for line in Path(map_file).read_text(errors="replace").splitlines():
        if not started:
            started = line.startswith("Linker script and memory map")
            continue
        if not line.strip():
            continue
        if not line.startswith(" "):
            m = _MAP_OUTPUT.match(line)
            current = m.group(1) if m else None
            if current is not None:
                sections.setdefault(current, [])
            pending = None
            continue
        if current is None:
            continue
        if pending is not None:
            m = _MAP_CONTINUED.match(line)
            if m:
                sections[current].append((pending, int(m.group(2), 16), m.group(3).strip()))
            pending = None
            continue
        m = _MAP_INPUT.match(line)
        if not m or m.group(1).startswith("*(") or m.group(1) == "*(COMMON)":
            continue
        name, size = m.group(1), m.group(3)
        if name == "*fill*" and size is not None:
            sections[current].append(("*fill*", int(size, 16), "*fill*"))
        elif size is None:
            pending = name  # the address, size and file follow on the next line
        elif m.group(4):
            sections[current].append((name, int(size, 16), m.group(4).strip()))
    return sections
