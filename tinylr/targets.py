"""Boards as data: `targets/<board>/board.toml`, validated by `targets/schema.json`.

Adding a board touches only its folder; nothing in Python names a board.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import jsonschema

from .errors import TinylrError

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"


# Placing an image elsewhere on the emulator keeps every alignment up to this size, so
# the code executes the same instructions (memcpy/memset paths depend on alignment).
PLACEMENT_ALIGN = 0x1_0000


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size

    def shifted(self, delta: int) -> Region:
        return Region(self.origin + delta, self.size)

    def contains(self, other: Region) -> bool:
        return self.origin <= other.origin and other.end <= self.end


@dataclass(frozen=True)
class Reservation:
    name: str
    flash_bytes: int
    ram_bytes: int
    note: str = ""
    position: str = "start"  # taken from the "start" or the "end" of each memory


@dataclass(frozen=True)
class FlashTiming:
    """How slow flash reads are (targets/schema.json, timing.flash): a read whose line no
    cache or buffer holds costs `wait_states` extra cycles."""

    wait_states: int
    line_bytes: int
    icache_bytes: int
    dcache_bytes: int
    unified: bool
    source: str


@dataclass(frozen=True)
class QemuPlacement:
    """Where the board's memories sit on the QEMU machine (equal to the board's own
    addresses unless the machine has no memory there); see docs/adding-a-board.md."""

    flash_at: int
    ram_at: int
    reset_vector_at: int
    memory: tuple[Region, ...]
    note: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    directory: Path
    core: str
    arch: str
    fpu: str | None
    dsp: bool
    clock_hz: int
    cflags: tuple[str, ...]
    flash: Region
    ram: Region
    reservations: tuple[Reservation, ...]
    stack_bytes: int
    cycles_per_instruction: float
    timing_source: str
    qemu_machine: str
    qemu_cpu: str
    qemu_extra_args: tuple[str, ...] = field(default=())
    core_table: str = ""
    flash_timing: FlashTiming | None = None
    placement: QemuPlacement | None = None
    renode_platform: str | None = None
    kernel_variant: str = "reference"

    @property
    def reserved_flash(self) -> int:
        return sum(r.flash_bytes for r in self.reservations)

    @property
    def reserved_ram(self) -> int:
        return sum(r.ram_bytes for r in self.reservations)

    def _reserved_at_start(self, kind: str) -> int:
        return sum(getattr(r, f"{kind}_bytes") for r in self.reservations if r.position == "start")

    @property
    def app_flash(self) -> Region:
        """Flash left to the application, between the reservations at its start and end."""
        return Region(self.flash.origin + self._reserved_at_start("flash"), self.flash.size - self.reserved_flash)

    @property
    def app_ram(self) -> Region:
        return Region(self.ram.origin + self._reserved_at_start("ram"), self.ram.size - self.reserved_ram)

    @property
    def flash_shift(self) -> int:
        """How far the emulator's image sits from the board's flash addresses (0: same)."""
        return self.placement.flash_at - self.flash.origin if self.placement else 0

    @property
    def ram_shift(self) -> int:
        return self.placement.ram_at - self.ram.origin if self.placement else 0

    @property
    def is_placed(self) -> bool:
        """True when QEMU runs a copy linked at other addresses than the board's."""
        return self.flash_shift != 0 or self.ram_shift != 0

    @property
    def emulated_app_flash(self) -> Region:
        return self.app_flash.shifted(self.flash_shift)

    @property
    def emulated_app_ram(self) -> Region:
        return self.app_ram.shifted(self.ram_shift)

    @property
    def reset_vector_at(self) -> int:
        return self.placement.reset_vector_at if self.placement else 0

    @property
    def linker_template(self) -> Path:
        return self.directory / "linker.ld.j2"

    def with_reservations(self, overrides: dict[str, tuple[int, int]]) -> Target:
        """Replace or add reservations, e.g. {"radio_stack": (156 * 1024, 23 * 1024)}."""
        by_name = {r.name: r for r in self.reservations}
        for name, (flash_bytes, ram_bytes) in overrides.items():
            old = by_name.get(name)
            note = old.note if old else "set on the command line"
            by_name[name] = Reservation(name, flash_bytes, ram_bytes, note, old.position if old else "start")
        target = replace(self, reservations=tuple(by_name.values()))
        target.check_reservations()
        return target

    def check_reservations(self) -> None:
        if self.reserved_flash >= self.flash.size or self.reserved_ram >= self.ram.size:
            raise TinylrError(
                f"target {self.name}: reservations take {self.reserved_flash} B of "
                f"{self.flash.size} B flash and {self.reserved_ram} B of {self.ram.size} B RAM, "
                "leaving nothing for the application; lower them (--reserve NAME=FLASH,RAM)"
            )

    def check_placement(self, path: Path | str = "board.toml") -> None:
        """The emulator's copy must keep alignments and fit the QEMU machine's memory."""
        if self.placement is None:
            return
        for what, shift in (("flash_at", self.flash_shift), ("ram_at", self.ram_shift)):
            if shift % PLACEMENT_ALIGN:
                raise TinylrError(
                    f"{path}: emulator.qemu.{what} moves the image by 0x{shift % (1 << 32):X}, not a multiple of "
                    f"0x{PLACEMENT_ALIGN:X}; alignments (and so the instructions executed) would change; pick an address that is"
                )
        for what, region in (("flash", self.flash.shifted(self.flash_shift)), ("RAM", self.ram.shifted(self.ram_shift))):
            if not any(m.contains(region) for m in self.placement.memory):
                raise TinylrError(
                    f"{path}: the board's {what} placed at 0x{region.origin:08X}-0x{region.end - 1:08X} is not inside the "
                    f"memory of QEMU's {self.qemu_machine} (emulator.qemu.memory); set emulator.qemu.flash_at/ram_at "
                    "to where that machine has RAM (`info mtree` in its monitor lists it)"
                )
        image = self.emulated_app_flash
        if image.origin < self.reset_vector_at + 8 <= image.end or (
                image.origin <= self.reset_vector_at < image.end and self.reset_vector_at != image.origin):
            raise TinylrError(
                f"{path}: the core reads its reset vector at 0x{self.reset_vector_at:08X}, inside the application image "
                f"at 0x{image.origin:08X}; the image must start exactly there or leave those 8 bytes to a reservation"
            )


