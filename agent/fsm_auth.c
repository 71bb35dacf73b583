/* Keys, roles and invites in the state machine (see fsm_auth.h). */
#include "fsm_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "fsm.h"

#define K PROTO_KEY_BYTES

#define result fsm_result

#define S(s) (int)(s).n, (s).p

void fsm_auth_close(struct fsm_auth *a)
{
    free(a->roles);
    a->roles = NULL;
    a->nroles = a->roles_cap = 0;
}

/* --- revoked keys ---------------------------------------------------- */

bool fsm_auth_revoked(const struct fsm *f, const uint8_t *pk)
{
    const struct fsm_auth *a = &f->auth;
    for (uint32_t i = 0; i < a->nrevoked; i++)
        if (memcmp(a->revoked[i], pk, K) == 0)
            return true;
    return false;
}

/* Appends pk (the oldest is forgotten when full: FIFO). */
static void revoke(struct fsm *f, const uint8_t *pk)
{
    struct fsm_auth *a = &f->auth;
    if (fsm_auth_revoked(f, pk))
        return;
    if (a->nrevoked < FSM_REVOKED_MAX) {
        memcpy(a->revoked[(a->revoked_head + a->nrevoked) % FSM_REVOKED_MAX],
               pk, K);
        a->nrevoked++;
        return;
    }
    memcpy(a->revoked[a->revoked_head], pk, K);
    a->revoked_head = (a->revoked_head + 1) % FSM_REVOKED_MAX;
}

/* --- site keys ------------------------------------------------------- */

const struct fsm_site *fsm_auth_site_by_key(const struct fsm *f,
                                            const uint8_t *pk)
{
    for (int i = 0; i < VC_SITES_MAX; i++) {
        const struct fsm_site *s = &f->sites[i];
        if (s->live && ((s->has_key && memcmp(s->key, pk, K) == 0) ||
                        (s->has_old_key && memcmp(s->old_key, pk, K) == 0)))
            return s;
    }
    return NULL;
}

/* Why key may not go to site `self` (NULL: it may). */
static const char *key_unusable(const struct fsm *f, const uint8_t *pk,
                                const struct fsm_site *self)
{
    const struct fsm_site *other = fsm_auth_site_by_key(f, pk);
    if (other && other != self)
        return "is already the key of another site";
    if (fsm_auth_revoked(f, pk))
        return "was revoked (a removed site's or a rotated-out key); make a "
               "new one with virtcloud keygen";
    return NULL;
}

static struct fsm_invite *invite_find(const struct fsm *f, struct mp_str name)
{
    const struct fsm_auth *a = &f->auth;
    for (uint32_t i = 0; i < a->ninvites; i++)
        if (mp_str_eq(name, a->invites[i].site))
            return (struct fsm_invite *)&a->invites[i];
    return NULL;
}

bool fsm_auth_invite_valid(const struct fsm *f, struct mp_str site,
                           const uint8_t *hash, uint64_t now_ms)
{
    const struct fsm_invite *inv = invite_find(f, site);
    return inv && memcmp(inv->hash, hash, K) == 0 && now_ms <= inv->expires_ms;
}

static void invite_drop(struct fsm *f, struct fsm_invite *inv)
{
    struct fsm_auth *a = &f->auth;
    uint32_t i = (uint32_t)(inv - a->invites);
    memmove(&a->invites[i], &a->invites[i + 1],
            (a->ninvites - i - 1) * sizeof *inv);
    a->ninvites--;
}

bool fsm_auth_site_add_refused(const struct fsm *f, const struct proto_cmd *c,
                               struct proto_result *r)
{
    const char *why;
    if (c->key.n && (why = key_unusable(f, (const uint8_t *)c->key.p, NULL))) {
        result(r, VC_ECONFLICT, "site %.*s: key %s", S(c->name), why);
        return true;
    }
    if (!c->hash.n)
        return false;
    const struct fsm_invite *inv = invite_find(f, c->name);
    if (!inv || memcmp(inv->hash, c->hash.p, K) != 0 ||
        c->time_ms > inv->expires_ms) {
        result(r, VC_EDENIED, "join token for site %.*s is not valid: "
               "unknown, already used or expired", S(c->name));
        return true;
    }
    if (!c->key.n) {
        result(r, VC_EINVAL, "site %.*s: joining with a token needs the "
               "site's key", S(c->name));
        return true;
    }
    return false;
}

void fsm_auth_site_added(struct fsm *f, struct fsm_site *s,
                         const struct proto_cmd *c)
{
    struct fsm_invite *inv;
    if (c->key.n) {
        memcpy(s->key, c->key.p, K);
        s->has_key = true;
    }
    if (c->hash.n && (inv = invite_find(f, c->name)))
        invite_drop(f, inv);
}

