/* Signing client requests (proto/envelope.h), shared by the agent (its
 * forwarded requests) and the CLI. */
#ifndef VC_AGENT_SIGN_H
#define VC_AGENT_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/mp.h"
#include "keys.h"

/* Wraps the plain request frame frame[0..len) (header included) into a
 * signed envelope frame appended to out, stamped wall_ms with a random
 * nonce. 0 or VC_ENOMEM / VC_ETOOBIG / VC_EINVAL. */
int sign_request(const struct keys_pair *kp, uint64_t wall_ms,
                 const void *frame, size_t len, struct mp_buf *out);

/* --- sessions (proto/envelope.h) ---------------------------------------- */

#define SIGN_SESSION_KEY 32

/* A fresh ephemeral X25519 pair (sk: wipe it once the key is derived). */
void sign_session_keypair(uint8_t pk[32], uint8_t sk[32]);

/* The session key both ends derive: BLAKE2b-256 keyed by the X25519
 * secret of (my_sk, their_pk), over "VCSESSv1" | client static key |
 * client ephemeral key | agent ephemeral key, so it is bound to the key
 * that signed the session request and fresh on both sides. 0, or -1 if
 * their_pk is a low-order point. */
int sign_session_derive(const uint8_t my_sk[32], const uint8_t their_pk[32],
                        const uint8_t client_pk[32],
                        const uint8_t client_eph[32],
                        const uint8_t agent_eph[32],
                        uint8_t key[SIGN_SESSION_KEY]);

/* mac = keyed BLAKE2b-128 of prefix(seq) | payload. */
void sign_session_mac(const uint8_t key[SIGN_SESSION_KEY], uint64_t seq,
                      const void *payload, size_t len, uint8_t mac[16]);

/* Wraps the plain request frame frame[0..len) (header included) into a
 * session frame with seq, appended to out. 0 or VC_ENOMEM / VC_ETOOBIG /
 * VC_EINVAL. */
int sign_session_request(const uint8_t key[SIGN_SESSION_KEY], uint64_t seq,
                         const void *frame, size_t len, struct mp_buf *out);

/* Wall-clock milliseconds since the epoch. */
uint64_t sign_wall_ms(void);

#endif
