#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char *kinds[] = {NULL,     "subscribe", "report",
                              "snapshot", "update",  "insync"};

const char *proto_watch_kind_name(int kind)
{
    return kind >= PROTO_WATCH_SUBSCRIBE && kind <= PROTO_WATCH_INSYNC
               ? kinds[kind]
               : "?";
}

void proto_watch_init(struct proto_watch *w, int kind)
{
    memset(w, 0, sizeof *w);
    w->kind = (uint8_t)kind;
    w->host = w->trunk = w->text = mp_cstr("");
}

/* --- validation ---------------------------------------------------------- */

#define BAD(...)                                   \
    do {                                           \
        snprintf(errmsg, errlen, __VA_ARGS__);     \
        return VC_EINVAL;                          \
    } while (0)

/* Printable text (UTF-8 bytes pass), no control characters. */
static bool text_ok(struct mp_str s, uint32_t max)
{
    if (s.n > max)
        return false;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < ' ' || c == 0x7f)
            return false;
    }
    return true;
}

/* A bitmap of VIDs seen, for the uniqueness checks. */
struct vids {
    uint64_t w[64];
};

static bool vid_take(struct vids *v, unsigned vid)
{
    uint64_t bit = 1ull << (vid % 64);
    if (v->w[vid / 64] & bit)
        return false;
    v->w[vid / 64] |= bit;
    return true;
}

static int check_entry(const struct proto_watch *w,
                       const struct proto_watch_entry *e, struct vids *seen,
                       char *errmsg, size_t errlen)
{
    if (!proto_name_ok(e->cluster))
        BAD("entry: \"%.*s\" is not a valid cluster name",
            (int)(e->cluster.n > 80 ? 80 : e->cluster.n), e->cluster.p);
    if (w->kind == PROTO_WATCH_REPORT)
        return 0; /* cluster and generation only */
    if (e->vid < VLAN_MIN || e->vid > VLAN_MAX)
        BAD("entry %.*s: VLAN %u is not in 1..4094", (int)e->cluster.n,
            e->cluster.p, e->vid);
    if (!vid_take(seen, e->vid))
        BAD("entry %.*s: VLAN %u listed twice", (int)e->cluster.n,
            e->cluster.p, e->vid);
    if (e->nifaces && !e->ifaces)
        BAD("entry %.*s: interfaces missing", (int)e->cluster.n,
            e->cluster.p);
    for (uint32_t i = 0; i < e->nifaces; i++)
        if (!proto_ifname_ok(e->ifaces[i]))
            BAD("entry %.*s: \"%.*s\" is not a valid interface name",
                (int)e->cluster.n, e->cluster.p,
                (int)(e->ifaces[i].n > 20 ? 20 : e->ifaces[i].n),
                e->ifaces[i].p);
    return 0;
}

static int check_entries(const struct proto_watch *w, struct vids *seen,
                         char *errmsg, size_t errlen)
{
    uint64_t ifaces = 0;
    if (w->nentries > PROTO_WATCH_ENTRIES_MAX)
        BAD("%u entries (at most %d)", w->nentries, PROTO_WATCH_ENTRIES_MAX);
    if (w->nentries && !w->entries)
        BAD("entries missing");
    for (uint32_t i = 0; i < w->nentries; i++) {
        int rv = check_entry(w, &w->entries[i], seen, errmsg, errlen);
        if (rv != 0)
            return rv;
        ifaces += w->entries[i].nifaces;
    }
    if (ifaces > PROTO_WATCH_IFACES_MAX)
        BAD("%llu interfaces (at most %d)", (unsigned long long)ifaces,
            PROTO_WATCH_IFACES_MAX);
    return 0;
}

static int check_state(const struct proto_watch *w, struct vids *seen,
                       char *errmsg, size_t errlen)
{
    if (w->trunk.n && !proto_ifname_ok(w->trunk))
        BAD("trunk: \"%.*s\" is not a valid interface name",
            (int)(w->trunk.n > 20 ? 20 : w->trunk.n), w->trunk.p);
    if (!w->trunk.n && w->nentries)
        BAD("trunk: required when VLANs are listed");
    return check_entries(w, seen, errmsg, errlen);
}

static int check_removed(const struct proto_watch *w, struct vids *seen,
                         char *errmsg, size_t errlen)
{
    if (w->nremoved > PROTO_WATCH_ENTRIES_MAX)
        BAD("%u removed VLANs (at most %d)", w->nremoved,
            PROTO_WATCH_ENTRIES_MAX);
    if (w->nremoved && !w->removed)
        BAD("removed VLANs missing");
    for (uint32_t i = 0; i < w->nremoved; i++) {
        if (w->removed[i] < VLAN_MIN || w->removed[i] > VLAN_MAX)
            BAD("removed: VLAN %u is not in 1..4094", w->removed[i]);
        if (!vid_take(seen, w->removed[i]))
            BAD("removed: VLAN %u listed twice or also updated",
                w->removed[i]);
    }
    return 0;
}

