/* agent/fsm: allocation, the VLAN lifecycle and every command's rules.
 * Commands take the real path (encode -> decode -> fsm_apply); refusals
 * are checked to change nothing by comparing snapshot bytes. */
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

struct fx {
    struct tfsm *t;
    struct mp_buf before;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || !(x->t = tfsm_new()))
        return -1;
    mp_buf_init(&x->before);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    tfsm_free(x->t);
    mp_buf_close(&x->before);
    free(x);
    return 0;
}

/* Remembers the state's snapshot; unchanged() asserts it is the same. */
/* The snapshot of f without its audit trail: a command accepted as a
 * no-op ("already releasing", nothing expired) is still recorded there,
 * and these tests are about the allocation state. */
static void snap_without_audit(struct fsm *f, struct mp_buf *b)
{
    struct fsm_audit saved = f->audit;
    memset(&f->audit, 0, sizeof f->audit);
    snap_take(f, b);
    f->audit = saved;
}

static void remember(struct fx *x)
{
    mp_buf_close(&x->before);
    snap_without_audit(&x->t->f, &x->before);
}

static void unchanged(struct fx *x)
{
    struct mp_buf now;
    snap_without_audit(&x->t->f, &now);
    assert_bufs_equal(&now, &x->before);
    mp_buf_close(&now);
    check_invariants(&x->t->f);
}

#define OK(call)                                                           \
    do {                                                                   \
        int rv_ = (call);                                                  \
        if (rv_ != 0)                                                      \
            fail_msg("%s: %s (%s)", #call, vc_errname(rv_), x->t->r.msg); \
    } while (0)

#define REFUSED(code, call)                                                \
    do {                                                                   \
        int rv_ = (call);                                                  \
        if (rv_ != (code))                                                 \
            fail_msg("%s: got %s (%s), want %s", #call, vc_errname(rv_),  \
                     x->t->r.msg, vc_errname(code));                       \
    } while (0)

static unsigned vlan_of(struct fx *x, const char *cluster)
{
    return t_cluster(x->t, cluster)->vlan;
}

static bool used_at(struct fx *x, const char *site, unsigned vlan)
{
    return vlanset_has(&t_site(x->t, site)->used, vlan);
}

static bool free_at(struct fx *x, const char *site, unsigned vlan)
{
    return vlanset_has(&t_site(x->t, site)->free, vlan);
}

/* --- allocation -------------------------------------------------------- */

static void create_picks_lowest_common_free(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "brno", "100-199", true));
    OK(t_site_add(t, "praha", "150-300", true));
    OK(t_site_add(t, "ostrava", "1-4094", false));
    OK(t_create(t, "x", "brno", HOUR));
    assert_int_equal(t->r.vlan, 100);
    assert_int_equal(t->r.gen, 1);
    OK(t_create(t, "y", "brno,praha", HOUR));
    assert_int_equal(t->r.vlan, 150); /* lowest in both pools */
    OK(t_create(t, "z", "praha", HOUR));
    assert_int_equal(t->r.vlan, 151);
    OK(t_create(t, "w", "ostrava,praha,brno", HOUR));
    assert_int_equal(t->r.vlan, 152);
    assert_int_equal(vlan_of(x, "w"), 152);
    assert_true(used_at(x, "ostrava", 152));
    assert_false(used_at(x, "ostrava", 150));
    assert_true(used_at(x, "brno", 150) && used_at(x, "praha", 150));
    assert_int_equal(vlanset_count(&t_site(t, "brno")->used), 3);
    assert_int_equal(vlanset_count(&t_site(t, "brno")->free), 97);
    /* A cluster's VLAN is the same at every site; the same VLAN can serve
     * different clusters at disjoint sites. */
    OK(t_create(t, "v", "ostrava", HOUR));
    assert_int_equal(t->r.vlan, 1);
    assert_string_equal(t->r.msg, "cluster v created with VLAN 1");
    REFUSED(VC_ENOTFOUND, t_create(t, "u", "brno,nowhere", HOUR));
    assert_contains(t->r.msg, "nowhere");
}

/* Brute force over the whole state: the lowest VLAN in every listed
 * site's pool and free there. */
static unsigned lowest_by_hand(const struct fsm *f, const struct proto_cmd *c)
{
    for (unsigned v = VLAN_MIN; v <= VLAN_MAX; v++) {
        bool ok = true;
        for (uint32_t i = 0; i < c->nsites && ok; i++) {
            const struct fsm_site *s = NULL;
            for (int k = 0; k < VC_SITES_MAX; k++)
                if (f->sites[k].live && mp_str_eq(c->sites[i], f->sites[k].name))
                    s = &f->sites[k];
            if (!s)
                return 0;
            ok = vlanset_has(&s->pool, v);
            for (uint32_t j = 0; j < f->nclusters && ok; j++) {
                const struct fsm_cluster *o = &f->clusters[j];
                if (o->live && o->vlan == v &&
                    fsm_cluster_slot(o, (unsigned)(s - f->sites)))
                    ok = false;
            }
        }
        if (ok)
            return v;
    }
    return 0;
}

/* Thousands of random commands: after each one every invariant holds,
 * and each create got exactly the VLAN a brute-force search finds. */
static void random_commands_keep_invariants(void **state)
{
    struct fx *x = *state;
    struct fsm *f = &x->t->f;
    struct cmdgen g;
    struct proto_cmd *c = malloc(sizeof *c);
    struct proto_result r;
    unsigned creates = 0, novlan = 0;
    assert_non_null(c);
    cmdgen_init(&g, 42);
    for (int i = 0; i < 10000; i++) {
        cmdgen_next(&g, f, c);
        char err[256];
        if (proto_cmd_validate(c, err, sizeof err) != 0)
            fail_msg("generated invalid %s: %s", proto_cmd_name(c->type), err);
        /* Creates without a request id (so never answered from the
         * window) are checked against the brute force. */
        bool fresh = c->type == PROTO_CMD_CLUSTER_CREATE && c->req_id.n == 0;
        unsigned want = fresh ? lowest_by_hand(f, c) : 0;
        bool exists = false;
        if (fresh) {
            char name[VC_NAME_MAX + 1];
            mp_str_copy(c->name, name, sizeof name);
            exists = fsm_cluster_find(f, name) != NULL;
        }
        t_apply(f, c, &r);
        check_invariants(f);
        if (fresh && !exists && r.code != VC_ENOTFOUND) {
            if (want == 0) {
                assert_int_equal(r.code, VC_ENOVLAN);
                novlan++;
            } else {
                assert_int_equal(r.code, 0);
                assert_int_equal(r.vlan, want);
                creates++;
            }
        }
    }
    free(c);
    /* The generator must reach both outcomes for this to mean much. */
    assert_true(creates > 100);
    assert_true(novlan > 20);
}

