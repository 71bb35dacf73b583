/* Site side of the watch stream.
 *
 * Happy path: a host agent sends SUBSCRIBE(host, version, digest) on its
 * API connection; at the next tick the site agent computes the host's
 * desired state from the applied state machine (only committed entries)
 * and answers on the subscribe's sequence number with INSYNC if the
 * digest matches what the host holds, else with a SNAPSHOT. After every
 * change to the state machine (watch_kick) the states are computed again
 * and each host whose state changed gets an UPDATE: the entries that
 * changed and the VIDs that went, against the version it was last sent.
 * The host applies each state and sends a REPORT; reports are kept per
 * host and read by the reconciler through watch_verdict().
 *
 * Failure modes: an unknown host, or one registered at another site, is
 * refused (error answer, no subscription). A watcher that does not read
 * (more than WATCH_QUEUE_MAX bytes waiting in its socket) is disconnected
 * rather than buffered without bound; it resubscribes and resumes by
 * digest. A second subscription for the same host replaces the first.
 * Reports are kept after a disconnect: a host that went away still
 * counts as carrying what it last reported.
 *
 * Costs: a recomputation is one pass over the clusters (and their
 * attachments) for all subscribed hosts together, at most once per tick.
 */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"


/* A cluster and generation a host reported. */
struct wref {
    char cluster[VC_NAME_MAX + 1];
    uint64_t gen;
};

struct whost {
    char name[VC_NAME_MAX + 1];
    struct conn *conn; /* subscription, NULL if none */
    uint32_t seq;
    uint64_t resume_digest; /* from the subscribe, until the first send */
    bool have_sent;
    struct proto_watch_vlan *sent;
    uint32_t nsent;
    uint64_t sent_version, sent_digest;
    char sent_trunk[VC_IFNAME_MAX + 1];
    bool sent_complete;
    /* Next state, while computing. */
    struct proto_watch_vlan *next;
    uint32_t nnext, capnext;
    /* Reports. */
    bool reported;
    uint64_t rep_version;
    bool rep_ok;
    char rep_text[VC_MSG_MAX + 1];
    uint32_t rep_missing, rep_changes;
    struct wref *tried; /* entries of the last report, by name */
    uint32_t ntried;
    struct wref *carried; /* entries of the last successful report */
    uint32_t ncarried;
};

struct watch {
    struct agent *a;
    struct whost *hosts;
    uint32_t nhosts;
    bool dirty;
    bool reported;
};

int watch_init(struct watch **out, struct agent *a)
{
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return VC_ENOMEM;
    w->a = a;
    *out = w;
    return 0;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        struct whost *h = &w->hosts[i];
        proto_watch_vlans_free(h->sent, h->nsent);
        proto_watch_vlans_free(h->next, h->nnext);
        free(h->tried);
        free(h->carried);
    }
    free(w->hosts);
    free(w);
}

void watch_kick(struct watch *w)
{
    if (w)
        w->dirty = true;
}

static struct whost *find(struct watch *w, const char *name)
{
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (!strcmp(w->hosts[i].name, name))
            return &w->hosts[i];
    return NULL;
}

static struct whost *find_or_add(struct watch *w, const char *name)
{
    struct whost *h = find(w, name);
    if (h || w->nhosts >= WATCH_HOSTS_MAX)
        return h;
    h = realloc(w->hosts, (w->nhosts + 1) * sizeof *h);
    if (!h)
        return NULL;
    w->hosts = h;
    h = &w->hosts[w->nhosts++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    return h;
}

/* --- computing the states ------------------------------------------------- */

static struct proto_watch_vlan *next_entry(struct whost *h,
                                           const struct fsm_cluster *c,
                                           const struct fsm_slot *sl)
{
    if (h->nnext && !strcmp(h->next[h->nnext - 1].cluster, c->name))
        return &h->next[h->nnext - 1];
    if (h->nnext == h->capnext) {
        uint32_t cap = h->capnext ? 2 * h->capnext : 16;
        struct proto_watch_vlan *v = realloc(h->next, cap * sizeof *v);
        if (!v)
            return NULL;
        h->next = v;
        h->capnext = cap;
    }
    struct proto_watch_vlan *e = &h->next[h->nnext++];
    memset(e, 0, sizeof *e);
    e->vid = c->vlan;
    e->gen = sl->gen;
    snprintf(e->cluster, sizeof e->cluster, "%s", c->name);
    return e;
}

static int add_iface(struct proto_watch_vlan *e, const char *iface)
{
    char(*v)[VC_IFNAME_MAX + 1] =
        realloc(e->ifaces, (e->nifaces + 1) * sizeof *v);
    if (!v)
        return VC_ENOMEM;
    e->ifaces = v;
    snprintf(v[e->nifaces++], sizeof *v, "%s", iface);
    return 0;
}

/* Adds cluster c (slot sl at site s) to the next state of every
 * subscribed host that carries it. */
static int add_cluster(struct watch *w, const struct fsm_cluster *c,
                       const struct fsm_slot *sl)
{
    const struct fsm *f = &w->a->fsm;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        struct whost *h = &w->hosts[i];
        const struct fsm_host *fh;
        if (!h->conn || !(fh = fsm_host_find(f, h->name)) ||
            fh->site != sl->site)
            continue;
        if (fh->service && !next_entry(h, c, sl))
            return VC_ENOMEM;
        for (uint32_t k = 0; k < c->natt; k++) {
            struct proto_watch_vlan *e;
            if (strcmp(c->att[k].host, h->name))
                continue;
            if (!(e = next_entry(h, c, sl)) ||
                add_iface(e, c->att[k].iface) != 0)
                return VC_ENOMEM;
        }
    }
    return 0;
}

