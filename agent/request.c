/* Client requests: de-duplication, group commit, forwarding, reads.
 *
 * Happy path of a write on the leader: request_start() copies the command,
 * gives it a request id if the client sent none, records it in the pending
 * table (one in-flight request per id) and queues it; request_flush(),
 * run once per loop iteration, packs everything queued into one log entry
 * (group commit); when the entry applies, request_on_apply() finds each
 * command's request by id and answers it with its own result.
 *
 * On a follower the request is forwarded to the leader's agent; the answer
 * comes back from the leader, or earlier from this replica's own apply of
 * the entry, whichever is first.
 *
 * Failure modes: leadership lost or the leader unreachable -> the request
 * waits and is retried (same request id, so it can never apply twice) until
 * its deadline; then it fails with "no quorum" if no leader could be used,
 * with "outcome unknown" if it may have been appended, else "timed out".
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"
#include "metrics.h"

/* Log entries of ours in flight. One: commands that arrive while an entry
 * commits wait and leave together in the next one. Each entry costs an
 * AppendEntries message per follower, its answer, and a disk write on
 * every replica (libraft's disk writes are one at a time anyway), so on
 * 2 cores with 3 agents and the bench (c=32) one entry in flight did 21-22
 * commands per entry against 7-9 with four, 61 us of agent CPU per
 * command against 82-84, and shorter latencies (p50 2.3-2.7 ms against
 * 3.8-4.1 ms). A second entry only when >= 16 commands wait, or once the
 * first has been in flight 600 us, lost too (docs/design.md). */
#define MAX_INFLIGHT_BATCHES 1

/* --- pending table: request id -> request ------------------------------ */

static const char *pending_key(const void *owner, uint32_t idx, size_t *n)
{
    const struct agent *a = owner;
    *n = a->ptab[idx]->cmd.req_id.n;
    return a->ptab[idx]->cmd.req_id.p;
}

int request_init(struct agent *a)
{
    map_init(&a->pending, pending_key, a);
    return 0;
}

static int pending_add(struct agent *a, struct request *r)
{
    uint32_t i;
    if (a->ptab_nfree) {
        i = a->ptab_free[--a->ptab_nfree];
    } else {
        if (a->ptab_n == a->ptab_cap) {
            uint32_t cap = a->ptab_cap ? a->ptab_cap * 2 : 256;
            struct request **t = realloc(a->ptab, cap * sizeof *t);
            uint32_t *f = t ? realloc(a->ptab_free, cap * sizeof *f) : NULL;
            if (t)
                a->ptab = t;
            if (!f)
                return VC_ENOMEM;
            a->ptab_free = f;
            a->ptab_cap = cap;
        }
        i = a->ptab_n++;
    }
    a->ptab[i] = r;
    if (map_put(&a->pending, r->cmd.req_id.p, r->cmd.req_id.n, i) != 0) {
        a->ptab_free[a->ptab_nfree++] = i;
        return VC_ENOMEM;
    }
    r->pidx = i;
    return 0;
}

static void pending_del(struct agent *a, struct request *r)
{
    if (r->pidx < 0)
        return;
    map_del(&a->pending, r->cmd.req_id.p, r->cmd.req_id.n);
    a->ptab[r->pidx] = NULL;
    a->ptab_free[a->ptab_nfree++] = (uint32_t)r->pidx;
    r->pidx = -1;
}

static struct request *pending_find(struct agent *a, struct mp_str id)
{
    int64_t i = map_find(&a->pending, id.p, id.n);
    return i < 0 ? NULL : a->ptab[i];
}

/* --- life cycle -------------------------------------------------------- */

/* --- allocation --------------------------------------------------------
 * A request is ~3 KiB, nearly all of it the command's site array. Freed
 * requests are kept for reuse (up to FREE_MAX), and a reused one is zeroed
 * except for that array, whose entries past cmd.nsites are never read. */

#define FREE_MAX 256

static struct request *free_list;
static unsigned nfree;

