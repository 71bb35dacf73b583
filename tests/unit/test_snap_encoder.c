/* The snapshot's direct-store encoder writes the same bytes as the
 * msgpack-c packer version it replaced (tests/unit/snap_ref.c):
 *
 * - the unchecked writers (proto/mp.h mp_w_*) match msgpack-c's packer at
 *   every size boundary of every form they choose between;
 * - fsm_snapshot() matches the reference on the states random command logs
 *   build (every command type, results, refusals, repeated request ids),
 *   checked after every batch;
 * - and on full de-duplication and audit windows that have wrapped around
 *   their rings, with field values at the extremes (longest ids, messages
 *   and texts, negative codes of every width, 64-bit generations and
 *   sequence numbers) and arbitrary non-NUL bytes in the texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_ref.h"
#include "testlib.h"

static void assert_same_as_reference(const struct fsm *f, const char *what)
{
    struct mp_buf got, want;
    mp_buf_init(&got);
    mp_buf_init(&want);
    assert_int_equal(fsm_snapshot(f, &got), 0);
    assert_int_equal(snap_ref_encode(f, &want), 0);
    if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) {
        size_t at = 0;
        while (at < got.len && at < want.len && got.data[at] == want.data[at])
            at++;
        fail_msg("%s: snapshot of %zu bytes differs from the reference "
                 "(%zu bytes) at byte %zu", what, got.len, want.len, at);
    }
    mp_buf_close(&got);
    mp_buf_close(&want);
}

/* --- writers ----------------------------------------------------------- */

static msgpack_packer ref_pk;
static struct mp_buf ref_buf, new_buf;

static void writers_begin(void)
{
    mp_buf_reset(&ref_buf);
    mp_buf_reset(&new_buf);
    mp_packer_init(&ref_pk, &ref_buf);
}

static uint8_t *writers_room(void)
{
    return mp_buf_room(&new_buf, 5 + 70000);
}

static void writers_check(uint8_t *p0, uint8_t *p, const char *what,
                          long long v)
{
    new_buf.len += (size_t)(p - p0);
    if (new_buf.len != ref_buf.len ||
        memcmp(new_buf.data, ref_buf.data, new_buf.len) != 0)
        fail_msg("%s %lld: %zu bytes, msgpack-c writes %zu", what, v,
                 new_buf.len, ref_buf.len);
}

static void writers_match_msgpack_c(void **state)
{
    (void)state;
    static const uint64_t u[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff,
                                 0x10000, 0xffffffffu, 0x100000000ull,
                                 UINT64_MAX};
    static const int64_t s[] = {-1, -31, -32, -33, -127, -128, -129,
                                -32767, -32768, -32769, INT32_MIN + 1ll,
                                INT32_MIN, INT32_MIN - 1ll, INT64_MIN};
    static const uint32_t len[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535,
                                   65536};
    char *text = malloc(65536);
    assert_non_null(text);
    for (uint32_t i = 0; i < 65536; i++)
        text[i] = (char)(1 + i % 250);
    mp_buf_init(&ref_buf);
    mp_buf_init(&new_buf);
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        for (int d = -1; d <= 1; d++) {
            uint64_t v = u[i] + (uint64_t)(int64_t)d;
            writers_begin();
            msgpack_pack_uint64(&ref_pk, v);
            uint8_t *p0 = writers_room();
            writers_check(p0, mp_w_uint(p0, v), "uint", (long long)v);
            if (v <= INT64_MAX) {
                writers_begin();
                msgpack_pack_int64(&ref_pk, (int64_t)v);
                p0 = writers_room();
                writers_check(p0, mp_w_int(p0, (int64_t)v), "int",
                              (long long)v);
            }
        }
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        writers_begin();
        msgpack_pack_int64(&ref_pk, s[i]);
        uint8_t *p0 = writers_room();
        writers_check(p0, mp_w_int(p0, s[i]), "int", s[i]);
        if (s[i] >= INT32_MIN) { /* the audit trail's code is an int32 */
            writers_begin();
            msgpack_pack_int32(&ref_pk, (int32_t)s[i]);
            p0 = writers_room();
            writers_check(p0, mp_w_int(p0, s[i]), "int32", s[i]);
        }
    }
    for (size_t i = 0; i < sizeof len / sizeof *len; i++) {
        writers_begin();
        msgpack_pack_array(&ref_pk, len[i]);
        uint8_t *p0 = writers_room();
        writers_check(p0, mp_w_array(p0, len[i]), "array", len[i]);
        writers_begin();
        msgpack_pack_str(&ref_pk, len[i]);
        msgpack_pack_str_body(&ref_pk, text, len[i]);
        p0 = writers_room();
        writers_check(p0, mp_w_str(p0, text, len[i]), "str", len[i]);
    }
    mp_buf_close(&ref_buf);
    mp_buf_close(&new_buf);
    free(text);
}

/* --- random command logs ----------------------------------------------- */

static void random_log(uint64_t seed, int ncmds)
{
    struct fsm *f = calloc(1, sizeof *f);
    struct proto_cmd *cmd = calloc(1, sizeof *cmd);
    struct proto_result r;
    struct cmdgen g;
    char what[64];
    assert_non_null(f);
    assert_non_null(cmd);
    assert_int_equal(fsm_init(f), 0);
    cmdgen_init(&g, seed);
    assert_same_as_reference(f, "empty state");
    for (int i = 1; i <= ncmds; i++) {
        cmdgen_next(&g, f, cmd);
        t_apply(f, cmd, &r);
        if (i % 25 == 0) {
            snprintf(what, sizeof what, "seed %llu, command %d",
                     (unsigned long long)seed, i);
            assert_same_as_reference(f, what);
        }
    }
    /* The log really built something. */
    assert_true(f->nsites > 0 && f->dd_len > 100 && f->audit.len > 100);
    fsm_close(f);
    free(f);
    free(cmd);
}

