/* virtcloud host SUBCOMMAND: hypervisor hosts and service nodes.
 *
 * Hosts are listed per site by `site show`; these commands change them.
 * A service node (file or access server) joins every cluster VLAN at its
 * site.
 */
#include <string.h>

#include "cli.h"

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
