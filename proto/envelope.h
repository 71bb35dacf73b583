/* Signed client requests and session frames (docs/protocol.md, "Client
 * authentication"; docs/security.md).
 *
 * A signed request frame is the usual 4-byte length followed by
 *   [2, payload, key, time_ms, nonce, sig]
 * payload  bin: the body of a plain (version 1) request frame, unchanged
 * key      bin 32: the client's Ed25519 public key
 * time_ms  uint: the client's clock, ms since the epoch
 * nonce    bin 16: random, never reused by the client
 * sig      bin 64: Ed25519 signature by key over
 *          "VCREQv1\0" | time_ms (8 bytes, big-endian) | nonce | payload
 * A plain request body starts with 0x96 0x01 (array of 6, version 1), a
 * signed one with 0x96 0x02, so the agent tells them apart from two bytes.
 *
 * Pure encode/decode: no crypto here (the signer and the verifier hold the
 * keys: agent/auth.c, tools/client_sign.c). The decoder is bounded and
 * total; everything it returns borrows from the frame.
 */
#ifndef VC_PROTO_ENVELOPE_H
#define VC_PROTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"

#define PROTO_ENVELOPE_VERSION 2
#define PROTO_ENVELOPE_KEY 32
#define PROTO_ENVELOPE_NONCE 16
#define PROTO_ENVELOPE_SIG 64
#define PROTO_ENVELOPE_LABEL "VCREQv1" /* 8 bytes with its NUL */
#define PROTO_ENVELOPE_PREFIX (8 + 8 + PROTO_ENVELOPE_NONCE)

struct proto_envelope {
    const uint8_t *payload; /* a version 1 request body */
    size_t payload_len;
    const uint8_t *key;   /* PROTO_ENVELOPE_KEY bytes */
    uint64_t time_ms;
    const uint8_t *nonce; /* PROTO_ENVELOPE_NONCE bytes */
    const uint8_t *sig;   /* PROTO_ENVELOPE_SIG bytes */
};

/* True if the frame body data[0..len) is a signed envelope (by its first
 * two bytes; it may still fail to decode). */
bool proto_envelope_is(const void *data, size_t len);

/* Decodes a signed envelope body (no frame header). Returns 0,
 * VC_EMALFORMED or VC_EVERSION with errmsg. */
int proto_envelope_decode(const void *data, size_t len, msgpack_zone *zone,
                          struct proto_envelope *env, char *errmsg,
                          size_t errlen);

/* The 32-byte prefix of the signed message (label, time, nonce): the
 * signed message is this followed by the payload. */
void proto_envelope_prefix(uint64_t time_ms, const uint8_t *nonce,
                           uint8_t out[PROTO_ENVELOPE_PREFIX]);

/* Appends a frame (header + envelope) to out. env fields borrowed.
 * Returns 0, VC_ETOOBIG or VC_ENOMEM. */
int proto_envelope_encode(const struct proto_envelope *env,
                          struct mp_buf *out);

/* --- sessions ------------------------------------------------------------
 * An Ed25519 verification costs ~95 us here, more than all the rest of a
 * request's path, so a client that sends many requests on one connection
 * signs once: a signed PROTO_OP_SESSION request (an envelope as above,
 * checked like any other: time, signature, nonce) carries the client's
 * ephemeral X25519 key, the answer the agent's, and both sides derive a
 * session key (agent/sign.h). Every later request on that connection is
 *   [3, payload, seq, mac]
 * payload  bin: the body of a plain (version 1) request frame, unchanged
 * seq      uint: 1 for the first request after the session opened, then
 *          exactly one more each time (a replayed, dropped or reordered
 *          frame is refused)
 * mac      bin 16: keyed BLAKE2b-128 (the session key) over
 *          "VCREQv3\0" | seq (8 bytes, big-endian) | payload
 * It starts with 0x94 0x03. */
#define PROTO_SESSION_VERSION 3
#define PROTO_SESSION_MAC 16
#define PROTO_SESSION_LABEL "VCREQv3" /* 8 bytes with its NUL */
#define PROTO_SESSION_PREFIX (8 + 8)

struct proto_session_frame {
    const uint8_t *payload; /* a version 1 request body */
    size_t payload_len;
    uint64_t seq;
    const uint8_t *mac; /* PROTO_SESSION_MAC bytes */
};

/* True if the frame body data[0..len) is a session frame (first two
 * bytes). */
bool proto_session_is(const void *data, size_t len);

/* Decodes a session frame body. 0, VC_EMALFORMED or VC_EVERSION with
 * errmsg; everything borrows from data. */
int proto_session_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_session_frame *sf, char *errmsg,
                         size_t errlen);

/* The 16-byte prefix of the MAC'd message (label, seq). */
void proto_session_prefix(uint64_t seq, uint8_t out[PROTO_SESSION_PREFIX]);

/* Appends a frame (header + session frame) to out. 0, VC_ETOOBIG or
 * VC_ENOMEM. */
int proto_session_encode(const struct proto_session_frame *sf,
                         struct mp_buf *out);

#endif