static int cmp_went(const void *x, const void *y)
{
    const struct proto_watch_vlan *a = x, *b = y;
    return (int)a->vid - (int)b->vid;
}

static int compute(struct watch *w, unsigned s)
{
    const struct fsm *f = &w->a->fsm;
    for (uint32_t i = 0; i < w->nhosts; i++) {
        proto_watch_vlans_free(w->hosts[i].next, w->hosts[i].nnext);
        w->hosts[i].next = NULL;
        w->hosts[i].nnext = w->hosts[i].capnext = 0;
    }
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        const struct fsm_slot *sl;
        if (!c->live || c->state == FSM_RELEASING ||
            !(sl = fsm_cluster_slot(c, s)) || sl->removing)
            continue;
        if (add_cluster(w, c, sl) != 0)
            return VC_ENOMEM;
    }
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (w->hosts[i].nnext > 1)
            qsort(w->hosts[i].next, w->hosts[i].nnext,
                  sizeof *w->hosts[i].next, cmp_went);
    return 0;
}

/* --- sending ------------------------------------------------------------- */

/* A proto_watch view of owned entries: the arrays live until free. */
struct wview {
    struct proto_watch msg;
    struct proto_watch_entry *e;
    struct mp_str *ifs;
    uint16_t *removed;
};

static int view_entries(struct wview *v,
                        const struct proto_watch_vlan *const *src, uint32_t n)
{
    int rv = proto_watch_vlans_view(src, n, PROTO_WATCH_IFACES_MAX, &v->e,
                                    &v->ifs);
    if (rv != 0)
        return rv;
    v->msg.entries = n ? v->e : NULL;
    v->msg.nentries = n;
    return 0;
}

static void view_free(struct wview *v)
{
    free(v->e);
    free(v->ifs);
    free(v->removed);
}

static bool went_same(const struct proto_watch_vlan *a,
                      const struct proto_watch_vlan *b)
{
    if (a->gen != b->gen || a->nifaces != b->nifaces ||
        strcmp(a->cluster, b->cluster))
        return false;
    for (uint32_t i = 0; i < a->nifaces; i++)
        if (strcmp(a->ifaces[i], b->ifaces[i]))
            return false;
    return true;
}

static uint64_t digest_of(const struct whost *h, const char *trunk,
                          bool complete)
{
    struct wview v;
    const struct proto_watch_vlan **src =
        calloc(h->nnext ? h->nnext : 1, sizeof *src);
    uint64_t d = 0;
    memset(&v, 0, sizeof v);
    if (!src)
        return 0;
    for (uint32_t i = 0; i < h->nnext; i++)
        src[i] = &h->next[i];
    if (view_entries(&v, src, h->nnext) == 0)
        d = proto_watch_digest(mp_cstr(trunk), complete, v.msg.entries,
                               v.msg.nentries);
    view_free(&v);
    free(src);
    return d;
}

