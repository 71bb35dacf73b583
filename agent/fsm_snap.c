/* Snapshot encoding of the state machine (docs/protocol.md, "Snapshot").
 *
 * The encoding is canonical: sites by id, hosts and clusters by name, the
 * de-duplication window oldest first. So two replicas in the same logical
 * state write the same bytes, whatever their histories, and
 * snapshot -> restore -> snapshot is byte-identical.
 *
 * Restore decodes into a fresh state machine and validates every reference
 * and invariant (a VLAN held twice at a site is refused) before swapping it
 * in, so a bad snapshot leaves the running state untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "fsm.h"

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

/* The window is most of a snapshot's records (up to FSM_DEDUPE_MAX), so
 * each is written with direct stores: one reservation per record, the
 * lengths the ring keeps, no packer callback per field. Same bytes as
 * [id, code, vlan, gen, msg] through msgpack-c. */
static void pack_dedupe(struct mp_buf *b, const struct fsm *f)
{
    mp_put_array(b, f->dd_len);
    for (uint32_t i = 0, k = f->dd_head; i < f->dd_len; i++) {
        const struct fsm_dedupe *d = &f->dd[k];
        uint32_t nmsg = d->msg ? d->msg_len : 0;
        /* array 1, id 5 + n, code 9, vlan 3, gen 9, msg 5 + n */
        uint8_t *p0 = mp_buf_room(b, 32 + (size_t)d->id_len + nmsg), *p;
        if (!p0)
            return;
        p = mp_w_array(p0, 5);
        p = mp_w_str(p, d->id, d->id_len);
        p = mp_w_int(p, d->code);
        p = mp_w_uint(p, d->vlan);
        p = mp_w_uint(p, d->gen);
        p = mp_w_str(p, d->msg, nmsg);
        b->len += (size_t)(p - p0);
        if (++k == FSM_DEDUPE_MAX)
            k = 0;
    }
}

int fsm_snapshot(const struct fsm *f, struct mp_buf *out)
{
    msgpack_packer pk;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint8(&pk, FSM_SNAPSHOT_VERSION);
    msgpack_pack_uint32(&pk, f->next_site_id);
    pack_sites(&pk, f);
    if (pack_hosts(&pk, f) != 0 || pack_clusters(&pk, f) != 0)
        return VC_ENOMEM;
    pack_dedupe(out, f);
    fsm_auth_pack(&pk, f);
    fsm_audit_pack(out, &f->audit); /* the trail stays the last part */
    return out->oom ? VC_ENOMEM : 0;
}

/* --- restore ----------------------------------------------------------- */

#define BAD(...)                                 \
    do {                                         \
        snprintf(errmsg, errlen, __VA_ARGS__);   \
        return VC_EMALFORMED;                    \
    } while (0)

/* Builds a command from a snapshot record and applies it through the normal
 * handlers, so restore re-checks every invariant the commands check. */
static int replay(struct fsm *f, struct proto_cmd *cmd, char *errmsg,
                  size_t errlen)
{
    struct proto_result r;
    int rv = proto_cmd_validate(cmd, errmsg, errlen);
    if (rv != 0)
        return VC_EMALFORMED;
    if ((rv = fsm_apply(f, cmd, &r)) != 0)
        return rv;
    if (r.code != 0)
        BAD("inconsistent snapshot: %s", r.msg);
    return 0;
}

/* A site key field: empty bin (none) or 32 bytes. */
static int get_key(const msgpack_object *o, struct mp_str *k)
{
    if (o->type != MSGPACK_OBJECT_BIN ||
        (o->via.bin.size != 0 && o->via.bin.size != PROTO_KEY_BYTES))
        return VC_EMALFORMED;
    k->p = o->via.bin.size ? o->via.bin.ptr : "";
    k->n = o->via.bin.size;
    return 0;
}

/* Version 2 site records end with the key and the old key. */
static int restore_site_keys(struct fsm *f, const msgpack_object *fl,
                             struct proto_cmd *cmd, struct mp_str *old)
{
    (void)f;
    if (get_key(&fl[7], &cmd->key) != 0 || get_key(&fl[8], old) != 0 ||
        (old->n && !cmd->key.n))
        return VC_EMALFORMED;
    return 0;
}

