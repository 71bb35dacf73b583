/* virtcloud-bench-fsm: create+release pairs per second through the whole
 * replicated path of one command: encode -> bounded decode -> apply.
 *
 *   virtcloud-bench-fsm [--pairs N] [--sites S] [--span K] [--live L]
 *                       [--managed]
 *
 * S sites with the full 1..4094 pool; L clusters stay live throughout
 * (each new create is paired with the release of the oldest), each over K
 * sites chosen by a fixed-seed PRNG. --managed makes every site report its
 * removal, adding one apply-report command per site per release.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/fsm.h"
#include "proto/err.h"

static struct fsm fsm;
static struct mp_buf buf;
static msgpack_zone zone;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned long commands;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void through_log(const struct proto_cmd *c, struct proto_result *r)
{
    static struct proto_cmd dec;
    char err[256];
    size_t n;
    mp_buf_reset(&buf);
    msgpack_zone_clear(&zone);
    if (proto_batch_encode(c, 1, &buf, err, sizeof err) != 0 ||
        proto_batch_decode(buf.data, buf.len, &zone, &dec, 1, &n, err,
                           sizeof err) != 0 ||
        fsm_apply(&fsm, &dec, r) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    commands++;
}

static char site_names[VC_SITES_MAX][16];

static void add_sites(int n, bool managed)
{
    struct proto_cmd c;
    struct proto_result r;
    for (int i = 0; i < n; i++) {
        proto_cmd_init(&c, PROTO_CMD_SITE_ADD);
        snprintf(site_names[i], sizeof site_names[i], "site%02d", i);
        c.name = mp_cstr(site_names[i]);
        vlanset_add_range(&c.pool, 1, 4094);
        c.managed = managed;
        through_log(&c, &r);
    }
}

static void create(unsigned long i, int nsites, int span, uint64_t t)
{
    struct proto_cmd c;
    struct proto_result r;
    char name[32], req[32];
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
    snprintf(name, sizeof name, "c%lu", i);
    snprintf(req, sizeof req, "bench:%lu", i);
    c.name = mp_cstr(name);
    c.req_id = mp_cstr(req);
    c.owner = mp_cstr("bench");
    c.lease_ms = 3600 * 1000;
    c.time_ms = t;
    while (c.nsites < (uint32_t)span) {
        const char *s = site_names[next_rand() % (uint64_t)nsites];
        bool dup = false;
        for (uint32_t j = 0; j < c.nsites; j++)
            dup |= c.sites[j].p == s;
        if (!dup)
            c.sites[c.nsites++] = mp_cstr(s);
    }
    through_log(&c, &r);
    if (r.code != 0) {
        fprintf(stderr, "bench: create %s: %s\n", name, r.msg);
        exit(1);
    }
}

static void release(unsigned long i, bool managed, uint64_t t)
{
    struct proto_cmd c;
    struct proto_result r;
    char name[32], req[32];
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_RELEASE);
    snprintf(name, sizeof name, "c%lu", i);
    snprintf(req, sizeof req, "bench:%lu:rel", i);
    c.name = mp_cstr(name);
    c.req_id = mp_cstr(req);
    c.time_ms = t;
    struct fsm_cluster *cl = fsm_cluster_find(&fsm, name);
    uint8_t sites[VC_SITES_MAX];
    uint32_t ns = cl ? cl->nslots : 0;
    for (uint32_t j = 0; j < ns; j++)
        sites[j] = cl->slots[j].site;
    through_log(&c, &r);
    if (r.code != 0) {
        fprintf(stderr, "bench: release %s: %s\n", name, r.msg);
        exit(1);
    }
    for (uint32_t j = 0; managed && j < ns; j++) {
        proto_cmd_init(&c, PROTO_CMD_APPLY_REPORT);
        c.name = mp_cstr(name);
        c.site = mp_cstr(fsm.sites[sites[j]].name);
        c.gen = r.gen;
        c.ok = true;
        c.time_ms = t;
        struct proto_result rr;
        through_log(&c, &rr);
    }
}

int main(int argc, char **argv)
{
    unsigned long pairs = 2000000, live = 2000;
    int nsites = 50, span = 3;
    bool managed = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
            pairs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--sites") && i + 1 < argc)
            nsites = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--span") && i + 1 < argc)
            span = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--live") && i + 1 < argc)
            live = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--managed"))
            managed = true;
        else {
            fprintf(stderr, "usage: %s [--pairs N] [--sites S] [--span K] "
                            "[--live L] [--managed]\n", argv[0]);
            return 2;
        }
    }
    if (nsites < 1 || nsites > VC_SITES_MAX || span < 1 || span > nsites ||
        live > 4000) {
        fprintf(stderr, "bench: need 1 <= span <= sites <= %d, live <= 4000\n",
                VC_SITES_MAX);
        return 2;
    }
    fsm_init(&fsm);
    mp_buf_init(&buf);
    msgpack_zone_init(&zone, 4096);
    add_sites(nsites, managed);
    uint64_t t = 1764115200000ull;
    for (unsigned long i = 0; i < live; i++)
        create(i, nsites, span, t);
    commands = 0;
    double t0 = now_s();
    for (unsigned long i = 0; i < pairs; i++) {
        create(live + i, nsites, span, ++t);
        release(i, managed, t);
    }
    double dt = now_s() - t0;
    printf("sites=%d span=%d live=%lu managed=%d pairs=%lu commands=%lu "
           "seconds=%.3f\n",
           nsites, span, live, managed, pairs, commands, dt);
    printf("pairs_per_s=%.0f commands_per_s=%.0f ns_per_command=%.0f\n",
           pairs / dt, commands / dt, dt * 1e9 / (double)commands);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&buf);
    fsm_close(&fsm);
    return 0;
}
