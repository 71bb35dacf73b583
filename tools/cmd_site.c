/* virtcloud site list | show NAME: sites, their VLAN pools and hosts. */
#include "cli.h"
#include "cli_render.h"

static const struct render_field host_fields[] = {
    {"name", "host", RENDER_ANY, RENDER_COLUMN, NULL},
    {"trunk", "trunk", RENDER_ANY, RENDER_COLUMN, NULL},
    {"service", "service", RENDER_BOOL, RENDER_COLUMN, NULL},
};
static const struct render_view host_view = RENDER_VIEW(host_fields);

static const struct render_field site_fields[] = {
    {"name", "site", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"id", "id", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"addr", "api", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"pool", "pool", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"free", "free", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"used", "used", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"uplink", "uplink", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"svlan", "svlan", RENDER_ANY, RENDER_COLUMN | RENDER_LINE, NULL},
    {"managed", "managed", RENDER_BOOL, RENDER_COLUMN | RENDER_LINE, NULL},
    {"hosts", "hosts", RENDER_TABLE, RENDER_LINE, &host_view},
    {"hosts", "hosts", RENDER_COUNT, RENDER_COLUMN | RENDER_ALIAS, NULL},
};
static const struct render_view site_view = RENDER_VIEW(site_fields);

static int site_list(struct cli *c, int argc, char **argv)
{
    int status;
    if (!cli_parse(c, argc, argv, NULL, NULL, 0, 0, &status))
        return status;
    return cli_list(c, PROTO_OP_SITES, &site_view);
}

static int site_show(struct cli *c, int argc, char **argv)
{
    const char *pos[1];
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 1, 1, &status))
        return status;
    cli_what(c, "site show %s", pos[0]);
    return cli_show(c, PROTO_OP_SITES, pos[0], &site_view);
}

/* Decommissions a site: refused while clusters span it unless --force,
 * which shrinks them in the same transaction; the agents then take the
 * site out of the raft configuration. */
static int site_remove(struct cli *c, int argc, char **argv)
{
    bool force = false;
    const struct cli_opt opts[] = {{"force", NULL, &force}, {NULL, NULL, NULL}};
    const char *pos[1];
    struct proto_cmd cmd;
    struct proto_result res;
    int status;
    if (!cli_parse(c, argc, argv, opts, pos, 1, 1, &status))
        return status;
    cli_what(c, "site remove %s", pos[0]);
    proto_cmd_init(&cmd, PROTO_CMD_SITE_REMOVE);
    cmd.name = mp_cstr(pos[0]);
    cmd.force = force;
    status = cli_submit(c, &cmd, &res);
    return status ? status : cli_print_result(c, &cmd, &res, false);
}

/* tools/cmd_sitekey.c */
int cmd_site_invite(struct cli *c, int argc, char **argv);
int cmd_site_rotate_key(struct cli *c, int argc, char **argv);

const struct cli_command cmd_site_commands[] = {
    {"list", site_list, "",
     "list every site: VLAN pool, free and used IDs, "
     "uplink, hosts",
     NULL},
    {"show", site_show, "NAME", "show one site and its hosts", NULL},
    {"invite", cmd_site_invite, "NAME [--ttl DURATION]",
     "one-time join token for a new site NAME (default --ttl 1h), for its "
     "join-token setting", NULL},
    {"rotate-key", cmd_site_rotate_key, "--agent-key PATH [--site NAME]",
     "a new site key without downtime: writes PATH.next and commits it; "
     "the agent switches to it and drops the old key", NULL},
    {"remove", site_remove, "NAME [--force]",
     "decommission a site (refused while clusters span it; --force "
     "shrinks them first) and take it out of the raft configuration",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

int cmd_site(struct cli *c, int argc, char **argv)
{
    return cli_dispatch(c, cmd_site_commands, "site", argc, argv);
}
