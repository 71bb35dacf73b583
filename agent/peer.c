/* Links to the other agents: forwarding to the leader and health pings.
 *
 * Happy path: peer_tick() keeps one link per known site, pings it every
 * PING_MS and notes when it last answered; peer_forward() writes a request
 * to the leader's link with the FORWARDED flag and the time left; the
 * answer is matched by sequence number and relayed to the client.
 *
 * A link is, in plain mode (no key), a TCP connection to the site's client
 * API (address from its site record); in secure mode, a forward-purpose
 * secure channel to the site's peer (raft) address, from the raft
 * configuration (transport_link_open(); served in-process: we write
 * frames with transport_chan_write() and get the answers' bytes through
 * chan_data_cb()).
 * Either way it carries unsigned request frames: the channel authenticates
 * and encrypts them, and the other agent takes them as this site's
 * (auth.c). Secure mode never uses the client API port.
 *
 * Failure modes: connect or read errors close the link, and every request
 * forwarded over it goes back to waiting (retried with the same request
 * id, so it can never apply twice); a "not leader" answer does the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"
#include "stream.h"

#define PING_MS 300
#define REACHABLE_MS 1500
#define RETRY_MS 250

#define PEER_OF(hd) ((struct peer *)((char *)(hd) - offsetof(struct peer, h)))

/* link.data holds the agent from the slot's set-up on (peer_tick). */
static struct agent *agent_of(struct peer *p, int *idx)
{
    struct agent *a = p->link.data;
    *idx = (int)(p - a->peers);
    return a;
}

static bool secure(struct agent *a)
{
    return transport_secure(&a->cons.transport);
}

static void link_closed_cb(uv_handle_t *h)
{
    struct peer *p = PEER_OF(h);
    p->closing = false;
    mp_buf_close(&p->out);
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

static void link_close(struct peer *p)
{
    int idx;
    struct agent *a = agent_of(p, &idx);
    if (p->closing || (!p->open && !p->connecting))
        return;
    /* A secure link has no handle of ours: its buffers stay for the
     * next channel (freed by link_free(); a read may be parsing them). */
    p->open = p->connecting = false;
    mp_buf_reset(&p->out); /* queued frames die with the link */
    p->next_try_ms = agent_now_ms(a) + RETRY_MS;
    if (!secure(a)) {
        p->closing = true;
        uv_close((uv_handle_t *)&p->h, link_closed_cb);
    } else if (p->chan) {
        transport_chan_close(p->chan);
        p->chan = NULL;
    } else {
        transport_link_cancel(&p->link);
    }
    for (struct request *r = a->reqs; r; r = r->next)
        if (r->state == RS_FORWARDED && r->peer == idx)
            request_retry(r);
}

static void write_cb(uv_write_t *req, int status)
{
    struct peer *p = req->data;
    free(req);
    if (status != 0 && status != UV_ECANCELED)
        link_close(p);
}

/* Queues a frame: everything queued in one loop iteration leaves in one
 * write from peer_flush() (a follower forwards a burst of requests). */
static int link_send(struct peer *p, const char *data, size_t len)
{
    msgpack_packer pk;
    mp_packer_init(&pk, &p->out);
    if (pk.callback(pk.data, data, len) != 0) {
        mp_buf_close(&p->out);
        link_close(p);
        return VC_ENOMEM;
    }
    return 0;
}

/* Writes the queued frames (stream_write(), or sealed onto the secure
 * channel). */
static void link_flush(struct peer *p)
{
    if (!p->open || p->out.len == 0)
        return;
    if (p->chan) { /* sealed onto the channel's TCP stream at once */
        int rv = transport_chan_write(p->chan, p->out.data, p->out.len);
        mp_buf_reset(&p->out);
        if (rv != 0)
            link_close(p);
        return;
    }
    if (stream_write(&p->h.stream, &p->out, p, write_cb) != 0)
        link_close(p);
}

void peer_flush(struct agent *a)
{
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (a->peers[i].used)
            link_flush(&a->peers[i]);
}

static bool retryable(int code)
{
    return code == VC_ENOTLEADER || code == VC_ESHUTDOWN ||
           code == VC_EUNAVAILABLE || code == VC_ENOQUORUM ||
           code == VC_ETIMEOUT || code == VC_EUNKNOWN;
}

/* A ping answer [site, commit, leader] from the leader tells a restarting
 * agent the commit index its view must reach (agent_caught_up()). Older
 * agents answer with the site name alone: no information. */
static void on_ping(struct agent *a, const msgpack_object *o)
{
    const msgpack_object *v = o->via.array.ptr;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3 ||
        v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        v[2].type != MSGPACK_OBJECT_BOOLEAN || !v[2].via.boolean)
        return;
    if (v[1].via.u64 > a->leader_commit)
        a->leader_commit = v[1].via.u64;
}

