#include "check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(...) return bad(err, errlen, __VA_ARGS__)

struct tally {
    struct vlanset used[VC_SITES_MAX]; /* rebuilt from the slots */
    uint32_t nslots[VC_SITES_MAX];
};

static int check_attachments(const struct fsm *f, const struct fsm_cluster *c,
                             char *err, size_t errlen)
{
    if (c->natt > FSM_ATTACH_MAX)
        BAD("cluster %s: %u attachments", c->name, c->natt);
    if (c->state == FSM_RELEASING && c->natt)
        BAD("cluster %s: released but still has %u attachments", c->name,
            c->natt);
    for (uint32_t j = 0; j < c->natt; j++) {
        const struct fsm_host *h = fsm_host_find(f, c->att[j].host);
        const struct fsm_slot *sl;
        if (!h || !h->live)
            BAD("cluster %s: attachment of unknown host %s", c->name,
                c->att[j].host);
        if (!proto_ifname_ok(mp_cstr(c->att[j].iface)))
            BAD("cluster %s: bad interface name %s", c->name,
                c->att[j].iface);
        sl = fsm_cluster_slot(c, h->site);
        if (!sl || sl->removing)
            BAD("cluster %s: attachment of %s at site %s, which it does not "
                "span", c->name, h->name, f->sites[h->site].name);
    }
    return 0;
}

static int check_cluster(const struct fsm *f, const struct fsm_cluster *c,
                         struct tally *t, char *err, size_t errlen)
{
    bool pending = false, active = false;
    if (c->vlan < VLAN_MIN || c->vlan > VLAN_MAX)
        BAD("cluster %s: VLAN %u out of range", c->name, c->vlan);
    if (c->nslots < 1 || c->gen < 1)
        BAD("cluster %s: %u sites, generation %llu", c->name, c->nslots,
            (unsigned long long)c->gen);
    if (fsm_cluster_find(f, c->name) != c)
        BAD("cluster %s: the name index does not find it", c->name);
    for (uint32_t j = 0; j < c->nslots; j++) {
        const struct fsm_slot *sl = &c->slots[j];
        if (sl->site >= VC_SITES_MAX || !f->sites[sl->site].live)
            BAD("cluster %s: slot at a dead site", c->name);
        const struct fsm_site *st = &f->sites[sl->site];
        for (uint32_t k = 0; k < j; k++)
            if (c->slots[k].site == sl->site)
                BAD("cluster %s: site %s listed twice", c->name, st->name);
        if (vlanset_has(&t->used[sl->site], c->vlan))
            BAD("I1: VLAN %u held by two clusters at site %s (one is %s)",
                c->vlan, st->name, c->name);
        if (!vlanset_has(&st->pool, c->vlan))
            BAD("I1: VLAN %u of cluster %s is outside the pool of site %s",
                c->vlan, c->name, st->name);
        vlanset_add(&t->used[sl->site], c->vlan);
        t->nslots[sl->site]++;
        if (sl->gen > c->gen || sl->applied > c->gen)
            BAD("cluster %s: site %s at generation %llu/%llu beyond %llu",
                c->name, st->name, (unsigned long long)sl->gen,
                (unsigned long long)sl->applied, (unsigned long long)c->gen);
        pending |= sl->applied < sl->gen;
        active |= !sl->removing;
        if (c->state == FSM_RELEASING && !sl->removing)
            BAD("cluster %s: released but kept at site %s", c->name,
                st->name);
    }
    if (c->state != FSM_RELEASING && !active)
        BAD("cluster %s: not released but every site is removing it",
            c->name);
    if (c->state != FSM_RELEASING &&
        c->state != (pending ? FSM_PENDING : FSM_READY))
        BAD("cluster %s: state %s, slots say %s", c->name,
            fsm_state_name(c->state), pending ? "pending" : "ready");
    return check_attachments(f, c, err, errlen);
}

