"""Cycle estimate: a per-core table of cycles per instruction class (targets/cores/*.toml,
sources in docs/timing.md) applied to every instruction the firmware executes.

Python disassembles the ELF with capstone and gives each instruction address a cost:
`base` cycles always, plus `taken` extra cycles when it transfers control. The QEMU
plugin adds these per executed instruction (and the extra when the next block does not
start after the branch), so the estimate is exact *for the model*: what remains an
estimate is the table, not the counting. Two pipeline effects are applied statically,
from the instruction just before in address order: Cortex-M4/M33 loads and stores that
follow a load or store pipeline (1 cycle instead of 2), and Cortex-M7 pairs of
instructions that dual-issue (the second is free). Flash wait states are added in
Python for the line misses the plugin counts (see `flash_penalty`).
"""

from __future__ import annotations

import tomllib
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import capstone
from capstone import arm_const
from elftools.elf.elffile import ELFFile

from ..errors import TinylrError
from ..targets import TARGETS_DIR, Target

CENTI = 100  # the plugin adds costs in 1/100 cycles

CLASSES = (
    "alu", "it", "mul", "mla", "mul_long", "mla_long", "dsp_mac", "simd", "div",
    "load", "store", "load_double", "store_double", "load_multiple", "store_multiple",
    "branch", "call", "fp_alu", "fp_mul", "fp_mac", "fp_div", "fp_sqrt", "fp_load", "fp_store",
    "fp_load_multiple", "fp_store_multiple", "fp_move", "system", "barrier",
)
# Extra keys of a table that are not classes of their own.
MODIFIERS = ("pipelined_load_store", "per_register", "branch_taken", "pc_write_penalty")

_NAMES = {v: k[len("ARM_INS_"):] for k, v in vars(arm_const).items() if k.startswith("ARM_INS_") and isinstance(v, int)}
_BY_NAME = {
    "it": {"IT"},
    "mul": {"MUL"},
    "mla": {"MLA", "MLS"},
    "mul_long": {"SMULL", "UMULL"},
    "mla_long": {"SMLAL", "UMLAL", "UMAAL"},
    "dsp_mac": {
        "SMLABB", "SMLABT", "SMLATB", "SMLATT", "SMLAD", "SMLADX", "SMLAWB", "SMLAWT", "SMLSD", "SMLSDX",
        "SMMLA", "SMMLAR", "SMMLS", "SMMLSR", "SMMUL", "SMMULR", "SMUAD", "SMUADX", "SMULBB", "SMULBT",
        "SMULTB", "SMULTT", "SMULWB", "SMULWT", "SMUSD", "SMUSDX", "SMLALBB", "SMLALBT", "SMLALTB",
        "SMLALTT", "SMLALD", "SMLALDX", "SMLSLD", "SMLSLDX",
    },
    "simd": {
        "SADD16", "SADD8", "SASX", "SSAX", "SSUB16", "SSUB8", "QADD", "QADD16", "QADD8", "QASX", "QDADD",
        "QDSUB", "QSAX", "QSUB", "QSUB16", "QSUB8", "SHADD16", "SHADD8", "SHASX", "SHSAX", "SHSUB16",
        "SHSUB8", "UADD16", "UADD8", "UASX", "USAX", "USUB16", "USUB8", "UHADD16", "UHADD8", "UHASX",
        "UHSAX", "UHSUB16", "UHSUB8", "UQADD16", "UQADD8", "UQASX", "UQSAX", "UQSUB16", "UQSUB8", "USAD8",
        "USADA8", "SSAT", "SSAT16", "USAT", "USAT16", "SXTB16", "SXTAB16", "UXTB16", "UXTAB16", "SEL",
        "PKHBT", "PKHTB",
    },
    "div": {"SDIV", "UDIV"},
    "load": {"LDR", "LDRB", "LDRH", "LDRSB", "LDRSH", "LDRT", "LDRBT", "LDRHT", "LDRSBT", "LDRSHT", "LDREX",
             "LDREXB", "LDREXH", "LDA", "LDAB", "LDAH", "LDAEX", "LDAEXB", "LDAEXH", "TBB", "TBH"},
    "store": {"STR", "STRB", "STRH", "STRT", "STRBT", "STRHT", "STREX", "STREXB", "STREXH", "STL", "STLB",
              "STLH", "STLEX", "STLEXB", "STLEXH"},
    "load_double": {"LDRD", "LDREXD"},
    "store_double": {"STRD", "STREXD"},
    "load_multiple": {"LDM", "LDMDA", "LDMDB", "LDMIB", "POP"},
    "store_multiple": {"STM", "STMDA", "STMDB", "STMIB", "PUSH"},
    "branch": {"B", "BX", "BXJ", "CBZ", "CBNZ", "BLX", "BL"},
    "fp_mul": {"VMUL", "VNMUL"},
    "fp_mac": {"VMLA", "VMLS", "VNMLA", "VNMLS", "VFMA", "VFMS", "VFNMA", "VFNMS"},
    "fp_div": {"VDIV"},
    "fp_sqrt": {"VSQRT"},
    "fp_load": {"VLDR"},
    "fp_store": {"VSTR"},
    "fp_load_multiple": {"VLDMIA", "VLDMDB", "VPOP"},
    "fp_store_multiple": {"VSTMIA", "VSTMDB", "VPUSH"},
    "fp_move": {"VMRS", "VMSR"},
    "barrier": {"DMB", "DSB", "ISB", "MRS", "MSR"},
    "system": {"NOP", "YIELD", "WFE", "WFI", "SEV", "SEVL", "CPS", "BKPT", "SVC", "UDF", "HINT", "DBG", "CLREX"},
}
_CLASS_OF = {name: cls for cls, names in _BY_NAME.items() for name in names}
# Dual-issue groups (Cortex-M7): which pairs issue together is in the core's table.
_ISSUE_GROUP = {
    "alu": "alu", "it": "alu", "load": "ls", "store": "ls", "load_double": "ls", "store_double": "ls",
    "fp_load": "ls", "fp_store": "ls", "mul": "mul", "mla": "mul", "mul_long": "mul", "mla_long": "mul",
    "dsp_mac": "mul", "simd": "alu", "fp_alu": "fp", "fp_mul": "fp", "fp_mac": "fp", "fp_move": "fp",
}
_SINGLE_LOAD_STORE = {"load", "store"}


