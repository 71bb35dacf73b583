/* virtcloud cluster wait: until a cluster is applied everywhere (state
 * ready) or at one site.
 *
 * Polls the cluster list (PROTO_OP_CLUSTERS) with a growing interval
 * (100 ms doubling to 1 s) until the goal is met or --timeout, which here
 * bounds the whole wait, runs out. Agents that cannot answer for a while
 * (election, restart) are polled again: only the deadline ends the wait,
 * or the cluster being gone (released, rolled back), which no wait cures.
 * On a terminal the pending sites and their last errors are shown as
 * progress; --json prints one document at the end.
 *
 * Used by the scheduler hooks (tools/hooks/): a node's prolog waits for
 * its own site (--host NODE finds it), libvirt's for a bridge's VLAN.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_render.h"
#include "progress.h"
#include "proto/err.h"

#define ERRLEN 512

struct wait {
    const char *name;  /* the cluster, or NULL: found by vlan + site */
    uint64_t vlan;     /* --vlan, 0 when by name */
    const char *site;  /* NULL: every site (ready) */
    const char *host;  /* --host: site = the host's site */
    char site_buf[VC_NAME_MAX + 1];
    char found[VC_NAME_MAX + 1]; /* the cluster's name once seen */
    uint64_t found_vlan;
    char pending[ERRLEN]; /* what is not applied yet, for messages */
    int code;             /* last read failure, 0 */
};

/* A read that reports nothing (the wait decides what to say), through
 * cli_read_req() so that it is signed like every request of the CLI.
 * Returns 0 or the failure's code with its message in errmsg. */
static int quiet_read(struct cli *c, uint8_t op, const char *name,
                      uint32_t budget_ms, struct client_response *r,
                      char *errmsg)
{
    struct proto_request req = {.op = op};
    uint32_t saved = c->timeout_ms;
    bool was_quiet = c->quiet;
    req.name = mp_cstr(name ? name : "");
    c->timeout_ms = budget_ms;
    c->quiet = true;
    c->last_code = 0;
    int status = cli_read_req(c, &req, r);
    c->timeout_ms = saved;
    c->quiet = was_quiet;
    if (status == 0)
        return 0;
    snprintf(errmsg, ERRLEN, "%.500s", c->last_error);
    return c->last_code ? c->last_code : VC_EUNAVAILABLE;
}

static bool str_is(const msgpack_object *o, const char *s)
{
    struct mp_str v;
    return o && mp_get_str(o, 4096, &v) == 0 && mp_str_eq(v, s);
}

