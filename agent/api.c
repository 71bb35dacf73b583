/* Client API listeners and connections (TCP and a local Unix socket).
 *
 * Happy path: accept, read, cut the byte stream into length-prefixed
 * frames, decode each request with the bounded decoder, and hand it to
 * request.c (writes, linearizable reads) or answer at once (status, ping,
 * --stale reads). Answers are collected per connection and written with
 * one uv_write per loop iteration (struct api_conn).
 *
 * Failure modes: an oversized or zero-length frame header -> error answer
 * and close (the stream cannot be resynchronised); a frame whose body does
 * not decode -> error answer naming the problem, connection kept; too many
 * connections or requests in flight -> refused with "unavailable". A
 * client that goes away leaves its requests running to completion: they
 * are committed or not, never half-applied.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../proto/err.h"
#include "agent.h"
#include "auth.h"
#include "view_audit.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "stream.h"
#include "watch.h"

#define MAX_CONNS 1024
#define MAX_PENDING_PER_CONN 4096

/* A connection and the answers not yet written to it. Answers made in one
 * loop iteration (a group commit answers a whole batch at once, many over
 * one forwarding agent's connection) leave in one write: the connection
 * joins the agent's dirty list, and api_flush() writes every listed one
 * from a check handle (after the loop's I/O callbacks, before it waits
 * again) or, for answers made after that check ran, from an idle handle
 * (which also keeps the next wait from blocking). Each write is first
 * tried synchronously (uv_try_write: no request to allocate, no callback,
 * and libuv leaves the epoll set alone); only what the socket does not
 * take at once is queued with uv_write. */
struct api_conn {
    struct conn c; /* first: a struct conn * is a struct api_conn * */
    struct mp_buf out;
    struct api_conn *dnext; /* on the dirty list */
    bool dirty;
};

static void conn_closed_cb(uv_handle_t *h)
{
    struct api_conn *ac = h->data;
    sodium_memzero(ac->c.sess_key, sizeof ac->c.sess_key);
    free(ac->c.buf);
    mp_buf_close(&ac->out);
    free(ac);
}

/* Closes the handle of a connection that was never linked in. */
static void conn_discard(struct api_conn *ac)
{
    uv_close((uv_handle_t *)&ac->c.h, conn_closed_cb);
}

static void dirty_unlink(struct agent *a, struct api_conn *ac)
{
    struct api_conn **pp = (struct api_conn **)&a->api_dirty;
    if (!ac->dirty)
        return;
    while (*pp && *pp != ac)
        pp = &(*pp)->dnext;
    if (*pp)
        *pp = ac->dnext;
    ac->dirty = false;
    ac->dnext = NULL;
}

