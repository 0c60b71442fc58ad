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


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class Reservation:
    name: str
    flash_bytes: int
    ram_bytes: int
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

    @property
    def reserved_flash(self) -> int:
        return sum(r.flash_bytes for r in self.reservations)

    @property
    def reserved_ram(self) -> int:
        return sum(r.ram_bytes for r in self.reservations)

    @property
    def app_flash(self) -> Region:
        """Flash left to the application: reservations sit at the start of flash."""
        return Region(self.flash.origin + self.reserved_flash, self.flash.size - self.reserved_flash)

    @property
    def app_ram(self) -> Region:
        return Region(self.ram.origin + self.reserved_ram, self.ram.size - self.reserved_ram)

    @property
    def linker_template(self) -> Path:
        return self.directory / "linker.ld.j2"

    def with_reservations(self, overrides: dict[str, tuple[int, int]]) -> Target:
        """Replace or add reservations, e.g. {"radio_stack": (156 * 1024, 23 * 1024)}."""
        by_name = {r.name: r for r in self.reservations}
        for name, (flash_bytes, ram_bytes) in overrides.items():
            note = by_name[name].note if name in by_name else "set on the command line"
            by_name[name] = Reservation(name, flash_bytes, ram_bytes, note)
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
    cpu, qemu = data["cpu"], data["emulator"]["qemu"]
    target = Target(
        name=name,
        description=data["description"],
        directory=path.parent,
        core=cpu["core"],
        arch=cpu["arch"],
        fpu=cpu["fpu"],
        dsp=cpu.get("dsp", False),
        clock_hz=cpu["clock_hz"],
        cflags=tuple(cpu["cflags"]),
        flash=Region(**data["memory"]["flash"]),
        ram=Region(**data["memory"]["ram"]),
        reservations=tuple(
            Reservation(n, r["flash_bytes"], r["ram_bytes"], r.get("note", ""))
            for n, r in data["reserved"].items()
        ),
        stack_bytes=data["stack_bytes"],
        cycles_per_instruction=data["timing"]["cycles_per_instruction"],
        timing_source=data["timing"]["source"],
        qemu_machine=qemu["machine"],
        qemu_cpu=qemu["cpu"],
        qemu_extra_args=tuple(qemu.get("extra_args", ())),
    )
    target.check_reservations()
    return target


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
