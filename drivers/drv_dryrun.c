/* Dryrun back-end: a simulated network namespace in memory.
 *
 * It plans exactly like the real back-ends and executes the operations on
 * its model with the kernel's semantics (EEXIST, ENODEV, a deleted bridge
 * releases its ports, a port joins with VLAN 1 as untagged PVID, ...), so
 * its change counts and logs are what the real ones would be. The model
 * starts empty and is "cabled" on demand: the trunk and VM interfaces a
 * host state names, and the bridge "br0", the uplink "uplink0" and one
 * port "swpN" per host a switch state names, appear when first needed.
 *
 * Config: "dryrun[:LATENCY_MS[:FAIL_RATE[:SEED]]]": each apply sleeps
 * LATENCY_MS first; each operation fails with probability FAIL_RATE
 * (-EIO, "injected failure"), the operations before it having happened.
 */
#include "drv_dryrun.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drv_int.h"
#include "drv_mark.h"

#define SW_BRIDGE "br0"
#define SW_UPLINK "uplink0"

struct dryrun {
    struct drv base; /* first */
    unsigned latency_ms;
    double fail_rate;
    uint64_t rng;
    struct drv_links model;
    int next_ifindex;
    struct drv_host_cfg hcfg;
    struct drv_switch_cfg scfg; /* grows as hosts appear */
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* --- the model ------------------------------------------------------------
 * Linear lookups: the model is re-indexed only for planning, and dryrun
 * states are demo-sized. */

static struct drv_link *by_name(struct dryrun *r, const char *name)
{
    for (size_t i = 0; i < r->model.n; i++)
        if (strcmp(r->model.v[i].name, name) == 0)
            return &r->model.v[i];
    return NULL;
}

static struct drv_link *by_index(struct dryrun *r, int ifindex)
{
    for (size_t i = 0; ifindex > 0 && i < r->model.n; i++)
        if (r->model.v[i].ifindex == ifindex)
            return &r->model.v[i];
    return NULL;
}

static struct drv_link *target(struct dryrun *r, const struct drv_op *op)
{
    return op->ifindex ? by_index(r, op->ifindex) : by_name(r, op->name);
}

static struct drv_link *new_link(struct dryrun *r, const char *name,
                                 uint8_t kind)
{
    struct drv_link *k = drv_links_add(&r->model);
    if (!k)
        return NULL;
    k->ifindex = r->next_ifindex++;
    k->kind = kind;
    snprintf(k->name, sizeof k->name, "%s", name);
    return k;
}

static void release(struct drv_link *k)
{
    k->master = 0;
    free(k->pv);
    k->pv = NULL;
}

/* Enslaves k to bridge ifindex m; a new port gets VLAN 1 as untagged PVID
 * (the kernel's default_pvid). */
static int enslave(struct dryrun *r, struct drv_link *k, int m)
{
    struct drv_link *b = by_index(r, m);
    if (!b || b->kind != DRV_KIND_BRIDGE || b == k)
        return b ? -EINVAL : -ENODEV;
    if (k->master == m)
        return 0;
    release(k);
    if (!(k->pv = calloc(1, sizeof *k->pv)))
        return -ENOMEM;
    vlanset_add(&k->pv->vids, 1);
    vlanset_add(&k->pv->untagged, 1);
    k->pv->pvid = 1;
    k->master = m;
    return 0;
}

/* Removes link i and what goes with it; indexes in the model shift. */
static void remove_link(struct dryrun *r, int ifindex)
{
    for (size_t i = 0; i < r->model.n; i++) {
        struct drv_link *k = &r->model.v[i];
        if (k->master == ifindex)
            release(k);
    }
    for (size_t i = 0; i < r->model.n; i++)
        if (r->model.v[i].kind == DRV_KIND_VLAN &&
            r->model.v[i].link == ifindex) {
            remove_link(r, r->model.v[i].ifindex);
            i = (size_t)-1; /* the array changed: rescan */
        }
    for (size_t i = 0; i < r->model.n; i++)
        if (r->model.v[i].ifindex == ifindex) {
            free(r->model.v[i].pv);
            r->model.v[i] = r->model.v[--r->model.n];
            break;
        }
    free(r->model.by_name);
    r->model.by_name = NULL;
}

static int sim_add(struct dryrun *r, const struct drv_op *op)
{
    if (by_name(r, op->name))
        return -EEXIST;
    if (op->type == DRV_OP_ADD_VLAN && !by_index(r, op->link))
        return -ENODEV;
    if (op->master > 0 && !by_index(r, op->master))
        return -ENODEV;
    struct drv_link *k =
        new_link(r, op->name,
                 op->type == DRV_OP_ADD_VLAN ? DRV_KIND_VLAN : DRV_KIND_BRIDGE);
    if (!k)
        return -ENOMEM;
    if (op->group >= 0)
        k->group = (uint32_t)op->group;
    k->ipv6_on = true;
    if (op->type == DRV_OP_ADD_VLAN) {
        k->link = op->link;
        k->vid = op->vid;
        k->vproto = op->vproto;
    }
    return op->master > 0 ? enslave(r, k, op->master) : 0;
}

static int sim_set(struct dryrun *r, const struct drv_op *op)
{
    struct drv_link *k = target(r, op);
    if (!k)
        return -ENODEV;
    if (op->master > 0) {
        int rc = enslave(r, k, op->master);
        if (rc)
            return rc;
    } else if (op->master == 0) {
        release(k);
    }
    if (op->alias[0])
        snprintf(k->alias, sizeof k->alias, "%s", op->alias);
    if (op->group >= 0)
        k->group = (uint32_t)op->group;
    if (op->up)
        k->flags |= IFF_UP;
    return 0;
}

static int sim_del_group(struct dryrun *r, uint32_t group)
{
    for (size_t i = 0; i < r->model.n; i++)
        if (r->model.v[i].group == group) {
            remove_link(r, r->model.v[i].ifindex);
            i = (size_t)-1;
        }
    return 0;
}

static int sim_port_vlan(struct dryrun *r, const struct drv_op *op)
{
    struct drv_link *k = target(r, op);
    if (!k)
        return -ENODEV;
    if (!k->pv)
        return -EOPNOTSUPP;
    if (op->type == DRV_OP_PORT_VLAN_DEL) {
        if (!vlanset_has(&k->pv->vids, op->vid))
            return -ENOENT;
        vlanset_del(&k->pv->vids, op->vid);
    } else {
        vlanset_add(&k->pv->vids, op->vid);
    }
    vlanset_del(&k->pv->untagged, op->vid);
    if (k->pv->pvid == op->vid)
        k->pv->pvid = 0;
    return 0;
}

static int sim(struct dryrun *r, const struct drv_op *op)
{
    struct drv_link *k;
    switch (op->type) {
    case DRV_OP_ADD_BRIDGE:
    case DRV_OP_ADD_VLAN:
        return sim_add(r, op);
    case DRV_OP_SET:
        return sim_set(r, op);
    case DRV_OP_DEL:
        if (!target(r, op))
            return -ENODEV;
        remove_link(r, op->ifindex);
        return 0;
    case DRV_OP_DEL_GROUP:
        return sim_del_group(r, (uint32_t)op->group);
    case DRV_OP_PORT_VLAN_ADD:
    case DRV_OP_PORT_VLAN_DEL:
        return sim_port_vlan(r, op);
    case DRV_OP_NO_IPV6:
        if (!(k = target(r, op)))
            return -ENOENT; /* no /proc/sys/net/ipv6/conf/NAME */
        k->ipv6_on = false;
        return 0;
    case DRV_OP_BR_FILTER:
        if (!(k = target(r, op)) || k->kind != DRV_KIND_BRIDGE)
            return k ? -EOPNOTSUPP : -ENODEV;
        k->vlan_filtering = true;
        return 0;
    }
    return -EINVAL;
}

/* --- drv_io ----------------------------------------------------------------
 */

static int dryrun_dump(struct drv *d, bool brvlan, struct drv_links *out,
                       char *errmsg, size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    drv_links_reset(out);
    for (size_t i = 0; i < r->model.n; i++) {
        struct drv_link *k = drv_links_add(out);
        if (!k)
            goto nomem;
        *k = r->model.v[i];
        k->pv = NULL;
        if (brvlan && r->model.v[i].pv) {
            if (!(k->pv = malloc(sizeof *k->pv)))
                goto nomem;
            *k->pv = *r->model.v[i].pv;
        }
    }
    if (drv_links_index(out) == 0)
        return 0;
nomem:
    snprintf(errmsg, errlen, "out of memory");
    return -ENOMEM;
}

static int dryrun_exec(struct drv *d, const struct drv_op *ops, size_t n,
                       uint8_t *ok, size_t *failed, char *errmsg, size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    char line[384];
    for (size_t i = 0; i < n; i++) {
        double u = (double)(rng_next(&r->rng) >> 11) / 9007199254740992.0;
        int rc = u < r->fail_rate ? -EIO : sim(r, &ops[i]);
        if (rc) {
            *failed = i;
            drv_op_format(&ops[i], line, sizeof line);
            snprintf(errmsg, errlen, "%s: %s%s", line, strerror(-rc),
                     u < r->fail_rate ? " (injected failure)" : "");
            return rc;
        }
        ok[i] = 1;
    }
    *failed = n;
    return 0;
}

static const struct drv_io dryrun_io = {dryrun_dump, dryrun_exec};

/* --- cabling on demand -----------------------------------------------------
 */

static int ensure(struct dryrun *r, const char *name, const char *master)
{
    struct drv_link *k = by_name(r, name);
    if (!k && !(k = new_link(r, name, DRV_KIND_OTHER)))
        return -ENOMEM;
    k->flags |= IFF_UP;
    struct drv_link *m = master ? by_name(r, master) : NULL;
    return m && k->master != m->ifindex ? enslave(r, k, m->ifindex) : 0;
}

static int cable_host(struct dryrun *r, const struct drv_host_state *w)
{
    int rc = 0;
    if (w->trunk && drv_ifname_ok(w->trunk) && w->nvlans)
        rc = ensure(r, w->trunk, NULL);
    for (uint32_t i = 0; rc == 0 && w->vlans && i < w->nvlans; i++)
        for (uint32_t j = 0; rc == 0 && j < w->vlans[i].nifaces; j++) {
            const char *f = w->vlans[i].ifaces ? w->vlans[i].ifaces[j] : NULL;
            if (drv_ifname_ok(f) && !by_name(r, f))
                rc = ensure(r, f, NULL);
        }
    return rc;
}

static int by_host_cmp(const void *a, const void *b)
{
    return strcmp(((const struct drv_port_map *)a)->host,
                  ((const struct drv_port_map *)b)->host);
}

static int add_host_port(struct dryrun *r, const char *host)
{
    struct drv_switch_cfg *c = &r->scfg;
    for (size_t i = 0; i < c->nports; i++)
        if (strcmp(c->ports[i].host, host) == 0)
            return 0;
    struct drv_port_map *p = realloc(c->ports, (c->nports + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    c->ports = p;
    snprintf(p[c->nports].host, sizeof p->host, "%s", host);
    snprintf(p[c->nports].port, sizeof p->port, "swp%zu", c->nports + 1);
    c->nports++;
    int rc = ensure(r, p[c->nports - 1].port, SW_BRIDGE);
    qsort(c->ports, c->nports, sizeof *c->ports, by_host_cmp);
    return rc;
}

static int cable_switch(struct dryrun *r, const struct drv_switch_state *w)
{
    if (!by_name(r, SW_BRIDGE) && !new_link(r, SW_BRIDGE, DRV_KIND_BRIDGE))
        return -ENOMEM;
    by_name(r, SW_BRIDGE)->flags |= IFF_UP;
    int rc = ensure(r, SW_UPLINK, SW_BRIDGE);
    for (uint32_t i = 0; rc == 0 && w->vlans && i < w->nvlans; i++)
        for (uint32_t j = 0; rc == 0 && j < w->vlans[i].nhosts; j++) {
            const char *h = w->vlans[i].hosts ? w->vlans[i].hosts[j] : NULL;
            if (h && strlen(h) <= VC_NAME_MAX)
                rc = add_host_port(r, h);
        }
    return rc;
}

/* --- the class ---------------------------------------------------------------
 */

static int parse_args(struct dryrun *r, const char *args, char *errmsg,
                      size_t errlen)
{
    char buf[128], *end;
    snprintf(buf, sizeof buf, "%s", args);
    char *f[3] = {buf, NULL, NULL};
    for (int i = 1; i < 3 && f[i - 1] && (f[i] = strchr(f[i - 1], ':')); i++)
        *f[i]++ = '\0';
    if (f[0][0]) {
        unsigned long ms = strtoul(f[0], &end, 10);
        if (*end || ms > 600000 || f[0][0] == '-') {
            snprintf(errmsg, errlen, "latency \"%s\": not 0..600000 ms", f[0]);
            return -EINVAL;
        }
        r->latency_ms = (unsigned)ms;
    }
    if (f[1] && f[1][0]) {
        r->fail_rate = strtod(f[1], &end);
        if (*end || !(r->fail_rate >= 0 && r->fail_rate <= 1)) {
            snprintf(errmsg, errlen, "fail rate \"%s\": not 0..1", f[1]);
            return -EINVAL;
        }
    }
    if (f[2] && f[2][0]) {
        r->rng = strtoull(f[2], &end, 10);
        if (*end) {
            snprintf(errmsg, errlen, "seed \"%s\": not a number", f[2]);
            return -EINVAL;
        }
    }
    if (strchr(f[2] ? f[2] : "", ':')) {
        snprintf(errmsg, errlen, "\"%s\": too many fields", args);
        return -EINVAL;
    }
    return 0;
}

static int dryrun_open(const char *args, struct drv **out, char *errmsg,
                       size_t errlen)
{
    struct dryrun *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    r->rng = 1;
    int rc = parse_args(r, args, errmsg, errlen);
    if (rc == 0)
        rc = drv_host_cfg_parse(&r->hcfg, "", errmsg, errlen);
    if (rc) {
        free(r);
        return rc;
    }
    r->hcfg.ipv6 = true;
    r->scfg.ipv6 = true;
    r->next_ifindex = 2; /* 1 is lo's */
    drv_links_init(&r->model);
    strcpy(r->scfg.bridge, SW_BRIDGE);
    strcpy(r->scfg.uplink, SW_UPLINK);
    drv_base_init(&r->base, &drv_dryrun_class, "dryrun");
    r->base.log_on = true;
    *out = &r->base;
    return 0;
}

static void dryrun_close(struct drv *d)
{
    struct dryrun *r = (struct dryrun *)d;
    drv_links_close(&r->model);
    drv_switch_cfg_close(&r->scfg);
    drv_base_close(d);
    free(r);
}

static void pause_ms(unsigned ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (ms && nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

struct dryrun_plan_arg {
    struct dryrun *r;
    const void *want;
};

static int plan_host(void *arg, const struct drv_links *have,
                     struct drv_plan *p, char *errmsg, size_t errlen)
{
    struct dryrun_plan_arg *a = arg;
    return drv_plan_host(&a->r->hcfg, a->want, have, p, errmsg, errlen);
}

static int plan_switch(void *arg, const struct drv_links *have,
                       struct drv_plan *p, char *errmsg, size_t errlen)
{
    struct dryrun_plan_arg *a = arg;
    return drv_plan_switch(&a->r->scfg, a->want, have, p, errmsg, errlen);
}

static int dryrun_host_apply(struct drv *d, const struct drv_host_state *want,
                             struct drv_result *res, char *errmsg,
                             size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    struct dryrun_plan_arg a = {r, want};
    pause_ms(r->latency_ms);
    if (cable_host(r, want) != 0) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    return drv_converge(d, &dryrun_io, false, plan_host, &a, res, errmsg,
                        errlen);
}

static int dryrun_switch_apply(struct drv *d,
                               const struct drv_switch_state *want,
                               struct drv_result *res, char *errmsg,
                               size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    struct dryrun_plan_arg a = {r, want};
    pause_ms(r->latency_ms);
    if (cable_switch(r, want) != 0) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    return drv_converge(d, &dryrun_io, true, plan_switch, &a, res, errmsg,
                        errlen);
}

static int dryrun_host_read(struct drv *d, const char *trunk,
                            struct drv_host_state **out, char *errmsg,
                            size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    int rc = dryrun_dump(d, false, &d->links, errmsg, errlen);
    if (rc == 0 && (rc = drv_read_host(&r->hcfg, trunk, &d->links, out)))
        snprintf(errmsg, errlen, "read-back: out of memory");
    return rc;
}

static int dryrun_switch_read(struct drv *d, const struct vlanset *managed,
                              struct drv_switch_state **out, char *errmsg,
                              size_t errlen)
{
    struct dryrun *r = (struct dryrun *)d;
    int rc = dryrun_dump(d, true, &d->links, errmsg, errlen);
    if (rc == 0 && (rc = drv_read_switch(&r->scfg, managed, &d->links, out)))
        snprintf(errmsg, errlen, "read-back: out of memory");
    return rc;
}

const struct drv_class drv_dryrun_class = {
    .name = "dryrun",
    .usage = "dryrun[:LATENCY_MS[:FAIL_RATE[:SEED]]]",
    .roles = DRV_ROLE_HOST | DRV_ROLE_SWITCH,
    .open = dryrun_open,
    .close = dryrun_close,
    .host_apply = dryrun_host_apply,
    .host_read = dryrun_host_read,
    .switch_apply = dryrun_switch_apply,
    .switch_read = dryrun_switch_read,
};

/* --- hooks -------------------------------------------------------------------
 */

static struct dryrun *as_dryrun(struct drv *d)
{
    return d && d->cls == &drv_dryrun_class ? (struct dryrun *)d : NULL;
}

const struct drv_links *drv_dryrun_links(struct drv *d)
{
    struct dryrun *r = as_dryrun(d);
    if (!r || dryrun_dump(d, true, &d->links, NULL, 0) != 0)
        return NULL;
    return &d->links;
}

int drv_dryrun_link_add(struct drv *d, const char *name, int kind,
                        const char *master, const char *alias)
{
    struct dryrun *r = as_dryrun(d);
    if (!r || !drv_ifname_ok(name))
        return -EINVAL;
    if (by_name(r, name))
        return -EEXIST;
    struct drv_link *m = master ? by_name(r, master) : NULL;
    if (master && !m)
        return -ENODEV;
    int mi = m ? m->ifindex : 0; /* new_link may move the array */
    struct drv_link *k = new_link(r, name, (uint8_t)kind);
    if (!k)
        return -ENOMEM;
    k->flags |= IFF_UP;
    if (alias)
        snprintf(k->alias, sizeof k->alias, "%s", alias);
    return mi ? enslave(r, k, mi) : 0;
}

int drv_dryrun_link_del(struct drv *d, const char *name)
{
    struct dryrun *r = as_dryrun(d);
    struct drv_link *k = r ? by_name(r, name) : NULL;
    if (!k)
        return -ENODEV;
    remove_link(r, k->ifindex);
    return 0;
}

int drv_dryrun_link_up(struct drv *d, const char *name, bool up)
{
    struct dryrun *r = as_dryrun(d);
    struct drv_link *k = r ? by_name(r, name) : NULL;
    if (!k)
        return -ENODEV;
    k->flags = up ? k->flags | IFF_UP : k->flags & ~(unsigned)IFF_UP;
    return 0;
}