static int restore_sites(struct fsm *f, const msgpack_object *o,
                         struct proto_cmd *cmd, unsigned nfields,
                         char *errmsg, size_t errlen)
{
    const msgpack_object *items, *fl;
    uint32_t n, nf;
    uint64_t id, uplink, svlan, prev = 0;
    if (mp_get_array(o, 0, VC_SITES_MAX, &items, &n) != 0)
        BAD("snapshot sites: not an array of at most %d", VC_SITES_MAX);
    for (uint32_t i = 0; i < n; i++) {
        struct mp_str old = {"", 0};
        proto_cmd_init(cmd, PROTO_CMD_SITE_ADD);
        if (mp_get_array(&items[i], nfields, nfields, &fl, &nf) != 0 ||
            mp_get_uint(&fl[0], UINT32_MAX - 1, &id) != 0 || id <= prev ||
            mp_get_str(&fl[1], VC_NAME_MAX, &cmd->name) != 0 ||
            mp_get_str(&fl[2], VC_ADDR_MAX, &cmd->addr) != 0 ||
            proto_pool_unpack(&fl[3], &cmd->pool) != 0 ||
            mp_get_uint(&fl[4], UPLINK_QINQ, &uplink) != 0 ||
            mp_get_uint(&fl[5], VLAN_MAX, &svlan) != 0 ||
            mp_get_bool(&fl[6], &cmd->managed) != 0 ||
            (nfields > 7 && restore_site_keys(f, fl, cmd, &old) != 0))
            BAD("snapshot site %u: malformed", i);
        cmd->uplink = (uint8_t)uplink;
        cmd->svlan = (uint16_t)svlan;
        f->next_site_id = (uint32_t)id;
        int rv = replay(f, cmd, errmsg, errlen);
        if (rv != 0)
            return rv;
        if (old.n) {
            char name[VC_NAME_MAX + 1];
            mp_str_copy(cmd->name, name, sizeof name);
            struct fsm_site *s = fsm_site_find(f, name);
            if (fsm_auth_site_by_key(f, (const uint8_t *)old.p))
                BAD("snapshot site %s: old key in use", name);
            memcpy(s->old_key, old.p, PROTO_KEY_BYTES);
            s->has_old_key = true;
        }
        prev = id;
    }
    return 0;
}

static int restore_hosts(struct fsm *f, const msgpack_object *o,
                         struct proto_cmd *cmd, char *errmsg, size_t errlen)
{
    const msgpack_object *items, *fl;
    uint32_t n, nf;
    bool service;
    if (mp_get_array(o, 0, FSM_HOSTS_MAX, &items, &n) != 0)
        BAD("snapshot hosts: not an array of at most %d", FSM_HOSTS_MAX);
    for (uint32_t i = 0; i < n; i++) {
        proto_cmd_init(cmd, PROTO_CMD_HOST_ADD);
        if (mp_get_array(&items[i], 4, 4, &fl, &nf) != 0 ||
            mp_get_str(&fl[0], VC_NAME_MAX, &cmd->name) != 0 ||
            mp_get_str(&fl[1], VC_NAME_MAX, &cmd->site) != 0 ||
            mp_get_str(&fl[2], VC_IFNAME_MAX, &cmd->iface) != 0 ||
            mp_get_bool(&fl[3], &service) != 0)
            BAD("snapshot host %u: malformed", i);
        int rv = replay(f, cmd, errmsg, errlen);
        if (rv != 0)
            return rv;
        if (service)
            f->hosts[map_find(&f->host_map, cmd->name.p, cmd->name.n)]
                .service = true;
    }
    return 0;
}

