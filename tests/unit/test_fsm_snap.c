/* agent/fsm_snap: canonical snapshots, restore, and replica agreement.
 *
 * - snapshot -> restore -> snapshot is byte-identical on a state that has
 *   every kind of entity and every cluster state;
 * - a truncated, corrupted or inconsistent snapshot is refused and leaves
 *   the running state untouched; one restore accepts gives a state whose
 *   own snapshot restores to the same bytes;
 * - replicas fed the same random command log agree on every result and on
 *   their final snapshot, also when one of them restarts from a snapshot
 *   half way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define HOUR (3600 * 1000ull)
#define BATCH_MAX 16

struct fx {
    struct tfsm *t;      /* the rich state */
    struct fsm *other;   /* restore target, holds a small state of its own */
    struct fsm *spare;   /* scratch machine */
    struct mp_buf rich;  /* snapshot of t */
    struct mp_buf small; /* snapshot of other */
    void *copy;          /* exact-size input under test */
    msgpack_zone zone;
    char err[256];
    struct rng rng;
};

#define OK(call)                                                           \
    do {                                                                   \
        int rv_ = (call);                                                  \
        if (rv_ != 0)                                                      \
            fail_msg("%s: %s (%s)", #call, vc_errname(rv_), t->r.msg);     \
    } while (0)

/* Every kind of entity and state: managed and unmanaged sites with each
 * uplink, a removed site, hosts and service nodes, clusters pending, ready,
 * releasing (partly reported), shrinking, with a failed site and its error
 * text, attachments, deleted cluster entities, and request ids whose
 * answers were successes and refusals. */
static void build_rich(struct tfsm *t)
{
    OK(t_site_add_full(t, "brno", "100-999,2000-2999", true, UPLINK_XPONDER,
                       0, "10.0.0.1:7000"));
    OK(t_site_add_full(t, "temp", "1-10", true, UPLINK_VPLS, 0, ""));
    OK(t_site_add_full(t, "praha", "100-499", true, UPLINK_VPLS, 0,
                       "10.0.0.2:7000"));
    OK(t_site_add_full(t, "plzen", "300-1200", true, UPLINK_QINQ, 3001,
                       "[2001:db8::3]:7000"));
    OK(t_site_remove(t, "temp", false));
    OK(t_site_add_full(t, "ostrava", "2900-3100", false, UPLINK_VPLS, 0, ""));
    OK(t_host_add(t, "skirit1", "brno", "eth1"));
    OK(t_host_add(t, "skirit2", "brno", "eth1"));
    OK(t_host_add(t, "hal1", "praha", "bond0"));
    OK(t_host_add(t, "konos1", "plzen", "eth2"));
    OK(t_host_add(t, "zeus", "ostrava", "eth0"));
    OK(t_service(t, "skirit2", true));
    OK(t_service(t, "konos1", true));

    OK(t_create(t, "tmp1", "brno", HOUR));
    OK(t_create(t, "tmp2", "praha", HOUR));
    t->req = "slurm:1001";
    OK(t_create(t, "physics", "brno,praha", 8 * HOUR));
    t->req = "slurm:1002";
    OK(t_create(t, "chem", "brno,plzen", 2 * HOUR));
    t->req = "slurm:1002b";
    if (t_create(t, "chem", "praha", HOUR) != VC_EEXISTS)
        fail_msg("duplicate create: %s", t->r.msg);
    t->req = "pbs:77.meta";
    OK(t_create(t, "bio", "praha,plzen", 24 * HOUR));
    t->req = "slurm:1003";
    OK(t_create(t, "climate", "brno,ostrava", HOUR));
    t->req = "slurm:1004";
    if (t_create(t, "astro", "ostrava,praha", HOUR) != VC_ENOVLAN)
        fail_msg("astro: %s", t->r.msg);
    t->req = NULL;
    OK(t_release(t, "tmp1", true));
    OK(t_release(t, "tmp2", true));
    OK(t_create(t, "old", "brno,praha", HOUR));
    OK(t_create(t, "shrinking", "brno,praha,plzen", HOUR));

    OK(t_report_ok(t, "physics", "brno"));
    OK(t_report_ok(t, "physics", "praha"));
    OK(t_report_ok(t, "chem", "brno"));
    OK(t_report(t, "chem", "plzen", 1, false,
                "switch plzen-sw1: vlan 300: % Invalid input"));
    OK(t_attach(t, "physics", "skirit1", "vnet0"));
    OK(t_attach(t, "physics", "hal1", "vnet0"));
    OK(t_attach(t, "climate", "skirit1", "vnet1"));
    OK(t_attach(t, "climate", "zeus", "tap0"));
    OK(t_report_ok(t, "climate", "brno"));
    OK(t_report_ok(t, "physics", "brno"));
    OK(t_release(t, "old", false));
    OK(t_report_ok(t, "old", "brno")); /* praha still removing */
    OK(t_shrink(t, "shrinking", "plzen"));
    OK(t_report(t, "shrinking", "plzen", t_cluster(t, "shrinking")->gen,
                false, "bridge br300 busy"));
    OK(t_report_ok(t, "bio", "praha"));
    t->now += 1234;
    OK(t_renew(t, "physics", 8 * HOUR));
}

/* A small state of its own for f, built by commands and installed with
 * a restore. */
static void small_state(struct fsm *f)
{
    struct tfsm *t = tfsm_new();
    struct mp_buf s;
    char err[256];
    OK(t_site_add(t, "lab", "5-9", true));
    OK(t_create(t, "mini", "lab", HOUR));
    t->req = "mini-1";
    OK(t_attach(t, "mini", "nobody", "eth0") == VC_ENOTFOUND ? 0 : -1);
    snap_take(&t->f, &s);
    tfsm_free(t);
    int rv = fsm_restore(f, s.data, s.len, err, sizeof err);
    mp_buf_close(&s);
    if (rv != 0)
        fail_msg("small state: %s", err);
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || !(x->t = tfsm_new()))
        return -1;
    x->other = calloc(1, sizeof *x->other);
    x->spare = calloc(1, sizeof *x->spare);
    if (!x->other || !x->spare || fsm_init(x->other) != 0 ||
        fsm_init(x->spare) != 0 || !msgpack_zone_init(&x->zone, 4096))
        return -1;
    x->rng.s = 0x5ea1;
    build_rich(x->t);
    snap_take(&x->t->f, &x->rich);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    tfsm_free(x->t);
    fsm_close(x->other);
    fsm_close(x->spare);
    free(x->other);
    free(x->spare);
    mp_buf_close(&x->rich);
    mp_buf_close(&x->small);
    msgpack_zone_destroy(&x->zone);
    free(x->copy);
    free(x);
    return 0;
}

