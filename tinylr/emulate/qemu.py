"""Stage 6, emulate: run a firmware ELF in QEMU with tinylr's TCG plugin.

QEMU runs the board's machine (`qemu_machine`/`qemu_cpu` from its board.toml) with ARM
semihosting on stdout; the plugin (see `plugin/tinylr_plugin.c`) counts instructions,
marker windows, stack depth and out-of-bounds accesses, adds up the cycle estimate and
logs per-layer probes, and writes them as JSON at exit. This module writes the plugin's
plan (costs from `timing`, probes from `profile`), builds the command line, runs it
under a wall-time limit, and turns the console and the plugin's file into an
`EmulationResult` or one clear `TinylrError`.
"""

from __future__ import annotations

import functools
import json
import re
import struct
import subprocess
import tempfile
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import fsutil, toolchain
from ..build import emulator_elf_path
from ..errors import TinylrError
from ..targets import Region, Target
from . import profile as profiling
from .timing import Program, load_core_table, write_plan

EXIT_FAULT = 0x7F  # harness startup.c: the firmware's fault handler exits with this
EXIT_LIMIT = 0x7C  # tinylr_plugin.c: the instruction limit stopped the run
# Cortex-M private peripheral bus and system space (SCB, NVIC, SysTick, DWT, ...).
SYSTEM_SPACE = Region(0xE0000000, 0x00100000)
MAX_VIOLATIONS_SHOWN = 3
REQUIRED_SYMBOLS = ("_estack", "_ebss", "Reset_Handler", "tinylr_vectors", "tinylr_marker_begin", "tinylr_marker_end")

_OUT = re.compile(r"^TINYLR_OUT (\d+) ((?:[0-9a-f]{2})*)$", re.M)
_FAULT = re.compile(r"TINYLR_FAULT exception=(\d+) pc=0x([0-9a-f]+) lr=0x([0-9a-f]+) cfsr=0x([0-9a-f]+) hfsr=0x([0-9a-f]+)")
_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault"}
# The CFSR bits a model's code can trip, in words (ARMv7-M ARM, B3.2.15).
_CFSR_BITS = {
    0: "IACCVIOL: instruction fetch from a forbidden address",
    1: "DACCVIOL: data access to a forbidden address",
    8: "IBUSERR: bus error on instruction fetch",
    9: "PRECISERR: bus error on a data access",
    10: "IMPRECISERR: imprecise bus error on a data access",
    16: "UNDEFINSTR: undefined instruction",
    17: "INVSTATE: branch to an address without the Thumb bit (bad function pointer?)",
    18: "INVPC: bad exception return",
    19: "NOCP: FPU instruction with the FPU off",
    24: "UNALIGNED: unaligned access",
    25: "DIVBYZERO: division by zero",
}


@dataclass(frozen=True)
class FirmwareSymbols:
    """What the emulator needs from the ELF: harness symbols and a pc -> function map."""

    values: dict[str, int]
    functions: tuple[tuple[int, int, str], ...]  # (start, end, name), sorted by start

    @classmethod
    def read(cls, elf_path: Path) -> FirmwareSymbols:
        try:
            with open(elf_path, "rb") as f:
                elf = ELFFile(f)
                if elf["e_machine"] != "EM_ARM":
                    raise TinylrError(f"{elf_path} is built for {elf['e_machine']}, not ARM; give the ELF from `tinylr build`")
                symtab = elf.get_section_by_name(".symtab")
                symbols = list(symtab.iter_symbols()) if symtab is not None else []
        except (ELFError, OSError) as exc:
            raise TinylrError(f"cannot read {elf_path} as an ELF file ({exc}); give the firmware.elf from `tinylr build`") from exc
        values: dict[str, int] = {}
        functions = []
        for sym in symbols:
            values.setdefault(sym.name, sym["st_value"])
            if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"] > 0:
                start = sym["st_value"] & ~1  # Thumb functions have bit 0 set
                functions.append((start, start + sym["st_size"], sym.name))
        missing = [name for name in REQUIRED_SYMBOLS if name not in values]
        if missing:
            raise TinylrError(
                f"{elf_path} lacks the harness symbols {', '.join(missing)}; build it with `tinylr build` "
                "(the emulator needs the tinylr harness and an unstripped ELF)"
            )
        return cls(values, tuple(sorted(functions)))

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def function_at(self, pc: int) -> str | None:
        i = bisect_right(self.functions, (pc, float("inf"))) - 1
        if i >= 0 and self.functions[i][0] <= pc < self.functions[i][1]:
            return self.functions[i][2]
        return None

    def describe(self, pc: int | None, what: str = "pc") -> str:
        """'pc 0x00027044 in toy_invoke': an address and the function holding it."""
        if pc is None:
            return f"an unknown {what}"
        name = self.function_at(pc & ~1)
        return f"{what} 0x{pc:08X} in {name}" if name else f"{what} 0x{pc:08X} (outside every function of the ELF)"


