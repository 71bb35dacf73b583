/* Raft messages as channel records: see raftmsg.h for the format. */
#include "raftmsg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

#define ENTRY_HEAD 13  /* u64 term, u8 type, u32 len */
#define SERVER_HEAD 11 /* u64 id, u8 role, u16 len */

/* Fixed part of each body after type and version. */
static size_t fixed_size(enum raft_message_type type)
{
    switch (type) {
    case RAFT_REQUEST_VOTE:
        return 4 * 8 + 1;
    case RAFT_REQUEST_VOTE_RESULT:
        return 8 + 1 + 2 + 2;
    case RAFT_APPEND_ENTRIES:
        return 4 * 8 + 4;
    case RAFT_APPEND_ENTRIES_RESULT:
        return 3 * 8 + 2 + 2;
    case RAFT_INSTALL_SNAPSHOT:
        return 4 * 8 + 4;
    case RAFT_TIMEOUT_NOW:
        return 3 * 8;
    }
    return 0;
}

/* --- encoding ------------------------------------------------------------ */

struct out {
    uint8_t *p;
};

static void put8(struct out *o, uint8_t v)
{
    *o->p++ = v;
}

static void put16(struct out *o, uint16_t v)
{
    put8(o, (uint8_t)v);
    put8(o, (uint8_t)(v >> 8));
}

static void put32(struct out *o, uint32_t v)
{
    put16(o, (uint16_t)v);
    put16(o, (uint16_t)(v >> 16));
}

static void put64(struct out *o, uint64_t v)
{
    put32(o, (uint32_t)v);
    put32(o, (uint32_t)(v >> 32));
}

static void put_bytes(struct out *o, const void *data, size_t len)
{
    if (len)
        memcpy(o->p, data, len);
    o->p += len;
}

