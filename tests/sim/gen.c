#include "gen.h"

#include <string.h>

uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

bool rng_pct(struct rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

const char *const gen_site_names[GEN_SITES] = {"s0", "s1", "s2",
                                               "s3", "s4", "s5"};
const char *const gen_host_names[GEN_HOSTS] = {
    "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11"};
const char *const gen_cluster_names[GEN_CLUSTERS] = {
    "c0",  "c1",  "c2",  "c3",  "c4",  "c5",  "c6",  "c7",
    "c8",  "c9",  "c10", "c11", "c12", "c13", "c14", "c15",
    "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23"};
static const char *const ifaces[] = {"vnet0", "vnet1", "eth1", "tap7"};
static const char *const texts[] = {"", "switch sw-a1: vlan 42: % Invalid",
                                    "timeout talking to sw1",
                                    "bridge br0: device busy"};
static const char *const addrs[] = {"", "10.0.0.1:7000", "10.0.0.2:7000",
                                    "[fd00::3]:7000"};
static const char *const owners[] = {"alice", "bob", "ci-bot"};
static const uint64_t leases[] = {1000, 5000, 30000, 600000};
/* Role binding names (role-add, role-remove). */
static const char *const role_names[] = {"alice", "bob", "ci-bot", "sched-1",
                                         "ops"};
/* Invites are for sites that do not exist yet: mostly names outside the
 * simulated set, sometimes one of s0-s5 (refused if it exists). */
static const char *const invite_sites[] = {"s6", "s7", "s8"};
/* Ed25519 public keys (site-key, role-add) and invite token hashes: 32
 * bytes each. A few, so keys collide (a key already bound, a revoked key,
 * an unchanged key). */
static const char keys[][PROTO_KEY_BYTES + 1] = {
    "key-0:0123456789abcdef0123456789", "key-1:0123456789abcdef0123456789",
    "key-2:0123456789abcdef0123456789", "key-3:0123456789abcdef0123456789",
    "key-4:0123456789abcdef0123456789", "key-5:0123456789abcdef0123456789",
    "key-6:0123456789abcdef0123456789", "key-7:0123456789abcdef0123456789"};
static const char hashes[][PROTO_KEY_BYTES + 1] = {
    "hash-0:123456789abcdef0123456789", "hash-1:123456789abcdef0123456789",
    "hash-2:123456789abcdef0123456789"};

#define N(a) (sizeof(a) / sizeof(a)[0])
#define PICK(r, a) (a)[rng_below((r), N(a))]

int gen_type(struct rng *r)
{
    /* Weights in enum order (index 0 unused). */
    static const unsigned w[PROTO_CMD_TYPE_MAX + 1] = {
        0, 3, 2, 1, 3, 4, 1, 2, 1, 20, 6, 5, 4, 7, 3, 8, 4, 22};
    unsigned total = 0, k;
    for (int i = 1; i <= PROTO_CMD_TYPE_MAX; i++)
        total += w[i];
    k = rng_below(r, total);
    for (int i = 1; i <= PROTO_CMD_TYPE_MAX; i++) {
        if (k < w[i])
            return i;
        k -= w[i];
    }
    return PROTO_CMD_LEASE_SWEEP;
}

/* Small, overlapping pools: allocations collide and run out. */
static void gen_pool(struct rng *r, struct vlanset *p)
{
    unsigned n = 1 + rng_below(r, 2);
    vlanset_clear(p);
    for (unsigned i = 0; i < n; i++) {
        unsigned lo = 100 + rng_below(r, 24);
        vlanset_add_range(p, lo, lo + 4 + rng_below(r, 20));
    }
    if (rng_pct(r, 3))
        vlanset_add_range(p, 1, 4094);
}

static const char *some_cluster(struct rng *r, const struct fsm *ref)
{
    if (ref && ref->live_clusters && rng_pct(r, 85)) {
        for (int tries = 0; tries < 32; tries++) {
            const char *n = PICK(r, gen_cluster_names);
            if (fsm_cluster_find(ref, n))
                return n;
        }
    }
    return PICK(r, gen_cluster_names);
}

/* The static copy of a site name: commands must not borrow from ref,
 * which changes as commands apply. */
static const char *site_name(struct rng *r, const char *name)
{
    for (unsigned i = 0; i < GEN_SITES; i++)
        if (strcmp(name, gen_site_names[i]) == 0)
            return gen_site_names[i];
    return PICK(r, gen_site_names);
}

/* A site the cluster spans (usually), else any. */
static const char *slot_site(struct rng *r, const struct fsm *ref,
                             const char *cluster)
{
    const struct fsm_cluster *c = ref ? fsm_cluster_find(ref, cluster) : NULL;
    if (c && c->nslots && rng_pct(r, 85))
        return site_name(
            r, ref->sites[c->slots[rng_below(r, c->nslots)].site].name);
    return PICK(r, gen_site_names);
}

/* The static copy of name in table a of n entries, NULL if not there. */
static const char *static_name(const char *const *a, size_t n,
                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, a[i]) == 0)
            return a[i];
    return NULL;
}

