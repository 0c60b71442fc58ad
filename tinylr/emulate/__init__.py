"""Stage 6, emulate: run a firmware ELF in an emulator and measure it exactly.

    from tinylr.emulate import emulate
    result = emulate("build/firmware.elf", load_target("nrf52840"))

QEMU with tinylr's own TCG plugin is the backend (see docs/emulator.md): `qemu` runs it,
`timing` prices the executed instructions (docs/timing.md), `profile` cuts a run into
layers and functions, `renode` is the alternative backend, `bench` measures them.
"""

from . import renode
from .qemu import EmulationResult, FirmwareSymbols, emulate

__all__ = ["EmulationResult", "FirmwareSymbols", "emulate", "renode"]