static void conn_close(struct conn *c)
{
    struct agent *a = c->a;
    if (c->closing)
        return;
    c->closing = true;
    if (c->chan) {
        transport_chan_close(c->chan);
        c->chan = NULL;
    }
    dirty_unlink(a, (struct api_conn *)c);
    watch_conn_closed(a->rec.watch, c);
    request_detach_conn(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->nconns--;
    conn_discard((struct api_conn *)c);
}

void api_drop(struct conn *c)
{
    if (c)
        conn_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->handle->data;
    free(req);
    if ((status != 0 || c->close_after_write) && !c->closing)
        conn_close(c);
}

/* After a frame that makes the stream unusable: read no more. */
static void conn_stop_reading(struct conn *c)
{
    if (!c->chan) /* a channel's data is dropped once close_after_write */
        uv_read_stop(&c->h.stream);
}

size_t api_conn_queued(const struct conn *c)
{
    return c->chan ? transport_chan_queued(c->chan)
                   : c->h.stream.write_queue_size;
}

/* Writes c's buffered answers: synchronously as far as the socket takes
 * them, the rest queued. */
static void conn_send(struct conn *c)
{
    struct api_conn *ac = (struct api_conn *)c;
    if (c->chan) { /* sealed onto the channel's TCP stream at once */
        int rv = transport_chan_write(c->chan, ac->out.data, ac->out.len);
        mp_buf_reset(&ac->out);
        if (rv != 0 || c->close_after_write)
            conn_close(c);
        return;
    }
    if (stream_write(&c->h.stream, &ac->out, NULL, write_cb) != 0)
        conn_close(c);
    else if (c->close_after_write && c->h.stream.write_queue_size == 0)
        conn_close(c);
}

/* Writes every connection on the dirty list. */
static void api_flush(struct agent *a)
{
    struct api_conn *ac;
    uv_idle_stop(&a->api_idle);
    while ((ac = a->api_dirty)) {
        a->api_dirty = ac->dnext;
        ac->dnext = NULL;
        ac->dirty = false;
        if (!ac->c.closing && ac->out.len > 0)
            conn_send(&ac->c);
    }
}

static void flush_check_cb(uv_check_t *h)
{
    api_flush(h->data);
}

static void flush_idle_cb(uv_idle_t *h)
{
    api_flush(h->data);
}

const char *api_leader_name(struct agent *a)
{
    /* Every answer names the leader: remember where its site record was
     * found rather than scan the site table each time. The hit is checked
     * (live, same id), so a stale index only costs a new scan. */
    static int hint = -1;
    uint64_t id = consensus_leader(&a->cons, NULL);
    if (!id)
        return "";
    if (hint >= 0 && a->fsm.sites[hint].live &&
        consensus_site_id(a->fsm.sites[hint].name) == id)
        return a->fsm.sites[hint].name;
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (a->fsm.sites[i].live &&
            consensus_site_id(a->fsm.sites[i].name) == id) {
            hint = i;
            return a->fsm.sites[i].name;
        }
    for (unsigned i = 0; i < a->cfg.nbootstrap; i++)
        if (consensus_site_id(a->cfg.bootstrap[i].site) == id)
            return a->cfg.bootstrap[i].site;
    return "?";
}

void api_reply(struct conn *c, uint32_t seq, int code, const char *msg,
               api_payload_fn payload, void *ctx)
{
    struct api_conn *ac = (struct api_conn *)c;
    msgpack_packer pk;
    size_t start;
    if (c->closing)
        return;
    proto_response_begin(&pk, &ac->out, &start, seq, code, msg,
                         api_leader_name(c->a));
    if (payload)
        payload(&pk, ctx);
    else
        msgpack_pack_nil(&pk);
    int rv = proto_response_finish(&ac->out, start);
    if (rv == VC_ETOOBIG) {
        /* The frame was cut off again: say so in one that fits. */
        proto_response_begin(&pk, &ac->out, &start, seq, VC_ETOOBIG,
                             "answer too large; ask for one entity", "");
        msgpack_pack_nil(&pk);
        rv = proto_response_finish(&ac->out, start);
    }
    if (rv != 0) {
        /* Out of memory: the buffered answers cannot be trusted; the
         * client sees the connection close and retries by request id. */
        conn_close(c);
        return;
    }
    if (!ac->dirty) {
        struct agent *a = c->a;
        ac->dirty = true;
        ac->dnext = a->api_dirty;
        a->api_dirty = ac;
        uv_idle_start(&a->api_idle, flush_idle_cb);
    }
}

static void pack_status(msgpack_packer *pk, void *ctx)
{
    view_status(pk, ctx);
}

/* [site, commit, leader]: a restarted agent learns from the leader's
 * answer how far it must apply before its view counts as complete. */
static void pack_ping(msgpack_packer *pk, void *ctx)
{
    struct agent *a = ctx;
    struct consensus_status st;
    consensus_status(&a->cons, &st);
    msgpack_pack_array(pk, 3);
    mp_pack_cstr(pk, a->cfg.site);
    msgpack_pack_uint64(pk, st.commit);
    /* "leader" only once its commit index is complete (consensus.h). */
    if (consensus_leader_ready(&a->cons))
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

struct local_read {
    struct agent *a;
    const struct proto_request *req;
};

static void pack_local(msgpack_packer *pk, void *ctx)
{
    struct local_read *l = ctx;
    char name[VC_NAME_MAX + 1];
    mp_str_copy(l->req->name, name, sizeof name);
    if (l->req->op == PROTO_OP_SITES)
        view_sites(pk, &l->a->fsm, name[0] ? name : NULL);
    else
        view_clusters(pk, &l->a->fsm, name[0] ? name : NULL);
}

static void pack_audit(msgpack_packer *pk, void *ctx)
{
    struct local_read *l = ctx;
    view_audit(pk, &l->a->fsm, &l->req->audit);
}

/* Returns the code answered. */
static int serve_stale(struct conn *c, const struct proto_request *req)
{
    struct local_read l = {c->a, req};
    char name[VC_NAME_MAX + 1], msg[128];
    mp_str_copy(req->name, name, sizeof name);
    if (name[0] && ((req->op == PROTO_OP_SITES && !fsm_site_find(&c->a->fsm, name)) ||
                    (req->op == PROTO_OP_CLUSTERS &&
                     !fsm_cluster_find(&c->a->fsm, name)))) {
        snprintf(msg, sizeof msg, "no %s named %s",
                 req->op == PROTO_OP_SITES ? "site" : "cluster", name);
        api_reply(c, req->seq, VC_ENOTFOUND, msg, NULL, NULL);
        return VC_ENOTFOUND;
    }
    api_reply(c, req->seq, 0, "", pack_local, &l);
    return 0;
}

/* Requests answered here count in /metrics; the others when request.c
 * finishes them. */
static void answered(const struct proto_request *req, int code, uint64_t t0)
{
    metrics_request_done(req->op, 0, code, uv_hrtime() - t0);
}

static void dispatch(struct conn *c, const struct proto_request *req)
{
    struct agent *a = c->a;
    uint64_t t0 = uv_hrtime();
    if (a->stopping) {
        api_reply(c, req->seq, VC_ESHUTDOWN,
                  "agent is shutting down; retry at another site", NULL, NULL);
        return;
    }
    switch (req->op) {
    case PROTO_OP_STATUS:
        /* Always this agent's own view (scripts rely on "site" and "id"
         * naming the agent asked); match and lag are filled by the
         * leader only: ask the leader for them. */
        api_reply(c, req->seq, 0, "", pack_status, a);
        answered(req, 0, t0);
        return;
    case PROTO_OP_PING:
        api_reply(c, req->seq, 0, "", pack_ping, a);
        answered(req, 0, t0);
        return;
    case PROTO_OP_LOGLEVEL:
        answered(req, service_log_level(a, c, req), t0);
        return;
    case PROTO_OP_WATCH:
        watch_on_request(a->rec.watch, c, req);
        return;
    case PROTO_OP_SESSION:
        answered(req, auth_session_open(c, req), t0);
        return;
    case PROTO_OP_AUDIT: /* this replica's trail: every site holds it */
        api_reply(c, req->seq, 0, "", pack_audit, &(struct local_read){a, req});
        answered(req, 0, t0);
        return;
    case PROTO_OP_SITES:
    case PROTO_OP_CLUSTERS:
        if (req->flags & PROTO_FLAG_STALE) {
            answered(req, serve_stale(c, req), t0);
            return;
        }
        break;
    }
    if (c->npending >= MAX_PENDING_PER_CONN) {
        api_reply(c, req->seq, VC_EUNAVAILABLE,
                  "too many requests in flight on this connection", NULL,
                  NULL);
        return;
    }
    request_start(a, c, req, NULL, NULL);
}

/* Decode scratch for the frames of every connection. The loop is
 * single-threaded and a decoded request is used up (copied) before the
 * next frame is decoded, so one zone, cleared per frame, serves them all
 * and saves a malloc and free of its chunk on every read. NULL if out of
 * memory. */
static msgpack_zone *scratch_zone(void)
{
    static msgpack_zone zone;
    static bool ready;
    if (!ready && !msgpack_zone_init(&zone, 8192))
        return NULL;
    ready = true;
    return &zone;
}

/* Handles every complete frame in c->buf. Returns false if c was closed. */
static bool parse_frames(struct conn *c)
{
    msgpack_zone *zone = scratch_zone();
    size_t off = 0;
    bool alive = true;
    if (!zone) {
        conn_close(c);
        return false;
    }
    while (c->len - off >= PROTO_FRAME_HDR) {
        uint32_t n;
        struct proto_request req;
        char err[256];
        if (proto_frame_len((uint8_t *)c->buf + off, &n) != 0) {
            api_reply(c, 0, VC_ETOOBIG, "frame length must be 1.."
                      "1048576 bytes; closing the connection", NULL, NULL);
            log_warn("client %s: bad frame length %u; closed", c->peer, n);
            /* The stream cannot be resynchronised: let the answer go out,
             * then close. */
            conn_stop_reading(c);
            c->close_after_write = true;
            c->len = 0;
            off = 0;
            break;
        }
        if (c->len - off - PROTO_FRAME_HDR < n)
            break;
        msgpack_zone_clear(zone);
        int rv = auth_request_decode(c, c->buf + off + PROTO_FRAME_HDR, n,
                                     zone, &req, err, sizeof err);
        off += PROTO_FRAME_HDR + n;
        if (rv != 0) {
            api_reply(c, req.seq, rv, err, NULL, NULL);
            if (c->close_after_write) { /* auth.c: a broken session */
                conn_stop_reading(c);
                c->len = 0;
                off = 0;
                break;
            }
            continue;
        }
        dispatch(c, &req);
        if (c->closing) {
            alive = false;
            break;
        }
    }
    if (alive && off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return alive;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)hint;
    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *b = cap <= 2 * (PROTO_FRAME_MAX + PROTO_FRAME_HDR) + 65536
                      ? realloc(c->buf, cap)
                      : NULL;
        if (!b) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    parse_frames(c);
}

/* Links c in and starts reading. */
static void conn_start(struct agent *a, struct conn *c)
{
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    if (!c->chan && uv_read_start(&c->h.stream, alloc_cb, read_cb) != 0)
        conn_close(c);
}

static void accept_conn(uv_stream_t *server, bool tcp)
{
    struct agent *a = server->data;
    struct api_conn *ac = calloc(1, sizeof *ac);
    if (!ac)
        return;
    struct conn *c = &ac->c;
    c->a = a;
    if (tcp)
        uv_tcp_init(a->loop, &c->h.tcp);
    else
        uv_pipe_init(a->loop, &c->h.pipe, 0);
    c->h.stream.data = ac;
    mp_buf_init(&ac->out);
    if (uv_accept(server, &c->h.stream) != 0) {
        conn_discard(ac);
        return;
    }
    if (tcp) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char ip[48] = "?";
        uv_tcp_nodelay(&c->h.tcp, 1);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET)
                uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            else
                uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        }
        snprintf(c->peer, sizeof c->peer, "%s", ip);
    } else {
        snprintf(c->peer, sizeof c->peer, "unix");
    }
    if (a->nconns >= MAX_CONNS || a->stopping) {
        log_warn("client %s refused: %u connections open", c->peer,
                 a->nconns);
        conn_discard(ac);
        return;
    }
    conn_start(a, c);
}

