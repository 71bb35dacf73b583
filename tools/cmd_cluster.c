/* virtcloud cluster SUBCOMMAND: the lifecycle of virtual clusters.
 *
 * Reads (list, show) print the agent's cluster maps; writes build one
 * proto_cmd, which cli_submit() validates, stamps with a request id and
 * submits, and print the committed result.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_render.h"
#include "cluster_hosts.h"

static const struct render_field status_fields[] = {
    {"site", "site", RENDER_ANY, RENDER_COLUMN, NULL},
    {"state", "state", RENDER_ANY, RENDER_COLUMN, NULL},
    {"gen", "gen", RENDER_ANY, RENDER_COLUMN, NULL},
    {"applied", "applied", RENDER_ANY, RENDER_COLUMN, NULL},
    {"error", "last error", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view status_view = RENDER_VIEW(status_fields);

static const struct render_field attach_fields[] = {
    {"host", "host", RENDER_ANY, RENDER_COLUMN, NULL},
    {"iface", "iface", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view attach_view = RENDER_VIEW(attach_fields);

#define BOTH (RENDER_COLUMN | RENDER_LINE)
static const struct render_field host_fields[] = {
    {"site", "site", RENDER_ANY, RENDER_COLUMN, NULL},
    {"host", "host", RENDER_ANY, RENDER_COLUMN, NULL},
    {"connected", "connected", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"ok", "ok", RENDER_BOOL, RENDER_COLUMN, NULL},
    {"version", "version", RENDER_ANY, RENDER_COLUMN, NULL},
    {"error", "last error", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view host_view = RENDER_VIEW(host_fields);

static const struct render_field cluster_fields[] = {
    {"name", "cluster", RENDER_ANY, BOTH, NULL},
    {"vlan", "vlan", RENDER_ANY, BOTH, NULL},
    {"state", "state", RENDER_ANY, BOTH, NULL},
    {"owner", "owner", RENDER_ANY, BOTH, NULL},
    {"image", "image", RENDER_ANY, RENDER_LINE, NULL},
    {"sites", "sites", RENDER_LIST, BOTH, NULL},
    {"gen", "generation", RENDER_ANY, RENDER_LINE, NULL},
    {"keep_on_failure", "keep on failure", RENDER_BOOL, RENDER_LINE, NULL},
    {"created_ms", "created", RENDER_TIME, RENDER_LINE, NULL},
    {"deadline_ms", "lease left", RENDER_LEFT, BOTH, NULL},
    {"deadline_ms", "lease ends", RENDER_TIME, RENDER_LINE | RENDER_ALIAS,
     NULL},
    {"status", "site status", RENDER_TABLE, RENDER_LINE, &status_view},
    {"attachments", "attachments", RENDER_TABLE, RENDER_LINE, &attach_view},
    {"hosts", "hosts", RENDER_TABLE, RENDER_LINE, &host_view},
};
static const struct render_view cluster_view = RENDER_VIEW(cluster_fields);

static int cluster_list(struct cli *c, int argc, char **argv)
{
    int status;
    if (!cli_parse(c, argc, argv, NULL, NULL, 0, 0, &status))
        return status;
    return cli_list(c, PROTO_OP_CLUSTERS, &cluster_view);
}

/* The cluster, then the sites (their hosts and agents' addresses), then
 * each site agent's view of its host agents (cluster_hosts.c). */
static int show_with_hosts(struct cli *c, const char *name)
{
    struct client_response cr, sr;
    const msgpack_object *o = NULL;
    int status = cli_read(c, PROTO_OP_CLUSTERS, name, &cr);
    client_response_init(&sr);
    for (uint32_t i = 0; status == 0 && !o &&
                         cr.resp.payload.type == MSGPACK_OBJECT_ARRAY &&
                         i < cr.resp.payload.via.array.size;
         i++) {
        const msgpack_object *x = &cr.resp.payload.via.array.ptr[i];
        const msgpack_object *n = render_get(x, "name");
        struct mp_str s;
        if (n && mp_get_str(n, VC_NAME_MAX, &s) == 0 && mp_str_eq(s, name))
            o = x;
    }
    if (status == 0 && !o)
        status = cli_fail(c, VC_ENOTFOUND, false, "not found");
    if (status == 0)
        status = cli_read(c, PROTO_OP_SITES, "", &sr);
    if (status == 0)
        status = cluster_hosts_print(c, o, &sr.resp.payload, &cluster_view);
    client_response_close(&sr);
    client_response_close(&cr);
    return status;
}

