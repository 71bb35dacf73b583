/* virtcloud-bench-snap: what a raft snapshot of the state machine costs on
 * the loop thread (docs/design.md, "Snapshots are the largest remaining
 * stall").
 *
 *   virtcloud-bench-snap [--iterations N] [--live L] [--sites S]
 *                        [--rounds R] [--file SNAPSHOT]
 *
 * Builds the state a long virtcloud-bench run leaves: S sites with the
 * full 1..4094 pool, L clusters live, and N create+release iterations with
 * the bench's request ids ("bench:RUN:cI" / "bench:RUN:rI") whose results
 * fill the de-duplication window (N = 50 000 fills all 100 000 ids).
 * Commands go straight to fsm_apply(): the state is what matters here.
 * --file restores a snapshot file instead (raft_uv's data file of a kept
 * run: its bytes are fsm_snapshot()'s).
 *
 * Then, R times each, best and median wall and CPU milliseconds of:
 *   encode      fsm_snapshot() into one mp_buf kept across rounds: the
 *               encoding alone, no allocation
 *   no-dedupe   the same with the de-duplication window hidden
 *   no-audit    the same with the audit trail hidden
 *   snapshot    fsm_snapshot() into a fresh mp_buf (what snapshot_cb does)
 *   presized    the same, the mp_buf first grown to the length + 1/8
 *   cold        as snapshot, but every large block is fresh pages (glibc's
 *               mmap threshold pinned at 128 KiB): page faults included,
 *               as in an agent whose heap has no free block that large
 *   cold-pre    as presized, with fresh pages
 *   memcpy      a plain copy of as many bytes into a fresh buffer (cold)
 *   restore     fsm_restore() of the snapshot (followers, restarts; cold)
 * No assertions: figures for comparing builds on a noisy machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>

#include "agent/fsm.h"
#include "proto/err.h"

#define ROUNDS_MAX 1000

struct opts {
    unsigned long iterations, live;
    int sites, rounds;
    const char *file;
};

_Noreturn static void die(const char *what, const char *detail)
{
    fprintf(stderr, "virtcloud-bench-snap: %s: %s\n", what, detail);
    exit(1);
}

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply(struct fsm *f, struct proto_cmd *c)
{
    struct proto_result r;
    if (fsm_apply(f, c, &r) != 0)
        die("apply", "out of memory");
    if (r.code != 0)
        die("apply", r.msg);
}

static void build(struct fsm *f, const struct opts *o)
{
    static struct proto_cmd c; /* ~3 KiB */
    static char names[VC_SITES_MAX][16];
    char name[48], req[48];
    const char *run = "1a0ab529";
    uint64_t t = 1764150000000ull, rng = 88172645463325252ull;
    for (int i = 0; i < o->sites; i++) {
        proto_cmd_init(&c, PROTO_CMD_SITE_ADD);
        snprintf(names[i], sizeof names[i], "site%02d", i);
        c.name = mp_cstr(names[i]);
        vlanset_add_range(&c.pool, 1, 4094);
        apply(f, &c);
    }
    /* Live clusters first, as if created by schedulers before the run. */
    unsigned long total = o->live + o->iterations;
    for (unsigned long i = 0; i < total; i++) {
        proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
        snprintf(name, sizeof name, "bench-%s-%lu", run, i);
        snprintf(req, sizeof req, "bench:%s:c%lu", run, i);
        c.name = mp_cstr(name);
        c.req_id = mp_cstr(req);
        c.owner = mp_cstr("bench");
        c.lease_ms = 3600 * 1000;
        c.time_ms = t += 3;
        /* A random non-empty subset of the sites, as the bench picks. */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint64_t mask = rng % ((1ull << o->sites) - 1) + 1;
        for (int s = 0; s < o->sites; s++)
            if (mask >> s & 1)
                c.sites[c.nsites++] = mp_cstr(names[s]);
        apply(f, &c);
        if (i < o->live)
            continue;
        proto_cmd_init(&c, PROTO_CMD_CLUSTER_RELEASE);
        snprintf(req, sizeof req, "bench:%s:r%lu", run, i);
        c.name = mp_cstr(name);
        c.req_id = mp_cstr(req);
        c.time_ms = t += 3;
        apply(f, &c);
    }
}

static void load(struct fsm *f, const char *path)
{
    char err[256];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        die(path, "cannot open");
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || fread(data, 1, (size_t)n, fp) != (size_t)n)
        die(path, "cannot read");
    fclose(fp);
    if (fsm_restore(f, data, (size_t)n, err, sizeof err) != 0)
        die(path, err);
    free(data);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct timing {
    double wall[ROUNDS_MAX], cpu[ROUNDS_MAX];
    int n;
};

