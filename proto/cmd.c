#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

/* Body field letters:
 *   n name   s site   o owner   h host   i iface   a addr   t text
 *   p pool   u uplink v svlan   m managed   k image   l lease_ms
 *   g gen    f force  b ok      S sites
 *   K key (bin 32 or empty)   H token hash (bin 32 or empty)   r role
 *   x keep on failure
 */
#define TYPE(name, fields) {name, fields, sizeof fields - 1, sizeof fields - 1}
/* The last fields optional (see proto_cmd_min_fields()). */
#define TYPE_OPT(name, fields, min) {name, fields, sizeof fields - 1, min}

static const struct {
    const char *name;
    const char *fields;
    uint8_t nfields; /* strlen(fields), for the per-command paths */
    uint8_t min;     /* fields every body has; the rest may be left out */
} types[PROTO_CMD_TYPE_MAX + 1] = {
    [PROTO_CMD_SITE_ADD] = TYPE_OPT("site-add", "npuvmaKH", 6),
    [PROTO_CMD_SITE_UPDATE] = TYPE_OPT("site-update", "npuvmaK", 6),
    [PROTO_CMD_SITE_REMOVE] = TYPE("site-remove", "nf"),
    [PROTO_CMD_POOL_SET] = TYPE("pool-set", "np"),
    [PROTO_CMD_HOST_ADD] = TYPE("host-add", "nsi"),
    [PROTO_CMD_HOST_REMOVE] = TYPE("host-remove", "n"),
    [PROTO_CMD_SERVICE_ADD] = TYPE("service-add", "n"),
    [PROTO_CMD_SERVICE_REMOVE] = TYPE("service-remove", "n"),
    [PROTO_CMD_CLUSTER_CREATE] = TYPE_OPT("cluster-create", "noklSx", 5),
    [PROTO_CMD_CLUSTER_EXTEND] = TYPE("cluster-extend", "ns"),
    [PROTO_CMD_CLUSTER_SHRINK] = TYPE("cluster-shrink", "ns"),
    [PROTO_CMD_CLUSTER_RENEW] = TYPE("cluster-renew", "nl"),
    [PROTO_CMD_CLUSTER_RELEASE] = TYPE("cluster-release", "nf"),
    [PROTO_CMD_LEASE_SWEEP] = TYPE("lease-sweep", ""),
    [PROTO_CMD_ATTACH] = TYPE("attach", "nhi"),
    [PROTO_CMD_DETACH] = TYPE("detach", "nhi"),
    [PROTO_CMD_APPLY_REPORT] = TYPE("apply-report", "nsgbt"),
    [PROTO_CMD_CLUSTER_ROLLBACK] = TYPE("cluster-rollback", "nl"),
    [PROTO_CMD_SITE_KEY] = TYPE("site-key", "nKb"),
    [PROTO_CMD_ROLE_ADD] = TYPE("role-add", "nKr"),
    [PROTO_CMD_ROLE_REMOVE] = TYPE("role-remove", "n"),
    [PROTO_CMD_INVITE_ADD] = TYPE("invite-add", "nHl"),
    [PROTO_CMD_INVITE_REMOVE] = TYPE("invite-remove", "n"),
};

/* Longest lease: ten years, so deadlines never overflow. */
#define LEASE_MAX_MS (10ull * 366 * 24 * 3600 * 1000)

const char *proto_cmd_name(int type)
{
    return type >= 1 && type <= PROTO_CMD_TYPE_MAX ? types[type].name : NULL;
}

const char *proto_cmd_fields(int type)
{
    return type >= 1 && type <= PROTO_CMD_TYPE_MAX ? types[type].fields
                                                   : NULL;
}

unsigned proto_cmd_min_fields(int type)
{
    return type >= 1 && type <= PROTO_CMD_TYPE_MAX ? types[type].min : 0;
}