/* Fills v with what h must be sent (kind 0 if nothing). */
static int build_msg(struct whost *h, struct wview *v, const char *trunk,
                     bool complete, uint64_t version, uint64_t digest)
{
    const struct proto_watch_vlan **src =
        calloc(h->nnext ? h->nnext : 1, sizeof *src);
    uint32_t n = 0, i = 0, k = 0, nrem = 0;
    int rv;
    if (!src)
        return VC_ENOMEM;
    proto_watch_init(&v->msg, 0);
    v->removed = calloc(h->nsent ? h->nsent : 1, sizeof *v->removed);
    if (!v->removed) {
        free(src);
        return VC_ENOMEM;
    }
    if (!h->have_sent) {
        for (i = 0; i < h->nnext; i++)
            src[n++] = &h->next[i];
    } else {
        /* Merge by VID: both lists are sorted. */
        while (i < h->nnext || k < h->nsent) {
            if (k == h->nsent ||
                (i < h->nnext && h->next[i].vid < h->sent[k].vid)) {
                src[n++] = &h->next[i++];
            } else if (i == h->nnext || h->sent[k].vid < h->next[i].vid) {
                v->removed[nrem++] = h->sent[k++].vid;
            } else {
                if (!went_same(&h->next[i], &h->sent[k]))
                    src[n++] = &h->next[i];
                i++, k++;
            }
        }
    }
    rv = view_entries(v, src, n);
    free(src);
    if (rv != 0)
        return rv;
    v->msg.version = version;
    v->msg.digest = digest;
    v->msg.trunk = mp_cstr(trunk);
    v->msg.complete = complete;
    if (!h->have_sent) {
        v->msg.kind = h->resume_digest == digest ? PROTO_WATCH_INSYNC
                                                 : PROTO_WATCH_SNAPSHOT;
    } else if (n || nrem || complete != h->sent_complete ||
               strcmp(trunk, h->sent_trunk)) {
        v->msg.kind = PROTO_WATCH_UPDATE;
        v->msg.base = h->sent_version;
        v->msg.removed = nrem ? v->removed : NULL;
        v->msg.nremoved = nrem;
    }
    return 0;
}

static void pack_msg(msgpack_packer *pk, void *ctx)
{
    proto_watch_pack(pk, ctx);
}

/* Ends h's subscription and closes its connection: it cannot keep up or
 * its state cannot be sent. */
static void drop(struct watch *w, struct whost *h, const char *why)
{
    struct conn *c = h->conn;
    log_warn("watch: host %s: %s; disconnecting it", h->name, why);
    h->conn = NULL;
    api_drop(c);
    (void)w;
}

static void commit_sent(struct whost *h, const char *trunk, bool complete,
                        uint64_t version, uint64_t digest)
{
    proto_watch_vlans_free(h->sent, h->nsent);
    h->sent = h->next;
    h->nsent = h->nnext;
    h->next = NULL;
    h->nnext = h->capnext = 0;
    h->have_sent = true;
    h->sent_version = version;
    h->sent_digest = digest;
    h->sent_complete = complete;
    snprintf(h->sent_trunk, sizeof h->sent_trunk, "%s", trunk);
}

static void send_host(struct watch *w, struct whost *h, uint64_t version,
                      bool complete)
{
    const struct fsm_host *fh = fsm_host_find(&w->a->fsm, h->name);
    const char *trunk = fh ? fh->trunk : "";
    struct wview v;
    memset(&v, 0, sizeof v);
    if (api_conn_queued(h->conn) > WATCH_QUEUE_MAX) {
        drop(w, h, "it does not read its watch stream");
        return;
    }
    uint64_t digest = digest_of(h, trunk, complete);
    int rv = build_msg(h, &v, trunk, complete, version, digest);
    if (rv != 0 || !digest) {
        drop(w, h, rv == VC_ELIMIT ? "state has too many VM interfaces"
                                   : "out of memory");
        view_free(&v);
        return;
    }
    if (v.msg.kind) {
        api_reply(h->conn, h->seq, 0, "", pack_msg, &v.msg);
        log_debug("watch: host %s: %s version %llu (%u entries, %u removed)",
                  h->name, proto_watch_kind_name(v.msg.kind),
                  (unsigned long long)version, v.msg.nentries,
                  v.msg.nremoved);
        commit_sent(h, trunk, complete, version, digest);
    }
    view_free(&v);
}