/* --- NOVLAN ------------------------------------------------------------ */

static void novlan_disjoint_pools_names_them(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "brno", "100-199", true));
    OK(t_site_add(t, "praha", "200-299,400", true));
    OK(t_site_add(t, "plzen", "100-400", true));
    remember(x);
    REFUSED(VC_ENOVLAN, t_create(t, "x", "brno,praha,plzen", HOUR));
    assert_contains(t->r.msg, "brno (100-199)");
    assert_contains(t->r.msg, "praha (200-299,400)");
    assert_null(fsm_cluster_find(&t->f, "x"));
    unchanged(x);
}

static void novlan_usage_names_blocking_sites(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "alpha", "100-101", true));
    OK(t_site_add(t, "bravo", "100-102", true));
    OK(t_site_add(t, "delta", "100-101", true));
    OK(t_create(t, "x", "alpha", HOUR));   /* 100 at alpha */
    OK(t_create(t, "y", "bravo", HOUR));   /* 100 at bravo */
    OK(t_create(t, "w", "bravo", HOUR));   /* 101 at bravo */
    assert_int_equal(t->r.vlan, 101);
    remember(x);
    /* Common pool {100, 101}: alpha blocks one, bravo both, delta none. */
    REFUSED(VC_ENOVLAN, t_create(t, "z", "alpha,bravo,delta", HOUR));
    assert_contains(t->r.msg, "alpha (1)");
    assert_contains(t->r.msg, "bravo (2)");
    assert_not_contains(t->r.msg, "delta");
    assert_int_equal(t->r.vlan, 0);
    unchanged(x);
    /* The refusal is remembered under its request id like any answer. */
    t->req = "novlan-1";
    REFUSED(VC_ENOVLAN, t_create(t, "z", "alpha,bravo,delta", HOUR));
    t->req = NULL;
    /* Freeing alpha's VLAN is not enough (bravo holds both shared IDs),
     * and alpha is no longer named; releasing w frees 101 at bravo. */
    OK(t_release(t, "x", true));
    REFUSED(VC_ENOVLAN, t_create(t, "z", "alpha,bravo,delta", HOUR));
    assert_not_contains(t->r.msg, "alpha");
    OK(t_release(t, "w", true));
    OK(t_create(t, "z", "alpha,bravo,delta", HOUR));
    assert_int_equal(t->r.vlan, 101);
}

/* 4094 clusters take every ID of a full pool; the 4095th gets NOVLAN and
 * changes nothing. */
static void exhaust_full_pool(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    char name[32];
    OK(t_site_add(t, "all", "1-4094", false));
    for (unsigned i = 0; i < 4094; i++) {
        snprintf(name, sizeof name, "c%u", i);
        OK(t_create(t, name, "all", HOUR));
        assert_int_equal(t->r.vlan, i + 1);
    }
    assert_true(vlanset_empty(&t_site(t, "all")->free));
    remember(x);
    REFUSED(VC_ENOVLAN, t_create(t, "one-more", "all", HOUR));
    assert_contains(t->r.msg, "all (4094)");
    unchanged(x);
    /* Unmanaged site: a release frees the VLAN at once. */
    OK(t_release(t, "c999", false));
    assert_null(fsm_cluster_find(&t->f, "c999"));
    assert_true(free_at(x, "all", 1000));
    OK(t_create(t, "one-more", "all", HOUR));
    assert_int_equal(t->r.vlan, 1000);
    REFUSED(VC_ENOVLAN, t_create(t, "two-more", "all", HOUR));
}

/* --- release ----------------------------------------------------------- */

static void release_unmanaged_frees_at_once(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "lab", "10-20", false));
    OK(t_create(t, "x", "lab", HOUR));
    assert_int_equal(t->r.vlan, 10);
    assert_int_equal(t_cluster(t, "x")->state, FSM_READY);
    OK(t_create(t, "y", "lab", HOUR));
    OK(t_release(t, "x", false));
    assert_int_equal(t->r.vlan, 10);
    assert_null(fsm_cluster_find(&t->f, "x"));
    assert_true(free_at(x, "lab", 10));
    assert_int_equal(t_site(t, "lab")->nslots, 1);
    OK(t_create(t, "z", "lab", HOUR));
    assert_int_equal(t->r.vlan, 10);
    REFUSED(VC_ENOTFOUND, t_release(t, "x", false));
}

