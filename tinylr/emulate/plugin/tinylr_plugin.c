/* tinylr's QEMU TCG plugin: exact measurements of one firmware run.
 *
 * - instructions: an inline counter add on every instruction (not per block: a block
 *   can be cut short by an exception or I/O, and block counts then over-count);
 * - histogram: an inline add per instruction into a counter for its address, over the
 *   firmware's code (`hist`), from which Python attributes instructions to functions;
 * - cycle estimate: an inline add of the instruction's cost (given per address by Python
 *   in the plan file, in 1/100 cycles), plus the taken-branch extra when the next block
 *   does not start where the previous one ended (the only way control leaves a block
 *   early is a taken branch or an exception); flash line misses of a direct-mapped
 *   model of the board's caches are counted, and Python prices them;
 * - probes: at the start of the blocks at given addresses (the marker functions, the
 *   entry of the model's invoke and the return address of each of its calls) the
 *   counters are logged, so Python cuts one inference into layers exactly;
 * - marker windows: instructions from the entry of tinylr_marker_begin up to (not
 *   including) the entry of tinylr_marker_end;
 * - stack low-water: the lowest address stored to within [stack_lo, stack_hi), over the
 *   whole run and during marker windows only;
 * - bounds: every load and store must fall inside an allowed region, and every executed
 *   instruction inside the code region; anything else is recorded as a violation;
 * - instruction limit: checked when each translation block starts; when reached, the
 *   results are written and QEMU exits with TINYLR_EXIT_LIMIT.
 *
 * Arguments (each `key=value` of `-plugin lib.so,key=value,...`):
 *   out=PATH  limit=N  begin=ADDR  end=ADDR  stack=LO:HI  code=LO:HI  allow=LO:HI (repeatable)
 *   plan=PATH (optional) lines: "hist LO HI", "flash LO HI LINE ILINES DLINES UNIFIED" (powers of two),
 *             "cost PC BASE TAKEN", "probe PC ID" (ID >= 2)
 * Results are written as JSON to PATH (via PATH.tmp and rename) when QEMU exits.
 *
 * API: version 1 (QEMU up to 8.2) adds inline to plain memory; version 2+ (QEMU 9.0 on)
 * only offers per-vCPU scoreboards. The constructor below picks the one the loading
 * QEMU has (see qemu_plugin_api.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

TINYLR_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* Runs inside dlopen(), before QEMU reads qemu_plugin_version. */
__attribute__((constructor)) static void choose_api_version(void)
{
    if (qemu_plugin_register_vcpu_insn_exec_inline == NULL &&
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu != NULL) {
        qemu_plugin_version = 2;
    }
}

#define TINYLR_EXIT_LIMIT 0x7C /* the emulate stage reads this status as "limit reached" */
#define MAX_REGIONS 8
#define MAX_VIOLATIONS 32 /* distinct violations kept in detail */
#define MAX_PROBE_RECORDS (1u << 22)
#define MAX_HIST_SLOTS (1u << 23) /* 16 MB of code */
#define COST_DEFAULT 100          /* 1 cycle, in 1/100 cycles */
#define NO_ADDRESS UINT64_MAX
#define PROBE_BEGIN 0
#define PROBE_END 1

/* Counters bumped by inline operations: [0] instructions, [1] cycles (1/100),
 * [2 + slot] executions of the instruction at hist_lo + 2 * slot; the last slot counts
 * instructions outside [hist_lo, hist_hi). */
enum { CTR_INSNS, CTR_CYCLES, CTR_HIST };

struct region {
    uint64_t lo, hi; /* [lo, hi) */
};

struct violation {
    uint64_t pc, address;
    unsigned size;
    const char *kind;
};

struct tb_info { /* one per translation; kept for the run */
    uint64_t start, end; /* [start, end) of the translated instructions */
    size_t first_slot, last_slot;
    int probe; /* -1, or the probe id of `start` */
};

struct probe {
    uint64_t pc;
    int id;
};

struct probe_record {
    int id;
    uint64_t instructions, cycles, fetch_misses, data_misses;
};

/* One vCPU (Cortex-M machines have one), so callbacks never race each other; only the
 * exit path may run on another thread, guarded by `results_written`. */
static int api_v1 = 1;
static uint64_t *v1_counters;                   /* API v1: plain memory */
static struct qemu_plugin_scoreboard *counters; /* API v2+: one entry for vCPU 0 */

static uint64_t limit = UINT64_MAX;
static int limit_hit;
static uint64_t last_pc = NO_ADDRESS; /* start of the last translation block entered */
static const struct tb_info *prev_tb;

