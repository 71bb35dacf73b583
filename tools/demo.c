/* virtcloud-demo: drives the replicated state machine through a realistic
 * day at a four-site research network and prints clusters and VLANs.
 *
 * Every command goes the way it goes in the live system: encoded into a
 * log-entry batch, decoded by the bounded decoder, applied, and the state
 * machine's snapshot is checked to survive a restore byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/fsm.h"
#include "proto/err.h"

static struct fsm fsm;
static uint64_t now_ms = 1764115200000ull; /* 2025-11-26 00:00 UTC */
static int step;

static void run(struct proto_cmd *c, const char *what)
{
    struct mp_buf buf;
    struct proto_cmd dec;
    struct proto_result r;
    msgpack_zone zone;
    char err[256];
    size_t n;
    c->time_ms = now_ms;
    c->origin = mp_cstr("demo");
    mp_buf_init(&buf);
    msgpack_zone_init(&zone, 2048);
    if (proto_batch_encode(c, 1, &buf, err, sizeof err) != 0 ||
        proto_batch_decode(buf.data, buf.len, &zone, &dec, 1, &n, err,
                           sizeof err) != 0 ||
        fsm_apply(&fsm, &dec, &r) != 0) {
        fprintf(stderr, "demo: %s: %s\n", what, err);
        exit(1);
    }
    printf("%3d  %-44s %-9s %s\n", ++step, what,
           r.code ? vc_errname(r.code) : "ok", r.msg);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&buf);
}

static void site(const char *name, const char *pool, int uplink,
                 unsigned svlan, bool managed)
{
    struct proto_cmd c;
    char err[128], what[64];
    proto_cmd_init(&c, PROTO_CMD_SITE_ADD);
    c.name = mp_cstr(name);
    vlanset_parse(&c.pool, pool, err, sizeof err);
    c.uplink = (uint8_t)uplink;
    c.svlan = (uint16_t)svlan;
    c.managed = managed;
    snprintf(what, sizeof what, "site add %s pool %s", name, pool);
    run(&c, what);
}

static void host(const char *name, const char *site_name, const char *trunk)
{
    struct proto_cmd c;
    char what[64];
    proto_cmd_init(&c, PROTO_CMD_HOST_ADD);
    c.name = mp_cstr(name);
    c.site = mp_cstr(site_name);
    c.iface = mp_cstr(trunk);
    snprintf(what, sizeof what, "host add %s at %s", name, site_name);
    run(&c, what);
}

static void create(const char *name, const char *owner, const char *sites,
                   uint64_t lease_ms, const char *req)
{
    static char buf[8][256];
    static int k;
    struct proto_cmd c;
    char what[80];
    char *copy = buf[k++ % 8], *save, *tok;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
    c.name = mp_cstr(name);
    c.owner = mp_cstr(owner);
    c.lease_ms = lease_ms;
    c.req_id = mp_cstr(req);
    snprintf(copy, 256, "%s", sites);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        c.sites[c.nsites++] = mp_cstr(tok);
    snprintf(what, sizeof what, "cluster create %s --sites %s", name, sites);
    run(&c, what);
}

static void simple(int type, const char *name, const char *site_name,
                   const char *what)
{
    struct proto_cmd c;
    proto_cmd_init(&c, type);
    c.name = mp_cstr(name);
    c.site = mp_cstr(site_name ? site_name : "");
    c.lease_ms = 8 * 3600 * 1000;
    run(&c, what);
}

static void attach(int type, const char *cl, const char *h, const char *ifc,
                   const char *what)
{
    struct proto_cmd c;
    proto_cmd_init(&c, type);
    c.name = mp_cstr(cl);
    c.host = mp_cstr(h);
    c.iface = mp_cstr(ifc);
    run(&c, what);
}

static void report(const char *cl, const char *site_name, bool okay,
                   const char *text)
{
    struct fsm_cluster *c = fsm_cluster_find(&fsm, cl);
    struct proto_cmd cmd;
    char what[80];
    proto_cmd_init(&cmd, PROTO_CMD_APPLY_REPORT);
    cmd.name = mp_cstr(cl);
    cmd.site = mp_cstr(site_name);
    cmd.gen = c ? c->gen : 0;
    cmd.ok = okay;
    cmd.text = mp_cstr(text);
    snprintf(what, sizeof what, "%s reports %s gen %llu %s", site_name, cl,
             (unsigned long long)cmd.gen, okay ? "applied" : "FAILED");
    run(&cmd, what);
}