/* Gives x->other its small state and remembers its snapshot. */
static void other_small(struct fx *x)
{
    small_state(x->other);
    check_invariants(x->other);
    mp_buf_close(&x->small);
    snap_take(x->other, &x->small);
}

static int restore(struct fx *x, struct fsm *f, const void *data, size_t len)
{
    free(x->copy);
    x->copy = dup_exact(data, len);
    x->err[0] = '\0';
    return fsm_restore(f, x->copy, len, x->err, sizeof x->err);
}

static void restore_ok(struct fx *x, struct fsm *f, const struct mp_buf *b)
{
    int rv = restore(x, f, b->data, b->len);
    if (rv != 0)
        fail_msg("restore: %s (%s)", vc_errname(rv), x->err);
}

/* --- round trip -------------------------------------------------------- */

static void rich_state_has_everything(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    check_invariants(&t->f);
    assert_int_equal(t_cluster(t, "physics")->state, FSM_PENDING);
    assert_int_equal(t_cluster(t, "climate")->state, FSM_READY);
    assert_int_equal(t_cluster(t, "old")->state, FSM_RELEASING);
    assert_int_equal(t_cluster(t, "old")->nslots, 1);
    assert_true(t_slot(t, "shrinking", "plzen")->removing);
    assert_true(t_slot(t, "shrinking", "plzen")->failed);
    assert_true(t_slot(t, "chem", "plzen")->failed);
    assert_int_equal(t_cluster(t, "physics")->natt, 2);
    assert_int_equal(t->f.dd_len, 6);
    assert_true(t->f.next_site_id == 6);
}

static void round_trip_is_byte_identical(void **state)
{
    struct fx *x = *state;
    struct mp_buf again;
    restore_ok(x, x->other, &x->rich);
    check_invariants(x->other);
    snap_take(x->other, &again);
    assert_bufs_equal(&again, &x->rich);
    mp_buf_close(&again);

    /* In place, over the very state it came from. */
    restore_ok(x, &x->t->f, &x->rich);
    check_invariants(&x->t->f);
    assert_snap_is(&x->t->f, &x->rich);

    /* What restore rebuilt that the snapshot does not show directly. */
    struct fsm *o = x->other;
    assert_string_equal(fsm_cluster_slot(fsm_cluster_find(o, "chem"),
                                         (unsigned)(fsm_site_find(o, "plzen") -
                                                    o->sites))
                            ->err,
                        "switch plzen-sw1: vlan 300: % Invalid input");
    assert_true(fsm_host_find(o, "konos1")->service);
    assert_false(fsm_host_find(o, "hal1")->service);
    assert_int_equal(fsm_cluster_find(o, "physics")->state, FSM_PENDING);
    assert_int_equal(fsm_cluster_find(o, "climate")->state, FSM_READY);
    assert_int_equal(fsm_cluster_find(o, "old")->state, FSM_RELEASING);
    assert_int_equal(fsm_site_find(o, "ostrava")->id, 5);
}

