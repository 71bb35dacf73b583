/* The secure raft transport: TCP + agent/channel.h, one connection (a
 * "pump") per peer and direction. It also carries the client requests
 * agents forward to each other (purpose CHANNEL_FORWARD, see transport.h):
 * the same handshake, limits and revalidation; only who gets the
 * plaintext differs (peer.c dialling, api.c serving, instead of raft).
 *
 * Raft's messages do not go through a stream: raft_uv would write them to
 * a uv_stream_t we cannot hook, which once meant a socketpair per
 * connection and a pump copying between it and TCP (two more syscalls and
 * a loop turn per message on each side: most of the secure transport's
 * cost). consensus.c routes raft_io's send() here instead
 * (transport_send): the message is encoded (proto/raftmsg.h), sealed and
 * written in the same call; on the receiving side each record decrypted
 * from an incoming raft connection is decoded and handed to raft's receive
 * callback (transport_set_recv) in the same read callback. raft_uv still
 * owns the disk and calls our listen(); its connect() is never used.
 * Connections are one-way: each server dials its peers for its outgoing
 * messages.
 *
 * Happy path, outgoing (raft sends to id at address): look up the key
 * pinned for the site whose raft id is id -> TCP connect -> msg1 -> msg2
 * (the peer proves the pinned key) -> msg3 -> the messages queued
 * meanwhile (RAFT_QUEUE_MAX at most) are sealed and written, later ones at
 * once. Incoming: accept -> msg1 (the key must be pinned; the site, hence
 * the raft id, comes from the key) -> msg2 -> msg3 (the peer proves its
 * key) -> each record received goes to raft with that id as its sender,
 * at the address we already send to it at (else the one it signed: see
 * answer_address()).
 *
 * Failure modes:
 * - no key pinned for the id, connect refused, handshake failure or no
 *   completed handshake within TRANSPORT_HANDSHAKE_MS: the queued sends
 *   complete with RAFT_NOCONNECTION, and for RAFT_RETRY_MS every send to
 *   that id does too (raft resends: heartbeats, probes); then we redial.
 * - a send completes (raft's callback, always from the loop, never inside
 *   send()) once its frames are written to the kernel, with
 *   RAFT_NOCONNECTION if the connection failed first, or RAFT_CANCELED
 *   once the transport is closing. More than RAFT_PENDING_MAX bytes
 *   unwritten to one peer: further sends to it fail until it drains.
 * - a record that fails to decode (an authenticated peer sending garbage)
 *   closes the connection, logged.
 * - incoming garbage, an unknown or wrong key, a bad signature, a silent
 *   or slow peer (same deadline), more than TRANSPORT_UNAUTH_MAX (or
 *   TRANSPORT_UNAUTH_PER_IP from one address) connections still in the
 *   handshake: the connection is closed and the refusal logged once with
 *   the peer's address (repeats from one address are rate limited). A
 *   site authenticated more than TRANSPORT_CONN_PER_SITE times for raft
 *   (TRANSPORT_FWD_PER_SITE for forwarding) loses its oldest connection of
 *   that purpose. An unknown purpose is refused at its msg1 byte. A
 *   forwarding channel established while nobody serves forwarded
 *   requests (api.c not up, or stopping) is closed cleanly at once.
 * - after the handshake, a frame that fails to authenticate (tampered,
 *   replayed, reordered, cut), an oversize frame, EOF without the final
 *   frame or a socket error: the connection is closed at once (raft's
 *   next send to that peer redials).
 * - the peer sends its final frame: the pump sends our final frame,
 *   flushes (uv_shutdown, bounded by CLOSE_GRACE_MS) and closes.
 * - transport close (raft_close): stop listening, close every pump,
 *   complete every send still pending; the close callback fires once
 *   every handle is closed and every send completed. A send once closing
 *   has started fails at once (RAFT_CANCELED, no callback).
 * - an incomplete record that makes no progress for RECORD_IDLE_MS closes
 *   the connection (a peer cannot pin a large receive buffer).
 */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "consensus.h"
#include "fsm.h"
#include "keys.h"
#include "log.h"
#include "proto/raftmsg.h"

#define READ_BYTES (64 * 1024)
#define CLOSE_GRACE_MS 1000
#define RAFT_QUEUE_MAX 64  /* sends held per peer while dialling */
#define RAFT_RETRY_MS 250  /* no redial of a peer this soon after a failure */
#define RAFT_PENDING_MAX (64u << 20) /* unwritten bytes to one peer */
#define KEEP_BYTES (1u << 20) /* buffers larger than this are not kept */
#define RECORD_IDLE_MS 30000  /* an incomplete record may wait this long */
#define REFUSALS 32              /* rate-limit slots, by address and error */
#define REFUSAL_QUIET_MS 30000   /* repeats logged at most this often */

struct pump;

/* One raft send: raft's request until its callback fires. */
struct rsend {
    uv_write_t w;
    struct pump *p; /* the connection written to */
    struct raft_io_send *req;
    raft_io_send_cb cb;
    uint8_t *buf; /* the encoded record while queued, then the frames */
    size_t len;
    int status; /* on tr->done */
    struct rsend *next;
};

/* A raft peer we send to: its outgoing connection and the sends waiting
 * for it. */
struct rpeer {
    raft_id id;
    char address[CHANNEL_ADDR_MAX];
    struct pump *p; /* dialling or established; NULL if none */
    struct rsend *queue, *queue_tail; /* encoded, oldest first */
    unsigned queued;
    uint64_t retry_ms; /* no new dial before this (loop time) */
    struct rpeer *next;
};

struct refusal {
    char who[INET6_ADDRSTRLEN + 10];
    int err;
    uint64_t last_ms;
    unsigned suppressed;
};

struct tr {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    const struct config *cfg; /* borrowed */
    const struct fsm *fsm;    /* borrowed, NULL until set: accepted keys */
    struct keys_pair self;
    raft_id id;
    char address[CHANNEL_ADDR_MAX];
    uv_tcp_t listener;
    bool listening; /* the listener handle is open (from tr_init) */
    struct raft_io *io;      /* raft's, once started: receives */
    raft_io_recv_cb recv_cb;
    struct rpeer *rpeers;
    struct rsend *done, *done_tail; /* callbacks due from the loop */
    uv_check_t check;               /* fires them after the poll phase */
    bool check_open;
    uint8_t *scratch; /* one encoded record at a time */
    size_t scratch_cap;
    struct transport_stats stats; /* counters only: gauges are counted */
    transport_serve_fn serve; /* incoming forwarding connections */
    void *serve_data;
    struct pump *pumps;
    unsigned unauth; /* incoming connections still in the handshake */
    bool closing;
    raft_uv_transport_close_cb close_cb;
    struct refusal refusals[REFUSALS];
    char rbuf[READ_BYTES]; /* every read lands here and is consumed at once */
};