static struct mp_str key_str(const char *k)
{
    return (struct mp_str){k, PROTO_KEY_BYTES};
}

/* A key from the table, sometimes the one given (when it is in it). */
static struct mp_str some_key(struct rng *r, const uint8_t *have)
{
    if (have && rng_pct(r, 30))
        for (size_t i = 0; i < N(keys); i++)
            if (memcmp(keys[i], have, PROTO_KEY_BYTES) == 0)
                return key_str(keys[i]);
    return key_str(PICK(r, keys));
}

/* A site that exists in ref (usually), else any of s0-s5. */
static const char *some_site(struct rng *r, const struct fsm *ref)
{
    if (ref && rng_pct(r, 85)) {
        for (int tries = 0; tries < 32; tries++) {
            const char *n = PICK(r, gen_site_names);
            if (fsm_site_find(ref, n))
                return n;
        }
    }
    return PICK(r, gen_site_names);
}

/* site-key: a new, the current or a colliding key for a site; ok is the
 * overlap flag (keep the current key as the old one). */
static void gen_site_key(struct rng *r, const struct fsm *ref,
                         struct proto_cmd *c)
{
    const char *site = some_site(r, ref);
    const struct fsm_site *s = ref ? fsm_site_find(ref, site) : NULL;
    c->name = mp_cstr(site);
    c->key = some_key(r, s && s->has_key ? s->key : NULL);
    c->ok = rng_pct(r, 50);
}

/* A name that has a role binding in ref (usually), else any. */
static const char *some_role(struct rng *r, const struct fsm *ref)
{
    if (ref && ref->auth.nroles && rng_pct(r, 85)) {
        const char *n = static_name(
            role_names, N(role_names),
            ref->auth.roles[rng_below(r, ref->auth.nroles)].name);
        if (n)
            return n;
    }
    return PICK(r, role_names);
}

/* invite-add: mostly for a site that does not exist in ref. */
static void gen_invite(struct rng *r, const struct fsm *ref,
                       struct proto_cmd *c)
{
    const char *site = PICK(r, invite_sites);
    if (rng_pct(r, 20)) {
        site = PICK(r, gen_site_names);
        if (ref && fsm_site_find(ref, site) && rng_pct(r, 70))
            site = PICK(r, invite_sites);
    }
    c->name = mp_cstr(site);
    c->hash = key_str(PICK(r, hashes));
    c->lease_ms = PICK(r, leases);
}

/* A site with an outstanding invite in ref (usually), else any. */
static const char *some_invite(struct rng *r, const struct fsm *ref)
{
    if (ref && ref->auth.ninvites && rng_pct(r, 85)) {
        const char *site =
            ref->auth.invites[rng_below(r, ref->auth.ninvites)].site;
        const char *n = static_name(invite_sites, N(invite_sites), site);
        if (!n)
            n = static_name(gen_site_names, GEN_SITES, site);
        if (n)
            return n;
    }
    return PICK(r, invite_sites);
}

static void gen_site(struct rng *r, struct proto_cmd *c)
{
    c->name = mp_cstr(PICK(r, gen_site_names));
    gen_pool(r, &c->pool);
    c->managed = rng_pct(r, 60);
    c->uplink = (uint8_t)rng_below(r, 3);
    c->svlan = c->uplink == UPLINK_QINQ ? 3000 + rng_below(r, 5) : 0;
    c->addr = mp_cstr(PICK(r, addrs));
}

static void gen_create(struct rng *r, struct proto_cmd *c)
{
    unsigned want = 1 + rng_below(r, 3);
    c->name = mp_cstr(PICK(r, gen_cluster_names));
    c->owner = mp_cstr(PICK(r, owners));
    c->image = (uint8_t)rng_below(r, 2);
    c->lease_ms = PICK(r, leases);
    /* Some creations are kept on failure; derived from drawn values, so
     * the random stream stays what it was before the flag existed. */
    c->keep = c->image == IMAGE_USER && c->lease_ms == leases[0];
    while (c->nsites < want) {
        struct mp_str s = mp_cstr(PICK(r, gen_site_names));
        bool dup = false;
        for (uint32_t i = 0; i < c->nsites; i++)
            dup |= c->sites[i].p == s.p;
        if (!dup)
            c->sites[c->nsites++] = s;
    }
}

