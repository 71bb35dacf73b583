/* Host agent: the watch stream's client side.
 *
 * Happy path: connect to the first site agent address, send SUBSCRIBE
 * with the version and digest of the state held (none after a start), and
 * read the answers on the subscribe's sequence number: a SNAPSHOT replaces
 * the held state, an UPDATE changes it (entries upserted by VID, VIDs
 * removed), INSYNC confirms it. Each new state is applied with the host
 * driver on a libuv worker (the driver reads the links back and changes
 * only the difference), then a REPORT (version, ok or the error, the
 * clusters and generations it carried) goes back on the same connection.
 *
 * Drift: a link event (drv_linkmon) or the timed pass (reconcile-interval)
 * applies the held state again; the driver restores what was removed or
 * changed by hand. A report is sent only when the outcome changed.
 *
 * Failure modes: the site agent is unreachable or closes the connection
 * -> try the next address after a backoff (1 s doubling to 10 s), keeping
 * the held state (configuration stays as it is meanwhile, nothing is
 * deleted) and resuming by digest; an UPDATE whose base is not the held
 * version, or a digest that does not match after applying it -> drop the
 * held state's claim (resubscribe with version 0: a full snapshot); the
 * subscription is refused (host not registered yet) -> retry after the
 * backoff; an apply fails -> report it and retry with backoff (0.5 s
 * doubling to 30 s). Nothing is applied before the first state arrives,
 * so a fresh host agent never deletes what it has not been told about.
 */
#include "hostrole.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "../drivers/drv.h"
#include "../drivers/drv_linkmon.h"
#include "../proto/err.h"
#include "../proto/frame.h"
#include "../proto/watch.h"
#include "log.h"

#define TICK_MS 50
#define RECONNECT_MIN_MS 1000
#define RECONNECT_MAX_MS 10000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
#define LINK_DEBOUNCE_MS 100
#define READ_MAX (PROTO_WATCH_BYTES_MAX + 65536)

/* What a worker applies: a copy of the held state as drv wants it. */
struct hjob {
    struct drv_host_state want;
    struct drv_host_vlan *vlans;
    const char **ifaces;
    struct proto_watch_entry *refs; /* cluster and gen, for the report */
    char trunk[VC_IFNAME_MAX + 1];
    struct proto_watch_vlan *ents; /* the copy the pointers above point into */
    uint32_t nents;
    uint64_t version;
    int rv;
    struct drv_result res;
    char err[DRV_ERRMSG_MAX];
};

struct host {
    uv_loop_t *loop;
    const struct config *cfg;
    struct drv *drv;
    struct drv_linkmon *mon;
    uv_poll_t mon_poll;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint;
    bool stopping;
    int exit_code;

    /* Connection to the site agent. */
    uv_tcp_t tcp;
    uv_connect_t creq;
    bool tcp_open, connected;
    unsigned addr_idx;
    uint64_t next_connect_ms, connect_backoff_ms;
    char *rbuf;
    size_t rlen, rcap;
    uint32_t seq, sub_seq;

    /* Held state. */
    bool have_state;
    uint64_t version, digest;
    bool complete;
    char trunk[VC_IFNAME_MAX + 1];
    struct proto_watch_vlan *ents; /* sorted by VID */
    uint32_t nents;

    /* Applying. */
    uv_work_t work;
    struct hjob *job;
    bool dirty;
    uint64_t next_apply_ms, apply_backoff_ms, link_event_ms;

    /* Last report sent on this connection. */
    bool reported;
    uint64_t rep_version;
    bool rep_ok;
    char rep_text[VC_MSG_MAX + 1];
};

static uint64_t now_ms(struct host *h)
{
    uv_update_time(h->loop);
    return uv_now(h->loop);
}

/* --- held state ----------------------------------------------------------- */

static int hent_set(struct proto_watch_vlan *d,
                    const struct proto_watch_entry *e)
{
    char(*ifs)[VC_IFNAME_MAX + 1] = NULL;
    if (e->nifaces && !(ifs = calloc(e->nifaces, sizeof *ifs)))
        return VC_ENOMEM;
    for (uint32_t i = 0; i < e->nifaces; i++)
        mp_str_copy(e->ifaces[i], ifs[i], sizeof *ifs);
    free(d->ifaces);
    d->vid = e->vid;
    d->gen = e->gen;
    mp_str_copy(e->cluster, d->cluster, sizeof d->cluster);
    d->nifaces = e->nifaces;
    d->ifaces = ifs;
    return 0;
}

