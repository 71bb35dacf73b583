/* The snapshot encoder as it was before the direct-store writers (commit
 * d479225): every field through msgpack-c's packer, texts by strlen().
 * Kept verbatim as the reference the fast encoder (agent/fsm_snap.c,
 * agent/fsm_audit.c) must match byte for byte: test_snap_encoder.c.
 * The auth part was not rewritten: it is the agent's fsm_auth_pack(). */
#include <stdlib.h>
#include <string.h>

#include "agent/fsm.h"
#include "proto/err.h"
#include "snap_ref.h"

static void pack_bool(msgpack_packer *pk, bool b)
{
    b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

/* The snapshot's packer writes into an mp_buf (mp_packer_init). */
static void pack_pool(msgpack_packer *pk, const struct vlanset *s)
{
    proto_pool_put(pk->data, s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pointers to the names of live entities, sorted. Caller frees. */
static const char **sorted_names(const void *base, size_t stride,
                                 uint32_t n, size_t name_off, size_t live_off,
                                 uint32_t *count)
{
    const char **v = malloc((n ? n : 1) * sizeof *v);
    *count = 0;
    if (!v)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const char *e = (const char *)base + i * stride;
        if (*(const bool *)(e + live_off))
            v[(*count)++] = e + name_off;
    }
    qsort(v, *count, sizeof *v, cmp_str);
    return v;
}

static void pack_key(msgpack_packer *pk, bool has, const uint8_t *key)
{
    msgpack_pack_bin(pk, has ? PROTO_KEY_BYTES : 0);
    if (has)
        msgpack_pack_bin_body(pk, key, PROTO_KEY_BYTES);
}

static void pack_site(msgpack_packer *pk, const struct fsm_site *s)
{
    msgpack_pack_array(pk, 9);
    msgpack_pack_uint32(pk, s->id);
    mp_pack_cstr(pk, s->name);
    mp_pack_cstr(pk, s->addr);
    pack_pool(pk, &s->pool);
    msgpack_pack_uint8(pk, s->uplink);
    msgpack_pack_uint16(pk, s->svlan);
    pack_bool(pk, s->managed);
    pack_key(pk, s->has_key, s->key);
    pack_key(pk, s->has_old_key, s->old_key);
}

static void pack_sites(msgpack_packer *pk, const struct fsm *f)
{
    const struct fsm_site *order[VC_SITES_MAX];
    uint32_t n = fsm_sites_by_id(f, order);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        pack_site(pk, order[i]);
}

static int pack_hosts(msgpack_packer *pk, const struct fsm *f)
{
    uint32_t n;
    const char **names = sorted_names(f->hosts, sizeof *f->hosts, f->nhosts,
                                      offsetof(struct fsm_host, name),
                                      offsetof(struct fsm_host, live), &n);
    if (!names)
        return VC_ENOMEM;
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const struct fsm_host *h = fsm_host_find(f, names[i]);
        msgpack_pack_array(pk, 4);
        mp_pack_cstr(pk, h->name);
        mp_pack_cstr(pk, f->sites[h->site].name);
        mp_pack_cstr(pk, h->trunk);
        pack_bool(pk, h->service);
    }
    free(names);
    return 0;
}

/* Cluster flags, an optional 11th field of the record (written only when
 * some flag is set, so states without them keep their old bytes). */
#define SNAP_KEEP 1u    /* keep on failure */
#define SNAP_SETTLED 2u /* was ready once */

static unsigned cluster_flags(const struct fsm_cluster *c)
{
    return (c->keep ? SNAP_KEEP : 0) | (c->settled ? SNAP_SETTLED : 0);
}

static void pack_cluster(msgpack_packer *pk, const struct fsm *f,
                         const struct fsm_cluster *c)
{
    unsigned flags = cluster_flags(c);
    msgpack_pack_array(pk, flags ? 11 : 10);
    mp_pack_cstr(pk, c->name);
    mp_pack_cstr(pk, c->owner);
    msgpack_pack_uint8(pk, c->image);
    msgpack_pack_uint16(pk, c->vlan);
    msgpack_pack_uint64(pk, c->created_ms);
    msgpack_pack_uint64(pk, c->deadline_ms);
    msgpack_pack_uint64(pk, c->gen);
    pack_bool(pk, c->state == FSM_RELEASING);
    msgpack_pack_array(pk, c->nslots);
    for (uint32_t i = 0; i < c->nslots; i++) {
        const struct fsm_slot *s = &c->slots[i];
        msgpack_pack_array(pk, 6);
        mp_pack_cstr(pk, f->sites[s->site].name);
        pack_bool(pk, s->removing);
        pack_bool(pk, s->failed);
        msgpack_pack_uint64(pk, s->gen);
        msgpack_pack_uint64(pk, s->applied);
        mp_pack_cstr(pk, s->err ? s->err : "");
    }
    msgpack_pack_array(pk, c->natt);
    for (uint32_t i = 0; i < c->natt; i++) {
        msgpack_pack_array(pk, 2);
        mp_pack_cstr(pk, c->att[i].host);
        mp_pack_cstr(pk, c->att[i].iface);
    }
    if (flags)
        msgpack_pack_uint8(pk, (uint8_t)flags);
}

static int pack_clusters(msgpack_packer *pk, const struct fsm *f)
{
    uint32_t n;
    const char **names = sorted_names(
        f->clusters, sizeof *f->clusters, f->nclusters,
        offsetof(struct fsm_cluster, name), offsetof(struct fsm_cluster, live),
        &n);
    if (!names)
        return VC_ENOMEM;
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        pack_cluster(pk, f, fsm_cluster_find(f, names[i]));
    free(names);
    return 0;
}

static void pack_dedupe(msgpack_packer *pk, const struct fsm *f)
{
    msgpack_pack_array(pk, f->dd_len);
    for (uint32_t i = 0; i < f->dd_len; i++) {
        const struct fsm_dedupe *d = &f->dd[(f->dd_head + i) % FSM_DEDUPE_MAX];
        msgpack_pack_array(pk, 5);
        mp_pack_cstr(pk, d->id);
        msgpack_pack_int64(pk, d->code);
        msgpack_pack_uint16(pk, d->vlan);
        msgpack_pack_uint64(pk, d->gen);
        mp_pack_cstr(pk, d->msg ? d->msg : "");
    }
}

/* fsm_audit_pack() of d479225. */
static void ref_audit_pack(msgpack_packer *pk, const struct fsm_audit *a)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, a->next_seq);
    msgpack_pack_array(pk, a->len);
    for (uint32_t i = 0; i < a->len; i++) {
        const struct fsm_audit_entry *e = fsm_audit_at(a, i);
        msgpack_pack_array(pk, 4 + AUDIT_NTEXT);
        msgpack_pack_uint64(pk, e->seq);
        msgpack_pack_uint64(pk, e->time_ms);
        msgpack_pack_uint8(pk, e->type);
        msgpack_pack_int32(pk, e->code);
        for (int k = 0; k < AUDIT_NTEXT; k++)
            mp_pack_cstr(pk, fsm_audit_text(e, (enum fsm_audit_text)k));
    }
}

int snap_ref_encode(const struct fsm *f, struct mp_buf *out)
{
    msgpack_packer pk;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint8(&pk, FSM_SNAPSHOT_VERSION);
    msgpack_pack_uint32(&pk, f->next_site_id);
    pack_sites(&pk, f);
    if (pack_hosts(&pk, f) != 0 || pack_clusters(&pk, f) != 0)
        return VC_ENOMEM;
    pack_dedupe(&pk, f);
    fsm_auth_pack(&pk, f);
    ref_audit_pack(&pk, &f->audit); /* the trail stays the last part */
    return out->oom ? VC_ENOMEM : 0;
}

