/* The part of QEMU's TCG plugin API that tinylr uses, declared here because Debian's
 * and Ubuntu's qemu-system-arm export the API but ship no qemu-plugin.h.
 *
 * Checked against include/qemu/qemu-plugin.h of QEMU's history:
 *  - API version 1 (QEMU_PLUGIN_VERSION 1, QEMU_PLUGIN_MIN_VERSION 0): QEMU up to 8.2,
 *    so Debian 12's 7.2 and Ubuntu 24.04's 8.2. Everything below except the "v2" block
 *    has these signatures there (8.2 only added the QEMU_PLUGIN_API marker, empty on
 *    Linux). Run here: 7.2. Not run here: 8.2.
 *  - API version 2+ (QEMU 9.0, March 2024, "plugins: remove non per_vcpu inline operation
 *    from API"): MIN_VERSION became 2 and qemu_plugin_register_vcpu_insn_exec_inline was
 *    removed for ..._inline_per_vcpu, which adds to a "scoreboard" entry. Declared weak
 *    below so the plugin loads on either; tinylr_plugin.c picks the API at load time.
 *    Not run here (no QEMU >= 9 on this machine).
 * The functions are resolved from the QEMU executable when it dlopen()s the plugin. */
#ifndef TINYLR_QEMU_PLUGIN_API_H
#define TINYLR_QEMU_PLUGIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TINYLR_PLUGIN_EXPORT __attribute__((visibility("default")))
/* Present in some QEMU versions only: resolves to NULL where the executable lacks it. */
#define TINYLR_QEMU_OPTIONAL __attribute__((weak, visibility("default")))

typedef uint64_t qemu_plugin_id_t;

/* Passed to qemu_plugin_install(); valid only during that call. Same layout in v1..v4. */
typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;         /* opaque: a translation block being translated */
struct qemu_plugin_insn;       /* opaque: one guest instruction of that block */
struct qemu_plugin_scoreboard; /* opaque, v2+: per-vCPU storage for inline operations */

/* v2+: a uint64_t at `offset` inside each vCPU's scoreboard entry (passed by value). */
typedef struct {
    struct qemu_plugin_scoreboard *score;
    size_t offset;
} qemu_plugin_u64;

/* Packed access description handed to memory callbacks; query it with the helpers. */
typedef uint32_t qemu_plugin_meminfo_t;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_mem_rw {
    QEMU_PLUGIN_MEM_R = 1,
    QEMU_PLUGIN_MEM_W,
    QEMU_PLUGIN_MEM_RW,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64, /* 0 in every version (v2 appended STORE_U64) */
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);

/* Exported by the plugin. */
extern TINYLR_PLUGIN_EXPORT int qemu_plugin_version;
TINYLR_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                             int argc, char **argv);

/* Provided by QEMU, same in v1 and v2+. */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);

unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);

/* v1 only (removed in QEMU 9.0). */
TINYLR_QEMU_OPTIONAL void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                                     enum qemu_plugin_op op, void *ptr,
                                                                     uint64_t imm);

/* v2+ only (QEMU 9.0 and later). */
TINYLR_QEMU_OPTIONAL struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
TINYLR_QEMU_OPTIONAL void *qemu_plugin_scoreboard_find(struct qemu_plugin_scoreboard *score,
                                                       unsigned int vcpu_index);
TINYLR_QEMU_OPTIONAL void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(
    struct qemu_plugin_insn *insn, enum qemu_plugin_op op, qemu_plugin_u64 entry, uint64_t imm);

#endif