static void release_managed_waits_for_each_report(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "m1", "10-20", true));
    OK(t_site_add(t, "m2", "10-20", true));
    OK(t_create(t, "x", "m1,m2", HOUR));
    unsigned v = t->r.vlan;
    uint64_t gen = t_cluster(t, "x")->gen;
    OK(t_release(t, "x", false));
    struct fsm_cluster *c = t_cluster(t, "x");
    assert_int_equal(c->state, FSM_RELEASING);
    assert_true(c->gen > gen);
    assert_int_equal(t->r.gen, c->gen);
    assert_true(t_slot(t, "x", "m1")->removing);
    /* Not before the report: still held at both sites. */
    assert_true(used_at(x, "m1", v) && used_at(x, "m2", v));
    OK(t_create(t, "y", "m1", HOUR));
    assert_int_not_equal(t->r.vlan, v);
    /* Releasing again is a no-op that says so. */
    remember(x);
    OK(t_release(t, "x", false));
    unchanged(x);
    /* A stale report (from before the release) frees nothing. */
    REFUSED(VC_ESTATE, t_report(t, "x", "m1", gen, true, ""));
    assert_true(used_at(x, "m1", v));
    /* A failed removal frees nothing either. */
    OK(t_report(t, "x", "m1", t_cluster(t, "x")->gen, false, "bridge busy"));
    assert_true(used_at(x, "m1", v));
    assert_true(t_slot(t, "x", "m1")->failed);
    /* m1 reports the removal: free there, still held at m2. */
    OK(t_report_ok(t, "x", "m1"));
    assert_false(used_at(x, "m1", v));
    assert_true(free_at(x, "m1", v));
    assert_true(used_at(x, "m2", v));
    assert_null(t_slot(t, "x", "m1"));
    OK(t_create(t, "z", "m2", HOUR));
    assert_int_not_equal(t->r.vlan, v);
    REFUSED(VC_EEXISTS, t_create(t, "x", "m1", HOUR));
    /* m2 reports: the cluster is gone and v is free everywhere. */
    OK(t_report_ok(t, "x", "m2"));
    assert_null(fsm_cluster_find(&t->f, "x"));
    assert_true(free_at(x, "m2", v));
    OK(t_create(t, "w", "m1,m2", HOUR));
    assert_int_equal(t->r.vlan, v);
}

static void forced_release_frees_managed_at_once(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "m1", "10-20", true));
    OK(t_create(t, "x", "m1", HOUR));
    OK(t_release(t, "x", false));
    OK(t_release(t, "x", true));
    assert_null(fsm_cluster_find(&t->f, "x"));
    assert_true(free_at(x, "m1", 10));
    assert_int_equal(t_site(t, "m1")->nslots, 0);
}

static void duplicate_cluster_name(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "10-20", true));
    OK(t_site_add(t, "b", "10-20", true));
    OK(t_create(t, "x", "a", HOUR));
    remember(x);
    REFUSED(VC_EEXISTS, t_create(t, "x", "b", HOUR));
    assert_contains(t->r.msg, "x");
    unchanged(x);
    OK(t_release(t, "x", false)); /* releasing still owns the name */
    remember(x);
    REFUSED(VC_EEXISTS, t_create(t, "x", "b", HOUR));
    unchanged(x);
}

/* --- extend / shrink --------------------------------------------------- */

static void extend_conflicts_change_nothing(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_site_add(t, "c", "300-400", true));
    OK(t_create(t, "x", "a", HOUR));
    OK(t_create(t, "y", "b", HOUR));
    assert_int_equal(vlan_of(x, "x"), vlan_of(x, "y"));
    remember(x);
    REFUSED(VC_ECONFLICT, t_extend(t, "x", "b")); /* taken by y */
    assert_contains(t->r.msg, "cluster y");
    unchanged(x);
    REFUSED(VC_ECONFLICT, t_extend(t, "x", "c")); /* outside c's pool */
    assert_contains(t->r.msg, "pool");
    unchanged(x);
    REFUSED(VC_EEXISTS, t_extend(t, "x", "a"));
    REFUSED(VC_ENOTFOUND, t_extend(t, "x", "nowhere"));
    REFUSED(VC_ENOTFOUND, t_extend(t, "nobody", "b"));
    unchanged(x);

    OK(t_create(t, "z", "a", HOUR)); /* 101, free at b */
    unsigned v = t->r.vlan;
    uint64_t gen = t_cluster(t, "z")->gen;
    OK(t_extend(t, "z", "b"));
    assert_int_equal(t->r.vlan, v);
    assert_true(used_at(x, "b", v));
    struct fsm_cluster *z = t_cluster(t, "z");
    assert_int_equal(z->nslots, 2);
    assert_true(z->gen > gen);
    assert_int_equal(t_slot(t, "z", "b")->gen, z->gen);
    assert_int_equal(z->state, FSM_PENDING);
}

static void extend_while_removing_conflicts(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_create(t, "x", "a,b", HOUR));
    OK(t_shrink(t, "x", "b"));
    remember(x);
    REFUSED(VC_ECONFLICT, t_extend(t, "x", "b"));
    assert_contains(t->r.msg, "removed");
    unchanged(x);
    OK(t_report_ok(t, "x", "b"));
    OK(t_extend(t, "x", "b"));
}

static void shrink_rules(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_site_add(t, "u", "100-200", false));
    OK(t_host_add(t, "ha", "a", "eth0"));
    OK(t_create(t, "solo", "a", HOUR));
    remember(x);
    REFUSED(VC_ESTATE, t_shrink(t, "solo", "a")); /* last site */
    assert_contains(t->r.msg, "last site");
    unchanged(x);

    OK(t_create(t, "x", "a,b,u", HOUR));
    unsigned v = t->r.vlan;
    OK(t_attach(t, "x", "ha", "vnet0"));
    remember(x);
    REFUSED(VC_EINUSE, t_shrink(t, "x", "a")); /* attachment at a */
    assert_contains(t->r.msg, "attachment");
    unchanged(x);
    REFUSED(VC_ENOTFOUND, t_shrink(t, "x", "nowhere"));
    unchanged(x);

    /* Unmanaged: the slot goes at once. */
    OK(t_shrink(t, "x", "u"));
    assert_null(t_slot(t, "x", "u"));
    assert_true(free_at(x, "u", v));
    /* Managed: removing until b reports. */
    OK(t_shrink(t, "x", "b"));
    assert_true(t_slot(t, "x", "b")->removing);
    assert_true(used_at(x, "b", v));
    remember(x);
    REFUSED(VC_ENOTFOUND, t_shrink(t, "x", "b")); /* already going */
    REFUSED(VC_ESTATE, t_shrink(t, "x", "a"));    /* last active site */
    unchanged(x);
    OK(t_report_ok(t, "x", "b"));
    assert_null(t_slot(t, "x", "b"));
    assert_true(free_at(x, "b", v));
    assert_int_equal(t_cluster(t, "x")->nslots, 1);
}

