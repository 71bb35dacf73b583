/* Fuzz target: response frames (proto_response_decode), what the client
 * library and a forwarding agent read from another agent; the payload of
 * an answer to a write goes through proto_result_unpack() as in
 * request_relay().
 *
 * What decodes must re-encode (proto_response_begin/finish with the
 * payload packed back), and decode -> encode is a fixed point.
 */
#include <msgpack.h>
#include <string.h>

#include "fuzz.h"
#include "proto/err.h"
#include "proto/frame.h"

static void encode(const struct proto_response *resp, struct mp_buf *b)
{
    static char msg[4097], leader[VC_NAME_MAX + 1];
    msgpack_packer pk;
    size_t start;
    /* The encoder takes C strings: a NUL inside cuts the text there. */
    FUZZ_CHECK(mp_str_copy(resp->msg, msg, sizeof msg) == 0, "msg");
    FUZZ_CHECK(mp_str_copy(resp->leader, leader, sizeof leader) == 0,
               "leader");
    mp_buf_init(b);
    proto_response_begin(&pk, b, &start, resp->seq, resp->code, msg, leader);
    msgpack_pack_object(&pk, resp->payload);
    FUZZ_CHECK(proto_response_finish(b, start) == 0, "finish");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_response resp, resp2;
    struct proto_result res;
    msgpack_zone zone, zone2;
    struct mp_buf b1, b2;
    if (!msgpack_zone_init(&zone, 1024))
        return 0;
    if (proto_response_decode(data, size, &zone, &resp) != 0) {
        msgpack_zone_destroy(&zone);
        return 0;
    }
    if (proto_result_unpack(&resp.payload, &res) == 0)
        FUZZ_CHECK(res.code <= 0 && strlen(res.msg) <= VC_MSG_MAX, "result");
    encode(&resp, &b1);
    FUZZ_CHECK(msgpack_zone_init(&zone2, 1024), "zone");
    FUZZ_CHECK(proto_response_decode(b1.data + PROTO_FRAME_HDR,
                                     b1.len - PROTO_FRAME_HDR, &zone2,
                                     &resp2) == 0,
               "re-encoded response does not decode");
    FUZZ_CHECK(resp2.seq == resp.seq && resp2.code == resp.code, "header");
    encode(&resp2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
    return 0;
}
