/* Driver registry, instance base, the shared apply loop and the public
 * wrappers that check roles and wrap messages.
 */
#include "drv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_int.h"

const struct drv_class *const drv_classes[] = {
    &drv_host_class,
    &drv_linuxbr_class,
    &drv_dryrun_class,
    &drv_ssh_class,
    NULL,
};

void drv_errwrap(char *errmsg, size_t errlen, const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    if (!errmsg || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t p = strlen(prefix) + 2, n = strnlen(errmsg, errlen - 1);
    if (p >= errlen)
        return;
    if (n + p >= errlen)
        n = errlen - p - 1;
    memmove(errmsg + p, errmsg, n);
    errmsg[p + n] = '\0';
    memcpy(errmsg, prefix, p - 2);
    memcpy(errmsg + p - 2, ": ", 2);
}

void drv_base_init(struct drv *d, const struct drv_class *cls,
                   const char *label)
{
    d->cls = cls;
    snprintf(d->label, sizeof d->label, "%s", label);
    drv_links_init(&d->links);
    drv_plan_init(&d->plan);
}

void drv_base_close(struct drv *d)
{
    free(d->log);
    d->log = NULL;
    drv_links_close(&d->links);
    drv_plan_close(&d->plan);
}

/* --- log ----------------------------------------------------------------- */

static void log_line(struct drv *d, const char *line)
{
    size_t n = strlen(line);
    if (d->log_len + n + 2 > d->log_cap) {
        size_t cap = (d->log_len + n + 2) * 2;
        char *p = realloc(d->log, cap);
        if (!p)
            return; /* the log is a diagnostic: losing a line is fine */
        d->log = p;
        d->log_cap = cap;
    }
    memcpy(d->log + d->log_len, line, n);
    d->log_len += n;
    d->log[d->log_len++] = '\n';
    d->log[d->log_len] = '\0';
}

void drv_log_append(struct drv *d, const char *line)
{
    if (d->log_on)
        log_line(d, line);
}

void drv_log_enable(struct drv *d, bool on)
{
    d->log_on = on;
}

char *drv_log_take(struct drv *d)
{
    char *s = d->log;
    if (!s || !d->log_len) {
        return NULL;
    }
    d->log = NULL;
    d->log_len = d->log_cap = 0;
    return s;
}

/* --- the apply loop ------------------------------------------------------ */

static int run_ops(struct drv *d, const struct drv_io *io,
                   struct drv_result *res, char *errmsg, size_t errlen)
{
    struct drv_plan *p = &d->plan;
    uint8_t *ok = calloc(p->n, 1);
    size_t failed = 0;
    char line[512];
    if (!ok) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = io->exec(d, p->v, p->n, ok, &failed, errmsg, errlen);
    for (size_t i = 0; i < p->n; i++) {
        if (!ok[i])
            continue;
        res->changes++;
        if (d->log_on) {
            drv_op_format(&p->v[i], line, sizeof line);
            log_line(d, line);
        }
    }
    if (rc && failed < p->n && p->v[failed].ctx_vid)
        drv_errwrap(errmsg, errlen, "vlan %u", (unsigned)p->v[failed].ctx_vid);
    free(ok);
    return rc;
}

int drv_converge(struct drv *d, const struct drv_io *io, bool brvlan,
                 drv_plan_fn plan, void *arg, struct drv_result *res,
                 char *errmsg, size_t errlen)
{
    char line[256];
    for (int round = 0; round < DRV_ROUNDS_MAX; round++) {
        int rc = io->dump(d, brvlan, &d->links, errmsg, errlen);
        if (rc)
            return rc;
        rc = plan(arg, &d->links, &d->plan, errmsg, errlen);
        if (rc)
            return rc;
        res->missing = d->plan.missing;
        memcpy(res->note, d->plan.note, sizeof res->note);
        if (d->plan.n == 0)
            return 0;
        rc = run_ops(d, io, res, errmsg, errlen);
        if (rc)
            return rc;
    }
    drv_op_format(&d->plan.v[0], line, sizeof line);
    snprintf(errmsg, errlen,
             "no convergence after %d rounds: still wants "
             "\"%s\" and %zu more",
             DRV_ROUNDS_MAX, line, d->plan.n - 1);
    return -EIO;
}

/* --- public wrappers ----------------------------------------------------- */

int drv_open(const char *config, struct drv **out, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (!config)
        config = "";
    size_t n = strcspn(config, ":");
    const char *args = config[n] == ':' ? config + n + 1 : "";
    for (const struct drv_class *const *c = drv_classes; *c; c++) {
        if (strlen((*c)->name) != n || strncmp((*c)->name, config, n) != 0)
            continue;
        int rc = (*c)->open(args, out, errmsg, errlen);
        if (rc)
            drv_errwrap(errmsg, errlen, "%s", (*c)->name);
        return rc;
    }
    snprintf(errmsg, errlen,
             "driver \"%.*s\": unknown (host, linuxbridge, "
             "dryrun, ssh)",
             (int)(n > 32 ? 32 : n), config);
    return -EINVAL;
}

void drv_close(struct drv *d)
{
    if (d)
        d->cls->close(d);
}

const struct drv_class *drv_class_of(const struct drv *d)
{
    return d->cls;
}

const char *drv_label(const struct drv *d)
{
    return d->label;
}

static int no_role(const struct drv *d, const char *role, char *errmsg,
                   size_t errlen)
{
    snprintf(errmsg, errlen, "%s: cannot act as a %s", d->label, role);
    return -EOPNOTSUPP;
}

static void res_zero(struct drv_result *res)
{
    memset(res, 0, sizeof *res);
}

int drv_host_apply(struct drv *d, const struct drv_host_state *want,
                   struct drv_result *res, char *errmsg, size_t errlen)
{
    struct drv_result tmp;
    res = res ? res : &tmp;
    res_zero(res);
    if (!d->cls->host_apply)
        return no_role(d, "host", errmsg, errlen);
    int rc = d->cls->host_apply(d, want, res, errmsg, errlen);
    if (rc)
        drv_errwrap(errmsg, errlen, "%s", d->label);
    return rc;
}

int drv_switch_apply(struct drv *d, const struct drv_switch_state *want,
                     struct drv_result *res, char *errmsg, size_t errlen)
{
    struct drv_result tmp;
    res = res ? res : &tmp;
    res_zero(res);
    if (!d->cls->switch_apply)
        return no_role(d, "switch", errmsg, errlen);
    int rc = d->cls->switch_apply(d, want, res, errmsg, errlen);
    if (rc)
        drv_errwrap(errmsg, errlen, "%s", d->label);
    return rc;
}

int drv_host_read(struct drv *d, const char *trunk, struct drv_host_state **out,
                  char *errmsg, size_t errlen)
{
    *out = NULL;
    if (!d->cls->host_read)
        return no_role(d, "host", errmsg, errlen);
    int rc = d->cls->host_read(d, trunk, out, errmsg, errlen);
    if (rc)
        drv_errwrap(errmsg, errlen, "%s", d->label);
    return rc;
}

int drv_switch_read(struct drv *d, const struct vlanset *managed,
                    struct drv_switch_state **out, char *errmsg, size_t errlen)
{
    *out = NULL;
    if (!d->cls->switch_read)
        return no_role(d, "switch", errmsg, errlen);
    int rc = d->cls->switch_read(d, managed, out, errmsg, errlen);
    if (rc)
        drv_errwrap(errmsg, errlen, "%s", d->label);
    return rc;
}
