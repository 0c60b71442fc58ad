"""Building the QEMU plugin with the host compiler, and the plugin's own argument checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from elftools.elf.elffile import ELFFile

from tinylr.emulate import plugin
from tinylr.errors import TinylrError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tinylr"


def exported_symbols(path) -> set[str]:
    with open(path, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return {s.name for s in dynsym.iter_symbols() if s["st_shndx"] != "SHN_UNDEF"}


def test_plugin_is_built_once_into_the_cache(cache, monkeypatch):
    so = plugin.plugin_path()
    assert so.parent == cache and plugin.source_hash() in so.name
    assert {"qemu_plugin_install", "qemu_plugin_version"} <= exported_symbols(so)
    assert not any(name.startswith("on_") for name in exported_symbols(so))  # hidden visibility
    assert list(cache.iterdir()) == [so]  # no temporary left behind

    stat = so.stat()
    assert plugin.plugin_path() == so and so.stat().st_mtime_ns == stat.st_mtime_ns  # reused, not rebuilt

    monkeypatch.setattr(plugin, "CFLAGS", (*plugin.CFLAGS, "-g"))
    rebuilt = plugin.plugin_path()  # other flags (or sources) make another file
    assert rebuilt != so and rebuilt.is_file()


def test_missing_host_gcc_is_a_clear_error(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TinylrError, match=r"gcc not found on PATH; install it with: .*apt-get install"):
        plugin.plugin_path()
    assert not cache.exists() or not any(cache.iterdir())


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    with pytest.raises(TinylrError, match="XDG_CACHE_HOME"):
        plugin.plugin_path()


def test_module_prebuilds_and_prints_the_path(cache):
    proc = subprocess.run([sys.executable, "-m", "tinylr.emulate.plugin"], capture_output=True, text=True,
                          env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    path = proc.stdout.strip()
    assert os.path.dirname(path) == str(cache) and os.path.isfile(path)


@pytest.mark.slow
@pytest.mark.parametrize("arg", ["limit=ten", "allow=0x2000:0x1000", "colour=blue", "stack=1"])
def test_qemu_refuses_bad_plugin_arguments(cache, tmp_path, arg):
    so = plugin.plugin_path()
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
           "-plugin", f"file={so},out={tmp_path / 'out.json'},{arg}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert f"tinylr plugin: bad argument '{arg}'" in proc.stderr
    assert not (tmp_path / "out.json").exists()