static int restore_slot(struct fsm *f, struct fsm_cluster *c,
                        const msgpack_object *o, char *errmsg, size_t errlen)
{
    const msgpack_object *fl;
    uint32_t nf;
    struct mp_str site, err;
    struct fsm_slot s;
    memset(&s, 0, sizeof s);
    if (mp_get_array(o, 6, 6, &fl, &nf) != 0 ||
        mp_get_str(&fl[0], VC_NAME_MAX, &site) != 0 ||
        mp_get_bool(&fl[1], &s.removing) != 0 ||
        mp_get_bool(&fl[2], &s.failed) != 0 ||
        mp_get_u64(&fl[3], &s.gen) != 0 || mp_get_u64(&fl[4], &s.applied) != 0 ||
        mp_get_str(&fl[5], VC_MSG_MAX, &err) != 0 || s.gen > c->gen ||
        s.applied > c->gen)
        BAD("snapshot cluster %s: malformed site entry", c->name);
    int64_t si = map_find(&f->site_map, site.p, site.n);
    if (si < 0)
        BAD("snapshot cluster %s: unknown site %.*s", c->name, (int)site.n,
            site.p);
    struct fsm_site *st = &f->sites[si];
    if (fsm_cluster_slot(c, (unsigned)si))
        BAD("snapshot cluster %s: site %s listed twice", c->name, st->name);
    if (!vlanset_has(&st->free, c->vlan))
        BAD("snapshot cluster %s: VLAN %u not free in the pool of site %s",
            c->name, c->vlan, st->name);
    if (err.n) {
        if (!(s.err = malloc(err.n + 1)))
            return VC_ENOMEM;
        mp_str_copy(err, s.err, err.n + 1);
    }
    s.site = (uint8_t)si;
    c->slots[c->nslots++] = s;
    vlanset_add(&st->used, c->vlan);
    vlanset_del(&st->free, c->vlan);
    st->nslots++;
    return 0;
}

static int restore_attach(struct fsm *f, struct fsm_cluster *c,
                          const msgpack_object *o, char *errmsg,
                          size_t errlen)
{
    const msgpack_object *fl;
    uint32_t nf;
    struct mp_str host, iface;
    if (mp_get_array(o, 2, 2, &fl, &nf) != 0 ||
        mp_get_str(&fl[0], VC_NAME_MAX, &host) != 0 ||
        mp_get_str(&fl[1], VC_IFNAME_MAX, &iface) != 0 ||
        !proto_ifname_ok(iface))
        BAD("snapshot cluster %s: malformed attachment", c->name);
    int64_t h = map_find(&f->host_map, host.p, host.n);
    if (h < 0)
        BAD("snapshot cluster %s: attachment to unknown host %.*s", c->name,
            (int)host.n, host.p);
    /* As cmd_attach: only at a site the cluster spans and keeps, and one
     * cluster per interface. */
    const struct fsm_slot *sl = fsm_cluster_slot(c, f->hosts[h].site);
    if (!sl || sl->removing)
        BAD("snapshot cluster %s: attachment of %.*s at a site it does not "
            "span", c->name, (int)host.n, host.p);
    for (uint32_t i = 0; i < f->nclusters; i++)
        for (uint32_t j = 0; f->clusters[i].live && j < f->clusters[i].natt; j++)
            if (mp_str_eq(host, f->clusters[i].att[j].host) &&
                mp_str_eq(iface, f->clusters[i].att[j].iface))
                BAD("snapshot cluster %s: %.*s/%.*s is also attached to %s",
                    c->name, (int)host.n, host.p, (int)iface.n, iface.p,
                    f->clusters[i].name);
    mp_str_copy(host, c->att[c->natt].host, sizeof c->att->host);
    mp_str_copy(iface, c->att[c->natt].iface, sizeof c->att->iface);
    c->natt++;
    return 0;
}

