/* Fuzz target: client request frames (proto_request_decode), the bytes an
 * agent reads from any client before authentication of the command.
 *
 * Also the 4-byte frame header (proto_frame_len). What decodes must
 * re-encode (proto_request_encode), and decode -> encode is a fixed point.
 */
#include <msgpack.h>
#include <string.h>

#include "fuzz.h"
#include "proto/err.h"
#include "proto/frame.h"

static void encode(const struct proto_request *req, struct mp_buf *b)
{
    char err[256];
    mp_buf_init(b);
    FUZZ_CHECK(proto_request_encode(req, b, err, sizeof err) == 0,
               "decoded request does not encode: %s", err);
    FUZZ_CHECK(b->len > PROTO_FRAME_HDR, "empty frame");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proto_request req, req2;
    msgpack_zone zone, zone2;
    struct mp_buf b1, b2;
    char err[256];
    uint32_t len;
    if (size >= PROTO_FRAME_HDR) {
        int rv = proto_frame_len(data, &len);
        FUZZ_CHECK(rv == 0 ? len >= 1 && len <= PROTO_FRAME_MAX
                           : rv == VC_ETOOBIG,
                   "frame length %u, rv %d", len, rv);
    }
    if (!msgpack_zone_init(&zone, 1024))
        return 0;
    err[0] = '\0';
    if (proto_request_decode(data, size, &zone, &req, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        msgpack_zone_destroy(&zone);
        return 0;
    }
    encode(&req, &b1);
    FUZZ_CHECK(msgpack_zone_init(&zone2, 1024), "zone");
    FUZZ_CHECK(proto_frame_len((uint8_t *)b1.data, &len) == 0 &&
                   len == b1.len - PROTO_FRAME_HDR,
               "frame header");
    FUZZ_CHECK(proto_request_decode(b1.data + PROTO_FRAME_HDR, len, &zone2,
                                    &req2, err, sizeof err) == 0,
               "re-decode: %s", err);
    FUZZ_CHECK(req2.seq == req.seq && req2.op == req.op &&
                   req2.flags == req.flags &&
                   req2.timeout_ms == req.timeout_ms,
               "header changed");
    encode(&req2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
    return 0;
}
