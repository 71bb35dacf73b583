/* Renders state for clients as msgpack maps with string keys
 * (docs/protocol.md, "Client API payloads"). */
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "keys.h"
#include "watch.h"
#include "view_health.h"

static void key(msgpack_packer *pk, const char *k)
{
    mp_pack_cstr(pk, k);
}

static void kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    key(pk, k);
    mp_pack_cstr(pk, v);
}

static void kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    key(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    key(pk, k);
    v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    default: return "spare";
    }
}

static const char *state_name(int state)
{
    switch (state) {
    case RAFT_LEADER: return "leader";
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    default: return "unavailable";
    }
}

/* Role bindings by name: [{name, role, key}]. */
static void view_roles(msgpack_packer *pk, const struct fsm *f)
{
    const struct fsm_auth *au = &f->auth;
    const struct fsm_role **v = malloc((au->nroles ? au->nroles : 1) *
                                       sizeof *v);
    uint32_t n = v ? au->nroles : 0;
    for (uint32_t i = 0; i < n; i++)
        v[i] = &au->roles[i];
    for (uint32_t i = 1; i < n; i++) /* insertion sort: few bindings */
        for (uint32_t j = i; j > 0 && strcmp(v[j - 1]->name, v[j]->name) > 0;
             j--) {
            const struct fsm_role *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        char pub[KEYS_PUBLIC_TEXT_MAX];
        keys_format_public(v[i]->pk, pub, sizeof pub);
        msgpack_pack_map(pk, 3);
        kv_str(pk, "name", v[i]->name);
        kv_str(pk, "role", proto_role_name(v[i]->role));
        kv_str(pk, "key", pub);
    }
    free(v);
}

void view_status(msgpack_packer *pk, struct agent *a)
{
    struct consensus_status st;
    consensus_status(&a->cons, &st);
    msgpack_pack_map(pk, 12 + VIEW_HEALTH_KEYS);
    kv_str(pk, "cluster_id", a->cfg.cluster_id);
    key(pk, "roles"); /* client role bindings (fsm_auth.h) */
    view_roles(pk, &a->fsm);
    view_health(pk, &a->fsm); /* clusters not ready, where */
    key(pk, "hosts"); /* host agents of this site (watch.c) */
    watch_pack_status(a->rec.watch, pk);
    kv_str(pk, "site", a->cfg.site);
    kv_u64(pk, "id", consensus_site_id(a->cfg.site));
    kv_str(pk, "leader", api_leader_name(a));
    kv_u64(pk, "leader_id", st.leader_id);
    kv_u64(pk, "term", st.term);
    kv_u64(pk, "commit", st.commit);
    kv_u64(pk, "applied", st.applied);
    kv_str(pk, "role", state_name(st.state));
    key(pk, "members");
    msgpack_pack_array(pk, st.nmembers);
    for (unsigned i = 0; i < st.nmembers; i++) {
        const struct consensus_member *m = &st.members[i];
        const struct fsm_site *s = m->site[0] ? fsm_site_find(&a->fsm, m->site)
                                              : NULL;
        bool self = !strcmp(m->site, a->cfg.site);
        msgpack_pack_map(pk, 9);
        kv_str(pk, "site", m->site);
        kv_u64(pk, "id", m->id);
        kv_str(pk, "addr", m->addr);
        kv_str(pk, "api", s ? s->addr : "");
        kv_str(pk, "role", role_name(m->role));
        kv_bool(pk, "leader", m->leader);
        kv_bool(pk, "reachable", self || peer_reachable(a, m->site));
        kv_u64(pk, "match", m->match);
        kv_u64(pk, "lag", m->lag);
    }
}

static void pack_site(msgpack_packer *pk, const struct fsm *f,
                      const struct fsm_site *s, unsigned idx)
{
    char pool[2048];
    uint32_t nh = 0;
    for (uint32_t i = 0; i < f->nhosts; i++)
        nh += f->hosts[i].live && f->hosts[i].site == idx;
    char pub[KEYS_PUBLIC_TEXT_MAX] = "", old[KEYS_PUBLIC_TEXT_MAX] = "";
    if (s->has_key)
        keys_format_public(s->key, pub, sizeof pub);
    if (s->has_old_key)
        keys_format_public(s->old_key, old, sizeof old);
    msgpack_pack_map(pk, 12);
    kv_str(pk, "name", s->name);
    kv_u64(pk, "id", s->id);
    kv_str(pk, "key", pub);     /* "" if none */
    kv_str(pk, "old_key", old); /* during a key rotation, else "" */
    kv_str(pk, "addr", s->addr);
    kv_str(pk, "pool", vlanset_format(&s->pool, pool, sizeof pool));
    kv_str(pk, "uplink", proto_uplink_name(s->uplink));
    kv_u64(pk, "svlan", s->svlan);
    kv_bool(pk, "managed", s->managed);
    kv_u64(pk, "free", vlanset_count(&s->free));
    kv_u64(pk, "used", vlanset_count(&s->used));
    key(pk, "hosts");
    msgpack_pack_array(pk, nh);
    for (uint32_t i = 0; i < f->nhosts; i++) {
        const struct fsm_host *h = &f->hosts[i];
        if (!h->live || h->site != idx)
            continue;
        msgpack_pack_map(pk, 3);
        kv_str(pk, "name", h->name);
        kv_str(pk, "trunk", h->trunk);
        kv_bool(pk, "service", h->service);
    }
}