static void report(const char *what, struct timing *t, size_t bytes)
{
    qsort(t->wall, (size_t)t->n, sizeof *t->wall, cmp_double);
    qsort(t->cpu, (size_t)t->n, sizeof *t->cpu, cmp_double);
    printf("%-10s %9zu bytes  wall ms: best %7.2f median %7.2f  "
           "cpu ms: best %7.2f median %7.2f\n",
           what, bytes, t->wall[0] * 1e3, t->wall[t->n / 2] * 1e3,
           t->cpu[0] * 1e3, t->cpu[t->n / 2] * 1e3);
}

static void start(double t0[2])
{
    t0[0] = now_s(CLOCK_MONOTONIC);
    t0[1] = now_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void stop(struct timing *t, const double t0[2])
{
    t->wall[t->n] = now_s(CLOCK_MONOTONIC) - t0[0];
    t->cpu[t->n] = now_s(CLOCK_PROCESS_CPUTIME_ID) - t0[1];
    t->n++;
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--iterations"))
            o->iterations = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--live"))
            o->live = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--sites"))
            o->sites = atoi(v);
        else if (!strcmp(a, "--rounds"))
            o->rounds = atoi(v);
        else if (!strcmp(a, "--file"))
            o->file = v;
        else
            return -1;
    }
    if (o->sites < 1 || o->sites > 16 || o->rounds < 1 ||
        o->rounds > ROUNDS_MAX || o->live > 4000)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.iterations = 50000, .live = 32, .sites = 3,
                     .rounds = 20};
    static struct fsm f, g;
    static struct timing tp[3], ts[4], tr, tm;
    char err[256];
    double t0[2];
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: virtcloud-bench-snap [--iterations N] "
                        "[--live L<=4000] [--sites S<=16] [--rounds R] "
                        "[--file SNAPSHOT]\n");
        return 2;
    }
    if (fsm_init(&f) != 0 || fsm_init(&g) != 0)
        die("init", "out of memory");
    if (o.file)
        load(&f, o.file);
    else
        build(&f, &o);
    printf("state: %u sites, %u live clusters, %u request ids remembered\n",
           f.nsites, f.live_clusters, f.dd_len);

    /* Encoding alone, into one buffer kept across rounds: the whole state,
     * then with the window, then the trail hidden (restored after). */
    struct mp_buf keep;
    mp_buf_init(&keep);
    uint32_t dd_len = f.dd_len, au_len = f.audit.len;
    size_t plen[3];
    for (int part = 0; part < 3; part++) {
        static const char *const label[] = {"encode", "no-dedupe",
                                            "no-audit"};
        for (int r = 0; r < o.rounds; r++) {
            mp_buf_reset(&keep);
            f.dd_len = part == 1 ? 0 : dd_len;
            f.audit.len = part == 2 ? 0 : au_len;
            start(t0);
            int rv = fsm_snapshot(&f, &keep);
            stop(&tp[part], t0);
            f.dd_len = dd_len;
            f.audit.len = au_len;
            if (rv != 0)
                die("snapshot", "out of memory");
            plen[part] = keep.len;
        }
        report(label[part], &tp[part], plen[part]);
    }
    mp_buf_close(&keep);

    /* What snapshot_cb pays: the buffer too. */
    size_t len = plen[0];
    void *copy = NULL;
    for (int mode = 0; mode < 4; mode++) {
        static const char *const label[] = {"snapshot", "presized", "cold",
                                            "cold-pre"};
        if (mode == 2) /* from here on, every large block is new pages */
            mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        for (int r = 0; r < o.rounds; r++) {
            struct mp_buf b;
            mp_buf_init(&b);
            start(t0);
            if (mode & 1)
                mp_buf_grow(&b, len + len / 8);
            if (fsm_snapshot(&f, &b) != 0)
                die("snapshot", "out of memory");
            stop(&ts[mode], t0);
            if (mode == 0 && r + 1 == o.rounds) {
                size_t n;
                copy = mp_buf_take(&b, &n);
            }
            mp_buf_close(&b);
        }
        report(label[mode], &ts[mode], len);
    }
    for (int r = 0; r < o.rounds; r++) {
        start(t0);
        char *d = malloc(len);
        if (!d)
            die("memcpy", "out of memory");
        memcpy(d, copy, len);
        stop(&tm, t0);
        /* The copy must look used, or it may be dropped. */
        if (d[len / 2] != ((char *)copy)[len / 2])
            die("memcpy", "mismatch");
        free(d);
    }
    report("memcpy", &tm, len);
    int rr = o.rounds < 5 ? o.rounds : 5; /* restore is slower */
    for (int r = 0; r < rr; r++) {
        start(t0);
        if (fsm_restore(&g, copy, len, err, sizeof err) != 0)
            die("restore", err);
        stop(&tr, t0);
    }
    report("restore", &tr, len);
    free(copy);
    fsm_close(&f);
    fsm_close(&g);
    return 0;
}
