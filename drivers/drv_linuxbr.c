/* Site edge switch simulated by a Linux bridge with VLAN filtering, whose
 * ports are the hosts' trunk ports and the uplink port (rtnetlink through
 * libmnl; VLAN membership as AF_BRIDGE IFLA_BRIDGE_VLAN_INFO).
 *
 * Config: "linuxbridge:BRIDGE:uplink=PORT[:HOST=PORT]...". The bridge and
 * its ports are the "hardware": they must exist and the ports must be
 * enslaved (the cabling is not ours to do). The driver turns VLAN
 * filtering on, manages VLAN membership of the configured ports and, for
 * a QinQ uplink, owns the 802.1ad S-VLAN device "vcq<svlan>" on the
 * uplink port (see drv_plan_switch.c for the rules).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "drv_int.h"
#include "drv_nl.h"

struct linuxbr {
    struct drv base; /* first */
    struct drv_switch_cfg cfg;
    struct drv_nl nl;
};

struct linuxbr_plan_arg {
    const struct drv_switch_cfg *cfg;
    const struct drv_switch_state *want;
};

static int linuxbr_dump(struct drv *d, bool brvlan, struct drv_links *out,
                        char *errmsg, size_t errlen)
{
    return drv_nl_dump(&((struct linuxbr *)d)->nl, brvlan, out, errmsg, errlen);
}

static int linuxbr_exec(struct drv *d, const struct drv_op *ops, size_t n,
                        uint8_t *ok, size_t *failed, char *errmsg,
                        size_t errlen)
{
    return drv_nl_exec(&((struct linuxbr *)d)->nl, ops, n, ok, failed, errmsg,
                       errlen);
}

static const struct drv_io linuxbr_io = {linuxbr_dump, linuxbr_exec};

static int linuxbr_plan(void *arg, const struct drv_links *have,
                        struct drv_plan *p, char *errmsg, size_t errlen)
{
    const struct linuxbr_plan_arg *a = arg;
    return drv_plan_switch(a->cfg, a->want, have, p, errmsg, errlen);
}

static int linuxbr_open(const char *args, struct drv **out, char *errmsg,
                        size_t errlen)
{
    char label[64];
    struct linuxbr *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = drv_switch_cfg_parse(&b->cfg, args, errmsg, errlen);
    if (rc == 0 && (rc = drv_nl_open(&b->nl, errmsg, errlen)) != 0)
        drv_switch_cfg_close(&b->cfg);
    if (rc) {
        free(b);
        return rc;
    }
    b->cfg.ipv6 = access("/proc/sys/net/ipv6/conf/default", F_OK) == 0;
    snprintf(label, sizeof label, "linuxbridge %s", b->cfg.bridge);
    drv_base_init(&b->base, &drv_linuxbr_class, label);
    *out = &b->base;
    return 0;
}

static void linuxbr_close(struct drv *d)
{
    struct linuxbr *b = (struct linuxbr *)d;
    drv_nl_close(&b->nl);
    drv_switch_cfg_close(&b->cfg);
    drv_base_close(d);
    free(b);
}

static int linuxbr_apply(struct drv *d, const struct drv_switch_state *want,
                         struct drv_result *res, char *errmsg, size_t errlen)
{
    struct linuxbr *b = (struct linuxbr *)d;
    struct linuxbr_plan_arg a = {&b->cfg, want};
    return drv_converge(d, &linuxbr_io, true, linuxbr_plan, &a, res, errmsg,
                        errlen);
}

static int linuxbr_read(struct drv *d, const struct vlanset *managed,
                        struct drv_switch_state **out, char *errmsg,
                        size_t errlen)
{
    struct linuxbr *b = (struct linuxbr *)d;
    int rc = drv_nl_dump(&b->nl, true, &d->links, errmsg, errlen);
    if (rc)
        return rc;
    rc = drv_read_switch(&b->cfg, managed, &d->links, out);
    if (rc)
        snprintf(errmsg, errlen, "read-back: out of memory");
    return rc;
}

const struct drv_class drv_linuxbr_class = {
    .name = "linuxbridge",
    .usage = "linuxbridge:BRIDGE:uplink=PORT[:HOST=PORT]...",
    .roles = DRV_ROLE_SWITCH,
    .open = linuxbr_open,
    .close = linuxbr_close,
    .switch_apply = linuxbr_apply,
    .switch_read = linuxbr_read,
};