/* The same further commands, on the original and on a restored copy. */
static int continue_script(struct tfsm *t, struct proto_result *out)
{
    int n = 0;
#define STEP(call) ((void)(call), out[n++] = t->r)
    t->req = "slurm:1002"; /* remembered: its first answer */
    STEP(t_create(t, "other", "brno", HOUR));
    t->req = NULL;
    STEP(t_report_ok(t, "old", "praha"));
    STEP(t_report_ok(t, "shrinking", "plzen"));
    STEP(t_create(t, "new1", "brno,praha,plzen", HOUR));
    STEP(t_create(t, "new2", "ostrava", HOUR));
    STEP(t_extend(t, "bio", "brno"));
    STEP(t_attach(t, "bio", "skirit2", "vnet5"));
    STEP(t_service(t, "hal1", true));
    STEP(t_report(t, "chem", "plzen", 1, true, ""));
    STEP(t_site_remove(t, "plzen", false));
    STEP(t_site_remove(t, "plzen", true));
    STEP(t_host_remove(t, "skirit1"));
    STEP(t_host_add(t, "skirit3", "brno", "eth1"));
    t->now += 3 * HOUR;
    STEP(t_sweep(t));
    STEP(t_release(t, "physics", false));
    STEP(t_create(t, "tmp1", "brno,praha", HOUR));
#undef STEP
    return n;
}

/* After a restore the machine behaves exactly like the original: the same
 * further commands give the same results and the same bytes. */
static void restored_machine_continues_identically(void **state)
{
    struct fx *x = *state;
    struct tfsm *copy = tfsm_new();
    struct proto_result a[32], b[32];
    restore_ok(x, &copy->f, &x->rich);
    copy->now = x->t->now;
    int na = continue_script(x->t, a), nb = continue_script(copy, b);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++)
        if (a[i].code != b[i].code || a[i].vlan != b[i].vlan ||
            a[i].gen != b[i].gen || strcmp(a[i].msg, b[i].msg) != 0)
            fail_msg("step %d: \"%s\" vs \"%s\"", i, a[i].msg, b[i].msg);
    assert_int_equal(a[0].code, 0); /* slurm:1002 created chem */
    struct mp_buf sa, sb;
    snap_take(&x->t->f, &sa);
    snap_take(&copy->f, &sb);
    assert_bufs_equal(&sa, &sb);
    check_invariants(&copy->f);
    mp_buf_close(&sa);
    mp_buf_close(&sb);
    tfsm_free(copy);
}

/* --- refused snapshots ------------------------------------------------- */

static void assert_refused_untouched(struct fx *x, int rv)
{
    if (rv == 0)
        fail_msg("corrupt snapshot restored");
    assert_true(rv == VC_EMALFORMED || rv == VC_EVERSION);
    assert_true(x->err[0] != '\0');
    assert_snap_is(x->other, &x->small);
}

