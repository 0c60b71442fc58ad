"""Stage 6, emulate: run a firmware ELF in an emulator and measure it exactly.

    from tinylr.emulate import emulate
    result = emulate("build/firmware.elf", load_target("nrf52840"))

QEMU with tinylr's own TCG plugin is the backend (see docs/emulator.md).
"""

from .qemu import EmulationResult, FirmwareSymbols, emulate

__all__ = ["EmulationResult", "FirmwareSymbols", "emulate"]