static void gen_report(struct rng *r, const struct fsm *ref,
                       struct proto_cmd *c)
{
    const char *cl = some_cluster(r, ref);
    const struct fsm_cluster *fc = ref ? fsm_cluster_find(ref, cl) : NULL;
    const char *site = slot_site(r, ref, cl);
    const struct fsm_site *st = ref ? fsm_site_find(ref, site) : NULL;
    const struct fsm_slot *sl =
        fc && st ? fsm_cluster_slot(fc, (unsigned)(st - ref->sites)) : NULL;
    uint64_t gen = sl ? sl->gen : fc ? fc->gen : 1;
    unsigned k = rng_below(r, 100);
    c->name = mp_cstr(cl);
    c->site = mp_cstr(site);
    c->gen = k < 80 ? gen : k < 90 ? (gen > 1 ? gen - 1 : 0) : gen + 1;
    c->ok = rng_pct(r, 85);
    c->text = mp_cstr(c->ok ? "" : PICK(r, texts));
}

void gen_cmd(struct rng *r, const struct fsm *ref, int type,
             struct proto_cmd *c)
{
    const char *cl;
    proto_cmd_init(c, type);
    switch (type) {
    case PROTO_CMD_SITE_ADD:
    case PROTO_CMD_SITE_UPDATE:
        gen_site(r, c);
        break;
    case PROTO_CMD_SITE_REMOVE:
        c->name = mp_cstr(PICK(r, gen_site_names));
        c->force = rng_pct(r, 50);
        break;
    case PROTO_CMD_POOL_SET:
        c->name = mp_cstr(PICK(r, gen_site_names));
        gen_pool(r, &c->pool);
        break;
    case PROTO_CMD_HOST_ADD:
        c->name = mp_cstr(PICK(r, gen_host_names));
        c->site = mp_cstr(PICK(r, gen_site_names));
        c->iface = mp_cstr("eth0");
        break;
    case PROTO_CMD_HOST_REMOVE:
    case PROTO_CMD_SERVICE_ADD:
    case PROTO_CMD_SERVICE_REMOVE:
        c->name = mp_cstr(PICK(r, gen_host_names));
        break;
    case PROTO_CMD_CLUSTER_CREATE:
        gen_create(r, c);
        break;
    case PROTO_CMD_CLUSTER_EXTEND:
        c->name = mp_cstr(some_cluster(r, ref));
        c->site = mp_cstr(PICK(r, gen_site_names));
        break;
    case PROTO_CMD_CLUSTER_SHRINK:
        cl = some_cluster(r, ref);
        c->name = mp_cstr(cl);
        c->site = mp_cstr(slot_site(r, ref, cl));
        break;
    case PROTO_CMD_CLUSTER_RENEW:
        c->name = mp_cstr(some_cluster(r, ref));
        c->lease_ms = PICK(r, leases);
        break;
    case PROTO_CMD_CLUSTER_RELEASE:
        c->name = mp_cstr(some_cluster(r, ref));
        c->force = rng_pct(r, 15);
        break;
    case PROTO_CMD_LEASE_SWEEP:
        break;
    case PROTO_CMD_ATTACH:
    case PROTO_CMD_DETACH:
        c->name = mp_cstr(some_cluster(r, ref));
        c->host = mp_cstr(PICK(r, gen_host_names));
        c->iface = mp_cstr(PICK(r, ifaces));
        break;
    case PROTO_CMD_APPLY_REPORT:
        gen_report(r, ref, c);
        break;
    case PROTO_CMD_CLUSTER_ROLLBACK:
        c->name = mp_cstr(some_cluster(r, ref));
        c->lease_ms = PICK(r, leases);
        break;
    case PROTO_CMD_SITE_KEY:
        gen_site_key(r, ref, c);
        break;
    case PROTO_CMD_ROLE_ADD:
        c->name = mp_cstr(PICK(r, role_names));
        c->key = some_key(r, NULL);
        c->role = (uint8_t)rng_below(r, ROLE_ADMIN + 1);
        break;
    case PROTO_CMD_ROLE_REMOVE:
        c->name = mp_cstr(some_role(r, ref));
        break;
    case PROTO_CMD_INVITE_ADD:
        gen_invite(r, ref, c);
        break;
    case PROTO_CMD_INVITE_REMOVE:
        c->name = mp_cstr(some_invite(r, ref));
        break;
    }
}
