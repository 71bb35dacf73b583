/* proto/mp: the bounded pre-scan (mp_check), mp_decode and the schema
 * helpers. Every input is copied into a buffer of exactly its length so
 * ASan sees any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "proto/mp.h"

struct fx {
    struct mp_buf buf;
    msgpack_packer pk;
    msgpack_zone zone;
    void *copy; /* exact-size copy of the input under test */
    struct rng rng;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || !msgpack_zone_init(&x->zone, 4096))
        return -1;
    mp_buf_init(&x->buf);
    mp_packer_init(&x->pk, &x->buf);
    x->rng.s = 0x3a9c;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    mp_buf_close(&x->buf);
    msgpack_zone_destroy(&x->zone);
    free(x->copy);
    free(x);
    return 0;
}

static const void *exact(struct fx *x, const void *data, size_t len)
{
    free(x->copy);
    x->copy = dup_exact(data, len);
    return x->copy;
}

static int check(struct fx *x, const void *data, size_t len)
{
    return mp_check(exact(x, data, len), len);
}

static int decode(struct fx *x, const void *data, size_t len)
{
    msgpack_object o;
    msgpack_zone_clear(&x->zone);
    return mp_decode(exact(x, data, len), len, &x->zone, &o);
}

#define CHECK_BYTES(x, want, ...)                                        \
    do {                                                                 \
        static const uint8_t b_[] = {__VA_ARGS__};                       \
        int rv_ = check((x), b_, sizeof b_);                             \
        if (rv_ != (want))                                               \
            fail_msg("mp_check of %zu bytes starting %02x: %d, want %d", \
                     sizeof b_, b_[0], rv_, (want));                     \
        if ((want) != 0)                                                 \
            assert_int_equal(decode((x), b_, sizeof b_), (want));        \
    } while (0)

/* Packs a random value at nesting level depth (0 = top). Containers stop
 * at MP_MAX_DEPTH levels. */
static void pack_random(struct fx *x, int depth)
{
    static char blob[70000];
    msgpack_packer *pk = &x->pk;
    unsigned kind = rng_below(&x->rng, depth < MP_MAX_DEPTH ? 12 : 9);
    uint64_t v = rng_next(&x->rng);
    switch (kind) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: rng_pct(&x->rng, 50) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 2: msgpack_pack_uint64(pk, v >> rng_below(&x->rng, 64)); break;
    case 3: msgpack_pack_int64(pk, -(int64_t)(v >> (1 + rng_below(&x->rng, 63)))); break;
    case 4: msgpack_pack_double(pk, (double)v / 3.0); break;
    case 5: msgpack_pack_float(pk, (float)v); break;
    case 6:
    case 7: {
        static const uint32_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
        uint32_t n = lens[rng_below(&x->rng, 8)];
        if (n > 300 && rng_pct(&x->rng, 90))
            n = rng_below(&x->rng, 40);
        memset(blob, 'a' + (int)(v % 26), n);
        if (kind == 6) {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, blob, n);
        } else {
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, blob, n);
        }
        break;
    }
    case 8: msgpack_pack_array(pk, 0); break;
    case 9:
    case 10: {
        uint32_t n = rng_below(&x->rng, depth < 2 ? 20 : 4);
        if (rng_pct(&x->rng, 3))
            n = 16 + rng_below(&x->rng, 3); /* fixarray / array16 edge */
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            pack_random(x, depth + 1);
        break;
    }
    default: {
        uint32_t n = rng_below(&x->rng, 5);
        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < 2 * n; i++)
            pack_random(x, depth + 1);
        break;
    }
    }
}

/* Everything msgpack-c packs within the limits passes; every strict
 * prefix and every value with a byte appended does not. */
static void accepts_packer_output_rejects_prefixes(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 300; i++) {
        mp_buf_reset(&x->buf);
        pack_random(x, 0);
        assert_false(x->buf.oom);
        size_t len = x->buf.len;
        char *data = malloc(len + 1);
        assert_non_null(data);
        memcpy(data, x->buf.data, len);
        if (check(x, data, len) != 0 || decode(x, data, len) != 0) {
            fail_msg("valid value %d of %zu bytes rejected", i, len);
        }
        size_t step = len > 4096 ? len / 512 : 1;
        for (size_t p = 0; p < len; p += step)
            if (check(x, data, p) != VC_EMALFORMED) {
                fail_msg("prefix of %zu of %zu bytes accepted", p, len);
            }
        if (check(x, data, len - 1) != VC_EMALFORMED) {
            fail_msg("prefix of %zu of %zu bytes accepted", len - 1, len);
        }
        data[len] = (char)0xc0; /* a trailing nil */
        int trailing = check(x, data, len + 1);
        free(data);
        assert_int_equal(trailing, VC_EMALFORMED);
    }
}