static struct request *request_alloc(void)
{
    struct request *r = free_list;
    if (!r)
        return calloc(1, sizeof *r);
    free_list = r->next;
    nfree--;
    size_t sites = offsetof(struct request, cmd) +
                   offsetof(struct proto_cmd, sites);
    size_t after = offsetof(struct request, cmd) + sizeof r->cmd;
    memset(r, 0, sites);
    memset((char *)r + after, 0, sizeof *r - after);
    return r;
}

static void request_dealloc(struct request *r)
{
    if (r->strbuf != r->strinl)
        free(r->strbuf);
    if (nfree >= FREE_MAX) {
        free(r);
        return;
    }
    r->next = free_list;
    free_list = r;
    nfree++;
}

/* Copies src into r->cmd: its fields and its nsites sites, not the whole
 * site array. The strings still point into src's memory. */
static int copy_cmd_fields(struct request *r, const struct proto_cmd *src)
{
    if (src->nsites > VC_SITES_MAX)
        return VC_EMALFORMED;
    memcpy(&r->cmd, src, offsetof(struct proto_cmd, sites));
    memcpy(r->cmd.sites, src->sites, src->nsites * sizeof src->sites[0]);
    return 0;
}

/* Moves the strings of r->cmd (and peer, into r->raft_addr) into one block
 * owned by r: r->strinl if they fit, else a malloc'd one. */
static int own_strings(struct request *r, struct mp_str peer)
{
    struct mp_str *fields[] = {&r->cmd.req_id, &r->cmd.origin, &r->cmd.name,
                               &r->cmd.site,   &r->cmd.owner,  &r->cmd.host,
                               &r->cmd.iface,  &r->cmd.addr,   &r->cmd.text,
                               &r->cmd.key,    &r->cmd.hash,   &r->raft_addr};
    size_t total = 0, nf = sizeof fields / sizeof fields[0];
    r->raft_addr = peer;
    for (size_t i = 0; i < nf; i++)
        total += fields[i]->n;
    for (uint32_t i = 0; i < r->cmd.nsites; i++)
        total += r->cmd.sites[i].n;
    if (total < sizeof r->strinl)
        r->strbuf = r->strinl;
    else if (!(r->strbuf = malloc(total + 1)))
        return VC_ENOMEM;
    char *p = r->strbuf;
    for (size_t i = 0; i < nf; i++) {
        memcpy(p, fields[i]->p, fields[i]->n);
        fields[i]->p = p;
        p += fields[i]->n;
    }
    for (uint32_t i = 0; i < r->cmd.nsites; i++) {
        memcpy(p, r->cmd.sites[i].p, r->cmd.sites[i].n);
        r->cmd.sites[i].p = p;
        p += r->cmd.sites[i].n;
    }
    return 0;
}

/* Deep-copies src into r->cmd, its strings into a block owned by r. */
static int copy_cmd(struct request *r, const struct proto_cmd *src,
                    struct mp_str peer)
{
    int rv = copy_cmd_fields(r, src);
    return rv ? rv : own_strings(r, peer);
}

static void queue_unlink(struct agent *a, struct request *r)
{
    /* The queue is drained every loop iteration, so it stays short. */
    struct request **pp = &a->queue_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return;
    *pp = r->qnext;
    if (a->queue_tail == r)
        a->queue_tail = prev;
    r->qnext = NULL;
    a->queued--;
}

static void request_free(struct request *r)
{
    struct agent *a = r->a;
    if (r->state == RS_QUEUED)
        queue_unlink(a, r);
    else if (r->batch)
        r->batch->reqs[r->bidx] = NULL;
    pending_del(a, r);
    members_request_gone(r);
    if (r->twin_of) {
        struct request **pp = &r->twin_of->twins;
        while (*pp && *pp != r)
            pp = &(*pp)->twin_next;
        if (*pp)
            *pp = r->twin_next;
    }
    for (struct request *t = r->twins; t; t = t->twin_next)
        t->twin_of = NULL;
    if (r->conn) {
        struct conn *c = r->conn;
        if (r->cprev)
            r->cprev->cnext = r->cnext;
        else
            c->reqs = r->cnext;
        if (r->cnext)
            r->cnext->cprev = r->cprev;
        c->npending--;
    }
    if (r->prev)
        r->prev->next = r->next;
    else
        a->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    a->nreqs--;
    request_dealloc(r);
}