/* --- lease sweep ------------------------------------------------------- */

struct snapshot_of_cluster {
    uint64_t gen, deadline;
    uint8_t state;
    uint32_t nslots;
};

static struct snapshot_of_cluster look(struct fx *x, const char *name)
{
    struct fsm_cluster *c = t_cluster(x->t, name);
    return (struct snapshot_of_cluster){c->gen, c->deadline_ms, c->state,
                                        c->nslots};
}

static void assert_same_cluster(struct fx *x, const char *name,
                                struct snapshot_of_cluster was)
{
    struct snapshot_of_cluster now = look(x, name);
    if (now.gen != was.gen || now.deadline != was.deadline ||
        now.state != was.state || now.nslots != was.nslots)
        fail_msg("cluster %s changed", name);
}

static void lease_sweep_releases_exactly_expired(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    uint64_t t0 = t->now;
    OK(t_site_add(t, "u", "100-200", false));
    OK(t_site_add(t, "m", "100-200", true));
    OK(t_create(t, "e1", "u", 1000)); /* deadline t0+1000 */
    OK(t_create(t, "e2", "m", 1000));
    OK(t_create(t, "keep", "u,m", 5000));
    OK(t_create(t, "edge", "m", 2000)); /* deadline == sweep time */
    OK(t_create(t, "renewed", "m", 1000));
    t->now = t0 + 500;
    OK(t_renew(t, "renewed", 1000)); /* deadline t0+1500 */
    OK(t_renew(t, "keep", 4500));    /* deadline t0+5000 */
    assert_true(t_cluster(t, "renewed")->deadline_ms == t0 + 1500);
    OK(t_create(t, "late", "m", 1000)); /* deadline t0+1500, created later */
    OK(t_release(t, "late", false));    /* already releasing: not counted */
    uint64_t late_gen = t_cluster(t, "late")->gen;
    struct snapshot_of_cluster keep = look(x, "keep"), edge = look(x, "edge");

    t->now = t0 + 2000;
    OK(t_sweep(t));
    assert_int_equal(t->r.gen, 3); /* e1, e2, renewed */
    assert_contains(t->r.msg, "3 expired");
    assert_null(fsm_cluster_find(&t->f, "e1")); /* unmanaged: gone */
    assert_int_equal(t_cluster(t, "e2")->state, FSM_RELEASING);
    assert_int_equal(t_cluster(t, "renewed")->state, FSM_RELEASING);
    assert_true(t_cluster(t, "late")->gen == late_gen);
    assert_same_cluster(x, "keep", keep);
    assert_same_cluster(x, "edge", edge);

    /* One millisecond later the edge case has expired too. */
    t->now = t0 + 2001;
    uint64_t e2_gen = t_cluster(t, "e2")->gen;
    OK(t_sweep(t));
    assert_int_equal(t->r.gen, 1);
    assert_int_equal(t_cluster(t, "edge")->state, FSM_RELEASING);
    assert_true(t_cluster(t, "e2")->gen == e2_gen); /* not touched again */
    assert_same_cluster(x, "keep", keep);

    /* A sweep with nothing expired changes nothing. */
    remember(x);
    OK(t_sweep(t));
    assert_int_equal(t->r.gen, 0);
    unchanged(x);
    t->now = t0 + 5001;
    OK(t_sweep(t));
    assert_int_equal(t->r.gen, 1);
    REFUSED(VC_ESTATE, t_renew(t, "keep", 1000));
}

/* --- sites and pools --------------------------------------------------- */

static void site_rules(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add_full(t, "a", "1-10", true, UPLINK_VPLS, 0, "10.0.0.1:7000"));
    assert_int_equal(t_site(t, "a")->id, 1);
    remember(x);
    REFUSED(VC_EEXISTS, t_site_add(t, "a", "1-10", true));
    REFUSED(VC_ECONFLICT, t_site_add_full(t, "b", "1-10", true, UPLINK_VPLS,
                                          0, "10.0.0.1:7000"));
    assert_contains(t->r.msg, "10.0.0.1:7000");
    REFUSED(VC_ENOTFOUND, t_site_update(t, "zz", "1-10", true));
    REFUSED(VC_ENOTFOUND, t_pool_set(t, "zz", "1-10"));
    REFUSED(VC_ENOTFOUND, t_site_remove(t, "zz", true));
    unchanged(x);
    OK(t_site_add_full(t, "b", "1-10", true, UPLINK_QINQ, 3001, ""));
    OK(t_site_add_full(t, "c", "1-10", true, UPLINK_VPLS, 0, ""));
    assert_int_equal(t_site(t, "c")->id, 3);
    assert_int_equal(t_site(t, "b")->svlan, 3001);
    /* Ids are never reused, even after a removal. */
    OK(t_site_remove(t, "a", false));
    assert_null(fsm_site_find(&t->f, "a"));
    OK(t_site_add(t, "a", "1-10", true));
    assert_int_equal(t_site(t, "a")->id, 4);
    /* The address of a removed site is free again. */
    OK(t_site_add_full(t, "d", "1-10", true, UPLINK_VPLS, 0, "10.0.0.1:7000"));
}

