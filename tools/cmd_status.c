/* virtcloud status: what an operator needs at a glance, also during an
 * outage: the answering agent's view of the raft group, every member
 * asked directly (reachable? applied how far?) and the clusters that are
 * not ready with the sites they wait on. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"
#include "status_sites.h"

static const struct render_field member_fields[] = {
    {"site", "site", RENDER_ANY, RENDER_COLUMN, NULL},
    {"id", "id", RENDER_ANY, RENDER_COLUMN, NULL},
    {"role", "role", RENDER_ANY, RENDER_COLUMN, NULL},
    {"leader", "leader", RENDER_MARK, RENDER_COLUMN, NULL},
    {"reachable", "reachable", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"match", "match", RENDER_ANY, RENDER_COLUMN, NULL},
    {"lag", "lag", RENDER_ANY, RENDER_COLUMN, NULL},
    {"addr", "raft addr", RENDER_ANY, RENDER_COLUMN, NULL},
    {"api", "api", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view member_view = RENDER_VIEW(member_fields);

/* Every member asked directly (status_sites.c). */
static const struct render_field site_fields[] = {
    {"site", "site", RENDER_ANY, RENDER_COLUMN, NULL},
    {"answers", "answers", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"role", "role", RENDER_ANY, RENDER_COLUMN, NULL},
    {"leader", "leader", RENDER_ANY, RENDER_COLUMN, NULL},
    {"applied", "applied", RENDER_ANY, RENDER_COLUMN, NULL},
    {"behind", "behind", RENDER_ANY, RENDER_COLUMN, NULL},
    {"error", "error", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view site_view = RENDER_VIEW(site_fields);

/* Clusters not ready and the sites they wait on (agent/view_health.c). */
static const struct render_field problem_fields[] = {
    {"name", "cluster", RENDER_ANY, RENDER_COLUMN, NULL},
    {"vlan", "vlan", RENDER_ANY, RENDER_COLUMN, NULL},
    {"state", "state", RENDER_ANY, RENDER_COLUMN, NULL},
    {"pending", "pending at", RENDER_ANY, RENDER_COLUMN, NULL},
    {"removing", "removing at", RENDER_ANY, RENDER_COLUMN, NULL},
    {"failed", "failed at", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view problem_view = RENDER_VIEW(problem_fields);

static const struct render_field host_fields[] = {
    {"host", "host", RENDER_ANY, RENDER_COLUMN, NULL},
    {"connected", "connected", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"ok", "ok", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"version", "version", RENDER_ANY, RENDER_COLUMN, NULL},
    {"vlans", "vlans", RENDER_ANY, RENDER_COLUMN, NULL},
    {"missing", "missing", RENDER_ANY, RENDER_COLUMN, NULL},
    {"error", "last error", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view host_view = RENDER_VIEW(host_fields);

static const struct render_field status_fields[] = {
    {"site", "site", RENDER_ANY, RENDER_LINE, NULL},
    {"id", "id", RENDER_ANY, RENDER_LINE, NULL},
    {"role", "role", RENDER_ANY, RENDER_LINE, NULL},
    {"leader", "leader", RENDER_ANY, RENDER_LINE, NULL},
    {"leader_id", "leader id", RENDER_ANY, RENDER_LINE, NULL},
    {"term", "term", RENDER_ANY, RENDER_LINE, NULL},
    {"commit", "commit index", RENDER_ANY, RENDER_LINE, NULL},
    {"applied", "applied index", RENDER_ANY, RENDER_LINE, NULL},
    {"members", "members", RENDER_TABLE, RENDER_LINE, &member_view},
    {"hosts", "host agents", RENDER_TABLE, RENDER_LINE, &host_view},
    {"sites", "sites (asked directly)", RENDER_TABLE, RENDER_LINE,
     &site_view},
    {"clusters", "clusters", RENDER_ANY, RENDER_LINE, NULL},
    {"not_ready_total", "not ready", RENDER_ANY, RENDER_LINE, NULL},
    {"not_ready", "clusters not ready", RENDER_TABLE, RENDER_LINE,
     &problem_view},
};
static const struct render_view status_view = RENDER_VIEW(status_fields);

/* Prints status with the "sites" rows added (after the agent's keys). */
static int print_with_sites(struct cli *c, const msgpack_object *status,
                            const msgpack_object *sites)
{
    uint32_t n = status->via.map.size, k = 0;
    msgpack_object_kv *kv = malloc((n + 1) * sizeof *kv);
    if (!kv)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        struct mp_str key;
        const msgpack_object_kv *e = &status->via.map.ptr[i];
        if (!(mp_get_str(&e->key, 64, &key) == 0 && mp_str_eq(key, "sites")))
            kv[k++] = *e;
    }
    kv[k++] = render_kv("sites", *sites);
    msgpack_object doc = render_map(kv, k);
    int rv = render_object(stdout, c->json, &doc, &status_view);
    free(kv);
    return rv;
}

/* virtcloud status [--local]: the answering agent's view, every member
 * asked directly (unless --local) and the clusters that are not ready. */
int cmd_status(struct cli *c, int argc, char **argv)
{
    bool local = false;
    const struct cli_opt opts[] = {{"local", NULL, &local},
                                   {NULL, NULL, NULL}};
    struct client_response r;
    struct status_sites sites;
    int status, rv = 0;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    status = cli_read(c, PROTO_OP_STATUS, NULL, &r);
    if (status == 0 && r.resp.payload.type != MSGPACK_OBJECT_MAP)
        status = cli_fail(c, VC_EMALFORMED, false,
                          "the agent's answer holds no status");
    memset(&sites, 0, sizeof sites);
    msgpack_sbuffer_init(&sites.sb);
    if (status == 0 && local)
        rv = render_object(stdout, c->json, &r.resp.payload, &status_view);
    else if (status == 0) {
        /* A short budget: a stopped site must not hold the answer up. */
        uint32_t budget = c->timeout_ms / 2 < 1000 ? c->timeout_ms / 2 : 1000;
        rv = status_sites_probe(&r.resp.payload, budget, &sites);
        if (rv == 0)
            rv = print_with_sites(c, &r.resp.payload, &sites.doc);
    }
    if (rv != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    status_sites_close(&sites);
    client_response_close(&r);
    return status;
}