/* Declared sizes larger than the bytes left. */
static void rejects_oversized_sizes(void **state)
{
    struct fx *x = *state;
    CHECK_BYTES(x, VC_EMALFORMED, 0xdd, 0xff, 0x00, 0x00, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdd, 0x00, 0x00, 0x00, 0x02, 0xc0);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdc, 0xff, 0xff, 0x01, 0x02);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdf, 0x00, 0x00, 0x00, 0x02, 1, 2, 3);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdf, 0x80, 0x00, 0x00, 0x00, 1, 2);
    CHECK_BYTES(x, VC_EMALFORMED, 0xde, 0x00, 0x01, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0x81, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0x92, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdb, 0x00, 0x00, 0x00, 0x04, 'a', 'b', 'c');
    CHECK_BYTES(x, VC_EMALFORMED, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a');
    CHECK_BYTES(x, VC_EMALFORMED, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc6, 0x00, 0x00, 0x00, 0x02, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xda, 0x01, 0x00, 'a');
    CHECK_BYTES(x, VC_EMALFORMED, 0xc5, 0x00, 0x03, 1, 2);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd9, 0x05, 'a', 'b');
    CHECK_BYTES(x, VC_EMALFORMED, 0xc4, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0xa5, 'a', 'b');
    /* Headers cut inside their length bytes. */
    CHECK_BYTES(x, VC_EMALFORMED, 0xdb, 0x00, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdd, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xdf);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd9);
    CHECK_BYTES(x, VC_EMALFORMED, 0xcf, 1, 2, 3, 4, 5, 6, 7);
    CHECK_BYTES(x, VC_EMALFORMED, 0xcb, 1, 2, 3);
    CHECK_BYTES(x, VC_EMALFORMED, 0xcd, 1);
    /* Exactly the bytes left is fine. */
    CHECK_BYTES(x, 0, 0xdb, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c');
    CHECK_BYTES(x, 0, 0xc6, 0x00, 0x00, 0x00, 0x01, 0x00);
    CHECK_BYTES(x, 0, 0xdd, 0x00, 0x00, 0x00, 0x02, 0xc0, 0xc3);
    CHECK_BYTES(x, 0, 0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02);
    CHECK_BYTES(x, 0, 0xdd, 0x00, 0x00, 0x00, 0x00);
    CHECK_BYTES(x, 0, 0xdb, 0x00, 0x00, 0x00, 0x00);
}

static void rejects_empty_and_trailing(void **state)
{
    struct fx *x = *state;
    assert_int_equal(check(x, "", 0), VC_EMALFORMED);
    assert_int_equal(decode(x, "", 0), VC_EMALFORMED);
    CHECK_BYTES(x, VC_EMALFORMED, 0x01, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0x90, 0x90);
    CHECK_BYTES(x, 0, 0x91, 0x90);
    CHECK_BYTES(x, 0, 0x01);
    CHECK_BYTES(x, 0, 0xc0);
}

static void rejects_ext_types(void **state)
{
    struct fx *x = *state;
    CHECK_BYTES(x, VC_EMALFORMED, 0xd4, 0x01, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd5, 0x01, 0x00, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd6, 0x01, 0, 0, 0, 0);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc7, 0x01, 0x01, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc8, 0x00, 0x01, 0x01, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc7, 0x00, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0xd6, 0xff, 0x5e, 0x00, 0x00, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0xc1); /* never used */
    CHECK_BYTES(x, VC_EMALFORMED, 0x92, 0x01, 0xd4, 0x01, 0x00);
    CHECK_BYTES(x, VC_EMALFORMED, 0x81, 0xd4, 0x01, 0x00, 0x01);
    CHECK_BYTES(x, VC_EMALFORMED, 0x91, 0x91, 0xc1);
}

