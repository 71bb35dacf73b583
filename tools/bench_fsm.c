/* virtcloud-bench-fsm: create+release pairs per second through the whole
 * replicated path of a command: encode -> bounded decode -> apply.
 *
 *   virtcloud-bench-fsm [--pairs N] [--sites S] [--span K] [--live L]
 *                       [--batch B] [--managed]
 *
 * S sites with the full 1..4094 pool; L clusters stay live throughout
 * (each new create is paired with the release of the oldest), each over K
 * sites chosen by a fixed-seed PRNG. --managed makes every site report its
 * removal, adding one apply-report command per site per release.
 *
 * The run is made twice, each time on a fresh state machine: with one
 * command per log entry (batch=1), then with up to B commands per entry
 * (the agent group-commits concurrent requests into one entry). Either way
 * every command is encoded, pre-scanned, decoded by msgpack-c, validated,
 * de-duplicated by its request id and applied, and every result is
 * checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/fsm.h"
#include "proto/err.h"

#define BATCH_DEFAULT 64

struct opts {
    unsigned long pairs, live;
    int nsites, span;
    size_t batch;
    bool managed;
};

/* What a queued command is about, for error messages and for the reports
 * that follow a release at managed sites. */
struct job {
    char name[24];
    char req[32];
    uint32_t nsites;
    uint8_t sites[VC_SITES_MAX];
};

/* An apply-report a managed site owes once its release is committed. */
struct report {
    char name[24];
    uint8_t site;
    uint64_t gen;
};

static struct fsm fsm;
static struct mp_buf buf;
static msgpack_zone zone;
static uint64_t rng;
static bool managed;

static struct proto_cmd *queue; /* the log entry being built */
static struct job *jobs;
static struct proto_cmd *decoded;
static struct proto_result *results;
static size_t nqueued, batch;
static unsigned long commands, entries;

static struct report *owed;
static size_t nowed, owed_cap;

static char site_names[VC_SITES_MAX][16];
static struct mp_str site_strs[VC_SITES_MAX];

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall-clock seconds, and this process's CPU seconds: on a shared machine
 * the second says what one core does while the first also counts the
 * time other processes had the core. */
struct span {
    double wall, cpu;
};

static struct span span_start(void)
{
    return (struct span){now_s(CLOCK_MONOTONIC),
                         now_s(CLOCK_PROCESS_CPUTIME_ID)};
}

static struct span span_end(struct span t0)
{
    return (struct span){now_s(CLOCK_MONOTONIC) - t0.wall,
                         now_s(CLOCK_PROCESS_CPUTIME_ID) - t0.cpu};
}

_Noreturn static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s: %s\n", what, detail);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        die("allocating", "out of memory");
    return p;
}

/* prefix + decimal i + suffix into out (at least 32 bytes), as an mp_str.
 * Names are the harness's work, not the path's: keep them cheap. */
static struct mp_str make_id(char *out, const char *prefix, size_t lp,
                             unsigned long i, const char *suffix, size_t ls)
{
    char digits[24], *d = digits + sizeof digits;
    do
        *--d = (char)('0' + i % 10);
    while (i /= 10);
    size_t n = (size_t)(digits + sizeof digits - d);
    memcpy(out, prefix, lp);
    memcpy(out + lp, d, n);
    memcpy(out + lp + n, suffix, ls + 1);
    return (struct mp_str){out, (uint32_t)(lp + n + ls)};
}

#define ID(out, prefix, i, suffix) \
    make_id(out, prefix, sizeof prefix - 1, i, suffix, sizeof suffix - 1)

static void owe_report(const struct job *j, uint64_t gen)
{
    for (uint32_t k = 0; k < j->nsites; k++) {
        if (nowed == owed_cap) {
            owed_cap = owed_cap ? owed_cap * 2 : 256;
            owed = realloc(owed, owed_cap * sizeof *owed);
            if (!owed)
                die("allocating", "out of memory");
        }
        memcpy(owed[nowed].name, j->name, sizeof j->name);
        owed[nowed].site = j->sites[k];
        owed[nowed].gen = gen;
        nowed++;
    }
}