static int restore_cluster(struct fsm *f, const msgpack_object *o,
                           struct proto_cmd *cmd, char *errmsg, size_t errlen)
{
    const msgpack_object *fl, *slots, *atts;
    uint32_t nf, ns, na;
    uint64_t image, vlan, created, deadline, gen, flags = 0;
    bool releasing;
    int rv;
    /* Create through the normal path with a one-site placeholder, then
     * overwrite with the recorded fields. */
    if (mp_get_array(o, 10, 11, &fl, &nf) != 0 ||
        (nf == 11 && (mp_get_uint(&fl[10], SNAP_KEEP | SNAP_SETTLED,
                                  &flags) != 0 || flags == 0)) ||
        mp_get_str(&fl[0], VC_NAME_MAX, &cmd->name) != 0 ||
        mp_get_str(&fl[1], VC_NAME_MAX, &cmd->owner) != 0 ||
        mp_get_uint(&fl[2], IMAGE_USER, &image) != 0 ||
        mp_get_uint(&fl[3], VLAN_MAX, &vlan) != 0 || vlan < 1 ||
        mp_get_u64(&fl[4], &created) != 0 ||
        mp_get_u64(&fl[5], &deadline) != 0 || mp_get_u64(&fl[6], &gen) != 0 ||
        gen < 1 || mp_get_bool(&fl[7], &releasing) != 0 ||
        mp_get_array(&fl[8], 0, VC_SITES_MAX, &slots, &ns) != 0 ||
        mp_get_array(&fl[9], 0, FSM_ATTACH_MAX, &atts, &na) != 0 ||
        (ns == 0) || !proto_name_ok(cmd->name))
        BAD("snapshot cluster: malformed record");
    char name[VC_NAME_MAX + 1];
    mp_str_copy(cmd->name, name, sizeof name);
    if (fsm_cluster_find(f, name))
        BAD("snapshot cluster %s: listed twice", name);
    uint32_t ci;
    struct fsm_cluster *c;
    /* Reserve the entity directly: the create handler would allocate a
     * VLAN of its own choosing. */
    if (f->live_clusters >= FSM_CLUSTERS_MAX)
        BAD("snapshot: more than %d clusters", FSM_CLUSTERS_MAX);
    if (fsm_cluster_new(f, &ci) != 0)
        return VC_ENOMEM;
    c = &f->clusters[ci];
    memcpy(c->name, name, sizeof name);
    c->slots = calloc(ns, sizeof *c->slots);
    c->att = na ? calloc(na, sizeof *c->att) : NULL;
    if (!c->slots || (na && !c->att) ||
        map_put(&f->cluster_map, c->name, strlen(c->name), ci) != 0)
        return VC_ENOMEM;
    c->live = true;
    f->live_clusters++;
    mp_str_copy(cmd->owner, c->owner, sizeof c->owner);
    c->image = (uint8_t)image;
    c->vlan = (uint16_t)vlan;
    c->created_ms = created;
    c->deadline_ms = deadline;
    c->gen = gen;
    c->state = releasing ? FSM_RELEASING : FSM_PENDING;
    c->keep = (flags & SNAP_KEEP) != 0;
    c->settled = (flags & SNAP_SETTLED) != 0;
    uint32_t active = 0;
    for (uint32_t i = 0; i < ns; i++) {
        if ((rv = restore_slot(f, c, &slots[i], errmsg, errlen)) != 0)
            return rv;
        active += !c->slots[i].removing;
    }
    /* Released: every site is removing it; otherwise one site keeps it. */
    if (releasing ? active != 0 : active == 0)
        BAD("snapshot cluster %s: %s", name,
            releasing ? "released but still kept at a site"
                      : "every site is removing it, but it is not released");
    for (uint32_t i = 0; i < na; i++)
        if ((rv = restore_attach(f, c, &atts[i], errmsg, errlen)) != 0)
            return rv;
    if (!releasing) {
        c->state = FSM_READY;
        for (uint32_t i = 0; i < c->nslots; i++)
            if (c->slots[i].applied < c->slots[i].gen)
                c->state = FSM_PENDING;
        /* Records without flags predate them: a ready cluster settled. */
        if (c->state == FSM_READY && nf == 10)
            c->settled = true;
        if (c->state == FSM_READY && !c->settled)
            BAD("snapshot cluster %s: ready but not marked settled", name);
    }
    return 0;
}

