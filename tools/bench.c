/* virtcloud-bench: cluster creates per second through the agents' client
 * API, their latency, and what a leader failover costs.
 *
 *   virtcloud-bench --api A,B,C [--count N] [--concurrency C]
 *   virtcloud-bench --local [--sites S] [--agent PATH] [--failover] ...
 *
 * Load is spread like real schedulers spread it: C slots, slot i bound to
 * agent i mod (number of agents), each with its own connection and one
 * request in flight. One iteration creates a cluster over a random subset
 * of the sites (names read with one SITES request at start) and then
 * releases it, so the pools never run out; creates/s counts whole
 * iterations (each also carries a release), latency is that of the creates
 * alone, from the first send to the answer. Every command has its own
 * request id, "bench:RUN:cI" / "bench:RUN:rI".
 *
 * Happy path: connect every slot, send a create per slot, then wait on
 * all connections with one epoll set (each socket is added once, at
 * connect: no per-wait scan of every connection as poll() would do;
 * non-blocking reads through client_recv_nb()); each answer
 * sends the slot's next command. --local first starts a cluster of its
 * own with launch.c in a temporary directory and stops (by pid) and
 * removes it again at the end, also after errors and on SIGINT/SIGTERM:
 * the first signal lets the iterations under way finish, so their
 * clusters are released, the second stops at once. --failover
 * (needs --local) kills the leader with SIGKILL once a third of the
 * iterations is done and reports the time from the kill to the first
 * create committed under a new leader.
 *
 * Failure modes: a lost connection or an answer that says "try again"
 * (not leader, no quorum, unavailable, timed out, outcome unknown,
 * shutting down) is retried with the same request id, so a command never
 * applies twice: on the next agent for a lost connection, after a short
 * pause otherwise; retries are counted by code. Anything else a command
 * answers is a failure, counted by code with one example message; so is a
 * command with no answer within --timeout. Exit status: 0, 1 if a command
 * failed (or no failover was seen), 2 for usage errors, 130 interrupted.
 */
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bench_secure.h"
#include "client_session.h"
#include "client.h"
#include "launch.h"
#include "proto/err.h"

#define SLOTS_MAX 1024
#define TALLY_MAX 32
#define LEASE_MS (3600 * 1000)
#define CONNECT_MS 1000
#define RETRY_US 10000 /* pause before retrying a "try again" answer */

static volatile sig_atomic_t interrupted;

/* Counts per result code, with the first message seen for each. */
struct tally {
    unsigned n;
    struct {
        int code;
        uint64_t count;
        char example[VC_MSG_MAX + 1];
    } e[TALLY_MAX];
};

enum slot_state { SLOT_IDLE, SLOT_BUSY, SLOT_PAUSED };
enum phase { PHASE_CREATE, PHASE_RELEASE };

struct slot {
    struct client cl;
    struct client_session sess; /* --key without --sign-each */
    struct client_reader rd;
    unsigned agent; /* index into bench.agents */
    uint8_t state, phase;
    uint64_t iter;
    uint32_t seq;         /* of the request in flight */
    uint64_t first_us;    /* first send of this command */
    uint64_t deadline_us; /* give up on this command */
    uint64_t resume_us;   /* SLOT_PAUSED: send again then */
    uint32_t nsites;
    uint8_t sites[VC_SITES_MAX]; /* of this iteration's create */
};

struct opts {
    const char *api;
    uint64_t count;
    unsigned concurrency;
    unsigned timeout_ms;
    bool local, failover, keep;
    bool sign_each; /* --key: sign every request, no session */
    bool secure;    /* --local: keys, encrypted peers, client auth */
    bool compare;   /* plain and --secure runs, alternating */
    unsigned rounds;
    unsigned nsites; /* --local */
    char agent[PATH_MAX + 64];
};

struct bench {
    struct opts o;
    char apis[1024];
    char *agents[CLIENT_ADDRS_MAX];
    unsigned nagents;
    char sites[VC_SITES_MAX][VC_NAME_MAX + 1];
    unsigned nsites;
    char run[20];
    uint64_t rng;