static uint64_t begin_pc = NO_ADDRESS, end_pc = NO_ADDRESS;
static int in_window;
static uint64_t window_start;
static uint64_t *windows;
static size_t n_windows, cap_windows;
static uint64_t unmatched_markers;

static struct probe *probes;
static size_t n_probes, cap_probes;
static struct probe_record *records;
static size_t n_records, cap_records;
static uint64_t dropped_records;

static struct region stack = {0, 0};
static uint64_t stack_low = NO_ADDRESS, window_stack_low = NO_ADDRESS;

static struct region code = {0, UINT64_MAX};
static struct region allowed[MAX_REGIONS];
static int n_allowed;
static struct violation violations[MAX_VIOLATIONS];
static uint64_t n_violations; /* all of them */
static int n_details;          /* distinct ones kept in violations[] */

static struct region hist = {0, 0};
static size_t n_slots; /* + 1 for "outside" */
static uint32_t *base_cost, *taken_cost;
static uint64_t *taken_counts, *dmiss_counts, *fmiss_counts;

static struct region flash = {0, 0}; /* where instruction and data reads may miss */
static unsigned line_shift = 4;        /* line size 1 << line_shift bytes */
static uint64_t *itags, *dtags;
static uint64_t imask, dmask;          /* lines - 1; line counts are powers of two */
static uint64_t fetch_misses, data_misses, flash_reads;

static const char *out_path; /* argv stays valid while the plugin is loaded */
static const char *plan_path;
static int results_written;

static uint64_t *ctr(void)
{
    return api_v1 ? v1_counters : (uint64_t *)qemu_plugin_scoreboard_find(counters, 0);
}

static void add_inline(struct qemu_plugin_insn *insn, size_t index, uint64_t imm)
{
    if (api_v1) {
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &v1_counters[index], imm);
    } else {
        qemu_plugin_u64 entry = {counters, index * sizeof(uint64_t)};
        qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, entry, imm);
    }
}

static int inside(const struct region *r, uint64_t address, uint64_t size)
{
    return address >= r->lo && address < r->hi && size <= r->hi - address;
}

