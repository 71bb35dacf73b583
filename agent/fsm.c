#include "fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"

/* --- keys for the indexes ---------------------------------------------- */

/* Names are NUL-terminated in arrays of VC_NAME_MAX + 1 bytes: equal to
 * key[0..len) iff the first len bytes match and the name ends there. */
static bool name_eq(const char *name, const char *key, size_t len)
{
    if (len > VC_NAME_MAX || name[len] != '\0')
        return false;
    /* Inline: memcmp's call cost more than these short names. */
    for (size_t i = 0; i < len; i++)
        if (name[i] != key[i])
            return false;
    return true;
}

static bool site_eq(const void *o, uint32_t i, const char *key, size_t len)
{
    return name_eq(((const struct fsm *)o)->sites[i].name, key, len);
}

static bool host_eq(const void *o, uint32_t i, const char *key, size_t len)
{
    return name_eq(((const struct fsm *)o)->hosts[i].name, key, len);
}

static bool cluster_eq(const void *o, uint32_t i, const char *key,
                       size_t len)
{
    return name_eq(((const struct fsm *)o)->clusters[i].name, key, len);
}

static const char *dd_key(const void *o, uint32_t i, size_t *n)
{
    const struct fsm *f = o;
    *n = f->dd[i].id_len;
    return f->dd[i].id;
}

int fsm_init(struct fsm *f)
{
    memset(f, 0, sizeof *f);
    f->next_site_id = 1;
    f->dd = calloc(FSM_DEDUPE_MAX, sizeof *f->dd);
    f->dd_filter = calloc(FSM_DD_GENS * FSM_DD_FILTER_WORDS,
                          sizeof *f->dd_filter);
    if (!f->dd || !f->dd_filter) {
        free(f->dd);
        free(f->dd_filter);
        f->dd = NULL;
        return VC_ENOMEM;
    }
    map_init_eq(&f->site_map, site_eq, f);
    map_init_eq(&f->host_map, host_eq, f);
    map_init_eq(&f->cluster_map, cluster_eq, f);
    map_init(&f->dd_map, dd_key, f);
    return 0;
}

static void cluster_free(struct fsm_cluster *c)
{
    for (uint32_t i = 0; i < c->nslots; i++)
        if (c->slots[i].err)
            free(c->slots[i].err);
    free(c->slots);
    if (c->att)
        free(c->att);
    memset(c, 0, sizeof *c);
}

void fsm_close(struct fsm *f)
{
    if (!f->dd)
        return;
    for (uint32_t i = 0; i < f->nclusters; i++)
        cluster_free(&f->clusters[i]);
    free(f->clusters);
    free(f->free_idx);
    free(f->hosts);
    free(f->dd_bytes);
    free(f->dd_filter);
    free(f->dd);
    map_close(&f->site_map);
    map_close(&f->host_map);
    map_close(&f->cluster_map);
    map_close(&f->dd_map);
    fsm_auth_close(&f->auth);
    fsm_audit_close(&f->audit);
    memset(f, 0, sizeof *f);
}

/* --- lookups ----------------------------------------------------------- */

static int64_t site_idx(const struct fsm *f, struct mp_str s)
{
    return map_find(&f->site_map, s.p, s.n);
}

static int64_t host_idx(const struct fsm *f, struct mp_str s)
{
    return map_find(&f->host_map, s.p, s.n);
}

static int64_t cluster_idx(const struct fsm *f, struct mp_str s)
{
    return map_find(&f->cluster_map, s.p, s.n);
}

struct fsm_site *fsm_site_find(const struct fsm *f, const char *name)
{
    int64_t i = site_idx(f, mp_cstr(name));
    return i < 0 ? NULL : (struct fsm_site *)&f->sites[i];
}

struct fsm_host *fsm_host_find(const struct fsm *f, const char *name)
{
    int64_t i = host_idx(f, mp_cstr(name));
    return i < 0 ? NULL : &f->hosts[i];
}

struct fsm_cluster *fsm_cluster_find(const struct fsm *f, const char *name)
{
    int64_t i = cluster_idx(f, mp_cstr(name));
    return i < 0 ? NULL : &f->clusters[i];
}

struct fsm_slot *fsm_cluster_slot(const struct fsm_cluster *c, unsigned s)
{
    for (uint32_t i = 0; i < c->nslots; i++)
        if (c->slots[i].site == s)
            return &c->slots[i];
    return NULL;
}

uint32_t fsm_sites_by_id(const struct fsm *f,
                         const struct fsm_site *order[VC_SITES_MAX])
{
    uint32_t n = 0;
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (f->sites[i].live)
            order[n++] = &f->sites[i];
    /* Insertion sort by id: at most 128 sites. */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && order[j - 1]->id > order[j]->id; j--) {
            const struct fsm_site *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return n;
}

const char *fsm_state_name(int state)
{
    switch (state) {
    case FSM_PENDING: return "pending";
    case FSM_READY: return "ready";
    case FSM_RELEASING: return "releasing";
    }
    return "?";
}

/* --- results ----------------------------------------------------------- */

#define fail fsm_result

/* Every command builds a result message, so vfprintf dominated the cost of
 * a cheap command. msg_format() handles the conversions this file uses (%s
 * %.*s %d %u %llu %%) and hands anything else to vsnprintf; both produce
 * the same bytes, truncation included. */
struct msg_out {
    char *p;
    size_t left; /* bytes still writable, excluding the NUL */
};

/* Up to max bytes of s, stopping at its NUL. Byte by byte: the pieces of
 * a message are short, and a libc call per piece cost more. */
static void put_str(struct msg_out *o, const char *s, size_t max)
{
    for (; max && *s && o->left; max--, o->left--)
        *o->p++ = *s++;
}

static void put_bytes(struct msg_out *o, const char *s, size_t n)
{
    for (; n && o->left; n--, o->left--)
        *o->p++ = *s++;
}

static void put_u64(struct msg_out *o, unsigned long long v, bool neg)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    do
        *--q = (char)('0' + v % 10);
    while (v /= 10);
    if (neg)
        *--q = '-';
    put_bytes(o, q, (size_t)(e - q));
}

/* One conversion at *fmt (just past '%'). Returns the next format byte, or
 * NULL for a conversion left to vsnprintf. */
static const char *put_conv(struct msg_out *o, const char *fmt, va_list *ap)
{
    if (fmt[0] == 's') {
        const char *s = va_arg(*ap, const char *);
        put_str(o, s ? s : "(null)", SIZE_MAX);
        return fmt + 1;
    }
    if (fmt[0] == '.' && fmt[1] == '*' && fmt[2] == 's') {
        int n = va_arg(*ap, int);
        const char *s = va_arg(*ap, const char *);
        /* As printf: stop at a NUL; a negative precision means none. */
        put_str(o, s, n < 0 ? SIZE_MAX : (size_t)n);
        return fmt + 3;
    }
    if (fmt[0] == 'u') {
        put_u64(o, va_arg(*ap, unsigned), false);
        return fmt + 1;
    }
    if (fmt[0] == 'd') {
        int v = va_arg(*ap, int);
        put_u64(o, v < 0 ? 0ull - (unsigned long long)v : (unsigned)v, v < 0);
        return fmt + 1;
    }
    if (fmt[0] == 'l' && fmt[1] == 'l' && fmt[2] == 'u') {
        put_u64(o, va_arg(*ap, unsigned long long), false);
        return fmt + 3;
    }
    if (fmt[0] == '%') {
        put_bytes(o, "%", 1);
        return fmt + 1;
    }
    return NULL;
}