    struct slot *slots;
    int ep;                   /* epoll set of the slots' connections */
    struct epoll_event *evs;
    uint64_t next_iter, done_iters;
    uint64_t creates_ok, creates_failed, releases_ok, releases_failed;
    uint32_t *lat_us; /* one per successful create */
    struct tally create_fail, release_fail, retries;
    uint64_t start_us, end_us;
    char leader[VC_NAME_MAX + 1]; /* as the last answer named it */

    struct launch *l; /* --local */
    bool killed;
    char killed_site[VC_NAME_MAX + 1];
    uint64_t kill_us, failover_us; /* failover_us: 0 until seen */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t rng_next(struct bench *b)
{
    /* xorshift64*: plenty for picking site subsets. */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 2685821657736338717ull;
}

static void tally_add(struct tally *t, int code, const char *msg)
{
    unsigned i;
    for (i = 0; i < t->n && t->e[i].code != code; i++)
        ;
    if (i == t->n) {
        if (t->n == TALLY_MAX)
            i = TALLY_MAX - 1; /* lump the rest into the last entry */
        else
            t->n++;
        t->e[i].code = code;
        snprintf(t->e[i].example, sizeof t->e[i].example, "%s", msg);
    }
    t->e[i].count++;
}

static void tally_print(const char *what, const struct tally *t)
{
    printf("%s:", what);
    if (t->n == 0)
        printf(" none");
    for (unsigned i = 0; i < t->n; i++) {
        const char *name = vc_errname(t->e[i].code);
        if (!strcmp(name, "SYSTEM"))
            printf(" %s(%s)=%llu", name, strerror(-t->e[i].code),
                   (unsigned long long)t->e[i].count);
        else
            printf(" %s=%llu", name, (unsigned long long)t->e[i].count);
    }
    printf("\n");
    for (unsigned i = 0; i < t->n; i++)
        if (t->e[i].example[0])
            printf("  e.g. %s: %s\n", vc_errname(t->e[i].code),
                   t->e[i].example);
}

/* --- talking to the agents ---------------------------------------------- */

/* Builds the slot's current command (the same bytes on every retry). */
static void build_request(struct bench *b, const struct slot *s,
                          struct proto_request *req, char *name, char *id)
{
    bool create = s->phase == PHASE_CREATE;
    memset(req, 0, sizeof *req);
    req->op = PROTO_OP_SUBMIT;
    req->name = mp_cstr("");
    proto_cmd_init(&req->cmd, create ? PROTO_CMD_CLUSTER_CREATE
                                     : PROTO_CMD_CLUSTER_RELEASE);
    snprintf(name, VC_NAME_MAX + 1, "bench-%s-%llu", b->run,
             (unsigned long long)s->iter);
    snprintf(id, VC_REQID_MAX + 1, "bench:%s:%c%llu", b->run,
             create ? 'c' : 'r', (unsigned long long)s->iter);
    req->cmd.name = mp_cstr(name);
    req->cmd.req_id = mp_cstr(id);
    if (!create)
        return;
    req->cmd.owner = mp_cstr("bench");
    req->cmd.lease_ms = LEASE_MS;
    req->cmd.image = IMAGE_CERTIFIED;
    req->cmd.nsites = s->nsites;
    for (uint32_t i = 0; i < s->nsites; i++)
        req->cmd.sites[i] = mp_cstr(b->sites[s->sites[i]]);
}

/* Adds a freshly connected slot's socket to the epoll set. */
static int slot_watch(struct bench *b, struct slot *s)
{
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u32 = (uint32_t)(s - b->slots)};
    return epoll_ctl(b->ep, EPOLL_CTL_ADD, s->cl.fd, &ev) == 0 ? 0 : -errno;
}

/* Closes the slot's connection (a closed socket leaves the epoll set). */
static void slot_close(struct slot *s)
{
    client_close(&s->cl);
    client_reader_close(&s->rd);
}

static void slot_pause(struct slot *s, uint64_t us)
{
    s->state = SLOT_PAUSED;
    s->resume_us = now_us() + us;
}

