/* Fuzz target: signed client request envelopes (proto_envelope_decode)
 * and session frames (proto_session_decode), which every agent reads from
 * any client before it checks a signature or a MAC.
 *
 * What decodes has fields of the fixed sizes, is recognised as an
 * envelope by its first bytes, re-encodes into a frame whose body
 * decodes to the same fields, and re-encoding is a fixed point.
 */
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "proto/envelope.h"
#include "proto/err.h"

#define FRAME_HEADER 4

static bool same(const struct proto_envelope *a, const struct proto_envelope *b)
{
    return a->payload_len == b->payload_len && a->time_ms == b->time_ms &&
           !memcmp(a->payload, b->payload, a->payload_len) &&
           !memcmp(a->key, b->key, PROTO_ENVELOPE_KEY) &&
           !memcmp(a->nonce, b->nonce, PROTO_ENVELOPE_NONCE) &&
           !memcmp(a->sig, b->sig, PROTO_ENVELOPE_SIG);
}

/* True if o is a bin of exactly n bytes (n = SIZE_MAX: any size). */
static bool bin_of(const msgpack_object *o, size_t n)
{
    return o->type == MSGPACK_OBJECT_BIN &&
           (n == SIZE_MAX || o->via.bin.size == n);
}

/* An oracle independent of proto/envelope.c: what it accepted is, read
 * by msgpack-c, a 6-array whose fields have exactly the fixed sizes. */
static void check_layout(const uint8_t *data, size_t size,
                         const struct proto_envelope *e)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    FUZZ_CHECK(msgpack_unpack_next(&u, (const char *)data, size, &off) ==
                   MSGPACK_UNPACK_SUCCESS,
               "accepted bytes msgpack-c cannot read");
    const msgpack_object *o = &u.data;
    FUZZ_CHECK(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 6,
               "accepted something other than a 6-array");
    const msgpack_object *f = o->via.array.ptr;
    FUZZ_CHECK(bin_of(&f[1], e->payload_len) &&
                   bin_of(&f[2], PROTO_ENVELOPE_KEY) &&
                   bin_of(&f[4], PROTO_ENVELOPE_NONCE) &&
                   bin_of(&f[5], PROTO_ENVELOPE_SIG),
               "accepted a field of the wrong type or size");
    msgpack_unpacked_destroy(&u);
}

static void encode(const struct proto_envelope *e, struct mp_buf *b)
{
    mp_buf_init(b);
    FUZZ_CHECK(proto_envelope_encode(e, b) == 0 && !b->oom &&
                   b->len > FRAME_HEADER,
               "a decoded envelope does not encode");
}

/* Session frames: what decodes is, read by msgpack-c, a 4-array with a
 * bin payload of the length returned, a uint seq >= 1 and a 16-byte mac;
 * it re-encodes to the very same bytes' meaning (fixed point). */
static void session(const uint8_t *data, size_t size)
{
    struct proto_session_frame f, f2;
    msgpack_zone zone, zone2;
    msgpack_unpacked u;
    struct mp_buf b1, b2;
    size_t off = 0;
    char err[256] = "";
    if (!msgpack_zone_init(&zone, 1024))
        return;
    int rv = proto_session_decode(data, size, &zone, &f, err, sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(err[0] != '\0', "session: refused without a message");
        FUZZ_CHECK(rv == VC_EMALFORMED || rv == VC_EVERSION,
                   "session: unexpected code %d", rv);
        msgpack_zone_destroy(&zone);
        return;
    }
    FUZZ_CHECK(proto_session_is(data, size), "session: not recognised");
    msgpack_unpacked_init(&u);
    FUZZ_CHECK(msgpack_unpack_next(&u, (const char *)data, size, &off) ==
                   MSGPACK_UNPACK_SUCCESS,
               "session: accepted bytes msgpack-c cannot read");
    const msgpack_object *o = &u.data;
    FUZZ_CHECK(o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4,
               "session: accepted something other than a 4-array");
    const msgpack_object *a = o->via.array.ptr;
    FUZZ_CHECK(bin_of(&a[1], f.payload_len) &&
                   a[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                   a[2].via.u64 == f.seq && f.seq >= 1 &&
                   bin_of(&a[3], PROTO_SESSION_MAC),
               "session: accepted a field of the wrong type or size");
    msgpack_unpacked_destroy(&u);
    mp_buf_init(&b1);
    FUZZ_CHECK(proto_session_encode(&f, &b1) == 0 && !b1.oom,
               "session: a decoded frame does not encode");
    FUZZ_CHECK(msgpack_zone_init(&zone2, 1024), "zone");
    FUZZ_CHECK(proto_session_decode(b1.data + FRAME_HEADER,
                                    b1.len - FRAME_HEADER, &zone2, &f2, err,
                                    sizeof err) == 0,
               "session: re-decode: %s", err);
    FUZZ_CHECK(f.seq == f2.seq && f.payload_len == f2.payload_len &&
                   !memcmp(f.payload, f2.payload, f.payload_len) &&
                   !memcmp(f.mac, f2.mac, PROTO_SESSION_MAC),
               "session: frame changed");
    mp_buf_init(&b2);
    FUZZ_CHECK(proto_session_encode(&f2, &b2) == 0 && b1.len == b2.len &&
                   !memcmp(b1.data, b2.data, b1.len),
               "session: re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_envelope e, e2;
    msgpack_zone zone, zone2;
    struct mp_buf b1, b2;
    char err[256] = "";
    session(data, size);
    if (!msgpack_zone_init(&zone, 1024))
        return 0;
    int rv = proto_envelope_decode(data, size, &zone, &e, err, sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(rv == VC_EMALFORMED || rv == VC_EVERSION,
                   "unexpected code %d", rv);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    FUZZ_CHECK(proto_envelope_is(data, size), "decoded but not recognised");
    check_layout(data, size, &e);
    FUZZ_CHECK(e.key && e.nonce && e.sig && (e.payload || !e.payload_len),
               "missing field");
    encode(&e, &b1);
    FUZZ_CHECK(msgpack_zone_init(&zone2, 1024), "zone");
    FUZZ_CHECK(proto_envelope_decode(b1.data + FRAME_HEADER,
                                     b1.len - FRAME_HEADER, &zone2, &e2, err,
                                     sizeof err) == 0,
               "re-decode: %s", err);
    FUZZ_CHECK(same(&e, &e2), "envelope changed");
    encode(&e2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
    return 0;
}