static int cmp_hent(const void *x, const void *y)
{
    return (int)((const struct proto_watch_vlan *)x)->vid -
           (int)((const struct proto_watch_vlan *)y)->vid;
}

static uint64_t held_digest(struct host *h)
{
    struct proto_watch_entry *e = NULL;
    struct mp_str *ifs = NULL;
    uint64_t d = 0;
    const struct proto_watch_vlan **src =
        calloc(h->nents ? h->nents : 1, sizeof *src);
    for (uint32_t i = 0; src && i < h->nents; i++)
        src[i] = &h->ents[i];
    if (src && proto_watch_vlans_view(src, h->nents, UINT32_MAX, &e,
                                      &ifs) == 0)
        d = proto_watch_digest(mp_cstr(h->trunk), h->complete, e, h->nents);
    free(src);
    free(e);
    free(ifs);
    return d;
}

static struct proto_watch_vlan *find_vid(struct host *h, uint16_t vid)
{
    struct proto_watch_vlan key = {.vid = vid};
    return h->nents ? bsearch(&key, h->ents, h->nents, sizeof key, cmp_hent)
                    : NULL;
}

/* Applies an UPDATE's upserts and removals to the held entries. */
static int merge_update(struct host *h, const struct proto_watch *m)
{
    struct proto_watch_vlan *v =
        realloc(h->ents, (h->nents + m->nentries + 1) * sizeof *v);
    if (!v)
        return VC_ENOMEM;
    h->ents = v;
    for (uint32_t i = 0; i < m->nremoved; i++) {
        struct proto_watch_vlan *e = find_vid(h, m->removed[i]);
        if (e) {
            free(e->ifaces);
            *e = h->ents[--h->nents];
            qsort(h->ents, h->nents, sizeof *h->ents, cmp_hent);
        }
    }
    for (uint32_t i = 0; i < m->nentries; i++) {
        struct proto_watch_vlan *e = find_vid(h, m->entries[i].vid);
        if (!e) {
            e = &h->ents[h->nents++];
            memset(e, 0, sizeof *e);
        }
        if (hent_set(e, &m->entries[i]) != 0)
            return VC_ENOMEM;
        qsort(h->ents, h->nents, sizeof *h->ents, cmp_hent);
    }
    return 0;
}

static int replace_state(struct host *h, const struct proto_watch *m)
{
    struct proto_watch_vlan *v =
        calloc(m->nentries ? m->nentries : 1, sizeof *v);
    if (!v)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < m->nentries; i++)
        if (hent_set(&v[i], &m->entries[i]) != 0) {
            proto_watch_vlans_free(v, m->nentries);
            return VC_ENOMEM;
        }
    qsort(v, m->nentries, sizeof *v, cmp_hent);
    proto_watch_vlans_free(h->ents, h->nents);
    h->ents = v;
    h->nents = m->nentries;
    return 0;
}

/* --- connection ----------------------------------------------------------- */

static void conn_reset(struct host *h, const char *why);

struct hwrite {
    uv_write_t req;
    char *data;
};

static void write_cb(uv_write_t *req, int status)
{
    struct hwrite *w = (struct hwrite *)req;
    struct host *h = req->data;
    free(w->data);
    free(w);
    if (status != 0 && !h->stopping)
        conn_reset(h, uv_strerror(status));
}

static int send_watch(struct host *h, const struct proto_watch *w,
                      uint32_t *seq)
{
    struct proto_request req;
    struct mp_buf out;
    char err[256];
    size_t len;
    memset(&req, 0, sizeof req);
    req.seq = ++h->seq;
    req.op = PROTO_OP_WATCH;
    req.watch = *w;
    mp_buf_init(&out);
    int rv = proto_request_encode(&req, &out, err, sizeof err);
    if (rv != 0) {
        log_error("watch: cannot encode a %s: %s",
                  proto_watch_kind_name(w->kind), err);
        mp_buf_close(&out);
        return rv;
    }
    struct hwrite *wr = malloc(sizeof *wr);
    if (!wr) {
        mp_buf_close(&out);
        return VC_ENOMEM;
    }
    wr->data = mp_buf_take(&out, &len);
    wr->req.data = h;
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&h->tcp, &buf, 1, write_cb) != 0) {
        free(wr->data);
        free(wr);
        return VC_EUNAVAILABLE;
    }
    if (seq)
        *seq = req.seq;
    return 0;
}