void proto_cmd_init(struct proto_cmd *cmd, int type)
{
    /* Every decoded command passes here. gcc expands a memset of this
     * known size (~700 bytes) into rep stos, which measured twice as slow
     * as libc's vector memset: volatile hides the size. */
    volatile size_t size = offsetof(struct proto_cmd, sites);
    memset(cmd, 0, size);
    cmd->type = (uint8_t)type;
    /* The lengths are 0 already. Storing only the pointers also spares the
     * copies of a 16-byte struct that stalled on store forwarding. */
    cmd->req_id.p = cmd->origin.p = cmd->name.p = cmd->site.p = "";
    cmd->owner.p = cmd->host.p = cmd->iface.p = cmd->addr.p = "";
    cmd->text.p = cmd->key.p = cmd->hash.p = "";
}

static const char *uplinks[] = {"xponder", "vpls", "qinq"};
static const char *images[] = {"certified", "user"};
static const char *roles[] = {"user", "scheduler", "admin"};

const char *proto_role_name(int r)
{
    return r >= 0 && r <= ROLE_ADMIN ? roles[r] : "?";
}

int proto_role_parse(const char *s)
{
    for (int i = 0; i <= ROLE_ADMIN; i++)
        if (strcmp(s, roles[i]) == 0)
            return i;
    return VC_EINVAL;
}

const char *proto_uplink_name(int u)
{
    return u >= 0 && u <= UPLINK_QINQ ? uplinks[u] : "?";
}

int proto_uplink_parse(const char *s)
{
    for (int i = 0; i <= UPLINK_QINQ; i++)
        if (strcmp(s, uplinks[i]) == 0)
            return i;
    return VC_EINVAL;
}

const char *proto_image_name(int k)
{
    return k >= 0 && k <= IMAGE_USER ? images[k] : "?";
}

int proto_image_parse(const char *s)
{
    for (int i = 0; i <= IMAGE_USER; i++)
        if (strcmp(s, images[i]) == 0)
            return i;
    return VC_EINVAL;
}

/* Names and texts are checked on every encode and decode, eight bytes
 * per word (SWAR). A string is read as whole words plus its last eight
 * bytes (overlapping), or as short_word() if shorter: every byte is
 * checked at least once and nothing outside the string is read. */
#define BYTES(x) (0x0101010101010101ull * (x))

static uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* p[0..n), 1 <= n <= 8, as one word: two overlapping 4-byte loads, or the
 * first, middle and last byte repeated. Every byte is in it. */
static uint64_t short_word(const char *p, size_t n)
{
    if (n == 8)
        return load64(p);
    if (n >= 4)
        return load32(p) | load32(p + n - 4) << 32;
    uint64_t b = (uint8_t)p[0] | (uint64_t)(uint8_t)p[n / 2] << 8 |
                 (uint64_t)(uint8_t)p[n - 1] << 16;
    return b | b << 24 | (b & 0xffff) << 48;
}

/* Per byte of w (all below 0x80): high bit set iff lo <= byte <= hi. */
#define IN(w, lo, hi) \
    (((w) + BYTES(0x80 - (lo))) & ~((w) + BYTES(0x7f - (hi))) & BYTES(0x80))

/* All eight bytes of w in [A-Za-z0-9._-]. */
static bool name_word_ok(uint64_t w)
{
    if (w & BYTES(0x80))
        return false;
    uint64_t ok = IN(w | BYTES(0x20), 'a', 'z') | IN(w, '0', '9') |
                  IN(w, '-', '.') | IN(w, '_', '_');
    return ok == BYTES(0x80);
}

bool proto_name_ok(struct mp_str s)
{
    if (s.n < 1 || s.n > VC_NAME_MAX || s.p[0] == '.' || s.p[0] == '_' ||
        s.p[0] == '-')
        return false;
    if (s.n <= 8)
        return name_word_ok(short_word(s.p, s.n));
    /* Whole words, then the last eight bytes (overlapping). */
    bool ok = name_word_ok(load64(s.p + s.n - 8));
    for (size_t i = 0; i + 8 < s.n; i += 8)
        ok &= name_word_ok(load64(s.p + i));
    return ok;
}

