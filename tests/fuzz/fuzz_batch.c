/* Fuzz target: raft log entries, the way consensus.c's apply callback
 * takes them.
 *
 * proto_batch_decode() an entry; what decodes must re-encode
 * (proto_batch_encode()) to bytes that decode to the same commands, and
 * encoding those again is a fixed point. Then apply each command to a
 * state machine holding the baseline state (fuzz_state.c), checking the
 * invariants after each, and require snapshot -> restore -> snapshot to
 * reproduce the bytes: every state the log can reach must restore.
 */
#include <msgpack.h>
#include <string.h>

#include "agent/fsm.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "proto/cmd.h"
#include "proto/err.h"
#include "tests/sim/check.h"

#define MAX_CMDS 256

static void encode(const struct proto_cmd *c, size_t n, struct mp_buf *b)
{
    char err[256];
    mp_buf_init(b);
    FUZZ_CHECK(proto_batch_encode(c, n, b, err, sizeof err) == 0,
               "decoded batch does not encode: %s", err);
    FUZZ_CHECK(b->len % 8 == 0, "entry of %zu bytes is not padded", b->len);
}

static void round_trip(const struct proto_cmd *cmds, size_t n,
                       struct proto_cmd *again)
{
    msgpack_zone zone;
    struct mp_buf b1, b2;
    size_t n2;
    char err[256];
    FUZZ_CHECK(msgpack_zone_init(&zone, 4096), "zone");
    encode(cmds, n, &b1);
    FUZZ_CHECK(proto_batch_decode(b1.data, b1.len, &zone, again, MAX_CMDS,
                                  &n2, err, sizeof err) == 0 && n2 == n,
               "re-decode: %s", err);
    encode(again, n2, &b2);
    FUZZ_CHECK(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len),
               "re-encoding differs");
    mp_buf_close(&b1);
    mp_buf_close(&b2);
    msgpack_zone_destroy(&zone);
}

/* Two state machines kept across inputs: building one costs more than most
 * inputs (a 4 MB request-id window), and restoring a snapshot replaces the
 * whole state anyway. */
static struct fsm f, g;
static struct mp_buf base; /* snapshot of the baseline state */

static void setup(void)
{
    FUZZ_CHECK(fsm_init(&f) == 0 && fsm_init(&g) == 0, "init");
    fuzz_baseline(&f);
    mp_buf_init(&base);
    FUZZ_CHECK(fsm_snapshot(&f, &base) == 0, "snapshot");
}

static void snapshot_round_trip(void)
{
    struct mp_buf s1, s2;
    char err[256];
    mp_buf_init(&s1);
    mp_buf_init(&s2);
    FUZZ_CHECK(fsm_snapshot(&f, &s1) == 0, "snapshot");
    FUZZ_CHECK(fsm_restore(&g, s1.data, s1.len, err, sizeof err) == 0,
               "a reachable state does not restore: %s", err);
    FUZZ_CHECK(fsm_snapshot(&g, &s2) == 0, "snapshot");
    FUZZ_CHECK(s1.len == s2.len && !memcmp(s1.data, s2.data, s1.len),
               "snapshot -> restore -> snapshot differs");
    FUZZ_CHECK(check_fsm(&g, err, sizeof err) == 0, "restored: %s", err);
    mp_buf_close(&s1);
    mp_buf_close(&s2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proto_cmd cmds[MAX_CMDS], again[MAX_CMDS];
    msgpack_zone zone;
    struct proto_result r;
    size_t n;
    char err[256];
    err[0] = '\0';
    if (!base.data)
        setup();
    if (!msgpack_zone_init(&zone, 4096))
        return 0;
    int rv = proto_batch_decode(data, size, &zone, cmds, MAX_CMDS, &n, err,
                                sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(err[0] != '\0', "error %d without a message", rv);
        msgpack_zone_destroy(&zone);
        return 0;
    }
    round_trip(cmds, n, again);
    FUZZ_CHECK(fsm_restore(&f, base.data, base.len, err, sizeof err) == 0,
               "baseline: %s", err);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(fsm_apply(&f, &cmds[i], &r) == 0, "apply %zu", i);
        FUZZ_CHECK(r.code <= 0 && strlen(r.msg) < sizeof r.msg, "result");
        FUZZ_CHECK(check_fsm(&f, err, sizeof err) == 0, "after %s: %s",
                   proto_cmd_name(cmds[i].type), err);
    }
    snapshot_round_trip();
    msgpack_zone_destroy(&zone);
    return 0;
}
