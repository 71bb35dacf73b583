#include "fuzz_state.h"

#include <string.h>

#include "fuzz.h"
#include "proto/err.h"
#include "tests/sim/check.h"

static void run(struct fsm *f, struct proto_cmd *c, const char *req)
{
    struct proto_result r;
    char err[256];
    c->req_id = mp_cstr(req ? req : "");
    c->origin = mp_cstr("fuzz");
    if (!c->time_ms)
        c->time_ms = FUZZ_TIME0;
    FUZZ_CHECK(proto_cmd_validate(c, err, sizeof err) == 0, "%s", err);
    FUZZ_CHECK(fsm_apply(f, c, &r) == 0, "apply");
    FUZZ_CHECK(r.code == 0, "baseline %s: %s", proto_cmd_name(c->type),
               r.msg);
}

static void site(struct fsm *f, const char *name, unsigned lo, unsigned hi,
                 bool managed, int uplink)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_SITE_ADD);
    c.name = mp_cstr(name);
    vlanset_add_range(&c.pool, lo, hi);
    c.managed = managed;
    c.uplink = (uint8_t)uplink;
    c.svlan = uplink == UPLINK_QINQ ? 3000 : 0;
    run(f, &c, NULL);
}

static void named(struct fsm *f, int type, const char *name, const char *site,
                  const char *req)
{
    struct proto_cmd c;
    proto_cmd_init(&c, type);
    c.name = mp_cstr(name);
    c.site = mp_cstr(site ? site : "");
    c.iface = mp_cstr("eth0");
    c.lease_ms = 30000;
    run(f, &c, req);
}

static void create(struct fsm *f, const char *name, const char *s1,
                   const char *s2, const char *s3, const char *req)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
    c.name = mp_cstr(name);
    c.owner = mp_cstr("alice");
    c.lease_ms = 30000;
    c.sites[c.nsites++] = mp_cstr(s1);
    if (s2)
        c.sites[c.nsites++] = mp_cstr(s2);
    if (s3)
        c.sites[c.nsites++] = mp_cstr(s3);
    run(f, &c, req);
}

static void report(struct fsm *f, const char *cluster, const char *site,
                   uint64_t gen, bool ok)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_APPLY_REPORT);
    c.name = mp_cstr(cluster);
    c.site = mp_cstr(site);
    c.gen = gen;
    c.ok = ok;
    c.text = mp_cstr(ok ? "" : "switch sw1: timeout");
    run(f, &c, NULL);
}

void fuzz_baseline(struct fsm *f)
{
    struct proto_cmd c;
    site(f, "s0", 100, 130, true, UPLINK_XPONDER);
    site(f, "s1", 110, 140, false, UPLINK_VPLS);
    site(f, "s2", 100, 200, true, UPLINK_QINQ);
    site(f, "s3", 120, 125, true, UPLINK_XPONDER);
    named(f, PROTO_CMD_HOST_ADD, "h0", "s0", "base-h0");
    named(f, PROTO_CMD_HOST_ADD, "h1", "s1", NULL);
    named(f, PROTO_CMD_HOST_ADD, "h2", "s2", NULL);
    named(f, PROTO_CMD_SERVICE_ADD, "h2", NULL, NULL);
    create(f, "c0", "s0", "s1", NULL, "base-c0");
    create(f, "c1", "s0", "s2", NULL, "base-c1");
    create(f, "c2", "s1", "s2", "s3", NULL);
    proto_cmd_init(&c, PROTO_CMD_ATTACH);
    c.name = mp_cstr("c0");
    c.host = mp_cstr("h0");
    c.iface = mp_cstr("vnet0");
    run(f, &c, "base-att");
    report(f, "c0", "s0", fsm_cluster_find(f, "c0")->gen, true);
    report(f, "c1", "s2", fsm_cluster_find(f, "c1")->gen, false);
    named(f, PROTO_CMD_CLUSTER_SHRINK, "c2", "s3", NULL);
    named(f, PROTO_CMD_CLUSTER_RELEASE, "c1", NULL, "base-rel");
}

static void check(const struct fsm *f, const char *step)
{
    char err[256];
    FUZZ_CHECK(check_fsm(f, err, sizeof err) == 0, "%s: %s", step, err);
}

void fuzz_drain(struct fsm *f)
{
    struct proto_cmd c;
    struct proto_result r;
    proto_cmd_init(&c, PROTO_CMD_LEASE_SWEEP);
    c.time_ms = UINT64_MAX / 2;
    FUZZ_CHECK(fsm_apply(f, &c, &r) == 0, "sweep");
    check(f, "sweep");
    /* Every site reports every slot applied: removals complete. */
    for (uint32_t i = 0; i < f->nclusters; i++) {
        struct fsm_cluster *cl = &f->clusters[i];
        char name[VC_NAME_MAX + 1];
        if (!cl->live)
            continue;
        memcpy(name, cl->name, sizeof name);
        for (uint32_t j = cl->nslots; cl->live && j-- > 0;) {
            char site[VC_NAME_MAX + 1];
            memcpy(site, f->sites[cl->slots[j].site].name, sizeof site);
            proto_cmd_init(&c, PROTO_CMD_APPLY_REPORT);
            c.name = mp_cstr(name);
            c.site = mp_cstr(site);
            c.gen = cl->gen;
            c.ok = true;
            FUZZ_CHECK(fsm_apply(f, &c, &r) == 0, "report");
            check(f, "report");
            if (!fsm_cluster_find(f, name))
                break;
        }
    }
    for (int s = 0; s < VC_SITES_MAX; s++) {
        char site[VC_NAME_MAX + 1];
        if (!f->sites[s].live)
            continue;
        memcpy(site, f->sites[s].name, sizeof site);
        proto_cmd_init(&c, PROTO_CMD_SITE_REMOVE);
        c.name = mp_cstr(site);
        c.force = true;
        FUZZ_CHECK(fsm_apply(f, &c, &r) == 0 && r.code == 0, "remove %s: %s",
                   site, r.msg);
        check(f, "site remove");
    }
    FUZZ_CHECK(f->live_clusters == 0 && f->nsites == 0,
               "%u clusters, %u sites left", f->live_clusters, f->nsites);
}