/* depth arrays around one integer: [[...[1]...]]. */
static size_t nest(uint8_t *b, int depth, uint8_t container)
{
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        b[n++] = container;
        if (container == 0x81)
            b[n++] = 0x00; /* key */
    }
    b[n++] = 0x01;
    return n;
}

static void rejects_deep_nesting(void **state)
{
    struct fx *x = *state;
    uint8_t b[64];
    static const uint8_t kinds[] = {0x91, 0x81};
    for (int k = 0; k < 2; k++) {
        size_t n = nest(b, MP_MAX_DEPTH, kinds[k]);
        assert_int_equal(check(x, b, n), 0);
        assert_int_equal(decode(x, b, n), 0);
        n = nest(b, MP_MAX_DEPTH + 1, kinds[k]);
        assert_int_equal(check(x, b, n), VC_EMALFORMED);
        assert_int_equal(decode(x, b, n), VC_EMALFORMED);
    }
    /* Empty containers nest one level further without children. */
    memset(b, 0x91, MP_MAX_DEPTH);
    b[MP_MAX_DEPTH] = 0x90;
    assert_int_equal(check(x, b, MP_MAX_DEPTH + 1), 0);

    /* A million levels: rejected without recursion. */
    size_t big = 1000000;
    uint8_t *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, 0x91, big - 1);
    deep[big - 1] = 0x01;
    int rv = check(x, deep, big);
    memset(deep, 0xdc, big); /* array16 of 0xdcdc, nested */
    int rv2 = check(x, deep, big);
    free(deep);
    assert_int_equal(rv, VC_EMALFORMED);
    assert_int_equal(rv2, VC_EMALFORMED);
}

/* Container depth as mp_check counts it: scalars and empty containers 0,
 * a non-empty container 1 + its deepest child. -1 for ext types. */
static int obj_depth(const msgpack_object *o)
{
    int d = 0, c;
    switch (o->type) {
    case MSGPACK_OBJECT_EXT:
        return -1;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if ((c = obj_depth(&o->via.array.ptr[i])) < 0)
                return -1;
            d = c > d ? c : d;
        }
        return o->via.array.size ? d + 1 : 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            int k = obj_depth(&o->via.map.ptr[i].key);
            int v = obj_depth(&o->via.map.ptr[i].val);
            if (k < 0 || v < 0)
                return -1;
            d = k > d ? k : d;
            d = v > d ? v : d;
        }
        return o->via.map.size ? d + 1 : 0;
    default:
        return 0;
    }
}

/* A byte from a mix of header bytes and plain data. */
static uint8_t random_byte(struct fx *x)
{
    static const uint8_t hdr[] = {
        0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa3, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
        0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5,
        0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0,
        0xff, 0x01, 0x02};
    return rng_pct(&x->rng, 50) ? hdr[rng_below(&x->rng, sizeof hdr)]
                                : (uint8_t)rng_next(&x->rng);
}

/* Random buffers: mp_check never crashes, agrees with mp_decode, and
 * accepts exactly what msgpack-c reads completely without ext types or
 * nesting beyond the limit. msgpack-c allocates a declared array or map
 * before reading it, so array32/map32 headers (0xdd, 0xdf), which could
 * ask it for gigabytes, are left out of this comparison; the tests above
 * cover them. */
static void random_buffers_match_msgpack(void **state)
{
    struct fx *x = *state;
    uint8_t b[48];
    unsigned accepted = 0;
    for (int i = 0; i < 60000; i++) {
        size_t len = rng_below(&x->rng, i < 30000 ? 8 : sizeof b);
        for (size_t j = 0; j < len; j++)
            do
                b[j] = random_byte(x);
            while (b[j] == 0xdd || b[j] == 0xdf);
        int rv = check(x, b, len);
        assert_true(rv == 0 || rv == VC_EMALFORMED);

        msgpack_object o;
        size_t off = 0;
        msgpack_zone_clear(&x->zone);
        msgpack_unpack_return u =
            msgpack_unpack((const char *)x->copy, len, &off, &x->zone, &o);
        bool want = u == MSGPACK_UNPACK_SUCCESS && off == len && len > 0 &&
                    obj_depth(&o) >= 0 && obj_depth(&o) <= MP_MAX_DEPTH;
        if (want != (rv == 0))
            fail_msg("buffer %d (%zu bytes, first %02x): mp_check %d, "
                     "msgpack-c says %s",
                     i, len, len ? b[0] : 0, rv, want ? "valid" : "invalid");
        assert_int_equal(decode(x, b, len), rv);
        accepted += rv == 0;
    }
    assert_true(accepted > 1000); /* the comparison saw both outcomes */
}