int proto_watch_validate(const struct proto_watch *w, char *errmsg,
                         size_t errlen)
{
    struct vids seen;
    int rv;
    memset(&seen, 0, sizeof seen);
    switch (w->kind) {
    case PROTO_WATCH_SUBSCRIBE:
    case PROTO_WATCH_REPORT:
        if (!proto_name_ok(w->host))
            BAD("host: \"%.*s\" is not a valid host name",
                (int)(w->host.n > 80 ? 80 : w->host.n), w->host.p);
        if (w->kind == PROTO_WATCH_SUBSCRIBE)
            return 0;
        if (!text_ok(w->text, VC_MSG_MAX))
            BAD("text: must be at most %d printable characters", VC_MSG_MAX);
        return check_entries(w, &seen, errmsg, errlen);
    case PROTO_WATCH_SNAPSHOT:
        return check_state(w, &seen, errmsg, errlen);
    case PROTO_WATCH_UPDATE:
        if ((rv = check_state(w, &seen, errmsg, errlen)) != 0)
            return rv;
        return check_removed(w, &seen, errmsg, errlen);
    case PROTO_WATCH_INSYNC:
        return 0;
    }
    BAD("unknown watch message kind %u", w->kind);
}

/* --- encoding ------------------------------------------------------------ */

static void put_entry(struct mp_buf *b, const struct proto_watch_entry *e,
                      bool report)
{
    if (report) {
        mp_put_array(b, 2);
        mp_put_str(b, e->cluster);
        mp_put_uint(b, e->gen);
        return;
    }
    mp_put_array(b, 4);
    mp_put_uint(b, e->vid);
    mp_put_str(b, e->cluster);
    mp_put_uint(b, e->gen);
    mp_put_array(b, e->nifaces);
    for (uint32_t i = 0; i < e->nifaces; i++)
        mp_put_str(b, e->ifaces[i]);
}

static void put_entries(struct mp_buf *b, const struct proto_watch *w)
{
    mp_put_array(b, w->nentries);
    for (uint32_t i = 0; i < w->nentries; i++)
        put_entry(b, &w->entries[i], w->kind == PROTO_WATCH_REPORT);
}

static void put_msg(struct mp_buf *b, const struct proto_watch *w)
{
    static const uint8_t fields[] = {0, 4, 8, 6, 8, 3};
    mp_put_array(b, w->kind <= PROTO_WATCH_INSYNC ? fields[w->kind] : 1);
    mp_put_uint(b, w->kind);
    switch (w->kind) {
    case PROTO_WATCH_SUBSCRIBE:
        mp_put_str(b, w->host);
        mp_put_uint(b, w->version);
        mp_put_uint(b, w->digest);
        break;
    case PROTO_WATCH_REPORT:
        mp_put_str(b, w->host);
        mp_put_uint(b, w->version);
        mp_put_bool(b, w->ok);
        mp_put_str(b, w->text);
        mp_put_uint(b, w->changes);
        mp_put_uint(b, w->missing);
        put_entries(b, w);
        break;
    case PROTO_WATCH_SNAPSHOT:
    case PROTO_WATCH_UPDATE:
        mp_put_uint(b, w->version);
        if (w->kind == PROTO_WATCH_UPDATE)
            mp_put_uint(b, w->base);
        mp_put_uint(b, w->digest);
        mp_put_str(b, w->trunk);
        mp_put_bool(b, w->complete);
        put_entries(b, w);
        if (w->kind == PROTO_WATCH_UPDATE) {
            mp_put_array(b, w->nremoved);
            for (uint32_t i = 0; i < w->nremoved; i++)
                mp_put_uint(b, w->removed[i]);
        }
        break;
    case PROTO_WATCH_INSYNC:
        mp_put_uint(b, w->version);
        mp_put_uint(b, w->digest);
        break;
    }
}

void proto_watch_pack(msgpack_packer *pk, const struct proto_watch *w)
{
    struct mp_buf *b = mp_packer_buf(pk), tmp;
    if (b) {
        put_msg(b, w);
        return;
    }
    mp_buf_init(&tmp);
    put_msg(&tmp, w);
    if (!tmp.oom)
        pk->callback(pk->data, tmp.data, tmp.len);
    mp_buf_close(&tmp);
}

/* --- decoding ------------------------------------------------------------ */

static int get_u32(const msgpack_object *o, uint32_t *v)
{
    uint64_t x;
    if (mp_get_uint(o, UINT32_MAX, &x) != 0)
        return VC_EMALFORMED;
    *v = (uint32_t)x;
    return 0;
}

