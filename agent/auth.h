/* Client authentication and authorisation, and this site's key.
 *
 * Every request frame that reaches api.c passes auth_request_decode():
 * - a signed frame (proto/envelope.h) is decoded, its time checked against
 *   this agent's clock (AUTH_SKEW_MS either way), its signature verified,
 *   its key mapped to an identity (a role binding in the replicated state,
 *   or an accepted site key: another agent forwarding), and only then its
 *   nonce checked against the replay cache (so garbage cannot fill it);
 * - a session frame (proto/envelope.h, version 3) is accepted only on a
 *   connection where a signed PROTO_OP_SESSION opened a session, with the
 *   next sequence number and a valid MAC; its identity is that of the key
 *   that signed the session, looked up again for every request (a role
 *   removed mid-session takes effect at once). A bad MAC or sequence
 *   number is answered and the connection closed;
 * - an unsigned frame on another agent's forwarding channel (conn->site
 *   set: the secure channel proved the site's key) is that site's;
 * - an unsigned frame is accepted only if client authentication is off,
 *   or from root on the local Unix socket (SO_PEERCRED), as admin;
 * - the identity's role must allow the operation (auth.c, authorize());
 * - the committed command's origin becomes "role:name" (a forwarding agent
 *   keeps the origin the first agent set).
 * Refusals are VC_EDENIED (VC_EUNAVAILABLE if the replay cache is full)
 * with a message that names the key and the reason.
 *
 * Forwarded requests leave unsigned: over the secure channel (which
 * authenticates them) when this agent has a key, else over plain TCP.
 * auth_request_encode() signs the joining site's JOIN with its key.
 */
#ifndef VC_AGENT_AUTH_H
#define VC_AGENT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/frame.h"

struct agent;
struct conn;

#define AUTH_SKEW_MS 30000 /* accepted client clock offset, either way */
/* Nonces are remembered for 2 * AUTH_SKEW_MS, in two generations of
 * AUTH_NONCE_SLOTS slots each (filled at most 3/4): at most
 * 3/4 * AUTH_NONCE_SLOTS signed requests per 2 * AUTH_SKEW_MS. */
#define AUTH_NONCE_SLOTS (1u << 21)

/* Loads this site's key (if configured), resolves client-auth, hooks the
 * transport to the replicated keys. 0 or negative with errmsg. */
int auth_start(struct agent *a, char *errmsg, size_t errlen);
void auth_close(struct agent *a);

/* Decodes, authenticates and authorises the frame body data[0..len) that
 * arrived on c into req (strings borrow from data, zone and the auth
 * state, valid until the next call). Returns 0, or a negative code with
 * errmsg; req->seq is set whenever it could be read. */
int auth_request_decode(struct conn *c, const void *data, size_t len,
                        msgpack_zone *zone, struct proto_request *req,
                        char *errmsg, size_t errlen);

/* Answers a PROTO_OP_SESSION that auth_request_decode() accepted on c:
 * derives the session key and replies with this agent's ephemeral key.
 * Returns the code answered. */
int auth_session_open(struct conn *c, const struct proto_request *req);

/* Appends req as a frame for another agent's client API (join.c): signed
 * with this site's key if it has one, else plain. Same returns as
 * proto_request_encode(). */
int auth_request_encode(struct agent *a, const struct proto_request *req,
                        struct mp_buf *out, char *errmsg, size_t errlen);

/* This site's public key (32 bytes), NULL without a key. */
const uint8_t *auth_site_pk(const struct agent *a);

/* Apply hook: closes peer connections whose key the command revoked and
 * drives a key rotation in progress. */
void auth_on_apply(struct agent *a, const struct proto_cmd *cmd,
                   const struct proto_result *r);

/* Loop tick: key rotation steps. */
void auth_tick(struct agent *a, uint64_t now);

/* A joining site's site-add: its key and (joining with a token) the
 * token's secret, which the receiving agent replaces by its hash. The
 * bytes live in the auth state. */
void auth_join_fill(struct agent *a, struct proto_cmd *cmd);

#endif