struct wreq {
    uv_write_t req;
    struct pump *p;
    uint8_t *base;
    size_t len;
};

struct pump {
    struct tr *tr;
    enum channel_purpose purpose;
    bool incoming;
    bool counted;     /* in tr->unauth */
    bool closing;     /* hard close started: handles closing */
    bool finishing;   /* graceful close started */
    unsigned handles; /* open handles; freed at 0 */
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline, then close grace */
    uv_connect_t creq;
    uv_shutdown_t sreq;
    struct rpeer *rpeer; /* outgoing raft: whose sends it carries */
    struct channel_buf rx; /* incoming raft: an incomplete record */
    struct transport_link *link; /* outgoing forward, until its cb fired */
    struct transport_chan_user *user; /* forward: who gets the plaintext */
    size_t tcp_pending; /* bytes queued for writing */
    char ip[INET6_ADDRSTRLEN];
    char peer[INET6_ADDRSTRLEN + 8]; /* "ip:port" for the logs */
    char site[CHANNEL_NAME_MAX];
    struct channel ch;
    struct pump *next, *prev;
};

static void pump_hard_close(struct pump *p);
static void pump_finish(struct pump *p);
static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void detach_rpeer(struct pump *p);

/* --- logging ------------------------------------------------------------ */

/* Logs a refused connection once; the same error from the same address
 * again within REFUSAL_QUIET_MS is counted, not logged. */
static void refuse(struct tr *tr, struct pump *p, int err, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct tr *tr, struct pump *p, int err, const char *fmt,
                   ...)
{
    struct refusal *slot = &tr->refusals[0];
    tr->stats.refused++;
    uint64_t now = uv_now(tr->loop);
    /* Incoming: by address (source ports change); outgoing: by the site
     * dialled. Direction is part of the key: "<" in, ">" out. */
    char who[sizeof slot->who];
    char why[320];
    va_list ap;
    snprintf(who, sizeof who, "%s%s", p->incoming ? "<" : ">",
             p->incoming ? p->ip : p->peer);
    for (int i = 0; i < REFUSALS; i++) {
        struct refusal *r = &tr->refusals[i];
        if (r->err == err && strcmp(r->who, who) == 0) {
            slot = r;
            break;
        }
        if (r->last_ms < slot->last_ms)
            slot = r;
    }
    bool same = slot->err == err && strcmp(slot->who, who) == 0;
    if (same && now - slot->last_ms < REFUSAL_QUIET_MS) {
        slot->suppressed++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (same && slot->suppressed)
        log_warn("peer %s: %s (%u similar refusals not logged)", p->peer, why,
                 slot->suppressed);
    else
        log_warn("peer %s: %s", p->peer, why);
    snprintf(slot->who, sizeof slot->who, "%s", who);
    slot->err = err;
    slot->last_ms = now;
    slot->suppressed = 0;
}

static void name_peer(struct pump *p, const struct sockaddr_storage *ss)
{
    uint16_t port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        uv_ip6_name(a, p->ip, sizeof p->ip);
        port = ntohs(a->sin6_port);
        snprintf(p->peer, sizeof p->peer, "[%s]:%u", p->ip, port);
    } else {
        const struct sockaddr_in *a = (const void *)ss;
        uv_ip4_name(a, p->ip, sizeof p->ip);
        port = ntohs(a->sin_port);
        snprintf(p->peer, sizeof p->peer, "%s:%u", p->ip, port);
    }
}

/* --- keys ---------------------------------------------------------------- */

/* The keys site is accepted with (0..2, into out): its record's key and,
 * while it rotates, its old key, if the replicated state holds a keyed
 * record of it; else its bootstrap pin, unless the state revoked it. */
static unsigned site_keys(const struct config *cfg, const struct fsm *f,
                          const char *site, const uint8_t *out[2])
{
    const struct fsm_site *s = f ? fsm_site_find(f, site) : NULL;
    unsigned n = 0;
    if (s && s->has_key) {
        out[n++] = s->key;
        if (s->has_old_key)
            out[n++] = s->old_key;
        return n;
    }
    for (unsigned i = 0; i < cfg->npeer_keys; i++) {
        const struct config_peer_key *k = &cfg->peer_keys[i];
        if (strcmp(k->site, site) == 0 && !(f && fsm_auth_revoked(f, k->pk))) {
            out[n++] = k->pk;
            break;
        }
    }
    return n;
}

static bool key_in(const uint8_t *pk, const uint8_t *keys[2], unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (sodium_memcmp(keys[i], pk, KEYS_PUBLIC_BYTES) == 0)
            return true;
    return false;
}

bool transport_site_key(const struct config *cfg, const struct fsm *f,
                        const uint8_t *pk, char *name, size_t cap)
{
    const uint8_t *keys[2];
    const struct fsm_site *s;
    if (f && fsm_auth_revoked(f, pk))
        return false;
    if (f && (s = fsm_auth_site_by_key(f, pk))) {
        snprintf(name, cap, "%s", s->name);
        return true;
    }
    for (unsigned i = 0; i < cfg->npeer_keys; i++) {
        const struct config_peer_key *k = &cfg->peer_keys[i];
        if (sodium_memcmp(k->pk, pk, KEYS_PUBLIC_BYTES) == 0 &&
            key_in(pk, keys, site_keys(cfg, f, k->site, keys))) {
            snprintf(name, cap, "%s", k->site);
            return true;
        }
    }
    return false;
}

/* channel_allow_fn: an accepted site key other than our own site's, for
 * either purpose. Only site keys: a client's key (a role binding) opens
 * neither a raft nor a forwarding channel. */
static int allow_cb(void *data, const uint8_t *pk,
                    enum channel_purpose purpose, char *name, size_t cap)
{
    const struct tr *tr = data;
    (void)purpose;
    if (transport_site_key(tr->cfg, tr->fsm, pk, name, cap) &&
        strcmp(name, tr->cfg->site) != 0)
        return 0;
    return -1;
}

static const char *purpose_name(enum channel_purpose p)
{
    return p == CHANNEL_FORWARD ? "forward" : "raft";
}

/* The name of the site whose raft id is id ("" if unknown) and the keys it
 * is accepted with. Returns how many keys. */
static unsigned keys_of_id(const struct tr *tr, raft_id id, char *site,
                           size_t cap, const uint8_t *keys[2])
{
    site[0] = '\0';
    for (int i = 0; tr->fsm && i < VC_SITES_MAX && !site[0]; i++)
        if (tr->fsm->sites[i].live &&
            consensus_site_id(tr->fsm->sites[i].name) == id)
            snprintf(site, cap, "%s", tr->fsm->sites[i].name);
    for (unsigned i = 0; i < tr->cfg->npeer_keys && !site[0]; i++)
        if (consensus_site_id(tr->cfg->peer_keys[i].site) == id)
            snprintf(site, cap, "%s", tr->cfg->peer_keys[i].site);
    return site[0] ? site_keys(tr->cfg, tr->fsm, site, keys) : 0;
}

