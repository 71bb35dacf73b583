/* Writes the seed corpora of the fuzz targets: valid encodings of every
 * format, made with the real encoders.
 *
 *   fuzz-gen-corpus OUTDIR [GENERATOR...]   (e.g. tests/fuzz/corpus)
 *
 * Writes OUTDIR/<target>/<name> for the targets batch, results, request,
 * response, snapshot, config, watch and raftmsg; with GENERATOR names
 * (batch - which also writes results -, request, response, snapshot,
 * config, watch, raftmsg) only those. Deterministic: running it again
 * rewrites the same bytes, so the committed corpus only changes when a
 * format does. Crash regressions (crash-*) in the corpus are not touched.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/fsm.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "proto/cmd.h"
#include "proto/frame.h"
#include "proto/raftmsg.h"
#include "proto/watch.h"
#include "tests/sim/gen.h"

static const char *outdir;

static void put(const char *target, const char *name, const void *data,
                size_t len)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_buf(const char *target, const char *name,
                    const struct mp_buf *b, size_t skip)
{
    FUZZ_CHECK(!b->oom && b->len >= skip, "%s/%s", target, name);
    put(target, name, b->data + skip, b->len - skip);
}

/* --- log entries and their results ------------------------------------- */

static void stamp(struct proto_cmd *c, struct rng *r, unsigned k)
{
    static char ids[64][24];
    char *id = ids[k % 64];
    snprintf(id, sizeof ids[0], "cli:%u", (unsigned)rng_below(r, 40));
    c->req_id = mp_cstr(rng_pct(r, 70) ? id : "");
    c->origin = mp_cstr(rng_pct(r, 50) ? "s0" : "virtcloud");
    c->time_ms = FUZZ_TIME0 + 1000ull * k;
}

/* Encodes cmds as one entry, applies them to f and writes the entry and
 * its results. */
static void entry(struct fsm *f, const char *name, struct proto_cmd *cmds,
                  size_t n)
{
    static struct proto_result res[VC_BATCH_MAX];
    struct mp_buf b;
    char err[256];
    mp_buf_init(&b);
    FUZZ_CHECK(proto_batch_encode(cmds, n, &b, err, sizeof err) == 0, "%s",
               err);
    put_buf("batch", name, &b, 0);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(fsm_apply(f, &cmds[i], &res[i]) == 0, "apply");
    mp_buf_reset(&b);
    FUZZ_CHECK(proto_results_encode(res, n, &b) == 0, "results");
    put_buf("results", name, &b, 0);
    mp_buf_close(&b);
}

/* n key, role and invite commands (gen_type() never draws them), each
 * made against f and applied to it, so that they mostly meet what the
 * earlier ones made: keys rotated and revoked, roles rebound, invites. */
static void auth_cmds(struct fsm *f, struct rng *r, struct proto_cmd *cmds,
                      size_t n)
{
    /* More additions than removals, so that some of everything stays. */
    static const int types[] = {
        PROTO_CMD_SITE_KEY,   PROTO_CMD_SITE_KEY,      PROTO_CMD_ROLE_ADD,
        PROTO_CMD_ROLE_ADD,   PROTO_CMD_ROLE_ADD,      PROTO_CMD_ROLE_REMOVE,
        PROTO_CMD_INVITE_ADD, PROTO_CMD_INVITE_ADD,    PROTO_CMD_INVITE_ADD,
        PROTO_CMD_INVITE_REMOVE};
    struct proto_result res;
    for (size_t i = 0; i < n; i++) {
        gen_cmd(r, f, types[rng_below(r, sizeof types / sizeof types[0])],
                &cmds[i]);
        stamp(&cmds[i], r, (unsigned)i);
        FUZZ_CHECK(fsm_apply(f, &cmds[i], &res) == 0, "apply");
    }
}

