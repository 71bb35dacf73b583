/* virtcloud status: the raft group as the answering agent sees it. */
#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

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
};
static const struct render_view status_view = RENDER_VIEW(status_fields);

int cmd_status(struct cli *c, int argc, char **argv)
{
    struct client_response r;
    int status;
    if (!cli_parse(c, argc, argv, NULL, NULL, 0, 0, &status))
        return status;
    status = cli_read(c, PROTO_OP_STATUS, NULL, &r);
    if (status == 0 && r.resp.payload.type != MSGPACK_OBJECT_MAP)
        status = cli_fail(c, VC_EMALFORMED, false,
                          "the agent's answer holds no status");
    if (status == 0 &&
        render_object(stdout, c->json, &r.resp.payload, &status_view) != 0)
        status = cli_fail(c, VC_ENOMEM, false, "out of memory printing");
    client_response_close(&r);
    return status;
}
