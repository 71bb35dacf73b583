/* agent/fsm: rollback of creations not applied in time (cluster-rollback),
 * keep on failure, and their snapshot and log encodings. Commands take
 * the real path (encode -> decode -> fsm_apply). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define DEADLINE (60 * 1000ull)
#define DAY (24 * 3600 * 1000ull)

struct fx {
    struct tfsm *t;
    uint64_t t0; /* creation time */
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || !(x->t = tfsm_new()))
        return -1;
    assert_int_equal(t_site_add(x->t, "a", "100-199", true), 0);
    assert_int_equal(t_site_add(x->t, "b", "100-199", true), 0);
    assert_int_equal(t_host_add(x->t, "h1", "a", "eth1"), 0);
    x->t0 = x->t->now;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    tfsm_free(x->t);
    free(x);
    return 0;
}

static int create(struct tfsm *t, const char *name, bool keep)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
    c.name = mp_cstr(name);
    c.owner = mp_cstr("alice");
    c.lease_ms = DAY;
    c.sites[c.nsites++] = mp_cstr("a");
    c.sites[c.nsites++] = mp_cstr("b");
    c.keep = keep;
    return t_run(t, &c);
}

static int rollback(struct tfsm *t, const char *name, uint64_t at)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_ROLLBACK);
    c.name = mp_cstr(name);
    c.lease_ms = DEADLINE;
    t->now = at;
    return t_run(t, &c);
}

static void snap_unchanged(struct tfsm *t, const struct mp_buf *before)
{
    assert_snap_is(&t->f, before);
}

/* Not applied at b by the deadline: released everywhere, judged by the
 * command's time only; before the deadline nothing changes. */
static void rolled_back_after_deadline(void **state)
{
    struct fx *x = *state;
    struct mp_buf before;
    assert_int_equal(create(x->t, "c", false), 0);
    assert_int_equal(t_report_ok(x->t, "c", "a"), 0);
    assert_int_equal(t_report(x->t, "c", "b", 1, false, "switch: boom"), 0);
    assert_int_equal(t_cluster(x->t, "c")->state, FSM_PENDING);
    snap_take(&x->t->f, &before);
    assert_int_equal(rollback(x->t, "c", x->t0 + DEADLINE - 1), VC_ESTATE);
    assert_contains(x->t->r.msg, "deadline not reached");
    snap_unchanged(x->t, &before);
    assert_int_equal(rollback(x->t, "c", x->t0 + DEADLINE), 0);
    assert_contains(x->t->r.msg, "cluster c rolled back: not applied at "
                                 "site b within 60 s");
    assert_int_equal(t_cluster(x->t, "c")->state, FSM_RELEASING);
    /* Released like any cluster: the VLAN returns per site report. */
    assert_true(vlanset_has(&t_site(x->t, "b")->used, 100));
    assert_int_equal(t_report_ok(x->t, "c", "a"), 0);
    assert_int_equal(t_report_ok(x->t, "c", "b"), 0);
    assert_null(fsm_cluster_find(&x->t->f, "c"));
    assert_false(vlanset_has(&t_site(x->t, "b")->used, 100));
    check_invariants(&x->t->f);
    /* A late second proposal finds nothing. */
    assert_int_equal(rollback(x->t, "c", x->t0 + 2 * DEADLINE), VC_ENOTFOUND);
    mp_buf_close(&before);
}

/* Ready once: a later change that is not applied is no failed creation. */
static void never_after_ready(void **state)
{
    struct fx *x = *state;
    struct mp_buf before;
    assert_int_equal(create(x->t, "c", false), 0);
    assert_false(t_cluster(x->t, "c")->settled);
    assert_int_equal(t_report_ok(x->t, "c", "a"), 0);
    assert_int_equal(t_report_ok(x->t, "c", "b"), 0);
    assert_true(t_cluster(x->t, "c")->settled);
    assert_int_equal(t_attach(x->t, "c", "h1", "vm1"), 0);
    assert_int_equal(t_cluster(x->t, "c")->state, FSM_PENDING);
    assert_true(t_cluster(x->t, "c")->settled);
    snap_take(&x->t->f, &before);
    assert_int_equal(rollback(x->t, "c", x->t0 + 10 * DEADLINE), VC_ESTATE);
    assert_contains(x->t->r.msg, "was applied everywhere");
    snap_unchanged(x->t, &before);
    mp_buf_close(&before);
}

