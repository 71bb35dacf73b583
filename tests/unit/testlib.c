#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *dup_exact(const void *data, size_t len)
{
    void *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, data, len);
    return p;
}

void assert_contains_at(const char *hay, const char *needle, const char *file,
                        int line)
{
    if (!strstr(hay, needle)) {
        print_error("\"%s\" does not contain \"%s\"\n", hay, needle);
        _fail(file, line);
    }
}

void assert_not_contains_at(const char *hay, const char *needle,
                            const char *file, int line)
{
    if (strstr(hay, needle)) {
        print_error("\"%s\" contains \"%s\"\n", hay, needle);
        _fail(file, line);
    }
}

/* --- fixture ----------------------------------------------------------- */

struct tfsm *tfsm_new(void)
{
    struct tfsm *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(fsm_init(&t->f), 0);
    t->now = 1000000000000ull;
    return t;
}

void tfsm_free(struct tfsm *t)
{
    if (!t)
        return;
    fsm_close(&t->f);
    free(t);
}

void t_apply(struct fsm *f, const struct proto_cmd *cmd,
             struct proto_result *r)
{
    assert_int_equal(fsm_apply(f, cmd, r), 0);
}

int t_run(struct tfsm *t, struct proto_cmd *cmd)
{
    struct mp_buf buf;
    struct proto_cmd *dec = malloc(sizeof *dec);
    msgpack_zone zone;
    char err[256] = "";
    size_t n = 0;
    assert_non_null(dec);
    cmd->time_ms = t->now;
    cmd->origin = mp_cstr("unit");
    cmd->req_id = mp_cstr(t->req ? t->req : "");
    mp_buf_init(&buf);
    assert_true(msgpack_zone_init(&zone, 1024));
    if (proto_batch_encode(cmd, 1, &buf, err, sizeof err) != 0)
        fail_msg("encode %s: %s", proto_cmd_name(cmd->type), err);
    if (proto_batch_decode(buf.data, buf.len, &zone, dec, 1, &n, err,
                           sizeof err) != 0)
        fail_msg("decode %s: %s", proto_cmd_name(cmd->type), err);
    assert_int_equal(n, 1);
    t_apply(&t->f, dec, &t->r);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&buf);
    free(dec);
    return t->r.code;
}

static struct proto_cmd *new_cmd(int type)
{
    struct proto_cmd *c = malloc(sizeof *c);
    assert_non_null(c);
    proto_cmd_init(c, type);
    return c;
}

static int run_free(struct tfsm *t, struct proto_cmd *c)
{
    int rv = t_run(t, c);
    free(c);
    return rv;
}

static void set_pool(struct proto_cmd *c, const char *pool)
{
    char err[128];
    if (pool[0] == '\0') {
        vlanset_clear(&c->pool);
        return;
    }
    if (vlanset_parse(&c->pool, pool, err, sizeof err) != 0)
        fail_msg("test pool \"%s\": %s", pool, err);
}

int t_site_add_full(struct tfsm *t, const char *name, const char *pool,
                    bool managed, int uplink, unsigned svlan,
                    const char *addr)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_SITE_ADD);
    c->name = mp_cstr(name);
    set_pool(c, pool);
    c->managed = managed;
    c->uplink = (uint8_t)uplink;
    c->svlan = (uint16_t)svlan;
    c->addr = mp_cstr(addr);
    return run_free(t, c);
}

int t_site_add(struct tfsm *t, const char *name, const char *pool,
               bool managed)
{
    return t_site_add_full(t, name, pool, managed, UPLINK_XPONDER, 0, "");
}

int t_site_update(struct tfsm *t, const char *name, const char *pool,
                  bool managed)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_SITE_UPDATE);
    c->name = mp_cstr(name);
    set_pool(c, pool);
    c->managed = managed;
    return run_free(t, c);
}

