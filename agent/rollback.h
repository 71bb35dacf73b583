/* Leader duty: propose the rollback of cluster creations not applied at
 * every site within apply-deadline (rollback.c). */
#ifndef VC_AGENT_ROLLBACK_H
#define VC_AGENT_ROLLBACK_H

#include <stdint.h>

struct agent;

/* Called from the agent's tick; proposes at most once a second, and only
 * on the leader. */
void rollback_tick(struct agent *a, uint64_t now);

#endif
