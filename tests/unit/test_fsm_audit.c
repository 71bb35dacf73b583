/* agent/fsm_audit.c: the replicated audit trail, its snapshot section and
 * the PROTO_OP_AUDIT page (agent/view_audit.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/fsm.h"
#include "agent/view_audit.h"
#include "proto/err.h"
#include "testlib.h"

#define HOUR 3600000u

/* A fixture with sites a, b and some history. */
static struct tfsm *history(void)
{
    struct tfsm *t = tfsm_new();
    assert_int_equal(t_site_add(t, "a", "100-199", true), 0);
    assert_int_equal(t_site_add(t, "b", "100-199", true), 0);
    t->req = "slurm:42:create";
    t->now += 1000;
    assert_int_equal(t_create(t, "job42", "a,b", HOUR), 0);
    t->req = NULL;
    return t;
}

static const struct fsm_audit_entry *last(const struct fsm *f)
{
    assert_true(f->audit.len > 0);
    return fsm_audit_at(&f->audit, f->audit.len - 1);
}

static void records_changes_with_who_when_and_result(void **state)
{
    (void)state;
    struct tfsm *t = history();
    const struct fsm_audit *a = &t->f.audit;
    assert_int_equal(a->len, 3);
    const struct fsm_audit_entry *e = last(&t->f);
    assert_int_equal(e->seq, 3);
    assert_int_equal(e->type, PROTO_CMD_CLUSTER_CREATE);
    assert_int_equal(e->code, 0);
    assert_true(e->time_ms == t->now);
    assert_string_equal(fsm_audit_text(e, AUDIT_REQ_ID), "slurm:42:create");
    assert_string_equal(fsm_audit_text(e, AUDIT_ORIGIN), "unit");
    assert_string_equal(fsm_audit_text(e, AUDIT_NAME), "job42");
    assert_string_equal(fsm_audit_text(e, AUDIT_SITES), "a,b");
    assert_string_equal(fsm_audit_text(e, AUDIT_MSG), t->r.msg);
    tfsm_free(t);
}

static void refusals_reports_and_repeats_are_not_changes(void **state)
{
    (void)state;
    struct tfsm *t = history();
    uint32_t n = t->f.audit.len;
    /* Refused: no state change, no entry. */
    assert_int_equal(t_create(t, "job42", "a", HOUR), VC_EEXISTS);
    assert_int_equal(t_release(t, "nope", false), VC_ENOTFOUND);
    /* Apply reports: per-site bookkeeping. */
    assert_int_equal(t_report_ok(t, "job42", "a"), 0);
    /* A repeat of a request id: answered from the dedupe table. */
    t->req = "slurm:42:create";
    assert_int_equal(t_create(t, "job42", "a,b", HOUR), 0);
    t->req = NULL;
    assert_int_equal(t->f.audit.len, n);
    assert_int_equal(t_release(t, "job42", false), 0);
    assert_int_equal(t->f.audit.len, n + 1);
    assert_int_equal(last(&t->f)->type, PROTO_CMD_CLUSTER_RELEASE);
    assert_int_equal(last(&t->f)->seq, n + 1);
    tfsm_free(t);
}

static void ring_keeps_the_last_entries(void **state)
{
    (void)state;
    struct fsm_audit a;
    struct proto_cmd cmd;
    struct proto_result r;
    memset(&a, 0, sizeof a);
    memset(&r, 0, sizeof r);
    proto_cmd_init(&cmd, PROTO_CMD_CLUSTER_RENEW);
    cmd.name = mp_cstr("c");
    for (uint64_t i = 1; i <= FSM_AUDIT_MAX + 5; i++) {
        cmd.time_ms = i;
        assert_int_equal(fsm_audit_record(&a, &cmd, &r), 0);
    }
    assert_int_equal(a.len, FSM_AUDIT_MAX);
    assert_int_equal(fsm_audit_at(&a, 0)->seq, 6);
    assert_int_equal(fsm_audit_at(&a, 0)->time_ms, 6);
    assert_int_equal(fsm_audit_at(&a, FSM_AUDIT_MAX - 1)->seq,
                     FSM_AUDIT_MAX + 5);
    /* Long texts are cut, not refused, and never inside a UTF-8 char. */
    memset(r.msg, 'x', sizeof r.msg - 1);
    r.msg[sizeof r.msg - 1] = '\0';
    memcpy(r.msg + FSM_AUDIT_MSG_MAX - 1, "\xc3\xa9", 2);
    assert_int_equal(fsm_audit_record(&a, &cmd, &r), 0);
    const char *kept = fsm_audit_text(fsm_audit_at(&a, a.len - 1), AUDIT_MSG);
    assert_int_equal(strlen(kept), FSM_AUDIT_MSG_MAX - 1);
    fsm_audit_close(&a);
}

