/* Bounded msgpack helpers shared by every VirtCloud format.
 *
 * Writing goes through msgpack-c's packer into a growable buffer we own.
 * Reading never hands untrusted bytes straight to msgpack-c: mp_check()
 * first walks the bytes and rejects any declared str/bin/array/map size
 * larger than the bytes left, nesting deeper than MP_MAX_DEPTH and every
 * ext type. Only then msgpack_unpack() builds objects in a caller zone, so
 * its allocation is bounded by a small multiple of the input length.
 */
#ifndef VC_PROTO_MP_H
#define VC_PROTO_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"

#define MP_MAX_DEPTH 8

/* A string borrowed from a decoded buffer (not NUL-terminated) or from a
 * C string owned by the caller. */
struct mp_str {
    const char *p;
    uint32_t n;
};

static inline struct mp_str mp_cstr(const char *s)
{
    struct mp_str r = {s, 0};
    if (s)
        while (s[r.n])
            r.n++;
    return r;
}

bool mp_str_eq(struct mp_str a, const char *b);

/* Copies s into buf (NUL-terminated). Returns 0, or VC_ETOOBIG if it does
 * not fit (buf then holds the empty string). */
int mp_str_copy(struct mp_str s, char *buf, size_t len);

/* Growable output buffer. data is malloc'd; owner calls mp_buf_close(). */
struct mp_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom; /* a write failed: the content is incomplete */
};

void mp_buf_init(struct mp_buf *b);
void mp_buf_close(struct mp_buf *b);
void mp_buf_reset(struct mp_buf *b);
/* Detaches the data (caller frees with free()). */
char *mp_buf_take(struct mp_buf *b, size_t *len);

/* Makes room for n more bytes. Returns 0, or VC_ENOMEM with b->oom set
 * (also if it was already set: an incomplete buffer takes no more). */
int mp_buf_grow(struct mp_buf *b, size_t n);

/* Where n more bytes go, or NULL (b->oom). The caller writes them and
 * adds what it wrote to b->len. */
static inline uint8_t *mp_buf_room(struct mp_buf *b, size_t n)
{
    if ((b->oom || b->cap - b->len < n) && mp_buf_grow(b, n) != 0)
        return NULL;
    return (uint8_t *)b->data + b->len;
}

/* Direct writers: append one msgpack value to b, byte for byte what
 * msgpack-c's packer writes (the smallest form of each value), without a
 * callback per piece. Encoding log entries is on every command's path. */
static inline size_t mp_store_be(uint8_t *p, uint8_t type, uint64_t v,
                                 int n)
{
    p[0] = type;
    for (int i = n; i > 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
    return 1 + (size_t)n;
}

/* memcpy for the short strings of commands without a libc call: two
 * overlapping loads and stores cover 4..16 bytes, staying inside both. */
static inline void mp_copy_short(uint8_t *d, const char *s, size_t n)
{
    uint64_t a, z;
    uint32_t x, y;
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&z, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &z, 8);
    } else if (n >= 4) {
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = (uint8_t)s[i];
    }
}

/* Unchecked writers, under the mp_put_*() below, and for bulk encoders
 * (snapshots): the caller reserves the worst case of a whole record with
 * one mp_buf_room(), writes its values at p and adds p - start to b->len. Same bytes as msgpack-c's packer
 * (smallest form). Worst cases: uint 9, int 9, array 5, str 5 + n. */
static inline uint8_t *mp_w_uint(uint8_t *p, uint64_t v)
{
    if (v < 0x80)
        *p = (uint8_t)v;
    else if (v <= UINT8_MAX)
        return p + mp_store_be(p, 0xcc, v, 1);
    else if (v <= UINT16_MAX)
        return p + mp_store_be(p, 0xcd, v, 2);
    else if (v <= UINT32_MAX)
        return p + mp_store_be(p, 0xce, v, 4);
    else
        return p + mp_store_be(p, 0xcf, v, 8);
    return p + 1;
}