static void on_response(struct agent *a, struct peer *p, int idx,
                        const struct proto_response *resp)
{
    struct request *r;
    p->last_ok_ms = agent_now_ms(a);
    if (resp->seq == p->ping_seq) {
        on_ping(a, &resp->payload);
        return;
    }
    if (!(r = request_by_fwd(a, idx, resp->seq)))
        return; /* answered already (local apply) or expired */
    /* A write's answer carries its result; anything else that says "try
     * elsewhere or later" sends the request back to waiting. */
    bool committed = r->op == PROTO_OP_SUBMIT &&
                     resp->payload.type == MSGPACK_OBJECT_ARRAY;
    if (!committed && retryable(resp->code)) {
        request_retry(r);
        return;
    }
    request_relay(r, resp);
}

/* Decode scratch for every link's answers, cleared per frame: one zone
 * for the process saves a malloc and free of its chunk on every read (the
 * loop is single-threaded; an answer is used up before the next). */
static msgpack_zone *scratch_zone(void)
{
    static msgpack_zone zone;
    static bool ready;
    if (!ready && !msgpack_zone_init(&zone, 4096))
        return NULL;
    ready = true;
    return &zone;
}

static void parse_frames(struct agent *a, struct peer *p, int idx)
{
    msgpack_zone *zone = scratch_zone();
    size_t off = 0;
    if (!zone)
        return;
    while (p->len - off >= PROTO_FRAME_HDR) {
        uint32_t n;
        struct proto_response resp;
        if (proto_response_len((uint8_t *)p->buf + off, &n) != 0) {
            log_warn("agent %s sent an oversized frame; reconnecting",
                     p->site);
            link_close(p);
            return;
        }
        if (p->len - off - PROTO_FRAME_HDR < n)
            break;
        msgpack_zone_clear(zone);
        if (proto_response_decode(p->buf + off + PROTO_FRAME_HDR, n, zone,
                                  &resp) == 0)
            on_response(a, p, idx, &resp);
        else
            log_warn("agent %s sent a malformed response", p->site);
        off += PROTO_FRAME_HDR + n;
        if (!p->open)
            break;
    }
    if (p->buf && off) {
        memmove(p->buf, p->buf + off, p->len - off);
        p->len -= off;
    }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct peer *p = PEER_OF(h);
    (void)hint;
    if (p->cap - p->len < 65536) {
        size_t cap = p->cap ? p->cap * 2 : 131072;
        char *b = cap <= 2 * (PROTO_RESPONSE_MAX + PROTO_FRAME_HDR)
                      ? realloc(p->buf, cap)
                      : NULL;
        if (!b) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    *buf = uv_buf_init(p->buf + p->len, (unsigned)(p->cap - p->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct peer *p = PEER_OF(s);
    int idx;
    struct agent *a = agent_of(p, &idx);
    (void)buf;
    if (n < 0) {
        if (n != UV_EOF)
            log_debug("link to %s: %s", p->site, uv_strerror((int)n));
        link_close(p);
        return;
    }
    p->len += (size_t)n;
    parse_frames(a, p, idx);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct peer *p = req->data;
    p->connecting = false;
    if (status != 0) {
        if (status != UV_ECANCELED) {
            p->connecting = true; /* let link_close() close the handle */
            link_close(p);
        }
        return;
    }
    p->open = true;
    uv_tcp_nodelay(&p->h.tcp, 1);
    if (uv_read_start(&p->h.stream, alloc_cb, read_cb) != 0)
        link_close(p);
}

#define PEER_OF_USER(u) \
    ((struct peer *)((char *)(u) - offsetof(struct peer, chan_user)))

/* The answers' bytes on a secure link: as read_cb, without a read. */
static void chan_data_cb(struct transport_chan_user *u, const char *data,
                         size_t len)
{
    struct peer *p = PEER_OF_USER(u);
    int idx;
    struct agent *a = agent_of(p, &idx);
    uv_buf_t buf;
    while (len > 0 && p->open) {
        alloc_cb((uv_handle_t *)&p->h, len, &buf);
        if (!buf.base) {
            link_close(p);
            return;
        }
        size_t n = len < buf.len ? len : buf.len;
        memcpy(buf.base, data, n);
        p->len += n;
        data += n;
        len -= n;
        parse_frames(a, p, idx);
    }
}

static void chan_close_cb(struct transport_chan_user *u)
{
    struct peer *p = PEER_OF_USER(u);
    p->chan = NULL; /* gone: not to be closed again */
    link_close(p);
}

/* transport_link_cb: the secure channel is up (attach to it) or failed
 * (retried by peer_tick). */
static void channel_cb(struct transport_link *l, struct transport_chan *ch,
                       int status)
{
    struct peer *p = (struct peer *)((char *)l - offsetof(struct peer, link));
    struct agent *a = l->data;
    p->connecting = false;
    if (status != 0) {
        log_debug("link to %s: %s", p->site, strerror(-status));
        p->next_try_ms = agent_now_ms(a) + RETRY_MS;
        return;
    }
    p->chan = ch;
    p->chan_user.on_data = chan_data_cb;
    p->chan_user.on_close = chan_close_cb;
    transport_chan_attach(ch, &p->chan_user);
    p->open = true;
    p->len = 0;
}

/* Frees a secure link's buffers (a plain link's go with its handle). */
static void link_free(struct peer *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
    mp_buf_close(&p->out);
}

static void link_open(struct agent *a, struct peer *p)
{
    struct sockaddr_storage ss;
    if (secure(a)) {
        int rv = transport_link_open(&a->cons.transport, &p->link, p->site,
                                     p->addr, channel_cb);
        if (rv != 0) {
            p->next_try_ms = agent_now_ms(a) + (rv == -EAGAIN ? RETRY_MS
                                                              : 5000);
            return;
        }
        p->connecting = true;
        return;
    }
    if (config_parse_addr(p->addr, &ss) != 0) {
        p->next_try_ms = agent_now_ms(a) + 5000;
        return;
    }
    uv_tcp_init(a->loop, &p->h.tcp);
    p->h.tcp.data = a;
    p->creq.data = p;
    p->connecting = true;
    p->len = 0;
    if (uv_tcp_connect(&p->creq, &p->h.tcp, (struct sockaddr *)&ss,
                       connect_cb) != 0)
        link_close(p);
}

/* The address a link to site s goes to ("" if none): its client API in
 * plain mode, its raft address (from the raft configuration) in secure
 * mode. */
static const char *link_addr(struct agent *a, const struct fsm_site *s)
{
    const char *addr = NULL;
    if (!secure(a))
        return s->addr;
    if (consensus_member_role(&a->cons, consensus_site_id(s->name),
                              &addr) < 0 || !addr)
        return "";
    return addr;
}

static void ping(struct agent *a, struct peer *p)
{
    struct proto_request req;
    struct mp_buf out;
    char err[64];
    memset(&req, 0, sizeof req);
    req.op = PROTO_OP_PING;
    req.seq = p->ping_seq = ++p->next_seq;
    mp_buf_init(&out);
    if (proto_request_encode(&req, &out, err, sizeof err) == 0)
        link_send(p, out.data, out.len);
    mp_buf_close(&out);
    p->ping_sent_ms = agent_now_ms(a);
}

void peer_tick(struct agent *a)
{
    uint64_t now = agent_now_ms(a);
    for (int i = 0; i < VC_SITES_MAX; i++) {
        const struct fsm_site *s = &a->fsm.sites[i];
        struct peer *p = &a->peers[i];
        const char *addr = s->live ? link_addr(a, s) : "";
        bool want = addr[0] && strcmp(s->name, a->cfg.site);
        if (p->used && (!want || strcmp(p->site, s->name) ||
                        strcmp(p->addr, addr))) {
            link_close(p);
            if (p->closing)
                continue; /* reuse the slot once the handle is closed */
            p->used = false;
        }
        if (!want || p->closing)
            continue;
        if (!p->used) {
            link_free(p); /* a secure link's left-overs, if any */
            memset(p, 0, sizeof *p);
            p->used = true;
            p->link.data = a;
            snprintf(p->site, sizeof p->site, "%s", s->name);
            snprintf(p->addr, sizeof p->addr, "%s", addr);
        }
        if (!p->open && !p->connecting && now >= p->next_try_ms)
            link_open(a, p);
        else if (p->open && now - p->ping_sent_ms >= PING_MS)
            ping(a, p);
    }
}

static int leader_peer(struct agent *a)
{
    /* Called for every forwarded request: try the last hit first (checked,
     * so a stale one only costs the scan). */
    static int hint = -1;
    uint64_t id = consensus_leader(&a->cons, NULL);
    if (!id)
        return -1;
    if (hint >= 0 && a->fsm.sites[hint].live &&
        consensus_site_id(a->fsm.sites[hint].name) == id)
        return hint;
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (a->fsm.sites[i].live &&
            consensus_site_id(a->fsm.sites[i].name) == id)
            return hint = i;
    return -1;
}

bool peer_leader_link(struct agent *a)
{
    int i = leader_peer(a);
    return i >= 0 && a->peers[i].used && a->peers[i].open;
}

int peer_forward(struct agent *a, struct request *r)
{
    int i = leader_peer(a);
    struct proto_request req;
    struct mp_buf out;
    char err[256];
    if (i < 0 || !a->peers[i].used || !a->peers[i].open)
        return VC_EUNAVAILABLE;
    struct peer *p = &a->peers[i];
    uint64_t now = agent_now_ms(a);
    memset(&req, 0, offsetof(struct proto_request, cmd));
    req.seq = ++p->next_seq;
    req.op = r->op;
    req.flags = r->flags | PROTO_FLAG_FORWARDED;
    req.timeout_ms = r->deadline_ms > now ? (uint32_t)(r->deadline_ms - now)
                                          : 1;
    req.name = mp_cstr(r->name);
    req.peer = r->raft_addr.p ? r->raft_addr : mp_cstr("");
    if (r->op == PROTO_OP_SUBMIT || r->op == PROTO_OP_JOIN)
        req.cmd = r->cmd;
    mp_buf_init(&out);
    /* Unsigned: the secure channel authenticates it (no key: plain TCP,
     * as the other agent expects). */
    int rv = proto_request_encode(&req, &out, err, sizeof err);
    if (rv == 0)
        rv = link_send(p, out.data, out.len);
    mp_buf_close(&out);
    if (rv != 0)
        return rv;
    r->peer = i;
    r->fwd_seq = req.seq;
    return 0;
}

uint64_t peer_last_ok(struct agent *a, const char *site)
{
    for (int i = 0; i < VC_SITES_MAX; i++) {
        struct peer *p = &a->peers[i];
        if (p->used && !strcmp(p->site, site))
            return p->last_ok_ms;
    }
    return 0;
}

bool peer_reachable(struct agent *a, const char *site)
{
    uint64_t now = agent_now_ms(a);
    for (int i = 0; i < VC_SITES_MAX; i++) {
        struct peer *p = &a->peers[i];
        if (p->used && p->open && !strcmp(p->site, site))
            return now - p->last_ok_ms <= REACHABLE_MS;
    }
    return false;
}

void peer_close_all(struct agent *a)
{
    for (int i = 0; i < VC_SITES_MAX; i++) {
        if (!a->peers[i].used)
            continue;
        link_close(&a->peers[i]);
        if (secure(a))
            link_free(&a->peers[i]);
    }
}
