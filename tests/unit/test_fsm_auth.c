/* Keys, roles and invites in the state machine (agent/fsm_auth.c), the
 * signed-request envelope (proto/envelope.c) and join tokens
 * (agent/token.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/fsm_auth.h"
#include "agent/token.h"
#include "proto/envelope.h"
#include "proto/frame.h"
#include "testlib.h"

#define KEY(c) ((const char[32]){c, c, c, c, c, c, c, c, c, c, c, c, c, c, \
                                c, c, c, c, c, c, c, c, c, c, c, c, c, c, \
                                c, c, c, c})

static struct mp_str key(const char *k)
{
    return (struct mp_str){k, 32};
}

static int site_add_key(struct tfsm *t, const char *name, const char *k,
                        const char *hash)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_SITE_ADD);
    c.name = mp_cstr(name);
    vlanset_add_range(&c.pool, 100, 199);
    if (k)
        c.key = key(k);
    if (hash)
        c.hash = key(hash);
    return t_run(t, &c);
}

static int site_key(struct tfsm *t, const char *name, const char *k,
                    bool overlap)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_SITE_KEY);
    c.name = mp_cstr(name);
    c.key = key(k);
    c.ok = overlap;
    return t_run(t, &c);
}

static int role_add(struct tfsm *t, const char *name, const char *k, int role)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_ROLE_ADD);
    c.name = mp_cstr(name);
    c.key = key(k);
    c.role = (uint8_t)role;
    return t_run(t, &c);
}

static int by_name(struct tfsm *t, int type, const char *name)
{
    struct proto_cmd c;
    proto_cmd_init(&c, type);
    c.name = mp_cstr(name);
    return t_run(t, &c);
}

static int invite(struct tfsm *t, const char *name, const char *hash,
                  uint64_t ttl)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_INVITE_ADD);
    c.name = mp_cstr(name);
    c.hash = key(hash);
    c.lease_ms = ttl;
    return t_run(t, &c);
}

static const char *site_of(struct tfsm *t, const char *k)
{
    const struct fsm_site *s = fsm_auth_site_by_key(&t->f,
                                                    (const uint8_t *)k);
    return s ? s->name : "";
}

static void keys_unique_and_revoked_on_remove(void **state)
{
    struct tfsm *t = tfsm_new();
    (void)state;
    assert_int_equal(site_add_key(t, "a", KEY(1), NULL), 0);
    assert_string_equal(site_of(t, KEY(1)), "a");
    assert_int_equal(site_add_key(t, "b", KEY(1), NULL), VC_ECONFLICT);
    assert_contains(t->r.msg, "another site");
    assert_int_equal(site_add_key(t, "b", NULL, NULL), 0);
    /* A key for a keyless record; changing it then takes site-key. */
    assert_int_equal(t_site_update(t, "b", "100-199", false), 0);
    assert_false(t_site(t, "b")->has_key);
    assert_int_equal(t_site_remove(t, "a", false), 0);
    assert_true(fsm_auth_revoked(&t->f, (const uint8_t *)KEY(1)));
    assert_string_equal(site_of(t, KEY(1)), "");
    assert_int_equal(site_add_key(t, "a", KEY(1), NULL), VC_ECONFLICT);
    assert_contains(t->r.msg, "revoked");
    check_invariants(&t->f);
    tfsm_free(t);
}

static void rotation_overlaps_then_drops(void **state)
{
    struct tfsm *t = tfsm_new();
    (void)state;
    assert_int_equal(site_add_key(t, "a", KEY(1), NULL), 0);
    assert_int_equal(site_add_key(t, "b", KEY(2), NULL), 0);
    assert_int_equal(site_key(t, "a", KEY(2), true), VC_ECONFLICT);
    assert_int_equal(site_key(t, "nowhere", KEY(3), true), VC_ENOTFOUND);
    assert_int_equal(site_key(t, "a", KEY(3), true), 0);
    assert_string_equal(site_of(t, KEY(1)), "a"); /* both accepted */
    assert_string_equal(site_of(t, KEY(3)), "a");
    assert_false(fsm_auth_revoked(&t->f, (const uint8_t *)KEY(1)));
    assert_int_equal(site_key(t, "a", KEY(3), false), 0);
    assert_contains(t->r.msg, "old key dropped");
    assert_string_equal(site_of(t, KEY(1)), "");
    assert_true(fsm_auth_revoked(&t->f, (const uint8_t *)KEY(1)));
    /* A rotated-out key cannot come back. */
    assert_int_equal(site_key(t, "a", KEY(1), true), VC_ECONFLICT);
    /* Without overlap the current key is revoked at once. */
    assert_int_equal(site_key(t, "b", KEY(4), false), 0);
    assert_true(fsm_auth_revoked(&t->f, (const uint8_t *)KEY(2)));
    assert_string_equal(site_of(t, KEY(4)), "b");
    tfsm_free(t);
}