static void restore_refuses_every_prefix(void **state)
{
    struct fx *x = *state;
    other_small(x);
    for (size_t len = 0; len < x->rich.len; len++) {
        int rv = restore(x, x->other, x->rich.data, len);
        if (rv == 0)
            fail_msg("prefix of %zu of %zu bytes restored", len, x->rich.len);
        assert_refused_untouched(x, rv);
    }
    /* Hostile headers where a snapshot's fields would be. */
    static const struct {
        uint8_t b[24];
        size_t n;
    } bad[] = {
        {{0xdd, 0xff, 0x00, 0x00, 0x00}, 5},
        {{0x96, 0x01, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90, 0x90, 0x90},
         11}, /* array32 claiming 2^31 sites */
        {{0x96, 0x01, 0x01, 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x90, 0x90, 0x90},
         11}, /* map32 */
        {{0x96, 0x01, 0x01, 0x91, 0x97, 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff,
          'a'},
         12}, /* str32 site name claiming 2 GiB */
        {{0x96, 0x01, 0x01, 0x91, 0x97, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xf0,
          'a'},
         12}, /* bin32 */
        {{0x96, 0x01, 0x01, 0x90, 0x90, 0x90, 0xd4, 0x01, 0x00}, 9}, /* ext */
        {{0x96, 0x01, 0x01, 0x90, 0x90, 0xc7, 0x01, 0x05, 0x00}, 9},
        {{0x96, 0x01, 0x01, 0x90, 0x90, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
          0x91, 0x91, 0x91, 0x91, 0x90},
         16}, /* nested deeper than MP_MAX_DEPTH */
        {{0x96, 0xc1, 0x01, 0x90, 0x90, 0x90, 0x90}, 7},
        {{0x96, 0xca, 0x3f, 0x80, 0x00, 0x00, 0x01, 0x90, 0x90, 0x90, 0x90},
         11}, /* a float version */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused_untouched(x, restore(x, x->other, bad[i].b, bad[i].n));
    /* Trailing bytes after a valid snapshot. */
    char *longer = malloc(x->rich.len + 1);
    assert_non_null(longer);
    memcpy(longer, x->rich.data, x->rich.len);
    longer[x->rich.len] = 0;
    int rv = restore(x, x->other, longer, x->rich.len + 1);
    free(longer);
    assert_refused_untouched(x, rv);
}

static void mutate(struct fx *x, uint8_t *b, size_t len)
{
    for (int m = 0, nm = 1 + (int)rng_below(&x->rng, 3); m < nm; m++) {
        size_t at = rng_below(&x->rng, (uint32_t)len);
        switch (rng_below(&x->rng, 4)) {
        case 0: b[at] ^= (uint8_t)(1u << rng_below(&x->rng, 8)); break;
        case 1: b[at] = (uint8_t)rng_next(&x->rng); break;
        case 2: b[at] = 0; break;
        default: b[at] = (uint8_t)(b[at] + (rng_pct(&x->rng, 50) ? 1 : -1)); break;
        }
    }
}

/* A snapshot restore accepts must describe a state whose own snapshot
 * restores to the same bytes (a replica can always pass its state on). */
static void assert_stable(struct fx *x)
{
    struct mp_buf s1, s2;
    check_invariants(x->other);
    snap_take(x->other, &s1);
    int rv = restore(x, x->spare, s1.data, s1.len);
    if (rv != 0) {
        mp_buf_close(&s1);
        fail_msg("a restored state's snapshot does not restore: %s",
                 x->err);
    }
    snap_take(x->spare, &s2);
    assert_bufs_equal(&s1, &s2);
    mp_buf_close(&s1);
    mp_buf_close(&s2);
}

static void restore_survives_mutations(void **state)
{
    struct fx *x = *state;
    uint8_t *b = malloc(x->rich.len);
    unsigned accepted = 0;
    assert_non_null(b);
    other_small(x);
    for (int i = 0; i < 2500; i++) {
        memcpy(b, x->rich.data, x->rich.len);
        mutate(x, b, x->rich.len);
        int rv = restore(x, x->other, b, x->rich.len);
        if (rv != 0) {
            assert_refused_untouched(x, rv);
            continue;
        }
        accepted++;
        assert_stable(x);
        restore_ok(x, x->other, &x->small); /* back to the small state */
    }
    free(b);
    assert_true(accepted > 10);
}

static void restore_survives_random_buffers(void **state)
{
    struct fx *x = *state;
    uint8_t b[256];
    other_small(x);
    for (int i = 0; i < 2500; i++) {
        size_t len = rng_below(&x->rng, sizeof b);
        for (size_t j = 0; j < len; j++)
            b[j] = (uint8_t)rng_next(&x->rng);
        if (len && rng_pct(&x->rng, 50))
            b[0] = 0x96; /* a 6-element array, like a snapshot */
        if (len > 1 && rng_pct(&x->rng, 50))
            b[1] = 0x01;
        int rv = restore(x, x->other, b, len);
        assert_refused_untouched(x, rv);
    }
}

/* --- crafted inconsistent snapshots ------------------------------------ */

static msgpack_object *field(msgpack_object *o, uint32_t i)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_true(i < o->via.array.size);
    return &o->via.array.ptr[i];
}