static void pack_result(msgpack_packer *pk, void *ctx)
{
    proto_result_pack(pk, ctx);
}

void request_finish(struct request *r, int code, const char *msg,
                    const struct proto_result *res)
{
    /* Repeats of this request id that arrived meanwhile get the same
     * answer: the first one. */
    while (r->twins) {
        struct request *t = r->twins;
        r->twins = t->twin_next;
        t->twin_of = NULL;
        request_finish(t, code, msg, res);
    }
    if (!r->done) /* a client's: internal ones are not requests served */
        metrics_request_done(r->op, r->cmd.type,
                             code ? code : res ? res->code : 0,
                             uv_hrtime() - r->start_ns);
    if (r->conn)
        api_reply(r->conn, r->seq, code, msg ? msg : res ? res->msg : "",
                  res ? pack_result : NULL, (void *)res);
    if (r->done)
        r->done(r, code, res);
    request_free(r);
}

struct relay_ctx {
    const msgpack_object *payload;
};

static void pack_relay(msgpack_packer *pk, void *ctx)
{
    msgpack_pack_object(pk, *((struct relay_ctx *)ctx)->payload);
}

void request_relay(struct request *r, const struct proto_response *resp)
{
    char msg[VC_MSG_MAX + 1];
    struct relay_ctx ctx = {&resp->payload};
    while (r->twins) {
        struct request *t = r->twins;
        r->twins = t->twin_next;
        t->twin_of = NULL;
        request_relay(t, resp);
    }
    if (!r->done)
        metrics_request_done(r->op, r->cmd.type, resp->code,
                             uv_hrtime() - r->start_ns);
    mp_str_copy(resp->msg.n > VC_MSG_MAX ? mp_cstr("") : resp->msg, msg,
                sizeof msg);
    if (r->conn)
        api_reply(r->conn, r->seq, resp->code, msg, pack_relay, &ctx);
    if (r->done) {
        struct proto_result res;
        if (r->op == PROTO_OP_SUBMIT &&
            proto_result_unpack(&resp->payload, &res) == 0)
            r->done(r, resp->code, &res);
        else
            r->done(r, resp->code, NULL);
    }
    request_free(r);
}

void request_detach_conn(struct conn *c)
{
    for (struct request *r = c->reqs; r; r = r->cnext)
        r->conn = NULL;
    c->reqs = NULL;
    c->npending = 0;
}

/* --- routing ----------------------------------------------------------- */

static void enqueue(struct agent *a, struct request *r)
{
    r->state = RS_QUEUED;
    r->qnext = NULL;
    if (a->queue_tail)
        a->queue_tail->qnext = r;
    else
        a->queue_head = r;
    a->queue_tail = r;
    a->queued++;
}

static void issue_barrier(struct agent *a);
static void serve_read(struct request *r);

static void route(struct request *r)
{
    struct agent *a = r->a;
    if (consensus_is_leader(&a->cons)) {
        if (r->op == PROTO_OP_SUBMIT) {
            enqueue(a, r);
        } else if (r->op == PROTO_OP_JOIN) {
            members_join(a, r);
        } else if (r->op == PROTO_OP_STATUS) {
            serve_read(r); /* the leader's own view: no barrier needed */
        } else {
            r->state = RS_READWAIT;
            r->barrier_gen = a->barrier_issued + 1;
            if (!a->barrier_inflight)
                issue_barrier(a);
        }
        return;
    }
    if (r->flags & PROTO_FLAG_FORWARDED) {
        char msg[128];
        snprintf(msg, sizeof msg, "this agent is not the leader (leader: %s)",
                 api_leader_name(a));
        request_finish(r, VC_ENOTLEADER, msg, NULL);
        return;
    }
    if (peer_forward(a, r) == 0) {
        r->state = RS_FORWARDED;
        r->touched |= r->op == PROTO_OP_SUBMIT;
        return;
    }
    r->state = RS_WAITING;
}

void request_retry(struct request *r)
{
    r->state = RS_WAITING;
    r->peer = -1;
}

