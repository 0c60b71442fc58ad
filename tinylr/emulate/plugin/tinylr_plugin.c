/* tinylr's QEMU TCG plugin: exact measurements of one firmware run.
 *
 * - instructions: an inline counter add on every instruction (not per block: a block
 *   can be cut short by an exception or I/O, and block counts then over-count);
 * - marker windows: callbacks on the first instruction of tinylr_marker_begin/_end
 *   record the counter, so a window is every instruction from the entry of the begin
 *   marker up to (not including) the entry of the end marker;
 * - stack low-water: the lowest address stored to within [stack_lo, stack_hi), over the
 *   whole run and during marker windows only;
 * - bounds: every load and store must fall inside an allowed region, and every executed
 *   instruction inside the code region; anything else is recorded as a violation;
 * - instruction limit: checked when each translation block starts; when reached, the
 *   results are written and QEMU exits with TINYLR_EXIT_LIMIT.
 *
 * Arguments (QEMU 7.2 passes each `key=value` of `-plugin lib.so,key=value,...`):
 *   out=PATH  limit=N  begin=ADDR  end=ADDR  stack=LO:HI  code=LO:HI  allow=LO:HI (repeatable)
 * Results are written as JSON to PATH (via PATH.tmp and rename) when QEMU exits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

TINYLR_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define TINYLR_EXIT_LIMIT 0x7C /* the emulate stage reads this status as "limit reached" */
#define MAX_REGIONS 8
#define MAX_VIOLATIONS 32 /* distinct violations kept in detail */
#define NO_ADDRESS UINT64_MAX

struct region {
    uint64_t lo, hi; /* [lo, hi) */
};

struct violation {
    uint64_t pc, address;
    unsigned size;
    const char *kind;
};

/* One vCPU (Cortex-M machines have one), so callbacks never race each other; only the
 * exit path may run on another thread, guarded by `results_written`. */
static uint64_t instructions; /* bumped inline by generated code */
static uint64_t limit = UINT64_MAX;
static int limit_hit;
static uint64_t last_pc = NO_ADDRESS; /* start of the last translation block entered */

static uint64_t begin_pc = NO_ADDRESS, end_pc = NO_ADDRESS;
static int in_window;
static uint64_t window_start;
static uint64_t *windows;
static size_t n_windows, cap_windows;
static uint64_t unmatched_markers;

static struct region stack = {0, 0};
static uint64_t stack_low = NO_ADDRESS, window_stack_low = NO_ADDRESS;

static struct region code = {0, UINT64_MAX};
static struct region allowed[MAX_REGIONS];
static int n_allowed;
static struct violation violations[MAX_VIOLATIONS];
static uint64_t n_violations; /* all of them */
static int n_details;          /* distinct ones kept in violations[] */

static const char *out_path; /* argv stays valid while the plugin is loaded */
static int results_written;

static int inside(const struct region *r, uint64_t address, uint64_t size)
{
    return address >= r->lo && address < r->hi && size <= r->hi - address;
}

/* Keeps the first MAX_VIOLATIONS distinct (pc, address, size, kind); a loop repeating
 * one bad access fills one slot, but every occurrence is counted. */
static void record_violation(uint64_t pc, uint64_t address, unsigned size, const char *kind)
{
    n_violations++;
    for (int i = 0; i < n_details; i++) {
        const struct violation *v = &violations[i];
        if (v->pc == pc && v->address == address && v->size == size && v->kind == kind) {
            return;
        }
    }
    if (n_details < MAX_VIOLATIONS) {
        violations[n_details++] = (struct violation){pc, address, size, kind};
    }
}

static void print_address(FILE *f, const char *key, uint64_t value)
{
    if (value == NO_ADDRESS) {
        fprintf(f, "\"%s\": null", key);
    } else {
        fprintf(f, "\"%s\": %" PRIu64, key, value);
    }
}

