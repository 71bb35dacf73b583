/* Fuzz target: watch stream messages (proto_watch_decode), which a site
 * agent reads from host agents and a host agent from its site agent.
 *
 * What decodes must validate and re-encode, re-encoding is a fixed point,
 * and the digest of a decoded state does not depend on the zone it was
 * decoded into.
 */
#include <msgpack.h>
#include <string.h>

#include "fuzz.h"
#include "proto/err.h"
#include "proto/watch.h"

static void encode(const struct proto_watch *w, struct mp_buf *b)
{
    msgpack_packer pk;
    char err[256];
    FUZZ_CHECK(proto_watch_validate(w, err, sizeof err) == 0,
               "decoded message does not validate: %s", err);
    mp_buf_init(b);
    mp_packer_init(&pk, b);
    proto_watch_pack(&pk, w);
    FUZZ_CHECK(!b->oom && b->len > 0, "empty encoding");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_watch w, w2;
    msgpack_zone zone, zone2;
    struct mp_buf b1, b2;
    char err[256];
    if (!msgpack_zone_init(&zone, 1024))
        return 0;
    err[0] = '\0';
    int rv = proto_watch_decode(data, size, &zone, &w, err, sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(rv == VC_EMALFORMED || rv == VC_EINVAL || rv == VC_ENOMEM,
                   "unexpected code %d", rv);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    encode(&w, &b1);
    FUZZ_CHECK(msgpack_zone_init(&zone2, 1024), "zone");
    FUZZ_CHECK(proto_watch_decode(b1.data, b1.len, &zone2, &w2, err,
                                  sizeof err) == 0,
               "re-decode: %s", err);
    FUZZ_CHECK(w2.kind == w.kind && w2.version == w.version &&
                   w2.nentries == w.nentries && w2.nremoved == w.nremoved,
               "message changed");
    FUZZ_CHECK(proto_watch_digest(w.trunk, w.complete, w.entries,
                                  w.nentries) ==
                   proto_watch_digest(w2.trunk, w2.complete, w2.entries,
                                      w2.nentries),
               "digest changed");
    encode(&w2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone2);
    msgpack_zone_destroy(&zone);
    return 0;
}
