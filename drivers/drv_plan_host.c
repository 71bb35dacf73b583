/* Host planning: subinterface <trunk>.<vid> and bridge per cluster VLAN.
 *
 * Rules, in the order they are applied:
 *  1. Validate the state (names, VIDs, interface lists) and the fence.
 *  2. Classify every link carrying a cluster mark: kept (desired and of
 *     the right shape), replaced (desired name, wrong shape: deleted and
 *     created again) or unwanted (deleted only if the view is complete).
 *  3. Deletions first, so that names are free for the creations. Several
 *     deletions move the links into the trash group and delete the group
 *     in one request: the kernel then unregisters them in one batch, one
 *     RCU grace period for all instead of one each.
 *  4. Per desired VLAN: create or repair the bridge, then the
 *     subinterface, then enslave the VM interfaces.
 *  5. Release unmarked interfaces from kept bridges they should not be in.
 */
#include "drv_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mp.h"
#include "drv_mark.h"

#define ERR(code, ...)                                                         \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

enum { UNWANTED = 0, KEEP = 1, REPLACE = 2 };

struct hplan {
    const struct drv_host_cfg *cfg;
    const struct drv_host_state *want;
    const struct drv_links *have;
    struct drv_plan *p;
    const struct drv_link *trunk;
    struct drv_mark *marks; /* per link of have */
    uint8_t *fate;          /* per link: UNWANTED, KEEP, REPLACE */
    uint32_t *vlan_of;      /* per link: desired vlan index + 1, or 0 */
    char *errmsg;
    size_t errlen;
};