struct request *request_by_fwd(struct agent *a, int peer, uint32_t seq)
{
    for (struct request *r = a->reqs; r; r = r->next)
        if (r->state == RS_FORWARDED && r->peer == peer && r->fwd_seq == seq)
            return r;
    return NULL;
}

static void new_request_id(struct agent *a, char *buf, size_t len)
{
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(buf, len, "auto:%s:%02x%02x%02x%02x%02x%02x%02x%02x:%" PRIu64,
             a->cfg.site, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
             rnd[6], rnd[7], ++a->id_counter);
}

void request_start(struct agent *a, struct conn *conn,
                   const struct proto_request *req, request_done_fn done,
                   void *done_data)
{
    struct request *r = request_alloc();
    char autoid[VC_REQID_MAX + 1];
    if (!r) {
        if (conn)
            api_reply(conn, req->seq, VC_ENOMEM, "agent out of memory", NULL,
                      NULL);
        return;
    }
    r->a = a;
    r->seq = req->seq;
    r->op = req->op;
    r->flags = req->flags;
    r->pidx = -1;
    r->peer = -1;
    r->done = done;
    r->done_data = done_data;
    uint64_t timeout = req->timeout_ms ? req->timeout_ms
                                       : a->cfg.request_timeout_ms;
    if (timeout > 600000)
        timeout = 600000;
    r->deadline_ms = agent_now_ms(a) + timeout;
    r->start_ns = uv_hrtime();
    mp_str_copy(req->name, r->name, sizeof r->name);
    /* Link first so request_finish() can unlink on every path. */
    r->next = a->reqs;
    if (a->reqs)
        a->reqs->prev = r;
    a->reqs = r;
    a->nreqs++;
    if (conn) {
        r->conn = conn;
        r->cnext = conn->reqs;
        if (conn->reqs)
            conn->reqs->cprev = r;
        conn->reqs = r;
        conn->npending++;
    }
    if (req->op == PROTO_OP_JOIN) {
        if (copy_cmd(r, &req->cmd, req->peer) != 0) {
            request_finish(r, VC_ENOMEM, "agent out of memory", NULL);
            return;
        }
        route(r);
        return;
    }
    if (req->op != PROTO_OP_SUBMIT) {
        route(r);
        return;
    }
    int rv = copy_cmd_fields(r, &req->cmd);
    if (rv == 0) {
        if (r->cmd.req_id.n == 0) {
            new_request_id(a, autoid, sizeof autoid);
            r->cmd.req_id = mp_cstr(autoid);
        }
        if (r->cmd.origin.n == 0)
            r->cmd.origin = mp_cstr(a->cfg.site);
        rv = own_strings(r, mp_cstr(""));
    }
    if (rv != 0) {
        request_finish(r, rv, rv == VC_ENOMEM ? "agent out of memory"
                                              : "too many sites", NULL);
        return;
    }
    struct request *first = pending_find(a, r->cmd.req_id);
    if (first) {
        /* A repeat while the first is in flight waits for its answer. */
        r->state = RS_TWIN;
        r->twin_of = first;
        r->twin_next = first->twins;
        first->twins = r;
        return;
    }
    if (pending_add(a, r) != 0) {
        request_finish(r, VC_ENOMEM, "agent out of memory", NULL);
        return;
    }
    route(r);
}

void request_internal(struct agent *a, const struct proto_cmd *cmd,
                      request_done_fn done, void *data)
{
    struct proto_request req;
    memset(&req, 0, offsetof(struct proto_request, cmd));
    req.op = PROTO_OP_SUBMIT;
    req.cmd = *cmd;
    req.name = req.peer = mp_cstr("");
    request_start(a, NULL, &req, done, data);
}

void request_on_apply(struct agent *a, const struct proto_cmd *cmd,
                      const struct proto_result *res)
{
    struct request *r;
    if (cmd->req_id.n == 0 || a->ptab_n == 0)
        return;
    if ((r = pending_find(a, cmd->req_id)))
        request_finish(r, res->code, NULL, res);
}

/* --- group commit ------------------------------------------------------ */

