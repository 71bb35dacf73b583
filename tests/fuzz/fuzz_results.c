/* Fuzz target: result batches (proto_results_decode). */
#include <msgpack.h>
#include <string.h>

#include "fuzz.h"
#include "proto/cmd.h"

#define MAX_RESULTS 64

static void encode(const struct proto_result *r, size_t n, struct mp_buf *b)
{
    mp_buf_init(b);
    FUZZ_CHECK(proto_results_encode(r, n, b) == 0, "encode of %zu", n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proto_result r[MAX_RESULTS], r2[MAX_RESULTS];
    msgpack_zone zone;
    struct mp_buf b1, b2;
    size_t n, n2;
    if (!msgpack_zone_init(&zone, 1024))
        return 0;
    if (proto_results_decode(data, size, &zone, r, MAX_RESULTS, &n) != 0) {
        msgpack_zone_destroy(&zone);
        return 0;
    }
    FUZZ_CHECK(n <= MAX_RESULTS, "%zu results", n);
    /* What decodes re-encodes, decodes to the same results, and encoding
     * again gives the same bytes. */
    encode(r, n, &b1);
    msgpack_zone_clear(&zone);
    FUZZ_CHECK(proto_results_decode(b1.data, b1.len, &zone, r2, MAX_RESULTS,
                                    &n2) == 0 && n2 == n,
               "re-decode");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(r[i].code == r2[i].code && r[i].vlan == r2[i].vlan &&
                       r[i].gen == r2[i].gen && !strcmp(r[i].msg, r2[i].msg),
                   "result %zu changed", i);
    encode(r2, n2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone);
    return 0;
}