static size_t slot_of(uint64_t pc)
{
    return pc >= hist.lo && pc < hist.hi ? (size_t)((pc - hist.lo) / 2) : n_slots;
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

static void write_json(FILE *f)
{
    const uint64_t *c = ctr();
    fprintf(f, "{\"api\": %d, \"instructions\": %" PRIu64 ", \"cycles_centi\": %" PRIu64, api_v1 ? 1 : 2,
            c[CTR_INSNS], c[CTR_CYCLES]);
    fprintf(f, ", \"limit\": %" PRIu64 ", \"limit_hit\": %s, ", limit, limit_hit ? "true" : "false");
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
    fprintf(f, "], \"fetch_misses\": %" PRIu64 ", \"data_misses\": %" PRIu64 ", \"flash_reads\": %" PRIu64,
            fetch_misses, data_misses, flash_reads);
    fprintf(f, ", \"probe_records_dropped\": %" PRIu64 ", \"probes\": [", dropped_records);
    for (size_t i = 0; i < n_records; i++) {
        const struct probe_record *r = &records[i];
        fprintf(f, "%s[%d, %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", i ? ", " : "", r->id,
                r->instructions, r->cycles, r->fetch_misses, r->data_misses);
    }
    /* [pc, executions, taken, data misses, fetch misses] for every executed address */
    fprintf(f, "], \"hist_lo\": %" PRIu64 ", \"hist_outside\": %" PRIu64 ", \"histogram\": [", hist.lo,
            c[CTR_HIST + n_slots]);
    int first = 1;
    for (size_t s = 0; s < n_slots; s++) {
        if (c[CTR_HIST + s] || taken_counts[s] || dmiss_counts[s] || fmiss_counts[s]) {
            fprintf(f, "%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", first ? "" : ", ",
                    hist.lo + 2 * (uint64_t)s, c[CTR_HIST + s], taken_counts[s], dmiss_counts[s], fmiss_counts[s]);
            first = 0;
        }
    }
    fprintf(f, "]}\n");
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
    write_json(f);
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

static void log_probe(int id, const uint64_t *c)
{
    if (n_records == cap_records) {
        size_t cap = cap_records ? 2 * cap_records : 256;
        struct probe_record *grown = cap <= MAX_PROBE_RECORDS ? realloc(records, cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            dropped_records++;
            return;
        }
        records = grown;
        cap_records = cap;
    }
    records[n_records++] = (struct probe_record){id, c[CTR_INSNS], c[CTR_CYCLES], fetch_misses, data_misses};
}

static void on_probe(int id)
{
    const uint64_t *c = ctr();
    if (id == PROBE_BEGIN) {
        if (in_window) {
            unmatched_markers++;
        }
        in_window = 1;
        window_start = c[CTR_INSNS];
        log_probe(id, c);
    } else if (id == PROBE_END) {
        if (!in_window) {
            unmatched_markers++;
            return;
        }
        in_window = 0;
        log_probe(id, c);
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
        windows[n_windows++] = c[CTR_INSNS] - window_start;
    } else if (in_window) {
        log_probe(id, c);
    }
}

/* Direct-mapped stand-in for the cache (or line buffer) in front of flash. Shifts and
 * masks only: this runs for every flash load and every block executed. */
static int cache_miss(uint64_t *tags, uint64_t mask, uint64_t address)
{
    uint64_t line = address >> line_shift;
    uint64_t *tag = &tags[line & mask];
    if (*tag == line + 1) { /* +1: a zeroed tag means "empty" */
        return 0;
    }
    *tag = line + 1;
    return 1;
}

static void on_tb_exec(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    const struct tb_info *tb = userdata;
    uint64_t *c = ctr();
    if (prev_tb != NULL && prev_tb->end != tb->start) { /* the previous block's last instruction branched */
        taken_counts[prev_tb->last_slot]++;
        c[CTR_CYCLES] += taken_cost[prev_tb->last_slot];
    }
    prev_tb = tb;
    last_pc = tb->start;
    if (tb->probe >= 0) {
        on_probe(tb->probe);
    }
    if (itags != NULL && tb->start >= flash.lo && tb->end <= flash.hi) {
        for (uint64_t a = tb->start >> line_shift << line_shift; a < tb->end; a += (uint64_t)1 << line_shift) {
            if (cache_miss(itags, imask, a)) {
                fetch_misses++;
                fmiss_counts[tb->first_slot]++;
            }
        }
    }
    if (c[CTR_INSNS] >= limit) {
        limit_hit = 1;
        write_results();
        exit(TINYLR_EXIT_LIMIT); /* as semihosting SYS_EXIT does, from the vCPU thread */
    }
}

/* A probe address in the middle of a block (not reached by a branch): rare. */
static void on_probe_insn(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    on_probe((int)(intptr_t)userdata);
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
    uint64_t pc = (uint64_t)(uintptr_t)userdata;
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
    if (!store && dtags != NULL && address >= flash.lo && address < flash.hi) {
        flash_reads++;
        if (cache_miss(dtags, dmask, address)) {
            data_misses++;
            dmiss_counts[slot_of(pc)]++;
        }
    }
    for (int i = 0; i < n_allowed; i++) {
        if (inside(&allowed[i], address, size)) {
            return;
        }
    }
    record_violation(pc, address, size, store ? "write" : "read");
}

static int probe_at(uint64_t pc)
{
    for (size_t i = 0; i < n_probes; i++) {
        if (probes[i].pc == pc) {
            return probes[i].id;
        }
    }
    return -1;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct tb_info *info = calloc(1, sizeof *info); /* lives as long as the translation may run */
    if (info == NULL || n == 0) {
        free(info);
        return;
    }
    struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    info->start = qemu_plugin_tb_vaddr(tb);
    info->end = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
    info->first_slot = slot_of(info->start);
    info->last_slot = slot_of(qemu_plugin_insn_vaddr(last));
    info->probe = probe_at(info->start);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, info);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        size_t slot = slot_of(pc);
        void *pc_data = (void *)(uintptr_t)pc;
        add_inline(insn, CTR_INSNS, 1);
        add_inline(insn, CTR_CYCLES, slot < n_slots ? base_cost[slot] : COST_DEFAULT);
        add_inline(insn, CTR_HIST + slot, 1);
        int probe = i ? probe_at(pc) : -1;
        if (probe >= 0) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_probe_insn, QEMU_PLUGIN_CB_NO_REGS, (void *)(intptr_t)probe);
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

static int add_probe(uint64_t pc, int id)
{
    if (n_probes == cap_probes) {
        size_t cap = cap_probes ? 2 * cap_probes : 16;
        struct probe *grown = realloc(probes, cap * sizeof *grown);
        if (grown == NULL) {
            return 0;
        }
        probes = grown;
        cap_probes = cap;
    }
    probes[n_probes++] = (struct probe){pc, id};
    return 1;
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
    if (KEY("plan")) {
        plan_path = value;
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

/* Allocates the per-address tables once the histogram range is known. */
static int allocate_tables(void)
{
    if (hist.hi <= hist.lo) { /* no plan: the code region, if it is a sane size */
        hist = code.hi - code.lo <= 2ull * MAX_HIST_SLOTS ? code : (struct region){0, 0};
    }
    n_slots = (size_t)((hist.hi - hist.lo) / 2);
    if (n_slots > MAX_HIST_SLOTS) {
        fprintf(stderr, "tinylr plugin: histogram range of %zu instructions is too large\n", n_slots);
        return 0;
    }
    base_cost = malloc((n_slots + 1) * sizeof *base_cost);
    taken_cost = calloc(n_slots + 1, sizeof *taken_cost);
    taken_counts = calloc(n_slots + 1, sizeof *taken_counts);
    dmiss_counts = calloc(n_slots + 1, sizeof *dmiss_counts);
    fmiss_counts = calloc(n_slots + 1, sizeof *fmiss_counts);
    if (!base_cost || !taken_cost || !taken_counts || !dmiss_counts || !fmiss_counts) {
        return 0;
    }
    for (size_t s = 0; s <= n_slots; s++) {
        base_cost[s] = COST_DEFAULT;
    }
    size_t n_counters = CTR_HIST + n_slots + 1;
    if (api_v1) {
        v1_counters = calloc(n_counters, sizeof *v1_counters);
        return v1_counters != NULL;
    }
    counters = qemu_plugin_scoreboard_new(n_counters * sizeof(uint64_t));
    return counters != NULL;
}

/* The plan file: the histogram range and flash geometry first, then costs and probes. */
static int read_plan(void)
{
    FILE *f = fopen(plan_path, "r");
    if (f == NULL) {
        fprintf(stderr, "tinylr plugin: cannot read plan %s: %s\n", plan_path, strerror(errno));
        return 0;
    }
    char line[256];
    int ok = 1, tables = 0;
    unsigned long lineno = 0;
    while (ok && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        uint64_t a, b, c, d, e, u;
        int id;
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "hist %" SCNi64 " %" SCNi64, &a, &b) == 2 && a < b) {
            hist = (struct region){a, b};
        } else if (sscanf(line, "flash %" SCNi64 " %" SCNi64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                          &a, &b, &c, &d, &e, &u) == 6 && a < b && c > 0) {
            flash = (struct region){a, b};
            line_shift = 0;
            while (((uint64_t)1 << line_shift) < c) {
                line_shift++;
            }
            d = d ? d : 1;
            e = e ? e : 1;
            ok = ((uint64_t)1 << line_shift) == c && (d & (d - 1)) == 0 && (e & (e - 1)) == 0;
            imask = d - 1;
            dmask = u ? imask : e - 1;
            itags = ok ? calloc(d, sizeof *itags) : NULL;
            dtags = u ? itags : (ok ? calloc(e, sizeof *dtags) : NULL);
            ok = ok && itags != NULL && dtags != NULL;
        } else if (sscanf(line, "cost %" SCNi64 " %" SCNu64 " %" SCNu64, &a, &b, &c) == 3) {
            if (!tables) {
                ok = allocate_tables();
                tables = 1;
            }
            size_t slot = slot_of(a);
            if (ok && slot < n_slots) {
                base_cost[slot] = (uint32_t)b;
                taken_cost[slot] = (uint32_t)c;
            }
        } else if (sscanf(line, "probe %" SCNi64 " %d", &a, &id) == 2 && id > PROBE_END) {
            ok = add_probe(a, id);
        } else {
            fprintf(stderr, "tinylr plugin: %s:%lu: cannot read '%.60s'\n", plan_path, lineno, line);
            ok = 0;
        }
    }
    fclose(f);
    if (ok && !tables) {
        ok = allocate_tables();
    }
    return ok;
}

TINYLR_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                             int argc, char **argv)
{
    api_v1 = qemu_plugin_version == 1;
    if (info->version.cur < qemu_plugin_version || info->version.min > qemu_plugin_version) {
        fprintf(stderr, "tinylr plugin: QEMU offers plugin API %d..%d, the plugin uses %d\n", info->version.min,
                info->version.cur, qemu_plugin_version);
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
    if ((begin_pc != NO_ADDRESS && !add_probe(begin_pc, PROBE_BEGIN)) ||
        (end_pc != NO_ADDRESS && !add_probe(end_pc, PROBE_END))) {
        return -1;
    }
    if (plan_path != NULL ? !read_plan() : !allocate_tables()) {
        fprintf(stderr, "tinylr plugin: cannot set up its tables (plan %s)\n", plan_path ? plan_path : "none");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