/* Bit flips and byte overwrites of valid encodings. */
static void mutations_of_valid_values(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 3000; i++) {
        mp_buf_reset(&x->buf);
        pack_random(x, 0);
        if (x->buf.len > 4096)
            continue;
        uint8_t *b = (uint8_t *)x->buf.data;
        size_t len = x->buf.len;
        for (int m = 0, nm = 1 + (int)rng_below(&x->rng, 3); m < nm; m++) {
            size_t at = rng_below(&x->rng, (uint32_t)len);
            if (rng_pct(&x->rng, 50))
                b[at] ^= (uint8_t)(1u << rng_below(&x->rng, 8));
            else
                b[at] = random_byte(x);
        }
        int rv = check(x, b, len);
        assert_true(rv == 0 || rv == VC_EMALFORMED);
        assert_int_equal(decode(x, b, len), rv);
    }
}

static void schema_helpers(void **state)
{
    struct fx *x = *state;
    msgpack_object o, *items;
    const msgpack_object *it;
    uint64_t v;
    bool bv;
    struct mp_str s;
    uint32_t n;
    char small[4];

    mp_buf_reset(&x->buf);
    msgpack_pack_array(&x->pk, 5);
    msgpack_pack_uint64(&x->pk, 4094);
    msgpack_pack_int64(&x->pk, -1);
    msgpack_pack_true(&x->pk);
    mp_pack_cstr(&x->pk, "abcd");
    msgpack_pack_nil(&x->pk);
    assert_int_equal(decode(x, x->buf.data, x->buf.len), 0);
    assert_int_equal(mp_decode(x->copy, x->buf.len, &x->zone, &o), 0);
    items = o.via.array.ptr;

    assert_int_equal(mp_get_array(&o, 5, 5, &it, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(mp_get_array(&o, 6, 9, &it, &n), VC_EMALFORMED);
    assert_int_equal(mp_get_array(&o, 0, 4, &it, &n), VC_EMALFORMED);
    assert_int_equal(mp_get_array(&items[0], 0, 9, &it, &n), VC_EMALFORMED);
    assert_int_equal(mp_get_uint(&items[0], 4094, &v), 0);
    assert_int_equal(v, 4094);
    assert_int_equal(mp_get_uint(&items[0], 4093, &v), VC_EMALFORMED);
    assert_int_equal(mp_get_u64(&items[1], &v), VC_EMALFORMED);
    assert_int_equal(mp_get_u64(&items[2], &v), VC_EMALFORMED);
    assert_int_equal(mp_get_bool(&items[2], &bv), 0);
    assert_true(bv);
    assert_int_equal(mp_get_bool(&items[4], &bv), VC_EMALFORMED);
    assert_int_equal(mp_get_str(&items[3], 4, &s), 0);
    assert_true(mp_str_eq(s, "abcd"));
    assert_false(mp_str_eq(s, "abc"));
    assert_false(mp_str_eq(s, "abcde"));
    assert_int_equal(mp_get_str(&items[3], 3, &s), VC_EMALFORMED);
    assert_int_equal(mp_get_str(&items[0], 9, &s), VC_EMALFORMED);

    s = mp_cstr("abcd");
    assert_int_equal(mp_str_copy(s, small, sizeof small), VC_ETOOBIG);
    assert_string_equal(small, "");
    s = mp_cstr("abc");
    assert_int_equal(mp_str_copy(s, small, sizeof small), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(mp_cstr(NULL).n, 0);

    /* mp_buf_take hands over the bytes and leaves an empty buffer. */
    size_t len;
    char *taken = mp_buf_take(&x->buf, &len);
    assert_non_null(taken);
    assert_true(len > 0);
    assert_null(x->buf.data);
    assert_int_equal(x->buf.len, 0);
    free(taken);
    mp_packer_init(&x->pk, &x->buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(accepts_packer_output_rejects_prefixes),
        T(rejects_oversized_sizes),
        T(rejects_empty_and_trailing),
        T(rejects_ext_types),
        T(rejects_deep_nesting),
        T(random_buffers_match_msgpack),
        T(mutations_of_valid_values),
        T(schema_helpers),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