static void msg_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct msg_out o = {buf, size - 1};
    const char *f = fmt;
    va_list cur;
    va_copy(cur, ap);
    while (*f) {
        if (*f != '%') {
            if (o.left) {
                *o.p++ = *f;
                o.left--;
            }
            f++;
            continue;
        }
        if (!(f = put_conv(&o, f + 1, &cur))) {
            va_end(cur);
            vsnprintf(buf, size, fmt, ap); /* restart from the top */
            return;
        }
    }
    *o.p = '\0';
    va_end(cur);
}

int fsm_result(struct proto_result *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->code = code;
    msg_vformat(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return 0;
}

#define ok(r, ...) fail(r, 0, __VA_ARGS__)
#define S(s) (int)(s).n, (s).p

/* The results every create, release and report returns build their text
 * piece by piece: the bytes the printf format in the comment beside each
 * gives, truncation included, without parsing a format. */
static struct msg_out msg_start(struct proto_result *r)
{
    return (struct msg_out){r->msg, sizeof r->msg - 1};
}

static inline void msg_put(struct msg_out *o, const char *s, size_t n)
{
    if (n > o->left) /* truncated, as snprintf */
        n = o->left;
    mp_copy_short((uint8_t *)o->p, s, n);
    o->p += n;
    o->left -= n;
}

#define MSG_LIT(o, lit) msg_put(o, lit, sizeof lit - 1)

static void msg_str(struct msg_out *o, struct mp_str s) /* %.*s */
{
    msg_put(o, s.p, strnlen(s.p, s.n));
}

static void msg_cstr(struct msg_out *o, const char *s) /* %s */
{
    msg_put(o, s, strlen(s));
}

static void msg_uint(struct msg_out *o, unsigned long long v) /* %u %llu */
{
    char tmp[24], *e = tmp + sizeof tmp, *q = e;
    do
        *--q = (char)('0' + v % 10);
    while (v /= 10);
    msg_put(o, q, (size_t)(e - q));
}

static int msg_ok(struct proto_result *r, struct msg_out *o)
{
    *o->p = '\0';
    r->code = 0;
    return 0;
}

/* --- per-site VLAN bookkeeping ----------------------------------------- */

static void site_recompute_free(struct fsm_site *s)
{
    for (int i = 0; i < VLANSET_WORDS; i++)
        s->free.w[i] = s->pool.w[i] & ~s->used.w[i];
}

static void site_take(struct fsm_site *s, unsigned vlan)
{
    vlanset_add(&s->used, vlan);
    vlanset_del(&s->free, vlan);
    s->nslots++;
}

static void site_give(struct fsm_site *s, unsigned vlan)
{
    vlanset_del(&s->used, vlan);
    if (vlanset_has(&s->pool, vlan))
        vlanset_add(&s->free, vlan);
    s->nslots--;
}

/* --- cluster helpers --------------------------------------------------- */

static void cluster_update_state(struct fsm_cluster *c)
{
    if (c->state == FSM_RELEASING)
        return;
    c->state = FSM_READY;
    for (uint32_t i = 0; i < c->nslots; i++)
        if (c->slots[i].applied < c->slots[i].gen)
            c->state = FSM_PENDING;
    if (c->state == FSM_READY)
        c->settled = true;
}

static void cluster_delete(struct fsm *f, struct fsm_cluster *c)
{
    /* By index: no key compare. */
    map_del_idx(&f->cluster_map, map_hash(c->name, strlen(c->name)),
                (uint32_t)(c - f->clusters));
    cluster_free(c);
    f->live_clusters--;
    /* free_idx has room for every slot: it grows with the table. */
    f->free_idx[f->nfree++] = (uint32_t)(c - f->clusters);
}

/* Drops slot i of c: the VLAN is free again at that site. Returns true if
 * c was deleted because a released cluster has no slot left. */
static bool slot_drop(struct fsm *f, struct fsm_cluster *c, uint32_t i)
{
    site_give(&f->sites[c->slots[i].site], c->vlan);
    if (c->slots[i].err) /* rare: skip the calls on the release path */
        free(c->slots[i].err);
    if (i + 1 < c->nslots)
        memmove(&c->slots[i], &c->slots[i + 1],
                (c->nslots - i - 1) * sizeof *c->slots);
    c->nslots--;
    if (c->nslots == 0 && c->state == FSM_RELEASING) {
        cluster_delete(f, c);
        return true;
    }
    cluster_update_state(c);
    return false;
}

/* Marks that the desired configuration of c at slot i changed. Unmanaged
 * sites have nothing to apply: their slots settle at once. Returns true if
 * c was deleted. */
static bool slot_touch(struct fsm *f, struct fsm_cluster *c, uint32_t i)
{
    struct fsm_slot *sl = &c->slots[i];
    sl->gen = c->gen;
    sl->failed = false;
    if (!f->sites[sl->site].managed) {
        if (sl->removing)
            return slot_drop(f, c, i);
        sl->applied = c->gen;
    }
    return false;
}

/* Bumps the generation and touches every slot at site s (all if s < 0).
 * Returns true if c was deleted. */
static bool cluster_touch(struct fsm *f, struct fsm_cluster *c, int s)
{
    c->gen++;
    for (uint32_t i = c->nslots; i-- > 0;)
        if ((s < 0 || c->slots[i].site == s) && slot_touch(f, c, i))
            return true;
    cluster_update_state(c);
    return false;
}

static int slot_add(struct fsm *f, struct fsm_cluster *c, unsigned site)
{
    struct fsm_slot *s = realloc(c->slots, (c->nslots + 1) * sizeof *s);
    if (!s)
        return VC_ENOMEM;
    c->slots = s;
    memset(&s[c->nslots], 0, sizeof *s);
    s[c->nslots].site = (uint8_t)site;
    c->nslots++;
    site_take(&f->sites[site], c->vlan);
    return 0;
}

static const char *holder_of(const struct fsm *f, unsigned site,
                             unsigned vlan)
{
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        if (c->live && c->vlan == vlan && fsm_cluster_slot(c, site))
            return c->name;
    }
    return "?";
}

static void cluster_release(struct fsm *f, struct fsm_cluster *c,
                            bool force)
{
    c->state = FSM_RELEASING;
    c->natt = 0; /* attachments go with the bridge */
    for (uint32_t i = 0; i < c->nslots; i++)
        c->slots[i].removing = true;
    if (force) {
        while (c->live && c->nslots)
            slot_drop(f, c, c->nslots - 1);
        if (c->live)
            cluster_delete(f, c);
        return;
    }
    cluster_touch(f, c, -1);
}