int t_site_remove(struct tfsm *t, const char *name, bool force)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_SITE_REMOVE);
    c->name = mp_cstr(name);
    c->force = force;
    return run_free(t, c);
}

int t_pool_set(struct tfsm *t, const char *name, const char *pool)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_POOL_SET);
    c->name = mp_cstr(name);
    set_pool(c, pool);
    return run_free(t, c);
}

int t_host_add(struct tfsm *t, const char *name, const char *site,
               const char *trunk)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_HOST_ADD);
    c->name = mp_cstr(name);
    c->site = mp_cstr(site);
    c->iface = mp_cstr(trunk);
    return run_free(t, c);
}

int t_host_remove(struct tfsm *t, const char *name)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_HOST_REMOVE);
    c->name = mp_cstr(name);
    return run_free(t, c);
}

int t_service(struct tfsm *t, const char *host, bool on)
{
    struct proto_cmd *c =
        new_cmd(on ? PROTO_CMD_SERVICE_ADD : PROTO_CMD_SERVICE_REMOVE);
    c->name = mp_cstr(host);
    return run_free(t, c);
}

int t_create(struct tfsm *t, const char *name, const char *sites,
             uint64_t lease_ms)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_CLUSTER_CREATE);
    char *copy = strdup(sites), *save = NULL, *tok;
    assert_non_null(copy);
    c->name = mp_cstr(name);
    c->owner = mp_cstr("alice");
    c->lease_ms = lease_ms;
    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        c->sites[c->nsites++] = mp_cstr(tok);
    int rv = run_free(t, c);
    free(copy);
    return rv;
}

static int name_site(struct tfsm *t, int type, const char *name,
                     const char *site)
{
    struct proto_cmd *c = new_cmd(type);
    c->name = mp_cstr(name);
    c->site = mp_cstr(site);
    return run_free(t, c);
}

int t_extend(struct tfsm *t, const char *name, const char *site)
{
    return name_site(t, PROTO_CMD_CLUSTER_EXTEND, name, site);
}

int t_shrink(struct tfsm *t, const char *name, const char *site)
{
    return name_site(t, PROTO_CMD_CLUSTER_SHRINK, name, site);
}

int t_renew(struct tfsm *t, const char *name, uint64_t lease_ms)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_CLUSTER_RENEW);
    c->name = mp_cstr(name);
    c->lease_ms = lease_ms;
    return run_free(t, c);
}

int t_release(struct tfsm *t, const char *name, bool force)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_CLUSTER_RELEASE);
    c->name = mp_cstr(name);
    c->force = force;
    return run_free(t, c);
}

int t_sweep(struct tfsm *t)
{
    return run_free(t, new_cmd(PROTO_CMD_LEASE_SWEEP));
}

static int host_iface(struct tfsm *t, int type, const char *cluster,
                      const char *host, const char *iface)
{
    struct proto_cmd *c = new_cmd(type);
    c->name = mp_cstr(cluster);
    c->host = mp_cstr(host);
    c->iface = mp_cstr(iface);
    return run_free(t, c);
}

int t_attach(struct tfsm *t, const char *cluster, const char *host,
             const char *iface)
{
    return host_iface(t, PROTO_CMD_ATTACH, cluster, host, iface);
}

int t_detach(struct tfsm *t, const char *cluster, const char *host,
             const char *iface)
{
    return host_iface(t, PROTO_CMD_DETACH, cluster, host, iface);
}

int t_report(struct tfsm *t, const char *cluster, const char *site,
             uint64_t gen, bool ok, const char *text)
{
    struct proto_cmd *c = new_cmd(PROTO_CMD_APPLY_REPORT);
    c->name = mp_cstr(cluster);
    c->site = mp_cstr(site);
    c->gen = gen;
    c->ok = ok;
    c->text = mp_cstr(text);
    return run_free(t, c);
}

int t_report_ok(struct tfsm *t, const char *cluster, const char *site)
{
    return t_report(t, cluster, site, t_cluster(t, cluster)->gen, true, "");
}