static void write_results(void)
{
    if (__atomic_exchange_n(&results_written, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    /* Write beside the final path, then rename: a reader never sees half a file. */
    size_t len = strlen(out_path) + 5;
    char *tmp = malloc(len);
    if (tmp == NULL) {
        return;
    }
    snprintf(tmp, len, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "tinylr plugin: cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return;
    }
    fprintf(f, "{\"instructions\": %" PRIu64 ", \"limit\": %" PRIu64 ", \"limit_hit\": %s, ",
            __atomic_load_n(&instructions, __ATOMIC_RELAXED), limit, limit_hit ? "true" : "false");
    print_address(f, "last_pc", last_pc);
    fprintf(f, ", \"windows\": [");
    for (size_t i = 0; i < n_windows; i++) {
        fprintf(f, "%s%" PRIu64, i ? ", " : "", windows[i]);
    }
    fprintf(f, "], \"window_open\": %s, \"unmatched_markers\": %" PRIu64 ", ",
            in_window ? "true" : "false", unmatched_markers);
    print_address(f, "stack_low", stack_low);
    fprintf(f, ", ");
    print_address(f, "window_stack_low", window_stack_low);
    fprintf(f, ", \"violation_count\": %" PRIu64 ", \"violations\": [", n_violations);
    for (int i = 0; i < n_details; i++) {
        const struct violation *v = &violations[i];
        fprintf(f, "%s{\"pc\": %" PRIu64 ", \"address\": %" PRIu64 ", \"size\": %u, \"kind\": \"%s\"}",
                i ? ", " : "", v->pc, v->address, v->size, v->kind);
    }
    fprintf(f, "]}\n");
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed || rename(tmp, out_path) != 0) {
        fprintf(stderr, "tinylr plugin: cannot write %s\n", out_path);
        remove(tmp);
    }
    free(tmp);
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    write_results();
}

static void on_tb_exec(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    last_pc = (uint64_t)(uintptr_t)userdata;
    if (instructions >= limit) {
        limit_hit = 1;
        write_results();
        exit(TINYLR_EXIT_LIMIT); /* as semihosting SYS_EXIT does, from the vCPU thread */
    }
}

static void on_marker_begin(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    (void)userdata;
    if (in_window) {
        unmatched_markers++;
    }
    in_window = 1;
    window_start = instructions;
}

static void on_marker_end(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    (void)userdata;
    if (!in_window) {
        unmatched_markers++;
        return;
    }
    in_window = 0;
    if (n_windows == cap_windows) {
        size_t cap = cap_windows ? 2 * cap_windows : 64;
        uint64_t *grown = realloc(windows, cap * sizeof *grown);
        if (grown == NULL) {
            unmatched_markers++;
            return;
        }
        windows = grown;
        cap_windows = cap;
    }
    windows[n_windows++] = instructions - window_start;
}

static void on_foreign_exec(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    uint64_t pc = (uint64_t)(uintptr_t)userdata;
    record_violation(pc, pc, 2, "execute");
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t address, void *userdata)
{
    (void)vcpu;
    unsigned size = 1u << qemu_plugin_mem_size_shift(info);
    int store = qemu_plugin_mem_is_store(info);
    if (store && address >= stack.lo && address < stack.hi) {
        if (address < stack_low) {
            stack_low = address;
        }
        if (in_window && address < window_stack_low) {
            window_stack_low = address;
        }
    }
    for (int i = 0; i < n_allowed; i++) {
        if (inside(&allowed[i], address, size)) {
            return;
        }
    }
    record_violation((uint64_t)(uintptr_t)userdata, address, size, store ? "write" : "read");
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t tb_pc = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)tb_pc);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        void *pc_data = (void *)(uintptr_t)pc;
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &instructions, 1);
        if (pc == begin_pc) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (pc == end_pc) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        /* Only code outside the image gets a callback, so normal code pays nothing. */
        if (!inside(&code, pc, 2)) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_foreign_exec, QEMU_PLUGIN_CB_NO_REGS, pc_data);
        }
        qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, pc_data);
    }
}

static int parse_u64(const char *text, uint64_t *value)
{
    char *end;
    errno = 0;
    *value = strtoull(text, &end, 0);
    return errno == 0 && end != text && *end == '\0';
}

static int parse_region(const char *text, struct region *r)
{
    char buf[64];
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : 0;
    if (colon == NULL || n >= sizeof buf) {
        return 0;
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    return parse_u64(buf, &r->lo) && parse_u64(colon + 1, &r->hi) && r->lo < r->hi;
}

static int parse_arg(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL) {
        return 0;
    }
    size_t klen = (size_t)(eq - arg);
    const char *value = eq + 1;
#define KEY(name) (klen == strlen(name) && strncmp(arg, name, klen) == 0)
    if (KEY("out")) {
        out_path = value;
        return *value != '\0';
    }
    if (KEY("limit")) {
        return parse_u64(value, &limit);
    }
    if (KEY("begin")) {
        return parse_u64(value, &begin_pc);
    }
    if (KEY("end")) {
        return parse_u64(value, &end_pc);
    }
    if (KEY("stack")) {
        return parse_region(value, &stack);
    }
    if (KEY("code")) {
        return parse_region(value, &code);
    }
    if (KEY("allow")) {
        return n_allowed < MAX_REGIONS && parse_region(value, &allowed[n_allowed++]);
    }
#undef KEY
    return 0;
}

TINYLR_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                             int argc, char **argv)
{
    if (info->version.cur < QEMU_PLUGIN_VERSION) {
        fprintf(stderr, "tinylr plugin: QEMU plugin API %d is older than %d\n", info->version.cur,
                QEMU_PLUGIN_VERSION);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (!parse_arg(argv[i])) {
            fprintf(stderr, "tinylr plugin: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "tinylr plugin: missing out=PATH\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