/* --- pump life cycle ----------------------------------------------------- */

static void flush_done(struct tr *tr);

static void maybe_closed(struct tr *tr)
{
    if (tr->closing && !tr->listening && !tr->check_open && !tr->pumps &&
        tr->close_cb) {
        flush_done(tr); /* the sends that completed while closing */
        raft_uv_transport_close_cb cb = tr->close_cb;
        tr->close_cb = NULL;
        cb(tr->t);
    }
}

static void pump_handle_close_cb(uv_handle_t *h)
{
    struct pump *p = h->data;
    struct tr *tr = p->tr;
    if (--p->handles > 0)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        tr->pumps = p->next;
    if (p->next)
        p->next->prev = p->prev;
    channel_close(&p->ch);
    channel_buf_free(&p->rx);
    free(p);
    maybe_closed(tr);
}

static void uncount(struct pump *p)
{
    if (p->counted) {
        p->counted = false;
        p->tr->unauth--;
    }
}

/* Tells peer.c that its connect failed (or was cancelled), once. */
static void fail_connect(struct pump *p)
{
    struct transport_link *l = p->link;
    if (l) {
        p->link = NULL;
        l->pump = NULL;
        l->cb(l, NULL, p->tr->closing ? -ECANCELED : -ECONNREFUSED);
    }
}

/* Tells a forwarding channel's user, once, that the channel is gone. */
static void drop_user(struct pump *p)
{
    struct transport_chan_user *u = p->user;
    if (u) {
        p->user = NULL;
        u->on_close(u);
    }
}

static void pump_hard_close(struct pump *p)
{
    if (p->closing)
        return;
    p->closing = true;
    uncount(p);
    fail_connect(p);
    drop_user(p);
    detach_rpeer(p);
    uv_close((uv_handle_t *)&p->timer, pump_handle_close_cb);
    uv_close((uv_handle_t *)&p->tcp, pump_handle_close_cb);
}

static struct pump *pump_new(struct tr *tr, bool incoming)
{
    struct pump *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->tr = tr;
    p->incoming = incoming;
    uv_tcp_init(tr->loop, &p->tcp);
    uv_timer_init(tr->loop, &p->timer);
    p->tcp.data = p->timer.data = p;
    p->handles = 2;
    p->next = tr->pumps;
    if (tr->pumps)
        tr->pumps->prev = p;
    tr->pumps = p;
    return p;
}

static void deadline_cb(uv_timer_t *t)
{
    struct pump *p = t->data;
    if (p->closing)
        return;
    if (p->finishing) { /* close grace over: drop what is left */
        pump_hard_close(p);
        return;
    }
    refuse(p->tr, p, -ETIMEDOUT, "no completed handshake within %d ms%s%s: "
           "closed", TRANSPORT_HANDSHAKE_MS, p->site[0] ? " with " : "",
           p->site);
    pump_hard_close(p);
}

/* --- writing ------------------------------------------------------------- */

static void write_cb(uv_write_t *w, int status)
{
    struct wreq *wr = w->data;
    struct pump *p = wr->p;
    p->tcp_pending -= wr->len;
    free(wr->base);
    free(wr);
    if (p->closing || status == 0)
        return;
    log_info("peer %s%s%s: write: %s: connection closed", p->peer,
             p->site[0] ? " " : "", p->site, uv_strerror(status));
    pump_hard_close(p);
}

/* Writes what the socket takes of buf[0..*len) at once, unless writes are
 * queued already; what is left moves to the front, *len its length.
 * 0 or a negative errno. */
static int try_write(struct pump *p, uint8_t *buf, size_t *len)
{
    uv_stream_t *s = (uv_stream_t *)&p->tcp;
    if (s->write_queue_size != 0)
        return 0;
    uv_buf_t ub = uv_buf_init((char *)buf, (unsigned)*len);
    int n = uv_try_write(s, &ub, 1);
    if (n == UV_EAGAIN)
        return 0;
    if (n < 0)
        return n;
    memmove(buf, buf + n, *len - (size_t)n);
    *len -= (size_t)n;
    return 0;
}

/* Writes the bytes of b (taking them over, b is emptied) to the peer.
 * Returns 0 or a negative errno (p then closes). */
static int send_buf(struct pump *p, struct channel_buf *b)
{
    struct wreq *wr;
    uv_stream_t *s = (uv_stream_t *)&p->tcp;
    int rv;
    if (b->len == 0)
        return 0;
    /* Usually the socket takes it all at once: no request, no callback in
     * the next loop turn, no allocation kept. */
    if ((rv = try_write(p, b->base, &b->len)) != 0 || b->len == 0) {
        channel_buf_free(b); /* taken over and emptied, as below */
        return rv;
    }
    if (!(wr = malloc(sizeof *wr))) {
        channel_buf_free(b);
        return -ENOMEM;
    }
    wr->p = p;
    wr->base = b->base;
    wr->len = b->len;
    wr->req.data = wr;
    b->base = NULL;
    b->len = b->cap = 0;
    uv_buf_t ub = uv_buf_init((char *)wr->base, (unsigned)wr->len);
    rv = uv_write(&wr->req, s, &ub, 1, write_cb);
    if (rv != 0) {
        free(wr->base);
        free(wr);
        return rv;
    }
    p->tcp_pending += wr->len;
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pump *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->tr->rbuf, sizeof p->tr->rbuf);
}

/* --- graceful close ------------------------------------------------------ */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct pump *p = req->data;
    (void)status;
    if (!p->closing)
        pump_hard_close(p);
}

/* Our final frame, then the write side flushed and shut down, then
 * closed; CLOSE_GRACE_MS at most. */
static void pump_finish(struct pump *p)
{
    struct channel_buf wire = {0};
    if (p->closing || p->finishing)
        return;
    if (!channel_established(&p->ch)) {
        pump_hard_close(p);
        return;
    }
    p->finishing = true;
    drop_user(p);
    detach_rpeer(p); /* raft's next send dials a new connection */
    if (channel_finish(&p->ch, &wire) == 0 && send_buf(p, &wire) != 0) {
        pump_hard_close(p);
        return;
    }
    channel_buf_free(&wire);
    p->sreq.data = p;
    if (uv_shutdown(&p->sreq, (uv_stream_t *)&p->tcp, shutdown_cb) != 0) {
        pump_hard_close(p);
        return;
    }
    uv_timer_start(&p->timer, deadline_cb, CLOSE_GRACE_MS, 0);
}

/* --- raft's messages ------------------------------------------------------ */