static int cluster_show(struct cli *c, int argc, char **argv)
{
    const char *pos[1];
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 1, 1, &status))
        return status;
    cli_what(c, "cluster show %s", pos[0]);
    if (!proto_name_ok(mp_cstr(pos[0])))
        return cli_show(c, PROTO_OP_CLUSTERS, pos[0], &cluster_view);
    return show_with_hosts(c, pos[0]);
}

/* --- writes ------------------------------------------------------------- */

/* Parses "NAME" and opts, and starts a command of type about NAME.
 * Returns false when the process should exit with *status. */
static bool begin(struct cli *c, int argc, char **argv,
                  const struct cli_opt *opts, int type, struct proto_cmd *cmd,
                  int *status)
{
    const char *pos[1];
    char what[sizeof c->what];
    if (!cli_parse(c, argc, argv, opts, pos, 1, 1, status))
        return false;
    snprintf(what, sizeof what, "%s", c->what);
    cli_what(c, "%s %s", what, pos[0]);
    proto_cmd_init(cmd, type);
    cmd->name = mp_cstr(pos[0]);
    return true;
}

/* Usage error unless the option called name was given. */
static int require(struct cli *c, const char *name, const char *value)
{
    return value ? 0 : cli_usage(c, "--%s is required", name);
}

static int submit(struct cli *c, struct proto_cmd *cmd, bool with_sites)
{
    struct proto_result res;
    int status = cli_submit(c, cmd, &res);
    return status ? status : cli_print_result(c, cmd, &res, with_sites);
}

/* Splits "A,B,C" into cmd->sites, borrowing from list. */
static int parse_sites(struct cli *c, const char *list, struct proto_cmd *cmd)
{
    const char *p = list;
    cmd->nsites = 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ')
            p++, n--;
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == 0)
            return cli_usage(c, "--sites \"%s\": empty site name", list);
        if (cmd->nsites == VC_SITES_MAX)
            return cli_usage(c, "--sites: more than %d sites", VC_SITES_MAX);
        cmd->sites[cmd->nsites++] = (struct mp_str){p, (uint32_t)n};
        if (!end)
            return 0;
        p = end + 1;
    }
}

static int parse_lease(struct cli *c, const char *arg, uint64_t *ms)
{
    if (cli_parse_duration(arg, ms) != 0)
        return cli_usage(c,
                         "--lease \"%s\": expected a duration such as "
                         "8h, 2d or 1h30m",
                         arg);
    return 0;
}

/* Whom the cluster is for: the user behind sudo, else the user. */
static const char *default_owner(void)
{
    const char *names[] = {"SUDO_USER", "USER"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return v;
    }
    return "unknown";
}

/* create --wait: the committed result, then the wait for ready (which
 * prints its own outcome; with --json that is the only document). */
static int create_and_wait(struct cli *c, struct proto_cmd *cmd)
{
    struct proto_result res;
    char name[VC_NAME_MAX + 1];
    int status = cli_submit(c, cmd, &res);
    if (status)
        return status;
    if (!c->json && (status = cli_print_result(c, cmd, &res, true)) != 0)
        return status;
    mp_str_copy(cmd->name, name, sizeof name);
    char *argv[] = {name, NULL};
    return cmd_cluster_wait(c, 1, argv);
}

