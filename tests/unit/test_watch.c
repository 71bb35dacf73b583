/* proto/watch: the watch stream's messages, their schema checks, bounds
 * and the state digest; and the PROTO_OP_WATCH client frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "proto/frame.h"
#include "proto/watch.h"

struct fx {
    msgpack_zone zone;
    struct mp_buf buf;
    struct proto_watch out;
    char err[256];
    struct proto_watch_entry *big; /* for the bounds tests */
    struct mp_str *ifs;
    uint16_t *vids;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || !msgpack_zone_init(&x->zone, 4096))
        return -1;
    mp_buf_init(&x->buf);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    msgpack_zone_destroy(&x->zone);
    mp_buf_close(&x->buf);
    free(x->big);
    free(x->ifs);
    free(x->vids);
    free(x);
    return 0;
}

static const struct mp_str ifs2[] = {{"vm1", 3}, {"tap7", 4}};
static const struct proto_watch_entry two[] = {
    {.vid = 7, .gen = 3, .cluster = {"alpha", 5}, .ifaces = ifs2,
     .nifaces = 2},
    {.vid = 42, .gen = 1, .cluster = {"beta", 4}},
};

/* Packs w into x->buf and decodes it back into x->out. */
static int round_trip(struct fx *x, const struct proto_watch *w)
{
    msgpack_packer pk;
    mp_buf_reset(&x->buf);
    mp_packer_init(&pk, &x->buf);
    proto_watch_pack(&pk, w);
    assert_false(x->buf.oom);
    msgpack_zone_clear(&x->zone);
    x->err[0] = '\0';
    void *copy = dup_exact(x->buf.data, x->buf.len);
    int rv = proto_watch_decode(copy, x->buf.len, &x->zone, &x->out, x->err,
                                sizeof x->err);
    /* The decoded strings borrow from copy: compare before freeing. */
    if (rv == 0 && w->nentries) {
        assert_int_equal(x->out.nentries, w->nentries);
        for (uint32_t i = 0; i < w->nentries; i++) {
            assert_int_equal(x->out.entries[i].cluster.n,
                             w->entries[i].cluster.n);
            assert_memory_equal(x->out.entries[i].cluster.p,
                                w->entries[i].cluster.p,
                                w->entries[i].cluster.n);
            assert_int_equal(x->out.entries[i].gen, w->entries[i].gen);
        }
    }
    free(copy);
    return rv;
}

static void snapshot_round_trip(void **state)
{
    struct fx *x = *state;
    struct proto_watch w;
    proto_watch_init(&w, PROTO_WATCH_SNAPSHOT);
    w.version = 99;
    w.trunk = mp_cstr("eth1");
    w.complete = true;
    w.entries = two;
    w.nentries = 2;
    w.digest = proto_watch_digest(w.trunk, true, two, 2);
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err), 0);
    assert_int_equal(round_trip(x, &w), 0);
    assert_int_equal(x->out.kind, PROTO_WATCH_SNAPSHOT);
    assert_int_equal(x->out.version, 99);
    assert_int_equal(x->out.digest, w.digest);
    assert_true(x->out.complete);
    assert_int_equal(x->out.entries[0].vid, 7);
    assert_int_equal(x->out.entries[0].nifaces, 2);
    assert_int_equal(x->out.entries[1].nifaces, 0);
}

static void update_and_report_round_trip(void **state)
{
    struct fx *x = *state;
    static const uint16_t removed[] = {9, 4094};
    struct proto_watch w;
    proto_watch_init(&w, PROTO_WATCH_UPDATE);
    w.version = 100;
    w.base = 99;
    w.trunk = mp_cstr("eth1");
    w.entries = two;
    w.nentries = 1;
    w.removed = removed;
    w.nremoved = 2;
    assert_int_equal(round_trip(x, &w), 0);
    assert_int_equal(x->out.base, 99);
    assert_int_equal(x->out.nremoved, 2);
    assert_int_equal(x->out.removed[1], 4094);

    proto_watch_init(&w, PROTO_WATCH_REPORT);
    w.host = mp_cstr("h1");
    w.version = 100;
    w.ok = false;
    w.text = mp_cstr("host: vlan 7: Operation not permitted");
    w.changes = 3;
    w.missing = 1;
    w.entries = two;
    w.nentries = 2;
    assert_int_equal(round_trip(x, &w), 0);
    assert_false(x->out.ok);
    assert_int_equal(x->out.missing, 1);
    assert_int_equal(x->out.entries[1].gen, 1);
    assert_int_equal(x->out.entries[1].vid, 0); /* reports carry no VID */
}