/* Appends rs to the list head..tail. */
static void rsend_append(struct rsend **head, struct rsend **tail,
                         struct rsend *rs)
{
    rs->next = NULL;
    if (*tail)
        (*tail)->next = rs;
    else
        *head = rs;
    *tail = rs;
}

/* Completes the sends done or failed so far: raft's callbacks. */
static void flush_done(struct tr *tr)
{
    /* Detached first: a callback may send again, completing later. */
    struct rsend *rs = tr->done, *next;
    tr->done = tr->done_tail = NULL;
    for (; rs; rs = next) {
        next = rs->next;
        rs->cb(rs->req, rs->status);
        free(rs->buf);
        free(rs);
    }
}

static void check_cb(uv_check_t *h)
{
    struct tr *tr = h->data;
    uv_check_stop(h);
    flush_done(tr);
}

/* rs completes with status (0: written) from the loop, right after its
 * poll phase, never inside raft's send(). A uv_check costs no system
 * call; raft's callback only releases the message's memory, so that it
 * may wait for the next poll phase when the send came from a timer. */
static void complete_later(struct tr *tr, struct rsend *rs, int status)
{
    if (status == 0) {
        tr->stats.raft_sent++;
    } else {
        tr->stats.raft_send_failed++;
        if (tr->closing)
            status = RAFT_CANCELED;
    }
    rs->status = status;
    rsend_append(&tr->done, &tr->done_tail, rs);
    if (tr->check_open && !tr->closing)
        uv_check_start(&tr->check, check_cb);
}

static void raft_write_cb(uv_write_t *w, int status)
{
    struct rsend *rs = w->data;
    struct pump *p = rs->p;
    p->tcp_pending -= rs->len;
    complete_later(p->tr, rs, status == 0 ? 0 : RAFT_NOCONNECTION);
    if (status != 0 && !p->closing) {
        log_info("peer %s %s: write: %s: connection closed", p->peer,
                 p->site, uv_strerror(status));
        pump_hard_close(p);
    }
}

/* Seals the record plain[0..len) (borrowed) on p's established channel
 * and writes it; rs completes once the kernel has it all (or fails). */
static void write_record(struct pump *p, struct rsend *rs, const void *plain,
                         size_t len)
{
    struct channel_buf wire = {0};
    if (p->tcp_pending > RAFT_PENDING_MAX) {
        complete_later(p->tr, rs, RAFT_NOCONNECTION);
        return;
    }
    if (channel_send(&p->ch, plain, len, &wire) != 0) {
        channel_buf_free(&wire);
        complete_later(p->tr, rs, RAFT_NOCONNECTION);
        log_error("peer %s %s: cannot seal: closed", p->peer, p->site);
        pump_hard_close(p);
        return;
    }
    free(rs->buf);
    rs->buf = wire.base;
    rs->len = wire.len;
    rs->p = p;
    rs->w.data = rs;
    /* Usually the socket takes it all at once: no write request, whose
     * completion would cost libuv an epoll_ctl() (it re-arms the watcher
     * after every completed request). */
    int rv = try_write(p, rs->buf, &rs->len);
    if (rv == 0 && rs->len == 0) {
        free(rs->buf);
        rs->buf = NULL;
        complete_later(p->tr, rs, 0);
        return;
    }
    uv_buf_t ub = uv_buf_init((char *)rs->buf, (unsigned)rs->len);
    if (rv == 0)
        rv = uv_write(&rs->w, (uv_stream_t *)&p->tcp, &ub, 1, raft_write_cb);
    if (rv != 0) {
        complete_later(p->tr, rs, RAFT_NOCONNECTION);
        log_info("peer %s %s: write: %s: connection closed", p->peer,
                 p->site, uv_strerror(rv));
        pump_hard_close(p);
        return;
    }
    p->tcp_pending += rs->len;
}

/* The pump stops carrying its peer's sends (closing, or finishing): the
 * ones still queued fail, and after a connection that never came up the
 * peer is not redialled for RAFT_RETRY_MS. */
static void detach_rpeer(struct pump *p)
{
    struct rpeer *rp = p->rpeer;
    struct rsend *rs;
    if (!rp)
        return;
    p->rpeer = NULL;
    rp->p = NULL;
    if (!channel_established(&p->ch))
        rp->retry_ms = uv_now(p->tr->loop) + RAFT_RETRY_MS;
    while ((rs = rp->queue)) {
        rp->queue = rs->next;
        complete_later(p->tr, rs, RAFT_NOCONNECTION);
    }
    rp->queue_tail = NULL;
    rp->queued = 0;
}

/* The outgoing connection came up: the queued records go out in order. */
static void flush_queue(struct pump *p)
{
    struct rpeer *rp = p->rpeer;
    struct rsend *rs;
    while (rp && (rs = rp->queue)) {
        rp->queue = rs->next;
        rp->queued--;
        write_record(p, rs, rs->buf, rs->len);
        rp = p->rpeer; /* NULL if that write closed p */
    }
    if (rp)
        rp->queue_tail = NULL;
}

static struct rpeer *rpeer_get(struct tr *tr, raft_id id, const char *address)
{
    struct rpeer *rp;
    for (rp = tr->rpeers; rp; rp = rp->next)
        if (rp->id == id)
            break;
    if (!rp) {
        if (!(rp = calloc(1, sizeof *rp)))
            return NULL;
        rp->id = id;
        rp->next = tr->rpeers;
        tr->rpeers = rp;
    }
    if (strcmp(rp->address, address) != 0) { /* moved: a new connection */
        if (rp->p)
            pump_finish(rp->p); /* detaches it from rp */
        snprintf(rp->address, sizeof rp->address, "%s", address);
        rp->retry_ms = 0;
    }
    return rp;
}

static struct pump *dial(struct tr *tr, const char *site, const char *address,
                         const uint8_t *keys[2], unsigned nkeys,
                         enum channel_purpose purpose);

/* Starts rp's outgoing connection unless a recent one failed. */
static void dial_rpeer(struct tr *tr, struct rpeer *rp)
{
    char site[CHANNEL_NAME_MAX];
    const uint8_t *keys[2];
    unsigned nkeys;
    uint64_t now = uv_now(tr->loop);
    if (now < rp->retry_ms)
        return;
    rp->retry_ms = now + RAFT_RETRY_MS; /* until it fails or succeeds */
    nkeys = keys_of_id(tr, rp->id, site, sizeof site, keys);
    if (nkeys == 0) {
        log_debug("raft id %llu at %s: no accepted key for it (site record "
                  "or peer-keys): not dialled", (unsigned long long)rp->id,
                  rp->address);
        return;
    }
    if ((rp->p = dial(tr, site, rp->address, keys, nkeys, CHANNEL_RAFT)))
        rp->p->rpeer = rp;
}

