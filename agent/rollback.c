/* Rollback of cluster creations that could not be applied in time.
 *
 * The leader alone decides, with its clock, and only proposes: a
 * cluster-rollback command carrying the leader's time (stamped like every
 * command) and its apply-deadline. Every replica then applies the same
 * deterministic check (fsm.c: not ready since its creation, not kept on
 * failure, time - created >= deadline) and releases the cluster
 * everywhere, or refuses if a report made it ready meanwhile. Followers
 * never act on their own clocks.
 */
#include "rollback.h"

#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"

#define ROLLBACK_CHECK_MS 1000
#define ROLLBACK_INFLIGHT_MAX 64

static unsigned inflight;
static uint64_t last_check_ms;

static void rollback_done(struct request *r, int code,
                          const struct proto_result *res)
{
    (void)r;
    inflight--;
    if (code == 0)
        log_warn("%s", res ? res->msg : "cluster rolled back");
    else if (code != VC_ESTATE && code != VC_ENOTFOUND)
        log_error("rollback: %s", res ? res->msg : vc_strerror(code));
}

static void propose(struct agent *a, const struct fsm_cluster *c)
{
    struct proto_cmd cmd;
    proto_cmd_init(&cmd, PROTO_CMD_CLUSTER_ROLLBACK);
    cmd.name = mp_cstr(c->name);
    cmd.lease_ms = a->cfg.apply_deadline_ms;
    inflight++;
    request_internal(a, &cmd, rollback_done, a);
}

void rollback_tick(struct agent *a, uint64_t now)
{
    uint64_t deadline = a->cfg.apply_deadline_ms;
    if (!deadline || inflight || now - last_check_ms < ROLLBACK_CHECK_MS ||
        !consensus_is_leader(&a->cons))
        return;
    last_check_ms = now;
    uint64_t wall = agent_wall_ms(a);
    for (uint32_t i = 0; i < a->fsm.nclusters; i++) {
        const struct fsm_cluster *c = &a->fsm.clusters[i];
        if (!c->live || c->settled || c->keep || c->state != FSM_PENDING ||
            wall < c->created_ms || wall - c->created_ms < deadline)
            continue;
        propose(a, c);
        if (inflight >= ROLLBACK_INFLIGHT_MAX)
            break;
    }
}