static void snapshot_round_trip_keeps_the_trail(void **state)
{
    (void)state;
    struct tfsm *t = history();
    struct mp_buf a, b;
    struct fsm g;
    snap_restore_same(&t->f, &g);
    assert_int_equal(g.audit.len, t->f.audit.len);
    assert_string_equal(fsm_audit_text(last(&g), AUDIT_REQ_ID),
                        "slurm:42:create");
    /* Both go on with the same numbering. */
    struct proto_cmd cmd;
    struct proto_result r1, r2;
    proto_cmd_init(&cmd, PROTO_CMD_CLUSTER_RENEW);
    cmd.name = mp_cstr("job42");
    cmd.lease_ms = HOUR;
    cmd.time_ms = t->now + 5;
    cmd.origin = mp_cstr("admin:alice");
    t_apply(&t->f, &cmd, &r1);
    t_apply(&g, &cmd, &r2);
    assert_int_equal(last(&g)->seq, last(&t->f)->seq);
    snap_take(&t->f, &a);
    snap_take(&g, &b);
    assert_bufs_equal(&a, &b);
    fsm_close(&g);
    mp_buf_close(&a);
    mp_buf_close(&b);
    tfsm_free(t);
}

/* Restores an edited audit section of t's snapshot into g. */
static int restore_edited(struct tfsm *t, struct fsm *g,
                          void (*edit)(msgpack_object *audit, msgpack_zone *z))
{
    struct mp_buf a, b;
    msgpack_zone zone;
    msgpack_object root;
    msgpack_packer pk;
    char err[256];
    snap_take(&t->f, &a);
    assert_true(msgpack_zone_init(&zone, 4096));
    assert_int_equal(mp_decode(a.data, a.len, &zone, &root), 0);
    /* The trail is the last part of the snapshot. */
    assert_int_equal(root.via.array.size, 5 + FSM_SNAPSHOT_VERSION);
    edit(&root.via.array.ptr[root.via.array.size - 1], &zone);
    mp_buf_init(&b);
    mp_packer_init(&pk, &b);
    msgpack_pack_object(&pk, root);
    int rv = fsm_restore(g, b.data, b.len, err, sizeof err);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&a);
    mp_buf_close(&b);
    return rv;
}

static msgpack_object *entry(msgpack_object *audit, uint32_t i)
{
    return &audit->via.array.ptr[1].via.array.ptr[i];
}

static void edit_order(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    entry(o, 1)->via.array.ptr[0].via.u64 = 1; /* seq 1 twice */
}

static void edit_next(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    o->via.array.ptr[0].via.u64 = 2; /* entries up to 3 */
}

static void edit_long(msgpack_object *o, msgpack_zone *z)
{
    char *s = msgpack_zone_malloc(z, 300);
    memset(s, 'x', 300);
    msgpack_object *f = &entry(o, 0)->via.array.ptr[4 + AUDIT_NAME];
    f->via.str.ptr = s;
    f->via.str.size = 300;
}

static void edit_nul(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    msgpack_object *f = &entry(o, 0)->via.array.ptr[4 + AUDIT_MSG];
    ((char *)f->via.str.ptr)[0] = '\0';
}

static void edit_code(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    entry(o, 0)->via.array.ptr[3].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    entry(o, 0)->via.array.ptr[3].via.u64 = 7; /* codes are 0 or < 0 */
}

static void edit_arity(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    entry(o, 0)->via.array.size = 5;
}

static void edit_type(msgpack_object *o, msgpack_zone *z)
{
    (void)z;
    entry(o, 0)->via.array.ptr[2].via.u64 = 250;
}