static void invites_are_single_use_and_expire(void **state)
{
    struct tfsm *t = tfsm_new();
    (void)state;
    assert_int_equal(site_add_key(t, "a", KEY(1), NULL), 0);
    assert_int_equal(invite(t, "a", KEY(9), 60000), VC_EEXISTS);
    assert_int_equal(invite(t, "x", KEY(9), 60000), 0);
    /* Wrong hash, wrong name, no key: refused, invite kept. */
    assert_int_equal(site_add_key(t, "x", KEY(5), KEY(8)), VC_EDENIED);
    assert_int_equal(site_add_key(t, "y", KEY(5), KEY(9)), VC_EDENIED);
    assert_int_equal(site_add_key(t, "x", NULL, KEY(9)), VC_EINVAL);
    assert_false(t_site(t, "a") == NULL);
    assert_null(fsm_site_find(&t->f, "x"));
    assert_int_equal(site_add_key(t, "x", KEY(5), KEY(9)), 0);
    /* Used: a second join with the same token is refused. */
    assert_int_equal(t_site_remove(t, "x", false), 0);
    assert_int_equal(site_add_key(t, "x", KEY(6), KEY(9)), VC_EDENIED);
    assert_int_equal(by_name(t, PROTO_CMD_INVITE_REMOVE, "x"), VC_ENOTFOUND);
    /* Expired. */
    assert_int_equal(invite(t, "z", KEY(7), 1000), 0);
    t->now += 1001;
    assert_int_equal(site_add_key(t, "z", KEY(6), KEY(7)), VC_EDENIED);
    assert_int_equal(by_name(t, PROTO_CMD_INVITE_REMOVE, "z"), 0);
    tfsm_free(t);
}

static void roles_bind_keys_to_names(void **state)
{
    struct tfsm *t = tfsm_new();
    (void)state;
    assert_int_equal(role_add(t, "alice", KEY(1), ROLE_USER), 0);
    assert_int_equal(role_add(t, "bob", KEY(1), ROLE_ADMIN), VC_ECONFLICT);
    assert_int_equal(role_add(t, "sched", KEY(2), ROLE_SCHEDULER), 0);
    const struct fsm_role *r = fsm_auth_role_by_key(&t->f,
                                                    (const uint8_t *)KEY(2));
    assert_non_null(r);
    assert_string_equal(r->name, "sched");
    assert_int_equal(r->role, ROLE_SCHEDULER);
    assert_int_equal(role_add(t, "alice", KEY(3), ROLE_SCHEDULER), 0);
    assert_null(fsm_auth_role_by_key(&t->f, (const uint8_t *)KEY(1)));
    assert_int_equal(by_name(t, PROTO_CMD_ROLE_REMOVE, "alice"), 0);
    assert_int_equal(by_name(t, PROTO_CMD_ROLE_REMOVE, "alice"),
                     VC_ENOTFOUND);
    assert_null(fsm_auth_role_by_name(&t->f, "alice"));
    tfsm_free(t);
}

/* Everything above survives snapshot -> restore -> snapshot unchanged. */
static void snapshot_round_trip(void **state)
{
    struct tfsm *t = tfsm_new();
    struct fsm g;
    (void)state;
    assert_int_equal(site_add_key(t, "a", KEY(1), NULL), 0);
    assert_int_equal(site_add_key(t, "b", KEY(2), NULL), 0);
    assert_int_equal(site_add_key(t, "c", NULL, NULL), 0);
    assert_int_equal(site_key(t, "a", KEY(3), true), 0);
    assert_int_equal(t_site_remove(t, "b", false), 0);
    assert_int_equal(role_add(t, "zed", KEY(4), ROLE_USER), 0);
    assert_int_equal(role_add(t, "amy", KEY(5), ROLE_ADMIN), 0);
    assert_int_equal(invite(t, "q", KEY(6), 60000), 0);
    assert_int_equal(invite(t, "p", KEY(7), 60000), 0);
    snap_restore_same(&t->f, &g);
    assert_true(fsm_auth_revoked(&g, (const uint8_t *)KEY(2)));
    assert_string_equal(fsm_auth_site_by_key(&g, (const uint8_t *)KEY(1))
                            ->name, "a");
    assert_non_null(fsm_auth_role_by_name(&g, "amy"));
    fsm_close(&g);
    tfsm_free(t);
}

static bool has_invite(const struct fsm *f, struct mp_str site)
{
    for (uint32_t i = 0; i < f->auth.ninvites; i++)
        if (mp_str_eq(site, f->auth.invites[i].site))
            return true;
    return false;
}