static void subscribe(struct host *h)
{
    struct proto_watch w;
    proto_watch_init(&w, PROTO_WATCH_SUBSCRIBE);
    w.host = mp_cstr(h->cfg->host);
    w.version = h->have_state ? h->version : 0;
    w.digest = h->have_state ? h->digest : 0;
    h->reported = false; /* the site hears our outcome on every link */
    if (send_watch(h, &w, &h->sub_seq) != 0)
        conn_reset(h, "cannot send the subscription");
}

static void tcp_closed_cb(uv_handle_t *handle)
{
    struct host *h = handle->data;
    h->tcp_open = false;
}

static void conn_reset(struct host *h, const char *why)
{
    if (!h->tcp_open || uv_is_closing((uv_handle_t *)&h->tcp))
        return;
    if (h->connected)
        log_warn("site agent %s: %s; reconnecting",
                 h->cfg->site_agents[h->addr_idx], why);
    h->connected = false;
    h->rlen = 0;
    uv_close((uv_handle_t *)&h->tcp, tcp_closed_cb);
    h->addr_idx = (h->addr_idx + 1) % h->cfg->nsite_agents;
    h->connect_backoff_ms = h->connect_backoff_ms
                                ? h->connect_backoff_ms * 2
                                : RECONNECT_MIN_MS;
    if (h->connect_backoff_ms > RECONNECT_MAX_MS)
        h->connect_backoff_ms = RECONNECT_MAX_MS;
    h->next_connect_ms = now_ms(h) + h->connect_backoff_ms;
}

/* A state message arrived: fold it into the held state. */
static void on_state(struct host *h, const struct proto_watch *m)
{
    int rv = 0;
    if (m->kind == PROTO_WATCH_INSYNC) {
        if (!h->have_state || m->digest != h->digest) {
            h->have_state = false; /* a snapshot next time */
            conn_reset(h, "insync for a state we do not hold");
            return;
        }
        log_info("watch: resumed: the state held is current (insync, "
                 "version %llu)", (unsigned long long)m->version);
        h->version = m->version;
        h->dirty = true;
        return;
    }
    if (m->kind == PROTO_WATCH_UPDATE &&
        (!h->have_state || m->base != h->version)) {
        h->have_state = false;
        conn_reset(h, "update for another version; resubscribing");
        return;
    }
    rv = m->kind == PROTO_WATCH_SNAPSHOT ? replace_state(h, m)
                                         : merge_update(h, m);
    mp_str_copy(m->trunk, h->trunk, sizeof h->trunk);
    h->complete = m->complete;
    h->version = m->version;
    h->have_state = rv == 0;
    h->digest = held_digest(h);
    if (rv != 0 || h->digest != m->digest) {
        h->have_state = false;
        conn_reset(h, rv ? "out of memory" : "state digest mismatch");
        return;
    }
    log_debug("watch: %s version %llu: %u VLAN(s)",
              proto_watch_kind_name(m->kind), (unsigned long long)m->version,
              h->nents);
    h->dirty = true;
    h->apply_backoff_ms = 0;
    h->next_apply_ms = 0;
}

static void on_response(struct host *h, const struct proto_response *resp)
{
    char msg[512];
    mp_str_copy(resp->msg.n < sizeof msg ? resp->msg : mp_cstr("?"), msg,
                sizeof msg);
    if (resp->seq != h->sub_seq) {
        if (resp->code != 0)
            log_warn("watch: report refused: %s", msg);
        return;
    }
    if (resp->code != 0) {
        log_error("watch: subscription refused by %s: %s",
                  h->cfg->site_agents[h->addr_idx], msg);
        conn_reset(h, "subscription refused");
        return;
    }
    msgpack_zone zone;
    struct proto_watch m;
    char err[256];
    if (!msgpack_zone_init(&zone, 4096))
        return;
    int rv = proto_watch_unpack(&resp->payload, &zone, &m, err, sizeof err);
    if (rv == 0 && (m.kind == PROTO_WATCH_SUBSCRIBE ||
                    m.kind == PROTO_WATCH_REPORT))
        rv = VC_EMALFORMED;
    if (rv != 0) {
        log_error("watch: bad message from the site agent: %s", err);
        conn_reset(h, "bad message");
    } else {
        h->connect_backoff_ms = 0;
        on_state(h, &m);
    }
    msgpack_zone_destroy(&zone);
}