/* Commits the queued commands as one log entry: encode, decode, apply. */
static void flush(void)
{
    char err[256];
    size_t n;
    if (nqueued == 0)
        return;
    mp_buf_reset(&buf);
    msgpack_zone_clear(&zone);
    if (proto_batch_encode(queue, nqueued, &buf, err, sizeof err) != 0 ||
        proto_batch_decode(buf.data, buf.len, &zone, decoded, nqueued, &n,
                           err, sizeof err) != 0)
        die("log entry", err);
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n) /* a hint; the agent's apply loop can give it too */
            fsm_prefetch(&fsm, &decoded[i + 1]);
        if (fsm_apply(&fsm, &decoded[i], &results[i]) != 0)
            die("apply", "out of memory");
        if (results[i].code != 0)
            die(jobs[i].name, results[i].msg);
        if (decoded[i].type == PROTO_CMD_CLUSTER_RELEASE && managed)
            owe_report(&jobs[i], results[i].gen);
    }
    commands += n;
    entries++;
    nqueued = 0;
}

/* A fresh command of type in the entry being built, flushing a full one. */
static struct proto_cmd *enqueue(int type, struct job **job)
{
    if (nqueued == batch)
        flush();
    *job = &jobs[nqueued];
    (*job)->nsites = 0;
    proto_cmd_init(&queue[nqueued], type);
    return &queue[nqueued++];
}

static void add_sites(int n)
{
    struct job *j;
    for (int i = 0; i < n; i++) {
        struct proto_cmd *c = enqueue(PROTO_CMD_SITE_ADD, &j);
        snprintf(site_names[i], sizeof site_names[i], "site%02d", i);
        memcpy(j->name, site_names[i], sizeof site_names[i]);
        site_strs[i] = mp_cstr(site_names[i]);
        c->name = site_strs[i];
        vlanset_add_range(&c->pool, 1, 4094);
        c->managed = managed;
    }
    flush();
}

static void create(unsigned long i, int nsites, int span, uint64_t t)
{
    struct job *j;
    struct proto_cmd *c = enqueue(PROTO_CMD_CLUSTER_CREATE, &j);
    static const struct mp_str owner = {"bench", 5};
    c->name = ID(j->name, "c", i, "");
    c->req_id = ID(j->req, "bench:", i, "");
    c->owner = owner;
    c->lease_ms = 3600 * 1000;
    c->time_ms = t;
    while (c->nsites < (uint32_t)span) {
        struct mp_str s = site_strs[next_rand() % (uint64_t)nsites];
        bool dup = false;
        for (uint32_t k = 0; k < c->nsites; k++)
            dup |= c->sites[k].p == s.p;
        if (!dup)
            c->sites[c->nsites++] = s;
    }
}

/* Remembers the sites of the cluster being released: each owes a report. */
static void note_sites(struct job *j)
{
    struct fsm_cluster *cl = fsm_cluster_find(&fsm, j->name);
    if (!cl) { /* created in the entry still being built */
        flush();
        cl = fsm_cluster_find(&fsm, j->name);
    }
    for (uint32_t k = 0; cl && k < cl->nslots; k++)
        j->sites[j->nsites++] = cl->slots[k].site;
}

static void release(unsigned long i, uint64_t t)
{
    struct job *j;
    struct proto_cmd *c = enqueue(PROTO_CMD_CLUSTER_RELEASE, &j);
    c->name = ID(j->name, "c", i, "");
    c->req_id = ID(j->req, "bench:", i, ":rel");
    c->time_ms = t;
    if (managed)
        note_sites(j);
}