/* The connection of s broke (or never came up): count why, and move the
 * slot to the next agent to retry there. */
static void slot_lost(struct bench *b, struct slot *s, int code,
                      const char *msg)
{
    tally_add(&b->retries, code, msg);
    slot_close(s);
    s->agent = (s->agent + 1) % b->nagents;
    slot_pause(s, 0);
}

/* Sends the slot's current command, connecting first if needed. */
static void slot_send(struct bench *b, struct slot *s)
{
    static struct proto_request req; /* ~3 KiB: keep it off the stack */
    char name[VC_NAME_MAX + 1], id[VC_REQID_MAX + 1], err[512];
    int rv;
    if (s->cl.fd < 0) {
        rv = client_connect(&s->cl, b->agents[s->agent],
                            client_now_ms() + CONNECT_MS, err, sizeof err);
        if (rv == 0 && !b->o.sign_each)
            rv = client_session_open(&s->cl, &s->sess,
                                    client_now_ms() + CONNECT_MS, err,
                                    sizeof err);
        if (rv == 0 && (rv = slot_watch(b, s)) != 0) {
            snprintf(err, sizeof err, "epoll: %s", strerror(-rv));
            client_close(&s->cl);
        }
        if (rv != 0) {
            slot_lost(b, s, rv, err);
            s->resume_us = now_us() + 50000; /* all down? do not spin */
            return;
        }
    }
    build_request(b, s, &req, name, id);
    rv = client_send(&s->cl, &req, client_now_ms() + CONNECT_MS, err,
                     sizeof err);
    if (rv != 0) {
        slot_lost(b, s, rv, err);
        return;
    }
    s->seq = req.seq;
    s->state = SLOT_BUSY;
}

/* Starts the next iteration on s, if any is left. */
static void slot_next(struct bench *b, struct slot *s)
{
    if (b->next_iter >= b->o.count || interrupted) {
        s->state = SLOT_IDLE;
        return;
    }
    s->iter = b->next_iter++;
    s->phase = PHASE_CREATE;
    s->nsites = 0;
    for (unsigned i = 0; i < b->nsites; i++)
        if (rng_next(b) >> 63)
            s->sites[s->nsites++] = (uint8_t)i;
    if (s->nsites == 0)
        s->sites[s->nsites++] = (uint8_t)(rng_next(b) % b->nsites);
    s->first_us = now_us();
    s->deadline_us = s->first_us + (uint64_t)b->o.timeout_ms * 1000;
    slot_send(b, s);
}

/* Answers that mean "this command was not applied yet, ask again". */
static bool retryable(int code)
{
    return code == VC_ENOTLEADER || code == VC_ENOQUORUM ||
           code == VC_EUNAVAILABLE || code == VC_ETIMEOUT ||
           code == VC_EUNKNOWN || code == VC_ESHUTDOWN;
}