static void random_logs_match_reference(void **state)
{
    (void)state;
    random_log(1, 3000);
    random_log(0xdecafbad, 3000);
    random_log(20251126, 3000);
}

/* --- full, wrapped windows with extreme values -------------------------- */

static uint64_t rnd(struct rng *g)
{
    return rng_next(g);
}

/* n random bytes 1..255 (a NUL ends the texts), or printable ones. */
static void fill(struct rng *g, char *p, uint32_t n, bool printable)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = printable ? (char)(0x21 + rng_below(g, 0x7f - 0x21))
                         : (char)(1 + rng_below(g, 255));
    p[n] = '\0';
}

/* A length drawn to hit every header form: 0, short, str8 and the max. */
static uint32_t some_len(struct rng *g, uint32_t max)
{
    switch (rng_below(g, 4)) {
    case 0: return rng_below(g, 2) ? 0 : max;
    case 1: return rng_below(g, 32 < max ? 32 : max + 1);
    default: return rng_below(g, max + 1);
    }
}

static int64_t some_code(struct rng *g)
{
    static const int64_t codes[] = {0, -1, -32, -33, -128, -129, -32768,
                                    -32769, -100000};
    return rng_below(g, 3) ? codes[rng_below(g, 9)]
                           : -(int64_t)rng_below(g, 100001);
}

static uint64_t some_u64(struct rng *g)
{
    return rnd(g) >> rng_below(g, 64);
}

static void windows_match_reference(void **state)
{
    (void)state;
    struct fsm *f = calloc(1, sizeof *f);
    struct proto_cmd *cmd = calloc(1, sizeof *cmd);
    struct rng g = {0x5eed};
    char id[VC_REQID_MAX + 1], req[VC_REQID_MAX + 1];
    char origin[VC_NAME_MAX + 1], name[VC_NAME_MAX + 1];
    char sites[VC_SITES_MAX][VC_NAME_MAX + 1];
    assert_non_null(f);
    assert_non_null(cmd);
    assert_int_equal(fsm_init(f), 0);

    /* The window past its capacity: the ring has wrapped. */
    for (uint32_t i = 0; i < FSM_DEDUPE_MAX + 777; i++) {
        struct proto_result r;
        memset(&r, 0, sizeof r);
        int pre = snprintf(id, sizeof id, "%u:", i);
        fill(&g, id + pre, some_len(&g, VC_REQID_MAX - (uint32_t)pre),
             true);
        r.code = (int)some_code(&g);
        r.vlan = (uint16_t)(rng_below(&g, 2) ? rng_below(&g, 4095) : 4094);
        r.gen = some_u64(&g);
        fill(&g, r.msg, some_len(&g, VC_MSG_MAX), false);
        assert_int_equal(fsm_dedupe_put(f, mp_cstr(id), &r), 0);
        if (i == 1000)
            assert_same_as_reference(f, "1000 request ids");
    }
    assert_int_equal(f->dd_len, FSM_DEDUPE_MAX);
    assert_true(f->dd_head != 0);

    /* The trail past its capacity, with long texts and cut site lists. */
    f->audit.next_seq = (1ull << 32) - 500; /* seq crosses 32 bits */
    for (uint32_t i = 0; i < FSM_AUDIT_MAX + 555; i++) {
        struct proto_result r;
        memset(&r, 0, sizeof r);
        proto_cmd_init(cmd, PROTO_CMD_CLUSTER_CREATE);
        fill(&g, req, some_len(&g, VC_REQID_MAX), true);
        fill(&g, origin, some_len(&g, VC_NAME_MAX), false);
        fill(&g, name, some_len(&g, VC_NAME_MAX), false);
        cmd->req_id = mp_cstr(req);
        cmd->origin = mp_cstr(origin);
        cmd->name = mp_cstr(name);
        cmd->time_ms = some_u64(&g);
        cmd->nsites = rng_below(&g, 6) ? rng_below(&g, 4)
                                       : rng_below(&g, VC_SITES_MAX + 1);
        for (uint32_t k = 0; k < cmd->nsites; k++) {
            fill(&g, sites[k], 1 + some_len(&g, VC_NAME_MAX - 1), true);
            cmd->sites[k] = mp_cstr(sites[k]);
        }
        fill(&g, r.msg, some_len(&g, VC_MSG_MAX), false);
        assert_int_equal(fsm_audit_record(&f->audit, cmd, &r), 0);
    }
    assert_int_equal(f->audit.len, FSM_AUDIT_MAX);
    assert_true(f->audit.head != 0);
    /* Results the trail keeps are changes (code 0); a restored trail may
     * hold any int32 code and type, so the encoder must take them too. */
    for (uint32_t i = 0; i < f->audit.len; i += 7) {
        struct fsm_audit_entry *e =
            (struct fsm_audit_entry *)fsm_audit_at(&f->audit, i);
        e->code = (int32_t)(rng_below(&g, 2) ? some_code(&g)
                                             : INT32_MIN + (int)(i % 3));
        e->type = (uint8_t)rng_below(&g, PROTO_CMD_TYPE_MAX + 1);
    }
    assert_same_as_reference(f, "full windows");
    fsm_close(f);
    free(f);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writers_match_msgpack_c),
        cmocka_unit_test(random_logs_match_reference),
        cmocka_unit_test(windows_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