/* --- sites ------------------------------------------------------------- */

static int site_conflicting_addr(const struct fsm *f, struct mp_str addr,
                                 int self)
{
    if (addr.n == 0)
        return -1;
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (i != self && f->sites[i].live && mp_str_eq(addr, f->sites[i].addr))
            return i;
    return -1;
}

/* Refuses a pool that would strand a VLAN some cluster holds at site s. */
static int pool_strands(const struct fsm *f, unsigned s,
                        const struct vlanset *pool, struct proto_result *r)
{
    const struct fsm_site *site = &f->sites[s];
    for (int w = 0; w < VLANSET_WORDS; w++) {
        uint64_t lost = site->used.w[w] & ~pool->w[w];
        if (lost) {
            unsigned v = (unsigned)(w * 64 + __builtin_ctzll(lost));
            fail(r, VC_EINUSE,
                 "pool change at site %s would strand VLAN %u of cluster "
                 "%s; release or move that cluster first",
                 site->name, v, holder_of(f, s, v));
            return 1;
        }
    }
    return 0;
}

static void settle_unmanaged(struct fsm *f, unsigned s)
{
    for (uint32_t i = 0; i < f->nclusters; i++) {
        struct fsm_cluster *c = &f->clusters[i];
        if (!c->live)
            continue;
        for (uint32_t j = c->nslots; j-- > 0;)
            if (c->slots[j].site == s && slot_touch(f, c, j))
                break;
        if (c->live)
            cluster_update_state(c);
    }
}

static void site_set(struct fsm_site *s, const struct proto_cmd *c)
{
    mp_str_copy(c->addr, s->addr, sizeof s->addr);
    s->pool = c->pool;
    s->uplink = c->uplink;
    s->svlan = c->svlan;
    s->managed = c->managed;
    site_recompute_free(s);
}

static int cmd_site_add(struct fsm *f, const struct proto_cmd *c,
                        struct proto_result *r)
{
    int other;
    if (site_idx(f, c->name) >= 0)
        return fail(r, VC_EEXISTS, "site %.*s already exists", S(c->name));
    if ((other = site_conflicting_addr(f, c->addr, -1)) >= 0)
        return fail(r, VC_ECONFLICT, "address %.*s is already used by site %s",
                    S(c->addr), f->sites[other].name);
    int s = 0;
    while (s < VC_SITES_MAX && f->sites[s].live)
        s++;
    if (s == VC_SITES_MAX)
        return fail(r, VC_ELIMIT, "site limit of %d reached", VC_SITES_MAX);
    if (fsm_auth_site_add_refused(f, c, r))
        return 0;
    struct fsm_site *site = &f->sites[s];
    memset(site, 0, sizeof *site);
    mp_str_copy(c->name, site->name, sizeof site->name);
    if (map_put(&f->site_map, c->name.p, c->name.n, (uint32_t)s) != 0)
        return VC_ENOMEM;
    site->live = true;
    site->id = f->next_site_id++;
    site_set(site, c);
    fsm_auth_site_added(f, site, c);
    f->nsites++;
    return ok(r, "site %s added with id %u", site->name, site->id);
}

static int cmd_site_update(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    int64_t s = site_idx(f, c->name);
    int other;
    if (s < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->name));
    if ((other = site_conflicting_addr(f, c->addr, (int)s)) >= 0)
        return fail(r, VC_ECONFLICT, "address %.*s is already used by site %s",
                    S(c->addr), f->sites[other].name);
    if (pool_strands(f, (unsigned)s, &c->pool, r) ||
        fsm_auth_site_update_refused(f, &f->sites[s], c, r))
        return 0;
    bool was_managed = f->sites[s].managed;
    site_set(&f->sites[s], c);
    fsm_auth_site_updated(&f->sites[s], c);
    if (was_managed && !c->managed)
        settle_unmanaged(f, (unsigned)s);
    return ok(r, "site %.*s updated", S(c->name));
}

static int cmd_pool_set(struct fsm *f, const struct proto_cmd *c,
                        struct proto_result *r)
{
    int64_t s = site_idx(f, c->name);
    if (s < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->name));
    if (pool_strands(f, (unsigned)s, &c->pool, r))
        return 0;
    f->sites[s].pool = c->pool;
    site_recompute_free(&f->sites[s]);
    return ok(r, "pool of site %.*s set (%u VLANs)", S(c->name),
              vlanset_count(&c->pool));
}

static void host_delete(struct fsm *f, struct fsm_host *h)
{
    map_del(&f->host_map, h->name, strlen(h->name));
    memset(h, 0, sizeof *h);
}

static int cmd_site_remove(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    int64_t s = site_idx(f, c->name);
    if (s < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->name));
    struct fsm_site *site = &f->sites[s];
    if (site->nslots && !c->force) {
        const char *example = NULL; /* first by name: replicas agree */
        for (uint32_t i = 0; i < f->nclusters; i++)
            if (f->clusters[i].live && fsm_cluster_slot(&f->clusters[i], (unsigned)s) &&
                (!example || strcmp(f->clusters[i].name, example) < 0))
                example = f->clusters[i].name;
        return fail(r, VC_EINUSE,
                    "site %s is spanned by %u cluster(s), e.g. %s; shrink or "
                    "release them, or remove with --force",
                    site->name, site->nslots, example ? example : "?");
    }
    /* Forced: the site's slots go in this same transaction. */
    uint32_t shrunk = 0;
    for (uint32_t i = 0; i < f->nclusters && site->nslots; i++) {
        struct fsm_cluster *cl = &f->clusters[i];
        if (!cl->live)
            continue;
        for (uint32_t j = 0; j < cl->nslots; j++) {
            if (cl->slots[j].site != s)
                continue;
            shrunk++;
            uint32_t k = 0;
            while (k < cl->natt) { /* drop attachments at this site */
                struct fsm_host *h = fsm_host_find(f, cl->att[k].host);
                if (h && h->site == s)
                    memmove(&cl->att[k], &cl->att[k + 1],
                            (--cl->natt - k) * sizeof *cl->att);
                else
                    k++;
            }
            bool gone = slot_drop(f, cl, j), active = false;
            for (uint32_t a = 0; a < cl->nslots; a++)
                active |= !cl->slots[a].removing;
            if (!gone && cl->nslots == 0)
                cluster_delete(f, cl);
            else if (!gone && !active) /* only sites still removing it */
                cluster_release(f, cl, false);
            else if (!gone)
                cluster_touch(f, cl, -1);
            break;
        }
    }
    for (uint32_t i = 0; i < f->nhosts; i++)
        if (f->hosts[i].live && f->hosts[i].site == s)
            host_delete(f, &f->hosts[i]);
    map_del(&f->site_map, site->name, strlen(site->name));
    fsm_auth_site_removed(f, site);
    char name[VC_NAME_MAX + 1];
    memcpy(name, site->name, sizeof name);
    memset(site, 0, sizeof *site);
    f->nsites--;
    return ok(r, "site %s removed%s", name,
              shrunk ? " (clusters spanning it were shrunk)" : "");
}