@dataclass(frozen=True)
class CoreTable:
    core: str
    title: str
    source: str
    cycles: dict[str, float]
    pairs: frozenset[tuple[str, str]]

    def cost(self, cls: str) -> float:
        """Cycles of a class; a class the core lacks (e.g. SDIV on the M0+) counts 1."""
        return self.cycles.get(cls, 1.0)


@cache
def load_core_table(name: str, root: Path = TARGETS_DIR) -> CoreTable:
    path = Path(root) / "cores" / f"{name}.toml"
    if not path.is_file():
        raise TinylrError(f"no timing table {path}; add one (see docs/timing.md) or name an existing core_table")
    try:
        data = tomllib.loads(path.read_text())
        cycles = {k: float(v) for k, v in data["cycles"].items()}
        unknown = set(cycles) - set(CLASSES) - set(MODIFIERS)
        if unknown:
            raise ValueError(f"unknown classes {sorted(unknown)}")
        pairs = frozenset(tuple(p) for p in data.get("dual_issue", {}).get("pairs", ()))
        return CoreTable(data["core"], data.get("title", data["core"]), data["source"], cycles, pairs)
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise TinylrError(f"{path}: not a valid timing table ({exc}); see docs/timing.md for its form") from exc


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction with what the timing model needs."""

    address: int
    size: int
    text: str
    name: str        # capstone's instruction name, e.g. LDRSB
    cls: str         # timing class
    control: bool    # may write the PC
    conditional: bool
    registers: int   # registers moved by LDM/STM/PUSH/POP/VLDM/...
    reads: frozenset[str]
    writes: frozenset[str]
    target: int | None  # direct branch/call target
    base_register: str | None  # address base of a load/store


@dataclass(frozen=True)
class Cost:
    base: float   # cycles whenever it executes
    taken: float  # extra cycles when it transfers control


def _disassembler() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


def decode(code: bytes, address: int) -> list[Instruction]:
    """Every instruction in `code`; undecodable halfwords (literal pools) are skipped."""
    md, out, offset = _disassembler(), [], 0
    while offset < len(code):
        for insn in md.disasm(code[offset:], address + offset):
            out.append(_describe(md, insn))
            offset = insn.address + insn.size - address
        if offset < len(code):  # capstone stopped at a halfword it cannot decode
            offset += 2
    return out


def _describe(md: capstone.Cs, insn) -> Instruction:
    name = _NAMES.get(insn.id, insn.mnemonic.split(".")[0].upper())
    reads, writes = insn.regs_access()
    reads = frozenset(md.reg_name(r) for r in reads)
    writes = frozenset(md.reg_name(r) for r in writes)
    groups = set(insn.groups)
    operands = insn.operands
    registers = sum(1 for op in operands if op.type == arm_const.ARM_OP_REG)
    pc_written = "pc" in writes or any(
        op.type == arm_const.ARM_OP_REG and md.reg_name(op.reg) == "pc" and (op.access & capstone.CS_AC_WRITE)
        for op in operands)
    control = bool(groups & {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET}) or pc_written \
        or name in {"TBB", "TBH"}
    cls = _CLASS_OF.get(name)
    if cls is None:
        if name.startswith("V"):
            cls = "fp_move" if name == "VMOV" and _moves_core_register(md, operands) else "fp_alu"
        else:
            cls = "alu"
    if name == "BL" or (name == "BLX" and operands and operands[0].type == arm_const.ARM_OP_IMM):
        cls = "call"
    conditional = insn.cc not in (arm_const.ARM_CC_AL, arm_const.ARM_CC_INVALID)
    direct = control and name in {"B", "BL", "BLX", "CBZ", "CBNZ"} and operands and operands[-1].type == arm_const.ARM_OP_IMM
    target = operands[-1].imm if direct else None
    base_register = None
    for op in operands:
        if op.type == arm_const.ARM_OP_MEM and op.mem.base:
            base_register = md.reg_name(op.mem.base)
    return Instruction(
        address=insn.address, size=insn.size, text=f"{insn.mnemonic} {insn.op_str}".strip(), name=name, cls=cls,
        control=control, conditional=conditional or name in {"CBZ", "CBNZ"},
        registers=registers, reads=reads, writes=writes, target=target, base_register=base_register,
    )


def _moves_core_register(md: capstone.Cs, operands) -> bool:
    names = [md.reg_name(op.reg) for op in operands if op.type == arm_const.ARM_OP_REG]
    return any(n.startswith("r") or n in {"sb", "sl", "fp", "ip", "lr", "sp"} for n in names)


def instruction_cost(insn: Instruction, table: CoreTable, previous: Instruction | None = None,
                     previous_paired: bool = False) -> tuple[Cost, bool]:
    """The cost of `insn` after `previous` (the instruction before it in address order,
    None after a control transfer); also whether it dual-issued with `previous`."""
    t = table.cost
    cycles = table.cycles
    cls = insn.cls
    taken = 0.0
    if cls in ("load_multiple", "store_multiple", "fp_load_multiple", "fp_store_multiple"):
        moved = insn.registers - (0 if insn.name in {"PUSH", "POP", "VPUSH", "VPOP"} else 1)  # LDM's base register
        base = t(cls) + cycles.get("per_register", 1.0) * max(moved, 0)
    else:
        base = t(cls)
    if insn.control:
        if cls == "call":
            base, taken = t("branch"), t("call") - t("branch")
        elif cls == "branch":
            base, taken = t("branch"), cycles.get("branch_taken", 1.0 + t("branch")) - t("branch")
        else:  # LDR pc, POP {pc}, TBB/TBH, ADD/MOV pc
            taken = cycles.get("pc_write_penalty", 2.0)
    paired = False
    if previous is not None and not previous.control:
        if (cls in _SINGLE_LOAD_STORE and previous.cls in _SINGLE_LOAD_STORE and "pipelined_load_store" in cycles
                and not (insn.base_register and insn.base_register in previous.writes)):
            base = min(base, cycles["pipelined_load_store"])
        pair = (_ISSUE_GROUP.get(previous.cls), "branch" if insn.control else _ISSUE_GROUP.get(cls))
        if (table.pairs and not previous_paired and pair in table.pairs
                and not (insn.reads & previous.writes - {"itstate"})):
            base, paired = 0.0, True
    return Cost(base, max(taken, 0.0)), paired


def function_ranges(elf: ELFFile) -> list[tuple[int, int, str]]:
    symtab = elf.get_section_by_name(".symtab")
    out = {}
    for sym in symtab.iter_symbols() if symtab is not None else ():
        if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"] > 0:
            start = sym["st_value"] & ~1
            out.setdefault(start, (start, start + sym["st_size"], sym.name))
    return sorted(out.values())


def code_ranges(elf: ELFFile, functions: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The Thumb code inside the functions, without their literal pools: ARM ELF mapping
    symbols mark where code ($t) and data ($d) start."""
    symtab = elf.get_section_by_name(".symtab")
    marks = sorted((sym["st_value"], sym.name[1]) for sym in (symtab.iter_symbols() if symtab is not None else ())
                   if sym.name[:2] in ("$t", "$d", "$a") and sym["st_info"]["type"] == "STT_NOTYPE")
    if not marks:
        return [(start, end) for start, end, _ in functions]
    addresses = [m[0] for m in marks]
    out = []
    for start, end, _ in functions:
        i = bisect_right(addresses, start) - 1
        kind = marks[i][1] if i >= 0 else "t"
        cursor = start
        for address, next_kind in marks[i + 1:]:
            if address >= end:
                break
            if kind == "t" and address > cursor:
                out.append((cursor, address))
            cursor, kind = address, next_kind
        if kind == "t" and end > cursor:
            out.append((cursor, end))
    return out


