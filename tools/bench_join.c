/* virtcloud-bench-join: how long a new site takes to join and catch up.
 *
 *   virtcloud-bench-join [--clusters N] [--agent PATH]
 *
 * Starts a local 3-site cluster, commits N cluster creates (pipelined on
 * one connection), then starts a fourth agent with an empty data dir and
 * --join, and measures the time until it is a member and its applied index
 * reaches the leader's commit index. Run twice: once with the whole history
 * in the log (founders never snapshot), once with the same state in a
 * snapshot (founders snapshot every 256 entries, so the joiner installs a
 * snapshot). Prints join_log_ms=... join_snapshot_ms=...
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "launch.h"
#include "proto/err.h"

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "virtcloud-bench-join: %s: %s\n", what, err);
    return 1;
}

/* Commits n creates spread over the three sites, 64 in flight. */
static unsigned window = 64;
static uint64_t log_entries[2];

static int fill(const char *api, unsigned n, char *err, size_t len)
{
    static const char *sites[] = {"brno", "praha", "plzen"};
    struct client cl;
    struct client_response r;
    unsigned sent = 0, done = 0;
    uint64_t deadline = client_now_ms() + 120000;
    char name[32], req_id[32];
    client_init(&cl);
    if (client_connect(&cl, api, deadline, err, len) != 0)
        return -1;
    while (done < n) {
        while (sent < n && sent - done < window) {
            struct proto_request req;
            memset(&req, 0, sizeof req);
            req.op = PROTO_OP_SUBMIT;
            proto_cmd_init(&req.cmd, PROTO_CMD_CLUSTER_CREATE);
            snprintf(name, sizeof name, "bj%u", sent);
            snprintf(req_id, sizeof req_id, "bench-join:%u", sent);
            req.cmd.name = mp_cstr(name);
            req.cmd.req_id = mp_cstr(req_id);
            req.cmd.owner = mp_cstr("bench");
            req.cmd.lease_ms = 3600 * 1000;
            /* One site each: pair clusters would need more VLANs than the
             * pools hold (a VLAN serves one pair of three sites). */
            req.cmd.nsites = 1;
            req.cmd.sites[0] = mp_cstr(sites[sent % 3]);
            req.name = req.peer = mp_cstr("");
            if (client_send(&cl, &req, deadline, err, len) != 0)
                goto out;
            sent++;
        }
        if (client_recv(&cl, &r, deadline, err, len) != 0) {
            client_response_close(&r);
            goto out;
        }
        if (r.resp.code != 0) {
            snprintf(err, len, "create answered %s", vc_errname(r.resp.code));
            client_response_close(&r);
            goto out;
        }
        client_response_close(&r);
        done++;
    }
out:
    client_close(&cl);
    return done == n ? 0 : -1;
}

static int get_u64(const msgpack_object *map, const char *key, uint64_t *v)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return -1;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            kv->key.via.str.size == strlen(key) &&
            !memcmp(kv->key.via.str.ptr, key, strlen(key)) &&
            kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *v = kv->val.via.u64;
            return 0;
        }
    }
    return -1;
}

static int status_of(const char *api, uint64_t *commit, uint64_t *applied,
                     bool *has_leader)
{
    struct proto_request req;
    struct client_response r;
    char err[256];
    memset(&req, 0, sizeof req);
    req.op = PROTO_OP_STATUS;
    req.name = req.peer = mp_cstr("");
    int rv = client_request(api, &req, 1000, &r, err, sizeof err);
    if (rv == 0 && (get_u64(&r.resp.payload, "commit", commit) != 0 ||
                    get_u64(&r.resp.payload, "applied", applied) != 0))
        rv = -1;
    *has_leader = rv == 0 && r.resp.leader.n > 0;
    client_response_close(&r);
    return rv;
}

static int run(const char *agent, unsigned n, bool snapshot, double *ms)
{
    static struct launch l;
    char dir[] = "/tmp/vc-bench-join-XXXXXX", err[512], apis[512];
    int rc = 1;
    if (!mkdtemp(dir))
        return fail("mkdtemp", strerror(errno));
    /* Founders 0-2 plus the joiner, planned together for free ports. */
    if (launch_plan(&l, dir, agent, 4, err, sizeof err) != 0)
        return fail("plan", err);
    snprintf(l.extra, sizeof l.extra, "%s",
             snapshot ? "--snapshot-threshold 256 --snapshot-trailing 64"
                      : "--snapshot-threshold 1000000 "
                        "--snapshot-trailing 1000000");
    l.n = 3;
    if (launch_start(&l, 20000, err, sizeof err) != 0) {
        fail("start", err);
        goto out;
    }
    launch_api_list(&l, apis, sizeof apis);
    if (fill(l.sites[0].api, n, err, sizeof err) != 0) {
        fail("fill", err);
        goto out;
    }
    uint64_t commit = 0, applied = 0, jc, ja;
    bool leader;
    status_of(l.sites[0].api, &commit, &applied, &leader);
    log_entries[snapshot] = commit;
    /* The joiner: empty data dir, --join to a founder, no bootstrap. */
    l.n = 4;
    snprintf(l.sites[3].join, sizeof l.sites[3].join, "%s", l.sites[0].api);
    uint64_t t0 = client_now_ms();
    if (launch_start_site(&l, 3, err, sizeof err) != 0) {
        fail("joiner", err);
        goto out;
    }
    for (;;) {
        if (client_now_ms() - t0 > 60000) {
            fail("join", "not caught up within 60 s");
            goto out;
        }
        if (status_of(l.sites[3].api, &jc, &ja, &leader) == 0 && leader &&
            ja >= commit)
            break;
        usleep(5000);
    }
    *ms = (double)(client_now_ms() - t0);
    rc = 0;
out:
    launch_stop(&l, 5000);
    if (rc != 0 && getenv("VC_KEEP")) {
        fprintf(stderr, "kept %s\n", dir);
        return rc;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "virtcloud-bench-join: could not remove %s\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    char agent[PATH_MAX + 64] = "";
    unsigned n = 4000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clusters") && i + 1 < argc)
            n = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--window") && i + 1 < argc)
            window = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--agent") && i + 1 < argc)
            snprintf(agent, sizeof agent, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: virtcloud-bench-join [--clusters N] "
                            "[--window W] [--agent PATH]\n");
            return 2;
        }
    }
    if (!agent[0]) {
        char self[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        self[k > 0 ? k : 0] = '\0';
        snprintf(agent, sizeof agent, "%s/../agent/virtcloud-agent",
                 dirname(self));
    }
    if (window < 1)
        window = 1;
    double log_ms, snap_ms;
    if (run(agent, n, false, &log_ms) != 0 || run(agent, n, true, &snap_ms) != 0)
        return 1;
    printf("clusters=%u window=%u log_entries=%llu (creates in flight are "
           "group-committed; --window 1 gives one create per entry)\n", n,
           window, (unsigned long long)log_entries[0]);
    printf("join_log_ms=%.0f join_snapshot_ms=%.0f\n", log_ms, snap_ms);
    return 0;
}