bool fsm_auth_site_update_refused(const struct fsm *f,
                                  const struct fsm_site *s,
                                  const struct proto_cmd *c,
                                  struct proto_result *r)
{
    const char *why;
    if (!c->key.n || (s->has_key && memcmp(s->key, c->key.p, K) == 0))
        return false;
    if (s->has_key) {
        result(r, VC_ECONFLICT, "site %s has another key: change it with "
               "virtcloud site rotate-key", s->name);
        return true;
    }
    if ((why = key_unusable(f, (const uint8_t *)c->key.p, s))) {
        result(r, VC_ECONFLICT, "site %s: key %s", s->name, why);
        return true;
    }
    return false;
}

void fsm_auth_site_updated(struct fsm_site *s, const struct proto_cmd *c)
{
    if (c->key.n && !s->has_key) {
        memcpy(s->key, c->key.p, K);
        s->has_key = true;
    }
}

void fsm_auth_site_removed(struct fsm *f, const struct fsm_site *s)
{
    if (s->has_key)
        revoke(f, s->key);
    if (s->has_old_key)
        revoke(f, s->old_key);
}

/* site-key NAME KEY OVERLAP: KEY becomes the site's key. With OVERLAP the
 * current key stays accepted as the old key (the first step of a
 * rotation); without, every other key of the site is revoked (the last
 * step, or an emergency replacement). */
int fsm_auth_site_key(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r)
{
    struct fsm_site *s;
    char name[VC_NAME_MAX + 1];
    const uint8_t *pk = (const uint8_t *)c->key.p;
    const char *why;
    mp_str_copy(c->name, name, sizeof name);
    if (!(s = fsm_site_find(f, name)))
        return result(r, VC_ENOTFOUND, "no site named %s", name);
    bool same = s->has_key && memcmp(s->key, pk, K) == 0;
    if (!same && (why = key_unusable(f, pk, s)) &&
        !(s->has_old_key && memcmp(s->old_key, pk, K) == 0))
        return result(r, VC_ECONFLICT, "site %s: key %s", name, why);
    if (same && c->ok)
        return result(r, 0, "site %s: key unchanged", name);
    if (same) {
        bool had_old = s->has_old_key;
        if (had_old)
            revoke(f, s->old_key);
        s->has_old_key = false;
        return result(r, 0, "site %s: %s", name,
                      had_old ? "old key dropped" : "key unchanged");
    }
    if (c->ok) {
        if (s->has_old_key && memcmp(s->old_key, pk, K) != 0)
            revoke(f, s->old_key);
        s->has_old_key = s->has_key;
        memcpy(s->old_key, s->key, K);
    } else {
        if (s->has_key)
            revoke(f, s->key);
        if (s->has_old_key && memcmp(s->old_key, pk, K) != 0)
            revoke(f, s->old_key);
        s->has_old_key = false;
    }
    memcpy(s->key, pk, K);
    s->has_key = true;
    return result(r, 0, "site %s: new key%s", name,
                  c->ok ? " (old key accepted until dropped)" : "");
}

/* --- roles ----------------------------------------------------------- */

const struct fsm_role *fsm_auth_role_by_key(const struct fsm *f,
                                            const uint8_t *pk)
{
    const struct fsm_auth *a = &f->auth;
    for (uint32_t i = 0; i < a->nroles; i++)
        if (memcmp(a->roles[i].pk, pk, K) == 0)
            return &a->roles[i];
    return NULL;
}

const struct fsm_role *fsm_auth_role_by_name(const struct fsm *f,
                                             const char *name)
{
    const struct fsm_auth *a = &f->auth;
    for (uint32_t i = 0; i < a->nroles; i++)
        if (strcmp(a->roles[i].name, name) == 0)
            return &a->roles[i];
    return NULL;
}

static int role_put(struct fsm *f, const char *name, const uint8_t *pk,
                    uint8_t role)
{
    struct fsm_auth *a = &f->auth;
    if (a->nroles == a->roles_cap) {
        uint32_t cap = a->roles_cap ? a->roles_cap * 2 : 16;
        struct fsm_role *v = realloc(a->roles, cap * sizeof *v);
        if (!v)
            return VC_ENOMEM;
        a->roles = v;
        a->roles_cap = cap;
    }
    struct fsm_role *e = &a->roles[a->nroles++];
    memset(e, 0, sizeof *e);
    memcpy(e->pk, pk, K);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->role = role;
    return 0;
}

