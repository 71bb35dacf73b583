/* Request authentication for long-running clients (client_session.c):
 * one process-wide key; a session per connection. */
#ifndef VC_TOOLS_CLIENT_SESSION_H
#define VC_TOOLS_CLIENT_SESSION_H

#include <stdint.h>

#include "tools/client.h"

/* One connection's session: key and the seq of its next request. */
struct client_session {
    uint8_t key[32];
    uint64_t seq;
};

/* Loads the private key at path; from now on requests are signed (all of
 * them, unless a connection opens a session). 0, or -1 after printing
 * why. */
int client_key_setup(const char *path);

/* If a key was set up: opens a session on the fresh connection cl (one
 * signed request, one answer, blocking until deadline) and makes cl MAC
 * its requests with s (borrowed until cl is closed). 0, or a negative
 * code with err. Without a key: 0, nothing done. */
int client_session_open(struct client *cl, struct client_session *s,
                       uint64_t deadline, char *err, size_t errlen);

#endif
