/* The raft peer transport, behind raft's raft_uv_transport interface so the
 * encrypted transport can replace plain TCP without touching consensus.c.
 */
#ifndef VC_AGENT_TRANSPORT_H
#define VC_AGENT_TRANSPORT_H

#include <raft/uv.h>
#include <uv.h>

/* Initializes t for use by raft_uv_init(). Returns 0 or a raft error. */
int transport_init(struct raft_uv_transport *t, uv_loop_t *loop);

/* Releases t once raft_uv has been closed. */
void transport_close(struct raft_uv_transport *t);

#endif