int fsm_auth_role_add(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r)
{
    char name[VC_NAME_MAX + 1];
    const uint8_t *pk = (const uint8_t *)c->key.p;
    mp_str_copy(c->name, name, sizeof name);
    struct fsm_role *byname = (struct fsm_role *)fsm_auth_role_by_name(f, name);
    const struct fsm_role *bykey = fsm_auth_role_by_key(f, pk);
    if (bykey && bykey != byname)
        return result(r, VC_ECONFLICT, "that key is already bound to %s (%s)",
                      bykey->name, proto_role_name(bykey->role));
    if (byname) {
        memcpy(byname->pk, pk, K);
        byname->role = c->role;
        return result(r, 0, "%s is now %s", name, proto_role_name(c->role));
    }
    if (f->auth.nroles >= FSM_ROLES_MAX)
        return result(r, VC_ELIMIT, "role limit of %d reached",
                      FSM_ROLES_MAX);
    if (role_put(f, name, pk, c->role) != 0)
        return VC_ENOMEM;
    return result(r, 0, "%s added as %s", name, proto_role_name(c->role));
}

int fsm_auth_role_remove(struct fsm *f, const struct proto_cmd *c,
                         struct proto_result *r)
{
    struct fsm_auth *a = &f->auth;
    char name[VC_NAME_MAX + 1];
    mp_str_copy(c->name, name, sizeof name);
    const struct fsm_role *e = fsm_auth_role_by_name(f, name);
    if (!e)
        return result(r, VC_ENOTFOUND, "no role binding named %s", name);
    uint32_t i = (uint32_t)(e - a->roles);
    a->roles[i] = a->roles[--a->nroles];
    return result(r, 0, "role binding %s removed", name);
}

/* --- invites --------------------------------------------------------- */

/* Forgets invites expired at now (the proposer's clock of the command). */
static void prune_invites(struct fsm *f, uint64_t now)
{
    struct fsm_auth *a = &f->auth;
    uint32_t j = 0;
    for (uint32_t i = 0; i < a->ninvites; i++)
        if (a->invites[i].expires_ms >= now)
            a->invites[j++] = a->invites[i];
    a->ninvites = j;
}

int fsm_auth_invite_add(struct fsm *f, const struct proto_cmd *c,
                        struct proto_result *r)
{
    char name[VC_NAME_MAX + 1];
    struct fsm_invite *inv;
    mp_str_copy(c->name, name, sizeof name);
    if (fsm_site_find(f, name))
        return result(r, VC_EEXISTS, "site %s already exists", name);
    prune_invites(f, c->time_ms);
    if (!(inv = invite_find(f, c->name))) {
        if (f->auth.ninvites >= FSM_INVITES_MAX)
            return result(r, VC_ELIMIT, "%d invites outstanding",
                          FSM_INVITES_MAX);
        inv = &f->auth.invites[f->auth.ninvites++];
    }
    memset(inv, 0, sizeof *inv);
    snprintf(inv->site, sizeof inv->site, "%s", name);
    memcpy(inv->hash, c->hash.p, K);
    inv->expires_ms = c->time_ms + c->lease_ms;
    return result(r, 0, "site %s invited (one join, for %llu s)", name,
                  (unsigned long long)(c->lease_ms / 1000));
}

int fsm_auth_invite_remove(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r)
{
    struct fsm_invite *inv = invite_find(f, c->name);
    if (!inv)
        return result(r, VC_ENOTFOUND, "no invite for site %.*s",
                      S(c->name));
    invite_drop(f, inv);
    return result(r, 0, "invite for site %.*s withdrawn", S(c->name));
}

/* --- snapshot -------------------------------------------------------- */

static void pack_bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static int cmp_role(const void *x, const void *y)
{
    return strcmp(((const struct fsm_role *)x)->name,
                  ((const struct fsm_role *)y)->name);
}

static int cmp_invite(const void *x, const void *y)
{
    return strcmp(((const struct fsm_invite *)x)->site,
                  ((const struct fsm_invite *)y)->site);
}

void fsm_auth_pack(msgpack_packer *pk, const struct fsm *f)
{
    const struct fsm_auth *a = &f->auth;
    /* Sorted copies: the state itself is not reordered by a snapshot. */
    struct fsm_role *roles = malloc((a->nroles ? a->nroles : 1) *
                                    sizeof *roles);
    struct fsm_invite inv[FSM_INVITES_MAX];
    msgpack_pack_array(pk, 3);
    if (!roles) {
        /* Leaves the packer's buffer out of memory: the snapshot fails. */
        struct mp_buf *b = mp_packer_buf(pk);
        if (b)
            b->oom = true;
        return;
    }
    if (a->nroles)
        memcpy(roles, a->roles, a->nroles * sizeof *roles);
    qsort(roles, a->nroles, sizeof *roles, cmp_role);
    msgpack_pack_array(pk, a->nroles);
    for (uint32_t i = 0; i < a->nroles; i++) {
        msgpack_pack_array(pk, 3);
        mp_pack_cstr(pk, roles[i].name);
        pack_bin(pk, roles[i].pk, K);
        msgpack_pack_uint8(pk, roles[i].role);
    }
    free(roles);
    memcpy(inv, a->invites, a->ninvites * sizeof *inv);
    qsort(inv, a->ninvites, sizeof *inv, cmp_invite);
    msgpack_pack_array(pk, a->ninvites);
    for (uint32_t i = 0; i < a->ninvites; i++) {
        msgpack_pack_array(pk, 3);
        mp_pack_cstr(pk, inv[i].site);
        pack_bin(pk, inv[i].hash, K);
        msgpack_pack_uint64(pk, inv[i].expires_ms);
    }
    msgpack_pack_array(pk, a->nrevoked);
    for (uint32_t i = 0; i < a->nrevoked; i++)
        pack_bin(pk, a->revoked[(a->revoked_head + i) % FSM_REVOKED_MAX], K);
}

