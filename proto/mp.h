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

/* Packer writing into b. */
void mp_packer_init(msgpack_packer *pk, struct mp_buf *b);
void mp_pack_str(msgpack_packer *pk, struct mp_str s);
void mp_pack_cstr(msgpack_packer *pk, const char *s);

/* Validates that data[0..len) holds exactly one well-formed msgpack value
 * within the limits above. Returns 0 or VC_EMALFORMED. */
int mp_check(const void *data, size_t len);

/* mp_check() then unpack into zone. *out borrows strings from data, so data
 * must outlive the objects. Returns 0 or VC_EMALFORMED / VC_ENOMEM. */
int mp_decode(const void *data, size_t len, msgpack_zone *zone,
              msgpack_object *out);

/* Schema helpers: each returns 0 or VC_EMALFORMED. */
int mp_get_u64(const msgpack_object *o, uint64_t *v);
int mp_get_uint(const msgpack_object *o, uint64_t max, uint64_t *v);
int mp_get_bool(const msgpack_object *o, bool *v);
int mp_get_str(const msgpack_object *o, uint32_t max, struct mp_str *s);
/* Array with min..max elements; *items borrowed from o. */
int mp_get_array(const msgpack_object *o, uint32_t min, uint32_t max,
                 const msgpack_object **items, uint32_t *n);

#endif