/* --- hosts and service nodes ------------------------------------------- */

static int cmd_host_add(struct fsm *f, const struct proto_cmd *c,
                        struct proto_result *r)
{
    int64_t s = site_idx(f, c->site);
    uint32_t i;
    if (host_idx(f, c->name) >= 0)
        return fail(r, VC_EEXISTS, "host %.*s already exists", S(c->name));
    if (s < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->site));
    for (i = 0; i < f->nhosts && f->hosts[i].live; i++)
        ;
    if (i == f->nhosts) {
        if (f->nhosts == FSM_HOSTS_MAX)
            return fail(r, VC_ELIMIT, "host limit of %d reached",
                        FSM_HOSTS_MAX);
        if (f->nhosts == f->hosts_cap) {
            uint32_t cap = f->hosts_cap ? f->hosts_cap * 2 : 64;
            struct fsm_host *h = realloc(f->hosts, cap * sizeof *h);
            if (!h)
                return VC_ENOMEM;
            f->hosts = h;
            f->hosts_cap = cap;
        }
        f->nhosts++;
    }
    struct fsm_host *h = &f->hosts[i];
    memset(h, 0, sizeof *h);
    mp_str_copy(c->name, h->name, sizeof h->name);
    if (map_put(&f->host_map, c->name.p, c->name.n, i) != 0) {
        h->name[0] = '\0';
        return VC_ENOMEM;
    }
    h->live = true;
    h->site = (uint8_t)s;
    mp_str_copy(c->iface, h->trunk, sizeof h->trunk);
    return ok(r, "host %s added at site %s (trunk %s)", h->name,
              f->sites[s].name, h->trunk);
}

/* Clusters at site s whose desired configuration changes with its set of
 * service nodes get a new generation there. */
static void touch_site_clusters(struct fsm *f, unsigned s)
{
    for (uint32_t i = 0; i < f->nclusters; i++) {
        struct fsm_cluster *c = &f->clusters[i];
        struct fsm_slot *sl;
        if (c->live && c->state != FSM_RELEASING &&
            (sl = fsm_cluster_slot(c, s)) && !sl->removing)
            cluster_touch(f, c, (int)s);
    }
}

/* Names the first such cluster by name, so that replicas agree. */
static bool host_attached(const struct fsm *f, const char *host,
                          const char **cluster)
{
    *cluster = NULL;
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        for (uint32_t j = 0; c->live && j < c->natt; j++)
            if (strcmp(c->att[j].host, host) == 0 &&
                (!*cluster || strcmp(c->name, *cluster) < 0))
                *cluster = c->name;
    }
    return *cluster != NULL;
}

static int cmd_host_remove(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    int64_t i = host_idx(f, c->name);
    const char *cl;
    if (i < 0)
        return fail(r, VC_ENOTFOUND, "no host named %.*s", S(c->name));
    struct fsm_host *h = &f->hosts[i];
    if (host_attached(f, h->name, &cl))
        return fail(r, VC_EINUSE,
                    "host %s has interfaces attached to cluster %s; detach "
                    "them first",
                    h->name, cl);
    unsigned site = h->site;
    bool service = h->service;
    host_delete(f, h);
    if (service)
        touch_site_clusters(f, site);
    return ok(r, "host %.*s removed", S(c->name));
}

static int cmd_service(struct fsm *f, const struct proto_cmd *c,
                       struct proto_result *r, bool on)
{
    int64_t i = host_idx(f, c->name);
    if (i < 0)
        return fail(r, VC_ENOTFOUND, "no host named %.*s", S(c->name));
    struct fsm_host *h = &f->hosts[i];
    if (h->service == on)
        return fail(r, on ? VC_EEXISTS : VC_ENOTFOUND,
                    "host %s is %s a service node", h->name,
                    on ? "already" : "not");
    h->service = on;
    touch_site_clusters(f, h->site);
    return ok(r, "host %s %s service node", h->name, on ? "is now a" : "is no longer a");
}

/* --- allocation -------------------------------------------------------- */

/* Lowest VLAN free at every listed site: intersect the per-site free
 * bitmaps 64 IDs at a time and stop at the first word with a common bit. */
static unsigned alloc_lowest(const struct fsm *f, const uint8_t *sites,
                             uint32_t n)
{
    for (int w = 0; w < VLANSET_WORDS; w++) {
        uint64_t acc = ~UINT64_C(0);
        for (uint32_t i = 0; i < n && acc; i++)
            acc &= f->sites[sites[i]].free.w[w];
        if (acc)
            return (unsigned)(w * 64 + __builtin_ctzll(acc));
    }
    return 0;
}

/* Explains an empty intersection: pools that share nothing, or the sites
 * whose usage covers every common pool ID. */
static void explain_novlan(const struct fsm *f, const uint8_t *sites,
                           uint32_t n, struct proto_result *r)
{
    struct vlanset common;
    char *m = r->msg;
    size_t len = sizeof r->msg, off;
    memset(&common, 0xff, sizeof common);
    for (uint32_t i = 0; i < n; i++)
        for (int w = 0; w < VLANSET_WORDS; w++)
            common.w[w] &= f->sites[sites[i]].pool.w[w];
    r->code = VC_ENOVLAN;
    if (vlanset_empty(&common)) {
        off = (size_t)snprintf(m, len, "no common VLAN: the pools of");
        for (uint32_t i = 0; i < n && off < len; i++) {
            char pool[48];
            vlanset_format(&f->sites[sites[i]].pool, pool, sizeof pool);
            off += (size_t)snprintf(m + off, len - off, "%s %s (%s)",
                                    i ? "," : "", f->sites[sites[i]].name,
                                    pool[0] ? pool : "empty");
        }
        if (off < len)
            snprintf(m + off, len - off, " share no ID");
        return;
    }
    off = (size_t)snprintf(m, len,
                           "no common VLAN: all %u IDs the pools share are "
                           "in use at",
                           vlanset_count(&common));
    for (uint32_t i = 0; i < n && off < len; i++) {
        unsigned busy = 0;
        for (int w = 0; w < VLANSET_WORDS; w++)
            busy += (unsigned)__builtin_popcountll(
                common.w[w] & f->sites[sites[i]].used.w[w]);
        if (busy)
            off += (size_t)snprintf(m + off, len - off, " %s (%u)",
                                    f->sites[sites[i]].name, busy);
    }
}

/* --- clusters ---------------------------------------------------------- */

