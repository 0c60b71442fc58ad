"""Build tinylr's QEMU TCG plugin (C, in `plugin/`) with the host compiler, once.

The shared object is cached in `${XDG_CACHE_HOME:-~/.cache}/tinylr/`, named by a hash
of its sources and flags, so an edited plugin is rebuilt and concurrent builds (pytest
-n, two pipelines) never see a half-written file. `python -m tinylr.emulate.plugin`
prebuilds it and prints its path.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .. import fsutil, toolchain
from ..errors import TinylrError

SOURCE_DIR = Path(__file__).resolve().with_name("plugin")
MAIN_SOURCE = SOURCE_DIR / "tinylr_plugin.c"
SOURCES = (MAIN_SOURCE, SOURCE_DIR / "qemu_plugin_api.h")
# Hidden visibility: QEMU only needs qemu_plugin_install/qemu_plugin_version, and the
# qemu_plugin_* calls resolve against the QEMU executable when it dlopen()s the plugin.
CFLAGS = ("-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinylr"


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(CFLAGS).encode())
    return digest.hexdigest()[:16]


def plugin_path() -> Path:
    """Path of the built plugin, compiling it first when the cache has no current copy."""
    so = cache_dir() / f"tinylr-qemu-plugin-{source_hash()}.so"
    if so.is_file():
        return so
    gcc = toolchain.require("gcc")
    try:
        with fsutil.atomic_path(so) as tmp:
            proc = subprocess.run(
                [gcc, *CFLAGS, f"-I{SOURCE_DIR}", "-o", str(tmp), str(MAIN_SOURCE)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:300])
                raise TinylrError(
                    f"building the QEMU plugin with {gcc} failed: {first} "
                    "(check that the host gcc works: `gcc --version`; reinstall with `make setup`)"
                )
    except OSError as exc:
        raise TinylrError(
            f"cannot write the QEMU plugin to {so.parent}: {exc.strerror}; "
            "make it writable or point XDG_CACHE_HOME at a writable folder"
        ) from exc
    return so


def main() -> int:
    try:
        print(plugin_path())
    except TinylrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