static int restore_dedupe(struct fsm *f, const msgpack_object *o,
                          char *errmsg, size_t errlen)
{
    const msgpack_object *items, *fl;
    uint32_t n, nf;
    struct proto_result r;
    struct mp_str id, msg;
    uint64_t vlan;
    if (mp_get_array(o, 0, FSM_DEDUPE_MAX, &items, &n) != 0)
        BAD("snapshot request ids: not an array of at most %d",
            FSM_DEDUPE_MAX);
    for (uint32_t i = 0; i < n; i++) {
        memset(&r, 0, sizeof r);
        if (mp_get_array(&items[i], 5, 5, &fl, &nf) != 0 ||
            mp_get_str(&fl[0], VC_REQID_MAX, &id) != 0 || id.n == 0 ||
            (fl[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
             !(fl[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
               fl[1].via.u64 == 0)) ||
            fl[1].via.i64 < -100000 ||
            mp_get_uint(&fl[2], VLAN_MAX, &vlan) != 0 ||
            mp_get_u64(&fl[3], &r.gen) != 0 ||
            mp_get_str(&fl[4], VC_MSG_MAX, &msg) != 0)
            BAD("snapshot request id %u: malformed", i);
        for (uint32_t k = 0; k < id.n; k++) /* as proto_cmd_validate() */
            if ((unsigned char)id.p[k] <= ' ' || id.p[k] == 0x7f)
                BAD("snapshot request id %u: not printable", i);
        if (map_find(&f->dd_map, id.p, id.n) >= 0)
            BAD("snapshot request id %.*s: listed twice", (int)id.n, id.p);
        r.code = (int)fl[1].via.i64;
        r.vlan = (uint16_t)vlan;
        mp_str_copy(msg, r.msg, sizeof r.msg);
        int rv = fsm_dedupe_put(f, id, &r); /* same path as live */
        if (rv != 0)
            return rv;
    }
    return 0;
}

int fsm_restore(struct fsm *f, const void *data, size_t len, char *errmsg,
                size_t errlen)
{
    msgpack_zone zone;
    msgpack_object root;
    const msgpack_object *top;
    uint32_t ntop;
    uint64_t version, next_id;
    struct fsm fresh;
    struct proto_cmd *cmd = NULL;
    int rv;

    if (!msgpack_zone_init(&zone, 4096))
        return VC_ENOMEM;
    if ((rv = fsm_init(&fresh)) != 0) {
        msgpack_zone_destroy(&zone);
        return rv;
    }
    rv = VC_ENOMEM;
    if (!(cmd = malloc(sizeof *cmd)))
        goto out;
    if ((rv = mp_decode(data, len, &zone, &root)) != 0) {
        snprintf(errmsg, errlen, "snapshot is not valid bounded msgpack");
        goto out;
    }
    rv = VC_EMALFORMED;
    if (mp_get_array(&root, 6, 8, &top, &ntop) != 0 ||
        mp_get_u64(&top[0], &version) != 0) {
        snprintf(errmsg, errlen, "snapshot is not a 6- to 8-element array");
        goto out;
    }
    /* Versions 1 (no audit trail) and 2 (no keys, no auth part) are still
     * read: version v has 5 + v elements. */
    if (version < 1 || version > FSM_SNAPSHOT_VERSION || ntop != 5 + version) {
        snprintf(errmsg, errlen, "snapshot format version %llu (this build "
                 "reads %d)", (unsigned long long)version,
                 FSM_SNAPSHOT_VERSION);
        rv = VC_EVERSION;
        goto out;
    }
    if (mp_get_uint(&top[1], UINT32_MAX, &next_id) != 0 || next_id < 1) {
        snprintf(errmsg, errlen, "snapshot: bad next site id");
        goto out;
    }
    if ((rv = restore_sites(&fresh, &top[2], cmd, version < 3 ? 7 : 9,
                            errmsg, errlen)) != 0 ||
        (rv = restore_hosts(&fresh, &top[3], cmd, errmsg, errlen)) != 0)
        goto out;
    const msgpack_object *cl;
    uint32_t ncl;
    if (mp_get_array(&top[4], 0, FSM_CLUSTERS_MAX, &cl, &ncl) != 0) {
        snprintf(errmsg, errlen, "snapshot clusters: not an array");
        rv = VC_EMALFORMED;
        goto out;
    }
    for (uint32_t i = 0; i < ncl; i++)
        if ((rv = restore_cluster(&fresh, &cl[i], cmd, errmsg, errlen)) != 0)
            goto out;
    if ((rv = restore_dedupe(&fresh, &top[5], errmsg, errlen)) != 0 ||
        (version > 2 &&
         (rv = fsm_auth_restore(&fresh, &top[6], errmsg, errlen)) != 0))
        goto out;
    /* The replays above recorded their commands: the trail is the
     * snapshot's (empty before version 2). */
    fsm_audit_close(&fresh.audit);
    if (version > 1 &&
        (rv = fsm_audit_restore(&fresh.audit, &top[ntop - 1], errmsg,
                                errlen)) != 0)
        goto out;
    if (next_id < fresh.next_site_id) {
        snprintf(errmsg, errlen, "snapshot: next site id %llu is taken",
                 (unsigned long long)next_id);
        rv = VC_EMALFORMED;
        goto out;
    }
    fresh.next_site_id = (uint32_t)next_id;
    fresh.applied = f->applied;
    fsm_close(f);
    *f = fresh;
    /* The indexes point at their owner: re-aim them at f. */
    f->site_map.owner = f->host_map.owner = f;
    f->cluster_map.owner = f->dd_map.owner = f;
    fresh.dd = NULL;
    rv = 0;
out:
    free(cmd);
    if (fresh.dd)
        fsm_close(&fresh);
    msgpack_zone_destroy(&zone);
    return rv;
}
