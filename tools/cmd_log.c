/* virtcloud log-level [LEVEL]: shows or sets the answering agent's log
 * level (PROTO_OP_LOGLEVEL). Only that agent changes: each site sets its
 * own, and a restart goes back to the configured log-level. */
#include <string.h>

#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

static const struct render_field level_fields[] = {
    {"level", "log level", RENDER_ANY, RENDER_LINE, NULL},
    {"previous", "previous", RENDER_ANY, RENDER_LINE, NULL},
};
static const struct render_view level_view = RENDER_VIEW(level_fields);

static bool level_ok(const char *s)
{
    static const char *levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(s, levels[i]))
            return true;
    return false;
}

int cmd_log_level(struct cli *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    struct client_response r;
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 0, 1, &status))
        return status;
    if (pos[0] && !level_ok(pos[0]))
        return cli_usage(c, "\"%s\" is not debug, info, warn or error",
                         pos[0]);
    cli_what(c, "log-level");
    status = cli_read(c, PROTO_OP_LOGLEVEL, pos[0], &r);
    if (status == 0 && r.resp.payload.type != MSGPACK_OBJECT_MAP)
        status = cli_fail(c, VC_EMALFORMED, false,
                          "the agent's answer holds no level");
    if (status == 0 &&
        render_object(stdout, c->json, &r.resp.payload, &level_view) != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    client_response_close(&r);
    return status;
}