static void subscribe_and_insync(void **state)
{
    struct fx *x = *state;
    struct proto_watch w;
    proto_watch_init(&w, PROTO_WATCH_SUBSCRIBE);
    w.host = mp_cstr("hv-01.site-a");
    w.version = 5;
    w.digest = 77;
    assert_int_equal(round_trip(x, &w), 0);
    assert_int_equal(x->out.digest, 77);
    proto_watch_init(&w, PROTO_WATCH_INSYNC);
    w.version = 6;
    w.digest = 77;
    assert_int_equal(round_trip(x, &w), 0);
    assert_int_equal(x->out.kind, PROTO_WATCH_INSYNC);
}

static void validate_refuses(void **state)
{
    struct fx *x = *state;
    struct proto_watch w;
    struct proto_watch_entry dup[2] = {two[0], two[0]};
    struct proto_watch_entry bad = two[1];
    static const struct mp_str badif[] = {{"a/b", 3}};
    static const uint16_t removed[] = {7};
    proto_watch_init(&w, PROTO_WATCH_SUBSCRIBE);
    w.host = mp_cstr("-bad");
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_contains(x->err, "-bad");
    proto_watch_init(&w, PROTO_WATCH_SNAPSHOT);
    w.trunk = mp_cstr("eth1");
    w.entries = dup;
    w.nentries = 2;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_contains(x->err, "listed twice");
    bad.vid = 4095;
    w.entries = &bad;
    w.nentries = 1;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    bad.vid = 5;
    bad.ifaces = badif;
    bad.nifaces = 1;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_contains(x->err, "a/b");
    w.trunk = mp_cstr("");
    w.entries = two;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_contains(x->err, "trunk");
    /* An update may not upsert and remove one VID. */
    proto_watch_init(&w, PROTO_WATCH_UPDATE);
    w.trunk = mp_cstr("eth1");
    w.entries = two;
    w.nentries = 1;
    w.removed = removed;
    w.nremoved = 1;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    proto_watch_init(&w, PROTO_WATCH_REPORT);
    w.host = mp_cstr("h1");
    w.text = mp_cstr("line\nbreak");
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
}

/* Hand-made bytes: wrong kinds, field counts and types are refused. */
static void decode_refuses_malformed(void **state)
{
    struct fx *x = *state;
    static const struct {
        const char *hex;
        int rv;
    } cases[] = {
        {"", VC_EMALFORMED},
        {"90", VC_EMALFORMED},           /* [] */
        {"9106", VC_EMALFORMED},         /* [6] unknown kind */
        {"9100", VC_EMALFORMED},         /* [0] */
        {"930501", VC_EMALFORMED},       /* insync, 2 fields of 3 */
        {"94", VC_EMALFORMED},           /* truncated */
        {"93050102", 0},                 /* insync ok */
        {"9305a10102", VC_EMALFORMED},   /* version is a string */
        {"940101a26831", VC_EMALFORMED}, /* subscribe: host not a name? */
        {"9401a2683101c0", VC_EMALFORMED}, /* digest nil */
        {"9401a3ad683101 02", VC_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bytes[64];
        size_t n = 0;
        for (const char *p = cases[i].hex; p[0] && p[1];) {
            if (*p == ' ') {
                p++;
                continue;
            }
            sscanf(p, "%2hhx", &bytes[n++]);
            p += 2;
        }
        void *copy = dup_exact(bytes, n);
        msgpack_zone_clear(&x->zone);
        x->err[0] = '\0';
        int rv = proto_watch_decode(copy, n, &x->zone, &x->out, x->err,
                                    sizeof x->err);
        free(copy);
        if (cases[i].rv == 0)
            assert_int_equal(rv, 0);
        else {
            assert_int_not_equal(rv, 0);
            assert_true(x->err[0] != '\0');
        }
    }
}

/* Counts beyond the limits are refused before anything is built. */
static void bounds(void **state)
{
    struct fx *x = *state;
    struct proto_watch w;
    uint32_t n = PROTO_WATCH_ENTRIES_MAX;
    x->big = calloc(n + 1, sizeof *x->big);
    x->ifs = calloc(PROTO_WATCH_IFACES_MAX + 1, sizeof *x->ifs);
    assert_non_null(x->big);
    assert_non_null(x->ifs);
    for (uint32_t i = 0; i <= PROTO_WATCH_IFACES_MAX; i++)
        x->ifs[i] = mp_cstr("vnet123");
    for (uint32_t i = 0; i < n; i++) {
        x->big[i].vid = (uint16_t)(i + 1);
        x->big[i].cluster = mp_cstr("a-cluster-with-a-long-name-0123456789");
        x->big[i].gen = i;
    }
    /* 4094 entries, 4 interfaces each (16376): the largest state fits. */
    for (uint32_t i = 0; i < n; i++) {
        x->big[i].ifaces = x->ifs;
        x->big[i].nifaces = 4;
    }
    proto_watch_init(&w, PROTO_WATCH_SNAPSHOT);
    w.trunk = mp_cstr("bond0");
    w.entries = x->big;
    w.nentries = n;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err), 0);
    assert_int_equal(round_trip(x, &w), 0);
    assert_true(x->buf.len <= PROTO_WATCH_BYTES_MAX);
    /* One interface more than allowed in one message. */
    x->big[0].nifaces = 4 + (PROTO_WATCH_IFACES_MAX - 4 * n) + 1;
    x->big[0].ifaces = x->ifs;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_int_not_equal(round_trip(x, &w), 0);
    /* One entry more than VLANs exist (VIDs would repeat anyway). */
    x->big[0].nifaces = 0;
    x->big[n] = x->big[0];
    w.nentries = n + 1;
    assert_int_equal(proto_watch_validate(&w, x->err, sizeof x->err),
                     VC_EINVAL);
    assert_int_not_equal(round_trip(x, &w), 0);
}