bool proto_ifname_ok(struct mp_str s)
{
    if (s.n < 1 || s.n > VC_IFNAME_MAX || mp_str_eq(s, ".") ||
        mp_str_eq(s, ".."))
        return false;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
            return false;
    }
    return true;
}

/* a == b for valid names (1..VC_NAME_MAX bytes), a word at a time: the
 * same words of equal-length strings cover the same bytes. */
static bool same_name(struct mp_str a, struct mp_str b)
{
    if (a.n != b.n)
        return false;
    if (a.n <= 8)
        return short_word(a.p, a.n) == short_word(b.p, b.n);
    bool same = load64(a.p + a.n - 8) == load64(b.p + a.n - 8);
    for (size_t i = 0; same && i + 8 < a.n; i += 8)
        same = load64(a.p + i) == load64(b.p + i);
    return same;
}

/* True if some byte of w is below lo (lo <= 0x80), or is 0x7f. */
static bool word_bad(uint64_t w, uint64_t lo)
{
    uint64_t below = (w - BYTES(lo)) & ~w & BYTES(0x80);
    uint64_t del = w ^ BYTES(0x7f);
    return below | ((del - BYTES(1)) & ~del & BYTES(0x80));
}

/* Printable text without control characters; UTF-8 bytes pass. */
static bool text_ok(struct mp_str s, uint32_t max, bool spaces)
{
    uint64_t lo = spaces ? ' ' : ' ' + 1;
    if (s.n > max)
        return false;
    if (s.n <= 8)
        return s.n == 0 || !word_bad(short_word(s.p, s.n), lo);
    bool bad = word_bad(load64(s.p + s.n - 8), lo);
    for (size_t i = 0; i + 8 < s.n; i += 8)
        bad |= word_bad(load64(s.p + i), lo);
    return !bad;
}

#define BAD(...)                                   \
    do {                                           \
        snprintf(errmsg, errlen, __VA_ARGS__);     \
        return VC_EINVAL;                          \
    } while (0)

static int check_sites(const struct proto_cmd *c, char *errmsg,
                       size_t errlen)
{
    if (c->nsites < 1 || c->nsites > VC_SITES_MAX)
        BAD("sites: need 1 to %d sites, got %u", VC_SITES_MAX, c->nsites);
    for (uint32_t i = 0; i < c->nsites; i++) {
        if (!proto_name_ok(c->sites[i]))
            BAD("sites: bad site name \"%.*s\"", (int)c->sites[i].n,
                c->sites[i].p);
        for (uint32_t j = 0; j < i; j++)
            if (same_name(c->sites[j], c->sites[i]))
                BAD("sites: \"%.*s\" listed twice", (int)c->sites[i].n,
                    c->sites[i].p);
    }
    return 0;
}

