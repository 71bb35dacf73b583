/* cluster show: the hosts that carry the cluster, with their host agents'
 * status as each site agent last heard it.
 *
 * Host reports live in the site agents (agent/watch.c), not in the
 * replicated state, so after reading the cluster and the site list the
 * CLI asks the client API of each site the cluster spans for its STATUS
 * (a local answer, 1.5 s budget per site) and takes the rows of the hosts
 * that carry the cluster there: service hosts and hosts with an
 * attachment. A site that does not answer gives rows saying so; the rest
 * of the cluster view is printed either way.
 */
#include "cluster_hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_render.h"
#include "proto/err.h"

#define SITE_BUDGET_MS 1500
#define ROWS_MAX 1024
#define KV_MAX 32

struct row {
    char site[VC_NAME_MAX + 1];
    char host[VC_NAME_MAX + 1];
    bool connected, ok;
    uint64_t version;
    char error[160];
};

struct rows {
    struct row v[ROWS_MAX];
    uint32_t n;
};

static bool str_is(const msgpack_object *o, const char *s)
{
    struct mp_str v;
    return o && mp_get_str(o, 4096, &v) == 0 && mp_str_eq(v, s);
}

static void copy_str(const msgpack_object *o, char *buf, size_t len)
{
    struct mp_str v = {"", 0};
    if (o)
        mp_get_str(o, 4096, &v);
    if (mp_str_copy(v, buf, len) != 0)
        snprintf(buf, len, "%.*s", (int)(len - 1), v.p);
}

static const msgpack_object *array(const msgpack_object *o, uint32_t *n)
{
    *n = o && o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0;
    return *n ? o->via.array.ptr : NULL;
}

/* Whether host carries the cluster at its site: a service host, or one
 * with an attachment. */
static bool carries(const msgpack_object *cluster, const msgpack_object *h)
{
    uint32_t n;
    const msgpack_object *att = array(render_get(cluster, "attachments"), &n);
    const msgpack_object *svc = render_get(h, "service");
    if (svc && svc->type == MSGPACK_OBJECT_BOOLEAN && svc->via.boolean)
        return true;
    char name[VC_NAME_MAX + 1];
    copy_str(render_get(h, "name"), name, sizeof name);
    for (uint32_t i = 0; i < n; i++)
        if (str_is(render_get(&att[i], "host"), name))
            return true;
    return false;
}

/* The entry of host in a site agent's STATUS "hosts", or NULL. */
static const msgpack_object *agent_row(const msgpack_object *status,
                                       const char *host)
{
    uint32_t n;
    const msgpack_object *v = array(render_get(status, "hosts"), &n);
    for (uint32_t i = 0; i < n; i++)
        if (str_is(render_get(&v[i], "host"), host))
            return &v[i];
    return NULL;
}

static void fill(struct row *r, const msgpack_object *st, const char *why)
{
    const msgpack_object *a = st ? agent_row(st, r->host) : NULL;
    const msgpack_object *v;
    if (!a) {
        snprintf(r->error, sizeof r->error, "%s",
                 why ? why : "no report from its host agent");
        return;
    }
    v = render_get(a, "connected");
    r->connected = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    v = render_get(a, "ok");
    r->ok = v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
    v = render_get(a, "version");
    r->version = v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64
                                                                 : 0;
    copy_str(render_get(a, "error"), r->error, sizeof r->error);
}

/* Asks the agent at addr for its status; *st valid while r is open. */
static int site_status(const char *addr, struct client_response *r,
                       const msgpack_object **st, char *why, size_t len)
{
    struct proto_request req = {.op = PROTO_OP_STATUS};
    char err[256];
    int rv = client_request(addr, &req, SITE_BUDGET_MS, r, err, sizeof err);
    if (rv == 0 && r->resp.code != 0)
        rv = r->resp.code;
    if (rv != 0) {
        snprintf(why, len, "site agent %s did not answer: %s", addr,
                 vc_strerror(rv));
        *st = NULL;
        return rv;
    }
    *st = &r->resp.payload;
    return 0;
}

/* Adds the rows of one site of the cluster. */
static void site_rows(const msgpack_object *cluster, const msgpack_object *s,
                      struct rows *out)
{
    uint32_t nh;
    const msgpack_object *hosts = array(render_get(s, "hosts"), &nh);
    char site[VC_NAME_MAX + 1], addr[VC_ADDR_MAX + 1], why[160] = "";
    struct client_response r;
    const msgpack_object *st = NULL;
    bool asked = false;
    copy_str(render_get(s, "name"), site, sizeof site);
    copy_str(render_get(s, "addr"), addr, sizeof addr);
    client_response_init(&r);
    for (uint32_t i = 0; i < nh && out->n < ROWS_MAX; i++) {
        if (!carries(cluster, &hosts[i]))
            continue;
        if (!asked) {
            asked = true;
            if (!addr[0])
                snprintf(why, sizeof why, "site %s has no API address",
                         site);
            else
                site_status(addr, &r, &st, why, sizeof why);
        }
        struct row *row = &out->v[out->n++];
        memset(row, 0, sizeof *row);
        snprintf(row->site, sizeof row->site, "%s", site);
        copy_str(render_get(&hosts[i], "name"), row->host, sizeof row->host);
        fill(row, st, why[0] ? why : NULL);
    }
    client_response_close(&r);
}

static bool spans(const msgpack_object *cluster, const msgpack_object *s)
{
    uint32_t n;
    const msgpack_object *st = array(render_get(cluster, "status"), &n);
    char site[VC_NAME_MAX + 1];
    copy_str(render_get(s, "name"), site, sizeof site);
    for (uint32_t i = 0; i < n; i++)
        if (str_is(render_get(&st[i], "site"), site))
            return true;
    return false;
}

static msgpack_object row_object(const struct row *r, msgpack_object_kv *kv)
{
    kv[0] = render_kv("site", render_str(r->site));
    kv[1] = render_kv("host", render_str(r->host));
    kv[2] = render_kv("connected", render_bool(r->connected));
    kv[3] = render_kv("ok", render_bool(r->ok));
    kv[4] = render_kv("version", render_uint(r->version));
    kv[5] = render_kv("error", render_str(r->error));
    return render_map(kv, 6);
}

int cluster_hosts_print(struct cli *c, const msgpack_object *cluster,
                        const msgpack_object *sites,
                        const struct render_view *v)
{
    static struct rows rows;
    static msgpack_object items[ROWS_MAX];
    static msgpack_object_kv row_kv[ROWS_MAX][6];
    msgpack_object_kv kv[KV_MAX];
    uint32_t ns, n = 0;
    const msgpack_object *s = array(sites, &ns);
    rows.n = 0;
    for (uint32_t i = 0; i < ns; i++)
        if (spans(cluster, &s[i]))
            site_rows(cluster, &s[i], &rows);
    for (uint32_t i = 0; i < rows.n; i++)
        items[i] = row_object(&rows.v[i], row_kv[i]);
    for (uint32_t i = 0; cluster->type == MSGPACK_OBJECT_MAP &&
                         i < cluster->via.map.size && n < KV_MAX - 1;
         i++)
        kv[n++] = cluster->via.map.ptr[i];
    kv[n++] = render_kv("hosts", render_array(items, rows.n));
    msgpack_object doc = render_map(kv, n);
    if (render_object(stdout, c->json, &doc, v) != 0)
        return cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    return CLI_EXIT_OK;
}
