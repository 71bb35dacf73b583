/* Switch planning: VLAN membership of a VLAN-filtering bridge's ports.
 *
 * Managed ports: the host ports of the config, the uplink port, and in
 * QinQ mode the S-VLAN device "vcq<svlan>" (an 802.1ad VLAN device on the
 * uplink port, enslaved to the bridge: the bridge tags frames with the
 * cluster's C-VLAN on that port and the device wraps them in the site's
 * S-VLAN on the wire). In QinQ mode the raw uplink port carries no managed
 * VID. A desired VID goes on a port as tagged, non-PVID; a managed VID on
 * a managed port that is not desired there is removed (complete views
 * only). See drv.h for why only managed VIDs are ever removed.
 */
#include "drv_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_mark.h"

#define ERR(code, ...)                                                         \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

/* A managed port and the VIDs it should carry. */
struct mport {
    const struct drv_link *k;
    const char *what; /* "host h1", "uplink", "qinq" */
    struct vlanset want;
};

struct splan {
    const struct drv_switch_cfg *cfg;
    const struct drv_switch_state *want;
    const struct drv_links *have;
    struct drv_plan *p;
    const struct drv_link *br, *up, *q; /* q: kept S-VLAN device */
    char qname[IFNAMSIZ];               /* the desired S-VLAN device's name */
    struct mport *ports;                /* cfg->nports + 2 */
    size_t nports;
    char *errmsg;
    size_t errlen;
};