static int check_field(const struct proto_cmd *c, char f, char *errmsg,
                       size_t errlen)
{
    switch (f) {
    case 'n':
        if (!proto_name_ok(c->name))
            BAD("name: \"%.*s\" is not a valid name (1-63 of A-Z a-z 0-9 "
                ". _ -, starting with a letter or digit)",
                (int)(c->name.n > 80 ? 80 : c->name.n), c->name.p);
        return 0;
    case 's':
        if (!proto_name_ok(c->site))
            BAD("site: \"%.*s\" is not a valid site name",
                (int)(c->site.n > 80 ? 80 : c->site.n), c->site.p);
        return 0;
    case 'h':
        if (!proto_name_ok(c->host))
            BAD("host: \"%.*s\" is not a valid host name",
                (int)(c->host.n > 80 ? 80 : c->host.n), c->host.p);
        return 0;
    case 'o':
        if (c->owner.n < 1 || !text_ok(c->owner, VC_NAME_MAX, false))
            BAD("owner: must be 1-63 printable characters without spaces");
        return 0;
    case 'i':
        if (!proto_ifname_ok(c->iface))
            BAD("iface: \"%.*s\" is not a valid interface name (1-15 "
                "characters, no '/', ':' or spaces)",
                (int)(c->iface.n > 80 ? 80 : c->iface.n), c->iface.p);
        return 0;
    case 'a':
        if (!text_ok(c->addr, VC_ADDR_MAX, false))
            BAD("addr: must be at most %d printable characters",
                VC_ADDR_MAX);
        return 0;
    case 't':
        if (!text_ok(c->text, VC_MSG_MAX, true))
            BAD("text: must be at most %d printable characters",
                VC_MSG_MAX);
        return 0;
    case 'u':
        if (c->uplink > UPLINK_QINQ)
            BAD("uplink: %u is not xponder, vpls or qinq", c->uplink);
        if (c->uplink == UPLINK_QINQ && (c->svlan < 1 || c->svlan > 4094))
            BAD("uplink: qinq needs an outer S-VLAN in 1..4094");
        return 0;
    case 'v':
        if (c->uplink != UPLINK_QINQ && c->svlan != 0)
            BAD("svlan: only a qinq uplink has an outer S-VLAN");
        return 0;
    case 'p':
        if (vlanset_has(&c->pool, 0) || vlanset_has(&c->pool, 4095))
            BAD("pool: VLAN IDs must be in 1..4094");
        return 0;
    case 'k':
        if (c->image > IMAGE_USER)
            BAD("image: %u is not certified or user", c->image);
        return 0;
    case 'l':
        if (c->lease_ms < 1000 || c->lease_ms > LEASE_MAX_MS)
            BAD("lease: must be between 1 s and 10 years");
        return 0;
    case 'S':
        return check_sites(c, errmsg, errlen);
    case 'K':
        if (c->key.n != 0 && c->key.n != PROTO_KEY_BYTES)
            BAD("key: %u bytes, want %d", c->key.n, PROTO_KEY_BYTES);
        if (c->key.n == 0 && c->type != PROTO_CMD_SITE_ADD &&
            c->type != PROTO_CMD_SITE_UPDATE)
            BAD("key: required");
        return 0;
    case 'H':
        if (c->hash.n != 0 && c->hash.n != PROTO_KEY_BYTES)
            BAD("hash: %u bytes, want %d", c->hash.n, PROTO_KEY_BYTES);
        if (c->hash.n == 0 && c->type == PROTO_CMD_INVITE_ADD)
            BAD("hash: required");
        return 0;
    case 'r':
        if (c->role > ROLE_ADMIN)
            BAD("role: %u is not user, scheduler or admin", c->role);
        return 0;
    default: /* g f b m x: any value is fine */
        return 0;
    }
}