@dataclass(frozen=True)
class EmulationResult:
    exit_code: int
    console: str
    outputs: list[bytes]
    instructions_total: int
    window_instructions: list[int]
    peak_stack_bytes: int
    window_peak_stack_bytes: int
    violations: list[dict]
    violation_count: int
    qemu_version: str
    command: list[str]
    wall_seconds: float
    window_cycles: list[float] = field(default_factory=list)  # estimated (docs/timing.md), one per window
    profile: dict | None = None      # per-layer/per-function profile (tinylr.emulate.profile)
    plugin_api: int = 1
    emulated_elf: str = ""           # the ELF QEMU ran (a placed copy for some boards)

    def to_json(self) -> dict:
        d = asdict(self)
        d["outputs"] = [o.hex() for o in self.outputs]
        return d


def allowed_regions(target: Target) -> list[Region]:
    """Memory the application may touch on the real chip (its flash and RAM, where the
    emulator placed them, and the system space)."""
    return [target.emulated_app_flash, target.emulated_app_ram, SYSTEM_SPACE]


def boot_stub(symbols: FirmwareSymbols) -> bytes:
    """Initial SP and reset vector where the core reads them, as a bootloader (the nRF MBR,
    MCUboot) forwards to the application's vector table."""
    return struct.pack("<II", symbols["_estack"], symbols["Reset_Handler"] | 1)


def needs_boot_stub(target: Target) -> bool:
    return target.reset_vector_at != target.emulated_app_flash.origin


def emulated_elf(elf: Path, target: Target) -> Path:
    """The ELF QEMU runs: `elf` itself, or for a board placed elsewhere on its QEMU
    machine the copy the build linked there (firmware.emu.elf beside firmware.elf)."""
    if not target.is_placed:
        return elf
    try:
        vectors = FirmwareSymbols.read(elf)["tinylr_vectors"]
    except TinylrError:
        return elf  # reported by the caller with the usual message
    if vectors == target.emulated_app_flash.origin:
        return elf
    placed = emulator_elf_path(elf)
    if not placed.is_file():
        raise TinylrError(
            f"{elf} has {target.name}'s real addresses, which QEMU's {target.qemu_machine} lacks, and {placed.name} "
            f"(the same firmware linked at the emulator's placement) is missing beside it; rebuild with `tinylr build`"
        )
    return placed


def _opt(value: object) -> str:
    return str(value).replace(",", ",,")  # QEMU option syntax: a literal comma is doubled