#define BAD(...)                                 \
    do {                                         \
        snprintf(errmsg, errlen, __VA_ARGS__);   \
        return VC_EMALFORMED;                    \
    } while (0)

static bool get_key(const msgpack_object *o, const uint8_t **p)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != K)
        return false;
    *p = (const uint8_t *)o->via.bin.ptr;
    return true;
}

static int restore_roles(struct fsm *f, const msgpack_object *o,
                         char *errmsg, size_t errlen)
{
    const msgpack_object *items, *fl;
    uint32_t n, nf;
    uint64_t role;
    if (mp_get_array(o, 0, FSM_ROLES_MAX, &items, &n) != 0)
        BAD("snapshot roles: not an array of at most %d", FSM_ROLES_MAX);
    for (uint32_t i = 0; i < n; i++) {
        struct mp_str name;
        const uint8_t *pk;
        char buf[VC_NAME_MAX + 1];
        if (mp_get_array(&items[i], 3, 3, &fl, &nf) != 0 ||
            mp_get_str(&fl[0], VC_NAME_MAX, &name) != 0 ||
            !proto_name_ok(name) || !get_key(&fl[1], &pk) ||
            mp_get_uint(&fl[2], ROLE_ADMIN, &role) != 0)
            BAD("snapshot role %u: malformed", i);
        mp_str_copy(name, buf, sizeof buf);
        if (fsm_auth_role_by_name(f, buf) || fsm_auth_role_by_key(f, pk))
            BAD("snapshot role %s: name or key listed twice", buf);
        if (role_put(f, buf, pk, (uint8_t)role) != 0)
            return VC_ENOMEM;
    }
    return 0;
}

static int restore_invites(struct fsm *f, const msgpack_object *o,
                           char *errmsg, size_t errlen)
{
    const msgpack_object *items, *fl;
    uint32_t n, nf;
    if (mp_get_array(o, 0, FSM_INVITES_MAX, &items, &n) != 0)
        BAD("snapshot invites: not an array of at most %d", FSM_INVITES_MAX);
    for (uint32_t i = 0; i < n; i++) {
        struct fsm_invite *inv = &f->auth.invites[i];
        struct mp_str name;
        const uint8_t *h;
        if (mp_get_array(&items[i], 3, 3, &fl, &nf) != 0 ||
            mp_get_str(&fl[0], VC_NAME_MAX, &name) != 0 ||
            !proto_name_ok(name) || !get_key(&fl[1], &h) ||
            mp_get_u64(&fl[2], &inv->expires_ms) != 0 ||
            invite_find(f, name))
            BAD("snapshot invite %u: malformed", i);
        mp_str_copy(name, inv->site, sizeof inv->site);
        memcpy(inv->hash, h, K);
        f->auth.ninvites++;
    }
    return 0;
}

int fsm_auth_restore(struct fsm *f, const msgpack_object *o, char *errmsg,
                     size_t errlen)
{
    const msgpack_object *top, *items;
    uint32_t n, nr;
    int rv;
    if (mp_get_array(o, 3, 3, &top, &n) != 0)
        BAD("snapshot auth: not [roles, invites, revoked]");
    if ((rv = restore_roles(f, &top[0], errmsg, errlen)) != 0 ||
        (rv = restore_invites(f, &top[1], errmsg, errlen)) != 0)
        return rv;
    if (mp_get_array(&top[2], 0, FSM_REVOKED_MAX, &items, &nr) != 0)
        BAD("snapshot revoked keys: not an array of at most %d",
            FSM_REVOKED_MAX);
    for (uint32_t i = 0; i < nr; i++) {
        const uint8_t *pk;
        if (!get_key(&items[i], &pk) || fsm_auth_revoked(f, pk) ||
            fsm_auth_site_by_key(f, pk))
            BAD("snapshot revoked key %u: malformed or in use", i);
        revoke(f, pk);
    }
    return 0;
}