static msgpack_object *cluster_rec(msgpack_object *root, const char *name)
{
    msgpack_object *cl = field(root, 4);
    for (uint32_t i = 0; i < cl->via.array.size; i++) {
        msgpack_object *c = &cl->via.array.ptr[i];
        msgpack_object *n = field(c, 0);
        if (n->via.str.size == strlen(name) &&
            !memcmp(n->via.str.ptr, name, n->via.str.size))
            return c;
    }
    fail_msg("no cluster %s in the snapshot", name);
    return NULL;
}

static void set_uint(msgpack_object *o, uint64_t v)
{
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = v;
}

static void set_str(msgpack_object *o, const char *s)
{
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.ptr = s;
    o->via.str.size = (uint32_t)strlen(s);
}

/* Snapshot field positions (docs/protocol.md). */
enum { CL_NAME, CL_OWNER, CL_IMAGE, CL_VLAN, CL_CREATED, CL_DEADLINE, CL_GEN,
       CL_RELEASING, CL_SLOTS, CL_ATT };
enum { SL_SITE, SL_REMOVING, SL_FAILED, SL_GEN, SL_APPLIED, SL_ERR };

static void edit_version(msgpack_object *r)
{
    set_uint(field(r, 0), FSM_SNAPSHOT_VERSION + 1);
}
static void edit_next_id(msgpack_object *r) { set_uint(field(r, 1), 3); }
static void edit_site_dup(msgpack_object *r)
{
    msgpack_object *s = field(r, 2);
    s->via.array.ptr[1] = s->via.array.ptr[0];
}
static void edit_site_uplink(msgpack_object *r)
{
    set_uint(field(field(field(r, 2), 0), 4), 7);
}
static void edit_site_svlan_without_qinq(msgpack_object *r)
{
    set_uint(field(field(field(r, 2), 0), 5), 5);
}
static void edit_host_site(msgpack_object *r)
{
    set_str(field(field(field(r, 3), 0), 1), "nowhere");
}
static void edit_vlan_twice(msgpack_object *r)
{
    /* bio and shrinking share praha and plzen, whose pools hold both. */
    *field(cluster_rec(r, "shrinking"), CL_VLAN) =
        *field(cluster_rec(r, "bio"), CL_VLAN);
}
static void edit_vlan_outside_pool(msgpack_object *r)
{
    set_uint(field(cluster_rec(r, "physics"), CL_VLAN), 4000);
}
static void edit_slot_site(msgpack_object *r)
{
    set_str(field(field(field(cluster_rec(r, "chem"), CL_SLOTS), 0), SL_SITE),
            "nowhere");
}
static void edit_slot_site_twice(msgpack_object *r)
{
    msgpack_object *s = field(cluster_rec(r, "chem"), CL_SLOTS);
    s->via.array.ptr[1] = s->via.array.ptr[0];
}
static void edit_slot_gen(msgpack_object *r)
{
    msgpack_object *c = cluster_rec(r, "chem");
    set_uint(field(field(field(c, CL_SLOTS), 0), SL_GEN),
             field(c, CL_GEN)->via.u64 + 1);
}
static void edit_no_slots(msgpack_object *r)
{
    field(cluster_rec(r, "chem"), CL_SLOTS)->via.array.size = 0;
}
static void edit_cluster_name(msgpack_object *r)
{
    set_str(field(cluster_rec(r, "chem"), CL_NAME), "bad name");
}
static void edit_cluster_dup(msgpack_object *r)
{
    msgpack_object *cl = field(r, 4);
    cl->via.array.ptr[1] = cl->via.array.ptr[0];
}
static void edit_gen_zero(msgpack_object *r)
{
    set_uint(field(cluster_rec(r, "climate"), CL_GEN), 0);
}
static void edit_attach_host(msgpack_object *r)
{
    set_str(field(field(field(cluster_rec(r, "physics"), CL_ATT), 0), 0),
            "ghost");
}
static void edit_attach_iface(msgpack_object *r)
{
    set_str(field(field(field(cluster_rec(r, "physics"), CL_ATT), 0), 1),
            "a/b");
}
static void set_bool(msgpack_object *o, bool v)
{
    o->type = MSGPACK_OBJECT_BOOLEAN;
    o->via.boolean = v;
}
static void edit_attach_unspanned_site(msgpack_object *r)
{
    /* zeus is at ostrava; physics spans brno and praha. */
    set_str(field(field(field(cluster_rec(r, "physics"), CL_ATT), 0), 0),
            "zeus");
}
static void edit_attach_removing_site(msgpack_object *r)
{
    /* climate's ostrava slot, where zeus/tap0 is attached, "removing". */
    msgpack_object *sl = field(cluster_rec(r, "climate"), CL_SLOTS);
    for (uint32_t i = 0; i < sl->via.array.size; i++)
        if (field(&sl->via.array.ptr[i], SL_SITE)->via.str.ptr[0] == 'o')
            set_bool(field(&sl->via.array.ptr[i], SL_REMOVING), true);
}
static void edit_attach_twice(msgpack_object *r)
{
    /* skirit1/vnet1 of climate becomes physics' skirit1/vnet0. */
    set_str(field(field(field(cluster_rec(r, "climate"), CL_ATT), 0), 1),
            "vnet0");
}
static void edit_released_but_active(msgpack_object *r)
{
    set_bool(field(field(field(cluster_rec(r, "old"), CL_SLOTS), 0),
                   SL_REMOVING),
             false);
}
static void edit_no_active_site(msgpack_object *r)
{
    msgpack_object *sl = field(cluster_rec(r, "chem"), CL_SLOTS);
    for (uint32_t i = 0; i < sl->via.array.size; i++)
        set_bool(field(&sl->via.array.ptr[i], SL_REMOVING), true);
}
static void edit_dedupe_dup(msgpack_object *r)
{
    msgpack_object *d = field(r, 5);
    d->via.array.ptr[1] = d->via.array.ptr[0];
}
static void edit_dedupe_code(msgpack_object *r)
{
    set_uint(field(field(field(r, 5), 0), 1), 5);
}
static void edit_dedupe_empty_id(msgpack_object *r)
{
    set_str(field(field(field(r, 5), 0), 0), "");
}
static void edit_dedupe_id_nul(msgpack_object *r)
{
    static const char id[] = {'s', 'l', 0, 'x'};
    msgpack_object *o = field(field(field(r, 5), 1), 0);
    o->via.str.ptr = id;
    o->via.str.size = sizeof id;
}
static void edit_dedupe_id_space(msgpack_object *r)
{
    set_str(field(field(field(r, 5), 1), 0), "two words");
}
static void edit_top_size(msgpack_object *r) { r->via.array.size = 5; }

