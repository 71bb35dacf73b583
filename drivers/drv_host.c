/* Hypervisor host back-end: cluster VLANs as <trunk>.<vid> subinterfaces
 * enslaved to one bridge per VLAN, through rtnetlink (libmnl).
 *
 * Config: "host[:bridge=PATTERN][:group=N]" (drv.h). One instance per
 * network namespace: the instance regards every cluster-marked link of
 * its namespace as its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "drv_int.h"
#include "drv_nl.h"

struct host {
    struct drv base; /* first: a struct drv * is a struct host * */
    struct drv_host_cfg cfg;
    struct drv_nl nl;
};

struct host_plan_arg {
    const struct drv_host_cfg *cfg;
    const struct drv_host_state *want;
};

static int host_dump(struct drv *d, bool brvlan, struct drv_links *out,
                     char *errmsg, size_t errlen)
{
    return drv_nl_dump(&((struct host *)d)->nl, brvlan, out, errmsg, errlen);
}

static int host_exec(struct drv *d, const struct drv_op *ops, size_t n,
                     uint8_t *ok, size_t *failed, char *errmsg, size_t errlen)
{
    return drv_nl_exec(&((struct host *)d)->nl, ops, n, ok, failed, errmsg,
                       errlen);
}

static const struct drv_io host_io = {host_dump, host_exec};

static int host_plan(void *arg, const struct drv_links *have,
                     struct drv_plan *p, char *errmsg, size_t errlen)
{
    const struct host_plan_arg *a = arg;
    return drv_plan_host(a->cfg, a->want, have, p, errmsg, errlen);
}

static int host_open(const char *args, struct drv **out, char *errmsg,
                     size_t errlen)
{
    struct host *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = drv_host_cfg_parse(&h->cfg, args, errmsg, errlen);
    if (rc == 0)
        rc = drv_nl_open(&h->nl, errmsg, errlen);
    if (rc) {
        free(h);
        return rc;
    }
    /* Without IPv6 the kernel refuses AF_INET6 settings: skip them. */
    h->cfg.ipv6 = access("/proc/sys/net/ipv6/conf/default", F_OK) == 0;
    drv_base_init(&h->base, &drv_host_class, "host");
    *out = &h->base;
    return 0;
}

static void host_close(struct drv *d)
{
    struct host *h = (struct host *)d;
    drv_nl_close(&h->nl);
    drv_base_close(d);
    free(h);
}

static int host_apply(struct drv *d, const struct drv_host_state *want,
                      struct drv_result *res, char *errmsg, size_t errlen)
{
    struct host *h = (struct host *)d;
    struct host_plan_arg a = {&h->cfg, want};
    return drv_converge(d, &host_io, false, host_plan, &a, res, errmsg, errlen);
}

static int host_read(struct drv *d, const char *trunk,
                     struct drv_host_state **out, char *errmsg, size_t errlen)
{
    struct host *h = (struct host *)d;
    int rc = drv_nl_dump(&h->nl, false, &d->links, errmsg, errlen);
    if (rc)
        return rc;
    rc = drv_read_host(&h->cfg, trunk, &d->links, out);
    if (rc)
        snprintf(errmsg, errlen, "read-back: out of memory");
    return rc;
}

const struct drv_class drv_host_class = {
    .name = "host",
    .usage = "host[:bridge=PATTERN][:group=N]",
    .roles = DRV_ROLE_HOST,
    .open = host_open,
    .close = host_close,
    .host_apply = host_apply,
    .host_read = host_read,
};
