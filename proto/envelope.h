/* Signed client requests (docs/protocol.md, "Client authentication").
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

#endif