static void restore_refuses_inconsistent_states(void **state)
{
    struct fx *x = *state;
    static const struct {
        const char *what;
        void (*edit)(msgpack_object *);
        int code;
    } cases[] = {
        {"a newer version", edit_version, VC_EVERSION},
        {"next site id already taken", edit_next_id, VC_EMALFORMED},
        {"site listed twice", edit_site_dup, VC_EMALFORMED},
        {"unknown uplink", edit_site_uplink, VC_EMALFORMED},
        {"S-VLAN on a non-qinq uplink", edit_site_svlan_without_qinq,
         VC_EMALFORMED},
        {"host at an unknown site", edit_host_site, VC_EMALFORMED},
        {"VLAN held twice at a site", edit_vlan_twice, VC_EMALFORMED},
        {"VLAN outside the pool", edit_vlan_outside_pool, VC_EMALFORMED},
        {"slot at an unknown site", edit_slot_site, VC_EMALFORMED},
        {"site listed twice in a cluster", edit_slot_site_twice,
         VC_EMALFORMED},
        {"slot generation ahead of its cluster", edit_slot_gen,
         VC_EMALFORMED},
        {"cluster without sites", edit_no_slots, VC_EMALFORMED},
        {"bad cluster name", edit_cluster_name, VC_EMALFORMED},
        {"cluster listed twice", edit_cluster_dup, VC_EMALFORMED},
        {"generation 0", edit_gen_zero, VC_EMALFORMED},
        {"attachment of an unknown host", edit_attach_host, VC_EMALFORMED},
        {"bad attachment interface", edit_attach_iface, VC_EMALFORMED},
        {"attachment at a site the cluster does not span",
         edit_attach_unspanned_site, VC_EMALFORMED},
        {"attachment at a site being removed", edit_attach_removing_site,
         VC_EMALFORMED},
        {"interface attached to two clusters", edit_attach_twice,
         VC_EMALFORMED},
        {"released cluster still spanning a site", edit_released_but_active,
         VC_EMALFORMED},
        {"live cluster spanning no site", edit_no_active_site, VC_EMALFORMED},
        {"request id listed twice", edit_dedupe_dup, VC_EMALFORMED},
        {"positive result code", edit_dedupe_code, VC_EMALFORMED},
        {"empty request id", edit_dedupe_empty_id, VC_EMALFORMED},
        {"request id with a NUL byte", edit_dedupe_id_nul, VC_EMALFORMED},
        {"request id with a space", edit_dedupe_id_space, VC_EMALFORMED},
        {"five top-level fields", edit_top_size, VC_EMALFORMED},
    };
    int failures = 0;
    other_small(x);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_object root;
        struct mp_buf b;
        msgpack_packer pk;
        msgpack_zone_clear(&x->zone);
        assert_int_equal(mp_decode(x->rich.data, x->rich.len, &x->zone,
                                   &root),
                         0);
        cases[i].edit(&root);
        mp_buf_init(&b);
        mp_packer_init(&pk, &b);
        msgpack_pack_object(&pk, root);
        int rv = restore(x, x->other, b.data, b.len);
        mp_buf_close(&b);
        if (rv != cases[i].code) {
            print_error("%s: restore gave %s (%s), want %s\n", cases[i].what,
                        vc_errname(rv), x->err, vc_errname(cases[i].code));
            failures++;
            if (rv == 0)
                restore_ok(x, x->other, &x->small);
            continue;
        }
        assert_refused_untouched(x, rv);
    }
    assert_int_equal(failures, 0);
    /* The unedited object packs back to the same bytes: the edits above
     * are the only difference. */
    msgpack_object root;
    struct mp_buf b;
    msgpack_packer pk;
    msgpack_zone_clear(&x->zone);
    assert_int_equal(mp_decode(x->rich.data, x->rich.len, &x->zone, &root), 0);
    mp_buf_init(&b);
    mp_packer_init(&pk, &b);
    msgpack_pack_object(&pk, root);
    restore_ok(x, x->other, &b);
    assert_bufs_equal(&b, &x->rich);
    mp_buf_close(&b);
}