/* As msgpack_pack_int64(): non-negative values in the uint forms. */
static inline uint8_t *mp_w_int(uint8_t *p, int64_t v)
{
    if (v >= 0)
        return mp_w_uint(p, (uint64_t)v);
    if (v >= -32)
        *p = (uint8_t)v;
    else if (v >= INT8_MIN)
        return p + mp_store_be(p, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        return p + mp_store_be(p, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        return p + mp_store_be(p, 0xd2, (uint64_t)v, 4);
    else
        return p + mp_store_be(p, 0xd3, (uint64_t)v, 8);
    return p + 1;
}

static inline uint8_t *mp_w_array(uint8_t *p, uint32_t n)
{
    if (n < 16)
        *p = (uint8_t)(0x90 | n);
    else if (n <= UINT16_MAX)
        return p + mp_store_be(p, 0xdc, n, 2);
    else
        return p + mp_store_be(p, 0xdd, n, 4);
    return p + 1;
}

static inline uint8_t *mp_w_str(uint8_t *p, const char *s, uint32_t n)
{
    if (n < 32)
        *p++ = (uint8_t)(0xa0 | n);
    else if (n <= UINT8_MAX)
        p += mp_store_be(p, 0xd9, n, 1);
    else if (n <= UINT16_MAX)
        p += mp_store_be(p, 0xda, n, 2);
    else
        p += mp_store_be(p, 0xdb, n, 4);
    mp_copy_short(p, s, n);
    return p + n;
}

static inline void mp_put_uint(struct mp_buf *b, uint64_t v)
{
    uint8_t *p = mp_buf_room(b, 9);
    if (p)
        b->len += (size_t)(mp_w_uint(p, v) - p);
}

static inline void mp_put_array(struct mp_buf *b, uint32_t n)
{
    uint8_t *p = mp_buf_room(b, 5);
    if (p)
        b->len += (size_t)(mp_w_array(p, n) - p);
}

static inline void mp_put_bool(struct mp_buf *b, bool v)
{
    uint8_t *p = mp_buf_room(b, 1);
    if (p)
        p[0] = v ? 0xc3 : 0xc2, b->len += 1;
}

static inline void mp_put_str(struct mp_buf *b, struct mp_str s)
{
    uint8_t *p = mp_buf_room(b, 5 + (size_t)s.n);
    if (p)
        b->len += (size_t)(mp_w_str(p, s.p, s.n) - p);
}

/* Packer writing into b. */
void mp_packer_init(msgpack_packer *pk, struct mp_buf *b);

/* The buffer pk writes into if mp_packer_init() made it, else NULL: lets
 * encoders use the direct writers above behind the packer interface. */
struct mp_buf *mp_packer_buf(const msgpack_packer *pk);
void mp_pack_str(msgpack_packer *pk, struct mp_str s);
void mp_pack_cstr(msgpack_packer *pk, const char *s);

/* Like mp_check() for the first value in data[0..len): *used receives its
 * length; bytes after it are not looked at. */
int mp_scan(const void *data, size_t len, size_t *used);

/* Validates that data[0..len) holds exactly one well-formed msgpack value
 * within the limits above. Returns 0 or VC_EMALFORMED. */
int mp_check(const void *data, size_t len);

/* mp_check() then unpack into zone. *out borrows strings from data, so data
 * must outlive the objects. Returns 0 or VC_EMALFORMED / VC_ENOMEM. */
int mp_decode(const void *data, size_t len, msgpack_zone *zone,
              msgpack_object *out);

/* The unpack half of mp_decode(), for data[0..len) that mp_check() (or
 * mp_scan() with *used == len) already accepted: callers that scanned
 * once need not scan again. Same returns as mp_decode(). */
int mp_unpack_checked(const void *data, size_t len, msgpack_zone *zone,
                      msgpack_object *out);

/* Schema helpers: each returns 0 or VC_EMALFORMED. Inline: a decoded
 * command calls a dozen of them. */
static inline int mp_get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return VC_EMALFORMED;
    *v = o->via.u64;
    return 0;
}

static inline int mp_get_uint(const msgpack_object *o, uint64_t max,
                              uint64_t *v)
{
    if (mp_get_u64(o, v) != 0 || *v > max)
        return VC_EMALFORMED;
    return 0;
}

static inline int mp_get_bool(const msgpack_object *o, bool *v)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return VC_EMALFORMED;
    *v = o->via.boolean;
    return 0;
}

static inline int mp_get_str(const msgpack_object *o, uint32_t max,
                             struct mp_str *s)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return VC_EMALFORMED;
    s->p = o->via.str.ptr;
    s->n = o->via.str.size;
    return 0;
}

/* Array with min..max elements; *items borrowed from o. */
static inline int mp_get_array(const msgpack_object *o, uint32_t min,
                               uint32_t max, const msgpack_object **items,
                               uint32_t *n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < min ||
        o->via.array.size > max)
        return VC_EMALFORMED;
    *items = o->via.array.ptr;
    *n = o->via.array.size;
    return 0;
}

#endif