static void site_remove_in_use_then_forced(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_site_add(t, "c", "100-200", false));
    OK(t_host_add(t, "ha", "a", "eth0"));
    OK(t_host_add(t, "hb", "b", "eth0"));
    OK(t_create(t, "x", "a,b", HOUR));
    OK(t_create(t, "y", "a", HOUR));
    OK(t_create(t, "z", "b,c", HOUR));
    OK(t_attach(t, "x", "ha", "vnet0"));
    OK(t_attach(t, "x", "hb", "vnet0"));
    remember(x);
    REFUSED(VC_EINUSE, t_site_remove(t, "a", false));
    assert_contains(t->r.msg, "site a");
    assert_contains(t->r.msg, "2 cluster");
    unchanged(x);

    unsigned vx = vlan_of(x, "x");
    uint64_t xgen = t_cluster(t, "x")->gen;
    struct snapshot_of_cluster z = look(x, "z");
    OK(t_site_remove(t, "a", true));
    assert_null(fsm_site_find(&t->f, "a"));
    assert_null(fsm_host_find(&t->f, "ha"));
    assert_non_null(fsm_host_find(&t->f, "hb"));
    assert_null(fsm_cluster_find(&t->f, "y")); /* its only site */
    struct fsm_cluster *cx = t_cluster(t, "x");
    assert_int_equal(cx->nslots, 1);
    assert_non_null(t_slot(t, "x", "b"));
    assert_true(cx->gen > xgen);
    assert_int_equal(cx->natt, 1);
    assert_string_equal(cx->att[0].host, "hb");
    assert_true(used_at(x, "b", vx));
    assert_same_cluster(x, "z", z);
    /* The name can come back as a new, empty site. */
    OK(t_site_add(t, "a", "100-200", true));
    assert_int_equal(t_site(t, "a")->nslots, 0);
    assert_true(free_at(x, "a", vx));
}

/* Forced removal of the last site a cluster still spans, while its only
 * other site is being shrunk away: the cluster goes away like a release,
 * and the VLAN stays held where the removal is not yet reported. */
static void site_remove_forced_takes_last_active_site(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_create(t, "x", "a,b", HOUR));
    unsigned v = t->r.vlan;
    OK(t_shrink(t, "x", "b"));
    OK(t_site_remove(t, "a", true));
    struct fsm_cluster *c = fsm_cluster_find(&t->f, "x");
    if (c && c->state != FSM_RELEASING)
        fail_msg("cluster x is %s with no site left", fsm_state_name(c->state));
    check_invariants(&t->f);
    assert_true(used_at(x, "b", v)); /* b has not reported the removal */
    OK(t_create(t, "y", "b", HOUR));
    assert_int_not_equal(t->r.vlan, v);
    OK(t_report_ok(t, "x", "b"));
    assert_null(fsm_cluster_find(&t->f, "x"));
    assert_true(free_at(x, "b", v));
    check_invariants(&t->f);
}

static void pool_change_that_strands_is_refused(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_create(t, "x", "a", HOUR)); /* 100 */
    OK(t_create(t, "gone", "a", HOUR)); /* 101 */
    OK(t_release(t, "gone", false)); /* removal not reported yet */
    remember(x);
    REFUSED(VC_EINUSE, t_pool_set(t, "a", "150-300"));
    assert_contains(t->r.msg, "VLAN 100");
    assert_contains(t->r.msg, "cluster x");
    unchanged(x);
    REFUSED(VC_EINUSE, t_site_update(t, "a", "101-200", true));
    unchanged(x);
    REFUSED(VC_EINUSE, t_pool_set(t, "a", "100,102-300"));
    assert_contains(t->r.msg, "VLAN 101"); /* still configured at a */
    unchanged(x);
    REFUSED(VC_EINUSE, t_pool_set(t, "a", ""));
    unchanged(x);
    /* Keeping every live VLAN is fine. */
    OK(t_pool_set(t, "a", "100-101,500-600"));
    assert_int_equal(vlanset_count(&t_site(t, "a")->free), 101);
    OK(t_create(t, "y", "a", HOUR));
    assert_int_equal(t->r.vlan, 500);
    OK(t_report_ok(t, "gone", "a"));
    OK(t_pool_set(t, "a", "100,500"));
    OK(t_site_update(t, "a", "100,500,4094", false));
    assert_false(t_site(t, "a")->managed);
}

/* --- request ids ------------------------------------------------------- */

static void assert_same_result(const struct proto_result *a,
                               const struct proto_result *b)
{
    assert_int_equal(a->code, b->code);
    assert_int_equal(a->vlan, b->vlan);
    assert_true(a->gen == b->gen);
    assert_string_equal(a->msg, b->msg);
}

static void repeated_request_id_returns_first_answer(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    struct proto_result first;
    OK(t_site_add(t, "a", "100-200", true));
    t->req = "slurm:1001";
    OK(t_create(t, "x", "a", HOUR));
    first = t->r;
    remember(x);
    OK(t_create(t, "x", "a", HOUR)); /* a retry: same answer, no EEXISTS */
    assert_same_result(&t->r, &first);
    unchanged(x);
    OK(t_release(t, "x", true)); /* a different command, same id */
    assert_same_result(&t->r, &first);
    unchanged(x);
    OK(t_site_remove(t, "a", true));
    assert_same_result(&t->r, &first);
    unchanged(x);
    assert_non_null(fsm_cluster_find(&t->f, "x"));

    /* A refusal is remembered too, even once the cause is gone. */
    t->req = "slurm:1002";
    REFUSED(VC_ENOTFOUND, t_create(t, "y", "b", HOUR));
    first = t->r;
    t->req = NULL;
    OK(t_site_add(t, "b", "100-200", true));
    t->req = "slurm:1002";
    remember(x);
    REFUSED(VC_ENOTFOUND, t_create(t, "y", "b", HOUR));
    assert_same_result(&t->r, &first);
    unchanged(x);
    /* Without an id nothing is remembered. */
    t->req = NULL;
    OK(t_create(t, "y", "b", HOUR));
    REFUSED(VC_EEXISTS, t_create(t, "y", "b", HOUR));
}

/* Request id i and the name of the cluster its command asks about: both
 * of varying length, so records of every size pass through the window. */
static void window_id(unsigned i, char *id, char *name)
{
    static const char pad[] = "_______________________________________________"
                              "_______________________________________________";
    sprintf(id, "req-%u-%.*s", i, (int)(i * 2654435761u % 90), pad);
    sprintf(name, "c%u-%.*s", i, (int)(i * 40503u % 55), pad);
}

/* Applies request i (a renew of a missing cluster: refused with a message
 * naming it). */