/* --- replicas ---------------------------------------------------------- */

static void assert_same_result(const struct proto_result *a,
                               const struct proto_result *b,
                               const struct proto_cmd *c, int i)
{
    if (a->code != b->code || a->vlan != b->vlan || a->gen != b->gen ||
        strcmp(a->msg, b->msg) != 0)
        fail_msg("command %d (%s): replicas answered differently:\n"
                 "  %s vlan %u gen %llu \"%s\"\n  %s vlan %u gen %llu \"%s\"",
                 i, proto_cmd_name(c->type), vc_errname(a->code), a->vlan,
                 (unsigned long long)a->gen, a->msg, vc_errname(b->code),
                 b->vlan, (unsigned long long)b->gen, b->msg);
}

/* Replaces f's state by a restart from its own snapshot: close, init,
 * restore. */
static void restart_from_snapshot(struct fx *x, struct fsm *f)
{
    struct mp_buf s, again;
    snap_take(f, &s);
    fsm_close(f);
    assert_int_equal(fsm_init(f), 0);
    restore_ok(x, f, &s);
    snap_take(f, &again);
    assert_bufs_equal(&s, &again);
    mp_buf_close(&s);
    mp_buf_close(&again);
}

/* Three replicas apply the same random log, batch by batch through the
 * log encoding. C restarts from its snapshot half way, D restores its own
 * snapshot in place every few hundred commands. */
static void replicas_agree(struct fx *x, uint64_t seed, int ncmds)
{
    struct fsm *m[4];
    struct cmdgen g;
    struct proto_cmd *in = calloc(BATCH_MAX, sizeof *in);
    struct proto_cmd *out = calloc(BATCH_MAX, sizeof *out);
    struct mp_buf log;
    struct proto_result r[4];
    int done = 0, next_d = 300;
    bool restarted = false;
    assert_non_null(in);
    assert_non_null(out);
    for (int k = 0; k < 4; k++) {
        m[k] = calloc(1, sizeof *m[k]);
        assert_non_null(m[k]);
        assert_int_equal(fsm_init(m[k]), 0);
    }
    mp_buf_init(&log);
    cmdgen_init(&g, seed);
    while (done < ncmds) {
        size_t n = 1 + rng_below(&g.rng, BATCH_MAX), got;
        for (size_t i = 0; i < n; i++)
            cmdgen_next(&g, m[0], &in[i]);
        mp_buf_reset(&log);
        if (proto_batch_encode(in, n, &log, x->err, sizeof x->err) != 0)
            fail_msg("generated batch does not encode: %s", x->err);
        msgpack_zone_clear(&x->zone);
        if (proto_batch_decode(log.data, log.len, &x->zone, out, BATCH_MAX,
                               &got, x->err, sizeof x->err) != 0)
            fail_msg("batch does not decode: %s", x->err);
        assert_int_equal(got, n);
        for (size_t i = 0; i < n; i++, done++) {
            for (int k = 0; k < 4; k++)
                t_apply(m[k], &out[i], &r[k]);
            for (int k = 1; k < 4; k++)
                assert_same_result(&r[0], &r[k], &out[i], done);
        }
        check_invariants(m[0]);
        if (!restarted && done >= ncmds / 2) {
            restart_from_snapshot(x, m[2]);
            check_invariants(m[2]);
            restarted = true;
        }
        if (done >= next_d) {
            struct mp_buf s;
            snap_take(m[3], &s);
            restore_ok(x, m[3], &s);
            mp_buf_close(&s);
            next_d += 300;
        }
    }
    struct mp_buf s[4];
    for (int k = 0; k < 4; k++) {
        snap_take(m[k], &s[k]);
        check_invariants(m[k]);
    }
    for (int k = 1; k < 4; k++)
        assert_bufs_equal(&s[0], &s[k]);
    /* The log really built something. */
    assert_true(m[0]->nsites > 0);
    assert_true(m[0]->dd_len > 100);
    for (int k = 0; k < 4; k++) {
        mp_buf_close(&s[k]);
        fsm_close(m[k]);
        free(m[k]);
    }
    mp_buf_close(&log);
    free(in);
    free(out);
}