int fsm_cluster_new(struct fsm *f, uint32_t *out)
{
    if (f->nfree) { /* reuse the most recently deleted entity */
        *out = f->free_idx[--f->nfree];
        return 0;
    }
    if (f->nclusters == f->clusters_cap) {
        uint32_t cap = f->clusters_cap ? f->clusters_cap * 2 : 64;
        struct fsm_cluster *c = realloc(f->clusters, cap * sizeof *c);
        uint32_t *fi = realloc(f->free_idx, cap * sizeof *fi);
        if (fi)
            f->free_idx = fi;
        if (!c || !fi) {
            if (c)
                f->clusters = c;
            return VC_ENOMEM;
        }
        f->clusters = c;
        f->clusters_cap = cap;
    }
    *out = f->nclusters++;
    memset(&f->clusters[*out], 0, sizeof f->clusters[*out]);
    return 0;
}

static int resolve_sites(const struct fsm *f, const struct proto_cmd *c,
                         uint8_t *idx, struct proto_result *r)
{
    for (uint32_t i = 0; i < c->nsites; i++) {
        int64_t s = site_idx(f, c->sites[i]);
        if (s < 0) {
            fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->sites[i]));
            return -1;
        }
        idx[i] = (uint8_t)s;
    }
    return 0;
}

static int cmd_cluster_create(struct fsm *f, const struct proto_cmd *c,
                              struct proto_result *r)
{
    uint8_t idx[VC_SITES_MAX];
    uint32_t ci;
    unsigned vlan;
    int rv;
    uint32_t hash = map_hash(c->name.p, c->name.n); /* lookup and put */
    if (map_find_hashed(&f->cluster_map, hash, c->name.p, c->name.n) >= 0)
        return fail(r, VC_EEXISTS, "cluster %.*s already exists", S(c->name));
    if (f->live_clusters >= FSM_CLUSTERS_MAX)
        return fail(r, VC_ELIMIT, "cluster limit of %d reached",
                    FSM_CLUSTERS_MAX);
    if (resolve_sites(f, c, idx, r) != 0)
        return 0;
    if ((vlan = alloc_lowest(f, idx, c->nsites)) == 0) {
        explain_novlan(f, idx, c->nsites, r);
        return 0;
    }
    if ((rv = fsm_cluster_new(f, &ci)) != 0)
        return rv == VC_ELIMIT ? fail(r, rv, "cluster table full") : rv;
    struct fsm_cluster *cl = &f->clusters[ci];
    /* malloc + memset: glibc's calloc skips the thread cache. */
    if ((cl->slots = malloc(c->nsites * sizeof *cl->slots)))
        memset(cl->slots, 0, c->nsites * sizeof *cl->slots);
    mp_str_copy(c->name, cl->name, sizeof cl->name);
    if (!cl->slots || map_put_hashed(&f->cluster_map, hash, ci)) {
        free(cl->slots);
        memset(cl, 0, sizeof *cl);
        return VC_ENOMEM;
    }
    cl->live = true;
    f->live_clusters++;
    mp_str_copy(c->owner, cl->owner, sizeof cl->owner);
    cl->image = c->image;
    cl->keep = c->keep;
    cl->vlan = (uint16_t)vlan;
    cl->created_ms = c->time_ms;
    cl->deadline_ms = c->time_ms + c->lease_ms;
    cl->gen = 1;
    for (uint32_t i = 0; i < c->nsites; i++) {
        cl->slots[i].site = idx[i];
        site_take(&f->sites[idx[i]], vlan);
        slot_touch(f, cl, i);
    }
    cl->nslots = c->nsites;
    cluster_update_state(cl);
    r->vlan = (uint16_t)vlan;
    r->gen = cl->gen;
    struct msg_out m = msg_start(r); /* "cluster %s created with VLAN %u" */
    MSG_LIT(&m, "cluster ");
    msg_cstr(&m, cl->name);
    MSG_LIT(&m, " created with VLAN ");
    msg_uint(&m, vlan);
    return msg_ok(r, &m);
}

/* Finds a live cluster that is not being released. */
static struct fsm_cluster *active_cluster(struct fsm *f, struct mp_str name,
                                          struct proto_result *r)
{
    int64_t i = cluster_idx(f, name);
    if (i < 0) {
        fail(r, VC_ENOTFOUND, "no cluster named %.*s", S(name));
        return NULL;
    }
    if (f->clusters[i].state == FSM_RELEASING) {
        fail(r, VC_ESTATE, "cluster %.*s is being released", S(name));
        return NULL;
    }
    return &f->clusters[i];
}

static void result_cluster(struct proto_result *r, const struct fsm_cluster *c)
{
    r->vlan = c->vlan;
    r->gen = c->gen;
}

static int cmd_cluster_extend(struct fsm *f, const struct proto_cmd *c,
                              struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    int64_t s;
    struct fsm_slot *sl;
    if (!cl)
        return 0;
    if ((s = site_idx(f, c->site)) < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->site));
    struct fsm_site *site = &f->sites[s];
    if ((sl = fsm_cluster_slot(cl, (unsigned)s)))
        return sl->removing
                   ? fail(r, VC_ECONFLICT,
                          "cluster %s is still being removed from site %s; "
                          "retry once the site reports the removal",
                          cl->name, site->name)
                   : fail(r, VC_EEXISTS, "cluster %s already spans site %s",
                          cl->name, site->name);
    if (!vlanset_has(&site->pool, cl->vlan))
        return fail(r, VC_ECONFLICT,
                    "VLAN %u of cluster %s is outside the pool of site %s",
                    cl->vlan, cl->name, site->name);
    if (vlanset_has(&site->used, cl->vlan))
        return fail(r, VC_ECONFLICT,
                    "VLAN %u of cluster %s is in use at site %s by cluster %s",
                    cl->vlan, cl->name, site->name,
                    holder_of(f, (unsigned)s, cl->vlan));
    int rv = slot_add(f, cl, (unsigned)s);
    if (rv != 0)
        return rv;
    cluster_touch(f, cl, (int)s);
    result_cluster(r, cl);
    return ok(r, "cluster %s extended to site %s", cl->name, site->name);
}

static uint32_t attachments_at(const struct fsm *f,
                               const struct fsm_cluster *c, unsigned s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->natt; i++) {
        const struct fsm_host *h = fsm_host_find(f, c->att[i].host);
        if (h && h->site == s)
            n++;
    }
    return n;
}

static int cmd_cluster_shrink(struct fsm *f, const struct proto_cmd *c,
                              struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    int64_t s;
    struct fsm_slot *sl;
    uint32_t active = 0, natt;
    if (!cl)
        return 0;
    if ((s = site_idx(f, c->site)) < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->site));
    if (!(sl = fsm_cluster_slot(cl, (unsigned)s)) || sl->removing)
        return fail(r, VC_ENOTFOUND, "cluster %s does not span site %.*s",
                    cl->name, S(c->site));
    for (uint32_t i = 0; i < cl->nslots; i++)
        active += !cl->slots[i].removing;
    if (active == 1)
        return fail(r, VC_ESTATE,
                    "site %.*s is the last site of cluster %s; release the "
                    "cluster instead",
                    S(c->site), cl->name);
    if ((natt = attachments_at(f, cl, (unsigned)s)))
        return fail(r, VC_EINUSE,
                    "cluster %s has %u attachment(s) at site %.*s; detach "
                    "them first",
                    cl->name, natt, S(c->site));
    sl->removing = true;
    cluster_touch(f, cl, (int)s);
    result_cluster(r, cl);
    return ok(r, "cluster %s shrinking off site %.*s", cl->name, S(c->site));
}