bool watch_tick(struct watch *w)
{
    struct agent *a;
    const struct fsm_site *site;
    bool any = false, reported;
    if (!w)
        return false;
    a = w->a;
    reported = w->reported;
    w->reported = false;
    for (uint32_t i = 0; i < w->nhosts; i++)
        any |= w->hosts[i].conn != NULL;
    /* A view that has not caught up (restart) is not streamed: a host
     * resuming by digest would be sent an old state, then the news. */
    if (!w->dirty || !any || !agent_caught_up(a) ||
        !(site = fsm_site_find(&a->fsm, a->cfg.site)))
        return reported;
    w->dirty = false;
    struct consensus_status st;
    consensus_status(&a->cons, &st);
    if (compute(w, (unsigned)(site - a->fsm.sites)) != 0) {
        log_error("watch: out of memory computing host states");
        w->dirty = true;
        return reported;
    }
    bool complete = agent_caught_up(a);
    for (uint32_t i = 0; i < w->nhosts; i++)
        if (w->hosts[i].conn)
            send_host(w, &w->hosts[i], st.applied, complete);
    return reported;
}

/* --- requests ------------------------------------------------------------ */

static int cmp_wref(const void *x, const void *y)
{
    return strcmp(((const struct wref *)x)->cluster,
                  ((const struct wref *)y)->cluster);
}

static const struct wref *lookup(const struct wref *v, uint32_t n,
                                 const char *cluster)
{
    struct wref key;
    if (!n)
        return NULL;
    snprintf(key.cluster, sizeof key.cluster, "%s", cluster);
    return bsearch(&key, v, n, sizeof *v, cmp_wref);
}

static int subscribe(struct watch *w, struct conn *c,
                     const struct proto_request *req, char *msg, size_t len)
{
    char name[VC_NAME_MAX + 1];
    const struct fsm_host *fh;
    mp_str_copy(req->watch.host, name, sizeof name);
    if (!(fh = fsm_host_find(&w->a->fsm, name))) {
        snprintf(msg, len, "no host named %s", name);
        return VC_ENOTFOUND;
    }
    if (strcmp(w->a->fsm.sites[fh->site].name, w->a->cfg.site)) {
        snprintf(msg, len, "host %s is at site %s, not %s: subscribe to "
                 "that site's agent", name, w->a->fsm.sites[fh->site].name,
                 w->a->cfg.site);
        return VC_EINVAL;
    }
    struct whost *h = find_or_add(w, name);
    if (!h) {
        snprintf(msg, len, "too many hosts watching");
        return VC_ELIMIT;
    }
    if (h->conn && h->conn != c)
        log_info("watch: host %s subscribed again from %s; the previous "
                 "subscription ends", name, c->peer);
    h->conn = c;
    h->seq = req->seq;
    h->resume_digest = req->watch.digest;
    h->have_sent = false;
    w->dirty = true;
    log_info("watch: host %s subscribed from %s (holds version %llu)", name,
             c->peer, (unsigned long long)req->watch.version);
    return 0;
}

static int set_refs(struct wref **out, uint32_t *nout,
                    const struct proto_watch *m)
{
    struct wref *v = calloc(m->nentries ? m->nentries : 1, sizeof *v);
    if (!v)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < m->nentries; i++) {
        mp_str_copy(m->entries[i].cluster, v[i].cluster, sizeof v[i].cluster);
        v[i].gen = m->entries[i].gen;
    }
    qsort(v, m->nentries, sizeof *v, cmp_wref);
    free(*out);
    *out = v;
    *nout = m->nentries;
    return 0;
}

static int report(struct watch *w, struct conn *c,
                  const struct proto_request *req, char *msg, size_t len)
{
    char name[VC_NAME_MAX + 1];
    const struct proto_watch *m = &req->watch;
    mp_str_copy(m->host, name, sizeof name);
    struct whost *h = find(w, name);
    if (!h || h->conn != c) {
        snprintf(msg, len, "host %s has no subscription on this connection",
                 name);
        return VC_ESTATE;
    }
    if (set_refs(&h->tried, &h->ntried, m) != 0 ||
        (m->ok && set_refs(&h->carried, &h->ncarried, m) != 0)) {
        snprintf(msg, len, "out of memory");
        return VC_ENOMEM;
    }
    char text[VC_MSG_MAX + 1];
    mp_str_copy(m->text, text, sizeof text);
    if (m->ok != h->rep_ok || strcmp(text, h->rep_text) || !h->reported) {
        if (m->ok)
            log_info("watch: host %s applied version %llu%s%s", name,
                     (unsigned long long)m->version, text[0] ? ": " : "",
                     text);
        else
            log_warn("watch: host %s failed to apply version %llu: %s", name,
                     (unsigned long long)m->version, text);
    }
    h->reported = true;
    h->rep_version = m->version;
    h->rep_ok = m->ok;
    h->rep_missing = m->missing;
    h->rep_changes = m->changes;
    snprintf(h->rep_text, sizeof h->rep_text, "%s", text);
    w->reported = true;
    return 0;
}