struct fsm_cluster *t_cluster(struct tfsm *t, const char *name)
{
    struct fsm_cluster *c = fsm_cluster_find(&t->f, name);
    if (!c)
        fail_msg("no cluster %s", name);
    return c;
}

struct fsm_site *t_site(struct tfsm *t, const char *name)
{
    struct fsm_site *s = fsm_site_find(&t->f, name);
    if (!s)
        fail_msg("no site %s", name);
    return s;
}

struct fsm_slot *t_slot(struct tfsm *t, const char *cluster, const char *site)
{
    struct fsm_site *s = t_site(t, site);
    return fsm_cluster_slot(t_cluster(t, cluster),
                            (unsigned)(s - t->f.sites));
}

/* --- snapshots --------------------------------------------------------- */

void snap_take(const struct fsm *f, struct mp_buf *b)
{
    mp_buf_init(b);
    assert_int_equal(fsm_snapshot(f, b), 0);
    assert_false(b->oom);
}

void snap_restore_same(const struct fsm *f, struct fsm *g)
{
    struct mp_buf a, b;
    char err[256];
    snap_take(f, &a);
    assert_int_equal(fsm_init(g), 0);
    if (fsm_restore(g, a.data, a.len, err, sizeof err) != 0)
        fail_msg("restore of a fresh snapshot: %s", err);
    snap_take(g, &b);
    assert_bufs_equal(&a, &b);
    mp_buf_close(&a);
    mp_buf_close(&b);
}

void assert_bufs_equal(const struct mp_buf *a, const struct mp_buf *b)
{
    if (a->len != b->len) {
        print_error("snapshots differ in length: %zu vs %zu\n", a->len,
                    b->len);
        fail();
    }
    for (size_t i = 0; i < a->len; i++)
        if (a->data[i] != b->data[i]) {
            print_error("snapshots differ at byte %zu of %zu\n", i, a->len);
            fail();
        }
}

void assert_snap_is(const struct fsm *f, const struct mp_buf *b)
{
    struct mp_buf now;
    snap_take(f, &now);
    assert_bufs_equal(&now, b);
    mp_buf_close(&now);
}

/* --- invariants -------------------------------------------------------- */

static void check_cluster(const struct fsm *f, const struct fsm_cluster *c,
                          struct vlanset *used, uint32_t *nslots)
{
    bool pending = false, active = false;
    assert_in_range(c->vlan, VLAN_MIN, VLAN_MAX);
    assert_true(c->nslots >= 1);
    assert_true(c->gen >= 1);
    assert_ptr_equal(fsm_cluster_find(f, c->name), c);
    for (uint32_t j = 0; j < c->nslots; j++) {
        const struct fsm_slot *sl = &c->slots[j];
        assert_true(sl->site < VC_SITES_MAX);
        assert_true(f->sites[sl->site].live);
        for (uint32_t k = 0; k < j; k++)
            assert_int_not_equal(c->slots[k].site, sl->site);
        if (vlanset_has(&used[sl->site], c->vlan))
            fail_msg("VLAN %u held twice at site %s (cluster %s)", c->vlan,
                     f->sites[sl->site].name, c->name);
        vlanset_add(&used[sl->site], c->vlan);
        nslots[sl->site]++;
        assert_true(sl->gen <= c->gen);
        assert_true(sl->applied <= c->gen);
        if (sl->applied < sl->gen)
            pending = true;
        active |= !sl->removing;
        /* Shrinking leaves removing slots on a live cluster; a released
         * one has nothing but removing slots. */
        if (c->state == FSM_RELEASING)
            assert_true(sl->removing);
    }
    if (c->state != FSM_RELEASING && !active)
        fail_msg("cluster %s is not being released but spans no site any "
                 "more (every slot is being removed)",
                 c->name);
    if (c->state != FSM_RELEASING)
        assert_int_equal(c->state, pending ? FSM_PENDING : FSM_READY);
    else
        assert_int_equal(c->natt, 0);
    for (uint32_t j = 0; j < c->natt; j++) {
        const struct fsm_host *h = fsm_host_find(f, c->att[j].host);
        assert_non_null(h);
        assert_true(h->live);
        assert_true(proto_ifname_ok(mp_cstr(c->att[j].iface)));
        const struct fsm_slot *sl = fsm_cluster_slot(c, h->site);
        if (!sl || sl->removing)
            fail_msg("cluster %s has an attachment of %s at site %s, which "
                     "it does not span",
                     c->name, h->name, f->sites[h->site].name);
    }
}