static size_t body_size(const struct raft_message *m)
{
    size_t n = 2 + fixed_size(m->type);
    if (n == 2)
        return 0;
    if (m->type == RAFT_APPEND_ENTRIES) {
        const struct raft_append_entries *a = &m->append_entries;
        for (unsigned i = 0; i < a->n_entries; i++) {
            if (a->entries[i].buf.len > PROTO_RAFTMSG_MAX)
                return 0;
            n += ENTRY_HEAD + a->entries[i].buf.len;
            if (n > PROTO_RAFTMSG_MAX)
                return 0;
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        const struct raft_install_snapshot *s = &m->install_snapshot;
        if (s->conf.n > PROTO_RAFTMSG_SERVERS_MAX)
            return 0;
        for (unsigned i = 0; i < s->conf.n; i++) {
            size_t alen = strlen(s->conf.servers[i].address);
            if (alen > PROTO_RAFTMSG_ADDR_MAX)
                return 0;
            n += SERVER_HEAD + alen;
        }
        if (s->data.len > PROTO_RAFTMSG_MAX)
            return 0;
        n += s->data.len;
    }
    return n > PROTO_RAFTMSG_MAX ? 0 : n;
}

size_t proto_raftmsg_size(const struct raft_message *m)
{
    size_t n = body_size(m);
    return n ? PROTO_RAFTMSG_HEAD + n : 0;
}

static void write_entries(struct out *o, const struct raft_append_entries *a)
{
    put64(o, a->term);
    put64(o, a->prev_log_index);
    put64(o, a->prev_log_term);
    put64(o, a->leader_commit);
    put32(o, a->n_entries);
    for (unsigned i = 0; i < a->n_entries; i++) {
        put64(o, a->entries[i].term);
        put8(o, (uint8_t)a->entries[i].type);
        put32(o, (uint32_t)a->entries[i].buf.len);
    }
    for (unsigned i = 0; i < a->n_entries; i++)
        put_bytes(o, a->entries[i].buf.base, a->entries[i].buf.len);
}

static void write_snapshot(struct out *o, const struct raft_install_snapshot *s)
{
    put64(o, s->term);
    put64(o, s->last_index);
    put64(o, s->last_term);
    put64(o, s->conf_index);
    put32(o, s->conf.n);
    for (unsigned i = 0; i < s->conf.n; i++) {
        const struct raft_server *sv = &s->conf.servers[i];
        size_t alen = strlen(sv->address);
        put64(o, sv->id);
        put8(o, (uint8_t)sv->role);
        put16(o, (uint16_t)alen);
        put_bytes(o, sv->address, alen);
    }
    put_bytes(o, s->data.base, s->data.len);
}

void proto_raftmsg_write(const struct raft_message *m, uint8_t *out)
{
    struct out o = {out};
    put32(&o, 0); /* patched below, big-endian */
    put8(&o, (uint8_t)m->type);
    switch (m->type) {
    case RAFT_REQUEST_VOTE: {
        const struct raft_request_vote *v = &m->request_vote;
        put8(&o, v->version);
        put64(&o, v->term);
        put64(&o, v->candidate_id);
        put64(&o, v->last_log_index);
        put64(&o, v->last_log_term);
        put8(&o, (uint8_t)((v->disrupt_leader ? 1 : 0) | (v->pre_vote ? 2 : 0)));
        break;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        const struct raft_request_vote_result *v = &m->request_vote_result;
        put8(&o, v->version);
        put64(&o, v->term);
        put8(&o, (uint8_t)((v->vote_granted ? 1 : 0) | (v->pre_vote ? 2 : 0)));
        put16(&o, v->features);
        put16(&o, v->capacity);
        break;
    }
    case RAFT_APPEND_ENTRIES:
        put8(&o, m->append_entries.version);
        write_entries(&o, &m->append_entries);
        break;
    case RAFT_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *r = &m->append_entries_result;
        put8(&o, r->version);
        put64(&o, r->term);
        put64(&o, r->rejected);
        put64(&o, r->last_log_index);
        put16(&o, r->features);
        put16(&o, r->capacity);
        break;
    }
    case RAFT_INSTALL_SNAPSHOT:
        put8(&o, m->install_snapshot.version);
        write_snapshot(&o, &m->install_snapshot);
        break;
    case RAFT_TIMEOUT_NOW:
        put8(&o, m->timeout_now.version);
        put64(&o, m->timeout_now.term);
        put64(&o, m->timeout_now.last_log_index);
        put64(&o, m->timeout_now.last_log_term);
        break;
    }
    size_t n = (size_t)(o.p - out) - PROTO_RAFTMSG_HEAD;
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
}

int proto_raftmsg_peek(const uint8_t *head, uint32_t *n)
{
    *n = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
         (uint32_t)head[2] << 8 | head[3];
    return *n == 0 || *n > PROTO_RAFTMSG_MAX ? VC_EMALFORMED : 0;
}

/* --- decoding ------------------------------------------------------------ */

struct in {
    const uint8_t *p;
    size_t left;
};

/* Callers check room first (need()): the getters never fail. */
static bool need(const struct in *in, size_t n)
{
    return in->left >= n;
}

static uint8_t get8(struct in *in)
{
    in->left--;
    return *in->p++;
}

static uint16_t get16(struct in *in)
{
    uint16_t lo = get8(in);
    return (uint16_t)(lo | (uint16_t)get8(in) << 8);
}

static uint32_t get32(struct in *in)
{
    uint32_t lo = get16(in);
    return lo | (uint32_t)get16(in) << 16;
}

static uint64_t get64(struct in *in)
{
    uint64_t lo = get32(in);
    return lo | (uint64_t)get32(in) << 32;
}

static int bad(char *errmsg, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *errmsg, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(errmsg, errlen, fmt, ap);
    va_end(ap);
    return VC_EMALFORMED;
}

static int nomem(char *errmsg, size_t errlen)
{
    if (errlen)
        snprintf(errmsg, errlen, "raft message: out of memory");
    return VC_ENOMEM;
}

static int decode_flags(uint8_t flags, bool *a, bool *b)
{
    if (flags & ~3u)
        return -1;
    *a = flags & 1;
    *b = flags & 2;
    return 0;
}

