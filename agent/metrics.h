/* Metrics: counters and histograms that the agent's modules bump with one
 * small call each, and the rendering of everything (plus gauges read from
 * the agent's state at scrape time) in the Prometheus text exposition
 * format 0.0.4 for GET /metrics (agent/metrics_http.c).
 *
 * One registry per process, in static storage: the agent is one process
 * with one loop, and a counter bump must not need the agent at hand (the
 * reconciler's worker result, the request path). Not thread-safe: call
 * from the loop thread only. docs/metrics.md lists every series.
 */
#ifndef VC_AGENT_METRICS_H
#define VC_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent;

/* A client request of op (enum proto_op; cmd_type for PROTO_OP_SUBMIT,
 * else ignored) finished with code (0 or negative) after ns nanoseconds
 * in this agent. */
void metrics_request_done(int op, int cmd_type, int code, uint64_t ns);

/* A reconcile pass took ns nanoseconds on the worker and its result. */
void metrics_reconcile_done(uint64_t ns, bool ok);

/* A driver call failed; driver is the class name ("linuxbridge"),
 * borrowed. At most 16 distinct names are kept; more go to "other". */
void metrics_driver_error(const char *driver);

/* VLAN changes a timed drift-repair pass made, and VLANs a report-mode
 * pass found differing. */
void metrics_drift_repaired(unsigned changes);
void metrics_drift_reported(unsigned vlans);

/* Renders all metrics. Returns malloc'd text (caller frees) and *len, or
 * NULL if memory ran out. */
char *metrics_render(struct agent *a, size_t *len);

/* Forgets every counter (unit tests). */
void metrics_reset(void);

#endif