int proto_cmd_validate(const struct proto_cmd *c, char *errmsg,
                       size_t errlen)
{
    const char *fields = proto_cmd_fields(c->type);
    if (!fields)
        BAD("unknown command type %u", c->type);
    if (!text_ok(c->req_id, VC_REQID_MAX, false))
        BAD("request id: at most %d printable characters without spaces",
            VC_REQID_MAX);
    if (!text_ok(c->origin, VC_NAME_MAX, false))
        BAD("origin: at most %d printable characters", VC_NAME_MAX);
    for (const char *f = fields; *f; f++) {
        int rv = check_field(c, *f, errmsg, errlen);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* --- encoding ---------------------------------------------------------- */

/* Commands are written with the direct writers of mp.h (the packer's
 * bytes without a callback per piece): proto_cmd_pack() runs for every
 * proposed command and proto_batch_encode() for every log entry. */

static int put_range(unsigned lo, unsigned hi, void *arg)
{
    struct mp_buf *b = arg;
    mp_put_array(b, 2);
    mp_put_uint(b, lo);
    mp_put_uint(b, hi);
    return 0;
}

static int count_range(unsigned lo, unsigned hi, void *arg)
{
    (void)lo;
    (void)hi;
    (*(uint32_t *)arg)++;
    return 0;
}

void proto_pool_put(struct mp_buf *b, const struct vlanset *s)
{
    uint32_t n = 0;
    vlanset_ranges(s, count_range, &n);
    mp_put_array(b, n);
    vlanset_ranges(s, put_range, b);
}

/* A 32-byte key or hash as msgpack bin (empty bin if unset). */
static void put_bin(struct mp_buf *b, struct mp_str s)
{
    uint8_t *p = mp_buf_room(b, 2 + (size_t)s.n);
    if (!p)
        return;
    p[0] = 0xc4;
    p[1] = (uint8_t)s.n;
    memcpy(p + 2, s.p, s.n);
    b->len += 2 + s.n;
}

static void put_field(struct mp_buf *b, const struct proto_cmd *c, char f)
{
    switch (f) {
    case 'n': mp_put_str(b, c->name); break;
    case 's': mp_put_str(b, c->site); break;
    case 'o': mp_put_str(b, c->owner); break;
    case 'h': mp_put_str(b, c->host); break;
    case 'i': mp_put_str(b, c->iface); break;
    case 'a': mp_put_str(b, c->addr); break;
    case 't': mp_put_str(b, c->text); break;
    case 'p': proto_pool_put(b, &c->pool); break;
    case 'u': mp_put_uint(b, c->uplink); break;
    case 'v': mp_put_uint(b, c->svlan); break;
    case 'k': mp_put_uint(b, c->image); break;
    case 'l': mp_put_uint(b, c->lease_ms); break;
    case 'g': mp_put_uint(b, c->gen); break;
    case 'm': mp_put_bool(b, c->managed); break;
    case 'f': mp_put_bool(b, c->force); break;
    case 'b': mp_put_bool(b, c->ok); break;
    case 'x': mp_put_bool(b, c->keep); break;
    case 'K': put_bin(b, c->key); break;
    case 'H': put_bin(b, c->hash); break;
    case 'r': mp_put_uint(b, c->role); break;
    case 'S':
        mp_put_array(b, c->nsites);
        for (uint32_t i = 0; i < c->nsites; i++)
            mp_put_str(b, c->sites[i]);
        break;
    }
}

/* Fields written: all, or only the mandatory ones while every optional
 * field is unset (so older readers read what they always read). */
static unsigned fields_to_put(const struct proto_cmd *c)
{
    if (!proto_cmd_fields(c->type))
        return 0;
    unsigned n = types[c->type].nfields;
    if (types[c->type].min == n)
        return n;
    return c->key.n || c->hash.n || c->keep ? n : types[c->type].min;
}

static void put_cmd(struct mp_buf *b, const struct proto_cmd *c)
{
    const char *fields = proto_cmd_fields(c->type);
    unsigned n = fields_to_put(c);
    mp_put_array(b, 5);
    mp_put_uint(b, c->type);
    mp_put_str(b, c->req_id);
    mp_put_uint(b, c->time_ms);
    mp_put_str(b, c->origin);
    mp_put_array(b, n);
    for (unsigned i = 0; i < n; i++)
        put_field(b, c, fields[i]);
}

void proto_cmd_pack(msgpack_packer *pk, const struct proto_cmd *c)
{
    struct mp_buf *b = mp_packer_buf(pk), tmp;
    if (b) {
        put_cmd(b, c);
        return;
    }
    /* A packer writing elsewhere gets the bytes in one piece. */
    mp_buf_init(&tmp);
    put_cmd(&tmp, c);
    if (!tmp.oom)
        pk->callback(pk->data, tmp.data, tmp.len);
    mp_buf_close(&tmp);
}

int proto_batch_encode(const struct proto_cmd *cmds, size_t n,
                       struct mp_buf *out, char *errmsg, size_t errlen)
{
    if (n < 1 || n > VC_BATCH_MAX) {
        snprintf(errmsg, errlen, "batch of %zu commands (1..%d allowed)", n,
                 VC_BATCH_MAX);
        return VC_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = proto_cmd_validate(&cmds[i], errmsg, errlen);
        if (rv != 0)
            return rv;
    }
    size_t start = out->len;
    mp_put_array(out, 2);
    mp_put_uint(out, PROTO_LOG_VERSION);
    mp_put_array(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_cmd(out, &cmds[i]);
    if (out->oom) {
        snprintf(errmsg, errlen, "out of memory encoding a batch");
        return VC_ENOMEM;
    }
    if (out->len - start > PROTO_ENTRY_MAX) {
        out->len = start;
        snprintf(errmsg, errlen, "batch exceeds %u bytes", PROTO_ENTRY_MAX);
        return VC_ETOOBIG;
    }
    proto_entry_pad(out);
    if (out->oom) {
        snprintf(errmsg, errlen, "out of memory encoding a batch");
        return VC_ENOMEM;
    }
    return 0;
}

/* --- decoding ---------------------------------------------------------- */

int proto_pool_unpack(const msgpack_object *o, struct vlanset *s)
{
    const msgpack_object *items, *pair;
    uint32_t n, two;
    uint64_t lo, hi, prev = 0;
    vlanset_clear(s);
    if (mp_get_array(o, 0, 2048, &items, &n) != 0)
        return VC_EMALFORMED;
    for (uint32_t i = 0; i < n; i++) {
        if (mp_get_array(&items[i], 2, 2, &pair, &two) != 0 ||
            mp_get_uint(&pair[0], VLAN_MAX, &lo) != 0 ||
            mp_get_uint(&pair[1], VLAN_MAX, &hi) != 0 || lo < VLAN_MIN ||
            hi < lo || lo <= prev)
            return VC_EMALFORMED;
        vlanset_add_range(s, (unsigned)lo, (unsigned)hi);
        prev = hi;
    }
    return 0;
}

static int unpack_sites(const msgpack_object *o, struct proto_cmd *c)
{
    const msgpack_object *items;
    if (mp_get_array(o, 0, VC_SITES_MAX, &items, &c->nsites) != 0)
        return VC_EMALFORMED;
    for (uint32_t i = 0; i < c->nsites; i++)
        if (mp_get_str(&items[i], VC_NAME_MAX, &c->sites[i]) != 0)
            return VC_EMALFORMED;
    return 0;
}

static int get_bin(const msgpack_object *o, struct mp_str *s)
{
    if (o->type != MSGPACK_OBJECT_BIN ||
        (o->via.bin.size != 0 && o->via.bin.size != PROTO_KEY_BYTES))
        return VC_EMALFORMED;
    s->p = o->via.bin.size ? o->via.bin.ptr : "";
    s->n = o->via.bin.size;
    return 0;
}

static int unpack_field(const msgpack_object *o, struct proto_cmd *c, char f)
{
    uint64_t v;
    switch (f) {
    case 'n': return mp_get_str(o, VC_NAME_MAX, &c->name);
    case 's': return mp_get_str(o, VC_NAME_MAX, &c->site);
    case 'o': return mp_get_str(o, VC_NAME_MAX, &c->owner);
    case 'h': return mp_get_str(o, VC_NAME_MAX, &c->host);
    case 'i': return mp_get_str(o, VC_IFNAME_MAX, &c->iface);
    case 'a': return mp_get_str(o, VC_ADDR_MAX, &c->addr);
    case 't': return mp_get_str(o, VC_MSG_MAX, &c->text);
    case 'p': return proto_pool_unpack(o, &c->pool);
    case 'u':
        if (mp_get_uint(o, UPLINK_QINQ, &v) != 0)
            return VC_EMALFORMED;
        c->uplink = (uint8_t)v;
        return 0;
    case 'v':
        if (mp_get_uint(o, VLAN_MAX, &v) != 0)
            return VC_EMALFORMED;
        c->svlan = (uint16_t)v;
        return 0;
    case 'k':
        if (mp_get_uint(o, IMAGE_USER, &v) != 0)
            return VC_EMALFORMED;
        c->image = (uint8_t)v;
        return 0;
    case 'l': return mp_get_u64(o, &c->lease_ms);
    case 'g': return mp_get_u64(o, &c->gen);
    case 'm': return mp_get_bool(o, &c->managed);
    case 'f': return mp_get_bool(o, &c->force);
    case 'b': return mp_get_bool(o, &c->ok);
    case 'x': return mp_get_bool(o, &c->keep);
    case 'S': return unpack_sites(o, c);
    case 'K': return get_bin(o, &c->key);
    case 'H': return get_bin(o, &c->hash);
    case 'r':
        if (mp_get_uint(o, ROLE_ADMIN, &v) != 0)
            return VC_EMALFORMED;
        c->role = (uint8_t)v;
        return 0;
    }
    return VC_EMALFORMED;
}

int proto_cmd_unpack(const msgpack_object *o, struct proto_cmd *c,
                     char *errmsg, size_t errlen)
{
    const msgpack_object *f, *body;
    uint32_t n, nbody;
    uint64_t type;
    const char *fields;
    if (mp_get_array(o, 5, 5, &f, &n) != 0 ||
        mp_get_uint(&f[0], 255, &type) != 0 ||
        !(fields = proto_cmd_fields((int)type))) {
        snprintf(errmsg, errlen, "malformed command header");
        return VC_EMALFORMED;
    }
    proto_cmd_init(c, (int)type);
    if (mp_get_str(&f[1], VC_REQID_MAX, &c->req_id) != 0 ||
        mp_get_u64(&f[2], &c->time_ms) != 0 ||
        mp_get_str(&f[3], VC_NAME_MAX, &c->origin) != 0 ||
        mp_get_array(&f[4], types[type].min, types[type].nfields, &body,
                     &nbody) != 0) {
        snprintf(errmsg, errlen, "malformed %s command", proto_cmd_name(c->type));
        return VC_EMALFORMED;
    }
    for (uint32_t i = 0; i < nbody; i++) {
        if (unpack_field(&body[i], c, fields[i]) != 0) {
            snprintf(errmsg, errlen, "malformed field %u of %s command", i,
                     proto_cmd_name(c->type));
            return VC_EMALFORMED;
        }
    }
    return proto_cmd_validate(c, errmsg, errlen);
}

void proto_entry_pad(struct mp_buf *out)
{
    static const char zeros[8];
    msgpack_packer pk;
    mp_packer_init(&pk, out);
    if (out->len % 8)
        pk.callback(pk.data, zeros, 8 - out->len % 8);
}

/* True if data[used..len) is what proto_entry_pad() appends. */
static bool is_padding(const void *data, size_t used, size_t len)
{
    const uint8_t *p = data;
    if (len - used >= 8)
        return false;
    for (size_t i = used; i < len; i++)
        if (p[i] != 0)
            return false;
    return true;
}

size_t proto_entry_unpad(const void *data, size_t len)
{
    size_t used;
    if (mp_scan(data, len, &used) != 0 || !is_padding(data, used, len))
        return len;
    return used;
}

/* mp_decode() of a possibly padded entry, scanning it once (unpadding
 * first and then decoding would scan it twice). */
static int decode_entry(const void *data, size_t len, msgpack_zone *zone,
                        msgpack_object *root)
{
    size_t used;
    int rv = mp_scan(data, len, &used);
    if (rv != 0)
        return rv;
    if (!is_padding(data, used, len))
        return VC_EMALFORMED;
    return mp_unpack_checked(data, used, zone, root);
}

int proto_batch_decode(const void *data, size_t len, msgpack_zone *zone,
                       struct proto_cmd *cmds, size_t max, size_t *n,
                       char *errmsg, size_t errlen)
{
    msgpack_object root;
    const msgpack_object *top, *items;
    uint32_t ntop, nitems;
    uint64_t version;
    int rv;
    *n = 0;
    if (len > PROTO_ENTRY_MAX) {
        snprintf(errmsg, errlen, "entry of %zu bytes exceeds %u", len,
                 PROTO_ENTRY_MAX);
        return VC_ETOOBIG;
    }
    rv = decode_entry(data, len, zone, &root);
    if (rv != 0) {
        snprintf(errmsg, errlen, "entry is not valid bounded msgpack");
        return rv;
    }
    if (mp_get_array(&root, 2, 2, &top, &ntop) != 0 ||
        mp_get_u64(&top[0], &version) != 0) {
        snprintf(errmsg, errlen, "entry is not [version, commands]");
        return VC_EMALFORMED;
    }
    if (version != PROTO_LOG_VERSION) {
        snprintf(errmsg, errlen, "log format version %llu (this build reads %d)",
                 (unsigned long long)version, PROTO_LOG_VERSION);
        return VC_EVERSION;
    }
    if (mp_get_array(&top[1], 1, VC_BATCH_MAX, &items, &nitems) != 0) {
        snprintf(errmsg, errlen, "entry holds no command list");
        return VC_EMALFORMED;
    }
    if (nitems > max) {
        snprintf(errmsg, errlen, "entry holds %u commands, room for %zu",
                 nitems, max);
        return VC_ETOOBIG;
    }
    for (uint32_t i = 0; i < nitems; i++) {
        rv = proto_cmd_unpack(&items[i], &cmds[i], errmsg, errlen);
        if (rv != 0)
            return rv;
    }
    *n = nitems;
    return 0;
}

void proto_result_pack(msgpack_packer *pk, const struct proto_result *r)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int64(pk, r->code);
    msgpack_pack_uint16(pk, r->vlan);
    msgpack_pack_uint64(pk, r->gen);
    mp_pack_cstr(pk, r->msg);
}

int proto_result_unpack(const msgpack_object *o, struct proto_result *r)
{
    const msgpack_object *f;
    uint32_t n;
    uint64_t vlan;
    struct mp_str msg;
    if (mp_get_array(o, 4, 4, &f, &n) != 0)
        return VC_EMALFORMED;
    if (f[0].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
        f[0].via.i64 >= -100000)
        r->code = (int)f[0].via.i64;
    else if (f[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[0].via.u64 == 0)
        r->code = 0;
    else
        return VC_EMALFORMED;
    if (mp_get_uint(&f[1], VLAN_MAX, &vlan) != 0 ||
        mp_get_u64(&f[2], &r->gen) != 0 ||
        mp_get_str(&f[3], VC_MSG_MAX, &msg) != 0 ||
        !text_ok(msg, VC_MSG_MAX, true))
        return VC_EMALFORMED;
    r->vlan = (uint16_t)vlan;
    mp_str_copy(msg, r->msg, sizeof r->msg);
    return 0;
}

int proto_results_encode(const struct proto_result *r, size_t n,
                         struct mp_buf *out)
{
    msgpack_packer pk;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, PROTO_LOG_VERSION);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        proto_result_pack(&pk, &r[i]);
    return out->oom ? VC_ENOMEM : 0;
}

int proto_results_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_result *r, size_t max, size_t *n)
{
    msgpack_object root;
    const msgpack_object *top, *items;
    uint32_t ntop, nitems;
    uint64_t version;
    int rv = mp_decode(data, len, zone, &root);
    *n = 0;
    if (rv != 0)
        return rv;
    if (mp_get_array(&root, 2, 2, &top, &ntop) != 0 ||
        mp_get_u64(&top[0], &version) != 0)
        return VC_EMALFORMED;
    if (version != PROTO_LOG_VERSION)
        return VC_EVERSION;
    if (mp_get_array(&top[1], 0, VC_BATCH_MAX, &items, &nitems) != 0)
        return VC_EMALFORMED;
    if (nitems > max)
        return VC_ETOOBIG;
    for (uint32_t i = 0; i < nitems; i++)
        if ((rv = proto_result_unpack(&items[i], &r[i])) != 0)
            return rv;
    *n = nitems;
    return 0;
}
