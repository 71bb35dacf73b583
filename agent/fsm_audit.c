#include "fsm_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "../proto/mp.h"

/* Longest text blob: every field at its bound plus the NULs. */
#define TEXT_MAX                                                            \
    (VC_REQID_MAX + VC_NAME_MAX + VC_NAME_MAX + FSM_AUDIT_SITES_MAX +       \
     FSM_AUDIT_MSG_MAX + AUDIT_NTEXT)

static const uint32_t text_max[AUDIT_NTEXT] = {
    VC_REQID_MAX, VC_NAME_MAX, VC_NAME_MAX, FSM_AUDIT_SITES_MAX,
    FSM_AUDIT_MSG_MAX};

void fsm_audit_close(struct fsm_audit *a)
{
    for (uint32_t i = 0; i < a->len; i++)
        free(a->ring[(a->head + i) % a->cap].text);
    free(a->ring);
    memset(a, 0, sizeof *a);
}

bool fsm_audit_wants(int type)
{
    return type != PROTO_CMD_APPLY_REPORT;
}

/* Only changes: a refused command leaves the state machine untouched,
 * trail included (replicas and tests rely on that). */
static bool wanted(const struct proto_cmd *cmd, const struct proto_result *r)
{
    return r->code == 0 && fsm_audit_wants(cmd->type);
}

const struct fsm_audit_entry *fsm_audit_at(const struct fsm_audit *a,
                                           uint32_t i)
{
    return &a->ring[(a->head + i) % a->cap];
}

const char *fsm_audit_text(const struct fsm_audit_entry *e,
                           enum fsm_audit_text which)
{
    const char *p = e->text;
    for (int i = 0; i < (int)which; i++)
        p += strlen(p) + 1;
    return p;
}

/* Appends s[0..n) cut to max bytes (never inside a UTF-8 sequence) and a
 * NUL at buf + *len. */
static void put(char *buf, size_t *len, const char *s, size_t n, size_t max)
{
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    if (n) /* s may be NULL when n is 0 */
        memcpy(buf + *len, s, n);
    *len += n;
    buf[(*len)++] = '\0';
}

/* "a,b,c" from the command's site list, else its site. */
static void sites_of(const struct proto_cmd *cmd, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (cmd->nsites == 0) {
        mp_str_copy(cmd->site, buf, cap);
        return;
    }
    for (uint32_t i = 0; i < cmd->nsites && len + 1 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%.*s", i ? "," : "",
                         (int)cmd->sites[i].n, cmd->sites[i].p);
        len = n < 0 ? len : len + (size_t)n >= cap ? cap - 1 : len + (size_t)n;
    }
}

/* Makes room for one more entry: grows the ring, or drops the oldest when
 * it is full. */
static int make_room(struct fsm_audit *a)
{
    if (a->len == FSM_AUDIT_MAX) {
        free(a->ring[a->head].text);
        a->head = (a->head + 1) % a->cap;
        a->len--;
        return 0;
    }
    if (a->len < a->cap)
        return 0;
    uint32_t cap = a->cap ? a->cap * 2 : 64;
    if (cap > FSM_AUDIT_MAX)
        cap = FSM_AUDIT_MAX;
    struct fsm_audit_entry *r = malloc(cap * sizeof *r);
    if (!r)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < a->len; i++) /* unwrap: oldest at 0 */
        r[i] = a->ring[(a->head + i) % a->cap];
    free(a->ring);
    a->ring = r;
    a->cap = cap;
    a->head = 0;
    return 0;
}

/* Stores an entry whose text is blob[0..len) (copied). */
static int push(struct fsm_audit *a, const struct fsm_audit_entry *e,
                const char *blob, size_t len)
{
    char *text = malloc(len);
    if (!text || make_room(a) != 0) {
        free(text);
        return VC_ENOMEM;
    }
    memcpy(text, blob, len);
    struct fsm_audit_entry *slot = &a->ring[(a->head + a->len) % a->cap];
    *slot = *e;
    slot->text = text;
    a->len++;
    return 0;
}

int fsm_audit_record(struct fsm_audit *a, const struct proto_cmd *cmd,
                     const struct proto_result *r)
{
    char blob[TEXT_MAX], sites[FSM_AUDIT_SITES_MAX + 1];
    size_t len = 0;
    if (!wanted(cmd, r))
        return 0;
    sites_of(cmd, sites, sizeof sites);
    put(blob, &len, cmd->req_id.p, cmd->req_id.n, VC_REQID_MAX);
    put(blob, &len, cmd->origin.p, cmd->origin.n, VC_NAME_MAX);
    put(blob, &len, cmd->name.p, cmd->name.n, VC_NAME_MAX);
    put(blob, &len, sites, strlen(sites), FSM_AUDIT_SITES_MAX);
    put(blob, &len, r->msg, strlen(r->msg), FSM_AUDIT_MSG_MAX);
    struct fsm_audit_entry e = {.seq = a->next_seq ? a->next_seq : 1,
                                .time_ms = cmd->time_ms,
                                .code = r->code,
                                .type = cmd->type};
    int rv = push(a, &e, blob, len);
    if (rv == 0)
        a->next_seq = e.seq + 1;
    return rv;
}

/* --- snapshot ------------------------------------------------------------ */

#define AUDIT_AHEAD 8 /* entries whose texts are prefetched */

/* Up to FSM_AUDIT_MAX records, so written with direct stores: one pass
 * over each entry's texts for their lengths, one reservation per record.
 * Same bytes as the fields through msgpack-c's packer. */