int view_sites(msgpack_packer *pk, const struct fsm *f, const char *name)
{
    if (name) {
        const struct fsm_site *s = fsm_site_find(f, name);
        if (!s) {
            msgpack_pack_nil(pk);
            return VC_ENOTFOUND;
        }
        msgpack_pack_array(pk, 1); /* payloads are always arrays */
        pack_site(pk, f, s, (unsigned)(s - f->sites));
        return 0;
    }
    /* By site id, the order sites were added. */
    const struct fsm_site *order[VC_SITES_MAX];
    uint32_t n = fsm_sites_by_id(f, order);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        pack_site(pk, f, order[i], (unsigned)(order[i] - f->sites));
    return 0;
}

static const char *slot_state(const struct fsm_slot *s)
{
    if (s->removing)
        return "removing";
    if (s->failed)
        return "failed";
    return s->applied >= s->gen ? "applied" : "pending";
}

static void pack_cluster(msgpack_packer *pk, const struct fsm *f,
                         const struct fsm_cluster *c)
{
    uint32_t active = 0;
    for (uint32_t i = 0; i < c->nslots; i++)
        active += !c->slots[i].removing;
    msgpack_pack_map(pk, 12);
    kv_bool(pk, "keep_on_failure", c->keep);
    kv_str(pk, "name", c->name);
    kv_str(pk, "owner", c->owner);
    kv_str(pk, "image", proto_image_name(c->image));
    kv_u64(pk, "vlan", c->vlan);
    kv_str(pk, "state", fsm_state_name(c->state));
    kv_u64(pk, "gen", c->gen);
    kv_u64(pk, "created_ms", c->created_ms);
    kv_u64(pk, "deadline_ms", c->deadline_ms);
    key(pk, "sites");
    msgpack_pack_array(pk, c->state == FSM_RELEASING ? c->nslots : active);
    for (uint32_t i = 0; i < c->nslots; i++)
        if (c->state == FSM_RELEASING || !c->slots[i].removing)
            mp_pack_cstr(pk, f->sites[c->slots[i].site].name);
    key(pk, "status");
    msgpack_pack_array(pk, c->nslots);
    for (uint32_t i = 0; i < c->nslots; i++) {
        const struct fsm_slot *s = &c->slots[i];
        msgpack_pack_map(pk, 5);
        kv_str(pk, "site", f->sites[s->site].name);
        kv_str(pk, "state", slot_state(s));
        kv_u64(pk, "gen", s->gen);
        kv_u64(pk, "applied", s->applied);
        kv_str(pk, "error", s->err ? s->err : "");
    }
    key(pk, "attachments");
    msgpack_pack_array(pk, c->natt);
    for (uint32_t i = 0; i < c->natt; i++) {
        msgpack_pack_map(pk, 2);
        kv_str(pk, "host", c->att[i].host);
        kv_str(pk, "iface", c->att[i].iface);
    }
}

static int cmp_cluster(const void *x, const void *y)
{
    const struct fsm_cluster *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

int view_clusters(msgpack_packer *pk, const struct fsm *f, const char *name)
{
    if (name) {
        const struct fsm_cluster *c = fsm_cluster_find(f, name);
        if (!c) {
            msgpack_pack_nil(pk);
            return VC_ENOTFOUND;
        }
        msgpack_pack_array(pk, 1);
        pack_cluster(pk, f, c);
        return 0;
    }
    const struct fsm_cluster **v = malloc((f->nclusters + 1) * sizeof *v);
    uint32_t n = 0;
    if (!v) {
        msgpack_pack_nil(pk);
        return VC_ENOMEM;
    }
    for (uint32_t i = 0; i < f->nclusters; i++)
        if (f->clusters[i].live)
            v[n++] = &f->clusters[i];
    qsort(v, n, sizeof *v, cmp_cluster);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        pack_cluster(pk, f, v[i]);
    free(v);
    return 0;
}