static void parse_frames(struct host *h)
{
    size_t off = 0;
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 8192))
        return;
    while (h->connected && h->rlen - off >= PROTO_FRAME_HDR) {
        uint32_t n;
        struct proto_response resp;
        if (proto_response_len((uint8_t *)h->rbuf + off, &n) != 0 ||
            n > READ_MAX) {
            conn_reset(h, "oversized frame");
            break;
        }
        if (h->rlen - off - PROTO_FRAME_HDR < n)
            break;
        msgpack_zone_clear(&zone);
        if (proto_response_decode(h->rbuf + off + PROTO_FRAME_HDR, n, &zone,
                                  &resp) != 0) {
            conn_reset(h, "malformed answer");
            break;
        }
        off += PROTO_FRAME_HDR + n;
        on_response(h, &resp);
    }
    msgpack_zone_destroy(&zone);
    if (h->connected && off) {
        memmove(h->rbuf, h->rbuf + off, h->rlen - off);
        h->rlen -= off;
    }
}

static void alloc_cb(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
    struct host *h = handle->data;
    (void)hint;
    if (h->rcap - h->rlen < 16384 && h->rcap < 2 * READ_MAX) {
        size_t cap = h->rcap ? h->rcap * 2 : 65536;
        char *b = realloc(h->rbuf, cap);
        if (b) {
            h->rbuf = b;
            h->rcap = cap;
        }
    }
    *buf = uv_buf_init(h->rbuf + h->rlen, (unsigned)(h->rcap - h->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct host *h = s->data;
    (void)buf;
    if (n < 0) {
        conn_reset(h, n == UV_EOF ? "closed by the site agent"
                                  : uv_strerror((int)n));
        return;
    }
    h->rlen += (size_t)n;
    parse_frames(h);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct host *h = req->data;
    if (h->stopping)
        return;
    if (status != 0) {
        log_debug("site agent %s: %s", h->cfg->site_agents[h->addr_idx],
                  uv_strerror(status));
        conn_reset(h, uv_strerror(status));
        return;
    }
    h->connected = true;
    uv_tcp_nodelay(&h->tcp, 1);
    log_info("connected to site agent %s", h->cfg->site_agents[h->addr_idx]);
    if (uv_read_start((uv_stream_t *)&h->tcp, alloc_cb, read_cb) != 0) {
        conn_reset(h, "cannot read");
        return;
    }
    subscribe(h);
}

static void maybe_connect(struct host *h, uint64_t now)
{
    struct sockaddr_storage ss;
    if (h->tcp_open || now < h->next_connect_ms)
        return;
    config_parse_addr(h->cfg->site_agents[h->addr_idx], &ss);
    uv_tcp_init(h->loop, &h->tcp);
    h->tcp.data = h;
    h->creq.data = h;
    h->tcp_open = true;
    if (uv_tcp_connect(&h->creq, &h->tcp, (struct sockaddr *)&ss,
                       connect_cb) != 0)
        conn_reset(h, "cannot connect");
}

/* --- applying ------------------------------------------------------------- */

static void job_free(struct hjob *j)
{
    if (!j)
        return;
    free(j->vlans);
    free(j->ifaces);
    free(j->refs);
    proto_watch_vlans_free(j->ents, j->nents);
    free(j);
}

/* Copies the held state into a job the worker can use on its own. */
static struct hjob *job_new(struct host *h)
{
    struct hjob *j = calloc(1, sizeof *j);
    uint32_t nif = 0;
    if (!j)
        return NULL;
    j->ents = calloc(h->nents ? h->nents : 1, sizeof *j->ents);
    for (uint32_t i = 0; i < h->nents; i++)
        nif += h->ents[i].nifaces;
    j->vlans = calloc(h->nents ? h->nents : 1, sizeof *j->vlans);
    j->refs = calloc(h->nents ? h->nents : 1, sizeof *j->refs);
    j->ifaces = calloc(nif ? nif : 1, sizeof *j->ifaces);
    if (!j->ents || !j->vlans || !j->refs || !j->ifaces) {
        job_free(j);
        return NULL;
    }
    const char **p = j->ifaces;
    for (uint32_t i = 0; i < h->nents; i++, j->nents++) {
        struct proto_watch_vlan *d = &j->ents[i], *s = &h->ents[i];
        *d = *s;
        d->ifaces = NULL;
        if (s->nifaces &&
            !(d->ifaces = calloc(s->nifaces, sizeof *d->ifaces))) {
            job_free(j);
            return NULL;
        }
        if (s->nifaces)
            memcpy(d->ifaces, s->ifaces, s->nifaces * sizeof *d->ifaces);
        j->vlans[i].vid = d->vid;
        j->vlans[i].cluster = d->cluster;
        j->vlans[i].ifaces = d->nifaces ? p : NULL;
        j->vlans[i].nifaces = d->nifaces;
        for (uint32_t k = 0; k < d->nifaces; k++)
            *p++ = d->ifaces[k];
        j->refs[i].cluster = mp_cstr(d->cluster);
        j->refs[i].gen = d->gen;
    }
    snprintf(j->trunk, sizeof j->trunk, "%s", h->trunk);
    j->want.trunk = j->trunk;
    j->want.vlans = h->nents ? j->vlans : NULL;
    j->want.nvlans = h->nents;
    j->want.index = h->version;
    j->want.complete = h->complete;
    j->version = h->version;
    return j;
}

static void work_cb(uv_work_t *w)
{
    struct host *h = w->data;
    struct hjob *j = h->job;
    j->rv = drv_host_apply(h->drv, &j->want, &j->res, j->err, sizeof j->err);
}

static void send_report(struct host *h, struct hjob *j, const char *text)
{
    struct proto_watch w;
    bool ok = j->rv == 0;
    if (!h->connected)
        return;
    if (h->reported && h->rep_version == j->version && h->rep_ok == ok &&
        !strcmp(h->rep_text, text))
        return; /* nothing new for the site */
    proto_watch_init(&w, PROTO_WATCH_REPORT);
    w.host = mp_cstr(h->cfg->host);
    w.version = j->version;
    w.ok = ok;
    w.text = mp_cstr(text);
    w.changes = j->res.changes;
    w.missing = j->res.missing;
    w.entries = j->nents ? j->refs : NULL;
    w.nentries = j->nents;
    if (send_watch(h, &w, NULL) != 0)
        return;
    h->reported = true;
    h->rep_version = j->version;
    h->rep_ok = ok;
    snprintf(h->rep_text, sizeof h->rep_text, "%s", text);
}

/* Logs the operations an apply performed, when the driver records them
 * (dryrun does by default): what it did, in ip(8) syntax. */
static void log_ops(struct host *h)
{
    char *ops = drv_log_take(h->drv), *save, *line;
    unsigned n = 0;
    for (line = ops ? strtok_r(ops, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save))
        if (n++ < 64)
            log_info("host: %s", line);
    if (n > 64)
        log_info("host: ... %u operations in all", n);
    free(ops);
}

static void after_cb(uv_work_t *w, int status)
{
    struct host *h = w->data;
    struct hjob *j = h->job;
    char text[VC_MSG_MAX + 1];
    uint64_t now = now_ms(h);
    h->job = NULL;
    if (h->stopping || status != 0) {
        job_free(j);
        return;
    }
    log_ops(h);
    if (j->rv == 0) {
        if (j->res.changes)
            log_info("host: %u change(s) applied for version %llu (%u VLANs)",
                     j->res.changes, (unsigned long long)j->version,
                     j->nents);
        snprintf(text, sizeof text, "%.*s", VC_MSG_MAX,
                 j->res.missing ? j->res.note : "");
        h->apply_backoff_ms = 0;
        h->next_apply_ms = now + h->cfg->reconcile_interval_ms;
    } else {
        snprintf(text, sizeof text, "%.*s", VC_MSG_MAX, j->err);
        if (!h->reported || h->rep_ok || strcmp(h->rep_text, text))
            log_error("host apply failed: %s", j->err);
        h->apply_backoff_ms =
            h->apply_backoff_ms ? h->apply_backoff_ms * 2 : RETRY_MIN_MS;
        if (h->apply_backoff_ms > RETRY_MAX_MS)
            h->apply_backoff_ms = RETRY_MAX_MS;
        h->next_apply_ms = now + h->apply_backoff_ms;
    }
    /* Printable text only: the report schema refuses control bytes. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    send_report(h, j, text);
    job_free(j);
}

static void maybe_apply(struct host *h, uint64_t now)
{
    if (!h->have_state || h->job)
        return;
    bool due = h->dirty || now >= h->next_apply_ms ||
               (h->link_event_ms && now >= h->link_event_ms);
    if (!due || (h->apply_backoff_ms && now < h->next_apply_ms))
        return;
    struct hjob *j = job_new(h);
    if (!j)
        return;
    h->dirty = false;
    h->link_event_ms = 0;
    h->job = j;
    h->work.data = h;
    if (uv_queue_work(h->loop, &h->work, work_cb, after_cb) != 0) {
        h->job = NULL;
        h->dirty = true;
        job_free(j);
    }
}

/* --- loop ----------------------------------------------------------------- */

static void mon_cb(uv_poll_t *p, int status, int events)
{
    struct host *h = p->data;
    (void)events;
    if (status != 0 || h->stopping)
        return;
    if (drv_linkmon_drain(h->mon) && !h->link_event_ms)
        h->link_event_ms = now_ms(h) + LINK_DEBOUNCE_MS;
}

static void tick_cb(uv_timer_t *t)
{
    struct host *h = t->data;
    uint64_t now = now_ms(h);
    if (h->stopping)
        return;
    maybe_connect(h, now);
    maybe_apply(h, now);
}

static void walk_close_cb(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct host *h = s->data;
    log_info("%s received; closing", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    h->stopping = true;
    /* A running apply finishes on its worker; uv_run returns after it. */
    uv_walk(h->loop, walk_close_cb, NULL);
}

static int start_monitor(struct host *h)
{
    char err[256];
    if (strcmp(drv_class_of(h->drv)->name, "host") != 0)
        return 0; /* simulated back-ends have no kernel links to watch */
    if (drv_linkmon_open(&h->mon, err, sizeof err) != 0) {
        log_warn("%s; drift is noticed by the timed pass only", err);
        return 0;
    }
    uv_poll_init(h->loop, &h->mon_poll, drv_linkmon_fd(h->mon));
    h->mon_poll.data = h;
    return uv_poll_start(&h->mon_poll, UV_READABLE, mon_cb);
}

int hostrole_run(const struct config *cfg)
{
    static struct host host;
    struct host *h = &host;
    char err[DRV_ERRMSG_MAX];
    h->cfg = cfg;
    h->loop = uv_default_loop();
    if (drv_open(cfg->host_driver, &h->drv, err, sizeof err) != 0) {
        log_error("config: host-driver: %s", err);
        return 2;
    }
    if (!(drv_class_of(h->drv)->roles & DRV_ROLE_HOST)) {
        log_error("config: host-driver: %s cannot configure a host",
                  drv_label(h->drv));
        drv_close(h->drv);
        return 2;
    }
    start_monitor(h);
    uv_timer_init(h->loop, &h->tick);
    h->tick.data = h;
    uv_signal_init(h->loop, &h->sigterm);
    uv_signal_init(h->loop, &h->sigint);
    h->sigterm.data = h->sigint.data = h;
    uv_signal_start(&h->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&h->sigint, signal_cb, SIGINT);
    uv_timer_start(&h->tick, tick_cb, 0, TICK_MS);
    log_info("host %s: driver %s, site agent %s", cfg->host,
             drv_label(h->drv), cfg->site_agents[0]);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
    drv_linkmon_close(h->mon);
    drv_close(h->drv);
    proto_watch_vlans_free(h->ents, h->nents);
    free(h->rbuf);
    return h->exit_code;
}