/* Decrypted bytes of a forwarding channel: as read_cb, without a read. */
static void chan_data_cb(struct transport_chan_user *u, const char *data,
                         size_t len)
{
    struct conn *c = (struct conn *)((char *)u - offsetof(struct conn,
                                                          chan_user));
    uv_buf_t buf;
    while (len > 0 && !c->closing && !c->close_after_write) {
        alloc_cb((uv_handle_t *)&c->h, len, &buf);
        if (!buf.base) { /* over the bound: as UV_ENOBUFS */
            conn_close(c);
            return;
        }
        size_t n = len < buf.len ? len : buf.len;
        memcpy(buf.base, data, n);
        c->len += n;
        data += n;
        len -= n;
        if (!parse_frames(c))
            return;
    }
}

static void chan_close_cb(struct transport_chan_user *u)
{
    struct conn *c = (struct conn *)((char *)u - offsetof(struct conn,
                                                          chan_user));
    c->chan = NULL; /* gone: not to be closed again */
    conn_close(c);
}

/* transport_serve_fn: another agent's forwarding channel. The site's key
 * was proved in the handshake, so the connection's identity is that site
 * (c->site, see auth.c) and its requests are served like those of any
 * client connection, in-process (no socket of ours: the channel hands us
 * plaintext and seals our answers). Not counted against MAX_CONNS: the
 * transport bounds them (TRANSPORT_FWD_PER_SITE per site), and a flood of
 * clients must not stop forwarding. Closing c closes the channel. */
