"""Finding external tools, with the command that installs each when it is missing."""

from __future__ import annotations

import shutil
import subprocess

from .errors import TinylrError

# Debian package that provides each tool; `make setup` installs them.
DEBIAN_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "gcc": "gcc",
    "clang": "clang",
}


def require(tool: str) -> str:
    """Absolute path of `tool`, or a TinylrError naming the package to install."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGES.get(tool, tool)
        raise TinylrError(
            f"{tool} not found on PATH; install it with: "
            f"sudo apt-get install -y --no-install-recommends {package} (or run `make setup`)"
        )
    return path


def version(tool: str) -> str:
    """First line of `tool --version`, for reports."""
    try:
        out = subprocess.run([require(tool), "--version"], capture_output=True, text=True, timeout=30)
    except (TinylrError, OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "unknown"