/* Queues the apply-reports of committed releases (managed sites only). */
static void send_reports(uint64_t t)
{
    struct job *j;
    /* flush() may owe more while this runs: re-read nowed each round. */
    for (size_t k = 0; k < nowed; k++) {
        struct report rep = owed[k];
        struct proto_cmd *c = enqueue(PROTO_CMD_APPLY_REPORT, &j);
        memcpy(j->name, rep.name, sizeof j->name);
        c->name = mp_cstr(j->name);
        c->site = mp_cstr(fsm.sites[rep.site].name);
        c->gen = rep.gen;
        c->ok = true;
        c->time_ms = t;
    }
    nowed = 0;
}

/* One measured run on a fresh state machine. Returns the time taken. */
static struct span run(const struct opts *o, size_t entry_max)
{
    fsm_init(&fsm);
    rng = 0x9e3779b97f4a7c15ull;
    batch = 1;
    add_sites(o->nsites);
    uint64_t t = 1764115200000ull;
    for (unsigned long i = 0; i < o->live; i++)
        create(i, o->nsites, o->span, t);
    flush();
    batch = entry_max;
    commands = entries = 0;
    struct span t0 = span_start();
    for (unsigned long i = 0; i < o->pairs; i++) {
        create(o->live + i, o->nsites, o->span, ++t);
        release(i, t);
        send_reports(t);
    }
    flush();
    while (nowed) {
        send_reports(t);
        flush();
    }
    struct span dt = span_end(t0);
    fsm_close(&fsm);
    return dt;
}

static void report(const struct opts *o, size_t entry_max, struct span dt)
{
    printf("batch=%zu sites=%d span=%d live=%lu managed=%d pairs=%lu "
           "commands=%lu entries=%lu seconds=%.3f cpu_seconds=%.3f\n",
           entry_max, o->nsites, o->span, o->live, o->managed, o->pairs,
           commands, entries, dt.wall, dt.cpu);
    printf("batch=%zu pairs_per_s=%.0f commands_per_s=%.0f "
           "ns_per_command=%.0f cpu_pairs_per_s=%.0f  (%s)\n",
           entry_max, (double)o->pairs / dt.wall,
           (double)commands / dt.wall, dt.wall * 1e9 / (double)commands,
           (double)o->pairs / dt.cpu,
           entry_max == 1 ? "one command per log entry"
                          : "group commit: up to batch= commands per entry");
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
            o->pairs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--sites") && i + 1 < argc)
            o->nsites = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--span") && i + 1 < argc)
            o->span = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--live") && i + 1 < argc)
            o->live = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            o->batch = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--managed"))
            o->managed = true;
        else
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.pairs = 2000000, .live = 2000, .nsites = 50,
                     .span = 3, .batch = BATCH_DEFAULT};
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: %s [--pairs N] [--sites S] [--span K] "
                        "[--live L] [--batch B] [--managed]\n", argv[0]);
        return 2;
    }
    if (o.nsites < 1 || o.nsites > VC_SITES_MAX || o.span < 1 ||
        o.span > o.nsites || o.live > 4000 || o.batch < 1 ||
        o.batch > VC_BATCH_MAX) {
        fprintf(stderr, "bench: need 1 <= span <= sites <= %d, live <= 4000, "
                        "1 <= batch <= %d\n", VC_SITES_MAX, VC_BATCH_MAX);
        return 2;
    }
    managed = o.managed;
    queue = xcalloc(o.batch, sizeof *queue);
    jobs = xcalloc(o.batch, sizeof *jobs);
    decoded = xcalloc(o.batch, sizeof *decoded);
    results = xcalloc(o.batch, sizeof *results);
    mp_buf_init(&buf);
    msgpack_zone_init(&zone, 64 * 1024); /* as agent/consensus.c */
    report(&o, 1, run(&o, 1));
    if (o.batch > 1)
        report(&o, o.batch, run(&o, o.batch));
    msgpack_zone_destroy(&zone);
    mp_buf_close(&buf);
    free(queue);
    free(jobs);
    free(decoded);
    free(results);
    free(owed);
    return 0;
}