/* One host interface is in at most one cluster (attach refuses a second). */
static void check_attachments_unique(const struct fsm *f)
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
                        fail_msg("%s/%s is attached to %s and %s",
                                 c->att[j].host, c->att[j].iface, c->name,
                                 o->name);
            }
    }
}

void check_invariants(const struct fsm *f)
{
    static struct vlanset used[VC_SITES_MAX];
    uint32_t nslots[VC_SITES_MAX] = {0}, nsites = 0, live = 0;
    memset(used, 0, sizeof used);
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        if (!c->live)
            continue;
        live++;
        check_cluster(f, c, used, nslots);
    }
    assert_int_equal(live, f->live_clusters);
    assert_int_equal(f->cluster_map.len, live);
    for (int s = 0; s < VC_SITES_MAX; s++) {
        const struct fsm_site *st = &f->sites[s];
        if (!st->live) {
            assert_int_equal(nslots[s], 0);
            continue;
        }
        nsites++;
        assert_ptr_equal(fsm_site_find(f, st->name), st);
        if (!vlanset_equal(&st->used, &used[s]))
            fail_msg("site %s: used bitmap disagrees with the clusters",
                     st->name);
        for (int w = 0; w < VLANSET_WORDS; w++) {
            assert_true(st->free.w[w] == (st->pool.w[w] & ~st->used.w[w]));
            /* A VLAN in use is always inside the pool. */
            assert_true((st->used.w[w] & ~st->pool.w[w]) == 0);
        }
        assert_int_equal(st->nslots, nslots[s]);
        assert_true(st->id < f->next_site_id);
    }
    assert_int_equal(nsites, f->nsites);
    assert_int_equal(f->site_map.len, nsites);
    uint32_t hosts = 0;
    for (uint32_t i = 0; i < f->nhosts; i++) {
        const struct fsm_host *h = &f->hosts[i];
        if (!h->live)
            continue;
        hosts++;
        assert_ptr_equal(fsm_host_find(f, h->name), h);
        assert_true(f->sites[h->site].live);
    }
    assert_int_equal(f->host_map.len, hosts);
    assert_int_equal(f->dd_map.len, f->dd_len);
    check_attachments_unique(f);
}

/* --- random commands --------------------------------------------------- */

#define ARRAY_LEN(a) (sizeof(a) / sizeof(a)[0])

void cmdgen_init(struct cmdgen *g, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->rng.s = seed;
    g->now = 1700000000000ull;
}

void cmdgen_next(struct cmdgen *g, const struct fsm *ref,
                 struct proto_cmd *c)
{
    gen_cmd(&g->rng, ref, gen_type(&g->rng), c);
    g->now += rng_below(&g->rng, 5 * 60000);
    c->time_ms = g->now;
    c->origin = mp_cstr(rng_pct(&g->rng, 50) ? "s0" : "cli");
    if (rng_pct(&g->rng, 40)) {
        char *slot = g->req[g->nreq++ % ARRAY_LEN(g->req)];
        uint32_t id = g->next_req && rng_pct(&g->rng, 10)
                          ? rng_below(&g->rng, g->next_req)
                          : g->next_req++;
        snprintf(slot, sizeof g->req[0], "r%u", id);
        c->req_id = mp_cstr(slot);
    }
}
