/* virtcloud role add | remove | list: client role bindings (public key ->
 * name and role) in the replicated state. Admin only (docs/cli.md). */
#include <stdio.h>
#include <string.h>

#include "agent/keys.h"
#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

static const struct render_field role_fields[] = {
    {"name", "name", RENDER_ANY, RENDER_COLUMN, NULL},
    {"role", "role", RENDER_ANY, RENDER_COLUMN, NULL},
    {"key", "key", RENDER_ANY, RENDER_COLUMN, NULL},
};
static const struct render_view role_view = RENDER_VIEW(role_fields);

/* KEY is the public text form, or a file holding it (keygen's PATH.pub). */
static int read_public(struct cli *c, const char *arg,
                       uint8_t pk[KEYS_PUBLIC_BYTES])
{
    char text[256] = "", why[256];
    const char *src = arg;
    if (strncmp(arg, KEYS_PUBLIC_PREFIX, strlen(KEYS_PUBLIC_PREFIX)) != 0) {
        FILE *f = fopen(arg, "r");
        if (!f)
            return cli_usage(c, "\"%s\" is neither a public key (vc1:...) "
                             "nor a readable file", arg);
        if (!fgets(text, sizeof text, f))
            text[0] = '\0';
        fclose(f);
        src = text;
    }
    if (keys_parse_public(src, pk, why, sizeof why) != 0)
        return cli_usage(c, "%s: %s", arg, why);
    return 0;
}

static int role_add(struct cli *c, int argc, char **argv)
{
    const char *role = NULL, *pos[2];
    const struct cli_opt opts[] = {{"role", &role, NULL}, {NULL, NULL, NULL}};
    uint8_t pk[KEYS_PUBLIC_BYTES];
    struct proto_cmd cmd;
    struct proto_result res;
    int status, r;
    if (!cli_parse(c, argc, argv, opts, pos, 2, 2, &status))
        return status;
    cli_what(c, "role add %s", pos[0]);
    if (!role || (r = proto_role_parse(role)) < 0)
        return cli_usage(c, "--role: \"%s\" is not user, scheduler or admin",
                         role ? role : "");
    if ((status = read_public(c, pos[1], pk)) != 0)
        return status;
    proto_cmd_init(&cmd, PROTO_CMD_ROLE_ADD);
    cmd.name = mp_cstr(pos[0]);
    cmd.key = (struct mp_str){(const char *)pk, KEYS_PUBLIC_BYTES};
    cmd.role = (uint8_t)r;
    status = cli_submit(c, &cmd, &res);
    return status ? status : cli_print_result(c, &cmd, &res, false);
}

static int role_remove(struct cli *c, int argc, char **argv)
{
    const char *pos[1];
    struct proto_cmd cmd;
    struct proto_result res;
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 1, 1, &status))
        return status;
    cli_what(c, "role remove %s", pos[0]);
    proto_cmd_init(&cmd, PROTO_CMD_ROLE_REMOVE);
    cmd.name = mp_cstr(pos[0]);
    status = cli_submit(c, &cmd, &res);
    return status ? status : cli_print_result(c, &cmd, &res, false);
}

static int role_list(struct cli *c, int argc, char **argv)
{
    struct client_response r;
    const msgpack_object *roles;
    int status;
    if (!cli_parse(c, argc, argv, NULL, NULL, 0, 0, &status))
        return status;
    cli_what(c, "role list");
    status = cli_read(c, PROTO_OP_STATUS, NULL, &r);
    if (status == 0 && (r.resp.payload.type != MSGPACK_OBJECT_MAP ||
                        !(roles = render_get(&r.resp.payload, "roles"))))
        status = cli_fail(c, VC_EMALFORMED, false,
                          "the agent's status holds no role bindings");
    if (status == 0 && render_list(stdout, c->json, roles, &role_view) != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    client_response_close(&r);
    return status;
}

const struct cli_command cmd_role_commands[] = {
    {"add", role_add, "NAME KEY --role user|scheduler|admin",
     "bind a client key (vc1:... or a .pub file) to NAME and a role; "
     "NAME again replaces its key and role", NULL},
    {"remove", role_remove, "NAME", "remove a binding: its key is refused "
     "from the next request on", NULL},
    {"list", role_list, "", "list the role bindings", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

int cmd_role(struct cli *c, int argc, char **argv)
{
    return cli_dispatch(c, cmd_role_commands, "role", argc, argv);
}