static void window_put(struct fsm *f, unsigned i, struct proto_result *r)
{
    char id[VC_REQID_MAX + 1], name[VC_NAME_MAX + 1];
    struct proto_cmd c;
    window_id(i, id, name);
    proto_cmd_init(&c, PROTO_CMD_CLUSTER_RENEW);
    c.req_id = mp_cstr(id);
    c.name = mp_cstr(name);
    c.lease_ms = HOUR;
    t_apply(f, &c, r);
}

/* Id i is answered from the window with its first answer, even with a
 * different command. */
static void assert_remembered(struct fsm *f, unsigned i)
{
    char id[VC_REQID_MAX + 1], name[VC_NAME_MAX + 1], want[VC_MSG_MAX + 1];
    struct proto_cmd c;
    struct proto_result r;
    uint64_t applied = f->applied;
    window_id(i, id, name);
    proto_cmd_init(&c, PROTO_CMD_LEASE_SWEEP);
    c.req_id = mp_cstr(id);
    t_apply(f, &c, &r);
    snprintf(want, sizeof want, "no cluster named %s", name);
    if (f->applied != applied || r.code != VC_ENOTFOUND ||
        strcmp(r.msg, want) != 0)
        fail_msg("request %s answered %s \"%s\"", id, vc_errname(r.code),
                 r.msg);
}

/* The window keeps the last FSM_DEDUPE_MAX ids with their exact answers
 * and forgets older ones, over several times its size. */
static void request_window_is_fifo(void **state)
{
    struct fx *x = *state;
    struct fsm *f = &x->t->f;
    struct proto_result r;
    struct rng rng = {7};
    const unsigned total = FSM_DEDUPE_MAX * 5 / 2 + 3;
    for (unsigned i = 0; i < total; i++) {
        window_put(f, i, &r);
        assert_int_equal(r.code, VC_ENOTFOUND);
        if ((i + 1) % (FSM_DEDUPE_MAX / 4) == 0) {
            unsigned len = i + 1 < FSM_DEDUPE_MAX ? i + 1 : FSM_DEDUPE_MAX;
            assert_int_equal(f->dd_len, len);
            for (int k = 0; k < 3000; k++) /* some ids in the window */
                assert_remembered(f, i + 1 - len + rng_below(&rng, len));
            assert_remembered(f, i + 1 - len); /* the oldest */
            assert_remembered(f, i);           /* the newest */
        }
    }
    assert_int_equal(f->dd_len, FSM_DEDUPE_MAX);
    assert_int_equal(f->dd_map.len, FSM_DEDUPE_MAX);
    for (unsigned i = total - FSM_DEDUPE_MAX; i < total; i++)
        assert_remembered(f, i);
    /* The oldest forgotten id runs again and is remembered anew, pushing
     * out the oldest remembered one. */
    uint64_t applied = f->applied;
    window_put(f, total - FSM_DEDUPE_MAX - 1, &r);
    assert_true(f->applied == applied + 1);
    assert_remembered(f, total - FSM_DEDUPE_MAX - 1);
    window_put(f, total - FSM_DEDUPE_MAX, &r);
    assert_true(f->applied == applied + 2);
    assert_int_equal(f->dd_len, FSM_DEDUPE_MAX);
}

/* --- attachments ------------------------------------------------------- */

static void attach_detach_rules(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_site_add(t, "c", "100-200", true));
    OK(t_host_add(t, "ha", "a", "eth0"));
    OK(t_host_add(t, "hb", "b", "eth0"));
    OK(t_host_add(t, "hc", "c", "eth0"));
    OK(t_create(t, "x", "a,b", HOUR));
    OK(t_create(t, "y", "a", HOUR));
    uint64_t bgen = t_slot(t, "x", "b")->gen;
    OK(t_attach(t, "x", "ha", "vnet0"));
    struct fsm_cluster *cx = t_cluster(t, "x");
    assert_int_equal(cx->natt, 1);
    assert_int_equal(t->r.vlan, cx->vlan);
    assert_int_equal(t_slot(t, "x", "a")->gen, cx->gen); /* its site... */
    assert_true(t_slot(t, "x", "b")->gen == bgen);        /* ...only */

    remember(x);
    REFUSED(VC_ECONFLICT, t_attach(t, "x", "hc", "vnet0")); /* c not spanned */
    assert_contains(t->r.msg, "site c");
    REFUSED(VC_ECONFLICT, t_attach(t, "y", "ha", "vnet0")); /* on x */
    assert_contains(t->r.msg, "cluster x");
    REFUSED(VC_EEXISTS, t_attach(t, "x", "ha", "vnet0"));
    REFUSED(VC_ENOTFOUND, t_attach(t, "x", "nobody", "vnet0"));
    REFUSED(VC_ENOTFOUND, t_attach(t, "nothing", "ha", "vnet0"));
    REFUSED(VC_ENOTFOUND, t_detach(t, "y", "ha", "vnet0"));
    REFUSED(VC_ENOTFOUND, t_detach(t, "x", "ha", "vnet1"));
    REFUSED(VC_EINUSE, t_host_remove(t, "ha"));
    assert_contains(t->r.msg, "cluster x");
    unchanged(x);

    OK(t_attach(t, "y", "ha", "vnet1")); /* another interface is fine */
    OK(t_attach(t, "x", "hb", "vnet0")); /* same iface, other host */
    OK(t_detach(t, "x", "ha", "vnet0"));
    assert_int_equal(t_cluster(t, "x")->natt, 1);
    OK(t_attach(t, "y", "ha", "vnet0")); /* free to move now */
    assert_int_equal(t_cluster(t, "y")->natt, 2);

    /* A site being removed from the cluster takes no attachments. */
    OK(t_detach(t, "x", "hb", "vnet0"));
    OK(t_shrink(t, "x", "b"));
    remember(x);
    REFUSED(VC_ECONFLICT, t_attach(t, "x", "hb", "vnet0"));
    unchanged(x);
    /* A release drops the attachments with the bridge. */
    OK(t_release(t, "y", false));
    assert_int_equal(t_cluster(t, "y")->natt, 0);
    REFUSED(VC_ESTATE, t_attach(t, "y", "ha", "vnet0"));
    REFUSED(VC_ESTATE, t_detach(t, "y", "ha", "vnet0"));
    OK(t_host_remove(t, "ha"));
}