static int check_sites(const struct fsm *f, const struct tally *t,
                       char *err, size_t errlen)
{
    uint32_t nsites = 0;
    for (int s = 0; s < VC_SITES_MAX; s++) {
        const struct fsm_site *st = &f->sites[s];
        if (!st->live) {
            if (t->nslots[s])
                BAD("dead site slot %d still spanned", s);
            continue;
        }
        nsites++;
        if (fsm_site_find(f, st->name) != st)
            BAD("site %s: the name index does not find it", st->name);
        if (!vlanset_equal(&st->used, &t->used[s]))
            BAD("I1: site %s: used bitmap disagrees with the clusters",
                st->name);
        for (int w = 0; w < VLANSET_WORDS; w++) {
            if (st->free.w[w] != (st->pool.w[w] & ~st->used.w[w]))
                BAD("site %s: free bitmap is not pool minus used", st->name);
            if (st->used.w[w] & ~st->pool.w[w])
                BAD("I1: site %s: a VLAN in use is outside its pool",
                    st->name);
        }
        if (st->nslots != t->nslots[s])
            BAD("site %s: %u slots counted, %u held", st->name, st->nslots,
                t->nslots[s]);
        if (st->id < 1 || st->id >= f->next_site_id)
            BAD("site %s: id %u, next %u", st->name, st->id,
                f->next_site_id);
    }
    if (nsites != f->nsites || f->site_map.len != nsites)
        BAD("%u live sites, nsites %u, index %u", nsites, f->nsites,
            f->site_map.len);
    return 0;
}

static int check_hosts(const struct fsm *f, char *err, size_t errlen)
{
    uint32_t hosts = 0;
    for (uint32_t i = 0; i < f->nhosts; i++) {
        const struct fsm_host *h = &f->hosts[i];
        if (!h->live)
            continue;
        hosts++;
        if (fsm_host_find(f, h->name) != h)
            BAD("host %s: the name index does not find it", h->name);
        if (!f->sites[h->site].live)
            BAD("host %s: at a dead site", h->name);
    }
    if (f->host_map.len != hosts)
        BAD("%u live hosts, index holds %u", hosts, f->host_map.len);
    return 0;
}

/* One host interface is attached to at most one cluster. */
static int check_att_unique(const struct fsm *f, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        for (uint32_t j = 0; c->live && j < c->natt; j++)
            for (uint32_t k = i; k < f->nclusters; k++) {
                const struct fsm_cluster *o = &f->clusters[k];
                for (uint32_t l = k == i ? j + 1 : 0; o->live && l < o->natt;
                     l++)
                    if (!strcmp(c->att[j].host, o->att[l].host) &&
                        !strcmp(c->att[j].iface, o->att[l].iface))
                        BAD("%s/%s is attached to %s and %s", c->att[j].host,
                            c->att[j].iface, c->name, o->name);
            }
    }
    return 0;
}

int check_fsm(const struct fsm *f, char *err, size_t errlen)
{
    struct tally *t = calloc(1, sizeof *t);
    uint32_t live = 0;
    int rv = 0;
    if (!t)
        BAD("out of memory");
    for (uint32_t i = 0; i < f->nclusters && rv == 0; i++) {
        if (!f->clusters[i].live)
            continue;
        live++;
        rv = check_cluster(f, &f->clusters[i], t, err, errlen);
    }
    if (rv == 0 && (live != f->live_clusters || f->cluster_map.len != live))
        rv = bad(err, errlen, "%u live clusters, counted %u, index %u", live,
                 f->live_clusters, f->cluster_map.len);
    if (rv == 0)
        rv = check_sites(f, t, err, errlen);
    free(t);
    if (rv == 0)
        rv = check_hosts(f, err, errlen);
    if (rv == 0 && f->dd_map.len != f->dd_len)
        rv = bad(err, errlen, "request-id index holds %u of %u ids",
                 f->dd_map.len, f->dd_len);
    if (rv == 0)
        rv = check_att_unique(f, err, errlen);
    return rv;
}

uint64_t check_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t check_digest(const struct fsm *f, size_t *len)
{
    struct mp_buf b;
    uint64_t h = 0;
    mp_buf_init(&b);
    if (fsm_snapshot(f, &b) == 0)
        h = check_hash(CHECK_HASH_INIT, b.data, b.len);
    if (len)
        *len = b.len;
    mp_buf_close(&b);
    return h;
}