static void create_ok(struct bench *b, struct slot *s, uint64_t now)
{
    uint64_t lat = now - s->first_us;
    b->lat_us[b->creates_ok++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
    /* The first create committed under another leader ends the failover;
     * answers naming the killed leader may have committed before the
     * kill. */
    if (b->killed && !b->failover_us && b->leader[0] &&
        strcmp(b->leader, b->killed_site))
        b->failover_us = now - b->kill_us;
}

/* The slot's command got its final answer (code 0 or a failure). */
static void slot_done(struct bench *b, struct slot *s, int code,
                      const char *msg)
{
    uint64_t now = now_us();
    b->end_us = now;
    if (s->phase == PHASE_CREATE && code == 0) {
        create_ok(b, s, now);
        s->phase = PHASE_RELEASE;
        s->first_us = now;
        s->deadline_us = now + (uint64_t)b->o.timeout_ms * 1000;
        slot_send(b, s);
        return;
    }
    if (s->phase == PHASE_CREATE) {
        b->creates_failed++;
        tally_add(&b->create_fail, code, msg);
    } else if (code == 0) {
        b->releases_ok++;
    } else {
        b->releases_failed++;
        tally_add(&b->release_fail, code, msg);
    }
    b->done_iters++;
    slot_next(b, s);
}

static void slot_answer(struct bench *b, struct slot *s,
                        const struct proto_response *resp)
{
    char msg[VC_MSG_MAX + 1];
    if (s->state != SLOT_BUSY || resp->seq != s->seq)
        return; /* late answer to a command given up on */
    mp_str_copy(resp->msg.n > VC_MSG_MAX ? mp_cstr("") : resp->msg, msg,
                sizeof msg);
    mp_str_copy(resp->leader.n > VC_NAME_MAX ? mp_cstr("") : resp->leader,
                b->leader, sizeof b->leader);
    if (resp->code == 0 || !retryable(resp->code)) {
        slot_done(b, s, resp->code, msg);
        return;
    }
    tally_add(&b->retries, resp->code, msg);
    if (resp->code == VC_ESHUTDOWN)
        slot_lost(b, s, resp->code, msg);
    else
        slot_pause(s, RETRY_US);
}

/* Reads the answers waiting on s's connection. One recv() per wake-up:
 * epoll is level-triggered, so bytes left in the socket wake us again,
 * and the recv() that would only say EAGAIN is saved. A slot with nothing
 * in flight only drains late answers (to commands given up on); its
 * broken connection is closed, and reopened by the next send. */
static void slot_read(struct bench *b, struct slot *s)
{
    struct client_response r;
    char err[512];
    do {
        bool busy = s->state == SLOT_BUSY;
        int rv = client_recv_nb(&s->cl, &s->rd, &r, err, sizeof err);
        if (rv == 0 && busy)
            slot_answer(b, s, &r.resp);
        client_response_close(&r);
        if (rv == -EAGAIN)
            return;
        if (rv != 0) {
            if (busy)
                slot_lost(b, s, rv, err);
            else
                slot_close(s);
            return;
        }
    } while (s->state == SLOT_BUSY && s->rd.len > 0);
}

/* Resends paused commands that are due and fails those out of time.
 * Returns the ms epoll_wait() may wait for the next of these events. */
static int slots_timers(struct bench *b)
{
    uint64_t now = now_us(), next = now + 100000;
    char msg[64];
    for (unsigned i = 0; i < b->o.concurrency; i++) {
        struct slot *s = &b->slots[i];
        if (s->state == SLOT_IDLE)
            continue;
        if (now >= s->deadline_us) {
            snprintf(msg, sizeof msg, "no answer within %u ms",
                     b->o.timeout_ms);
            slot_done(b, s, VC_ETIMEOUT, msg);
            now = now_us();
        } else if (s->state == SLOT_PAUSED && now >= s->resume_us) {
            slot_send(b, s);
            now = now_us();
        }
        if (s->state == SLOT_PAUSED && s->resume_us < next)
            next = s->resume_us;
        if (s->state != SLOT_IDLE && s->deadline_us < next)
            next = s->deadline_us;
    }
    return next > now ? (int)((next - now + 999) / 1000) : 0;
}

/* --failover: SIGKILL the leader once a third of the work is done. */
static void maybe_kill_leader(struct bench *b)
{
    if (!b->o.failover || b->killed || b->done_iters < b->o.count / 3)
        return;
    for (unsigned i = 0; i < b->l->n; i++) {
        if (strcmp(b->l->sites[i].name, b->leader) || !b->l->sites[i].pid)
            continue;
        int pid = (int)b->l->sites[i].pid;
        snprintf(b->killed_site, sizeof b->killed_site, "%s", b->leader);
        b->kill_us = now_us();
        b->killed = true;
        launch_signal(b->l, i, SIGKILL); /* also reaps it */
        printf("failover: SIGKILL to leader %s (pid %d) after %llu "
               "iterations\n",
               b->killed_site, pid, (unsigned long long)b->done_iters);
        fflush(stdout);
        return;
    }
}

static unsigned slots_busy(const struct bench *b)
{
    unsigned n = 0;
    for (unsigned i = 0; i < b->o.concurrency; i++)
        n += b->slots[i].state != SLOT_IDLE;
    return n;
}

/* Drives every slot until all iterations are done. */
static void run_load(struct bench *b)
{
    b->start_us = b->end_us = now_us();
    for (unsigned i = 0; i < b->o.concurrency; i++) {
        struct slot *s = &b->slots[i];
        client_init(&s->cl);
        client_reader_init(&s->rd);
        s->agent = i % b->nagents;
        slot_next(b, s);
    }
    /* After a first SIGINT, iterations under way still finish (their
     * clusters are released); a second one stops at once. */
    while (interrupted < 2 && slots_busy(b) > 0) {
        int timeout = slots_timers(b);
        int n = epoll_wait(b->ep, b->evs, (int)b->o.concurrency, timeout);
        if (n < 0 && errno != EINTR) {
            perror("virtcloud-bench: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            struct slot *s = &b->slots[b->evs[i].data.u32];
            if (s->cl.fd >= 0)
                slot_read(b, s);
        }
        maybe_kill_leader(b);
    }
    for (unsigned i = 0; i < b->o.concurrency; i++)
        slot_close(&b->slots[i]);
}

/* --- setup -------------------------------------------------------------- */

/* The value of key k in map o, NULL if absent. */
static const msgpack_object *map_get(const msgpack_object *o, const char *k)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            kv->key.via.str.size == strlen(k) &&
            !memcmp(kv->key.via.str.ptr, k, kv->key.via.str.size))
            return &kv->val;
    }
    return NULL;
}

