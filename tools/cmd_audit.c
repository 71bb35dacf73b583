/* virtcloud audit [--cluster NAME] [--since T] [--limit N]: the replicated
 * history of committed changes (agent/fsm_audit.h), oldest first.
 *
 * Asks the agent for pages of PROTO_AUDIT_PAGE entries (PROTO_OP_AUDIT,
 * after_seq = the last seq seen) until it says there are no more, keeping
 * the last --limit N. Every agent answers from its own replica, which
 * holds the same history up to its applied index: any site can be asked,
 * also without quorum. One table, or one JSON array with --json.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

#define AUDIT_PAGE 1000

static const struct render_field entry_fields[] = {
    {"seq", "seq", RENDER_ANY, RENDER_COLUMN, NULL},
    {"time_ms", "time", RENDER_TIME, RENDER_COLUMN, NULL},
    {"origin", "who", RENDER_ANY, RENDER_COLUMN, NULL},
    {"type", "command", RENDER_ANY, RENDER_COLUMN, NULL},
    {"name", "name", RENDER_ANY, RENDER_COLUMN, NULL},
    {"sites", "sites", RENDER_ANY, RENDER_COLUMN, NULL},
    {"request_id", "request id", RENDER_ANY, RENDER_COLUMN, NULL},
    {"result", "result", RENDER_ANY, RENDER_COLUMN | RENDER_ALIAS, NULL},
    {"code", "code", RENDER_ANY, 0, NULL},
    {"error", "error", RENDER_ANY, 0, NULL},
    {"message", "message", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view entry_view = RENDER_VIEW(entry_fields);

/* --since: a duration back from now ("2h"), milliseconds since the epoch,
 * or a UTC date "YYYY-MM-DD" / "YYYY-MM-DDTHH:MM[:SS]". */
static int parse_since(const char *s, uint64_t *ms)
{
    uint64_t d;
    struct tm tm;
    char *end;
    if (cli_parse_duration(s, &d) == 0) {
        uint64_t now = (uint64_t)time(NULL) * 1000u;
        *ms = d < now ? now - d : 0;
        return 0;
    }
    unsigned long long n = strtoull(s, &end, 10);
    if (*s >= '0' && *s <= '9' && !*end && n >= 1000000000000ull) {
        *ms = n;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (rest && *rest == 'T')
        rest = strptime(rest + 1, "%H:%M", &tm);
    if (rest && *rest == ':')
        rest = strptime(rest + 1, "%S", &tm);
    if (!rest || *rest)
        return VC_EINVAL;
    time_t t = timegm(&tm);
    if (t < 0)
        return VC_EINVAL;
    *ms = (uint64_t)t * 1000u;
    return 0;
}

/* The entries kept: a ring of the last cap (0: all) msgpack objects, each
 * a map borrowed from a page held in pages. */
struct kept {
    struct client_response **pages; /* each malloc'd: entries point in */
    size_t npages, cap_pages;
    const msgpack_object **v;
    size_t n, cap, limit;
};

static int keep(struct kept *k, const msgpack_object *e)
{
    if (k->limit && k->n == k->limit) { /* drop the oldest */
        memmove(k->v, k->v + 1, (k->n - 1) * sizeof *k->v);
        k->n--;
    }
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        const msgpack_object **v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return VC_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n++] = e;
    return 0;
}

static struct client_response *new_page(struct kept *k)
{
    if (k->npages == k->cap_pages) {
        size_t cap = k->cap_pages ? k->cap_pages * 2 : 8;
        struct client_response **p = realloc(k->pages, cap * sizeof *p);
        if (!p)
            return NULL;
        k->pages = p;
        k->cap_pages = cap;
    }
    struct client_response *r = malloc(sizeof *r);
    if (r) {
        client_response_init(r);
        k->pages[k->npages++] = r;
    }
    return r;
}

static void kept_close(struct kept *k)
{
    for (size_t i = 0; i < k->npages; i++) {
        client_response_close(k->pages[i]);
        free(k->pages[i]);
    }
    free(k->pages);
    free(k->v);
}

