/* virtcloud status: every member asked directly (tools/cmd_status.c).
 *
 * In an outage the answering agent's view is not enough: it may not reach
 * a site the operator can, and only a site itself knows how far it has
 * applied the log. So the CLI asks each member's client API for its own
 * status (stale read, one thread per member, all within one short budget)
 * and lists, per site: whether it answered, its role, the leader it
 * follows, its applied index and how far that is behind the highest
 * commit index seen ("behind"), or why it did not answer.
 */
#ifndef VC_TOOLS_STATUS_SITES_H
#define VC_TOOLS_STATUS_SITES_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

struct status_sites {
    msgpack_sbuffer sb;   /* doc's strings point into it */
    msgpack_zone zone;    /* owns doc */
    msgpack_object doc;   /* array of {site, answers, role, leader, applied,
                             commit, behind, error} */
    bool zone_live;
};

/* Probes the members of status (the agent's STATUS payload: "members"
 * with "site" and "api", and "commit") within budget_ms, through
 * client_request() (so with the process's sealer). Fills out; returns 0
 * or VC_ENOMEM. Close out with status_sites_close() either way. */
int status_sites_probe(const msgpack_object *status, uint32_t budget_ms,
                       struct status_sites *out);

void status_sites_close(struct status_sites *s);

#endif