/* Reads the site names with one (linearizable) SITES request. */
static int read_sites(struct bench *b)
{
    struct proto_request req;
    struct client_response r;
    char err[1024];
    memset(&req, 0, sizeof req);
    req.op = PROTO_OP_SITES;
    req.name = mp_cstr("");
    int rv = client_request(b->apis, &req, 10000, &r, err, sizeof err);
    if (rv == 0 && r.resp.code != 0) {
        rv = r.resp.code;
        mp_str_copy(r.resp.msg, err, sizeof err);
    }
    const msgpack_object *items = NULL;
    uint32_t n = 0;
    if (rv == 0 &&
        mp_get_array(&r.resp.payload, 1, VC_SITES_MAX, &items, &n) != 0) {
        rv = VC_EMALFORMED;
        snprintf(err, sizeof err, "no sites in the answer");
    }
    for (uint32_t i = 0; rv == 0 && i < n; i++) {
        const msgpack_object *name = map_get(&items[i], "name");
        struct mp_str s;
        if (!name || mp_get_str(name, VC_NAME_MAX, &s) != 0) {
            rv = VC_EMALFORMED;
            snprintf(err, sizeof err, "site %u has no name", i);
            break;
        }
        mp_str_copy(s, b->sites[b->nsites++], VC_NAME_MAX + 1);
    }
    client_response_close(&r);
    if (rv != 0)
        fprintf(stderr, "virtcloud-bench: reading the sites: %s\n", err);
    return rv;
}

static void split_agents(struct bench *b)
{
    static char list[sizeof b->apis];
    char *save;
    snprintf(list, sizeof list, "%s", b->apis);
    b->nagents = 0;
    for (char *t = strtok_r(list, ",", &save);
         t && b->nagents < CLIENT_ADDRS_MAX; t = strtok_r(NULL, ",", &save))
        if (*t)
            b->agents[b->nagents++] = t;
}

static void new_run_id(struct bench *b)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = now_us() ^ ((uint64_t)getpid() << 32);
    b->rng = r | 1;
    snprintf(b->run, sizeof b->run, "%08llx", (unsigned long long)(r >> 32));
}