static int get_ifaces(const msgpack_object *o, msgpack_zone *zone,
                      struct proto_watch_entry *e, uint64_t *budget)
{
    const msgpack_object *items;
    uint32_t n;
    if (mp_get_array(o, 0, PROTO_WATCH_IFACES_MAX, &items, &n) != 0 ||
        n > *budget)
        return VC_EMALFORMED;
    *budget -= n;
    if (n == 0)
        return 0;
    struct mp_str *v = msgpack_zone_malloc(zone, n * sizeof *v);
    if (!v)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (mp_get_str(&items[i], VC_IFNAME_MAX, &v[i]) != 0)
            return VC_EMALFORMED;
    e->ifaces = v;
    e->nifaces = n;
    return 0;
}

static int get_entry(const msgpack_object *o, msgpack_zone *zone,
                     bool report, struct proto_watch_entry *e,
                     uint64_t *budget)
{
    const msgpack_object *f;
    uint32_t n;
    uint64_t vid;
    memset(e, 0, sizeof *e);
    if (report)
        return mp_get_array(o, 2, 2, &f, &n) != 0 ||
                       mp_get_str(&f[0], VC_NAME_MAX, &e->cluster) != 0 ||
                       mp_get_u64(&f[1], &e->gen) != 0
                   ? VC_EMALFORMED
                   : 0;
    if (mp_get_array(o, 4, 4, &f, &n) != 0 ||
        mp_get_uint(&f[0], VLAN_MAX, &vid) != 0 ||
        mp_get_str(&f[1], VC_NAME_MAX, &e->cluster) != 0 ||
        mp_get_u64(&f[2], &e->gen) != 0)
        return VC_EMALFORMED;
    e->vid = (uint16_t)vid;
    return get_ifaces(&f[3], zone, e, budget);
}

static int get_entries(const msgpack_object *o, msgpack_zone *zone,
                       struct proto_watch *w)
{
    const msgpack_object *items;
    uint32_t n;
    uint64_t budget = PROTO_WATCH_IFACES_MAX;
    if (mp_get_array(o, 0, PROTO_WATCH_ENTRIES_MAX, &items, &n) != 0)
        return VC_EMALFORMED;
    if (n == 0)
        return 0;
    struct proto_watch_entry *v = msgpack_zone_malloc(zone, n * sizeof *v);
    if (!v)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int rv = get_entry(&items[i], zone, w->kind == PROTO_WATCH_REPORT,
                           &v[i], &budget);
        if (rv != 0)
            return rv;
    }
    w->entries = v;
    w->nentries = n;
    return 0;
}

static int get_removed(const msgpack_object *o, msgpack_zone *zone,
                       struct proto_watch *w)
{
    const msgpack_object *items;
    uint32_t n;
    uint64_t vid;
    if (mp_get_array(o, 0, PROTO_WATCH_ENTRIES_MAX, &items, &n) != 0)
        return VC_EMALFORMED;
    if (n == 0)
        return 0;
    uint16_t *v = msgpack_zone_malloc(zone, n * sizeof *v);
    if (!v)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (mp_get_uint(&items[i], VLAN_MAX, &vid) != 0)
            return VC_EMALFORMED;
        v[i] = (uint16_t)vid;
    }
    w->removed = v;
    w->nremoved = n;
    return 0;
}

/* The fields after the kind; f has exactly the kind's field count. */
static int get_fields(const msgpack_object *f, msgpack_zone *zone,
                      struct proto_watch *w)
{
    int rv;
    switch (w->kind) {
    case PROTO_WATCH_SUBSCRIBE:
        return mp_get_str(&f[1], VC_NAME_MAX, &w->host) ||
                       mp_get_u64(&f[2], &w->version) ||
                       mp_get_u64(&f[3], &w->digest)
                   ? VC_EMALFORMED
                   : 0;
    case PROTO_WATCH_REPORT:
        if (mp_get_str(&f[1], VC_NAME_MAX, &w->host) ||
            mp_get_u64(&f[2], &w->version) || mp_get_bool(&f[3], &w->ok) ||
            mp_get_str(&f[4], VC_MSG_MAX, &w->text) ||
            get_u32(&f[5], &w->changes) || get_u32(&f[6], &w->missing))
            return VC_EMALFORMED;
        return get_entries(&f[7], zone, w);
    case PROTO_WATCH_SNAPSHOT:
    case PROTO_WATCH_UPDATE: {
        unsigned i = 2;
        if (mp_get_u64(&f[1], &w->version))
            return VC_EMALFORMED;
        if (w->kind == PROTO_WATCH_UPDATE && mp_get_u64(&f[i++], &w->base))
            return VC_EMALFORMED;
        if (mp_get_u64(&f[i], &w->digest) ||
            mp_get_str(&f[i + 1], VC_IFNAME_MAX, &w->trunk) ||
            mp_get_bool(&f[i + 2], &w->complete))
            return VC_EMALFORMED;
        if ((rv = get_entries(&f[i + 3], zone, w)) != 0)
            return rv;
        return w->kind == PROTO_WATCH_UPDATE ? get_removed(&f[i + 4], zone, w)
                                             : 0;
    }
    default: /* INSYNC */
        return mp_get_u64(&f[1], &w->version) || mp_get_u64(&f[2], &w->digest)
                   ? VC_EMALFORMED
                   : 0;
    }
}

