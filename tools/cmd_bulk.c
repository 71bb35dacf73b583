/* virtcloud cluster release --all --owner U: every cluster of an owner.
 *
 * Lists the clusters (one read), then releases each of owner U that is
 * not already releasing, one committed command each, in name order. With
 * --request-id ID each release carries "ID:NAME", so re-running the same
 * bulk command after an interruption releases nothing twice and reports
 * the first answers. A terminal shows "releasing 3/10: NAME" as progress;
 * the result is one table (or one JSON array) of every cluster's outcome.
 * Exit status: 0 when every release committed, else the worst status of
 * the failures (1 < 3 < 4), so a script knows whether a retry may help.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_render.h"
#include "progress.h"
#include "proto/err.h"

struct outcome {
    char name[VC_NAME_MAX + 1];
    char req_id[VC_REQID_MAX + 1];
    char message[1024];
    const char *error; /* vc_errname(), NULL when ok */
    uint64_t vlan, gen;
};

static const struct render_field row_fields[] = {
    {"name", "cluster", RENDER_ANY, RENDER_COLUMN, NULL},
    {"ok", "ok", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"vlan", "vlan", RENDER_ANY, RENDER_COLUMN, NULL},
    {"request_id", "request id", RENDER_ANY, RENDER_COLUMN, NULL},
    {"message", "message", RENDER_ANY, RENDER_COLUMN, NULL},
    {"error", "error", RENDER_ANY, 0, NULL},
};
static const struct render_view row_view = RENDER_VIEW(row_fields);

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b); /* elements are char[VC_NAME_MAX + 1] */
}

/* Names of the clusters of owner in list (the CLUSTERS payload) that are
 * not releasing yet, sorted. Returns how many, or -1 on no memory. */
static int select_owned(const msgpack_object *list, const char *owner,
                        char (**names)[VC_NAME_MAX + 1])
{
    uint32_t n = list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0;
    int k = 0;
    *names = malloc((n + 1) * sizeof **names);
    if (!*names)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        const msgpack_object *ow = render_get(o, "owner");
        const msgpack_object *st = render_get(o, "state");
        const msgpack_object *nm = render_get(o, "name");
        struct mp_str a, b, c;
        if (!ow || !st || !nm || mp_get_str(ow, 4096, &a) ||
            mp_get_str(st, 64, &b) || mp_get_str(nm, VC_NAME_MAX, &c) ||
            !mp_str_eq(a, owner) || mp_str_eq(b, "releasing"))
            continue;
        mp_str_copy(c, (*names)[k++], VC_NAME_MAX + 1);
    }
    qsort(*names, (size_t)k, sizeof **names, by_name);
    return k;
}

/* Releases one cluster quietly, recording the outcome. Returns the exit
 * status. */
static int release_one(struct cli *c, const char *name, bool force,
                       const char *base_id, struct outcome *out)
{
    struct proto_cmd cmd;
    struct proto_result res;
    char id[VC_REQID_MAX + 1];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (base_id) {
        snprintf(id, sizeof id, "%s:%s", base_id, name);
        c->req_id = id;
    }
    proto_cmd_init(&cmd, PROTO_CMD_CLUSTER_RELEASE);
    cmd.name = mp_cstr(name);
    cmd.force = force;
    int status = cli_submit(c, &cmd, &res);
    snprintf(out->req_id, sizeof out->req_id, "%s", c->req_buf);
    if (status == 0) {
        out->vlan = res.vlan;
        out->gen = res.gen;
        snprintf(out->message, sizeof out->message, "%s", res.msg);
    } else {
        out->error = vc_errname(c->last_code);
        snprintf(out->message, sizeof out->message, "%s", c->last_error);
    }
    return status;
}

static int print_outcomes(struct cli *c, const struct outcome *o, int n)
{
    msgpack_object *rows = malloc(((size_t)n + 1) * sizeof *rows);
    msgpack_object_kv *kv = malloc(((size_t)n + 1) * 7 * sizeof *kv);
    int rv = VC_ENOMEM;
    if (rows && kv) {
        for (int i = 0; i < n; i++) {
            msgpack_object_kv *k = kv + (size_t)i * 7;
            uint32_t m = 0;
            k[m++] = render_kv("name", render_str(o[i].name));
            k[m++] = render_kv("ok", render_bool(!o[i].error));
            k[m++] = render_kv("vlan", render_uint(o[i].vlan));
            k[m++] = render_kv("gen", render_uint(o[i].gen));
            k[m++] = render_kv("request_id", render_str(o[i].req_id));
            k[m++] = render_kv("message", render_str(o[i].message));
            if (o[i].error)
                k[m++] = render_kv("error", render_str(o[i].error));
            rows[i] = render_map(k, m);
        }
        msgpack_object doc = render_array(rows, (uint32_t)n);
        rv = render_list(stdout, c->json, &doc, &row_view);
    }
    free(rows);
    free(kv);
    return rv;
}

static int worse(int a, int b)
{
    return a > b ? a : b;
}

int cmd_release_all(struct cli *c, int argc, char **argv)
{
    bool all = false, force = false;
    const char *owner = NULL;
    const struct cli_opt opts[] = {{"all", NULL, &all},
                                   {"owner", &owner, NULL},
                                   {"force", NULL, &force},
                                   {NULL, NULL, NULL}};
    struct client_response r;
    struct progress p;
    char(*names)[VC_NAME_MAX + 1] = NULL;
    int status, worst = 0;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    if (!all || !owner || !*owner)
        return cli_usage(c, "--all needs --owner U (whose clusters to "
                            "release)");
    const char *base_id = c->req_id;
    c->req_id = NULL; /* the list is a read */
    if ((status = cli_read(c, PROTO_OP_CLUSTERS, "", &r)) != 0) {
        client_response_close(&r);
        return status;
    }
    int n = select_owned(&r.resp.payload, owner, &names);
    client_response_close(&r);
    struct outcome *o = n >= 0 ? calloc((size_t)n + 1, sizeof *o) : NULL;
    if (!o) {
        free(names);
        return cli_fail(c, VC_ENOMEM, false, "out of memory");
    }
    progress_init(&p, c->json);
    c->quiet = true;
    for (int i = 0; i < n; i++) {
        progress_update(&p, "releasing %d/%d: %s", i + 1, n, names[i]);
        worst = worse(worst, release_one(c, names[i], force, base_id, &o[i]));
    }
    c->quiet = false;
    progress_done(&p);
    if (print_outcomes(c, o, n) != 0)
        worst = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    else if (worst != 0)
        fprintf(stderr, "virtcloud: %s: some releases failed (see the "
                        "table)\n", c->what);
    free(o);
    free(names);
    return worst;
}