static void print_config(const struct bench *b)
{
    printf("config: count=%llu concurrency=%u sites=%u (",
           (unsigned long long)b->o.count, b->o.concurrency, b->nsites);
    for (unsigned i = 0; i < b->nsites; i++)
        printf("%s%s", i ? "," : "", b->sites[i]);
    printf(") agents=%u (%s) run=%s timeout_ms=%u\n", b->nagents, b->apis,
           b->run, b->o.timeout_ms);
    printf("mode: each iteration creates a cluster on a random subset of "
           "the sites, then releases it; creates/s counts iterations\n");
    fflush(stdout);
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

/* Nearest-rank percentile of the sorted latencies, in ms. */
static double pct_ms(const uint32_t *v, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t k = (uint64_t)(p / 100.0 * (double)n + 0.999999);
    return v[(k ? k : 1) - 1] / 1000.0;
}

static void print_results(struct bench *b)
{
    double secs = (double)(b->end_us - b->start_us) / 1e6;
    uint64_t n = b->creates_ok;
    double rate = secs > 0 ? (double)n / secs : 0;
    qsort(b->lat_us, n, sizeof *b->lat_us, cmp_u32);
    printf("totals: ok=%llu failed=%llu elapsed_s=%.3f releases_ok=%llu "
           "releases_failed=%llu commands_per_s=%.0f\n",
           (unsigned long long)n, (unsigned long long)b->creates_failed, secs,
           (unsigned long long)b->releases_ok,
           (unsigned long long)b->releases_failed,
           secs > 0 ? (double)(n + b->releases_ok) / secs : 0);
    printf("create latency: p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
           "p99.9_ms=%.3f max_ms=%.3f\n",
           pct_ms(b->lat_us, n, 50), pct_ms(b->lat_us, n, 90),
           pct_ms(b->lat_us, n, 99), pct_ms(b->lat_us, n, 99.9),
           n ? b->lat_us[n - 1] / 1000.0 : 0);
    tally_print("retries", &b->retries);
    tally_print("create failures", &b->create_fail);
    tally_print("release failures", &b->release_fail);
    if (b->o.failover) {
        if (b->failover_us)
            printf("failover_ms=%.1f (leader %s killed; first create "
                   "committed under a new leader)\n",
                   b->failover_us / 1000.0, b->killed_site);
        else
            printf("failover_ms=none (%s)\n",
                   b->killed ? "no create committed after the kill"
                             : "no leader was killed");
    }
    printf("creates_per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", rate,
           pct_ms(b->lat_us, n, 50), pct_ms(b->lat_us, n, 99));
    fflush(stdout);
}

/* --- the local cluster (--local) ---------------------------------------- */

static void default_agent(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *dir = dirname(self);
        /* Build tree: tools/ next to agent/; installed: same directory. */
        snprintf(buf, len, "%s/../agent/virtcloud-agent", dir);
        if (access(buf, X_OK) == 0)
            return;
        snprintf(buf, len, "%s/virtcloud-agent", dir);
        if (access(buf, X_OK) == 0)
            return;
    }
    snprintf(buf, len, "/usr/sbin/virtcloud-agent");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Copies the last lines of every agent's log to stderr: the directory is
 * about to go, and with it the reason an agent did not come up. */
static void print_log_tails(const struct launch *l)
{
    char path[600], line[512], ring[5][512];
    for (unsigned i = 0; i < l->n; i++) {
        snprintf(path, sizeof path, "%s/%s.log", l->dir, l->sites[i].name);
        FILE *f = fopen(path, "r");
        unsigned n = 0;
        if (!f)
            continue;
        while (fgets(line, sizeof line, f))
            snprintf(ring[n++ % 5], sizeof ring[0], "%s", line);
        fclose(f);
        fprintf(stderr, "--- last lines of %s.log:\n", l->sites[i].name);
        for (unsigned k = n > 5 ? n - 5 : 0; k < n; k++)
            fputs(ring[k % 5], stderr);
    }
}

/* Starts the agents in a fresh temporary directory. */
static int local_start(struct bench *b, char *dir, size_t dirlen)
{
    char err[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dirlen, "%s/virtcloud-bench.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "virtcloud-bench: %s: %s\n", dir, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    if (!b->o.agent[0])
        default_agent(b->o.agent, sizeof b->o.agent);
    if (access(b->o.agent, X_OK) != 0) {
        fprintf(stderr, "virtcloud-bench: %s: %s (give --agent PATH)\n",
                b->o.agent, strerror(errno));
        return -1;
    }
    err[0] = '\0';
    if (launch_plan(b->l, dir, b->o.agent, b->o.nsites, err, sizeof err) == 0 &&
        (!b->o.secure || bench_secure_setup(b->l, err, sizeof err) == 0) &&
        launch_start(b->l, 30000, err, sizeof err) == 0) {
        launch_api_list(b->l, b->apis, sizeof b->apis);
        printf("local cluster: %u agents (%s) in %s%s; pids", b->l->n,
               b->o.agent, dir,
               b->o.secure ? ", secure (site keys, encrypted peers, client "
                             "auth)"
                           : "");
        for (unsigned i = 0; i < b->l->n; i++)
            printf(" %s=%d", b->l->sites[i].name, (int)b->l->sites[i].pid);
        printf("\n");
        fflush(stdout);
        return 0;
    }
    fprintf(stderr, "virtcloud-bench: local cluster: %s\n", err);
    print_log_tails(b->l);
    return -1;
}

/* CPU seconds (user + system) process pid used so far, -1 if unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut, st;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends the name. */
    const char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%lu %lu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Where the CPU went: the agents (whole life, start included) and this
 * process. On a shared machine, compare these, not only the rates. */
static void print_cpu(const struct bench *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    printf("cpu_s: bench=%.2f", (double)ts.tv_sec + ts.tv_nsec / 1e9);
    for (unsigned i = 0; i < b->l->n; i++)
        if (b->l->sites[i].pid)
            printf(" %s=%.2f", b->l->sites[i].name,
                   cpu_seconds(b->l->sites[i].pid));
    printf(" (leader %s)\n", b->leader[0] ? b->leader : "?");
}

/* Stops the agents (by their pids) and removes the directory. */
static void local_stop(struct bench *b, const char *dir)
{
    /* The data is thrown away: no need to wait long for a clean exit. */
    launch_stop(b->l, 1500);
    if (!dir[0])
        return;
    if (b->o.keep) {
        printf("kept %s (agent logs in %s/*.log)\n", dir, dir);
        return;
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- main --------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: virtcloud-bench (--api A,B,... | --local [--sites N] "
            "[--agent PATH] [--keep])\n"
            "                       [--count N] [--concurrency C] "
            "[--timeout MS] [--failover]\n"
            "                       [--key PATH [--sign-each]] [--secure] "
            "[--compare [--rounds R]]\n"
            "  --api LIST        agents' client API addresses (default "
            "$VIRTCLOUD_API)\n"
            "  --local           start a cluster of N sites (default 3) in a "
            "temporary directory\n"
            "  --count N         iterations: create + release (default "
            "10000)\n"
            "  --concurrency C   requests in flight, one connection each "
            "(default 32)\n"
            "  --timeout MS      give up on a command after MS (default "
            "30000)\n"
            "  --failover        with --local: SIGKILL the leader a third "
            "of the way in\n"
            "  --key PATH        authenticate with this key: one signed "
            "session per\n"
            "                    connection, then a MAC per request\n"
            "  --sign-each       with --key: sign every request instead\n"
            "  --secure          with --local: site keys, encrypted peers, "
            "every request\n"
            "                    authenticated (with a site key, sessions)\n"
            "  --compare         with --local: plain and --secure runs, "
            "alternating,\n"
            "                    --rounds R times (default 3); prints the "
            "cost\n");
    return 2;
}


static bool parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || x < min || x > max || *s == '-')
        return false;
    *v = x;
    return true;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    uint64_t v;
    o->api = getenv("VIRTCLOUD_API");
    o->count = 10000;
    o->concurrency = 32;
    o->timeout_ms = 30000;
    o->nsites = 3;
    o->rounds = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--local")) {
            o->local = true;
            continue;
        }
        if (!strcmp(a, "--failover")) {
            o->failover = true;
            continue;
        }
        if (!strcmp(a, "--keep")) {
            o->keep = true;
            continue;
        }
        if (!strcmp(a, "--sign-each")) {
            o->sign_each = true;
            continue;
        }
        if (!strcmp(a, "--secure")) {
            o->secure = true;
            continue;
        }
        if (!strcmp(a, "--compare")) {
            o->compare = true;
            continue;
        }
        if (!val)
            return usage();
        i++; /* every other option takes a value */
        if (!strcmp(a, "--api"))
            o->api = val;
        else if (!strcmp(a, "--agent"))
            snprintf(o->agent, sizeof o->agent, "%s", val);
        else if (!strcmp(a, "--count") && parse_num(val, 1, 100000000, &v))
            o->count = v;
        else if (!strcmp(a, "--rounds") && parse_num(val, 1, 20, &v))
            o->rounds = (unsigned)v;
        else if (!strcmp(a, "--concurrency") &&
                 parse_num(val, 1, SLOTS_MAX, &v))
            o->concurrency = (unsigned)v;
        else if (!strcmp(a, "--timeout") && parse_num(val, 1, 600000, &v))
            o->timeout_ms = (unsigned)v;
        else if (!strcmp(a, "--sites") &&
                 parse_num(val, 1, LAUNCH_SITES_MAX, &v))
            o->nsites = (unsigned)v;
        else if (!strcmp(a, "--key")) { /* sign requests (bench_key.c) */
            if (client_key_setup(val) != 0)
                return 2;
        } else
            return usage();
    }
    if ((o->secure || o->compare) && !o->local) {
        fprintf(stderr, "virtcloud-bench: --secure and --compare need "
                        "--local (they start their own clusters)\n");
        return 2;
    }
    if (o->failover && !o->local) {
        fprintf(stderr, "virtcloud-bench: --failover needs --local (it "
                        "kills an agent it started)\n");
        return 2;
    }
    if (!o->local && (!o->api || !*o->api)) {
        fprintf(stderr, "virtcloud-bench: give --api A,B,... (or set "
                        "VIRTCLOUD_API), or --local\n");
        return 2;
    }
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    if (interrupted < 2)
        interrupted++;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Reads the sites, runs the load and prints the figures. */