static int cmd_cluster_renew(struct fsm *f, const struct proto_cmd *c,
                             struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    if (!cl)
        return 0;
    cl->deadline_ms = c->time_ms + c->lease_ms;
    result_cluster(r, cl);
    return ok(r, "cluster %s lease renewed", cl->name);
}

static int cmd_cluster_release(struct fsm *f, const struct proto_cmd *c,
                               struct proto_result *r)
{
    int64_t i = cluster_idx(f, c->name);
    if (i < 0)
        return fail(r, VC_ENOTFOUND, "no cluster named %.*s", S(c->name));
    struct fsm_cluster *cl = &f->clusters[i];
    bool was = cl->state == FSM_RELEASING;
    r->vlan = cl->vlan;
    if (was && !c->force)
        return ok(r, "cluster %.*s is already being released", S(c->name));
    cluster_release(f, cl, c->force);
    struct msg_out m = msg_start(r);
    MSG_LIT(&m, "cluster ");
    msg_str(&m, c->name);
    if (!cl->live) { /* "cluster %.*s released" */
        MSG_LIT(&m, " released");
        return msg_ok(r, &m);
    }
    r->gen = cl->gen;
    /* "cluster %.*s releasing; VLAN %u returns to each site's pool once it
     * reports the removal" */
    MSG_LIT(&m, " releasing; VLAN ");
    msg_uint(&m, cl->vlan);
    MSG_LIT(&m, " returns to each site's pool once it reports the removal");
    return msg_ok(r, &m);
}

static int cmd_lease_sweep(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->nclusters; i++) {
        struct fsm_cluster *cl = &f->clusters[i];
        if (cl->live && cl->state != FSM_RELEASING &&
            cl->deadline_ms < c->time_ms) {
            cluster_release(f, cl, false);
            n++;
        }
    }
    r->gen = n;
    return ok(r, "%u expired cluster(s) released", n);
}

/* Releases a cluster whose creation was not applied at every site by
 * created_ms + lease_ms (the proposer's apply-deadline), judged by the
 * command's time alone: the leader proposes it, every replica decides
 * the same. A cluster that became ready, is kept on failure or is
 * already released is left alone (the proposal raced with its report). */
static int cmd_cluster_rollback(struct fsm *f, const struct proto_cmd *c,
                                struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    char name[VC_NAME_MAX + 1], sites[128] = "";
    size_t len = 0;
    if (!cl)
        return 0;
    if (cl->settled || cl->keep)
        return fail(r, VC_ESTATE, "cluster %s %s; not rolled back", cl->name,
                    cl->keep ? "is kept on failure" : "was applied everywhere");
    if (c->time_ms < cl->created_ms ||
        c->time_ms - cl->created_ms < c->lease_ms)
        return fail(r, VC_ESTATE, "cluster %s: deadline not reached",
                    cl->name);
    for (uint32_t i = 0; i < cl->nslots && len < sizeof sites - 1; i++)
        if (cl->slots[i].applied < cl->slots[i].gen)
            len += (size_t)snprintf(sites + len, sizeof sites - len, "%s%s",
                                    len ? "," : "",
                                    f->sites[cl->slots[i].site].name);
    snprintf(name, sizeof name, "%s", cl->name);
    r->vlan = cl->vlan;
    cluster_release(f, cl, false);
    r->gen = cl->live ? cl->gen : 0;
    return ok(r, "cluster %s rolled back: not applied at site %s within %llu s",
              name, sites, (unsigned long long)(c->lease_ms / 1000));
}

/* --- attachments ------------------------------------------------------- */

static int find_attach(const struct fsm_cluster *c, struct mp_str host,
                       struct mp_str iface)
{
    for (uint32_t i = 0; i < c->natt; i++)
        if (mp_str_eq(host, c->att[i].host) && mp_str_eq(iface, c->att[i].iface))
            return (int)i;
    return -1;
}

static int cmd_attach(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    struct fsm_slot *sl;
    int64_t h;
    if (!cl)
        return 0;
    if ((h = host_idx(f, c->host)) < 0)
        return fail(r, VC_ENOTFOUND, "no host named %.*s", S(c->host));
    unsigned s = f->hosts[h].site;
    if (!(sl = fsm_cluster_slot(cl, s)) || sl->removing)
        return fail(r, VC_ECONFLICT,
                    "host %.*s is at site %s, which cluster %s does not span; "
                    "extend the cluster first",
                    S(c->host), f->sites[s].name, cl->name);
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *o = &f->clusters[i];
        if (o->live && find_attach(o, c->host, c->iface) >= 0)
            return o == cl ? fail(r, VC_EEXISTS,
                                  "%.*s/%.*s is already attached to %s",
                                  S(c->host), S(c->iface), o->name)
                           : fail(r, VC_ECONFLICT,
                                  "%.*s/%.*s is attached to cluster %s; "
                                  "detach it there first",
                                  S(c->host), S(c->iface), o->name);
    }
    if (cl->natt >= FSM_ATTACH_MAX)
        return fail(r, VC_ELIMIT, "cluster %s has %d attachments already",
                    cl->name, FSM_ATTACH_MAX);
    struct fsm_attach *a = realloc(cl->att, (cl->natt + 1) * sizeof *a);
    if (!a)
        return VC_ENOMEM;
    cl->att = a;
    mp_str_copy(c->host, a[cl->natt].host, sizeof a->host);
    mp_str_copy(c->iface, a[cl->natt].iface, sizeof a->iface);
    cl->natt++;
    cluster_touch(f, cl, (int)s);
    result_cluster(r, cl);
    return ok(r, "%.*s/%.*s attached to cluster %s (VLAN %u)", S(c->host),
              S(c->iface), cl->name, cl->vlan);
}

static int cmd_detach(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r)
{
    struct fsm_cluster *cl = active_cluster(f, c->name, r);
    int i;
    if (!cl)
        return 0;
    if ((i = find_attach(cl, c->host, c->iface)) < 0)
        return fail(r, VC_ENOTFOUND, "%.*s/%.*s is not attached to %s",
                    S(c->host), S(c->iface), cl->name);
    struct fsm_host *h = fsm_host_find(f, cl->att[i].host);
    memmove(&cl->att[i], &cl->att[i + 1], (cl->natt - (uint32_t)i - 1) * sizeof *cl->att);
    cl->natt--;
    cluster_touch(f, cl, h ? (int)h->site : -1);
    result_cluster(r, cl);
    return ok(r, "%.*s/%.*s detached from cluster %s", S(c->host),
              S(c->iface), cl->name);
}

/* --- apply reports ----------------------------------------------------- */

