/* The /metrics endpoint: an HTTP server (libmicrohttpd) driven by the
 * agent's libuv loop, so rendering reads the agent's state on the loop
 * thread without locks.
 *
 * One server per process (static state). GET or HEAD /metrics answers
 * the Prometheus text (agent/metrics.c); other paths 404, other methods
 * 405.
 */
#ifndef VC_AGENT_METRICS_HTTP_H
#define VC_AGENT_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>

struct agent;

/* Listens on addr ("IP:PORT" / "[v6]:PORT", already validated by
 * config.c). Returns 0, or a negative code with errmsg naming the
 * address. */
int metrics_http_start(struct agent *a, const char *addr, char *errmsg,
                       size_t errlen);

/* Stops listening and closes every connection; a no-op if not started.
 * Safe to call twice. */
void metrics_http_stop(void);

#endif