def plugin_option(plugin: Path, out: Path, target: Target, symbols: FirmwareSymbols, max_instructions: int,
                  plan: Path | None = None) -> str:
    flash = target.emulated_app_flash
    args = [
        f"file={_opt(plugin)}", f"out={_opt(out)}", f"limit={max_instructions}",
        *([f"plan={_opt(plan)}"] if plan is not None else []),
        f"begin={symbols['tinylr_marker_begin'] & ~1:#x}", f"end={symbols['tinylr_marker_end'] & ~1:#x}",
        f"stack={symbols['_ebss']:#x}:{symbols['_estack']:#x}",
        f"code={flash.origin:#x}:{flash.end:#x}",
        *(f"allow={r.origin:#x}:{r.end:#x}" for r in allowed_regions(target)),
    ]
    return ",".join(args)


def qemu_command(qemu: str, target: Target, elf: Path, stub: Path | None, plugin_opt: str | None) -> list[str]:
    return [
        qemu, "-M", target.qemu_machine, "-cpu", target.qemu_cpu,
        "-nographic", "-monitor", "none", "-serial", "none",
        # semihosting output goes to our stdout; SYS_EXIT gives the exit status
        "-semihosting-config", "enable=on,target=native,chardev=sh0", "-chardev", "stdio,id=sh0",
        *target.qemu_extra_args,
        "-kernel", str(elf),
        *(["-device", f"loader,file={_opt(stub)},addr={target.reset_vector_at:#x},force-raw=on"] if stub else []),
        *(["-plugin", plugin_opt] if plugin_opt else []),
    ]


def _check_layout(elf: Path, target: Target, symbols: FirmwareSymbols) -> None:
    """The bounds checks assume the ELF was linked for this target's application regions."""
    vectors, estack = symbols["tinylr_vectors"], symbols["_estack"]
    flash, ram = target.emulated_app_flash, target.emulated_app_ram
    if vectors != flash.origin or estack != ram.end:
        raise TinylrError(
            f"{elf} was not linked for {target.name} with its current reservations (vector table at "
            f"0x{vectors:08X}, stack top 0x{estack:08X}; expected 0x{flash.origin:08X} and "
            f"0x{ram.end:08X}); rebuild it for this target, or emulate with the same --reserve"
        )