static int cmd_apply_report(struct fsm *f, const struct proto_cmd *c,
                            struct proto_result *r)
{
    int64_t ci = cluster_idx(f, c->name), s = site_idx(f, c->site);
    struct fsm_slot *sl;
    if (ci < 0)
        return fail(r, VC_ENOTFOUND, "no cluster named %.*s", S(c->name));
    if (s < 0)
        return fail(r, VC_ENOTFOUND, "no site named %.*s", S(c->site));
    struct fsm_cluster *cl = &f->clusters[ci];
    if (!(sl = fsm_cluster_slot(cl, (unsigned)s)))
        return fail(r, VC_ENOTFOUND, "cluster %s does not span site %s",
                    cl->name, f->sites[s].name);
    if (c->gen > cl->gen)
        return fail(r, VC_EINVAL, "report for generation %llu of cluster %s, "
                                  "which is only at %llu",
                    (unsigned long long)c->gen, cl->name,
                    (unsigned long long)cl->gen);
    if (c->gen < sl->gen)
        return fail(r, VC_ESTATE, "stale report: generation %llu of cluster "
                                  "%s at site %s was superseded by %llu",
                    (unsigned long long)c->gen, cl->name, f->sites[s].name,
                    (unsigned long long)sl->gen);
    r->vlan = cl->vlan;
    if (!c->ok) {
        char *err = malloc(c->text.n + 1);
        if (!err)
            return VC_ENOMEM;
        mp_str_copy(c->text, err, c->text.n + 1);
        free(sl->err);
        sl->err = err;
        sl->failed = true;
        r->gen = cl->gen;
        return ok(r, "failure of cluster %s at site %s recorded", cl->name,
                  f->sites[s].name);
    }
    free(sl->err);
    sl->err = NULL;
    sl->failed = false;
    if (sl->removing) {
        bool gone = slot_drop(f, cl, (uint32_t)(sl - cl->slots));
        if (!gone)
            r->gen = cl->gen;
        struct msg_out m = msg_start(r); /* "VLAN %u is free again at
                                            site %s%s" */
        MSG_LIT(&m, "VLAN ");
        msg_uint(&m, r->vlan);
        MSG_LIT(&m, " is free again at site ");
        msg_cstr(&m, f->sites[s].name);
        if (gone)
            MSG_LIT(&m, "; cluster released");
        return msg_ok(r, &m);
    }
    sl->applied = c->gen;
    cluster_update_state(cl);
    r->gen = cl->gen;
    /* "cluster %s generation %llu applied at site %s" */
    struct msg_out m = msg_start(r);
    MSG_LIT(&m, "cluster ");
    msg_cstr(&m, cl->name);
    MSG_LIT(&m, " generation ");
    msg_uint(&m, c->gen);
    MSG_LIT(&m, " applied at site ");
    msg_cstr(&m, f->sites[s].name);
    return msg_ok(r, &m);
}

/* --- dispatch and de-duplication --------------------------------------- */

/* The window holds FSM_DEDUPE_MAX results, oldest at dd_head, and their
 * id and msg bytes in a byte ring filled in the same order. A record never
 * wraps around the end of the byte ring, so every id stays contiguous for
 * the index. Once the window is full, remembering a request allocates
 * nothing and forgetting one frees nothing. */

static struct fsm_dedupe *dd_at(const struct fsm *f, uint32_t i)
{
    return &f->dd[(f->dd_head + i) % FSM_DEDUPE_MAX];
}

static uint32_t dd_record_len(const struct fsm_dedupe *d)
{
    return d->id_len + 1 + (d->msg ? d->msg_len + 1u : 0);
}

/* Moves every record, oldest first, to the start of a byte ring with room
 * for need more bytes. 0 or VC_ENOMEM (nothing changed). */
static int dd_bytes_grow(struct fsm *f, size_t need)
{
    size_t total = need, cap = f->dd_bytes_cap ? 2 * (size_t)f->dd_bytes_cap
                                               : 4096;
    uint32_t off = 0;
    for (uint32_t i = 0; i < f->dd_len; i++)
        total += dd_record_len(dd_at(f, i));
    while (cap < total)
        cap *= 2;
    char *b = cap <= UINT32_MAX ? malloc(cap) : NULL;
    if (!b)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < f->dd_len; i++) {
        struct fsm_dedupe *d = dd_at(f, i);
        uint32_t n = dd_record_len(d);
        memcpy(b + off, d->id, n);
        d->id = b + off;
        if (d->msg)
            d->msg = d->id + d->id_len + 1;
        off += n;
    }
    free(f->dd_bytes);
    f->dd_bytes = b;
    f->dd_bytes_cap = (uint32_t)cap;
    f->dd_tail = off;
    return 0;
}

/* n contiguous bytes after the newest record, or NULL (VC_ENOMEM). */
static char *dd_bytes_alloc(struct fsm *f, size_t n)
{
    uint32_t head = f->dd_len ? (uint32_t)(dd_at(f, 0)->id - f->dd_bytes) : 0;
    uint32_t tail = f->dd_len ? f->dd_tail : 0;
    if (tail >= head) { /* in use: [head, tail); free: both ends */
        if (f->dd_bytes_cap - tail < n)
            tail = head > n ? 0 : UINT32_MAX;
    } else if (head - tail <= n) { /* in use: both ends; free: between */
        tail = UINT32_MAX;
    }
    /* The tail never catches up with the head: tail == head means empty. */
    if (tail == UINT32_MAX) {
        if (dd_bytes_grow(f, n) != 0)
            return NULL;
        tail = f->dd_tail;
    }
    f->dd_tail = tail + (uint32_t)n;
    return f->dd_bytes + tail;
}

/* Three bits in one word of each generation's filter. */
static uint64_t dd_filter_bits(uint32_t hash)
{
    return UINT64_C(1) << (hash & 63) | UINT64_C(1) << (hash >> 6 & 63) |
           UINT64_C(1) << (hash >> 12 & 63);
}

/* The generations' words for one hash sit side by side: one cache line
 * answers a lookup. */
static uint64_t *dd_filter_word(const struct fsm *f, unsigned gen,
                                uint32_t hash)
{
    return &f->dd_filter[(hash >> 19) % FSM_DD_FILTER_WORDS * FSM_DD_GENS +
                         gen];
}

/* False: no id with this hash was put in the window. */
static bool dd_filter_may_have(const struct fsm *f, uint32_t hash)
{
    uint64_t bits = dd_filter_bits(hash);
    bool hit = false;
    for (unsigned g = 0; g < FSM_DD_GENS; g++)
        hit |= (*dd_filter_word(f, g, hash) & bits) == bits;
    return hit;
}

static void dd_filter_add(struct fsm *f, uint32_t hash)
{
    *dd_filter_word(f, f->dd_gen, hash) |= dd_filter_bits(hash);
    if (++f->dd_gen_ids < FSM_DD_GEN_IDS)
        return;
    /* The full generations now cover the window: the oldest can go. */
    f->dd_gen = (f->dd_gen + 1) % FSM_DD_GENS;
    f->dd_gen_ids = 0;
    for (uint32_t w = 0; w < FSM_DD_FILTER_WORDS; w++)
        f->dd_filter[w * FSM_DD_GENS + f->dd_gen] = 0;
}