def read_code(elf: ELFFile, start: int, end: int) -> bytes:
    for section in elf.iter_sections():
        lo = section["sh_addr"]
        if section["sh_flags"] & 0x4 and lo <= start and end <= lo + section["sh_size"]:  # SHF_EXECINSTR
            return section.data()[start - lo:end - lo]
    return b""


@dataclass(frozen=True)
class Program:
    """The firmware's functions, decoded once."""

    functions: tuple[tuple[int, int, str], ...]
    instructions: dict[int, Instruction]
    code_range: tuple[int, int]

    @classmethod
    def read(cls, elf_path: Path) -> Program:
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            functions = function_ranges(elf)
            instructions = {}
            for start, end in code_ranges(elf, functions):
                for insn in decode(read_code(elf, start, end), start):
                    instructions[insn.address] = insn
            exec_sections = [(s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in elf.iter_sections()
                             if s["sh_flags"] & 0x4 and s["sh_size"]]
        lo = min((a for a, _ in exec_sections), default=0)
        hi = max((b for _, b in exec_sections), default=0)
        return cls(tuple(functions), instructions, (lo, hi))

    def function(self, name: str) -> tuple[int, int]:
        for start, end, fname in self.functions:
            if fname == name:
                return start, end
        raise TinylrError(f"the firmware has no function {name}; build it with `tinylr build`")

    def body(self, name: str) -> list[Instruction]:
        start, end = self.function(name)
        return [self.instructions[a] for a in sorted(self.instructions) if start <= a < end]

    def function_at(self, pc: int) -> str | None:
        for start, end, name in self.functions:
            if start <= pc < end:
                return name
        return None

    def costs(self, table: CoreTable) -> dict[int, Cost]:
        """Cost of every decoded instruction, with the static pipeline rules (which do not
        apply at branch targets: a loop's first instruction mostly follows its back-edge)."""
        targets = {i.target for i in self.instructions.values() if i.target is not None}
        out: dict[int, Cost] = {}
        for start, end, _ in self.functions:
            previous, previous_paired = None, False
            for address in sorted(a for a in self.instructions if start <= a < end):
                insn = self.instructions[address]
                if address in targets:
                    previous, previous_paired = None, False
                cost, paired = instruction_cost(insn, table, previous, previous_paired)
                out[address] = cost
                previous, previous_paired = (None if insn.control else insn), paired
        return out


def cache_lines(size_bytes: int, line_bytes: int) -> int:
    """Lines of a cache, rounded down to a power of two (the plugin indexes with a mask);
    0 when there is no cache (the plugin then keeps a single line buffer)."""
    lines = size_bytes // line_bytes
    return 1 << (lines.bit_length() - 1) if lines else 0


def write_plan(path: Path, program: Program, costs: dict[int, Cost], target: Target, probes: list[tuple[int, int]]) -> None:
    """The plugin's plan file: histogram range, flash cache geometry, costs (from
    `program.costs(table)`), probes."""
    ft = target.flash_timing
    flash = target.emulated_app_flash
    lines = [f"hist {program.code_range[0]:#x} {program.code_range[1]:#x}"]
    if ft is not None:
        lines.append(f"flash {flash.origin:#x} {flash.end:#x} {ft.line_bytes} {cache_lines(ft.icache_bytes, ft.line_bytes)} "
                     f"{cache_lines(ft.dcache_bytes, ft.line_bytes)} {int(ft.unified)}")
    for address, cost in sorted(costs.items()):
        base, taken = round(cost.base * CENTI), round(cost.taken * CENTI)
        if (base, taken) != (CENTI, 0):
            lines.append(f"cost {address:#x} {base} {taken}")
    lines += [f"probe {pc:#x} {probe_id}" for pc, probe_id in probes]
    Path(path).write_text("\n".join(lines) + "\n")


def flash_penalty(target: Target, fetch_misses: int, data_misses: int) -> float:
    """Cycles the core waits for flash: every line no cache holds costs the wait states."""
    ft = target.flash_timing
    return (fetch_misses + data_misses) * (ft.wait_states if ft else 0)


def estimate_cycles(target: Target, cycles_centi: int, fetch_misses: int, data_misses: int) -> float:
    return cycles_centi / CENTI + flash_penalty(target, fetch_misses, data_misses)


TABLE_ROWS = (
    ("alu", "ALU: ADD, SUB, logic, shifts, MOV/MOVW/MOVT, CMP, extend, bit-field"),
    ("it", "IT"),
    ("mul", "MUL"),
    ("mla", "MLA, MLS"),
    ("mul_long", "SMULL, UMULL"),
    ("mla_long", "SMLAL, UMLAL"),
    ("dsp_mac", "DSP multiply-accumulate: SMLAD, SMLABB, SMUAD, SMMLA ..."),
    ("simd", "SIMD and saturation: SADD16, SXTB16, QADD, SSAT, USAT, SEL ..."),
    ("div", "SDIV, UDIV"),
    ("load", "load single: LDR, LDRB, LDRSB, LDRH, LDRSH (TBB/TBH)"),
    ("store", "store single: STR, STRB, STRH"),
    ("pipelined_load_store", "load/store single right after one (not at a branch target)"),
    ("load_double", "LDRD"),
    ("store_double", "STRD"),
    ("load_multiple", "LDM, POP: base ..."),
    ("store_multiple", "STM, PUSH: base ..."),
    ("per_register", "... + per register moved"),
    ("branch", "branch not taken (B<cond>, CBZ/CBNZ)"),
    ("branch_taken", "branch taken (B, B<cond>, BX, BLX)"),
    ("call", "BL"),
    ("pc_write_penalty", "extra when LDR/POP/TBB/ADD/MOV write the PC"),
    ("fp_alu", "VADD, VSUB, VCMP, VCVT, VABS, VNEG, VMOV (FPU registers)"),
    ("fp_mul", "VMUL, VNMUL"),
    ("fp_mac", "VMLA, VMLS, VFMA, VFMS, VNMLA"),
    ("fp_div", "VDIV"),
    ("fp_sqrt", "VSQRT"),
    ("fp_load", "VLDR"),
    ("fp_store", "VSTR"),
    ("fp_load_multiple", "VLDM, VPOP: base (+ per register)"),
    ("fp_store_multiple", "VSTM, VPUSH: base (+ per register)"),
    ("fp_move", "VMOV core<->FPU, VMRS, VMSR"),
    ("system", "NOP, CPS, BKPT, SVC, WFI, SEV"),
    ("barrier", "DMB, DSB, ISB, MRS, MSR"),
)


def markdown_tables(root: Path = TARGETS_DIR) -> str:
    """The cycles of every core table side by side (docs/timing.md shows this table)."""
    tables = [load_core_table(p.stem, root) for p in sorted((Path(root) / "cores").glob("*.toml"))]
    lines = ["| instruction class | " + " | ".join(t.core for t in tables) + " |",
             "|---|" + "---:|" * len(tables)]
    for key, label in TABLE_ROWS:
        cells = [f"{t.cycles[key]:g}" if key in t.cycles else "-" for t in tables]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pairs = ["dual issue (second of a pair costs 0)"] + [
        ", ".join(f"{a}+{b}" for a, b in sorted(t.pairs)) if t.pairs else "no" for t in tables]
    lines.append("| " + " | ".join(pairs) + " |")
    return "\n".join(lines)