def known_targets(root: Path = TARGETS_DIR) -> list[str]:
    return sorted(p.parent.name for p in Path(root).glob("*/board.toml"))


@cache
def _schema(root: Path) -> dict:
    return json.loads((root / "schema.json").read_text())


def load_target(name: str, root: Path = TARGETS_DIR) -> Target:
    path = Path(root) / name / "board.toml"
    if not re.fullmatch(r"[a-z0-9_]+", name or "") or not path.is_file():
        raise TinylrError(
            f"unknown target {name!r}; known targets: {', '.join(known_targets(root)) or 'none'} "
            "(add a board as targets/<name>/board.toml, see docs/adding-a-board.md)"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TinylrError(f"{path}: not valid TOML: {exc}") from exc
    try:
        jsonschema.validate(data, _schema(Path(root)))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise TinylrError(f"{path}: {where}: {exc.message} (see targets/schema.json)") from exc
    if data["name"] != name:
        raise TinylrError(f"{path}: name = {data['name']!r} but the folder is {name!r}; make them equal")
    cpu, qemu, timing = data["cpu"], data["emulator"]["qemu"], data["timing"]
    table = Path(root) / "cores" / f"{timing['core_table']}.toml"
    if not table.is_file():
        raise TinylrError(
            f"{path}: timing.core_table = {timing['core_table']!r} but {table} does not exist; "
            f"use one of {', '.join(sorted(p.stem for p in table.parent.glob('*.toml'))) or 'none'} or add the core's table"
        )
    flash, ram = Region(**_region(data["memory"]["flash"])), Region(**_region(data["memory"]["ram"]))
    target = Target(
        name=name,
        description=data["description"],
        directory=path.parent,
        core=cpu["core"],
        arch=cpu["arch"],
        fpu=None if cpu["fpu"] == "none" else cpu["fpu"],
        dsp=cpu.get("dsp", False),
        kernel_variant=cpu.get("kernel_variant", "reference"),
        clock_hz=cpu["clock_hz"],
        cflags=tuple(cpu["cflags"]),
        flash=flash,
        ram=ram,
        reservations=tuple(
            Reservation(n, r["flash_bytes"], r["ram_bytes"], r.get("note", ""), r.get("position", "start"))
            for n, r in data["reserved"].items()
        ),
        stack_bytes=data["stack_bytes"],
        cycles_per_instruction=timing["cycles_per_instruction"],
        timing_source=timing["source"],
        qemu_machine=qemu["machine"],
        qemu_cpu=qemu["cpu"],
        qemu_extra_args=tuple(qemu.get("extra_args", ())),
        core_table=timing["core_table"],
        flash_timing=FlashTiming(**{"unified": False, **timing["flash"]}),
        placement=QemuPlacement(
            flash_at=qemu.get("flash_at", flash.origin),
            ram_at=qemu.get("ram_at", ram.origin),
            reset_vector_at=qemu.get("reset_vector_at", 0),
            memory=tuple(Region(**_region(m)) for m in qemu["memory"]),
            note=qemu.get("placement_note", ""),
        ),
        renode_platform=data["emulator"].get("renode", {}).get("platform"),
    )
    target.check_reservations()
    target.check_placement(path)
    return target


def _region(data: dict) -> dict:
    return {"origin": data["origin"], "size": data["size"]}  # a region's note is for readers


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmM]?)\s*$")


def parse_size(text: str) -> int:
    """'156K' -> 159744, '0x5C00' -> 23552, '1M' -> 1048576."""
    text = text.strip()
    if text.lower().startswith("0x"):
        return int(text, 16)
    m = _SIZE.match(text)
    if not m:
        raise TinylrError(f"cannot read size {text!r}; write bytes, 0x hex, or a number with K or M")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


def parse_reservation(spec: str) -> tuple[str, tuple[int, int]]:
    """'radio_stack=156K,23K' -> ('radio_stack', (159744, 23552))."""
    name, sep, sizes = spec.partition("=")
    parts = sizes.split(",")
    if not sep or not re.fullmatch(r"[a-z0-9_]+", name) or len(parts) != 2:
        raise TinylrError(f"cannot read reservation {spec!r}; write NAME=FLASH,RAM e.g. radio_stack=156K,23K")
    return name, (parse_size(parts[0]), parse_size(parts[1]))