/* Grows tr->scratch to n bytes. */
static uint8_t *scratch(struct tr *tr, size_t n)
{
    if (n > tr->scratch_cap) {
        uint8_t *b = realloc(tr->scratch, n);
        if (!b)
            return NULL;
        tr->scratch = b;
        tr->scratch_cap = n;
    }
    return tr->scratch;
}

int transport_send(struct raft_uv_transport *t, struct raft_io_send *req,
                   const struct raft_message *m, raft_io_send_cb cb)
{
    struct tr *tr = t->impl;
    struct rpeer *rp;
    struct rsend *rs;
    size_t n = proto_raftmsg_size(m);
    uint8_t *plain;
    req->cb = cb;
    /* Closing: raft may still send (a snapshot it finished loading), but
     * our close callback may have fired already, after which nothing would
     * complete the request. raft frees the message itself on an error. */
    if (tr->closing)
        return RAFT_CANCELED;
    if (!(rs = calloc(1, sizeof *rs)))
        return RAFT_NOMEM;
    rs->req = req;
    rs->cb = cb;
    if (n == 0 || strlen(m->server_address) >= sizeof rp->address) {
        log_error("raft message of type %d to %llu: cannot encode: dropped",
                  (int)m->type, (unsigned long long)m->server_id);
        complete_later(tr, rs, RAFT_INVALID);
        return 0;
    }
    if (!(rp = rpeer_get(tr, m->server_id, m->server_address))) {
        complete_later(tr, rs, RAFT_NOCONNECTION);
        return 0;
    }
    if (rp->p && channel_established(&rp->p->ch)) {
        if (!(plain = scratch(tr, n))) {
            complete_later(tr, rs, RAFT_NOMEM);
            return 0;
        }
        proto_raftmsg_write(m, plain);
        write_record(rp->p, rs, plain, n);
        if (tr->scratch_cap > KEEP_BYTES) { /* a snapshot went out */
            free(tr->scratch);
            tr->scratch = NULL;
            tr->scratch_cap = 0;
        }
        return 0;
    }
    if (!rp->p)
        dial_rpeer(tr, rp);
    if (!rp->p || !(rs->buf = malloc(n))) {
        complete_later(tr, rs, RAFT_NOCONNECTION);
        return 0;
    }
    proto_raftmsg_write(m, rs->buf);
    rs->len = n;
    rsend_append(&rp->queue, &rp->queue_tail, rs);
    if (++rp->queued > RAFT_QUEUE_MAX) { /* the oldest is the stalest */
        struct rsend *old = rp->queue;
        rp->queue = old->next;
        rp->queued--;
        complete_later(tr, old, RAFT_NOCONNECTION);
    }
    return 0;
}

void transport_set_recv(struct raft_uv_transport *t, struct raft_io *io,
                        raft_io_recv_cb recv)
{
    struct tr *tr = t->impl;
    tr->io = io;
    tr->recv_cb = recv;
}

/* The address raft is to answer id at: the one we already send to it at
 * (raft's configuration, through transport_send()) if any, else the one
 * its site signed in the handshake. Answering at the signed one instead
 * would move rpeer_get() to it and back on every exchange, closing the
 * connection each time, whenever a site's own peer address differs from
 * the configured one (a proxy, NAT, a wildcard bind); raft_uv keeps the
 * first address it has for an id, too. */
static const char *answer_address(struct tr *tr, raft_id id,
                                  const char *signed_addr)
{
    for (struct rpeer *rp = tr->rpeers; rp; rp = rp->next)
        if (rp->id == id && rp->address[0])
            return rp->address;
    return signed_addr;
}

/* Decodes one record body and hands it to raft as sent by p's site.
 * 0, or a negative value if p must close (already logged). */
static int deliver(struct pump *p, const uint8_t *body, size_t len)
{
    char addr[CHANNEL_ADDR_MAX];
    raft_id id = consensus_site_id(p->site);
    raft_term term;
    struct tr *tr = p->tr;
    struct raft_message m;
    char why[160];
    if (proto_raftmsg_decode(body, len, &m, why, sizeof why) != 0) {
        log_warn("peer %s %s: %s: connection closed", p->peer, p->site, why);
        return -EPROTO;
    }
    if (!tr->recv_cb || tr->closing) {
        proto_raftmsg_free(&m);
        return 0;
    }
    if ((term = consensus_second_leader(tr->io->data, &m)) != 0) {
        log_warn("peer %s %s: raft message: %s of term %llu to this site, "
                 "its leader: connection closed", p->peer, p->site,
                 m.type == RAFT_APPEND_ENTRIES ? "AppendEntries"
                                               : "InstallSnapshot",
                 (unsigned long long)term);
        proto_raftmsg_free(&m);
        return -EPROTO;
    }
    if (m.type == RAFT_REQUEST_VOTE && m.request_vote.candidate_id != id) {
        log_warn("peer %s %s: raft message: RequestVote for candidate %llu, "
                 "not this site's id: connection closed", p->peer, p->site,
                 (unsigned long long)m.request_vote.candidate_id);
        return -EPROTO;
    }
    tr->stats.raft_received++;
    m.server_id = id;
    /* A copy: raft may send to this id from the callback, and a send to
     * a new address rewrites the rpeer's. */
    snprintf(addr, sizeof addr, "%s",
             answer_address(tr, m.server_id, p->ch.peer_addr));
    m.server_address = addr;
    tr->recv_cb(tr->io, &m); /* raft owns what m carries now */
    return 0;
}

static void record_idle_cb(uv_timer_t *t)
{
    struct pump *p = t->data;
    if (p->closing || p->finishing)
        return;
    log_warn("peer %s %s: raft record incomplete for %d ms (%zu bytes of "
             "it): connection closed", p->peer, p->site, RECORD_IDLE_MS,
             p->rx.len);
    p->tr->stats.errors++;
    pump_hard_close(p);
}

/* Feeds decrypted bytes of an incoming raft connection: every complete
 * record goes to raft at once, an incomplete one waits in p->rx. 0 or a
 * negative value if p must close. */