static void batches(void)
{
    static struct proto_cmd cmds[64];
    struct rng r = {42};
    struct fsm f;
    char name[64];
    FUZZ_CHECK(fsm_init(&f) == 0, "init");
    fuzz_baseline(&f);
    for (int t = 1; t <= PROTO_CMD_TYPE_MAX; t++) {
        if (!proto_cmd_name(t))
            continue; /* a reserved number */
        gen_cmd(&r, &f, t, &cmds[0]);
        stamp(&cmds[0], &r, (unsigned)t);
        snprintf(name, sizeof name, "%s", proto_cmd_name(t));
        entry(&f, name, cmds, 1);
    }
    for (int k = 0; k < 12; k++) {
        size_t n = 2 + rng_below(&r, k < 10 ? 12 : 60);
        for (size_t i = 0; i < n; i++) {
            gen_cmd(&r, &f, gen_type(&r), &cmds[i]);
            stamp(&cmds[i], &r, (unsigned)(k * 64 + i));
        }
        snprintf(name, sizeof name, "random-%02d", k);
        entry(&f, name, cmds, n);
    }
    fsm_close(&f);
    /* On the baseline state, as the batch target applies it. */
    struct fsm g;
    r.s = 20;
    FUZZ_CHECK(fsm_init(&f) == 0 && fsm_init(&g) == 0, "init");
    fuzz_baseline(&f);
    fuzz_baseline(&g);
    auth_cmds(&g, &r, cmds, 48);
    entry(&f, "auth", cmds, 48);
    fsm_close(&f);
    fsm_close(&g);
}

/* --- client frames ----------------------------------------------------- */

static void request(const char *name, struct proto_request *req)
{
    struct mp_buf b;
    char err[256];
    mp_buf_init(&b);
    FUZZ_CHECK(proto_request_encode(req, &b, err, sizeof err) == 0, "%s",
               err);
    put_buf("request", name, &b, PROTO_FRAME_HDR);
    mp_buf_close(&b);
}

static void requests(void)
{
    static struct proto_request req;
    struct rng r = {7};
    char name[64];
    for (int t = 1; t <= PROTO_CMD_TYPE_MAX; t++) {
        if (!proto_cmd_name(t))
            continue; /* a reserved number */
        memset(&req, 0, sizeof req);
        req.seq = (uint32_t)t;
        req.op = PROTO_OP_SUBMIT;
        req.timeout_ms = t % 2 ? 0 : 5000;
        req.flags = t % 3 == 0 ? PROTO_FLAG_FORWARDED : 0;
        gen_cmd(&r, NULL, t, &req.cmd);
        stamp(&req.cmd, &r, (unsigned)t);
        snprintf(name, sizeof name, "submit-%s", proto_cmd_name(t));
        request(name, &req);
    }
    static const struct {
        const char *name;
        int op;
        const char *filter;
    } reads[] = {{"status", PROTO_OP_STATUS, ""},
                 {"sites", PROTO_OP_SITES, ""},
                 {"sites-s0", PROTO_OP_SITES, "s0"},
                 {"clusters", PROTO_OP_CLUSTERS, ""},
                 {"clusters-c1", PROTO_OP_CLUSTERS, "c1"},
                 {"ping", PROTO_OP_PING, ""}};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        memset(&req, 0, sizeof req);
        req.seq = 1000 + (uint32_t)i;
        req.op = (uint8_t)reads[i].op;
        req.flags = i % 2 ? PROTO_FLAG_STALE : 0;
        req.name = mp_cstr(reads[i].filter);
        request(reads[i].name, &req);
    }
    /* Audit queries: everything in pages, and one cluster since a time. */
    memset(&req, 0, sizeof req);
    req.seq = 1100;
    req.op = PROTO_OP_AUDIT;
    req.audit = (struct proto_audit_query){mp_cstr(""), 0, 0, 1000};
    request("audit", &req);
    req.audit = (struct proto_audit_query){mp_cstr("c1"), 1795000000000ull,
                                           41, PROTO_AUDIT_LIMIT_MAX};
    request("audit-c1", &req);
    /* A join: [1, seq, 6, flags, timeout, [site-add, peer address]],
     * packed by hand (the op is newer than some builds of this tool). */
    struct mp_buf b;
    msgpack_packer pk;
    mp_buf_init(&b);
    mp_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, PROTO_FRAME_VERSION);
    msgpack_pack_uint32(&pk, 77);
    msgpack_pack_uint8(&pk, 6);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_array(&pk, 2);
    gen_cmd(&r, NULL, PROTO_CMD_SITE_ADD, &req.cmd);
    proto_cmd_pack(&pk, &req.cmd);
    mp_pack_cstr(&pk, "10.0.0.9:7000");
    put_buf("request", "join", &b, 0);
    mp_buf_close(&b);
}