static void restore_refuses_bad_trails(void **state)
{
    (void)state;
    void (*edits[])(msgpack_object *, msgpack_zone *) = {
        edit_order, edit_next, edit_long, edit_nul, edit_code, edit_arity,
        edit_type};
    struct tfsm *t = history();
    struct mp_buf before, after;
    struct fsm g;
    assert_int_equal(fsm_init(&g), 0);
    snap_take(&g, &before);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        assert_int_equal(restore_edited(t, &g, edits[i]), VC_EMALFORMED);
        snap_take(&g, &after); /* refused: g untouched */
        assert_bufs_equal(&before, &after);
        mp_buf_close(&after);
    }
    fsm_close(&g);
    mp_buf_close(&before);
    tfsm_free(t);
}

/* Unpacks view_audit()'s page. */
static void page(const struct fsm *f, const char *name, uint64_t since,
                 uint64_t after, uint32_t limit, msgpack_zone *z,
                 struct mp_buf *b, msgpack_object *out)
{
    struct proto_audit_query q = {mp_cstr(name), since, after, limit};
    msgpack_packer pk;
    mp_buf_init(b);
    mp_packer_init(&pk, b);
    assert_int_equal(view_audit(&pk, f, &q), 0);
    assert_int_equal(mp_decode(b->data, b->len, z, out), 0);
}

static uint64_t u(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (mp_str_eq((struct mp_str){map->via.map.ptr[i].key.via.str.ptr,
                                      map->via.map.ptr[i].key.via.str.size},
                      key))
            return map->via.map.ptr[i].val.via.u64;
    fail_msg("no key %s", key);
    return 0;
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (mp_str_eq((struct mp_str){map->via.map.ptr[i].key.via.str.ptr,
                                      map->via.map.ptr[i].key.via.str.size},
                      key))
            return &map->via.map.ptr[i].val;
    fail_msg("no key %s", key);
    return NULL;
}

static void pages_filter_and_continue(void **state)
{
    (void)state;
    struct tfsm *t = history();
    msgpack_zone z;
    struct mp_buf b;
    msgpack_object p;
    uint64_t t0 = t->now;
    for (int i = 0; i < 5; i++) {
        t->now += 1000;
        assert_int_equal(t_renew(t, "job42", HOUR), 0);
    }
    assert_true(msgpack_zone_init(&z, 4096));
    /* job42 only: create + 5 renews, in pages of 4. */
    page(&t->f, "job42", 0, 0, 4, &z, &b, &p);
    assert_int_equal(get(&p, "entries")->via.array.size, 4);
    assert_true(get(&p, "more")->via.boolean);
    assert_int_equal(u(&p, "next"), 6);
    assert_int_equal(u(&p, "oldest"), 1);
    assert_int_equal(u(&p, "held"), 8);
    mp_buf_close(&b);
    page(&t->f, "job42", 0, 6, 4, &z, &b, &p);
    assert_int_equal(get(&p, "entries")->via.array.size, 2);
    assert_false(get(&p, "more")->via.boolean);
    assert_int_equal(u(&p, "next"), 8);
    mp_buf_close(&b);
    /* Since: the renews after the second one. */
    page(&t->f, "", t0 + 3000, 0, 100, &z, &b, &p);
    const msgpack_object *es = get(&p, "entries");
    assert_int_equal(es->via.array.size, 3);
    assert_int_equal(u(&es->via.array.ptr[0], "seq"), 6);
    mp_buf_close(&b);
    /* Nothing about another name. */
    page(&t->f, "other", 0, 0, 100, &z, &b, &p);
    assert_int_equal(get(&p, "entries")->via.array.size, 0);
    assert_int_equal(u(&p, "next"), 0);
    mp_buf_close(&b);
    msgpack_zone_destroy(&z);
    tfsm_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_changes_with_who_when_and_result),
        cmocka_unit_test(refusals_reports_and_repeats_are_not_changes),
        cmocka_unit_test(ring_keeps_the_last_entries),
        cmocka_unit_test(snapshot_round_trip_keeps_the_trail),
        cmocka_unit_test(restore_refuses_bad_trails),
        cmocka_unit_test(pages_filter_and_continue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
