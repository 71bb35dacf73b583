#include "transport.h"

int transport_init(struct raft_uv_transport *t, uv_loop_t *loop)
{
    /* Plain TCP for now; raft_uv rejects any version but 1. */
    t->version = 1;
    return raft_uv_tcp_init(t, loop);
}

void transport_close(struct raft_uv_transport *t)
{
    raft_uv_tcp_close(t);
}