static int raft_records(struct pump *p, const uint8_t *in, size_t len)
{
    const uint8_t *at = in;
    size_t left = len;
    uint32_t n;
    if (p->rx.len) { /* complete the waiting record first */
        if (channel_buf_reserve(&p->rx, len) != 0)
            return -ENOMEM;
        memcpy(p->rx.base + p->rx.len, in, len);
        p->rx.len += len;
        at = p->rx.base;
        left = p->rx.len;
    }
    while (left >= PROTO_RAFTMSG_HEAD && !p->closing) {
        if (proto_raftmsg_peek(at, &n) != 0) {
            log_warn("peer %s %s: raft record of %u bytes: connection "
                     "closed", p->peer, p->site, n);
            return -EMSGSIZE;
        }
        if (left - PROTO_RAFTMSG_HEAD < n)
            break;
        if (deliver(p, at + PROTO_RAFTMSG_HEAD, n) != 0)
            return -EPROTO;
        at += PROTO_RAFTMSG_HEAD + n;
        left -= PROTO_RAFTMSG_HEAD + n;
    }
    if (p->closing)
        return 0;
    if (at != p->rx.base || !p->rx.len) { /* keep the rest, if any */
        if (p->rx.len) {
            memmove(p->rx.base, at, left);
            p->rx.len = left;
        } else if (left) {
            if (channel_buf_reserve(&p->rx, left) != 0)
                return -ENOMEM;
            memcpy(p->rx.base, at, left);
            p->rx.len = left;
        }
    }
    if (p->rx.len == 0 && p->rx.cap > KEEP_BYTES)
        channel_buf_free(&p->rx); /* a snapshot went through */
    if (p->rx.len) /* restarted on every read that brings more */
        uv_timer_start(&p->timer, record_idle_cb, RECORD_IDLE_MS, 0);
    else
        uv_timer_stop(&p->timer);
    return 0;
}

/* An authenticated site gets TRANSPORT_CONN_PER_SITE incoming raft
 * connections and TRANSPORT_FWD_PER_SITE forwarding ones at most: a new
 * one closes the oldest of its purpose (raft and peer.c use one each; the
 * others are stale or abuse). Purposes are counted apart, so forwarding
 * connections can never evict raft's. */
static void cap_site(struct pump *np)
{
    struct pump *oldest = NULL;
    unsigned n = 0;
    unsigned cap = np->purpose == CHANNEL_FORWARD ? TRANSPORT_FWD_PER_SITE
                                                  : TRANSPORT_CONN_PER_SITE;
    for (struct pump *p = np->tr->pumps; p; p = p->next)
        if (p != np && p->incoming && !p->closing && !p->counted &&
            p->purpose == np->purpose && channel_established(&p->ch) &&
            strcmp(p->site, np->site) == 0) {
            n++;
            oldest = p; /* the list runs newest first */
        }
    if (n >= cap) {
        log_info("peer %s %s: %u %s connections from this site: closing the "
                 "oldest (%s)", np->peer, np->site, n + 1,
                 purpose_name(np->purpose), oldest->peer);
        pump_hard_close(oldest);
    }
}

/* Hands a forwarding channel to its user: api.c (incoming) or peer.c
 * (outgoing), who attach to it; one nobody took is closed cleanly (the
 * forwarding site retries). */
static void hand_over_chan(struct pump *p)
{
    struct tr *tr = p->tr;
    struct transport_chan *ch = (struct transport_chan *)p;
    if (p->incoming) {
        if (tr->serve) /* else not serving: starting or stopping */
            tr->serve(tr->serve_data, ch, p->site);
    } else {
        struct transport_link *l = p->link;
        p->link = NULL;
        l->pump = NULL;
        l->cb(l, ch, 0);
    }
    if (!p->user)
        pump_finish(p);
}

static int on_established(struct pump *p)
{
    uv_timer_stop(&p->timer);
    uncount(p);
    if (p->incoming) {
        p->purpose = p->ch.purpose; /* authenticated with the transcript */
        snprintf(p->site, sizeof p->site, "%s", p->ch.peer_name);
        cap_site(p);
    }
    log_debug("peer %s: %s %s authenticated (%s)", p->peer,
              p->incoming ? "from" : "to", p->site, purpose_name(p->purpose));
    if (p->purpose == CHANNEL_FORWARD)
        hand_over_chan(p);
    else if (!p->incoming)
        flush_queue(p);
    return 0;
}

/* --- reading ------------------------------------------------------------- */

/* Decrypted bytes on a raft connection: records from the site if it
 * dialled us; nothing at all on ours (raft's connections are one-way).
 * 0, or a negative value (logged) if p must close. */
static int raft_data(struct pump *p, const uint8_t *in, size_t len)
{
    if (p->incoming)
        return raft_records(p, in, len);
    log_warn("peer %s %s: data on an outgoing raft connection: closed",
             p->peer, p->site);
    return -EPROTO;
}

static void on_tcp_eof(struct pump *p)
{
    bool was_open = channel_established(&p->ch);
    if (channel_eof(&p->ch) == 0) {
        pump_finish(p);
        return;
    }
    if (was_open)
        log_info("peer %s %s: %s", p->peer, p->site, channel_error(&p->ch));
    else
        refuse(p->tr, p, -EPIPE, "%s: closed", channel_error(&p->ch));
    pump_hard_close(p);
}

static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pump *p = s->data;
    struct channel_buf wire = {0}, plain = {0};
    bool was_open, bad_data = false;
    int rv;
    if (p->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            on_tcp_eof(p);
            return;
        }
        log_info("peer %s %s: read: %s: closed", p->peer, p->site,
                 uv_strerror((int)nread));
        pump_hard_close(p);
        return;
    }
    was_open = channel_established(&p->ch);
    rv = channel_recv(&p->ch, buf->base, (size_t)nread, &wire, &plain);
    if (send_buf(p, &wire) != 0 && rv == 0)
        rv = -EIO;
    if (rv == 0 && !was_open && channel_established(&p->ch) &&
        on_established(p) != 0)
        rv = -EIO;
    if (rv == 0 && plain.len && !p->finishing && !p->closing) {
        if (p->user) /* a forwarding channel: straight to its user */
            p->user->on_data(p->user, (const char *)plain.base, plain.len);
        else if (p->purpose == CHANNEL_RAFT)
            bad_data = raft_data(p, plain.base, plain.len) != 0;
    }
    channel_buf_free(&wire);
    channel_buf_free(&plain);
    if (bad_data) { /* logged */
        p->tr->stats.errors++;
        pump_hard_close(p);
        return;
    }
    if (rv != 0) {
        if (rv == -EIO)
            log_error("peer %s %s: cannot pump: closed", p->peer, p->site);
        else if (was_open) {
            p->tr->stats.errors++;
            log_warn("peer %s %s: %s: connection closed", p->peer, p->site,
                     channel_error(&p->ch));
        } else
            refuse(p->tr, p, rv, "refused: %s", channel_error(&p->ch));
        pump_hard_close(p);
        return;
    }
    if (channel_peer_done(&p->ch))
        pump_finish(p);
}

/* --- outgoing ------------------------------------------------------------ */

static void connect_cb(uv_connect_t *creq, int status)
{
    struct pump *p = creq->data;
    struct channel_buf wire = {0};
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (p->closing)
        return;
    if (status != 0) {
        log_debug("peer %s %s: connect: %s", p->peer, p->site,
                  uv_strerror(status));
        pump_hard_close(p);
        return;
    }
    uv_tcp_nodelay(&p->tcp, 1);
    if (uv_tcp_getpeername(&p->tcp, (struct sockaddr *)&ss, &len) == 0)
        name_peer(p, &ss);
    if (channel_start(&p->ch, &wire) != 0 || send_buf(p, &wire) != 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, tcp_read_cb) != 0) {
        channel_buf_free(&wire);
        pump_hard_close(p);
    }
}

