"""Building the QEMU plugin with the host compiler, and the plugin's own argument checks."""

from __future__ import annotations

import json
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


# A stand-in for QEMU's executable: it exports the plugin API of one version (v1 as in
# QEMU up to 8.2, or v2+ as in QEMU 9.0 on, where the plain inline operation is gone),
# dlopen()s the plugin as QEMU does, reads qemu_plugin_version, installs it and runs
# its exit callback. It checks the plugin loads and picks its API on both; the v2 path
# is otherwise not run on this machine (Debian's QEMU is 7.2).
FAKE_QEMU = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "qemu_plugin_api.h"

static qemu_plugin_udata_cb_t exit_cb;
static void *exit_data;
static size_t scoreboard_bytes;

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb) { (void)id; (void)cb; }
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags f, void *u) { (void)tb; (void)cb; (void)f; (void)u; }
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *i, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags f, void *u) { (void)i; (void)cb; (void)f; (void)u; }
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *i, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags f, enum qemu_plugin_mem_rw rw, void *u)
{ (void)i; (void)cb; (void)f; (void)rw; (void)u; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *u) { (void)id; exit_cb = cb; exit_data = u; }
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t i) { (void)tb; (void)i; return NULL; }
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *i) { (void)i; return 0; }
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *i) { (void)i; return 2; }
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t m) { (void)m; return 0; }
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t m) { (void)m; return false; }
#ifdef API_V1
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *i, enum qemu_plugin_op op, void *p, uint64_t n)
{ (void)i; (void)op; (void)p; (void)n; }
#define API_MIN 0
#define API_CUR 1
#else
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t size) { scoreboard_bytes = size; return calloc(1, size); }
void *qemu_plugin_scoreboard_find(struct qemu_plugin_scoreboard *s, unsigned int vcpu) { (void)vcpu; return s; }
void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(struct qemu_plugin_insn *i, enum qemu_plugin_op op,
                                                         qemu_plugin_u64 e, uint64_t n) { (void)i; (void)op; (void)e; (void)n; }
#define API_MIN 2
#define API_CUR 4
#endif

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == NULL) { fprintf(stderr, "%s\n", dlerror()); return 3; }
    int *version = dlsym(plugin, "qemu_plugin_version");
    int (*install)(qemu_plugin_id_t, const qemu_info_t *, int, char **) =
        (int (*)(qemu_plugin_id_t, const qemu_info_t *, int, char **))dlsym(plugin, "qemu_plugin_install");
    qemu_info_t info = {.target_name = "arm", .version = {API_MIN, API_CUR}, .system_emulation = true};
    char *args[] = {argv[2], "limit=1000"};
    int rc = install(1, &info, 2, args);
    printf("version=%d install=%d scoreboard=%zu\n", *version, rc, scoreboard_bytes);
    if (rc == 0 && exit_cb) exit_cb(1, exit_data);
    return rc;
}
"""


@pytest.mark.parametrize("api", [1, 2])
def test_plugin_picks_the_api_of_the_qemu_that_loads_it(cache, tmp_path, api):
    so = plugin.plugin_path()
    (tmp_path / "fake_qemu.c").write_text(FAKE_QEMU)
    exe = tmp_path / "fake_qemu"
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Werror", "-rdynamic", f"-I{plugin.SOURCE_DIR}",
                    *(["-DAPI_V1"] if api == 1 else []), str(tmp_path / "fake_qemu.c"), "-o", str(exe), "-ldl"],
                   check=True, capture_output=True)
    out = tmp_path / "out.json"
    proc = subprocess.run([str(exe), str(so), f"out={out}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    version, install, scoreboard = (int(kv.split("=")[1]) for kv in proc.stdout.split())
    assert (version, install) == (api, 0)
    assert (scoreboard > 0) == (api == 2)  # v2+: the counters live in a scoreboard
    assert json.loads(out.read_text())["api"] == api