static void serve_site(void *data, struct transport_chan *ch,
                       const char *site)
{
    struct agent *a = data;
    struct api_conn *ac;
    if (a->stopping || !(ac = calloc(1, sizeof *ac)))
        return; /* not attached: the transport closes it */
    struct conn *c = &ac->c;
    c->a = a;
    uv_timer_init(a->loop, &c->h.timer);
    c->h.timer.data = ac;
    mp_buf_init(&ac->out);
    c->chan = ch;
    c->chan_user.on_data = chan_data_cb;
    c->chan_user.on_close = chan_close_cb;
    transport_chan_attach(ch, &c->chan_user);
    snprintf(c->site, sizeof c->site, "%s", site);
    snprintf(c->peer, sizeof c->peer, "site %s", site);
    conn_start(a, c);
}

static void tcp_connection_cb(uv_stream_t *server, int status)
{
    if (status == 0)
        accept_conn(server, true);
}

static void pipe_connection_cb(uv_stream_t *server, int status)
{
    if (status == 0)
        accept_conn(server, false);
}

int api_start(struct agent *a, char *err, size_t len)
{
    struct sockaddr_storage ss;
    int rv;
    config_parse_addr(a->cfg.api, &ss);
    uv_check_init(a->loop, &a->api_check);
    uv_idle_init(a->loop, &a->api_idle);
    a->api_check.data = a->api_idle.data = a;
    a->api_dirty = NULL;
    uv_check_start(&a->api_check, flush_check_cb);
    uv_tcp_init(a->loop, &a->api_tcp);
    a->api_tcp.data = a;
    a->api_tcp_open = true;
    if ((rv = uv_tcp_bind(&a->api_tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&a->api_tcp, 128,
                        tcp_connection_cb)) != 0) {
        snprintf(err, len, "api: cannot listen on %s: %s", a->cfg.api,
                 uv_strerror(rv));
        return rv;
    }
    uv_pipe_init(a->loop, &a->api_pipe, 0);
    a->api_pipe.data = a;
    a->api_pipe_open = true;
    unlink(a->cfg.unix_path);
    mode_t old = umask(0077); /* the local socket is for root/admins */
    rv = uv_pipe_bind(&a->api_pipe, a->cfg.unix_path);
    umask(old);
    if (rv != 0 || (rv = uv_listen((uv_stream_t *)&a->api_pipe, 128,
                                   pipe_connection_cb)) != 0) {
        snprintf(err, len, "unix: cannot listen on %s: %s", a->cfg.unix_path,
                 uv_strerror(rv));
        return rv;
    }
    transport_set_serve(&a->cons.transport, serve_site, a);
    return 0;
}

void api_close(struct agent *a)
{
    transport_set_serve(&a->cons.transport, NULL, NULL); /* refused now */
    if (a->api_tcp_open) {
        uv_close((uv_handle_t *)&a->api_tcp, NULL);
        a->api_tcp_open = false;
    }
    if (a->api_pipe_open) {
        uv_close((uv_handle_t *)&a->api_pipe, NULL);
        unlink(a->cfg.unix_path);
        a->api_pipe_open = false;
    }
    while (a->conns)
        conn_close(a->conns);
    /* Closed with every other handle once raft is closed (main.c). */
    uv_check_stop(&a->api_check);
    uv_idle_stop(&a->api_idle);
}
