/* Internal to drivers/: the instance base every back-end embeds first, and
 * the apply loop they share.
 */
#ifndef VC_DRIVERS_DRV_INT_H
#define VC_DRIVERS_DRV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv.h"
#include "drv_plan.h"

#define DRV_ROUNDS_MAX 4 /* dump-plan-exec rounds before giving up */

struct drv {
    const struct drv_class *cls;
    char label[64]; /* "linuxbridge br0": prefix of errmsg */
    bool log_on;
    char *log; /* owned; log_len bytes + NUL */
    size_t log_len, log_cap;
    struct drv_links links; /* scratch snapshot, reused between applies */
    struct drv_plan plan;   /* scratch plan */
};

/* Sets up the base (d is zeroed by the back-end's calloc). */
void drv_base_init(struct drv *d, const struct drv_class *cls,
                   const char *label);
/* Frees what the base owns (not d itself). */
void drv_base_close(struct drv *d);

/* A back-end's I/O. */
struct drv_io {
    /* Replaces *out (reset it first) by a snapshot of the links, indexed
     * with drv_links_index. brvlan: with bridge port VLANs (pv). */
    int (*dump)(struct drv *d, bool brvlan, struct drv_links *out, char *errmsg,
                size_t errlen);
    /* Performs ops[0..n) in order. ok[i] = 1 for each op performed.
     * Returns 0, or the error of the first failed op with *failed its
     * index and errmsg "<op as text>: <reason>". */
    int (*exec)(struct drv *d, const struct drv_op *ops, size_t n, uint8_t *ok,
                size_t *failed, char *errmsg, size_t errlen);
};

/* Plans against have into p (see drv_plan_host/drv_plan_switch). */
typedef int (*drv_plan_fn)(void *arg, const struct drv_links *have,
                           struct drv_plan *p, char *errmsg, size_t errlen);

/* Dump, plan, execute, until a plan comes out empty (at most
 * DRV_ROUNDS_MAX rounds). Adds to res; logs performed ops. Returns 0 or
 * the first error, errmsg as "vlan 42: <op>: <reason>" when the op
 * serves a cluster VLAN. */
int drv_converge(struct drv *d, const struct drv_io *io, bool brvlan,
                 drv_plan_fn plan, void *arg, struct drv_result *res,
                 char *errmsg, size_t errlen);

/* Prefixes errmsg with "fmt...: " in place (raft's ErrMsgWrapf). */
void drv_errwrap(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The classes. */
extern const struct drv_class drv_host_class;
extern const struct drv_class drv_linuxbr_class;
extern const struct drv_class drv_dryrun_class;
extern const struct drv_class drv_ssh_class;

/* Appends one line to d's operation log if it is on (back-ends that do
 * not go through drv_converge, like ssh, log their own operations). */
void drv_log_append(struct drv *d, const char *line);

#endif