/* --- apply reports ----------------------------------------------------- */

static void apply_reports(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    static const char text[] = "switch sw-b1: vlan 100: % Invalid input";
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_host_add(t, "ha", "a", "eth0"));
    OK(t_create(t, "x", "a,b", HOUR));
    assert_int_equal(t_cluster(t, "x")->state, FSM_PENDING);
    OK(t_report(t, "x", "a", 1, true, ""));
    assert_int_equal(t_cluster(t, "x")->state, FSM_PENDING);
    assert_int_equal(t_slot(t, "x", "a")->applied, 1);

    OK(t_report(t, "x", "b", 1, false, text));
    struct fsm_slot *sb = t_slot(t, "x", "b");
    assert_true(sb->failed);
    assert_non_null(sb->err);
    assert_string_equal(sb->err, text);
    assert_int_equal(sb->applied, 0);
    assert_int_equal(t_cluster(t, "x")->state, FSM_PENDING);
    OK(t_report(t, "x", "b", 1, true, ""));
    sb = t_slot(t, "x", "b");
    assert_false(sb->failed);
    assert_null(sb->err);
    assert_int_equal(t_cluster(t, "x")->state, FSM_READY);

    /* A change at a: pending again until a applies the new generation. */
    OK(t_attach(t, "x", "ha", "vnet0"));
    assert_int_equal(t_cluster(t, "x")->state, FSM_PENDING);
    uint64_t gen = t_cluster(t, "x")->gen;
    assert_int_equal(gen, 2);
    remember(x);
    REFUSED(VC_ESTATE, t_report(t, "x", "a", 1, true, "")); /* stale */
    assert_contains(t->r.msg, "stale");
    REFUSED(VC_ESTATE, t_report(t, "x", "a", 1, false, "old news"));
    REFUSED(VC_EINVAL, t_report(t, "x", "a", 3, true, "")); /* future */
    REFUSED(VC_EINVAL, t_report(t, "x", "a", UINT64_MAX, true, ""));
    REFUSED(VC_ENOTFOUND, t_report(t, "nothing", "a", 1, true, ""));
    REFUSED(VC_ENOTFOUND, t_report(t, "x", "nowhere", 1, true, ""));
    unchanged(x);
    OK(t_site_add(t, "c", "100-200", true));
    remember(x);
    REFUSED(VC_ENOTFOUND, t_report(t, "x", "c", 2, true, "")); /* not spanned */
    unchanged(x);
    /* b's report of generation 1 still counts: b did not change. */
    OK(t_report(t, "x", "b", 1, true, ""));
    OK(t_report(t, "x", "a", 2, true, ""));
    assert_int_equal(t_cluster(t, "x")->state, FSM_READY);
    assert_int_equal(t->r.gen, 2);

    /* The longest failure text is kept whole. */
    char longtext[VC_MSG_MAX + 1];
    memset(longtext, 'e', VC_MSG_MAX);
    longtext[VC_MSG_MAX] = '\0';
    OK(t_report(t, "x", "a", 2, false, longtext));
    assert_string_equal(t_slot(t, "x", "a")->err, longtext);
    /* A failure with no text still counts as a failure. */
    OK(t_report(t, "x", "b", 2, false, ""));
    assert_true(t_slot(t, "x", "b")->failed);
}

static void unmanaged_sites_settle_at_once(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "m", "100-200", true));
    OK(t_site_add(t, "u", "100-200", false));
    OK(t_create(t, "x", "u", HOUR));
    assert_int_equal(t_cluster(t, "x")->state, FSM_READY);
    OK(t_create(t, "y", "m,u", HOUR));
    assert_int_equal(t_cluster(t, "y")->state, FSM_PENDING);
    assert_int_equal(t_slot(t, "y", "u")->applied, 1);
    /* m stops being managed: what it owed is settled. */
    OK(t_release(t, "x", false));
    OK(t_shrink(t, "y", "u"));
    OK(t_create(t, "z", "m", HOUR));
    OK(t_release(t, "z", false));
    assert_int_equal(t_cluster(t, "z")->state, FSM_RELEASING);
    unsigned vz = vlan_of(x, "z");
    OK(t_site_update(t, "m", "100-200", false));
    assert_int_equal(t_cluster(t, "y")->state, FSM_READY);
    assert_null(fsm_cluster_find(&t->f, "z"));
    assert_true(free_at(x, "m", vz));
}

/* --- service nodes ----------------------------------------------------- */

static void service_node_bumps_its_site_only(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_site_add(t, "b", "100-200", true));
    OK(t_site_add(t, "c", "100-200", true));
    OK(t_host_add(t, "sa", "a", "eth0"));
    OK(t_create(t, "x", "a,b", HOUR));
    OK(t_create(t, "y", "b,c", HOUR));
    OK(t_create(t, "gone", "a", HOUR));
    OK(t_release(t, "gone", false));
    OK(t_report_ok(t, "x", "a"));
    OK(t_report_ok(t, "x", "b"));
    OK(t_report_ok(t, "y", "b"));
    OK(t_report_ok(t, "y", "c"));
    struct snapshot_of_cluster y = look(x, "y"), gone = look(x, "gone");
    uint64_t bgen = t_slot(t, "x", "b")->gen;

    OK(t_service(t, "sa", true));
    assert_true(fsm_host_find(&t->f, "sa")->service);
    struct fsm_cluster *cx = t_cluster(t, "x");
    assert_int_equal(cx->gen, 2);
    assert_int_equal(t_slot(t, "x", "a")->gen, 2);
    assert_true(t_slot(t, "x", "b")->gen == bgen);
    assert_int_equal(cx->state, FSM_PENDING);
    assert_same_cluster(x, "y", y);
    assert_same_cluster(x, "gone", gone); /* being released: untouched */

    remember(x);
    REFUSED(VC_EEXISTS, t_service(t, "sa", true));
    REFUSED(VC_ENOTFOUND, t_service(t, "nobody", true));
    unchanged(x);
    OK(t_service(t, "sa", false));
    assert_int_equal(t_cluster(t, "x")->gen, 3);
    assert_true(t_slot(t, "x", "b")->gen == bgen);
    REFUSED(VC_ENOTFOUND, t_service(t, "sa", false));
    /* Removing a service host also changes its site's clusters. */
    OK(t_service(t, "sa", true));
    OK(t_host_remove(t, "sa"));
    assert_int_equal(t_cluster(t, "x")->gen, 5);
    assert_same_cluster(x, "y", y);
}

