/* Site side of the watch stream (proto/watch.h): host agents subscribe to
 * the desired state of their host, the site agent streams it, and keeps
 * what each host reports so the reconciler can aggregate host results
 * into the site's apply report.
 *
 * Owned by struct reconcile (reconcile.c). Every function runs on the
 * loop thread.
 */
#ifndef VC_AGENT_WATCH_H
#define VC_AGENT_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/frame.h"

struct agent;
struct conn;
struct fsm_cluster;
struct fsm_slot;

#define WATCH_HOSTS_MAX 4096        /* host records per site agent */
#define WATCH_QUEUE_MAX (8u << 20)  /* bytes unsent to one watcher */

enum watch_verdict {
    WATCH_DONE = 0, /* every host involved confirmed */
    WATCH_WAIT = 1, /* some host has not (yet) */
    WATCH_FAIL = 2, /* some host reported an error (text filled) */
};

struct watch;

/* Allocates the watch state of agent a. 0 or VC_ENOMEM. */
int watch_init(struct watch **out, struct agent *a);
/* Drops every subscription (connections are closed by api.c) and frees
 * w. NULL is a no-op. */
void watch_free(struct watch *w);

/* A PROTO_OP_WATCH request arrived on c (req borrowed for the call). */
void watch_on_request(struct watch *w, struct conn *c,
                      const struct proto_request *req);
/* Connection c closes: its subscriptions end. */
void watch_conn_closed(struct watch *w, struct conn *c);

/* The state machine changed: recompute the subscribed hosts' states at
 * the next watch_tick(). */
void watch_kick(struct watch *w);
/* Sends the changed states. Returns true if a host report arrived since
 * the last call (the reconciler should settle). */
bool watch_tick(struct watch *w);

/* Host aggregation for cluster c's slot sl at this site (site index s):
 * for a slot in place, whether every host that carries the cluster here
 * (service hosts and hosts with an attachment) applied generation
 * sl->gen; for a slot being removed, whether every host at the site
 * removed it. On WATCH_FAIL, text says which host and why. */
int watch_verdict(struct watch *w, const struct fsm_cluster *c,
                  const struct fsm_slot *sl, unsigned s, char *text,
                  size_t len);

/* Packs the per-host status of this site's hosts as a msgpack array of
 * maps {host, connected, version, ok, error, missing, vlans}. */
void watch_pack_status(struct watch *w, msgpack_packer *pk);

#endif