void fsm_audit_pack(struct mp_buf *b, const struct fsm_audit *a)
{
    mp_put_array(b, 2);
    mp_put_uint(b, a->next_seq);
    mp_put_array(b, a->len);
    for (uint32_t i = 0, k = a->head; i < a->len; i++) {
        const struct fsm_audit_entry *e = &a->ring[k];
        /* Each entry's texts are a block of their own, scattered over a
         * long-running agent's heap: a cache miss apiece, most of the
         * trail's cost. Start loading those AUDIT_AHEAD entries on. */
        if (i + AUDIT_AHEAD < a->len) {
            uint32_t ka = k + AUDIT_AHEAD; /* < 2 cap: cap >= len */
            const char *ahead = a->ring[ka < a->cap ? ka : ka - a->cap].text;
            __builtin_prefetch(ahead);
            __builtin_prefetch(ahead + 64);
        }
        const char *t[AUDIT_NTEXT];
        uint32_t n[AUDIT_NTEXT];
        size_t total = 0;
        const char *s = e->text;
        for (int j = 0; j < AUDIT_NTEXT; j++) {
            t[j] = s;
            n[j] = (uint32_t)strlen(s);
            total += n[j];
            s += n[j] + 1;
        }
        /* array 1, seq 9, time 9, type 2, code 5, texts 5 + n each */
        uint8_t *p0 = mp_buf_room(b, 26 + 5 * AUDIT_NTEXT + total), *p;
        if (!p0)
            return;
        p = mp_w_array(p0, 4 + AUDIT_NTEXT);
        p = mp_w_uint(p, e->seq);
        p = mp_w_uint(p, e->time_ms);
        p = mp_w_uint(p, e->type);
        p = mp_w_int(p, e->code);
        for (int j = 0; j < AUDIT_NTEXT; j++)
            p = mp_w_str(p, t[j], n[j]);
        b->len += (size_t)(p - p0);
        if (++k == a->cap)
            k = 0;
    }
}

#define BAD(...)                                                               \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return VC_EMALFORMED;                                                  \
    } while (0)

/* One entry [seq, time, type, code, texts...] into e and blob. Strings
 * must be within their bounds and hold no NUL (it ends each field). */
static int restore_entry(const msgpack_object *o, struct fsm_audit_entry *e,
                         char *blob, size_t *len, char *errmsg,
                         size_t errlen)
{
    const msgpack_object *f;
    uint32_t n;
    uint64_t type;
    if (mp_get_array(o, 4 + AUDIT_NTEXT, 4 + AUDIT_NTEXT, &f, &n) != 0 ||
        mp_get_u64(&f[0], &e->seq) != 0 || mp_get_u64(&f[1], &e->time_ms) ||
        mp_get_uint(&f[2], PROTO_CMD_TYPE_MAX, &type) != 0)
        BAD("snapshot audit entry: not [seq, time, type, code, %d texts]",
            AUDIT_NTEXT);
    if (f[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[3].via.u64 == 0)
        e->code = 0;
    else if (f[3].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
             f[3].via.i64 >= INT32_MIN)
        e->code = (int32_t)f[3].via.i64;
    else
        BAD("snapshot audit entry %llu: bad result code",
            (unsigned long long)e->seq);
    e->type = (uint8_t)type;
    *len = 0;
    for (int k = 0; k < AUDIT_NTEXT; k++) {
        struct mp_str s;
        if (mp_get_str(&f[4 + k], text_max[k], &s) != 0 ||
            memchr(s.p, '\0', s.n))
            BAD("snapshot audit entry %llu: text %d too long or not a "
                "string", (unsigned long long)e->seq, k);
        put(blob, len, s.p, s.n, text_max[k]);
    }
    return 0;
}

static int restore_entries(struct fsm_audit *a, const msgpack_object *items,
                           uint32_t n, char *errmsg, size_t errlen)
{
    char blob[TEXT_MAX];
    for (uint32_t i = 0; i < n; i++) {
        struct fsm_audit_entry e;
        size_t len;
        int rv = restore_entry(&items[i], &e, blob, &len, errmsg, errlen);
        if (rv == 0 && (e.seq == 0 || e.seq >= a->next_seq ||
                        (a->len && e.seq <= fsm_audit_at(a, a->len - 1)->seq)))
            BAD("snapshot audit: entry %u has seq %llu out of order", i,
                (unsigned long long)e.seq);
        if (rv == 0 && (rv = push(a, &e, blob, len)) == VC_ENOMEM)
            snprintf(errmsg, errlen, "snapshot audit: out of memory");
        if (rv != 0)
            return rv;
    }
    return 0;
}

int fsm_audit_restore(struct fsm_audit *a, const msgpack_object *o,
                      char *errmsg, size_t errlen)
{
    const msgpack_object *f, *items;
    uint32_t n, ni;
    uint64_t next;
    fsm_audit_close(a);
    if (mp_get_array(o, 2, 2, &f, &n) != 0 || mp_get_u64(&f[0], &next) != 0 ||
        mp_get_array(&f[1], 0, FSM_AUDIT_MAX, &items, &ni) != 0)
        BAD("snapshot audit: not [next_seq, [at most %d entries]]",
            FSM_AUDIT_MAX);
    a->next_seq = next;
    int rv = restore_entries(a, items, ni, errmsg, errlen);
    if (rv != 0)
        fsm_audit_close(a);
    return rv;
}
