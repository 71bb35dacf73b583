/* The "what is wrong" part of the STATUS answer (docs/protocol.md,
 * "status"): how many clusters there are and which are not ready, with the
 * sites where each is pending, failed or still removing, so that an
 * operator sees during an outage which clusters wait on which sites.
 * Pure: reads the state machine only.
 */
#ifndef VC_AGENT_VIEW_HEALTH_H
#define VC_AGENT_VIEW_HEALTH_H

#include <msgpack.h>

#include "fsm.h"

#define VIEW_HEALTH_KEYS 3  /* key/value pairs view_health() packs */
#define VIEW_HEALTH_MAX 100 /* not-ready clusters listed (by name) */

/* Packs VIEW_HEALTH_KEYS pairs into the caller's open map:
 *   "clusters": live clusters,
 *   "not_ready_total": how many are not ready (pending or releasing),
 *   "not_ready": the first VIEW_HEALTH_MAX of them by name, each
 *     {name, vlan, state, pending: [site], failed: ["site: error"],
 *      removing: [site]}.
 * Returns 0 or VC_ENOMEM (then an empty list is packed, the map stays
 * well-formed). */
int view_health(msgpack_packer *pk, const struct fsm *f);

#endif