static int cluster_create(struct cli *c, int argc, char **argv)
{
    const char *sites = NULL, *owner = NULL, *image = "certified",
               *lease = "24h";
    bool wait = false, keep = false;
    const struct cli_opt opts[] = {{"sites", &sites, NULL},
                                   {"owner", &owner, NULL},
                                   {"image", &image, NULL},
                                   {"lease", &lease, NULL},
                                   {"wait", NULL, &wait},
                                   {"keep-on-failure", NULL, &keep},
                                   {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status, k;
    if (!begin(c, argc, argv, opts, PROTO_CMD_CLUSTER_CREATE, &cmd, &status))
        return status;
    if ((status = require(c, "sites", sites)) != 0 ||
        (status = parse_sites(c, sites, &cmd)) != 0 ||
        (status = parse_lease(c, lease, &cmd.lease_ms)) != 0)
        return status;
    if ((k = proto_image_parse(image)) < 0)
        return cli_usage(c, "--image \"%s\": expected certified or user",
                         image);
    cmd.image = (uint8_t)k;
    cmd.owner = mp_cstr(owner ? owner : default_owner());
    cmd.keep = keep;
    return wait ? create_and_wait(c, &cmd) : submit(c, &cmd, true);
}

static int cluster_release(struct cli *c, int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--all"))
            return cmd_release_all(c, argc, argv); /* cmd_bulk.c */
    bool force = false;
    const struct cli_opt opts[] = {{"force", NULL, &force}, {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status;
    if (!begin(c, argc, argv, opts, PROTO_CMD_CLUSTER_RELEASE, &cmd, &status))
        return status;
    cmd.force = force;
    return submit(c, &cmd, false);
}

static int cluster_renew(struct cli *c, int argc, char **argv)
{
    const char *lease = NULL;
    const struct cli_opt opts[] = {{"lease", &lease, NULL}, {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status;
    if (!begin(c, argc, argv, opts, PROTO_CMD_CLUSTER_RENEW, &cmd, &status))
        return status;
    if ((status = require(c, "lease", lease)) != 0 ||
        (status = parse_lease(c, lease, &cmd.lease_ms)) != 0)
        return status;
    return submit(c, &cmd, false);
}

/* extend and shrink: NAME --site S. */
static int site_change(struct cli *c, int argc, char **argv, int type)
{
    const char *site = NULL;
    const struct cli_opt opts[] = {{"site", &site, NULL}, {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status;
    if (!begin(c, argc, argv, opts, type, &cmd, &status))
        return status;
    if ((status = require(c, "site", site)) != 0)
        return status;
    cmd.site = mp_cstr(site);
    return submit(c, &cmd, false);
}

static int cluster_extend(struct cli *c, int argc, char **argv)
{
    return site_change(c, argc, argv, PROTO_CMD_CLUSTER_EXTEND);
}

static int cluster_shrink(struct cli *c, int argc, char **argv)
{
    return site_change(c, argc, argv, PROTO_CMD_CLUSTER_SHRINK);
}

/* attach and detach: NAME --host H --iface IF. */
static int attachment(struct cli *c, int argc, char **argv, int type)
{
    const char *host = NULL, *iface = NULL;
    const struct cli_opt opts[] = {
        {"host", &host, NULL}, {"iface", &iface, NULL}, {NULL, NULL, NULL}};
    struct proto_cmd cmd;
    int status;
    if (!begin(c, argc, argv, opts, type, &cmd, &status))
        return status;
    if ((status = require(c, "host", host)) != 0 ||
        (status = require(c, "iface", iface)) != 0)
        return status;
    cmd.host = mp_cstr(host);
    cmd.iface = mp_cstr(iface);
    return submit(c, &cmd, false);
}

static int cluster_attach(struct cli *c, int argc, char **argv)
{
    return attachment(c, argc, argv, PROTO_CMD_ATTACH);
}

static int cluster_detach(struct cli *c, int argc, char **argv)
{
    return attachment(c, argc, argv, PROTO_CMD_DETACH);
}

const struct cli_command cmd_cluster_commands[] = {
    {"create", cluster_create,
     "NAME --sites A,B,... [--owner U] [--image certified|user] "
     "[--lease D] [--wait] [--keep-on-failure]",
     "create a cluster on a VLAN free at every listed site (lease 24h, "
     "owner $SUDO_USER or $USER); --wait until it is applied everywhere "
     "(--timeout bounds the wait); --keep-on-failure: never roll it back",
     NULL},
    {"list", cluster_list, "",
     "list clusters: VLAN, state, owner, sites, "
     "lease left",
     NULL},
    {"show", cluster_show, "NAME",
     "show one cluster with the state of "
     "every site and its attachments",
     NULL},
    {"release", cluster_release, "NAME [--force] | --all --owner U [--force]",
     "release the cluster (--all: every cluster of owner U, with progress); "
     "its VLAN is reused only once every site has removed it",
     NULL},
    {"extend", cluster_extend, "NAME --site S",
     "add site S (its pool must allow the cluster's VLAN)", NULL},
    {"shrink", cluster_shrink, "NAME --site S", "remove site S", NULL},
    {"renew", cluster_renew, "NAME --lease D",
     "set the lease to end D from now", NULL},
    {"attach", cluster_attach, "NAME --host H --iface IF",
     "put interface IF of host H on the cluster's VLAN", NULL},
    {"wait", cmd_cluster_wait, "NAME|--vlan V [--site S|--host H]",
     "wait until the cluster is applied at every site (ready), or at one "
     "site (S, or host H's); --timeout bounds the whole wait",
     NULL},
    {"detach", cluster_detach, "NAME --host H --iface IF",
     "take interface IF of host H off the cluster's VLAN", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

int cmd_cluster(struct cli *c, int argc, char **argv)
{
    return cli_dispatch(c, cmd_cluster_commands, "cluster", argc, argv);
}
