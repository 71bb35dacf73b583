/* Running as a systemd service: sd_notify readiness, status, watchdog and
 * stopping; SIGHUP reload of the live configuration keys; the /metrics
 * server's life cycle; the run-time log level (PROTO_OP_LOGLEVEL).
 *
 * Without NOTIFY_SOCKET every sd_notify() is a no-op, so the agent runs
 * the same under systemd, a launcher or a test.
 */
#ifndef VC_AGENT_SERVICE_H
#define VC_AGENT_SERVICE_H

#include <stddef.h>

struct agent;
struct conn;
struct proto_request;

/* Called once raft has loaded its log and the client API listens:
 * starts /metrics (unless "off"), the SIGHUP handler and the status and
 * watchdog timers, then tells systemd READY=1. argv is borrowed for the
 * life of the process (re-read on reload). Returns 0, or a negative code
 * with errmsg (the agent then exits). */
int service_start(struct agent *a, int argc, char **argv, char *errmsg,
                  size_t errlen);

/* Shutdown began: STOPPING=1, stop /metrics and reloads. The watchdog
 * keeps beating until the loop ends (a hand-over can take seconds). */
void service_stopping(struct agent *a);

/* Answers a PROTO_OP_LOGLEVEL request on c: sets the level if the body
 * names one, and replies with the level before and after. Returns the
 * code answered (0 or VC_EINVAL). */
int service_log_level(struct agent *a, struct conn *c,
                       const struct proto_request *req);

#endif