static void dedupe_forget_oldest(struct fsm *f)
{
    map_del_idx(&f->dd_map, f->dd[f->dd_head].hash, f->dd_head);
    f->dd_head = (f->dd_head + 1) % FSM_DEDUPE_MAX;
    f->dd_len--;
}

static int dedupe_lookup(const struct fsm *f, struct mp_str id, uint32_t hash,
                         struct proto_result *r)
{
    int64_t i;
    if (!dd_filter_may_have(f, hash) ||
        (i = map_find_hashed(&f->dd_map, hash, id.p, id.n)) < 0)
        return 0;
    const struct fsm_dedupe *d = &f->dd[i];
    r->code = d->code;
    r->vlan = d->vlan;
    r->gen = d->gen;
    memcpy(r->msg, d->msg ? d->msg : "", d->msg ? d->msg_len + 1u : 1);
    return 1;
}

static int dedupe_put(struct fsm *f, struct mp_str id, uint32_t hash,
                      const struct proto_result *r)
{
    size_t mlen = strnlen(r->msg, sizeof r->msg - 1);
    if (f->dd_len == FSM_DEDUPE_MAX)
        dedupe_forget_oldest(f);
    uint32_t slot = (f->dd_head + f->dd_len) % FSM_DEDUPE_MAX;
    if (map_put_hashed(&f->dd_map, hash, slot) != 0)
        return VC_ENOMEM;
    char *p = dd_bytes_alloc(f, id.n + 1 + (mlen ? mlen + 1 : 0));
    if (!p) {
        map_del_idx(&f->dd_map, hash, slot);
        return VC_ENOMEM;
    }
    struct fsm_dedupe *d = &f->dd[slot];
    mp_str_copy(id, p, id.n + 1);
    d->id = p;
    d->id_len = id.n;
    d->msg = mlen ? p + id.n + 1 : NULL;
    if (mlen)
        memcpy(d->msg, r->msg, mlen + 1);
    d->msg_len = (uint16_t)mlen;
    d->hash = hash;
    d->code = r->code;
    d->vlan = r->vlan;
    d->gen = r->gen;
    f->dd_len++;
    dd_filter_add(f, hash);
    return 0;
}

/* The window is larger than the cache. Start loading what this command's
 * put will touch (its index slot, the next ring entry, the next record's
 * bytes) now, behind the handler. The index slot of the entry the put
 * evicts is a miss too; prefetching it, even many commands ahead, did not
 * help on the machine this was measured on (branch perf/dedupe-chains
 * removes that access instead). */
static void dedupe_prefetch(const struct fsm *f, uint32_t hash)
{
    map_prefetch(&f->dd_map, hash);
    __builtin_prefetch(dd_at(f, f->dd_len + 16), 1);
    if (f->dd_bytes)
        __builtin_prefetch(f->dd_bytes +
                               (f->dd_tail + 256) % f->dd_bytes_cap, 1);
}

void fsm_prefetch(const struct fsm *f, const struct proto_cmd *cmd)
{
    if (!cmd->req_id.n)
        return;
    uint32_t hash = map_hash(cmd->req_id.p, cmd->req_id.n);
    __builtin_prefetch(dd_filter_word(f, 0, hash), 0);
    map_prefetch(&f->dd_map, hash);
}

int fsm_dedupe_put(struct fsm *f, struct mp_str id,
                   const struct proto_result *r)
{
    return dedupe_put(f, id, map_hash(id.p, id.n), r);
}

typedef int (*cmd_fn)(struct fsm *, const struct proto_cmd *,
                      struct proto_result *);

static int cmd_service_add(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    return cmd_service(f, c, r, true);
}

static int cmd_service_remove(struct fsm *f, const struct proto_cmd *c,
                              struct proto_result *r)
{
    return cmd_service(f, c, r, false);
}

static const cmd_fn handlers[PROTO_CMD_TYPE_MAX + 1] = {
    [PROTO_CMD_SITE_ADD] = cmd_site_add,
    [PROTO_CMD_SITE_UPDATE] = cmd_site_update,
    [PROTO_CMD_SITE_REMOVE] = cmd_site_remove,
    [PROTO_CMD_POOL_SET] = cmd_pool_set,
    [PROTO_CMD_HOST_ADD] = cmd_host_add,
    [PROTO_CMD_HOST_REMOVE] = cmd_host_remove,
    [PROTO_CMD_SERVICE_ADD] = cmd_service_add,
    [PROTO_CMD_SERVICE_REMOVE] = cmd_service_remove,
    [PROTO_CMD_CLUSTER_CREATE] = cmd_cluster_create,
    [PROTO_CMD_CLUSTER_EXTEND] = cmd_cluster_extend,
    [PROTO_CMD_CLUSTER_SHRINK] = cmd_cluster_shrink,
    [PROTO_CMD_CLUSTER_RENEW] = cmd_cluster_renew,
    [PROTO_CMD_CLUSTER_RELEASE] = cmd_cluster_release,
    [PROTO_CMD_LEASE_SWEEP] = cmd_lease_sweep,
    [PROTO_CMD_ATTACH] = cmd_attach,
    [PROTO_CMD_DETACH] = cmd_detach,
    [PROTO_CMD_APPLY_REPORT] = cmd_apply_report,
    [PROTO_CMD_CLUSTER_ROLLBACK] = cmd_cluster_rollback,
    [PROTO_CMD_SITE_KEY] = fsm_auth_site_key,
    [PROTO_CMD_ROLE_ADD] = fsm_auth_role_add,
    [PROTO_CMD_ROLE_REMOVE] = fsm_auth_role_remove,
    [PROTO_CMD_INVITE_ADD] = fsm_auth_invite_add,
    [PROTO_CMD_INVITE_REMOVE] = fsm_auth_invite_remove,
};

int fsm_apply(struct fsm *f, const struct proto_cmd *cmd,
              struct proto_result *r)
{
    uint32_t hash = cmd->req_id.n ? map_hash(cmd->req_id.p, cmd->req_id.n) : 0;
    int rv;
    memset(r, 0, offsetof(struct proto_result, msg));
    r->msg[0] = '\0';
    if (cmd->req_id.n) {
        dedupe_prefetch(f, hash);
        if (dedupe_lookup(f, cmd->req_id, hash, r))
            return 0;
    }
    if (cmd->type < 1 || cmd->type > PROTO_CMD_TYPE_MAX ||
        !handlers[cmd->type])
        rv = fail(r, VC_EINVAL, "unknown command type %u", cmd->type);
    else
        rv = handlers[cmd->type](f, cmd, r);
    if (rv != 0)
        return rv;
    f->applied++;
    if ((rv = fsm_audit_record(&f->audit, cmd, r)) != 0)
        return rv; /* out of memory, like the handlers */
    if (cmd->req_id.n)
        return dedupe_put(f, cmd->req_id, hash, r);
    return 0;
}