void watch_on_request(struct watch *w, struct conn *c,
                      const struct proto_request *req)
{
    char msg[256] = "";
    int rv;
    if (req->watch.kind == PROTO_WATCH_SUBSCRIBE) {
        /* Answers come with the state; only a refusal is answered now. */
        if ((rv = subscribe(w, c, req, msg, sizeof msg)) != 0)
            api_reply(c, req->seq, rv, msg, NULL, NULL);
        return;
    }
    rv = report(w, c, req, msg, sizeof msg);
    api_reply(c, req->seq, rv, msg, NULL, NULL);
}

void watch_conn_closed(struct watch *w, struct conn *c)
{
    for (uint32_t i = 0; w && i < w->nhosts; i++)
        if (w->hosts[i].conn == c) {
            log_info("watch: host %s disconnected", w->hosts[i].name);
            w->hosts[i].conn = NULL;
        }
}

/* --- aggregation --------------------------------------------------------- */

static bool attached(const struct fsm_cluster *c, const char *host)
{
    for (uint32_t i = 0; i < c->natt; i++)
        if (!strcmp(c->att[i].host, host))
            return true;
    return false;
}

static int fail_text(const struct whost *h, char *text, size_t len)
{
    snprintf(text, len, "host %s: %.200s", h->name, h->rep_text);
    return WATCH_FAIL;
}

/* One host's verdict on c at generation gen (removing: gone). */
static int host_verdict(const struct whost *h, const struct fsm_cluster *c,
                        uint64_t gen, bool wanted, char *text, size_t len)
{
    const struct wref *t, *k;
    if (!h || !h->reported)
        return WATCH_WAIT;
    k = lookup(h->carried, h->ncarried, c->name);
    if (!wanted) /* it must not carry c any more */
        return !k ? WATCH_DONE : h->rep_ok ? WATCH_WAIT
                                           : fail_text(h, text, len);
    if (k && k->gen >= gen)
        return WATCH_DONE;
    t = lookup(h->tried, h->ntried, c->name);
    if (t && t->gen >= gen && !h->rep_ok)
        return fail_text(h, text, len);
    return WATCH_WAIT;
}

int watch_verdict(struct watch *w, const struct fsm_cluster *c,
                  const struct fsm_slot *sl, unsigned s, char *text,
                  size_t len)
{
    const struct fsm *f;
    int verdict = WATCH_DONE;
    if (!w || !w->a->cfg.host_agents)
        return WATCH_DONE;
    f = &w->a->fsm;
    bool removing = sl->removing || c->state == FSM_RELEASING;
    for (uint32_t i = 0; i < f->nhosts && verdict != WATCH_FAIL; i++) {
        const struct fsm_host *fh = &f->hosts[i];
        if (!fh->live || fh->site != s)
            continue;
        bool wanted = !removing && (fh->service || attached(c, fh->name));
        struct whost *h = find(w, fh->name);
        int v = host_verdict(h, c, sl->gen, wanted, text, len);
        /* A host that never reported and never carried the cluster only
         * holds up what it should carry, and removals. */
        if (v == WATCH_WAIT && !wanted && !removing &&
            !(h && h->reported))
            v = WATCH_DONE;
        if (v > verdict)
            verdict = v;
    }
    return verdict;
}

/* --- status -------------------------------------------------------------- */

void watch_pack_status(struct watch *w, msgpack_packer *pk)
{
    msgpack_pack_array(pk, w ? w->nhosts : 0);
    for (uint32_t i = 0; w && i < w->nhosts; i++) {
        const struct whost *h = &w->hosts[i];
        msgpack_pack_map(pk, 7);
        mp_pack_cstr(pk, "host");
        mp_pack_cstr(pk, h->name);
        mp_pack_cstr(pk, "connected");
        h->conn ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        mp_pack_cstr(pk, "version");
        msgpack_pack_uint64(pk, h->rep_version);
        mp_pack_cstr(pk, "ok");
        h->reported && h->rep_ok ? msgpack_pack_true(pk)
                                 : msgpack_pack_false(pk);
        mp_pack_cstr(pk, "error");
        mp_pack_cstr(pk, h->reported && !h->rep_ok ? h->rep_text : "");
        mp_pack_cstr(pk, "missing");
        msgpack_pack_uint32(pk, h->rep_missing);
        mp_pack_cstr(pk, "vlans");
        msgpack_pack_uint32(pk, h->ncarried);
    }
}