/* --- hosts ------------------------------------------------------------- */

static void host_rules(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    OK(t_site_add(t, "a", "100-200", true));
    OK(t_host_add(t, "h1", "a", "bond0"));
    assert_string_equal(fsm_host_find(&t->f, "h1")->trunk, "bond0");
    remember(x);
    REFUSED(VC_EEXISTS, t_host_add(t, "h1", "a", "eth0"));
    REFUSED(VC_ENOTFOUND, t_host_add(t, "h2", "nowhere", "eth0"));
    REFUSED(VC_ENOTFOUND, t_host_remove(t, "h2"));
    unchanged(x);
    OK(t_host_remove(t, "h1"));
    assert_null(fsm_host_find(&t->f, "h1"));
    OK(t_host_add(t, "h1", "a", "eth1"));
    /* Many hosts: slots are reused, every one stays findable. */
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "n%d", i);
        OK(t_host_add(t, name, "a", "eth0"));
    }
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof name, "n%d", i);
        OK(t_host_remove(t, name));
    }
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(fsm_host_find(&t->f, name) != NULL, i % 2);
    }
    for (int i = 0; i < 300; i += 2) {
        snprintf(name, sizeof name, "n%d", i);
        OK(t_host_add(t, name, "a", "eth0"));
    }
    assert_true(t->f.nhosts <= 302);
}

/* --- messages ---------------------------------------------------------- */

/* Result messages equal what snprintf makes of the same format, long
 * names and truncation included. */
static void messages_match_printf(void **state)
{
    struct fx *x = *state;
    struct tfsm *t = x->t;
    char a[VC_NAME_MAX + 1], b[VC_NAME_MAX + 1], cx[VC_NAME_MAX + 1],
        cy[VC_NAME_MAX + 1], want[VC_MSG_MAX + 1];
    memset(a, 'a', VC_NAME_MAX);
    memset(b, 'b', VC_NAME_MAX);
    memset(cx, 'x', VC_NAME_MAX);
    memset(cy, 'y', VC_NAME_MAX);
    a[VC_NAME_MAX] = b[VC_NAME_MAX] = cx[VC_NAME_MAX] = cy[VC_NAME_MAX] = 0;
    OK(t_site_add(t, a, "100-200", true));
    OK(t_site_add(t, b, "100-200", true));
    snprintf(want, sizeof want, "site %s added with id %u", b, 2u);
    assert_string_equal(t->r.msg, want);
    OK(t_create(t, cx, a, HOUR));
    OK(t_create(t, cy, b, HOUR));
    REFUSED(VC_ECONFLICT, t_extend(t, cx, b));
    snprintf(want, sizeof want,
             "VLAN %u of cluster %s is in use at site %s by cluster %s", 100u,
             cx, b, cy);
    assert_string_equal(t->r.msg, want);
    char h[VC_NAME_MAX + 1];
    memset(h, 'h', VC_NAME_MAX);
    h[VC_NAME_MAX] = 0;
    OK(t_host_add(t, h, b, "eth0"));
    REFUSED(VC_ECONFLICT, t_attach(t, cx, h, "vnet0"));
    char full[512];
    snprintf(full, sizeof full,
             "host %s is at site %s, which cluster %s does not span; extend "
             "the cluster first",
             h, b, cx);
    assert_true(strlen(full) > VC_MSG_MAX);
    full[VC_MSG_MAX] = '\0'; /* what snprintf into the result keeps */
    assert_string_equal(t->r.msg, full);
    REFUSED(VC_ENOTFOUND, t_release(t, "nosuch", false));
    assert_string_equal(t->r.msg, "no cluster named nosuch");
    REFUSED(VC_EINVAL, t_report(t, cx, a, 12345678901234ull, true, ""));
    snprintf(want, sizeof want,
             "report for generation %llu of cluster %s, which is only at %llu",
             12345678901234ull, cx, 1ull);
    assert_string_equal(t->r.msg, want);
    OK(t_report(t, cx, a, 1, false, "50% done"));
    assert_string_equal(t_slot(t, cx, a)->err, "50% done");
    snprintf(want, sizeof want, "failure of cluster %s at site %s recorded",
             cx, a);
    assert_string_equal(t->r.msg, want);
    OK(t_sweep(t));
    assert_string_equal(t->r.msg, "0 expired cluster(s) released");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(create_picks_lowest_common_free),
        T(random_commands_keep_invariants),
        T(novlan_disjoint_pools_names_them),
        T(novlan_usage_names_blocking_sites),
        T(exhaust_full_pool),
        T(release_unmanaged_frees_at_once),
        T(release_managed_waits_for_each_report),
        T(forced_release_frees_managed_at_once),
        T(duplicate_cluster_name),
        T(extend_conflicts_change_nothing),
        T(extend_while_removing_conflicts),
        T(shrink_rules),
        T(lease_sweep_releases_exactly_expired),
        T(site_rules),
        T(site_remove_in_use_then_forced),
        T(site_remove_forced_takes_last_active_site),
        T(pool_change_that_strands_is_refused),
        T(repeated_request_id_returns_first_answer),
        T(request_window_is_fifo),
        T(attach_detach_rules),
        T(apply_reports),
        T(unmanaged_sites_settle_at_once),
        T(service_node_bumps_its_site_only),
        T(host_rules),
        T(messages_match_printf),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