static void response(const char *name, int code, const char *msg,
                     const char *leader, int kind)
{
    struct mp_buf b;
    msgpack_packer pk;
    size_t start;
    struct proto_result res = {0, 117, 3, "cluster c1 created with VLAN 117"};
    mp_buf_init(&b);
    proto_response_begin(&pk, &b, &start, 9, code, msg, leader);
    switch (kind) {
    case 0:
        msgpack_pack_nil(&pk);
        break;
    case 1:
        proto_result_pack(&pk, &res);
        break;
    case 2: /* a status-like map */
        msgpack_pack_map(&pk, 3);
        mp_pack_cstr(&pk, "site");
        mp_pack_cstr(&pk, "s0");
        mp_pack_cstr(&pk, "term");
        msgpack_pack_uint64(&pk, 12);
        mp_pack_cstr(&pk, "members");
        msgpack_pack_array(&pk, 2);
        mp_pack_cstr(&pk, "s0");
        mp_pack_cstr(&pk, "s1");
        break;
    case 3: /* an array of records, floats and binary included */
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 4);
        mp_pack_cstr(&pk, "c0");
        msgpack_pack_uint16(&pk, 100);
        msgpack_pack_double(&pk, 0.5);
        msgpack_pack_bin(&pk, 3);
        msgpack_pack_bin_body(&pk, "\x00\x01\x02", 3);
        msgpack_pack_array(&pk, 4);
        mp_pack_cstr(&pk, "c1");
        msgpack_pack_int64(&pk, -7);
        msgpack_pack_float(&pk, 1.25f);
        msgpack_pack_true(&pk);
        break;
    }
    FUZZ_CHECK(proto_response_finish(&b, start) == 0, "finish");
    put_buf("response", name, &b, PROTO_FRAME_HDR);
    mp_buf_close(&b);
}

static void responses(void)
{
    response("ok-nil", 0, "", "s0", 0);
    response("submit-result", 0, "cluster c1 created", "s0", 1);
    response("status", 0, "", "s1", 2);
    response("clusters", 0, "", "", 3);
    response("not-leader", -10011, "this agent is not the leader", "s2", 0);
    response("no-vlan", -10003, "no common VLAN", "s0", 1);
}

/* --- snapshots --------------------------------------------------------- */

static void snap(const char *name, const struct fsm *f)
{
    struct mp_buf b;
    mp_buf_init(&b);
    FUZZ_CHECK(fsm_snapshot(f, &b) == 0, "snapshot");
    put_buf("snapshot", name, &b, 0);
    mp_buf_close(&b);
}

static void snapshots(void)
{
    struct fsm f;
    struct proto_cmd c;
    struct proto_result res;
    struct rng r = {99};
    char name[32];
    FUZZ_CHECK(fsm_init(&f) == 0, "init");
    snap("empty", &f);
    fuzz_baseline(&f);
    snap("baseline", &f);
    {
        /* Keys, roles, invites and revoked keys (after the baseline). */
        static struct proto_cmd cmds[200];
        struct fsm g;
        struct rng ra = {20};
        FUZZ_CHECK(fsm_init(&g) == 0, "init");
        fuzz_baseline(&g);
        auth_cmds(&g, &ra, cmds, 200);
        snap("auth", &g);
        fsm_close(&g);
    }
    for (int k = 1; k <= 400; k++) {
        gen_cmd(&r, &f, gen_type(&r), &c);
        stamp(&c, &r, (unsigned)k);
        FUZZ_CHECK(fsm_apply(&f, &c, &res) == 0, "apply");
        if (k % 100 == 0) {
            snprintf(name, sizeof name, "random-%03d", k);
            snap(name, &f);
        }
    }
    fsm_close(&f);
}

/* --- configuration ----------------------------------------------------- */

static void config(const char *name, const char *ini, const char *args)
{
    size_t n = strlen(ini), m = args ? strlen(args) : 0;
    char *b = malloc(n + 1 + m);
    FUZZ_CHECK(b != NULL, "oom");
    memcpy(b, ini, n);
    if (args) { /* args use '|' for the NUL separators */
        b[n] = '\0';
        for (size_t i = 0; i < m; i++)
            b[n + 1 + i] = args[i] == '|' ? '\0' : args[i];
    }
    put("config", name, b, args ? n + 1 + m : n);
    free(b);
}