/* Dials site at address for purpose, expecting one of its nkeys (1..2)
 * keys. Returns the pump (its handshake deadline running), or NULL if it
 * failed at once (nothing to call back). */
static struct pump *dial(struct tr *tr, const char *site, const char *address,
                         const uint8_t *keys[2], unsigned nkeys,
                         enum channel_purpose purpose)
{
    struct sockaddr_storage ss;
    struct pump *p;
    if (config_parse_addr(address, &ss) != 0) {
        log_warn("site %s: raft address \"%s\" is not IP:PORT", site,
                 address);
        return NULL;
    }
    if (!(p = pump_new(tr, false)))
        return NULL;
    struct channel_config cc = {.initiator = true, .self = &tr->self,
                                .cluster_id = tr->cfg->cluster_id,
                                .address = tr->address, .expect = keys[0],
                                .expect_alt = nkeys > 1 ? keys[1] : NULL,
                                .purpose = purpose};
    p->purpose = purpose;
    snprintf(p->site, sizeof p->site, "%s", site);
    snprintf(p->peer, sizeof p->peer, "%s", address);
    snprintf(p->ip, sizeof p->ip, "%s", address);
    p->creq.data = p;
    if (channel_init(&p->ch, &cc) != 0 ||
        uv_tcp_connect(&p->creq, &p->tcp, (struct sockaddr *)&ss,
                       connect_cb) != 0) {
        pump_hard_close(p); /* no req or link yet: no callback */
        return NULL;
    }
    uv_timer_start(&p->timer, deadline_cb, TRANSPORT_HANDSHAKE_MS, 0);
    return p;
}

/* raft_uv dials only from its own send(), which consensus.c replaces with
 * transport_send(): nothing calls this. */
static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    (void)t;
    (void)req;
    (void)cb;
    log_error("raft id %llu at %s: raft_uv asked for a stream: not "
              "supported by the secure transport", (unsigned long long)id,
              address);
    return RAFT_NOCONNECTION;
}

/* --- incoming ------------------------------------------------------------ */

static unsigned unauth_from(struct tr *tr, const char *ip)
{
    unsigned n = 0;
    for (struct pump *p = tr->pumps; p; p = p->next)
        n += p->counted && strcmp(p->ip, ip) == 0;
    return n;
}

static void listen_cb(uv_stream_t *server, int status)
{
    struct tr *tr = server->data;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    struct pump *p;
    if (tr->closing || status != 0 || !(p = pump_new(tr, true)))
        return;
    struct channel_config cc = {.self = &tr->self,
                                .cluster_id = tr->cfg->cluster_id,
                                .allow = allow_cb, .allow_data = tr};
    if (uv_accept(server, (uv_stream_t *)&p->tcp) != 0 ||
        uv_tcp_getpeername(&p->tcp, (struct sockaddr *)&ss, &len) != 0) {
        pump_hard_close(p);
        return;
    }
    name_peer(p, &ss);
    if (tr->unauth >= TRANSPORT_UNAUTH_MAX ||
        unauth_from(tr, p->ip) >= TRANSPORT_UNAUTH_PER_IP) {
        refuse(tr, p, -EMFILE, "refused: %u connections still in the "
               "handshake (%u from this address)", tr->unauth,
               unauth_from(tr, p->ip));
        pump_hard_close(p);
        return;
    }
    p->counted = true;
    tr->unauth++;
    uv_tcp_nodelay(&p->tcp, 1);
    if (channel_init(&p->ch, &cc) != 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, tcp_read_cb) != 0) {
        pump_hard_close(p);
        return;
    }
    uv_timer_start(&p->timer, deadline_cb, TRANSPORT_HANDSHAKE_MS, 0);
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct tr *tr = t->impl;
    struct sockaddr_storage ss;
    int rv;
    if (!tr->listening || config_parse_addr(tr->address, &ss) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen address \"%s\" is "
                 "not IP:PORT", tr->address);
        return RAFT_INVALID;
    }
    (void)cb; /* raft's messages reach it through transport_set_recv() */
    if ((rv = uv_tcp_bind(&tr->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&tr->listener, 128, listen_cb)) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s",
                 tr->address, uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

/* --- transport ----------------------------------------------------------- */

static int tr_init(struct raft_uv_transport *t, raft_id id,
                   const char *address)
{
    struct tr *tr = t->impl;
    if (strlen(address) >= sizeof tr->address) {
        snprintf(t->errmsg, sizeof t->errmsg, "address too long");
        return RAFT_INVALID;
    }
    tr->id = id;
    snprintf(tr->address, sizeof tr->address, "%s", address);
    /* The handles exist from here on, so that tr_close() always completes
     * asynchronously, through their close callbacks. */
    if (!tr->listening) {
        uv_tcp_init(tr->loop, &tr->listener);
        tr->listener.data = tr;
        tr->listening = true;
    }
    if (!tr->check_open) {
        uv_check_init(tr->loop, &tr->check);
        tr->check.data = tr;
        tr->check_open = true;
    }
    return 0;
}

static void listener_close_cb(uv_handle_t *h)
{
    struct tr *tr = h->data;
    tr->listening = false;
    maybe_closed(tr);
}

static void check_close_cb(uv_handle_t *h)
{
    struct tr *tr = h->data;
    tr->check_open = false;
    maybe_closed(tr);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct tr *tr = t->impl;
    tr->closing = true;
    tr->close_cb = cb;
    if (tr->listening)
        uv_close((uv_handle_t *)&tr->listener, listener_close_cb);
    if (tr->check_open)
        uv_close((uv_handle_t *)&tr->check, check_close_cb);
    for (struct pump *p = tr->pumps, *next; p; p = next) {
        next = p->next;
        /* A clean end for the peers (raft is closing: what it sent last
         * may be cut off, as with raft_uv). */
        if (channel_established(&p->ch) && !p->ch.final_sent &&
            !p->closing) {
            struct channel_buf wire = {0};
            if (channel_finish(&p->ch, &wire) == 0)
                send_buf(p, &wire);
            channel_buf_free(&wire);
        }
        pump_hard_close(p);
    }
    maybe_closed(tr);
}

static int init_plain(struct raft_uv_transport *t, uv_loop_t *loop,
                      char *errmsg, size_t errlen)
{
    log_warn("peer traffic is not encrypted: no key configured (set key, "
             "peer-keys and cluster-id; see virtcloud keygen)");
    t->version = 1; /* raft_uv rejects any other */
    if (raft_uv_tcp_init(t, loop) != 0) {
        snprintf(errmsg, errlen, "transport: out of memory");
        return -ENOMEM;
    }
    return 0;
}

int transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const struct config *cfg, char *errmsg, size_t errlen)
{
    struct tr *tr;
    char why[512];
    int rv;
    if (!cfg->key_path[0])
        return init_plain(t, loop, errmsg, errlen);
    if (!(tr = calloc(1, sizeof *tr))) {
        snprintf(errmsg, errlen, "transport: out of memory");
        return -ENOMEM;
    }
    if ((rv = keys_load_private(cfg->key_path, &tr->self, why, sizeof why))) {
        snprintf(errmsg, errlen, "key: %s", why);
        free(tr);
        return rv;
    }
    for (unsigned i = 0; i < cfg->npeer_keys; i++)
        if (strcmp(cfg->peer_keys[i].site, cfg->site) == 0 &&
            sodium_memcmp(cfg->peer_keys[i].pk, tr->self.pk, 32) != 0)
            log_warn("peer-keys pins another key for this site (%s) than "
                     "the one in %s: the others will refuse it", cfg->site,
                     cfg->key_path);
    tr->t = t;
    tr->loop = loop;
    tr->cfg = cfg;
    memset(t, 0, sizeof *t);
    t->version = 1;
    t->impl = tr;
    t->init = tr_init;
    t->listen = tr_listen;
    t->connect = tr_connect;
    t->close = tr_close;
    char pub[KEYS_PUBLIC_TEXT_MAX];
    keys_format_public(tr->self.pk, pub, sizeof pub);
    log_info("peer traffic authenticated and encrypted: key %s, cluster-id "
             "%s, %u pinned site keys", pub, cfg->cluster_id, cfg->npeer_keys);
    return 0;
}