static uint64_t uint_of(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void copy_str(const msgpack_object *o, char *buf, size_t len)
{
    struct mp_str v = {"", 0};
    if (o)
        mp_get_str(o, 4096, &v);
    mp_str_copy(v, buf, len);
}

/* Finds the site of w->host in the site list. Returns 0, VC_ENOTFOUND
 * (no such host: final) or a read failure (retry). */
static int resolve_host(struct cli *c, struct wait *w, uint32_t budget,
                        char *errmsg)
{
    struct client_response r;
    int rv = quiet_read(c, PROTO_OP_SITES, "", budget, &r, errmsg);
    const msgpack_object *l = &r.resp.payload;
    for (uint32_t i = 0; rv == 0 && l->type == MSGPACK_OBJECT_ARRAY &&
                         i < l->via.array.size && !w->site;
         i++) {
        const msgpack_object *h = render_get(&l->via.array.ptr[i], "hosts");
        for (uint32_t j = 0; h && h->type == MSGPACK_OBJECT_ARRAY &&
                             j < h->via.array.size;
             j++)
            if (str_is(render_get(&h->via.array.ptr[j], "name"), w->host)) {
                copy_str(render_get(&l->via.array.ptr[i], "name"), w->site_buf,
                         sizeof w->site_buf);
                w->site = w->site_buf;
                break;
            }
    }
    if (rv == 0 && !w->site) {
        snprintf(errmsg, ERRLEN, "no host \"%s\" in any site (virtcloud "
                 "host list)", w->host);
        rv = VC_ENOTFOUND;
    }
    client_response_close(&r);
    return rv;
}

/* Whether cluster o spans site. */
static const msgpack_object *site_status(const msgpack_object *o,
                                         const char *site)
{
    const msgpack_object *st = render_get(o, "status");
    for (uint32_t i = 0; st && st->type == MSGPACK_OBJECT_ARRAY &&
                         i < st->via.array.size; i++)
        if (str_is(render_get(&st->via.array.ptr[i], "site"), site))
            return &st->via.array.ptr[i];
    return NULL;
}

/* The cluster of the answer l that the wait is about, or NULL. */
static const msgpack_object *pick(const struct wait *w,
                                  const msgpack_object *l)
{
    for (uint32_t i = 0; l->type == MSGPACK_OBJECT_ARRAY &&
                         i < l->via.array.size; i++) {
        const msgpack_object *o = &l->via.array.ptr[i];
        if (w->name ? str_is(render_get(o, "name"), w->name)
                    : uint_of(render_get(o, "vlan")) == w->vlan &&
                          site_status(o, w->site) &&
                          !str_is(render_get(o, "state"), "releasing"))
            return o;
    }
    return NULL;
}

/* Writes the sites of o not applied yet, with their last error, into
 * w->pending. Returns whether the goal is met. */
static bool judge(struct wait *w, const msgpack_object *o)
{
    const msgpack_object *st = render_get(o, "status");
    size_t len = 0;
    w->pending[0] = '\0';
    for (uint32_t i = 0; st && st->type == MSGPACK_OBJECT_ARRAY &&
                         i < st->via.array.size && len < sizeof w->pending;
         i++) {
        const msgpack_object *s = &st->via.array.ptr[i];
        char site[VC_NAME_MAX + 1], state[16], err[160];
        copy_str(render_get(s, "site"), site, sizeof site);
        copy_str(render_get(s, "state"), state, sizeof state);
        copy_str(render_get(s, "error"), err, sizeof err);
        if (!strcmp(state, "applied") || (w->site && strcmp(site, w->site)))
            continue;
        len += (size_t)snprintf(w->pending + len, sizeof w->pending - len,
                                "%s%s %s%s%s", len ? "; " : "", site, state,
                                *err ? ": " : "", err);
    }
    if (w->site)
        return str_is(render_get(site_status(o, w->site), "state"),
                      "applied");
    return str_is(render_get(o, "state"), "ready");
}

/* One poll. Returns 1 (goal met), 0 (not yet, or a failure worth a
 * retry: w->code says which) or a final failure code with errmsg. */
static int poll_once(struct cli *c, struct wait *w, uint32_t budget,
                     char *errmsg)
{
    struct client_response r;
    int rv = 0;
    if (w->host && !w->site)
        rv = resolve_host(c, w, budget, errmsg);
    if (rv == 0)
        rv = quiet_read(c, PROTO_OP_CLUSTERS, w->name, budget, &r, errmsg);
    else
        client_response_init(&r);
    const msgpack_object *o = rv == 0 ? pick(w, &r.resp.payload) : NULL;
    if (rv == 0 && !o && c->stale) {
        /* A local replica may not have applied a create committed a
         * moment ago (hooks run right after it): before calling the
         * cluster missing, ask the leader. If it cannot answer, the
         * error below makes this poll a retry. */
        client_response_close(&r);
        c->stale = false;
        rv = quiet_read(c, PROTO_OP_CLUSTERS, w->name, budget, &r, errmsg);
        c->stale = true;
        o = rv == 0 ? pick(w, &r.resp.payload) : NULL;
    }
    if (rv == 0 && !o) {
        rv = VC_ENOTFOUND;
        if (w->name)
            snprintf(errmsg, ERRLEN, "no cluster %s", w->name);
        else
            snprintf(errmsg, ERRLEN, "no cluster on VLAN %llu at site %s",
                     (unsigned long long)w->vlan, w->site);
    }
    if (rv == VC_ENOTFOUND && w->found[0])
        snprintf(errmsg, ERRLEN, "cluster %s is gone (released or rolled "
                 "back)", w->found);
    if (o && w->site && !site_status(o, w->site)) {
        snprintf(errmsg, ERRLEN, "cluster %s does not span site %s",
                 w->name, w->site);
        rv = VC_EINVAL;
    }
    if (o && rv == 0) {
        copy_str(render_get(o, "name"), w->found, sizeof w->found);
        w->found_vlan = uint_of(render_get(o, "vlan"));
        rv = judge(w, o) ? 1 : 0;
    }
    client_response_close(&r);
    w->code = rv < 0 ? rv : 0;
    if (rv == VC_ENOTFOUND || rv == VC_EINVAL || rv == VC_EVERSION)
        return rv;
    return rv < 0 ? 0 : rv;
}

static int print_done(struct cli *c, const struct wait *w, uint64_t ms)
{
    static const struct render_field f[] = {
        {"ok", "ok", RENDER_BOOL, 0, NULL},
        {"name", "cluster", RENDER_ANY, RENDER_LINE, NULL},
        {"vlan", "vlan", RENDER_ANY, RENDER_LINE, NULL},
        {"site", "applied at", RENDER_ANY, RENDER_LINE, NULL},
        {"waited_ms", "waited ms", RENDER_ANY, RENDER_LINE, NULL},
    };
    static const struct render_view v = RENDER_VIEW(f);
    msgpack_object_kv kv[] = {
        render_kv("ok", render_bool(true)),
        render_kv("name", render_str(w->found)),
        render_kv("vlan", render_uint(w->found_vlan)),
        render_kv("site", render_str(w->site ? w->site : "every site")),
        render_kv("waited_ms", render_uint(ms)),
    };
    msgpack_object doc = render_map(kv, sizeof kv / sizeof kv[0]);
    if (render_object(stdout, c->json, &doc, &v) != 0)
        return cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    return CLI_EXIT_OK;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void show(struct progress *p, const struct wait *w, const char *err)
{
    const char *what = w->found[0] ? w->found : w->name ? w->name : "cluster";
    if (w->code)
        progress_update(p, "waiting for %s: %s", what, err);
    else
        progress_update(p, "waiting for %s: %s", what,
                        *w->pending ? w->pending : "pending");
}

/* The wait loop. Returns the exit status after printing the outcome. */
static int wait_loop(struct cli *c, struct wait *w)
{
    char errmsg[ERRLEN] = "";
    struct progress p;
    uint64_t start = client_now_ms(), deadline = start + c->timeout_ms;
    uint64_t delay = 100;
    progress_init(&p, c->json);
    for (;;) {
        uint64_t now = client_now_ms();
        uint64_t left = deadline > now ? deadline - now : 0;
        /* Short reads: one slow answer must not eat the whole wait. */
        uint32_t budget = left < 200 ? 200 : left > 2000 ? 2000 : (uint32_t)left;
        int rv = poll_once(c, w, budget, errmsg);
        if (rv != 0) {
            progress_done(&p);
            return rv == 1 ? print_done(c, w, client_now_ms() - start)
                           : cli_fail(c, rv, false, "%s", errmsg);
        }
        show(&p, w, errmsg);
        now = client_now_ms();
        if (now >= deadline) {
            progress_done(&p);
            if (w->code && !w->found[0])
                return cli_fail(c, VC_ETIMEOUT, false, "gave up after %s "
                                "(--timeout); last: %s", c->timeout_arg ?
                                c->timeout_arg : "10s", errmsg);
            return cli_fail(c, VC_ETIMEOUT, false, "not applied after %s "
                            "(--timeout): %s", c->timeout_arg ?
                            c->timeout_arg : "10s",
                            *w->pending ? w->pending : "pending");
        }
        sleep_ms(delay < deadline - now ? delay : deadline - now);
        delay = delay * 2 < 1000 ? delay * 2 : 1000;
    }
}

/* cluster wait NAME [--site S | --host H]
 * cluster wait --vlan V (--site S | --host H) */
int cmd_cluster_wait(struct cli *c, int argc, char **argv)
{
    const char *pos[1] = {NULL}, *site = NULL, *host = NULL, *vlan = NULL;
    const struct cli_opt opts[] = {{"site", &site, NULL},
                                   {"host", &host, NULL},
                                   {"vlan", &vlan, NULL},
                                   {NULL, NULL, NULL}};
    struct wait w;
    int status;
    if (!cli_parse(c, argc, argv, opts, pos, 0, 1, &status))
        return status;
    memset(&w, 0, sizeof w);
    w.name = pos[0];
    w.site = site;
    w.host = host;
    if (site && host)
        return cli_usage(c, "give --site or --host, not both");
    if (!!pos[0] == !!vlan)
        return cli_usage(c, "give a cluster NAME or --vlan V");
    if (vlan) {
        char *end;
        w.vlan = strtoull(vlan, &end, 10);
        if (*end || w.vlan < 1 || w.vlan > 4094)
            return cli_usage(c, "--vlan \"%s\": expected 1-4094", vlan);
        if (!site && !host)
            return cli_usage(c, "--vlan needs --site or --host (a VLAN "
                                "names a cluster only at one site)");
    }
    if (pos[0] && !proto_name_ok(mp_cstr(pos[0])))
        return cli_usage(c, "\"%s\" is not a valid cluster name", pos[0]);
    if (pos[0])
        cli_what(c, "cluster wait %s", pos[0]);
    c->req_id = NULL; /* create --wait: the id was the create's */
    return wait_loop(c, &w);
}