static void configs(void)
{
    static const char *minimal = "site = s0\n"
                                 "data-dir = /var/lib/virtcloud\n"
                                 "peer = 10.0.0.1:7000\n"
                                 "vlans = 100-999,2000-2999\n";
    config("minimal", minimal, NULL);
    config("full",
           "; every key\n[agent]\n"
           "site = site-a.example\n"
           "data-dir = /var/lib/virtcloud\n"
           "peer = 10.0.0.1:7000\n"
           "api = 127.0.0.1:7800\n"
           "advertise = 10.0.0.1:7800\n"
           "unix = /run/virtcloud.sock\n"
           "bootstrap = s0=10.0.0.1:7000, s1=10.0.0.2:7000,s2=[fd00::3]:7000\n"
           "vlans = 100-199, 300, 400-410\n"
           "uplink = qinq:3000\n"
           "managed = yes\n"
           "election-timeout = 3000\n"
           "heartbeat-timeout = 300\n"
           "snapshot-threshold = 1024\n"
           "snapshot-trailing = 2048\n"
           "sweep-interval = 1000\n"
           "request-timeout = 10000\n"
           "max-batch = 256\n"
           "log-level = debug\n",
           NULL);
    config("ipv6", "site = s1\ndata-dir = /d\npeer = [::1]:7001\n"
                   "api = [::1]:7801\nvlans = 1-4094\nuplink = vpls\n"
                   "managed = no\n",
           NULL);
    config("flags", minimal,
           "--site|s9|--uplink=xponder|--vlans=42|--check-config|"
           "--log-level|warn");
    config("flags-only", "", "--site=s2|--data-dir=/tmp/x|--peer|"
                             "127.0.0.1:1|--vlans|10-20");
    config("bad-section", "[other]\nsite = s0\n", NULL);
    config("bad-value", "site = s0\nvlans = 5000\n", NULL);
    config("no-equals", "site s0\n", NULL);
}

/* --- watch stream -------------------------------------------------------- */

static void watch_put(const char *name, const struct proto_watch *w,
                      bool as_request)
{
    struct mp_buf b;
    msgpack_packer pk;
    char err[256];
    FUZZ_CHECK(proto_watch_validate(w, err, sizeof err) == 0, "%s: %s", name,
               err);
    mp_buf_init(&b);
    mp_packer_init(&pk, &b);
    proto_watch_pack(&pk, w);
    put_buf("watch", name, &b, 0);
    mp_buf_close(&b);
    if (as_request) {
        struct proto_request req;
        memset(&req, 0, sizeof req);
        req.seq = 7;
        req.op = PROTO_OP_WATCH;
        req.watch = *w;
        mp_buf_init(&b);
        FUZZ_CHECK(proto_request_encode(&req, &b, err, sizeof err) == 0,
                   "%s", err);
        char rname[64];
        snprintf(rname, sizeof rname, "watch-%s", name);
        put_buf("request", rname, &b, PROTO_FRAME_HDR);
        mp_buf_close(&b);
    }
}

static void watches(void)
{
    static const struct mp_str ifs[] = {{"vm1", 3}, {"vnet12", 6}};
    static const struct proto_watch_entry e[] = {
        {.vid = 7, .gen = 3, .cluster = {"alpha", 5}, .ifaces = ifs,
         .nifaces = 2},
        {.vid = 42, .gen = 1, .cluster = {"beta", 4}},
    };
    static const uint16_t removed[] = {9, 4094};
    struct proto_watch w;
    proto_watch_init(&w, PROTO_WATCH_SUBSCRIBE);
    w.host = mp_cstr("h1");
    w.version = 120;
    w.digest = 0x1234567890abcdefull;
    watch_put("subscribe", &w, true);
    proto_watch_init(&w, PROTO_WATCH_REPORT);
    w.host = mp_cstr("h1");
    w.version = 120;
    w.ok = false;
    w.text = mp_cstr("host: vlan 7: link add eth1.7: Operation not permitted");
    w.changes = 2;
    w.missing = 1;
    w.entries = e;
    w.nentries = 2;
    watch_put("report", &w, true);
    proto_watch_init(&w, PROTO_WATCH_SNAPSHOT);
    w.version = 120;
    w.trunk = mp_cstr("eth1");
    w.complete = true;
    w.entries = e;
    w.nentries = 2;
    w.digest = proto_watch_digest(w.trunk, true, e, 2);
    watch_put("snapshot", &w, false);
    w.kind = PROTO_WATCH_UPDATE;
    w.base = 118;
    w.nentries = 1;
    w.removed = removed;
    w.nremoved = 2;
    watch_put("update", &w, false);
    proto_watch_init(&w, PROTO_WATCH_INSYNC);
    w.version = 121;
    w.digest = 99;
    watch_put("insync", &w, false);
}

