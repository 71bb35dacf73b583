/* The agent in host role: no raft, no state machine. It subscribes to its
 * host's desired state at its site agent (the watch stream,
 * proto/watch.h), applies it with the host driver and reports the results
 * back.
 */
#ifndef VC_AGENT_HOSTROLE_H
#define VC_AGENT_HOSTROLE_H

#include "config.h"

/* Runs the host agent until SIGTERM/SIGINT. Returns the process exit
 * status: 0 after a signal, 1 if it could not start, 2 for a driver
 * configuration error. cfg is borrowed for the whole run. */
int hostrole_run(const struct config *cfg);

#endif