static int decode_entries(struct in *in, struct raft_append_entries *a,
                          char *errmsg, size_t errlen)
{
    size_t total = 0;
    uint8_t *batch;
    a->term = get64(in);
    a->prev_log_index = get64(in);
    a->prev_log_term = get64(in);
    a->leader_commit = get64(in);
    a->n_entries = get32(in);
    a->entries = NULL;
    /* Each entry's head takes ENTRY_HEAD body bytes: this bounds the
     * array before anything is allocated. */
    if (a->n_entries > in->left / ENTRY_HEAD)
        return bad(errmsg, errlen, "raft message: %u entries in %zu bytes",
                   a->n_entries, in->left);
    if (a->n_entries == 0) {
        if (in->left)
            return bad(errmsg, errlen, "raft message: %zu bytes after the "
                       "fields", in->left);
        return 0;
    }
    struct in heads = *in;
    for (unsigned i = 0; i < a->n_entries; i++) {
        (void)get64(&heads);
        uint8_t type = get8(&heads);
        uint32_t len = get32(&heads);
        if (type < RAFT_COMMAND || type > RAFT_CHANGE)
            return bad(errmsg, errlen, "raft message: entry %u has type %u",
                       i, type);
        if (len > in->left - total) /* no sum can wrap, even 32-bit */
            return bad(errmsg, errlen, "raft message: entry %u of %u bytes "
                       "past the body", i, len);
        total += len;
    }
    if (total != heads.left)
        return bad(errmsg, errlen, "raft message: entries announce %zu "
                   "bytes, %zu follow", total, heads.left);
    /* raft frees entries[0].batch: one allocation, never zero bytes. */
    if (!(a->entries = raft_calloc(a->n_entries, sizeof *a->entries)) ||
        !(batch = raft_malloc(total ? total : 8))) {
        raft_free(a->entries);
        a->entries = NULL;
        return nomem(errmsg, errlen);
    }
    memcpy(batch, heads.p, total);
    size_t off = 0;
    for (unsigned i = 0; i < a->n_entries; i++) {
        struct raft_entry *e = &a->entries[i];
        e->term = get64(in);
        e->type = (enum raft_entry_type)get8(in);
        e->buf.len = get32(in);
        e->buf.base = batch + off;
        e->batch = batch;
        off += e->buf.len;
    }
    in->left = 0;
    return 0;
}

static int decode_server(struct in *in, struct raft_configuration *conf,
                         unsigned i, char *errmsg, size_t errlen)
{
    char addr[PROTO_RAFTMSG_ADDR_MAX + 1];
    raft_id id;
    uint8_t role;
    uint16_t alen;
    if (!need(in, SERVER_HEAD))
        return bad(errmsg, errlen, "raft message: server %u cut short", i);
    id = get64(in);
    role = get8(in);
    alen = get16(in);
    if (alen > PROTO_RAFTMSG_ADDR_MAX || !need(in, alen))
        return bad(errmsg, errlen, "raft message: server %u: address of %u "
                   "bytes", i, alen);
    memcpy(addr, in->p, alen);
    addr[alen] = '\0';
    in->p += alen;
    in->left -= alen;
    if (id == 0 || strlen(addr) != alen ||
        (role != RAFT_STANDBY && role != RAFT_VOTER && role != RAFT_SPARE))
        return bad(errmsg, errlen, "raft message: server %u: bad id, role "
                   "or address", i);
    switch (raft_configuration_add(conf, id, addr, role)) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return nomem(errmsg, errlen);
    default: /* a duplicate id or address */
        return bad(errmsg, errlen, "raft message: server %u: duplicate", i);
    }
}