static void replicas_agree_seed_1(void **state)
{
    replicas_agree(*state, 1, 4000);
}

static void replicas_agree_seed_2(void **state)
{
    replicas_agree(*state, 0xdecafbad, 4000);
}

static void replicas_agree_seed_3(void **state)
{
    replicas_agree(*state, 20251126, 4000);
}

/* A full request-id window, with ids and messages of every length,
 * survives snapshot and restore: every id is answered as before. */
static void full_window_round_trip(void **state)
{
    struct fx *x = *state;
    struct fsm *f = x->spare;
    struct proto_cmd c;
    struct proto_result r, r2;
    char id[VC_REQID_MAX + 1], name[VC_NAME_MAX + 1];
    const unsigned total = FSM_DEDUPE_MAX + FSM_DEDUPE_MAX / 2 + 17;
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_RENEW);
    c.lease_ms = HOUR;
    for (unsigned i = 0; i < total; i++) {
        snprintf(id, sizeof id, "r%u-%.*s", i, (int)(i * 7919 % 100),
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        snprintf(name, sizeof name, "c%u-%.*s", i, (int)(i * 104729 % 50),
                 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
        c.req_id = mp_cstr(id);
        c.name = mp_cstr(name);
        t_apply(f, &c, &r);
        assert_int_equal(r.code, VC_ENOTFOUND);
    }
    assert_int_equal(f->dd_len, FSM_DEDUPE_MAX);
    struct mp_buf s;
    snap_take(f, &s);
    restore_ok(x, x->other, &s);
    assert_snap_is(x->other, &s);
    mp_buf_close(&s);
    /* Every remembered id gets its own first answer on both machines;
     * the command sent with it now is different. */
    proto_cmd_init(&c, PROTO_CMD_LEASE_SWEEP);
    uint64_t applied = f->applied;
    for (unsigned i = total - FSM_DEDUPE_MAX; i < total; i++) {
        snprintf(id, sizeof id, "r%u-%.*s", i, (int)(i * 7919 % 100),
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        snprintf(name, sizeof name, "c%u-%.*s", i, (int)(i * 104729 % 50),
                 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
        c.req_id = mp_cstr(id);
        t_apply(f, &c, &r);
        t_apply(x->other, &c, &r2);
        char want[VC_MSG_MAX + 1];
        snprintf(want, sizeof want, "no cluster named %s", name);
        if (r.code != VC_ENOTFOUND || strcmp(r.msg, want) != 0 ||
            r2.code != VC_ENOTFOUND || strcmp(r2.msg, want) != 0)
            fail_msg("id %s answered \"%s\" / \"%s\", want \"%s\"", id, r.msg,
                     r2.msg, want);
    }
    assert_true(f->applied == applied);
    /* The oldest ones were forgotten: they run again. */
    c.req_id = mp_cstr("r0-");
    t_apply(f, &c, &r);
    assert_int_equal(r.code, 0);
    assert_true(f->applied == applied + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(rich_state_has_everything),
        T(round_trip_is_byte_identical),
        T(restored_machine_continues_identically),
        T(restore_refuses_every_prefix),
        T(restore_survives_mutations),
        T(restore_survives_random_buffers),
        T(restore_refuses_inconsistent_states),
        T(replicas_agree_seed_1),
        T(replicas_agree_seed_2),
        T(replicas_agree_seed_3),
        T(full_window_round_trip),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