void transport_set_fsm(struct raft_uv_transport *t, const struct fsm *f)
{
    if (t->close == tr_close)
        ((struct tr *)t->impl)->fsm = f;
}

void transport_set_self(struct raft_uv_transport *t,
                        const struct keys_pair *kp)
{
    if (t->close == tr_close)
        ((struct tr *)t->impl)->self = *kp;
}

bool transport_secure(const struct raft_uv_transport *t)
{
    return t->close == tr_close;
}

void transport_set_serve(struct raft_uv_transport *t, transport_serve_fn fn,
                         void *data)
{
    struct tr *tr;
    if (t->close != tr_close)
        return;
    tr = t->impl;
    tr->serve = fn;
    tr->serve_data = data;
}

int transport_link_open(struct raft_uv_transport *t, struct transport_link *l,
                        const char *site, const char *address,
                        transport_link_cb cb)
{
    struct tr *tr;
    const uint8_t *keys[2];
    unsigned nkeys;
    struct pump *p;
    if (t->close != tr_close)
        return -ENOTSUP;
    tr = t->impl;
    if (tr->closing)
        return -ECANCELED;
    if (!tr->address[0]) /* before raft_uv's init: we have no address */
        return -EAGAIN;
    if ((nkeys = site_keys(tr->cfg, tr->fsm, site, keys)) == 0) {
        log_debug("site %s: no accepted key for it (site record or "
                  "peer-keys): no forwarding link", site);
        return -EACCES;
    }
    if (!(p = dial(tr, site, address, keys, nkeys, CHANNEL_FORWARD)))
        return -ECONNREFUSED;
    l->cb = cb;
    l->pump = p;
    p->link = l;
    return 0;
}

void transport_link_cancel(struct transport_link *l)
{
    struct pump *p = l->pump;
    if (!p)
        return;
    l->pump = NULL;
    p->link = NULL; /* no callback */
    pump_hard_close(p);
}

void transport_chan_attach(struct transport_chan *ch,
                           struct transport_chan_user *u)
{
    ((struct pump *)ch)->user = u;
}

int transport_chan_write(struct transport_chan *ch, const void *buf,
                         size_t len)
{
    struct pump *p = (struct pump *)ch;
    struct channel_buf wire = {0};
    int rv;
    if (p->closing || p->finishing)
        return -EPIPE;
    if ((rv = channel_send(&p->ch, buf, len, &wire)) != 0 ||
        (rv = send_buf(p, &wire)) != 0) {
        channel_buf_free(&wire);
        log_error("peer %s %s: cannot send: closed", p->peer, p->site);
        pump_hard_close(p);
        return rv < 0 ? rv : -EIO;
    }
    return 0;
}

size_t transport_chan_queued(const struct transport_chan *ch)
{
    return ((const struct pump *)ch)->tcp_pending;
}

void transport_chan_close(struct transport_chan *ch)
{
    struct pump *p = (struct pump *)ch;
    p->user = NULL;
    pump_finish(p);
}

bool transport_stats(const struct raft_uv_transport *t,
                     struct transport_stats *st)
{
    const struct tr *tr = t->impl;
    memset(st, 0, sizeof *st);
    if (t->close != tr_close)
        return false;
    *st = tr->stats;
    for (const struct pump *p = tr->pumps; p; p = p->next) {
        if (p->closing)
            continue;
        if (p->counted || (!channel_established(&p->ch) && !p->incoming))
            st->handshaking++;
        else if (channel_established(&p->ch) && p->purpose < 2)
            st->conns[p->purpose][p->incoming]++;
    }
    return true;
}

/* Is the authenticated peer of p still accepted under its name? */
static bool still_accepted(const struct tr *tr, const struct pump *p)
{
    const uint8_t *keys[2];
    char name[CHANNEL_NAME_MAX];
    if (p->incoming)
        return transport_site_key(tr->cfg, tr->fsm, p->ch.peer_pk, name,
                                  sizeof name) &&
               strcmp(name, p->site) == 0;
    return key_in(p->ch.peer_pk, keys,
                  site_keys(tr->cfg, tr->fsm, p->site, keys));
}

unsigned transport_revalidate(struct raft_uv_transport *t)
{
    struct tr *tr;
    unsigned n = 0;
    if (t->close != tr_close)
        return 0;
    tr = t->impl;
    for (struct pump *p = tr->pumps; p; p = p->next) {
        if (p->closing || !channel_established(&p->ch) ||
            still_accepted(tr, p))
            continue;
        log_warn("peer %s %s: its key is no longer accepted (site removed "
                 "or key rotated out): %s connection closed", p->peer,
                 p->site, purpose_name(p->purpose));
        pump_hard_close(p);
        n++;
    }
    return n;
}

void transport_close(struct raft_uv_transport *t)
{
    struct tr *tr;
    if (t->close != tr_close) {
        raft_uv_tcp_close(t);
        return;
    }
    tr = t->impl;
    while (tr->rpeers) { /* their sends all completed (tr_close) */
        struct rpeer *rp = tr->rpeers;
        tr->rpeers = rp->next;
        free(rp);
    }
    free(tr->scratch);
    keys_wipe(&tr->self);
    free(tr);
    t->impl = NULL;
}