int proto_watch_unpack(const msgpack_object *o, msgpack_zone *zone,
                       struct proto_watch *w, char *errmsg, size_t errlen)
{
    static const uint8_t fields[] = {0, 4, 8, 6, 8, 3};
    const msgpack_object *f;
    uint32_t n;
    uint64_t kind;
    proto_watch_init(w, 0);
    if (mp_get_array(o, 1, 8, &f, &n) != 0 ||
        mp_get_uint(&f[0], PROTO_WATCH_INSYNC, &kind) != 0 || kind < 1 ||
        n != fields[kind]) {
        snprintf(errmsg, errlen, "malformed watch message header");
        return VC_EMALFORMED;
    }
    w->kind = (uint8_t)kind;
    int rv = get_fields(f, zone, w);
    if (rv != 0) {
        snprintf(errmsg, errlen, "%s watch %s message",
                 rv == VC_ENOMEM ? "out of memory decoding a" : "malformed",
                 proto_watch_kind_name(w->kind));
        return rv;
    }
    return proto_watch_validate(w, errmsg, errlen);
}

int proto_watch_decode(const void *data, size_t len, msgpack_zone *zone,
                       struct proto_watch *w, char *errmsg, size_t errlen)
{
    msgpack_object root;
    proto_watch_init(w, 0);
    if (len > PROTO_WATCH_BYTES_MAX || mp_decode(data, len, zone, &root)) {
        snprintf(errmsg, errlen, "watch message is not valid bounded msgpack");
        return VC_EMALFORMED;
    }
    return proto_watch_unpack(&root, zone, w, errmsg, errlen);
}

/* --- digest --------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv_str(uint64_t h, struct mp_str s)
{
    uint8_t len = (uint8_t)s.n; /* names are short: the length separates */
    h = fnv(h, &len, 1);
    return fnv(h, s.p, s.n);
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fnv(h, b, sizeof b);
}

uint64_t proto_watch_digest(struct mp_str trunk, bool complete,
                            const struct proto_watch_entry *e, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv_str(h, trunk);
    h = fnv_u64(h, complete);
    for (uint32_t i = 0; i < n; i++) {
        h = fnv_u64(h, e[i].vid);
        h = fnv_str(h, e[i].cluster);
        h = fnv_u64(h, e[i].gen);
        h = fnv_u64(h, e[i].nifaces);
        for (uint32_t k = 0; k < e[i].nifaces; k++)
            h = fnv_str(h, e[i].ifaces[k]);
    }
    return h ? h : 1;
}

void proto_watch_vlans_free(struct proto_watch_vlan *v, uint32_t n)
{
    for (uint32_t i = 0; v && i < n; i++)
        free(v[i].ifaces);
    free(v);
}

int proto_watch_vlans_view(const struct proto_watch_vlan *const *src,
                           uint32_t n, uint32_t max_ifaces,
                           struct proto_watch_entry **e, struct mp_str **ifs)
{
    uint32_t nif = 0;
    *e = NULL;
    *ifs = NULL;
    for (uint32_t i = 0; i < n; i++)
        nif += src[i]->nifaces;
    if (nif > max_ifaces)
        return VC_ELIMIT;
    *e = calloc(n ? n : 1, sizeof **e);
    *ifs = calloc(nif ? nif : 1, sizeof **ifs);
    if (!*e || !*ifs)
        return VC_ENOMEM;
    struct mp_str *p = *ifs;
    for (uint32_t i = 0; i < n; i++) {
        (*e)[i].vid = src[i]->vid;
        (*e)[i].gen = src[i]->gen;
        (*e)[i].cluster = mp_cstr(src[i]->cluster);
        (*e)[i].ifaces = src[i]->nifaces ? p : NULL;
        (*e)[i].nifaces = src[i]->nifaces;
        for (uint32_t k = 0; k < src[i]->nifaces; k++)
            *p++ = mp_cstr(src[i]->ifaces[k]);
    }
    return 0;
}
