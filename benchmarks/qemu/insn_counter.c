/* insn_counter.c -- a QEMU TCG plugin counting executed guest instructions per address.
 *
 * Built and loaded by benchmarks/qemu_calibrate.py:
 *   gcc -shared -fPIC -O2 insn_counter.c -o libinsn_counter.so
 *   qemu-system-arm ... -plugin ./libinsn_counter.so,mark=0x<addr>,version=1 -d plugin -D log
 *
 * Every translated instruction whose address is below LIMIT gets an inline counter (the
 * same counter for every translation of that address, so retranslation never splits a
 * count); instructions above LIMIT go to one `other` counter. Whenever the translation block
 * starting at `mark` (the guest's marker function) executes, and once at exit, the plugin
 * writes "mark <k>" followed by "<address> <count>" for every address executed so far: the
 * difference of two consecutive dumps is what ran between two marker calls.
 *
 * Only the handful of plugin API functions declared below are used, so no QEMU headers are
 * needed. qemu_plugin_version is the plugin API version: 1 is what QEMU 7.x accepts (Debian
 * 12's 7.2 was used); later QEMUs raised their minimum, and the script rebuilds the plugin
 * with -DPLUGIN_API_VERSION=2 when QEMU refuses version 1.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PLUGIN_API_VERSION
#define PLUGIN_API_VERSION 1
#endif

/* ---- the subset of <qemu-plugin.h> used here ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);
/* ---- end of the subset ---- */

__attribute__((visibility("default"))) int qemu_plugin_version = PLUGIN_API_VERSION;

#define LIMIT 0x00400000u /* the AN386's 4 MB code SRAM at address 0 */

static uint64_t *counts; /* [LIMIT / 2]: one per halfword address */
static uint64_t other;
static uint64_t mark_addr = UINT64_MAX;
static unsigned marks;

static void dump(const char *what)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    uint32_t i;
    if (buf == NULL) {
        return;
    }
    len += (size_t)snprintf(buf, cap, "%s %u\nother %" PRIu64 "\n", what, marks++, other);
    for (i = 0; i < LIMIT / 2; ++i) {
        if (counts[i] == 0) {
            continue;
        }
        if (cap - len < 64) {
            char *grown = realloc(buf, cap *= 2);
            if (grown == NULL) {
                free(buf);
                return;
            }
            buf = grown;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%x %" PRIu64 "\n", 2 * i, counts[i]);
    }
    qemu_plugin_outs(buf);
    free(buf);
}

static void on_mark(unsigned int vcpu, void *userdata)
{
    (void)vcpu;
    (void)userdata;
    dump("mark");
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    size_t i;
    (void)id;
    if (qemu_plugin_tb_vaddr(tb) == mark_addr) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t addr = qemu_plugin_insn_vaddr(insn);
        uint64_t *slot = addr < LIMIT ? &counts[addr / 2] : &other;
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, slot, 1);
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    dump("exit");
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_addr = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1; /* Thumb bit */
        }
    }
    counts = calloc(LIMIT / 2, sizeof *counts);
    if (counts == NULL) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
