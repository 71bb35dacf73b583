#include "mp.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

bool mp_str_eq(struct mp_str a, const char *b)
{
    size_t n = strlen(b);
    return n == a.n && memcmp(a.p, b, n) == 0;
}

int mp_str_copy(struct mp_str s, char *buf, size_t len)
{
    if (s.n >= len) {
        if (len)
            buf[0] = '\0';
        return VC_ETOOBIG;
    }
    if (s.n)
        memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    return 0;
}

void mp_buf_init(struct mp_buf *b)
{
    memset(b, 0, sizeof *b);
}

void mp_buf_close(struct mp_buf *b)
{
    free(b->data);
    mp_buf_init(b);
}

void mp_buf_reset(struct mp_buf *b)
{
    b->len = 0;
    b->oom = false;
}

char *mp_buf_take(struct mp_buf *b, size_t *len)
{
    char *d = b->data;
    *len = b->len;
    mp_buf_init(b);
    return d;
}

int mp_buf_grow(struct mp_buf *b, size_t n)
{
    if (b->oom)
        return VC_ENOMEM;
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return VC_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

static int buf_write(void *data, const char *buf, size_t len)
{
    struct mp_buf *b = data;
    uint8_t *p;
    if (len == 0) /* msgpack-c writes empty string bodies */
        return b->oom ? -1 : 0;
    if (!(p = mp_buf_room(b, len)))
        return -1;
    memcpy(p, buf, len);
    b->len += len;
    return 0;
}

void mp_packer_init(msgpack_packer *pk, struct mp_buf *b)
{
    msgpack_packer_init(pk, b, buf_write);
}

struct mp_buf *mp_packer_buf(const msgpack_packer *pk)
{
    return pk->callback == buf_write ? pk->data : NULL;
}

void mp_pack_str(msgpack_packer *pk, struct mp_str s)
{
    msgpack_pack_str(pk, s.n);
    msgpack_pack_str_body(pk, s.p, s.n);
}

void mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    mp_pack_str(pk, mp_cstr(s));
}

/* --- bounded pre-scan ------------------------------------------------- */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Whole size of each value that is one type byte plus a fixed payload:
 * integers, floats, nil, booleans and fixstr. 0: array, map, str8+, bin
 * or invalid, left to header(). */
static const uint8_t scalar_size[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 10 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 90 */
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* a0 */
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, /* b0 */
    1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 5, 9, 2, 3, 5, 9, /* c0 */
    2, 3, 5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* d0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* e0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* f0 */
};

/* Decodes the header at p: *hdr bytes of header, *payload bytes of inline
 * payload and *children nested values. Returns -1 on ext/reserved types. */
static int header(const uint8_t *p, size_t left, size_t *hdr,
                  uint64_t *payload, uint64_t *children)
{
    uint8_t t = p[0];
    int lenbytes = 0;
    *hdr = 1;
    *payload = 0;
    *children = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if ((t & 0xf0) == 0x80) { /* fixmap */
        *children = 2ull * (t & 0x0f);
        return 0;
    }
    if ((t & 0xf0) == 0x90) { /* fixarray */
        *children = t & 0x0f;
        return 0;
    }
    if ((t & 0xe0) == 0xa0) { /* fixstr */
        *payload = t & 0x1f;
        return 0;
    }
    switch (t) {
    case 0xcc: case 0xd0: *payload = 1; return 0;
    case 0xcd: case 0xd1: *payload = 2; return 0;
    case 0xca: case 0xce: case 0xd2: *payload = 4; return 0;
    case 0xcb: case 0xcf: case 0xd3: *payload = 8; return 0;
    case 0xc4: case 0xd9: lenbytes = 1; break; /* bin8, str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;
    case 0xc6: case 0xdb: lenbytes = 4; break;
    case 0xdc: case 0xde: lenbytes = 2; break; /* array16, map16 */
    case 0xdd: case 0xdf: lenbytes = 4; break;
    default: return -1; /* ext, fixext, 0xc1 */
    }
    if (left < 1 + (size_t)lenbytes)
        return -1;
    uint64_t n = be(p + 1, lenbytes);
    *hdr = 1 + (size_t)lenbytes;
    if (t == 0xdc || t == 0xdd)
        *children = n;
    else if (t == 0xde || t == 0xdf)
        *children = 2 * n;
    else
        *payload = n;
    return 0;
}

int mp_scan(const void *data, size_t len, size_t *used)
{
    const uint8_t *p = data;
    size_t off = 0;
    /* Values still owed: at this level in a register, at the levels above
     * in saved[] (depth of them). */
    uint64_t owed = 1, saved[MP_MAX_DEPTH];
    int depth = 0;
    for (;;) {
        while (owed == 0) {
            if (depth == 0) {
                *used = off;
                return 0;
            }
            owed = saved[--depth];
        }
        if (off >= len)
            return VC_EMALFORMED;
        owed--;
        /* Most values of a log entry are scalars: one lookup each. */
        size_t whole = scalar_size[p[off]];
        if (whole) {
            if (whole > len - off)
                return VC_EMALFORMED;
            off += whole;
            continue;
        }
        size_t hdr;
        uint64_t payload, children;
        if ((p[off] & 0xf0) == 0x90) { /* fixarray: every command is one */
            hdr = 1;
            payload = 0;
            children = p[off] & 0x0f;
        } else if (header(p + off, len - off, &hdr, &payload, &children)) {
            return VC_EMALFORMED;
        }
        off += hdr;
        if (payload > len - off)
            return VC_EMALFORMED;
        off += (size_t)payload;
        if (children) {
            /* Every value takes at least one byte. */
            if (children > len - off || depth == MP_MAX_DEPTH)
                return VC_EMALFORMED;
            saved[depth++] = owed;
            owed = children;
        }
    }
}

int mp_check(const void *data, size_t len)
{
    size_t used;
    int rv = mp_scan(data, len, &used);
    if (rv != 0)
        return rv;
    return used == len ? 0 : VC_EMALFORMED;
}

int mp_decode(const void *data, size_t len, msgpack_zone *zone,
              msgpack_object *out)
{
    int rv = mp_check(data, len);
    if (rv != 0)
        return rv;
    return mp_unpack_checked(data, len, zone, out);
}

int mp_unpack_checked(const void *data, size_t len, msgpack_zone *zone,
                      msgpack_object *out)
{
    size_t off = 0;
    switch (msgpack_unpack(data, len, &off, zone, out)) {
    case MSGPACK_UNPACK_SUCCESS:
        return off == len ? 0 : VC_EMALFORMED;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return VC_ENOMEM;
    default:
        return VC_EMALFORMED;
    }
}