/* --- raft messages on the peer channel ---------------------------------- */

/* Writes m's record body (without the length prefix). */
static void raftmsg(const char *name, const struct raft_message *m)
{
    size_t n = proto_raftmsg_size(m);
    FUZZ_CHECK(n > PROTO_RAFTMSG_HEAD, "raftmsg/%s", name);
    uint8_t *rec = malloc(n);
    FUZZ_CHECK(rec != NULL, "oom");
    proto_raftmsg_write(m, rec);
    put("raftmsg", name, rec + PROTO_RAFTMSG_HEAD, n - PROTO_RAFTMSG_HEAD);
    free(rec);
}

static void raftmsgs(void)
{
    static uint8_t data[700];
    static struct raft_entry e[5];
    static struct raft_server servers[3] = {
        {1, "10.0.0.1:7000", RAFT_VOTER},
        {2, "[fd00::2]:7000", RAFT_STANDBY},
        {3, "s3", RAFT_SPARE},
    };
    static const size_t lens[] = {40, 0, 120, 1, 16};
    struct raft_message m;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);

    memset(&m, 0, sizeof m);
    m.type = RAFT_REQUEST_VOTE;
    m.request_vote = (struct raft_request_vote){2, 7, 1, 120, 6, true, false};
    raftmsg("request-vote", &m);
    m.request_vote.disrupt_leader = false;
    m.request_vote.pre_vote = true;
    raftmsg("pre-vote", &m);

    memset(&m, 0, sizeof m);
    m.type = RAFT_REQUEST_VOTE_RESULT;
    m.request_vote_result =
        (struct raft_request_vote_result){2, 7, true, true, 1, 0x1234};
    raftmsg("vote-result", &m);

    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES;
    m.append_entries = (struct raft_append_entries){0, 7, 119, 6, 118,
                                                    NULL, 0};
    raftmsg("heartbeat", &m);
    for (unsigned i = 0; i < 5; i++) {
        e[i].term = 6 + i / 3;
        e[i].type = (enum raft_entry_type)(RAFT_COMMAND + i % 3);
        e[i].buf.base = data + 100 * i;
        e[i].buf.len = lens[i];
    }
    m.append_entries.entries = e;
    m.append_entries.n_entries = 1;
    raftmsg("append-1", &m);
    m.append_entries.n_entries = 5;
    raftmsg("append-5", &m);

    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES_RESULT;
    m.append_entries_result =
        (struct raft_append_entries_result){1, 7, 0, 124, 1, 0x100};
    raftmsg("append-result", &m);
    m.append_entries_result.rejected = 120;
    raftmsg("append-rejected", &m);

    memset(&m, 0, sizeof m);
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.install_snapshot.term = 7;
    m.install_snapshot.last_index = 4096;
    m.install_snapshot.last_term = 6;
    m.install_snapshot.conf.servers = servers;
    m.install_snapshot.conf.n = 3;
    m.install_snapshot.conf_index = 4000;
    m.install_snapshot.data.base = data;
    m.install_snapshot.data.len = sizeof data;
    raftmsg("snapshot", &m);
    m.install_snapshot.data.len = 0;
    raftmsg("snapshot-empty", &m);

    memset(&m, 0, sizeof m);
    m.type = RAFT_TIMEOUT_NOW;
    m.timeout_now = (struct raft_timeout_now){1, 7, 124, 7};
    raftmsg("timeout-now", &m);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*gen)(void);
    } gens[] = {{"batch", batches},     {"request", requests},
                {"response", responses}, {"snapshot", snapshots},
                {"config", configs},     {"watch", watches},
                {"raftmsg", raftmsgs}};
    const size_t ngens = sizeof gens / sizeof gens[0];
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTDIR [GENERATOR...]\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        size_t k = 0;
        while (k < ngens && strcmp(argv[i], gens[k].name) != 0)
            k++;
        if (k == ngens) {
            fprintf(stderr, "%s: unknown generator %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    for (size_t k = 0; k < ngens; k++) {
        bool run = argc == 2;
        for (int i = 2; i < argc && !run; i++)
            run = strcmp(argv[i], gens[k].name) == 0;
        if (run)
            gens[k].gen();
    }
    return 0;
}