static uint64_t num(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

/* Reads every page matching q into k. Returns the exit status. */
static int fetch(struct cli *c, struct proto_audit_query *q, struct kept *k)
{
    for (;;) {
        struct proto_request req = {.op = PROTO_OP_AUDIT, .audit = *q};
        struct client_response *r = new_page(k);
        if (!r)
            return cli_fail(c, VC_ENOMEM, false, "out of memory");
        int status = cli_read_req(c, &req, r);
        const msgpack_object *p = &r->resp.payload;
        const msgpack_object *es = render_get(p, "entries");
        if (status == 0 && (!es || es->type != MSGPACK_OBJECT_ARRAY))
            status = cli_fail(c, VC_EMALFORMED, false, "the agent's answer "
                              "holds no audit entries (an older agent?)");
        if (status != 0)
            return status;
        for (uint32_t i = 0; i < es->via.array.size; i++)
            if (keep(k, &es->via.array.ptr[i]) != 0)
                return cli_fail(c, VC_ENOMEM, false, "out of memory");
        const msgpack_object *more = render_get(p, "more");
        uint64_t next = num(render_get(p, "next"));
        if (!more || more->type != MSGPACK_OBJECT_BOOLEAN ||
            !more->via.boolean || next <= q->after_seq)
            return 0;
        q->after_seq = next;
    }
}

/* Prints the kept entries, each with "result" ("ok" or the error name)
 * added for the table. */
static int print(struct cli *c, const struct kept *k)
{
    msgpack_object *rows = malloc((k->n + 1) * sizeof *rows);
    msgpack_object_kv *kv = NULL;
    size_t total = 0;
    for (size_t i = 0; i < k->n; i++)
        total += k->v[i]->type == MSGPACK_OBJECT_MAP
                     ? k->v[i]->via.map.size + 1 : 1;
    kv = malloc((total + 1) * sizeof *kv);
    if (!rows || !kv) {
        free(rows);
        free(kv);
        return VC_ENOMEM;
    }
    msgpack_object_kv *p = kv;
    for (size_t i = 0; i < k->n; i++) {
        const msgpack_object *e = k->v[i];
        uint32_t m = e->type == MSGPACK_OBJECT_MAP ? e->via.map.size : 0;
        const msgpack_object *err = render_get(e, "error");
        struct mp_str s = {"", 0};
        if (err)
            mp_get_str(err, 64, &s);
        memcpy(p, e->via.map.ptr, m * sizeof *p);
        p[m] = render_kv("result", s.n ? *err : render_str("ok"));
        rows[i] = render_map(p, m + 1);
        p += m + 1;
    }
    msgpack_object doc = render_array(rows, (uint32_t)k->n);
    int rv = render_list(stdout, c->json, &doc, &entry_view);
    free(rows);
    free(kv);
    return rv;
}

int cmd_audit(struct cli *c, int argc, char **argv)
{
    const char *cluster = NULL, *since = NULL, *limit = NULL;
    const struct cli_opt opts[] = {{"cluster", &cluster, NULL},
                                   {"since", &since, NULL},
                                   {"limit", &limit, NULL},
                                   {NULL, NULL, NULL}};
    struct proto_audit_query q = {.limit = AUDIT_PAGE};
    struct kept k;
    int status;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    memset(&k, 0, sizeof k);
    if (cluster && !proto_name_ok(mp_cstr(cluster)))
        return cli_usage(c, "--cluster \"%s\": not a valid name", cluster);
    if (since && parse_since(since, &q.since_ms) != 0)
        return cli_usage(c, "--since \"%s\": expected a duration back from "
                         "now (2h), a UTC date (2026-11-26 or "
                         "2026-11-26T08:30) or ms since the epoch", since);
    if (limit) {
        char *end;
        unsigned long long n = strtoull(limit, &end, 10);
        if (*end || n < 1 || n > 10000000)
            return cli_usage(c, "--limit \"%s\": expected 1-10000000", limit);
        k.limit = (size_t)n;
    }
    q.name = mp_cstr(cluster ? cluster : "");
    status = fetch(c, &q, &k);
    if (status == 0 && print(c, &k) != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    kept_close(&k);
    return status;
}