static void kept_on_failure(void **state)
{
    struct fx *x = *state;
    struct mp_buf before;
    assert_int_equal(create(x->t, "k", true), 0);
    assert_true(t_cluster(x->t, "k")->keep);
    snap_take(&x->t->f, &before);
    assert_int_equal(rollback(x->t, "k", x->t0 + 10 * DEADLINE), VC_ESTATE);
    assert_contains(x->t->r.msg, "kept on failure");
    snap_unchanged(x->t, &before);
    /* Released and unknown clusters are left alone too. */
    assert_int_equal(create(x->t, "r", false), 0);
    assert_int_equal(t_release(x->t, "r", false), 0);
    assert_int_equal(rollback(x->t, "r", x->t0 + 10 * DEADLINE), VC_ESTATE);
    assert_int_equal(rollback(x->t, "nosuch", x->t0), VC_ENOTFOUND);
    mp_buf_close(&before);
}

/* keep and settled survive snapshot -> restore -> snapshot; a cluster
 * without either flag keeps the 10-field record older readers read. */
static void snapshot_keeps_flags(void **state)
{
    struct fx *x = *state;
    struct mp_buf s1;
    struct fsm g;
    char err[256];
    assert_int_equal(create(x->t, "plain", false), 0);
    assert_int_equal(create(x->t, "kept", true), 0);
    assert_int_equal(create(x->t, "done", false), 0);
    assert_int_equal(t_report_ok(x->t, "done", "a"), 0);
    assert_int_equal(t_report_ok(x->t, "done", "b"), 0);
    assert_int_equal(t_attach(x->t, "done", "h1", "vm1"), 0); /* pending */
    snap_take(&x->t->f, &s1);
    assert_int_equal(fsm_init(&g), 0);
    assert_int_equal(fsm_restore(&g, s1.data, s1.len, err, sizeof err), 0);
    assert_true(fsm_cluster_find(&g, "kept")->keep);
    assert_false(fsm_cluster_find(&g, "kept")->settled);
    assert_true(fsm_cluster_find(&g, "done")->settled);
    assert_int_equal(fsm_cluster_find(&g, "done")->state, FSM_PENDING);
    assert_false(fsm_cluster_find(&g, "plain")->keep);
    assert_false(fsm_cluster_find(&g, "plain")->settled);
    assert_snap_is(&g, &s1);
    check_invariants(&g);
    fsm_close(&g);
    mp_buf_close(&s1);
}

/* Decodes the single command of a batch and returns its body's length. */
static uint32_t body_fields(const struct mp_buf *b)
{
    msgpack_zone zone;
    msgpack_object root;
    size_t used = proto_entry_unpad(b->data, b->len);
    assert_true(msgpack_zone_init(&zone, 1024));
    assert_int_equal(mp_decode(b->data, used, &zone, &root), 0);
    const msgpack_object *cmd = &root.via.array.ptr[1].via.array.ptr[0];
    uint32_t n = cmd->via.array.ptr[4].via.array.size;
    msgpack_zone_destroy(&zone);
    return n;
}

/* keep rides as an optional 6th field of cluster-create, written only
 * when set: a create without it is byte for byte what older agents
 * write and read. */
static void create_encoding(void **state)
{
    (void)state;
    struct proto_cmd c, out;
    struct mp_buf b;
    char err[256];
    msgpack_zone zone;
    size_t n;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_CREATE);
    c.name = mp_cstr("x");
    c.owner = mp_cstr("alice");
    c.lease_ms = DAY;
    c.sites[c.nsites++] = mp_cstr("a");
    for (int keep = 0; keep <= 1; keep++) {
        c.keep = keep;
        mp_buf_init(&b);
        assert_int_equal(proto_batch_encode(&c, 1, &b, err, sizeof err), 0);
        assert_int_equal(body_fields(&b), keep ? 6 : 5);
        assert_true(msgpack_zone_init(&zone, 1024));
        assert_int_equal(proto_batch_decode(b.data, b.len, &zone, &out, 1,
                                            &n, err, sizeof err), 0);
        assert_int_equal(out.keep, keep);
        msgpack_zone_destroy(&zone);
        mp_buf_close(&b);
    }
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_ROLLBACK);
    c.name = mp_cstr("x");
    c.lease_ms = 10; /* a deadline under a second is refused */
    assert_int_equal(proto_cmd_validate(&c, err, sizeof err), VC_EINVAL);
    assert_string_equal(proto_cmd_name(PROTO_CMD_CLUSTER_ROLLBACK),
                        "cluster-rollback");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(rolled_back_after_deadline),
        T(never_after_ready),
        T(kept_on_failure),
        T(snapshot_keeps_flags),
        T(create_encoding),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