static int bench_run(struct bench *b)
{
    split_agents(b);
    if (b->nagents == 0) {
        fprintf(stderr, "virtcloud-bench: empty address list\n");
        return 2;
    }
    if (read_sites(b) != 0)
        return 1;
    new_run_id(b);
    b->slots = calloc(b->o.concurrency, sizeof *b->slots);
    b->evs = calloc(b->o.concurrency, sizeof *b->evs);
    b->lat_us = calloc(b->o.count, sizeof *b->lat_us);
    b->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!b->slots || !b->evs || !b->lat_us || b->ep < 0) {
        fprintf(stderr, "virtcloud-bench: out of memory\n");
        return 1;
    }
    print_config(b);
    run_load(b);
    if (b->o.local)
        print_cpu(b);
    print_results(b);
    if (interrupted)
        return 130;
    if (b->creates_failed || b->releases_failed ||
        b->creates_ok + b->creates_failed < b->o.count)
        return 1;
    return b->o.failover && !b->failover_us ? 1 : 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    static struct launch l;
    char dir[PATH_MAX] = "";
    int rv = parse_args(&b.o, argc, argv);
    if (rv != 0)
        return rv;
    if (b.o.compare)
        return bench_compare(argc, argv, b.o.rounds);
    catch_signals();
    b.l = &l;
    b.ep = -1;
    if (b.o.local) {
        rv = local_start(&b, dir, sizeof dir) == 0 ? 0 : 1;
    } else {
        snprintf(b.apis, sizeof b.apis, "%s", b.o.api);
    }
    if (rv == 0)
        rv = interrupted ? 130 : bench_run(&b);
    if (b.o.local)
        local_stop(&b, dir);
    free(b.slots);
    free(b.evs);
    if (b.ep >= 0)
        close(b.ep);
    free(b.lat_us);
    return rv;
}