static int decode_snapshot(struct in *in, struct raft_install_snapshot *s,
                           char *errmsg, size_t errlen)
{
    uint32_t n;
    int rv;
    s->term = get64(in);
    s->last_index = get64(in);
    s->last_term = get64(in);
    s->conf_index = get64(in);
    n = get32(in);
    raft_configuration_init(&s->conf);
    s->data.base = NULL;
    s->data.len = 0;
    if (n > PROTO_RAFTMSG_SERVERS_MAX || n > in->left / SERVER_HEAD)
        return bad(errmsg, errlen, "raft message: %u servers in %zu bytes",
                   n, in->left);
    for (unsigned i = 0; i < n; i++)
        if ((rv = decode_server(in, &s->conf, i, errmsg, errlen)) != 0) {
            raft_configuration_close(&s->conf);
            return rv;
        }
    s->data.len = in->left;
    if (!(s->data.base = raft_malloc(in->left ? in->left : 8))) {
        raft_configuration_close(&s->conf);
        return nomem(errmsg, errlen);
    }
    memcpy(s->data.base, in->p, in->left);
    in->left = 0;
    return 0;
}

static int decode_fields(struct in *in, struct raft_message *m, char *errmsg,
                         size_t errlen)
{
    switch (m->type) {
    case RAFT_REQUEST_VOTE: {
        struct raft_request_vote *v = &m->request_vote;
        v->term = get64(in);
        v->candidate_id = get64(in);
        v->last_log_index = get64(in);
        v->last_log_term = get64(in);
        if (decode_flags(get8(in), &v->disrupt_leader, &v->pre_vote) != 0)
            return bad(errmsg, errlen, "raft message: unknown flags");
        return 0;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        struct raft_request_vote_result *v = &m->request_vote_result;
        v->term = get64(in);
        if (decode_flags(get8(in), &v->vote_granted, &v->pre_vote) != 0)
            return bad(errmsg, errlen, "raft message: unknown flags");
        v->features = get16(in);
        v->capacity = get16(in);
        return 0;
    }
    case RAFT_APPEND_ENTRIES:
        return decode_entries(in, &m->append_entries, errmsg, errlen);
    case RAFT_APPEND_ENTRIES_RESULT: {
        struct raft_append_entries_result *r = &m->append_entries_result;
        r->term = get64(in);
        r->rejected = get64(in);
        r->last_log_index = get64(in);
        r->features = get16(in);
        r->capacity = get16(in);
        return 0;
    }
    case RAFT_INSTALL_SNAPSHOT:
        return decode_snapshot(in, &m->install_snapshot, errmsg, errlen);
    case RAFT_TIMEOUT_NOW:
        m->timeout_now.term = get64(in);
        m->timeout_now.last_log_index = get64(in);
        m->timeout_now.last_log_term = get64(in);
        return 0;
    }
    return VC_EMALFORMED; /* not reached: the type was checked */
}

int proto_raftmsg_decode(const uint8_t *body, size_t len,
                         struct raft_message *m, char *errmsg, size_t errlen)
{
    struct in in = {body, len};
    size_t fixed;
    uint8_t type, version;
    int rv;
    memset(m, 0, sizeof *m);
    if (!need(&in, 2))
        return bad(errmsg, errlen, "raft message: %zu bytes", len);
    type = get8(&in);
    version = get8(&in);
    if (!(fixed = fixed_size((enum raft_message_type)type)))
        return bad(errmsg, errlen, "raft message: unknown type %u", type);
    if (!need(&in, fixed))
        return bad(errmsg, errlen, "raft message: type %u cut short at %zu "
                   "bytes", type, len);
    m->type = (enum raft_message_type)type;
    /* Every type keeps version as its union member's first field. */
    m->request_vote.version = version;
    if ((rv = decode_fields(&in, m, errmsg, errlen)) != 0) {
        memset(m, 0, sizeof *m);
        return rv;
    }
    if (in.left) {
        proto_raftmsg_free(m);
        return bad(errmsg, errlen, "raft message: type %u: %zu bytes after "
                   "the fields", type, in.left);
    }
    return 0;
}

void proto_raftmsg_free(struct raft_message *m)
{
    if (m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries) {
        raft_free(m->append_entries.entries[0].batch);
        raft_free(m->append_entries.entries);
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
    }
    memset(m, 0, sizeof *m);
}