static void batch_done_cb(void *data, int status)
{
    struct batch *b = data;
    struct agent *a = b->a;
    a->inflight_batches--;
    for (uint32_t i = 0; i < b->n; i++) {
        struct request *r = b->reqs[i];
        if (!r)
            continue; /* answered by the apply hook */
        r->batch = NULL;
        /* Not applied here: either refused before appending, or appended
         * and then leadership was lost (it may still commit elsewhere). */
        r->touched |= status != VC_ENOTLEADER;
        request_retry(r);
    }
    if (status != 0 && status != VC_ENOTLEADER)
        log_warn("batch of %u commands: %s; retrying through the new leader",
                 b->n, vc_strerror(status));
    free(b);
}

static void pack_raw(msgpack_packer *pk, const char *p, size_t n)
{
    pk->callback(pk->data, p, n);
}

/* Packs queued commands into one entry, stopping before it outgrows
 * PROTO_ENTRY_MAX. Returns the batch (NULL if out of memory). */
static struct batch *build_batch(struct agent *a, struct mp_buf *out)
{
    uint32_t max = a->queued < a->cfg.max_batch ? a->queued : a->cfg.max_batch;
    struct batch *b = malloc(sizeof *b + max * sizeof b->reqs[0]);
    struct mp_buf body;
    msgpack_packer pk;
    uint64_t now = agent_wall_ms(a);
    if (!b)
        return NULL;
    b->a = a;
    b->n = 0;
    mp_buf_init(&body);
    mp_packer_init(&pk, &body);
    while (b->n < max && a->queue_head) {
        struct request *r = a->queue_head;
        size_t before = body.len;
        r->cmd.time_ms = now; /* the leader's clock stamps every command */
        proto_cmd_pack(&pk, &r->cmd);
        if (body.len + 16 > PROTO_ENTRY_MAX && b->n > 0) {
            body.len = before;
            break;
        }
        a->queue_head = r->qnext;
        r->qnext = NULL;
        if (!a->queue_head)
            a->queue_tail = NULL;
        a->queued--;
        r->state = RS_PROPOSED;
        r->touched = true;
        r->batch = b;
        r->bidx = b->n;
        b->reqs[b->n++] = r;
    }
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, PROTO_LOG_VERSION);
    msgpack_pack_array(&pk, b->n);
    pack_raw(&pk, body.data, body.len);
    proto_entry_pad(out);
    mp_buf_close(&body);
    if (out->oom || body.oom) {
        for (uint32_t i = 0; i < b->n; i++) {
            b->reqs[i]->batch = NULL;
            request_retry(b->reqs[i]);
        }
        free(b);
        return NULL;
    }
    return b;
}

void request_flush(struct agent *a)
{
    if (a->queue_head && !consensus_is_leader(&a->cons)) {
        /* Lost leadership with commands queued: send them on now, not
         * once the entry in flight is given up. */
        while (a->queue_head) {
            struct request *r = a->queue_head;
            queue_unlink(a, r);
            r->state = RS_NEW;
            route(r);
        }
        return;
    }
    while (a->queue_head && a->inflight_batches < MAX_INFLIGHT_BATCHES) {
        struct mp_buf out;
        mp_buf_init(&out);
        struct batch *b = build_batch(a, &out);
        if (!b) {
            mp_buf_close(&out);
            return;
        }
        size_t len;
        char *data = mp_buf_take(&out, &len);
        int rv = consensus_propose(&a->cons, data, len, batch_done_cb, b);
        if (rv != 0) {
            a->inflight_batches++;
            batch_done_cb(b, rv);
            continue;
        }
        a->inflight_batches++;
    }
}

/* --- linearizable reads ------------------------------------------------ */

static void barrier_cb(void *data, int status)
{
    struct agent *a = data;
    uint64_t k = a->barrier_issued;
    a->barrier_inflight = false;
    struct request *r = a->reqs, *next;
    bool more = false;
    for (; r; r = next) {
        next = r->next;
        if (r->state != RS_READWAIT)
            continue;
        if (r->barrier_gen > k) {
            more = true;
        } else if (status == 0) {
            serve_read(r);
        } else {
            request_retry(r);
        }
    }
    if (more && status == 0)
        issue_barrier(a);
}