/* The generator's key, role and invite commands (tests/sim/gen.c, used
 * by the fuzz corpus): valid, mostly about what exists (sites to re-key,
 * bindings and invites to remove) or, for invites, about sites that do
 * not exist yet; applied in a row they reach states that snapshot and
 * restore. */
static void generated_commands(void **state)
{
    struct tfsm *t = tfsm_new();
    struct rng r = {1};
    struct proto_cmd c;
    struct fsm g;
    char err[256];
    unsigned ok[PROTO_CMD_TYPE_MAX + 1] = {0}, n[PROTO_CMD_TYPE_MAX + 1] = {0};
    unsigned meets[PROTO_CMD_TYPE_MAX + 1] = {0};
    (void)state;
    for (int i = 0; i < 500; i++) { /* without a state: valid only */
        gen_cmd(&r, NULL, PROTO_CMD_SITE_KEY + i % 5, &c);
        assert_int_equal(proto_cmd_validate(&c, err, sizeof err), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(t_site_add(t, gen_site_names[i], "100-199", true),
                         0);
    for (int i = 0; i < 3000; i++) {
        int type = PROTO_CMD_SITE_KEY + (int)rng_below(&r, 5);
        char name[VC_NAME_MAX + 1];
        bool meet = false, counts = true;
        gen_cmd(&r, &t->f, type, &c);
        assert_int_equal(proto_cmd_validate(&c, err, sizeof err), 0);
        mp_str_copy(c.name, name, sizeof name);
        switch (type) {
        case PROTO_CMD_SITE_KEY:
            meet = fsm_site_find(&t->f, name) != NULL;
            break;
        case PROTO_CMD_INVITE_ADD:
            meet = fsm_site_find(&t->f, name) == NULL;
            break;
        case PROTO_CMD_ROLE_REMOVE:
            counts = t->f.auth.nroles > 0;
            meet = fsm_auth_role_by_name(&t->f, name) != NULL;
            break;
        case PROTO_CMD_INVITE_REMOVE:
            counts = t->f.auth.ninvites > 0;
            meet = has_invite(&t->f, c.name);
            break;
        default: /* role-add: any name, new or rebound */
            counts = false;
            break;
        }
        if (counts) {
            n[type]++;
            meets[type] += meet;
        }
        t->now += 1000;
        ok[type] += t_run(t, &c) == 0;
        check_invariants(&t->f);
    }
    for (int type = PROTO_CMD_SITE_KEY; type <= PROTO_CMD_INVITE_REMOVE;
         type++) {
        print_message("%s: %u of %u met, %u applied\n", proto_cmd_name(type),
                      meets[type], n[type], ok[type]);
        assert_true(ok[type] > 0);
        if (type != PROTO_CMD_ROLE_ADD)
            assert_true(meets[type] * 10 >= n[type] * 8 && n[type] > 50);
    }
    /* Some of everything is left, or the last removals were too lucky. */
    assert_true(t->f.auth.nrevoked > 0);
    snap_restore_same(&t->f, &g);
    fsm_close(&g);
    tfsm_free(t);
}

/* A version 1 snapshot (no keys, six parts) still restores. */
static void snapshot_version_1_still_reads(void **state)
{
    struct tfsm *t = tfsm_new();
    struct fsm g;
    struct mp_buf a, v1;
    msgpack_zone zone;
    msgpack_object root;
    msgpack_packer pk;
    char err[256];
    (void)state;
    assert_int_equal(t_site_add(t, "a", "100-199", false), 0);
    assert_int_equal(t_create(t, "c1", "a", 60000), 0);
    /* A version 1 snapshot holds no audit trail (version 2 added it):
     * compare with the same state without one. */
    fsm_audit_close(&t->f.audit);
    snap_take(&t->f, &a);
    msgpack_zone_init(&zone, 4096);
    assert_int_equal(mp_decode(a.data, a.len, &zone, &root), 0);
    root.via.array.ptr[0].via.u64 = 1;
    root.via.array.size = 6;
    msgpack_object *sites = &root.via.array.ptr[2];
    for (uint32_t i = 0; i < sites->via.array.size; i++)
        sites->via.array.ptr[i].via.array.size = 7;
    mp_buf_init(&v1);
    mp_packer_init(&pk, &v1);
    msgpack_pack_object(&pk, root);
    assert_int_equal(fsm_init(&g), 0);
    assert_int_equal(fsm_restore(&g, v1.data, v1.len, err, sizeof err), 0);
    assert_snap_is(&g, &a);
    /* A version 1 header with a seventh part is refused. */
    root.via.array.size = 7;
    mp_buf_reset(&v1);
    msgpack_pack_object(&pk, root);
    assert_int_equal(fsm_restore(&g, v1.data, v1.len, err, sizeof err),
                     VC_EVERSION);
    fsm_close(&g);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&a);
    mp_buf_close(&v1);
    tfsm_free(t);
}

static void envelope_round_trip_and_prefixes(void **state)
{
    static const uint8_t payload[] = {0x96, 1, 1, 5, 0, 0xc0};
    uint8_t nonce[16], sig[64];
    struct proto_envelope env = {payload, sizeof payload,
                                 (const uint8_t *)KEY(3), 1764115200000ull,
                                 nonce, sig}, out;
    struct mp_buf b;
    msgpack_zone zone;
    char err[256];
    (void)state;
    memset(nonce, 7, sizeof nonce);
    memset(sig, 9, sizeof sig);
    mp_buf_init(&b);
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(proto_envelope_encode(&env, &b), 0);
    const uint8_t *body = (const uint8_t *)b.data + PROTO_FRAME_HDR;
    size_t n = b.len - PROTO_FRAME_HDR;
    assert_true(proto_envelope_is(body, n));
    assert_false(proto_envelope_is(payload, sizeof payload));
    assert_int_equal(proto_envelope_decode(body, n, &zone, &out, err,
                                           sizeof err), 0);
    assert_int_equal(out.payload_len, sizeof payload);
    assert_memory_equal(out.payload, payload, sizeof payload);
    assert_memory_equal(out.key, KEY(3), 32);
    assert_memory_equal(out.nonce, nonce, 16);
    assert_memory_equal(out.sig, sig, 64);
    assert_true(out.time_ms == env.time_ms);
    for (size_t k = 0; k < n; k++) {
        void *cut = dup_exact(body, k);
        msgpack_zone_clear(&zone);
        assert_int_not_equal(proto_envelope_decode(cut, k, &zone, &out, err,
                                                   sizeof err), 0);
        free(cut);
    }
    /* A short key is refused. */
    env.key = (const uint8_t *)KEY(3);
    uint8_t bad[512];
    memcpy(bad, body, n);
    for (size_t i = 0; i + 1 < n; i++)
        if (bad[i] == 0xc4 && bad[i + 1] == 32) {
            bad[i + 1] = 31;
            break;
        }
    msgpack_zone_clear(&zone);
    assert_int_not_equal(proto_envelope_decode(bad, n, &zone, &out, err,
                                               sizeof err), 0);
    uint8_t prefix[PROTO_ENVELOPE_PREFIX];
    proto_envelope_prefix(0x0102030405060708ull, nonce, prefix);
    assert_memory_equal(prefix, "VCREQv1\0\1\2\3\4\5\6\7\x08", 16);
    msgpack_zone_destroy(&zone);
    mp_buf_close(&b);
}

static void token_round_trip_and_truncation(void **state)
{
    struct token t, u;
    char text[TOKEN_TEXT_MAX], err[256];
    (void)state;
    memset(&t, 0, sizeof t);
    memset(t.secret, 0x5a, sizeof t.secret);
    snprintf(t.cluster_id, sizeof t.cluster_id, "cesnet");
    snprintf(t.site, sizeof t.site, "ostrava");
    t.nmembers = 3;
    for (unsigned i = 0; i < 3; i++) {
        snprintf(t.members[i].site, 64, "s%u", i);
        snprintf(t.members[i].addr, 128, "127.0.0.%u:7800", i + 1);
        memset(t.members[i].pk, (int)i + 1, 32);
    }
    assert_int_equal(token_format(&t, text, sizeof text), 0);
    assert_int_equal(strncmp(text, TOKEN_PREFIX, strlen(TOKEN_PREFIX)), 0);
    assert_int_equal(token_parse(text, &u, err, sizeof err), 0);
    assert_memory_equal(&t, &u, sizeof t);
    size_t len = strlen(text);
    for (size_t k = strlen(TOKEN_PREFIX); k < len; k++) {
        char cut[TOKEN_TEXT_MAX];
        memcpy(cut, text, k);
        cut[k] = '\0';
        assert_int_not_equal(token_parse(cut, &u, err, sizeof err), 0);
    }
    assert_int_not_equal(token_parse("vc1-join:!!", &u, err, sizeof err), 0);
    assert_int_not_equal(token_parse("vc1:abc", &u, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_unique_and_revoked_on_remove),
        cmocka_unit_test(rotation_overlaps_then_drops),
        cmocka_unit_test(invites_are_single_use_and_expire),
        cmocka_unit_test(roles_bind_keys_to_names),
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(generated_commands),
        cmocka_unit_test(snapshot_version_1_still_reads),
        cmocka_unit_test(envelope_round_trip_and_prefixes),
        cmocka_unit_test(token_round_trip_and_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