static const struct drv_port_map *port_of(const struct drv_switch_cfg *c,
                                          const char *host)
{
    struct drv_port_map key;
    snprintf(key.host, sizeof key.host, "%s", host);
    size_t lo = 0, hi = c->nports;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(key.host, c->ports[mid].host);
        if (r == 0)
            return &c->ports[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int check_vlan(const struct drv_switch_cfg *c,
                      const struct drv_switch_state *w,
                      const struct drv_switch_vlan *v, char *errmsg,
                      size_t errlen)
{
    if (v->vid < VLAN_MIN || v->vid > VLAN_MAX)
        ERR(-EINVAL, "vlan %u: not in 1..4094", (unsigned)v->vid);
    if (!vlanset_has(&w->managed, v->vid))
        ERR(-EINVAL,
            "vlan %u: not in the managed set (the site's pool): "
            "it could never be removed",
            (unsigned)v->vid);
    if (v->nhosts && !v->hosts)
        ERR(-EINVAL, "vlan %u: hosts is NULL", (unsigned)v->vid);
    for (uint32_t j = 0; j < v->nhosts; j++)
        if (!v->hosts[j] || !port_of(c, v->hosts[j]))
            ERR(-EINVAL,
                "vlan %u: host %.64s: no port for it in the switch "
                "config",
                (unsigned)v->vid, v->hosts[j] ? v->hosts[j] : "(null)");
    return 0;
}

static int check_state(const struct drv_switch_cfg *c,
                       const struct drv_switch_state *w, char *errmsg,
                       size_t errlen)
{
    struct vlanset seen;
    if (w->uplink > UPLINK_QINQ)
        ERR(-EINVAL, "uplink mechanism %u: unknown", (unsigned)w->uplink);
    if (w->uplink == UPLINK_QINQ &&
        (w->svlan < VLAN_MIN || w->svlan > VLAN_MAX))
        ERR(-EINVAL, "qinq: svlan %u: not in 1..4094", (unsigned)w->svlan);
    if (w->nvlans && !w->vlans)
        ERR(-EINVAL, "vlans is NULL");
    vlanset_clear(&seen);
    for (uint32_t i = 0; i < w->nvlans; i++) {
        int rc = check_vlan(c, w, &w->vlans[i], errmsg, errlen);
        if (rc)
            return rc;
        if (vlanset_has(&seen, w->vlans[i].vid))
            ERR(-EINVAL, "vlan %u: listed twice", (unsigned)w->vlans[i].vid);
        vlanset_add(&seen, w->vlans[i].vid);
    }
    return 0;
}

#define NEW_OP(var, expr)                                                      \
    struct drv_op *var = (expr);                                               \
    if (!var) {                                                                \
        snprintf(s->errmsg, s->errlen, "out of memory");                       \
        return -ENOMEM;                                                        \
    }

static bool is_qinq(const struct splan *s)
{
    return s->want->uplink == UPLINK_QINQ;
}

static bool qdev_shape_ok(const struct splan *s, const struct drv_link *k)
{
    return is_qinq(s) && k->kind == DRV_KIND_VLAN &&
           k->link == s->up->ifindex && k->vid == s->want->svlan &&
           k->vproto == DRV_ETH_P_8021AD;
}

/* Ours: marked for this bridge, or created and not yet marked (drv.h). */
static bool our_qdev(const struct splan *s, const struct drv_link *k,
                     struct drv_mark *m)
{
    int kind = drv_mark_parse(k->alias, m);
    if (kind == DRV_MARK_NONE)
        return k->group == DRV_NEW_GROUP && strcmp(k->name, s->qname) == 0;
    return kind == DRV_MARK_QINQ && strcmp(m->name, s->cfg->bridge) == 0;
}

/* S-VLAN devices of this bridge: fence, keep the right one, delete the
 * rest (a wrong-shaped one with the desired name always). */
static int plan_qdevs(struct splan *s, const char *qname)
{
    char *errmsg = s->errmsg;
    size_t errlen = s->errlen;
    struct drv_mark m;
    for (size_t i = 0; i < s->have->n; i++) {
        const struct drv_link *k = &s->have->v[i];
        if (!our_qdev(s, k, &m))
            continue;
        if (s->want->index && m.idx > s->want->index)
            ERR(-ESTALE,
                "%s: written by log index %" PRIu64 ", newer than "
                "this state's %" PRIu64,
                k->name, m.idx, s->want->index);
        bool named = is_qinq(s) && strcmp(k->name, qname) == 0;
        if (named && qdev_shape_ok(s, k)) {
            s->q = k;
            continue;
        }
        if (!named && !s->want->complete)
            continue;
        NEW_OP(op, drv_plan_add(s->p, DRV_OP_DEL));
        op->ifindex = k->ifindex;
        strcpy(op->name, k->name);
    }
    return 0;
}

static void qinq_mark(const struct splan *s, struct drv_mark *m)
{
    memset(m, 0, sizeof *m);
    m->kind = DRV_MARK_QINQ;
    m->vid = s->want->svlan;
    m->idx = s->want->index;
    snprintf(m->name, sizeof m->name, "%s", s->cfg->bridge);
}

static int plan_qdev_new(struct splan *s, const char *qname)
{
    struct drv_mark m;
    qinq_mark(s, &m);
    NEW_OP(add, drv_plan_add(s->p, DRV_OP_ADD_VLAN));
    strcpy(add->name, qname);
    strcpy(add->lower, s->up->name);
    add->link = s->up->ifindex;
    add->vid = s->want->svlan;
    add->vproto = DRV_ETH_P_8021AD;
    add->master = s->br->ifindex;
    add->group = DRV_NEW_GROUP;
    strcpy(add->mname, s->br->name);
    NEW_OP(set, drv_plan_add(s->p, DRV_OP_SET));
    strcpy(set->name, qname);
    drv_mark_format(&m, set->alias, sizeof set->alias);
    set->group = 0;
    if (s->cfg->ipv6) {
        NEW_OP(no6, drv_plan_add(s->p, DRV_OP_NO_IPV6));
        strcpy(no6->name, qname);
    }
    NEW_OP(up, drv_plan_add(s->p, DRV_OP_SET));
    strcpy(up->name, qname);
    up->up = 1;
    return 0;
}

static int plan_qdev_repair(struct splan *s)
{
    struct drv_mark m, have;
    qinq_mark(s, &m);
    our_qdev(s, s->q, &have);
    bool alias = !drv_mark_same(&m, &have);
    bool remaster = s->q->master != s->br->ifindex;
    bool up = !(s->q->flags & IFF_UP);
    bool regroup = s->q->group == DRV_NEW_GROUP;
    if (s->cfg->ipv6 && s->q->ipv6_on) {
        NEW_OP(no6, drv_plan_add(s->p, DRV_OP_NO_IPV6));
        strcpy(no6->name, s->q->name);
    }
    if (!alias && !remaster && !up && !regroup)
        return 0;
    NEW_OP(op, drv_plan_add(s->p, DRV_OP_SET));
    op->ifindex = s->q->ifindex;
    strcpy(op->name, s->q->name);
    if (regroup)
        op->group = 0;
    if (alias)
        drv_mark_format(&m, op->alias, sizeof op->alias);
    if (remaster) {
        op->master = s->br->ifindex;
        strcpy(op->mname, s->br->name);
    }
    op->up = up;
    return 0;
}

static int plan_qinq(struct splan *s)
{
    char *errmsg = s->errmsg;
    size_t errlen = s->errlen;
    const char *qname = s->qname;
    int rc = plan_qdevs(s, qname);
    if (rc || !is_qinq(s))
        return rc;
    const struct drv_link *k = drv_links_find(s->have, qname);
    struct drv_mark m;
    if (k && !our_qdev(s, k, &m))
        ERR(-EEXIST,
            "qinq: %s exists without our mark: not ours, left "
            "alone",
            qname);
    return s->q ? plan_qdev_repair(s) : plan_qdev_new(s, qname);
}

/* Finds or adds the managed port entry of link k. */
static struct mport *mport(struct splan *s, const struct drv_link *k,
                           const char *what)
{
    for (size_t i = 0; i < s->nports; i++)
        if (s->ports[i].k == k)
            return &s->ports[i];
    struct mport *m = &s->ports[s->nports++];
    m->k = k;
    m->what = what;
    vlanset_clear(&m->want);
    return m;
}

static int find_port(struct splan *s, const char *name, const char *what,
                     const char *host, const struct drv_link **out)
{
    char *errmsg = s->errmsg;
    size_t errlen = s->errlen;
    const struct drv_link *k = drv_links_find(s->have, name);
    if (!k)
        ERR(-ENODEV, "%s%s%s: port %s: no such interface", what,
            host ? " " : "", host ? host : "", name);
    if (k->master != s->br->ifindex)
        ERR(-ENODEV, "%s%s%s: port %s: not a port of bridge %s", what,
            host ? " " : "", host ? host : "", name, s->br->name);
    *out = k;
    return 0;
}

/* Lists the managed ports and fills in what each should carry. */
static int collect_ports(struct splan *s)
{
    const struct drv_link *k;
    for (size_t i = 0; i < s->cfg->nports; i++) {
        const struct drv_port_map *pm = &s->cfg->ports[i];
        int rc = find_port(s, pm->port, "host", pm->host, &k);
        if (rc)
            return rc;
        mport(s, k, "host");
    }
    if (!is_qinq(s)) {
        int rc = find_port(s, s->up->name, "uplink", NULL, &k);
        if (rc)
            return rc;
    }
    struct mport *upl =
        s->up->master == s->br->ifindex ? mport(s, s->up, "uplink") : NULL;
    struct mport *q = s->q ? mport(s, s->q, "qinq") : NULL;
    struct mport *carrier = is_qinq(s) ? q : upl;
    for (uint32_t i = 0; i < s->want->nvlans; i++) {
        const struct drv_switch_vlan *v = &s->want->vlans[i];
        for (uint32_t j = 0; j < v->nhosts; j++) {
            const struct drv_port_map *pm = port_of(s->cfg, v->hosts[j]);
            vlanset_add(
                &mport(s, drv_links_find(s->have, pm->port), "host")->want,
                v->vid);
        }
        if (v->uplink && carrier)
            vlanset_add(&carrier->want, v->vid);
    }
    return 0;
}

static int port_op(struct splan *s, const struct mport *m, uint8_t type,
                   unsigned vid)
{
    NEW_OP(op, drv_plan_add(s->p, type));
    op->ifindex = m->k->ifindex;
    strcpy(op->name, m->k->name);
    op->vid = (uint16_t)vid;
    op->ctx_vid = (uint16_t)vid;
    return 0;
}

static int plan_port(struct splan *s, const struct mport *m)
{
    static const struct drv_portvlans none;
    const struct drv_portvlans *pv = m->k->pv ? m->k->pv : &none;
    for (unsigned w = 0; w < VLANSET_WORDS; w++) {
        uint64_t want = m->want.w[w];
        uint64_t have = pv->vids.w[w] & ~pv->untagged.w[w];
        uint64_t add = want & ~have;
        uint64_t del = s->want->complete
                           ? pv->vids.w[w] & s->want->managed.w[w] & ~want
                           : 0;
        for (unsigned b = 0; b < 64; b++) {
            unsigned vid = w * 64 + b;
            bool fixpvid = (want >> b & 1) && pv->pvid == vid;
            int rc = 0;
            if ((add >> b & 1) || fixpvid)
                rc = port_op(s, m, DRV_OP_PORT_VLAN_ADD, vid);
            else if (del >> b & 1)
                rc = port_op(s, m, DRV_OP_PORT_VLAN_DEL, vid);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int plan_switch(struct splan *s)
{
    char *errmsg = s->errmsg;
    size_t errlen = s->errlen;
    s->br = drv_links_find(s->have, s->cfg->bridge);
    if (!s->br || s->br->kind != DRV_KIND_BRIDGE)
        ERR(-ENODEV, "bridge %s: %s", s->cfg->bridge,
            s->br ? "not a bridge" : "no such interface");
    s->up = drv_links_find(s->have, s->cfg->uplink);
    if (!s->up)
        ERR(-ENODEV, "uplink %s: no such interface", s->cfg->uplink);
    if (s->want->uplink == UPLINK_QINQ)
        drv_qinq_name(s->want->svlan, s->qname);
    if (!s->br->vlan_filtering) {
        NEW_OP(op, drv_plan_add(s->p, DRV_OP_BR_FILTER));
        op->ifindex = s->br->ifindex;
        strcpy(op->name, s->br->name);
    }
    int rc = plan_qinq(s);
    if (rc == 0)
        rc = collect_ports(s);
    for (size_t i = 0; rc == 0 && i < s->nports; i++)
        rc = plan_port(s, &s->ports[i]);
    return rc;
}

int drv_plan_switch(const struct drv_switch_cfg *cfg,
                    const struct drv_switch_state *want,
                    const struct drv_links *have, struct drv_plan *p,
                    char *errmsg, size_t errlen)
{
    drv_plan_reset(p);
    int rc = check_state(cfg, want, errmsg, errlen);
    if (rc)
        return rc;
    struct splan s = {
        .cfg = cfg,
        .want = want,
        .have = have,
        .p = p,
        .ports = calloc(cfg->nports + 2, sizeof *s.ports),
        .errmsg = errmsg,
        .errlen = errlen,
    };
    if (!s.ports) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = plan_switch(&s);
    free(s.ports);
    if (rc == 0 && (rc = drv_plan_order(p)) != 0)
        snprintf(errmsg, errlen, "out of memory");
    if (rc)
        drv_plan_reset(p);
    return rc;
}

/* --- read-back ----------------------------------------------------------- */

void drv_switch_state_free(struct drv_switch_state *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nvlans; i++) {
        struct drv_switch_vlan *v = (struct drv_switch_vlan *)&s->vlans[i];
        for (uint32_t j = 0; j < v->nhosts; j++)
            free((char *)v->hosts[j]);
        free((char **)v->hosts);
    }
    free((struct drv_switch_vlan *)s->vlans);
    free(s);
}

/* VIDs a port carries as drivers configure them: tagged, not PVID. */
static void carried(const struct drv_link *k, struct vlanset *out)
{
    vlanset_clear(out);
    if (!k || !k->pv)
        return;
    for (unsigned w = 0; w < VLANSET_WORDS; w++)
        out->w[w] = k->pv->vids.w[w] & ~k->pv->untagged.w[w];
    vlanset_del(out, k->pv->pvid);
}

int drv_switch_vlan_add_host(struct drv_switch_vlan *v, const char *host)
{
    const char **h = realloc((char **)v->hosts, (v->nhosts + 1) * sizeof *h);
    if (!h)
        return -ENOMEM;
    v->hosts = h;
    if (!(h[v->nhosts] = strdup(host)))
        return -ENOMEM;
    v->nhosts++;
    return 0;
}

static const struct drv_link *find_qdev(const struct drv_switch_cfg *cfg,
                                        const struct drv_links *have,
                                        const struct drv_link *br,
                                        struct drv_mark *m)
{
    for (size_t i = 0; br && i < have->n; i++) {
        const struct drv_link *k = &have->v[i];
        if (drv_mark_parse(k->alias, m) == DRV_MARK_QINQ &&
            strcmp(m->name, cfg->bridge) == 0 && k->master == br->ifindex &&
            k->kind == DRV_KIND_VLAN && k->vproto == DRV_ETH_P_8021AD)
            return k;
    }
    return NULL;
}

static int read_vid(const struct drv_switch_cfg *cfg,
                    const struct drv_links *have, const struct drv_link *br,
                    const struct vlanset *up, unsigned vid,
                    struct drv_switch_state *s)
{
    struct drv_switch_vlan *v = (struct drv_switch_vlan *)&s->vlans[s->nvlans];
    struct vlanset c;
    v->vid = (uint16_t)vid;
    v->uplink = vlanset_has(up, vid);
    for (size_t i = 0; i < cfg->nports; i++) {
        const struct drv_link *k = drv_links_find(have, cfg->ports[i].port);
        if (!k || k->master != br->ifindex)
            continue;
        carried(k, &c);
        if (vlanset_has(&c, vid) && drv_switch_vlan_add_host(v, cfg->ports[i].host) != 0)
            return -ENOMEM;
    }
    if (v->nhosts || v->uplink)
        s->nvlans++;
    return 0;
}

static int read_switch(const struct drv_switch_cfg *cfg,
                       const struct drv_links *have, struct drv_switch_state *s)
{
    struct drv_mark m;
    struct vlanset up;
    const struct drv_link *br = drv_links_find(have, cfg->bridge);
    const struct drv_link *q = find_qdev(cfg, have, br, &m);
    const struct drv_link *u = drv_links_find(have, cfg->uplink);
    if (!br)
        return 0;
    s->uplink = q ? UPLINK_QINQ : UPLINK_XPONDER;
    s->svlan = q ? q->vid : 0;
    carried(q ? q : (u && u->master == br->ifindex ? u : NULL), &up);
    for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++) {
        if (!vlanset_has(&s->managed, vid))
            continue;
        int rc = read_vid(cfg, have, br, &up, vid, s);
        if (rc)
            return rc;
    }
    return 0;
}

int drv_read_switch(const struct drv_switch_cfg *cfg,
                    const struct vlanset *managed, const struct drv_links *have,
                    struct drv_switch_state **out)
{
    struct drv_switch_state *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->managed = *managed;
    s->complete = true;
    s->vlans = calloc(vlanset_count(managed) + 1, sizeof *s->vlans);
    int rc = s->vlans ? read_switch(cfg, have, s) : -ENOMEM;
    if (rc) {
        drv_switch_state_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