static void digest_tracks_content(void **state)
{
    (void)state;
    struct proto_watch_entry e[2] = {two[0], two[1]};
    struct mp_str t = mp_cstr("eth1");
    uint64_t d = proto_watch_digest(t, true, e, 2);
    assert_int_not_equal(d, 0);
    assert_int_equal(d, proto_watch_digest(t, true, e, 2));
    assert_int_not_equal(d, proto_watch_digest(t, false, e, 2));
    assert_int_not_equal(d, proto_watch_digest(mp_cstr("eth2"), true, e, 2));
    e[1].gen = 2;
    assert_int_not_equal(d, proto_watch_digest(t, true, e, 2));
    e[1] = two[1];
    e[0].nifaces = 1;
    assert_int_not_equal(d, proto_watch_digest(t, true, e, 2));
    assert_int_not_equal(d, proto_watch_digest(t, true, e, 1));
    assert_int_not_equal(proto_watch_digest(t, true, NULL, 0), 0);
}

/* op 7 in a client frame: subscribe and report go, state kinds do not. */
static void frame_op_watch(void **state)
{
    struct fx *x = *state;
    struct proto_request req, back;
    memset(&req, 0, sizeof req);
    req.seq = 11;
    req.op = PROTO_OP_WATCH;
    proto_watch_init(&req.watch, PROTO_WATCH_REPORT);
    req.watch.host = mp_cstr("h2");
    req.watch.version = 3;
    req.watch.ok = true;
    req.watch.entries = two;
    req.watch.nentries = 2;
    mp_buf_reset(&x->buf);
    assert_int_equal(proto_request_encode(&req, &x->buf, x->err,
                                          sizeof x->err), 0);
    msgpack_zone_clear(&x->zone);
    assert_int_equal(proto_request_decode(x->buf.data + PROTO_FRAME_HDR,
                                          x->buf.len - PROTO_FRAME_HDR,
                                          &x->zone, &back, x->err,
                                          sizeof x->err), 0);
    assert_int_equal(back.op, PROTO_OP_WATCH);
    assert_int_equal(back.watch.kind, PROTO_WATCH_REPORT);
    assert_int_equal(back.watch.nentries, 2);
    assert_true(back.watch.ok);
    proto_watch_init(&req.watch, PROTO_WATCH_INSYNC);
    mp_buf_reset(&x->buf);
    assert_int_equal(proto_request_encode(&req, &x->buf, x->err,
                                          sizeof x->err), VC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(snapshot_round_trip),
        T(update_and_report_round_trip),
        T(subscribe_and_insync),
        T(validate_refuses),
        T(decode_refuses_malformed),
        T(bounds),
        T(digest_tracks_content),
        T(frame_op_watch),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