static size_t pos(const struct hplan *h, const struct drv_link *k)
{
    return (size_t)(k - h->have->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each VM interface may appear in one VLAN only. */
static int check_ifaces(const struct drv_host_state *w, char *errmsg,
                        size_t errlen)
{
    size_t total = 0, k = 0;
    for (uint32_t i = 0; i < w->nvlans; i++)
        total += w->vlans[i].nifaces;
    const char **all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        ERR(-ENOMEM, "out of memory");
    for (uint32_t i = 0; i < w->nvlans; i++)
        for (uint32_t j = 0; j < w->vlans[i].nifaces; j++)
            all[k++] = w->vlans[i].ifaces[j];
    qsort(all, total, sizeof *all, cmp_str);
    for (size_t i = 1; i < total; i++)
        if (strcmp(all[i - 1], all[i]) == 0) {
            snprintf(errmsg, errlen, "iface %s: listed in two VLANs", all[i]);
            free(all);
            return -EINVAL;
        }
    free(all);
    return 0;
}

static int check_vlan(const struct drv_host_state *w,
                      const struct drv_host_vlan *v, char *errmsg,
                      size_t errlen)
{
    char name[IFNAMSIZ];
    if (v->vid < VLAN_MIN || v->vid > VLAN_MAX)
        ERR(-EINVAL, "vlan %u: not in 1..4094", (unsigned)v->vid);
    if (!v->cluster || !proto_name_ok(mp_cstr(v->cluster)))
        ERR(-EINVAL, "vlan %u: cluster \"%.64s\": not a valid name",
            (unsigned)v->vid, v->cluster ? v->cluster : "(null)");
    if (drv_subif_name(w->trunk, v->vid, name) != 0)
        ERR(-EINVAL, "vlan %u: \"%s.%u\" is longer than %d characters",
            (unsigned)v->vid, w->trunk, (unsigned)v->vid, IFNAMSIZ - 1);
    if (v->nifaces && !v->ifaces)
        ERR(-EINVAL, "vlan %u: ifaces is NULL", (unsigned)v->vid);
    for (uint32_t j = 0; j < v->nifaces; j++) {
        const char *f = v->ifaces[j];
        if (!drv_ifname_ok(f))
            ERR(-EINVAL,
                "vlan %u: iface \"%.32s\": not a valid interface "
                "name",
                (unsigned)v->vid, f ? f : "(null)");
        if (strcmp(f, w->trunk) == 0)
            ERR(-EINVAL, "vlan %u: iface %s: is the trunk", (unsigned)v->vid,
                f);
    }
    return 0;
}

static int check_state(const struct drv_host_state *w, char *errmsg,
                       size_t errlen)
{
    struct vlanset seen;
    if (!w->trunk || !drv_ifname_ok(w->trunk))
        ERR(-EINVAL, "trunk \"%.32s\": not a valid interface name",
            w->trunk ? w->trunk : "(null)");
    if (w->nvlans && !w->vlans)
        ERR(-EINVAL, "vlans is NULL");
    vlanset_clear(&seen);
    for (uint32_t i = 0; i < w->nvlans; i++) {
        int rc = check_vlan(w, &w->vlans[i], errmsg, errlen);
        if (rc)
            return rc;
        if (vlanset_has(&seen, w->vlans[i].vid))
            ERR(-EINVAL, "vlan %u: listed twice", (unsigned)w->vlans[i].vid);
        vlanset_add(&seen, w->vlans[i].vid);
    }
    return check_ifaces(w, errmsg, errlen);
}

/* Parses every mark once and applies the fence. */
static int read_marks(struct hplan *h)
{
    char *errmsg = h->errmsg;
    size_t errlen = h->errlen;
    for (size_t i = 0; i < h->have->n; i++) {
        const struct drv_link *k = &h->have->v[i];
        struct drv_mark *m = &h->marks[i];
        /* Created but not yet marked (drv.h): ours, mark to be written. */
        if (drv_mark_parse(k->alias, m) == DRV_MARK_NONE &&
            k->group == DRV_NEW_GROUP)
            m->kind = DRV_MARK_CLUSTER;
        if (m->kind == DRV_MARK_CLUSTER && h->want->index &&
            m->idx > h->want->index)
            ERR(-ESTALE,
                "%s: written by log index %" PRIu64 ", newer than "
                "this state's %" PRIu64,
                k->name, m->idx, h->want->index);
    }
    return 0;
}

static bool bridge_shape_ok(const struct drv_link *k)
{
    return k->kind == DRV_KIND_BRIDGE;
}

static bool subif_shape_ok(const struct hplan *h, const struct drv_link *k,
                           unsigned vid)
{
    return k->kind == DRV_KIND_VLAN && h->trunk &&
           k->link == h->trunk->ifindex && k->vid == vid &&
           k->vproto == DRV_ETH_P_8021Q;
}

/* Classifies the link that holds a desired name, if any. */
static int classify(struct hplan *h, const char *name, uint32_t vi,
                    bool shape_ok_bridge)
{
    char *errmsg = h->errmsg;
    size_t errlen = h->errlen;
    const struct drv_host_vlan *v = &h->want->vlans[vi];
    const struct drv_link *k = drv_links_find(h->have, name);
    if (!k)
        return 0;
    size_t i = pos(h, k);
    if (h->marks[i].kind != DRV_MARK_CLUSTER)
        ERR(-EEXIST, "vlan %u: %s exists %s: not ours, left alone",
            (unsigned)v->vid, name,
            h->marks[i].kind == DRV_MARK_NONE ? "without our mark"
                                              : "with a mark we do not know");
    bool ok =
        shape_ok_bridge ? bridge_shape_ok(k) : subif_shape_ok(h, k, v->vid);
    h->fate[i] = ok ? KEEP : REPLACE;
    h->vlan_of[i] = vi + 1;
    return 0;
}

static int classify_all(struct hplan *h)
{
    char br[IFNAMSIZ], sub[IFNAMSIZ];
    for (uint32_t vi = 0; vi < h->want->nvlans; vi++) {
        unsigned vid = h->want->vlans[vi].vid;
        drv_pattern_name(h->cfg->pattern, vid, br);
        drv_subif_name(h->want->trunk, vid, sub);
        int rc = classify(h, br, vi, true);
        if (rc == 0)
            rc = classify(h, sub, vi, false);
        if (rc)
            return rc;
    }
    return 0;
}

static bool goes(const struct hplan *h, size_t i)
{
    return h->marks[i].kind == DRV_MARK_CLUSTER &&
           (h->fate[i] == REPLACE ||
            (h->fate[i] == UNWANTED && h->want->complete));
}

/* The trash group is usable if nothing but our doomed links is in it. */
static bool trash_usable(const struct hplan *h, size_t ndel)
{
    if (!h->cfg->trash_group || ndel < 2)
        return false;
    for (size_t i = 0; i < h->have->n; i++)
        if (h->have->v[i].group == h->cfg->trash_group &&
            h->marks[i].kind != DRV_MARK_CLUSTER)
            return false;
    return true;
}

static struct drv_op *op_on(struct hplan *h, uint8_t type,
                            const struct drv_link *k)
{
    struct drv_op *op = drv_plan_add(h->p, type);
    if (op) {
        op->ifindex = k->ifindex;
        strcpy(op->name, k->name);
        op->ctx_vid = h->marks[pos(h, k)].vid;
    }
    return op;
}

#define NEW_OP(var, expr)                                                      \
    struct drv_op *var = (expr);                                               \
    if (!var) {                                                                \
        snprintf(h->errmsg, h->errlen, "out of memory");                       \
        return -ENOMEM;                                                        \
    }

static int plan_deletes(struct hplan *h)
{
    size_t ndel = 0;
    for (size_t i = 0; i < h->have->n; i++)
        ndel += goes(h, i);
    bool trash = trash_usable(h, ndel);
    for (size_t i = 0; i < h->have->n; i++) {
        const struct drv_link *k = &h->have->v[i];
        bool in_trash = h->cfg->trash_group && k->group == h->cfg->trash_group;
        if (goes(h, i) && !trash) {
            NEW_OP(op, op_on(h, DRV_OP_DEL, k));
        } else if (goes(h, i) && !in_trash) {
            NEW_OP(op, op_on(h, DRV_OP_SET, k));
            op->group = h->cfg->trash_group;
        } else if (!goes(h, i) && in_trash &&
                   h->marks[i].kind == DRV_MARK_CLUSTER) {
            /* Left there by a crash between move and delete: rescue it. */
            NEW_OP(op, op_on(h, DRV_OP_SET, k));
            op->group = 0;
        }
    }
    if (trash) {
        NEW_OP(op, drv_plan_add(h->p, DRV_OP_DEL_GROUP));
        op->group = h->cfg->trash_group;
    }
    return 0;
}

static void want_mark(const struct hplan *h, uint32_t vi, struct drv_mark *m)
{
    memset(m, 0, sizeof *m);
    m->kind = DRV_MARK_CLUSTER;
    m->vid = h->want->vlans[vi].vid;
    m->idx = h->want->index;
    snprintf(m->name, sizeof m->name, "%s", h->want->vlans[vi].cluster);
}

/* Switches IPv6 off on a link of ours (by name: it may be new). */
static int plan_no_ipv6(struct hplan *h, const char *name, uint16_t vid)
{
    if (!h->cfg->ipv6)
        return 0;
    NEW_OP(op, drv_plan_add(h->p, DRV_OP_NO_IPV6));
    strcpy(op->name, name);
    op->ctx_vid = vid;
    return 0;
}

/* A link made this round: mark it, switch IPv6 off, bring it up (three
 * operations, put in that order by drv_plan_order). */
static int plan_new_link(struct hplan *h, uint32_t vi, const char *name)
{
    struct drv_mark m;
    want_mark(h, vi, &m);
    NEW_OP(set, drv_plan_add(h->p, DRV_OP_SET));
    strcpy(set->name, name);
    drv_mark_format(&m, set->alias, sizeof set->alias);
    set->group = 0;
    set->ctx_vid = m.vid;
    if (plan_no_ipv6(h, name, m.vid) != 0)
        return -ENOMEM;
    NEW_OP(up, drv_plan_add(h->p, DRV_OP_SET));
    strcpy(up->name, name);
    up->up = 1;
    up->ctx_vid = m.vid;
    return 0;
}

/* An existing kept link: fix alias, master (if master >= 0) and state. */
static int plan_repair(struct hplan *h, uint32_t vi, const struct drv_link *k,
                       const struct drv_link *master)
{
    struct drv_mark m;
    want_mark(h, vi, &m);
    bool alias = !drv_mark_same(&m, &h->marks[pos(h, k)]);
    bool remaster = master && k->master != master->ifindex;
    bool up = !(k->flags & IFF_UP);
    bool regroup = k->group == DRV_NEW_GROUP;
    if (k->ipv6_on && plan_no_ipv6(h, k->name, m.vid) != 0)
        return -ENOMEM;
    if (!alias && !remaster && !up && !regroup)
        return 0;
    NEW_OP(op, op_on(h, DRV_OP_SET, k));
    if (alias)
        drv_mark_format(&m, op->alias, sizeof op->alias);
    if (regroup)
        op->group = 0;
    if (remaster) {
        op->master = master->ifindex;
        strcpy(op->mname, master->name);
    }
    op->up = up;
    op->ctx_vid = m.vid;
    return 0;
}

static const struct drv_link *kept(const struct hplan *h, const char *name)
{
    const struct drv_link *k = drv_links_find(h->have, name);
    return k && h->fate[pos(h, k)] == KEEP ? k : NULL;
}

static int plan_bridge(struct hplan *h, uint32_t vi, const char *br)
{
    const struct drv_link *b = kept(h, br);
    if (b)
        return plan_repair(h, vi, b, NULL);
    NEW_OP(op, drv_plan_add(h->p, DRV_OP_ADD_BRIDGE));
    strcpy(op->name, br);
    op->group = DRV_NEW_GROUP;
    op->ctx_vid = h->want->vlans[vi].vid;
    return plan_new_link(h, vi, br);
}

static int plan_subif(struct hplan *h, uint32_t vi, const char *sub,
                      const struct drv_link *b)
{
    const struct drv_link *s = kept(h, sub);
    if (s)
        return plan_repair(h, vi, s, b);
    NEW_OP(op, drv_plan_add(h->p, DRV_OP_ADD_VLAN));
    strcpy(op->name, sub);
    strcpy(op->lower, h->trunk->name);
    op->link = h->trunk->ifindex;
    op->vid = op->ctx_vid = h->want->vlans[vi].vid;
    op->vproto = DRV_ETH_P_8021Q;
    op->group = DRV_NEW_GROUP;
    if (b) {
        op->master = b->ifindex;
        strcpy(op->mname, b->name);
    }
    return plan_new_link(h, vi, sub);
}

static int plan_ifaces(struct hplan *h, uint32_t vi, const struct drv_link *b)
{
    const struct drv_host_vlan *v = &h->want->vlans[vi];
    for (uint32_t j = 0; j < v->nifaces; j++) {
        const struct drv_link *k = drv_links_find(h->have, v->ifaces[j]);
        if (!k) {
            if (!h->p->missing++)
                snprintf(h->p->note, sizeof h->p->note,
                         "vlan %u: iface %s: not found", (unsigned)v->vid,
                         v->ifaces[j]);
            continue;
        }
        if (h->marks[pos(h, k)].kind != DRV_MARK_NONE) {
            snprintf(h->errmsg, h->errlen,
                     "vlan %u: iface %s: carries a "
                     "virtcloud mark, not a VM interface",
                     (unsigned)v->vid, k->name);
            return -EINVAL;
        }
        if (b && k->master != b->ifindex) {
            NEW_OP(op, op_on(h, DRV_OP_SET, k));
            op->master = b->ifindex;
            strcpy(op->mname, b->name);
            op->ctx_vid = v->vid;
        }
    }
    return 0;
}

static int plan_vlans(struct hplan *h)
{
    char br[IFNAMSIZ], sub[IFNAMSIZ];
    char *errmsg = h->errmsg;
    size_t errlen = h->errlen;
    if (h->want->nvlans && !h->trunk)
        ERR(-ENODEV, "trunk %s: no such interface", h->want->trunk);
    for (uint32_t vi = 0; vi < h->want->nvlans; vi++) {
        unsigned vid = h->want->vlans[vi].vid;
        drv_pattern_name(h->cfg->pattern, vid, br);
        drv_subif_name(h->want->trunk, vid, sub);
        const struct drv_link *b = kept(h, br);
        int rc = plan_bridge(h, vi, br);
        if (rc == 0)
            rc = plan_subif(h, vi, sub, b);
        if (rc == 0)
            rc = plan_ifaces(h, vi, b);
        if (rc)
            return rc;
    }
    return 0;
}

static bool listed(const struct drv_host_vlan *v, const char *name)
{
    for (uint32_t j = 0; j < v->nifaces; j++)
        if (strcmp(v->ifaces[j], name) == 0)
            return true;
    return false;
}

/* Unmarked interfaces in a kept bridge that the state does not list. */
static int plan_releases(struct hplan *h)
{
    if (!h->want->complete)
        return 0;
    for (size_t i = 0; i < h->have->n; i++) {
        const struct drv_link *k = &h->have->v[i];
        const struct drv_link *m = drv_links_get(h->have, k->master);
        if (h->marks[i].kind != DRV_MARK_NONE || !m)
            continue;
        size_t mi = pos(h, m);
        if (h->fate[mi] != KEEP || m->kind != DRV_KIND_BRIDGE ||
            listed(&h->want->vlans[h->vlan_of[mi] - 1], k->name))
            continue;
        NEW_OP(op, op_on(h, DRV_OP_SET, k));
        op->master = 0;
        op->ctx_vid = h->marks[mi].vid;
    }
    return 0;
}

static int plan_host(struct hplan *h)
{
    int rc = read_marks(h);
    if (rc == 0)
        rc = classify_all(h);
    if (rc == 0)
        rc = plan_deletes(h);
    if (rc == 0)
        rc = plan_vlans(h);
    if (rc == 0)
        rc = plan_releases(h);
    return rc;
}

int drv_plan_host(const struct drv_host_cfg *cfg,
                  const struct drv_host_state *want,
                  const struct drv_links *have, struct drv_plan *p,
                  char *errmsg, size_t errlen)
{
    drv_plan_reset(p);
    int rc = check_state(want, errmsg, errlen);
    if (rc)
        return rc;
    size_t n = have->n ? have->n : 1;
    struct hplan h = {
        .cfg = cfg,
        .want = want,
        .have = have,
        .p = p,
        .trunk = drv_links_find(have, want->trunk),
        .marks = calloc(n, sizeof *h.marks),
        .fate = calloc(n, 1),
        .vlan_of = calloc(n, sizeof *h.vlan_of),
        .errmsg = errmsg,
        .errlen = errlen,
    };
    if (!h.marks || !h.fate || !h.vlan_of) {
        snprintf(errmsg, errlen, "out of memory");
        rc = -ENOMEM;
    } else {
        rc = plan_host(&h);
    }
    if (rc == 0 && (rc = drv_plan_order(p)) != 0)
        snprintf(errmsg, errlen, "out of memory");
    free(h.marks);
    free(h.fate);
    free(h.vlan_of);
    if (rc)
        drv_plan_reset(p);
    return rc;
}

/* --- read-back ----------------------------------------------------------- */

void drv_host_state_free(struct drv_host_state *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nvlans; i++) {
        struct drv_host_vlan *v = (struct drv_host_vlan *)&s->vlans[i];
        for (uint32_t j = 0; j < v->nifaces; j++)
            free((char *)v->ifaces[j]);
        free((char **)v->ifaces);
        free((char *)v->cluster);
    }
    free((struct drv_host_vlan *)s->vlans);
    free((char *)s->trunk);
    free(s);
}

/* Is bridge b (cluster-marked m) implemented: named by the pattern, with
 * its subinterface on the trunk, marked, enslaved and up? */
static bool implemented(const struct drv_host_cfg *cfg,
                        const struct drv_link *trunk,
                        const struct drv_links *have, const struct drv_link *b,
                        const struct drv_mark *m)
{
    char name[IFNAMSIZ];
    struct drv_mark sm;
    drv_pattern_name(cfg->pattern, m->vid, name);
    if (strcmp(name, b->name) != 0 || !(b->flags & IFF_UP) ||
        drv_subif_name(trunk->name, m->vid, name) != 0)
        return false;
    const struct drv_link *s = drv_links_find(have, name);
    return s && drv_mark_parse(s->alias, &sm) == DRV_MARK_CLUSTER &&
           sm.vid == m->vid && s->kind == DRV_KIND_VLAN &&
           s->link == trunk->ifindex && s->vid == m->vid &&
           s->vproto == DRV_ETH_P_8021Q && s->master == b->ifindex &&
           (s->flags & IFF_UP);
}

static int add_iface(struct drv_host_vlan *v, const char *name)
{
    const char **f = realloc((char **)v->ifaces, (v->nifaces + 1) * sizeof *f);
    if (!f)
        return -ENOMEM;
    v->ifaces = f;
    if (!(f[v->nifaces] = strdup(name)))
        return -ENOMEM;
    v->nifaces++;
    return 0;
}

static int read_vlan(const struct drv_links *have, const struct drv_link *b,
                     const struct drv_mark *m, struct drv_host_vlan *v)
{
    struct drv_mark km;
    v->vid = m->vid;
    if (!(v->cluster = strdup(m->name)))
        return -ENOMEM;
    for (size_t i = 0; i < have->n; i++) {
        const struct drv_link *k = &have->v[i];
        if (k->master == b->ifindex &&
            drv_mark_parse(k->alias, &km) == DRV_MARK_NONE &&
            add_iface(v, k->name) != 0)
            return -ENOMEM;
    }
    return 0;
}

static int read_host(const struct drv_host_cfg *cfg,
                     const struct drv_link *trunk, const struct drv_links *have,
                     struct drv_host_state *s)
{
    struct drv_mark m;
    struct drv_host_vlan *vl = calloc(have->n ? have->n : 1, sizeof *vl);
    if (!vl)
        return -ENOMEM;
    s->vlans = vl;
    for (size_t i = 0; trunk && i < have->n; i++) {
        const struct drv_link *b = &have->v[i];
        if (b->kind != DRV_KIND_BRIDGE ||
            drv_mark_parse(b->alias, &m) != DRV_MARK_CLUSTER ||
            !implemented(cfg, trunk, have, b, &m))
            continue;
        if (m.idx > s->index)
            s->index = m.idx;
        if (read_vlan(have, b, &m, &vl[s->nvlans++]) != 0)
            return -ENOMEM;
    }
    return 0;
}

int drv_read_host(const struct drv_host_cfg *cfg, const char *trunk,
                  const struct drv_links *have, struct drv_host_state **out)
{
    struct drv_host_state *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s || !(s->trunk = strdup(trunk))) {
        free(s);
        return -ENOMEM;
    }
    s->complete = true;
    int rc = read_host(cfg, drv_links_find(have, trunk), have, s);
    if (rc) {
        drv_host_state_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