static void issue_barrier(struct agent *a)
{
    int rv = consensus_barrier(&a->cons, barrier_cb, a);
    if (rv != 0) {
        for (struct request *r = a->reqs; r; r = r->next)
            if (r->state == RS_READWAIT)
                request_retry(r);
        return;
    }
    a->barrier_issued++;
    a->barrier_inflight = true;
}

static void pack_read(msgpack_packer *pk, void *ctx)
{
    struct request *r = ctx;
    const char *name = r->name[0] ? r->name : NULL;
    if (r->op == PROTO_OP_STATUS)
        view_status(pk, r->a);
    else if (r->op == PROTO_OP_SITES)
        view_sites(pk, &r->a->fsm, name);
    else
        view_clusters(pk, &r->a->fsm, name);
}

static void serve_read(struct request *r)
{
    const struct fsm *f = &r->a->fsm;
    int code = 0;
    char msg[128] = "";
    if (r->name[0] && r->op == PROTO_OP_SITES && !fsm_site_find(f, r->name)) {
        code = VC_ENOTFOUND;
        snprintf(msg, sizeof msg, "no site named %s", r->name);
    } else if (r->name[0] && r->op == PROTO_OP_CLUSTERS &&
               !fsm_cluster_find(f, r->name)) {
        code = VC_ENOTFOUND;
        snprintf(msg, sizeof msg, "no cluster named %s", r->name);
    }
    if (r->conn)
        api_reply(r->conn, r->seq, code, msg, code ? NULL : pack_read, r);
    if (r->done)
        r->done(r, code, NULL);
    request_free(r);
}

/* --- timeouts and retries ---------------------------------------------- */

void request_unavailable_msg(struct agent *a, char *buf, size_t len)
{
    struct consensus_status st;
    unsigned voters = 0, up = 0;
    consensus_status(&a->cons, &st);
    for (unsigned i = 0; i < st.nmembers; i++) {
        if (st.members[i].role != RAFT_VOTER)
            continue;
        voters++;
        if (!strcmp(st.members[i].site, a->cfg.site) ||
            peer_reachable(a, st.members[i].site))
            up++;
    }
    snprintf(buf, len, "no quorum: %u of %u voters reachable; retry when a "
             "majority of sites is up", up, voters);
}

static void expire(struct request *r)
{
    struct agent *a = r->a;
    char msg[256];
    uint64_t leader = consensus_leader(&a->cons, NULL);
    if (r->op == PROTO_OP_SUBMIT && r->touched) {
        snprintf(msg, sizeof msg, "outcome unknown: no answer in time, the "
                 "request may still commit; retry with --request-id %.*s to "
                 "learn its outcome", (int)r->cmd.req_id.n, r->cmd.req_id.p);
        request_finish(r, VC_EUNKNOWN, msg, NULL);
    } else if (!leader) {
        request_unavailable_msg(a, msg, sizeof msg);
        request_finish(r, VC_ENOQUORUM, msg, NULL);
    } else {
        snprintf(msg, sizeof msg, "timed out waiting for the leader (%s)",
                 api_leader_name(a));
        request_finish(r, VC_ETIMEOUT, msg, NULL);
    }
}

void request_tick(struct agent *a)
{
    uint64_t now = agent_now_ms(a);
    struct request *r, *next;
    for (r = a->reqs; r; r = next) {
        next = r->next;
        if (now >= r->deadline_ms && r->state != RS_PROPOSED) {
            expire(r);
            continue;
        }
        if (r->state != RS_WAITING)
            continue;
        /* Fail fast when no leader has been seen for several election
         * timeouts and nothing was sent yet: waiting cannot help soon. */
        if (!r->touched && a->no_leader_since_ms &&
            now - a->no_leader_since_ms > 4ull * a->cfg.election_timeout_ms) {
            char msg[256];
            request_unavailable_msg(a, msg, sizeof msg);
            request_finish(r, VC_ENOQUORUM, msg, NULL);
            continue;
        }
        route(r);
    }
}

void request_close_all(struct agent *a, int code, const char *msg)
{
    while (a->reqs)
        request_finish(a->reqs, code, msg, NULL);
}