static void print_state(const char *title)
{
    printf("\n== %s ==\n", title);
    printf("%-10s %-7s %-12s %s\n", "SITE", "UPLINK", "FREE VLANS", "POOL");
    for (int i = 0; i < VC_SITES_MAX; i++) {
        const struct fsm_site *s = &fsm.sites[i];
        char pool[64];
        if (!s->live)
            continue;
        printf("%-10s %-7s %4u of %-4u %s\n", s->name,
               proto_uplink_name(s->uplink), vlanset_count(&s->free),
               vlanset_count(&s->pool), vlanset_format(&s->pool, pool, sizeof pool));
    }
    printf("%-10s %-5s %-10s %-6s %-4s %s\n", "CLUSTER", "VLAN", "STATE",
           "OWNER", "GEN", "SITES");
    for (uint32_t i = 0; i < fsm.nclusters; i++) {
        const struct fsm_cluster *c = &fsm.clusters[i];
        if (!c->live)
            continue;
        printf("%-10s %-5u %-10s %-6s %-4llu", c->name, c->vlan,
               fsm_state_name(c->state), c->owner,
               (unsigned long long)c->gen);
        for (uint32_t j = 0; j < c->nslots; j++) {
            const struct fsm_slot *s = &c->slots[j];
            printf(" %s(%s)", fsm.sites[s->site].name,
                   s->removing ? "removing" : s->failed ? "failed"
                   : s->applied >= s->gen ? "applied" : "pending");
        }
        printf("\n");
    }
    printf("\n");
}

static void check_snapshot(void)
{
    struct mp_buf a, b;
    struct fsm copy;
    char err[256];
    mp_buf_init(&a);
    mp_buf_init(&b);
    fsm_init(&copy);
    if (fsm_snapshot(&fsm, &a) || fsm_restore(&copy, a.data, a.len, err, sizeof err) ||
        fsm_snapshot(&copy, &b) || a.len != b.len || memcmp(a.data, b.data, a.len)) {
        fprintf(stderr, "demo: snapshot round trip failed\n");
        exit(1);
    }
    printf("snapshot: %zu bytes, restore -> snapshot identical\n", a.len);
    fsm_close(&copy);
    mp_buf_close(&a);
    mp_buf_close(&b);
}

int main(void)
{
    const uint64_t hour = 3600 * 1000;
    if (fsm_init(&fsm) != 0)
        return 1;
    printf("VirtCloud state machine demo: four sites of a state-wide network\n\n");
    site("brno", "100-999,2000-2999", UPLINK_XPONDER, 0, true);
    site("praha", "100-499", UPLINK_VPLS, 0, true);
    site("plzen", "300-1200", UPLINK_QINQ, 3001, true);
    site("ostrava", "3000-3100", UPLINK_VPLS, 0, false);
    host("skirit1", "brno", "eth1");
    host("skirit2", "brno", "eth1");
    host("hal1", "praha", "bond0");
    host("konos1", "plzen", "eth2");
    simple(PROTO_CMD_SERVICE_ADD, "skirit2", NULL, "service add skirit2 (file server)");
    create("physics", "alice", "brno,praha", 8 * hour, "slurm:1001");
    create("physics", "alice", "brno,praha", 8 * hour, "slurm:1001");
    create("chem", "bob", "brno,plzen", 2 * hour, "slurm:1002");
    create("bio", "carol", "praha,plzen", 24 * hour, "pbs:77.meta");
    create("climate", "dave", "brno,ostrava", hour, "slurm:1003");
    report("physics", "brno", true, "");
    report("physics", "praha", true, "");
    report("chem", "brno", true, "");
    report("chem", "plzen", false, "switch plzen-sw1: vlan 300: % Invalid input");
    print_state("after the morning's jobs");
    attach(PROTO_CMD_ATTACH, "physics", "skirit1", "vnet0", "attach physics skirit1/vnet0");
    attach(PROTO_CMD_ATTACH, "physics", "konos1", "vnet0", "attach physics konos1/vnet0");
    simple(PROTO_CMD_CLUSTER_EXTEND, "physics", "plzen", "cluster extend physics --site plzen");
    simple(PROTO_CMD_CLUSTER_EXTEND, "chem", "praha", "cluster extend chem --site praha");
    report("chem", "plzen", true, "");
    simple(PROTO_CMD_CLUSTER_RENEW, "physics", NULL, "cluster renew physics --lease 8h");
    now_ms += 3 * hour;
    {
        struct proto_cmd c;
        proto_cmd_init(&c, PROTO_CMD_LEASE_SWEEP);
        run(&c, "lease sweep (+3h)");
    }
    create("astro", "erin", "ostrava,praha", hour, "slurm:1004");
    simple(PROTO_CMD_CLUSTER_RELEASE, "physics", NULL, "cluster release physics");
    report("chem", "brno", true, "");
    report("chem", "plzen", true, "");
    print_state("after the lease sweep");
    check_snapshot();
    fsm_close(&fsm);
    return 0;
}
