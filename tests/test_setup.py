"""tools/setup.sh (behind `make deploy` and `make test`) names the exact install command
when a Debian package is missing and it may not install it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_missing_cross_compiler_and_qemu_name_the_apt_command(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a PATH with the shell basics and the host gcc, but no arm-none-eabi-gcc and no QEMU
    for tool in ("bash", "sh", "dirname", "id", "cat", "gcc"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    proc = subprocess.run(["bash", str(ROOT / "tools" / "setup.sh")], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "TINYLR_APT": "never", "HOME": str(tmp_path)}, timeout=60)
    assert proc.returncode == 1
    assert ("apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
            in proc.stderr)
    assert not (tmp_path / ".venv").exists()