def _run(cmd: list[str], timeout_s: float) -> tuple[int, str, str, bool]:
    """Run QEMU; on timeout stop it with SIGTERM so the plugin still writes its results."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timed_out = False
    try:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
    finally:
        if proc.poll() is None:  # never leave QEMU running (Ctrl-C, or SIGTERM ignored)
            proc.kill()
            proc.wait()
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), timed_out


@functools.cache
def _qemu_version(qemu: str) -> str:
    proc = subprocess.run([qemu, "--version"], capture_output=True, text=True)
    return proc.stdout.splitlines()[0].strip() if proc.stdout else "unknown"


def emulate(
    elf_path: str | Path,
    target: Target,
    *,
    timeout_s: float = 120.0,
    max_instructions: int = 2_000_000_000,
    allow_violations: bool = False,
    result_path: str | Path | None = None,
    ops: list[str] | None = None,
) -> EmulationResult:
    """Run `elf_path` on `target`'s QEMU machine and measure it; see docs/emulator.md.

    Raises TinylrError on a fault, the instruction or time limit, a non-zero exit, an
    unfinished harness, or (unless `allow_violations`) any access outside the board's
    application memory. With `result_path`, the result is also written there as JSON
    (and an older file removed first, so a failed run leaves none). `ops` (the
    manifest's op types) names the layers of the profile.
    """
    if result_path is not None:
        fsutil.remove_stale(result_path)
    if timeout_s <= 0 or max_instructions <= 0:
        raise TinylrError(f"timeout_s ({timeout_s}) and max_instructions ({max_instructions}) must be positive")
    # imported here so `python -m tinylr.emulate.plugin` does not import itself twice
    from .plugin import plugin_path

    qemu = toolchain.require("qemu-system-arm")
    plugin = plugin_path()
    elf = emulated_elf(Path(elf_path), target)
    symbols = FirmwareSymbols.read(elf)
    _check_layout(elf, target, symbols)
    program = Program.read(elf)
    table = load_core_table(target.core_table)
    plan = profiling.plan_profile(program)
    costs = program.costs(table)

    with tempfile.TemporaryDirectory(prefix="tinylr-emulate-") as tmp:
        stub, out, plan_file = Path(tmp) / "boot_stub.bin", Path(tmp) / "plugin.json", Path(tmp) / "plan.txt"
        stub.write_bytes(boot_stub(symbols))
        write_plan(plan_file, program, costs, target, plan.probes())
        option = plugin_option(plugin, out, target, symbols, max_instructions, plan_file)
        cmd = qemu_command(qemu, target, elf, stub if needs_boot_stub(target) else None, option)
        start = time.monotonic()
        code, console, stderr, timed_out = _run(cmd, timeout_s)
        wall = time.monotonic() - start
        stats = json.loads(out.read_text()) if out.is_file() else None

    if stats is None:
        _raise_qemu_failure(code, stderr, symbols, timed_out, timeout_s)
    _raise_run_errors(target, symbols, stats, code, console, timed_out, timeout_s, allow_violations)
    outputs = parse_outputs(console)
    if stats["unmatched_markers"] or stats["window_open"] or len(stats["windows"]) != len(outputs):
        raise TinylrError(
            f"{len(stats['windows'])} marker windows for {len(outputs)} outputs "
            f"({stats['unmatched_markers']} unmatched markers); the harness's marker calls are broken, rebuild with `tinylr build`"
        )
    estack = symbols["_estack"]
    profile = profiling.analyze(stats, plan, program, costs, target, ops)
    result = EmulationResult(
        exit_code=code,
        console=console,
        outputs=outputs,
        instructions_total=stats["instructions"],
        window_instructions=stats["windows"],
        peak_stack_bytes=estack - stats["stack_low"] if stats["stack_low"] is not None else 0,
        window_peak_stack_bytes=estack - stats["window_stack_low"] if stats["window_stack_low"] is not None else 0,
        violations=[_violation(v, symbols) for v in stats["violations"]],
        violation_count=stats["violation_count"],
        qemu_version=_qemu_version(qemu),
        command=cmd,
        wall_seconds=round(wall, 3),
        window_cycles=profile["window_cycles"],
        profile=profile,
        plugin_api=stats["api"],
        emulated_elf=str(elf),
    )
    if result_path is not None:
        fsutil.write_json(result_path, result.to_json())
    return result


def _violation(v: dict, symbols: FirmwareSymbols) -> dict:
    return {"pc": v["pc"], "symbol": symbols.function_at(v["pc"]), "address": v["address"], "size": v["size"], "kind": v["kind"]}


def _raise_qemu_failure(code: int, stderr: str, symbols: FirmwareSymbols, timed_out: bool, timeout_s: float) -> None:
    """QEMU ended without the plugin's results: it failed to start, aborted, or was killed."""
    fatal = re.search(r"qemu: fatal: (.*)", stderr)
    if fatal:
        # e.g. a fault inside the fault handler: the core locks up and QEMU aborts
        r15 = re.search(r"R15=([0-9a-fA-F]{8})", stderr)
        where = symbols.describe(int(r15.group(1), 16)) if r15 else "an unknown pc"
        raise TinylrError(f"QEMU stopped the firmware: {fatal.group(1).strip()} at {where}; fix the fault there (a fault handler that faults again locks the core)")
    if timed_out:
        raise TinylrError(f"QEMU did not finish within {timeout_s} s and gave no measurements; raise timeout_s or look for an endless loop")
    first = next((line for line in stderr.splitlines() if line.strip()), f"exit status {code}")
    raise TinylrError(f"QEMU ended without the plugin's measurements: {first.strip()} (the command is in EmulationResult.command; check the QEMU install with `qemu-system-arm --version`, 7.2 is known to work)")


def _raise_run_errors(
    target: Target, symbols: FirmwareSymbols, stats: dict, code: int, console: str,
    timed_out: bool, timeout_s: float, allow_violations: bool,
) -> None:
    """The first problem of a run, most specific first: limits, faults, bounds, exit."""
    last = symbols.describe(stats["last_pc"])
    if stats["limit_hit"]:
        raise TinylrError(
            f"firmware ran past the instruction limit of {stats['limit']:,} instructions; it was at {last} "
            "(an endless loop?); raise max_instructions if the model really needs more"
        )
    if timed_out:
        raise TinylrError(
            f"firmware ran longer than {timeout_s} s wall time ({stats['instructions']:,} instructions); "
            f"it was at {last}; raise timeout_s or look for an endless loop there"
        )
    fault = _FAULT.search(console)
    if fault or code == EXIT_FAULT or "TINYLR_FAULT" in console:
        raise TinylrError(_fault_message(fault, symbols, stats) if fault else
                          f"firmware faulted (unexpected interrupt, exit 0x{code:02X}); console: {console.strip()[-200:]}")
    if stats["violation_count"] and not allow_violations:
        shown = "; ".join(_describe_violation(v, symbols) for v in stats["violations"][:MAX_VIOLATIONS_SHOWN])
        regions = ", ".join(f"0x{r.origin:08X}-0x{r.end - 1:08X}" for r in allowed_regions(target))
        raise TinylrError(
            f"firmware accessed memory outside {target.name}'s application memory ({regions}) "
            f"{stats['violation_count']} times, e.g. {shown}; fix those accesses (or pass allow_violations=True to only report them)"
        )
    if code != 0:
        error = re.search(r"^TINYLR_ERROR (.*)$", console, re.M)
        why = error.group(1) if error else console.strip().splitlines()[-1] if console.strip() else "no output"
        raise TinylrError(f"firmware exited with status {code}: {why}; the model's invoke reported an error")
    if not re.search(r"^TINYLR_DONE$", console, re.M):
        raise TinylrError("firmware exited without printing TINYLR_DONE; the harness did not finish all test inputs (rebuild with `tinylr build`)")


def _describe_violation(v: dict, symbols: FirmwareSymbols) -> str:
    return f"{v['kind']} of {v['size']} B at 0x{v['address']:08X} from {symbols.describe(v['pc'])}"


def _fault_message(match: re.Match, symbols: FirmwareSymbols, stats: dict) -> str:
    exception, pc, lr, cfsr, hfsr = (int(g, 16) if i else int(g) for i, g in enumerate(match.groups()))
    causes = [text for bit, text in _CFSR_BITS.items() if cfsr >> bit & 1]
    extra = f"; {stats['violation_count']} out-of-bounds accesses before it" if stats["violation_count"] else ""
    return (
        f"firmware faulted: {_EXCEPTIONS.get(exception, f'exception {exception}')} at {symbols.describe(pc)}, "
        f"called from {symbols.describe(lr, 'lr')}; cfsr=0x{cfsr:08X} ({', '.join(causes) or 'no cause bits'}), "
        f"hfsr=0x{hfsr:08X}{extra}; fix the code there (`arm-none-eabi-objdump -d` the ELF to see the instruction)"
    )


def parse_outputs(console: str) -> list[bytes]:
    """TINYLR_OUT lines, in index order; every index from 0 must appear exactly once."""
    by_index: dict[int, bytes] = {}
    for match in _OUT.finditer(console):
        index = int(match.group(1))
        if index in by_index:
            raise TinylrError(f"the firmware printed output {index} twice; the harness is broken, rebuild with `tinylr build`")
        by_index[index] = bytes.fromhex(match.group(2))
    missing = sorted(set(range(len(by_index))) - set(by_index))
    if missing:  # n distinct indices that miss none of 0..n-1 are exactly 0..n-1
        raise TinylrError(f"the firmware's outputs skip index {missing[0]}; the harness is broken, rebuild with `tinylr build`")
    return [by_index[i] for i in range(len(by_index))]
