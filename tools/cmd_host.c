/* virtcloud host SUBCOMMAND: hypervisor hosts and service nodes.
 *
 * Hosts are listed per site by `site show`; these commands change them.
 * A service node (file or access server) joins every cluster VLAN at its
 * site.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

static const struct render_field host_fields[] = {
    {"name", "host", RENDER_ANY, RENDER_COLUMN, NULL},
    {"site", "site", RENDER_ANY, RENDER_COLUMN, NULL},
    {"trunk", "trunk", RENDER_ANY, RENDER_COLUMN, NULL},
    {"service", "service", RENDER_BOOL, RENDER_COLUMN, NULL},
};
static const struct render_view host_view = RENDER_VIEW(host_fields);

/* Hosts of the site map s, as {name, site, trunk, service} rows written
 * at rows + *n; the values are borrowed from s. */
static void site_hosts(const msgpack_object *s, msgpack_object_kv (*kv)[4],
                       msgpack_object *rows, uint32_t *n, uint32_t max)
{
    static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    const msgpack_object *site = render_get(s, "name");
    const msgpack_object *hosts = render_get(s, "hosts");
    if (!hosts || hosts->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < hosts->via.array.size && *n < max; i++) {
        const msgpack_object *h = &hosts->via.array.ptr[i];
        const char *keys[] = {"name", NULL, "trunk", "service"};
        for (int k = 0; k < 4; k++) {
            const msgpack_object *v = k == 1 ? site : render_get(h, keys[k]);
            kv[*n][k] = render_kv(k == 1 ? "site" : keys[k], v ? *v : nil);
        }
        rows[*n] = render_map(kv[*n], 4);
        ++*n;
    }
}

/* host list [--site S]: every host of the site list, one row each, so
 * that scripts (tools/hooks) can map a node name to its site. */
static int host_list(struct cli *c, int argc, char **argv)
{
    const char *only = NULL;
    const struct cli_opt opts[] = {{"site", &only, NULL}, {NULL, NULL, NULL}};
    struct client_response r;
    int status;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    if ((status = cli_read(c, PROTO_OP_SITES, "", &r)) != 0) {
        client_response_close(&r);
        return status;
    }
    const msgpack_object *sites = &r.resp.payload;
    uint32_t total = 0, n = 0;
    for (uint32_t i = 0; sites->type == MSGPACK_OBJECT_ARRAY &&
                         i < sites->via.array.size; i++) {
        const msgpack_object *h = render_get(&sites->via.array.ptr[i], "hosts");
        total += h && h->type == MSGPACK_OBJECT_ARRAY ? h->via.array.size : 0;
    }
    msgpack_object *rows = malloc((total + 1) * sizeof *rows);
    msgpack_object_kv(*kv)[4] = malloc((total + 1) * sizeof *kv);
    for (uint32_t i = 0; rows && kv && sites->type == MSGPACK_OBJECT_ARRAY &&
                         i < sites->via.array.size; i++) {
        const msgpack_object *s = &sites->via.array.ptr[i];
        const msgpack_object *name = render_get(s, "name");
        struct mp_str sn;
        if (only && !(name && mp_get_str(name, VC_NAME_MAX, &sn) == 0 &&
                      mp_str_eq(sn, only)))
            continue;
        site_hosts(s, kv, rows, &n, total);
    }
    msgpack_object doc = render_array(rows, n);
    if (!rows || !kv || render_list(stdout, c->json, &doc, &host_view) != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory");
    free(rows);
    free(kv);
    client_response_close(&r);
    return status;
}

static int submit(struct cli *c, struct proto_cmd *cmd)
{
    struct proto_result res;
    int status = cli_submit(c, cmd, &res);
    return status ? status : cli_print_result(c, cmd, &res, false);
}

static int host_add(struct cli *c, int argc, char **argv)
{
    const char *site = NULL, *trunk = NULL, *pos[1];
    const struct cli_opt opts[] = {{"site", &site, NULL},
                                   {"trunk", &trunk, NULL},
                                   {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status;
    if (!cli_parse(c, argc, argv, opts, pos, 1, 1, &status))
        return status;
    if (!site || !trunk)
        return cli_usage(c, "host add needs --site S and --trunk IFACE");
    cli_what(c, "host add %s", pos[0]);
    proto_cmd_init(&cmd, PROTO_CMD_HOST_ADD);
    cmd.name = mp_cstr(pos[0]);
    cmd.site = mp_cstr(site);
    cmd.iface = mp_cstr(trunk);
    return submit(c, &cmd);
}

static int host_simple(struct cli *c, int argc, char **argv, int type,
                       const char *what)
{
    const char *pos[1];
    struct proto_cmd cmd;
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 1, 1, &status))
        return status;
    cli_what(c, "%s %s", what, pos[0]);
    proto_cmd_init(&cmd, type);
    cmd.name = mp_cstr(pos[0]);
    return submit(c, &cmd);
}

static int host_remove(struct cli *c, int argc, char **argv)
{
    return host_simple(c, argc, argv, PROTO_CMD_HOST_REMOVE, "host remove");
}

static int host_service(struct cli *c, int argc, char **argv)
{
    const char *pos[2];
    struct proto_cmd cmd;
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 2, 2, &status))
        return status;
    if (strcmp(pos[1], "on") && strcmp(pos[1], "off"))
        return cli_usage(c, "host service NAME on|off");
    cli_what(c, "host service %s %s", pos[0], pos[1]);
    proto_cmd_init(&cmd, strcmp(pos[1], "on") ? PROTO_CMD_SERVICE_REMOVE
                                              : PROTO_CMD_SERVICE_ADD);
    cmd.name = mp_cstr(pos[0]);
    return submit(c, &cmd);
}

const struct cli_command cmd_host_commands[] = {
    {"list", host_list, "[--site S]",
     "list hosts with their site, trunk interface and service flag", NULL},
    {"add", host_add, "NAME --site S --trunk IFACE",
     "register a hypervisor host and its trunk interface", NULL},
    {"remove", host_remove, "NAME",
     "unregister a host (refused while VMs on it are attached)", NULL},
    {"service", host_service, "NAME on|off",
     "make the host a service node that joins every cluster VLAN at its "
     "site (file and access servers), or stop that",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

int cmd_host(struct cli *c, int argc, char **argv)
{
    return cli_dispatch(c, cmd_host_commands, "host", argc, argv);
}
