/* agent/channel: the peer handshake and the framed secretstream, driven
 * byte buffer to byte buffer (no sockets): both directions, refused keys,
 * and every way a frame can be replayed, altered, reordered, cut or
 * oversized. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "agent/channel.h"
#include "agent/keys.h"

#define ADDR "127.0.0.1:7700"

struct fx {
    struct keys_pair a, b, c; /* a dials b; c is known to nobody */
    struct keys_pair impostor; /* b's public key, c's secret key */
    struct channel i, r;
    struct channel_buf i_wire, r_wire; /* bytes each side sent */
    struct channel_buf i_plain, r_plain; /* plaintext each side received */
    const char *i_cluster, *r_cluster;
    const struct keys_pair *i_self, *r_self;
    int i_err, r_err;
    enum channel_purpose i_purpose; /* what i asks for */
    bool r_raft_only;               /* the responder refuses forwarding */
    enum channel_purpose r_asked;   /* the purpose allow() was asked about */
};

/* Responder's allow list: only a, named "brno" (for raft only if
 * r_raft_only). */
static int allow_a(void *data, const uint8_t *pk,
                   enum channel_purpose purpose, char *name, size_t cap)
{
    struct fx *x = data;
    x->r_asked = purpose;
    if (memcmp(pk, x->a.pk, KEYS_PUBLIC_BYTES) != 0)
        return -1;
    if (x->r_raft_only && purpose != CHANNEL_RAFT)
        return -1;
    snprintf(name, cap, "brno");
    return 0;
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x || keys_generate(&x->a) || keys_generate(&x->b) ||
        keys_generate(&x->c))
        return -1;
    memcpy(x->impostor.pk, x->b.pk, sizeof x->impostor.pk);
    memcpy(x->impostor.sk, x->c.sk, sizeof x->impostor.sk);
    x->i_cluster = x->r_cluster = "virtcloud";
    x->i_self = &x->a;
    x->r_self = &x->b;
    *state = x;
    return 0;
}

static void reset_bufs(struct fx *x)
{
    channel_buf_free(&x->i_wire);
    channel_buf_free(&x->r_wire);
    channel_buf_free(&x->i_plain);
    channel_buf_free(&x->r_plain);
}

static int teardown(void **state)
{
    struct fx *x = *state;
    channel_close(&x->i);
    channel_close(&x->r);
    reset_bufs(x);
    keys_wipe(&x->a);
    free(x);
    return 0;
}

/* Fresh channels with the fixture's settings; i has sent msg1. */
static void init_pair(struct fx *x)
{
    struct channel_config ic = {
        .initiator = true, .self = x->i_self, .cluster_id = x->i_cluster,
        .address = ADDR, .expect = x->b.pk, .purpose = x->i_purpose};
    struct channel_config rc = {
        .self = x->r_self, .cluster_id = x->r_cluster, .allow = allow_a,
        .allow_data = x};
    channel_close(&x->i);
    channel_close(&x->r);
    reset_bufs(x);
    x->i_err = x->r_err = 0;
    assert_int_equal(channel_init(&x->i, &ic), 0);
    assert_int_equal(channel_init(&x->r, &rc), 0);
    assert_int_equal(channel_start(&x->i, &x->i_wire), 0);
    assert_int_equal(x->i_wire.len, CHANNEL_MSG1_BYTES);
}

/* Delivers everything each side has sent to the other until neither has
 * anything new; records the first error of each. */
static void exchange(struct fx *x)
{
    size_t i_sent = 0, r_sent = 0;
    while (i_sent < x->i_wire.len || r_sent < x->r_wire.len) {
        if (i_sent < x->i_wire.len) {
            size_t n = x->i_wire.len - i_sent;
            uint8_t *copy = dup_exact(x->i_wire.base + i_sent, n);
            i_sent = x->i_wire.len;
            if (!x->r_err)
                x->r_err = channel_recv(&x->r, copy, n, &x->r_wire,
                                        &x->r_plain);
            free(copy);
        }
        if (r_sent < x->r_wire.len) {
            size_t n = x->r_wire.len - r_sent;
            uint8_t *copy = dup_exact(x->r_wire.base + r_sent, n);
            r_sent = x->r_wire.len;
            if (!x->i_err)
                x->i_err = channel_recv(&x->i, copy, n, &x->i_wire,
                                        &x->i_plain);
            free(copy);
        }
    }
    x->i_wire.len = x->r_wire.len = 0;
}

static void handshake(struct fx *x)
{
    init_pair(x);
    exchange(x);
    assert_int_equal(x->i_err, 0);
    assert_int_equal(x->r_err, 0);
    assert_true(channel_established(&x->i));
    assert_true(channel_established(&x->r));
}

/* Seals text on i and returns the wire bytes (caller frees). */
static uint8_t *seal_i(struct fx *x, const char *text, size_t *len)
{
    x->i_wire.len = 0;
    assert_int_equal(channel_send(&x->i, text, strlen(text), &x->i_wire), 0);
    *len = x->i_wire.len;
    uint8_t *f = dup_exact(x->i_wire.base, *len);
    x->i_wire.len = 0;
    return f;
}

static int feed_r(struct fx *x, const uint8_t *p, size_t n)
{
    return channel_recv(&x->r, p, n, &x->r_wire, &x->r_plain);
}

/* --- handshake ------------------------------------------------------------ */

static void test_handshake_both_ways(void **state)
{
    struct fx *x = *state;
    handshake(x);
    assert_string_equal(x->r.peer_name, "brno");
    assert_string_equal(x->r.peer_addr, ADDR);
    assert_memory_equal(x->r.peer_pk, x->a.pk, KEYS_PUBLIC_BYTES);
    assert_memory_equal(x->i.peer_pk, x->b.pk, KEYS_PUBLIC_BYTES);

    assert_int_equal(channel_send(&x->i, "hello", 5, &x->i_wire), 0);
    assert_int_equal(channel_send(&x->r, "world!", 6, &x->r_wire), 0);
    exchange(x);
    assert_int_equal(x->i_err, 0);
    assert_int_equal(x->r_err, 0);
    assert_int_equal(x->r_plain.len, 5);
    assert_memory_equal(x->r_plain.base, "hello", 5);
    assert_int_equal(x->i_plain.len, 6);
    assert_memory_equal(x->i_plain.base, "world!", 6);
}

/* Every byte delivered on its own: units assembled across calls. */
static void test_handshake_byte_by_byte(void **state)
{
    struct fx *x = *state;
    init_pair(x);
    assert_int_equal(channel_send(&x->i, "x", 1, &x->i_wire), -ENOTCONN);
    for (int round = 0; round < 3; round++) {
        struct channel_buf *from = round == 1 ? &x->r_wire : &x->i_wire;
        struct channel *to = round == 1 ? &x->i : &x->r;
        struct channel_buf *wire = round == 1 ? &x->i_wire : &x->r_wire;
        struct channel_buf *plain = round == 1 ? &x->i_plain : &x->r_plain;
        if (round == 2) /* msg3 and a frame, together */
            assert_int_equal(channel_send(&x->i, "abc", 3, &x->i_wire), 0);
        size_t n = from->len;
        uint8_t *copy = dup_exact(from->base, n);
        from->len = 0;
        for (size_t k = 0; k < n; k++)
            assert_int_equal(channel_recv(to, copy + k, 1, wire, plain), 0);
        free(copy);
    }
    assert_true(channel_established(&x->r));
    assert_int_equal(x->r_plain.len, 3);
    assert_memory_equal(x->r_plain.base, "abc", 3);
}

static void test_unknown_key(void **state)
{
    struct fx *x = *state;
    x->i_self = &x->c; /* not on the responder's list */
    init_pair(x);
    exchange(x);
    assert_int_equal(x->r_err, -EACCES);
    assert_contains(channel_error(&x->r), "unknown key vc1:");
    assert_false(channel_established(&x->r));
    assert_int_equal(x->r_plain.len, 0);
    x->i_self = &x->a;
}

static void test_wrong_key(void **state)
{
    struct fx *x = *state;
    /* The responder holds another key than the one pinned for it. */
    x->r_self = &x->c;
    init_pair(x);
    exchange(x);
    assert_int_equal(x->i_err, -EACCES);
    assert_contains(channel_error(&x->i), "pinned key");
    assert_false(channel_established(&x->i));
    /* It claims the pinned public key but cannot sign for it. */
    x->r_self = &x->impostor;
    init_pair(x);
    exchange(x);
    assert_int_equal(x->i_err, -EBADMSG);
    assert_false(channel_established(&x->i));
    /* ... nor can an initiator with a's public key and another secret. */
    struct keys_pair fake = x->c;
    memcpy(fake.pk, x->a.pk, sizeof fake.pk);
    x->r_self = &x->b;
    x->i_self = &fake;
    init_pair(x);
    exchange(x);
    assert_int_equal(x->r_err, -EBADMSG);
    assert_false(channel_established(&x->r));
    x->i_self = &x->a;
}

static void test_wrong_cluster(void **state)
{
    struct fx *x = *state;
    x->r_cluster = "other";
    init_pair(x);
    exchange(x);
    assert_int_equal(x->i_err, -EBADMSG);
    assert_contains(channel_error(&x->i), "cluster id");
    x->r_cluster = "virtcloud";
}

static void test_garbage_and_version(void **state)
{
    struct fx *x = *state;
    init_pair(x);
    /* Rejected from the first wrong byte, before a whole message. */
    assert_int_equal(feed_r(x, (const uint8_t *)"GET / HTTP/1.1\r\n", 16),
                     -EPROTO);
    assert_contains(channel_error(&x->r), "not a VirtCloud peer");
    init_pair(x);
    assert_int_equal(feed_r(x, (const uint8_t *)"V", 1), 0);
    assert_int_equal(feed_r(x, (const uint8_t *)"X", 1), -EPROTO);
    init_pair(x);
    x->i_wire.base[4] = CHANNEL_VERSION + 1;
    assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len),
                     -EPROTONOSUPPORT);
    init_pair(x);
    x->i_wire.base[CHANNEL_MSG1_BYTES - 1] = 'x'; /* address not ended */
    assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len), -EPROTO);
    /* After a failure, the same error forever. */
    assert_int_equal(feed_r(x, x->i_wire.base, 1), -EPROTO);
}

static void test_truncated_handshake(void **state)
{
    struct fx *x = *state;
    init_pair(x);
    assert_int_equal(feed_r(x, x->i_wire.base, CHANNEL_MSG1_BYTES - 1), 0);
    assert_false(channel_established(&x->r));
    assert_int_equal(x->r_wire.len, 0); /* nothing answered yet */
    assert_int_equal(channel_eof(&x->r), -EPIPE);
    assert_contains(channel_error(&x->r), "during the handshake");
    /* msg3 cut short. */
    init_pair(x);
    assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len), 0);
    assert_int_equal(channel_recv(&x->i, x->r_wire.base, x->r_wire.len,
                                  &x->i_wire, &x->i_plain), 0);
    x->i_wire.len -= CHANNEL_MSG1_BYTES; /* keep msg3 only */
    memmove(x->i_wire.base, x->i_wire.base + CHANNEL_MSG1_BYTES,
            x->i_wire.len);
    assert_int_equal(x->i_wire.len, CHANNEL_MSG3_BYTES);
    assert_int_equal(feed_r(x, x->i_wire.base, 40), 0);
    assert_false(channel_established(&x->r));
    assert_int_equal(channel_eof(&x->r), -EPIPE);
}

/* A recorded msg1 and msg3 of one session do not open another. */
static void test_replayed_handshake(void **state)
{
    struct fx *x = *state;
    uint8_t msg1[CHANNEL_MSG1_BYTES], msg3[CHANNEL_MSG3_BYTES];
    init_pair(x);
    memcpy(msg1, x->i_wire.base, sizeof msg1);
    assert_int_equal(feed_r(x, msg1, sizeof msg1), 0);
    x->i_wire.len = 0;
    assert_int_equal(channel_recv(&x->i, x->r_wire.base, x->r_wire.len,
                                  &x->i_wire, &x->i_plain), 0);
    memcpy(msg3, x->i_wire.base, sizeof msg3);
    init_pair(x); /* a new responder, new ephemeral key */
    assert_int_equal(feed_r(x, msg1, sizeof msg1), 0);
    assert_int_equal(feed_r(x, msg3, sizeof msg3), -EBADMSG);
    assert_false(channel_established(&x->r));
}

/* --- purpose ---------------------------------------------------------- */

/* Both purposes go through, the responder learns which one was asked (and
 * allow() is asked about it); its msg2 keeps the reserved bytes zero. */
static void test_purpose_accepted(void **state)
{
    struct fx *x = *state;
    enum channel_purpose ps[] = {CHANNEL_RAFT, CHANNEL_FORWARD};
    for (unsigned k = 0; k < 2; k++) {
        x->i_purpose = ps[k];
        init_pair(x);
        assert_int_equal(x->i_wire.base[4], CHANNEL_VERSION);
        assert_int_equal(x->i_wire.base[5], ps[k]);
        assert_int_equal(x->i_wire.base[6] | x->i_wire.base[7], 0);
        assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len), 0);
        assert_int_equal(x->r_asked, ps[k]);
        assert_int_equal(x->r_wire.base[5] | x->r_wire.base[6] |
                         x->r_wire.base[7], 0);
        x->i_wire.len = 0;
        exchange(x);
        assert_int_equal(x->i_err, 0);
        assert_int_equal(x->r_err, 0);
        assert_true(channel_established(&x->r));
        assert_int_equal(x->r.purpose, ps[k]);
        assert_int_equal(x->i.purpose, ps[k]);
        assert_int_equal(channel_send(&x->i, "req", 3, &x->i_wire), 0);
        exchange(x);
        assert_int_equal(x->r_plain.len, 3);
    }
    x->i_purpose = CHANNEL_RAFT;
}

/* An unknown purpose is refused from its byte on, before the key is even
 * looked at; an initiator cannot be configured with one. */
static void test_purpose_unknown(void **state)
{
    struct fx *x = *state;
    for (unsigned v = CHANNEL_PURPOSES; v < 256; v += 37) {
        init_pair(x);
        x->r_asked = (enum channel_purpose)99;
        x->i_wire.base[5] = (uint8_t)v;
        assert_int_equal(feed_r(x, x->i_wire.base, 6), -EPROTO);
        assert_contains(channel_error(&x->r), "unknown channel purpose");
        assert_int_equal((int)x->r_asked, 99); /* allow() never asked */
        assert_int_equal(x->r_wire.len, 0);
        assert_false(channel_established(&x->r));
    }
    /* The other reserved bytes still must be zero. */
    init_pair(x);
    x->i_wire.base[6] = 1;
    assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len), -EPROTO);
    assert_contains(channel_error(&x->r), "reserved");
    /* A purpose byte in msg2 is refused by the initiator. */
    init_pair(x);
    assert_int_equal(feed_r(x, x->i_wire.base, x->i_wire.len), 0);
    x->r_wire.base[5] = CHANNEL_FORWARD;
    assert_int_equal(channel_recv(&x->i, x->r_wire.base, x->r_wire.len,
                                  &x->i_wire, &x->i_plain), -EPROTO);
    struct channel c;
    struct channel_config cfg = {.initiator = true, .self = &x->a,
                                 .cluster_id = "virtcloud", .address = ADDR,
                                 .expect = x->b.pk,
                                 .purpose = CHANNEL_PURPOSES};
    assert_int_equal(channel_init(&c, &cfg), -EINVAL);
    channel_close(&c);
}

/* The responder may refuse a key for one purpose only; and a man in the
 * middle who turns a raft msg1 into a forward one (or back) breaks the
 * transcript: the initiator refuses the responder's signature. */
static void test_purpose_refused_and_signed(void **state)
{
    struct fx *x = *state;
    x->r_raft_only = true;
    x->i_purpose = CHANNEL_FORWARD;
    init_pair(x);
    exchange(x);
    assert_int_equal(x->r_err, -EACCES);
    assert_contains(channel_error(&x->r), "for forwarding");
    assert_false(channel_established(&x->r));
    x->i_purpose = CHANNEL_RAFT;
    handshake(x); /* the same key for raft: fine */
    x->r_raft_only = false;
    for (unsigned k = 0; k < 2; k++) {
        x->i_purpose = k ? CHANNEL_FORWARD : CHANNEL_RAFT;
        init_pair(x);
        x->i_wire.base[5] ^= 1; /* raft <-> forward in transit */
        exchange(x);
        assert_int_equal(x->r_err, 0); /* a valid purpose for r ... */
        assert_int_equal(x->i_err, -EBADMSG); /* ... not the one i signed */
        assert_contains(channel_error(&x->i), "does not verify");
        assert_false(channel_established(&x->i));
        assert_false(channel_established(&x->r));
    }
    x->i_purpose = CHANNEL_RAFT;
}

/* --- frames ----------------------------------------------------------- */

static void test_replayed_frame(void **state)
{
    struct fx *x = *state;
    size_t n;
    handshake(x);
    uint8_t *f = seal_i(x, "vote for me", &n);
    assert_int_equal(feed_r(x, f, n), 0);
    assert_int_equal(x->r_plain.len, 11);
    assert_int_equal(feed_r(x, f, n), -EBADMSG);
    assert_contains(channel_error(&x->r), "frame 2 fails authentication");
    assert_int_equal(x->r_plain.len, 11);
    free(f);
}

/* Every single bit flipped in a frame: never delivered, always refused. */
static void test_flipped_bit(void **state)
{
    struct fx *x = *state;
    size_t n;
    handshake(x);
    uint8_t *f = seal_i(x, "append entries 42", &n);
    for (size_t bit = 0; bit < n * 8; bit++) {
        handshake(x);
        uint8_t *g = seal_i(x, "append entries 42", &n);
        g[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rv = feed_r(x, g, n);
        if (rv == 0) /* a longer length: waiting for bytes that never come */
            rv = channel_eof(&x->r);
        assert_true(rv == -EBADMSG || rv == -EMSGSIZE || rv == -EPIPE);
        assert_int_equal(x->r_plain.len, 0);
        free(g);
    }
    free(f);
}

static void test_reordered_frames(void **state)
{
    struct fx *x = *state;
    size_t n1, n2;
    handshake(x);
    uint8_t *f1 = seal_i(x, "first", &n1);
    uint8_t *f2 = seal_i(x, "second", &n2);
    assert_int_equal(feed_r(x, f2, n2), -EBADMSG);
    assert_int_equal(x->r_plain.len, 0);
    /* In order, on a fresh pair, both arrive. */
    handshake(x);
    free(f1);
    free(f2);
    f1 = seal_i(x, "first", &n1);
    f2 = seal_i(x, "second", &n2);
    assert_int_equal(feed_r(x, f1, n1), 0);
    assert_int_equal(feed_r(x, f2, n2), 0);
    assert_int_equal(x->r_plain.len, 11);
    assert_memory_equal(x->r_plain.base, "firstsecond", 11);
    free(f1);
    free(f2);
}

/* A dropped frame: the next one does not authenticate. */
static void test_dropped_frame(void **state)
{
    struct fx *x = *state;
    size_t n1, n2;
    handshake(x);
    uint8_t *f1 = seal_i(x, "first", &n1);
    uint8_t *f2 = seal_i(x, "second", &n2);
    (void)f1;
    assert_int_equal(feed_r(x, f2, n2), -EBADMSG);
    free(f1);
    free(f2);
}

static void test_oversize_length(void **state)
{
    struct fx *x = *state;
    uint8_t big[4] = {0x00, 0x20, 0x00, 0x00}; /* 2 MiB */
    uint8_t tiny[4] = {0, 0, 0, 3};            /* shorter than a MAC */
    handshake(x);
    /* Refused on the 4 length bytes alone: nothing is allocated for it. */
    assert_int_equal(feed_r(x, big, 4), -EMSGSIZE);
    assert_contains(channel_error(&x->r), "limit 1048576");
    handshake(x);
    assert_int_equal(feed_r(x, tiny, 4), -EMSGSIZE);
    /* The largest frame allowed passes; a send above it is split. */
    handshake(x);
    size_t len = CHANNEL_FRAME_MAX * 3 + 5;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t k = 0; k < len; k++)
        data[k] = (uint8_t)(k * 7);
    assert_int_equal(channel_send(&x->i, data, len, &x->i_wire), 0);
    assert_int_equal(x->i_wire.len, len + 4 * CHANNEL_FRAME_OVERHEAD);
    exchange(x);
    assert_int_equal(x->r_err, 0);
    assert_int_equal(x->r_plain.len, len);
    assert_memory_equal(x->r_plain.base, data, len);
    free(data);
}

static void test_final_tag(void **state)
{
    struct fx *x = *state;
    size_t n;
    handshake(x);
    uint8_t *f = seal_i(x, "last words", &n);
    assert_int_equal(feed_r(x, f, n), 0);
    free(f);
    assert_false(channel_peer_done(&x->r));
    assert_int_equal(channel_finish(&x->i, &x->i_wire), 0);
    assert_int_equal(channel_send(&x->i, "x", 1, &x->i_wire), -ENOTCONN);
    assert_int_equal(channel_finish(&x->i, &x->i_wire), -ENOTCONN);
    uint8_t *fin = dup_exact(x->i_wire.base, x->i_wire.len);
    size_t fin_len = x->i_wire.len;
    x->i_wire.len = 0;
    assert_int_equal(feed_r(x, fin, fin_len), 0);
    assert_true(channel_peer_done(&x->r));
    assert_int_equal(channel_eof(&x->r), 0);
    /* The other direction is still open. */
    assert_int_equal(channel_send(&x->r, "ack", 3, &x->r_wire), 0);
    /* Anything after the final frame is refused, even a replay of it. */
    assert_int_equal(feed_r(x, fin, fin_len), -EPROTO);
    assert_contains(channel_error(&x->r), "after the final frame");
    free(fin);

    /* EOF without the final frame: truncation. */
    handshake(x);
    f = seal_i(x, "cut", &n);
    assert_int_equal(feed_r(x, f, n), 0);
    assert_int_equal(channel_eof(&x->r), -EPIPE);
    assert_contains(channel_error(&x->r), "without a final frame");
    free(f);
    /* EOF in the middle of a frame. */
    handshake(x);
    f = seal_i(x, "half a frame", &n);
    assert_int_equal(feed_r(x, f, n - 3), 0);
    assert_int_equal(x->r_plain.len, 0);
    assert_int_equal(channel_eof(&x->r), -EPIPE);
    assert_contains(channel_error(&x->r), "cut short");
    free(f);
}

/* More messages than the rekey interval, both ways: TAG_REKEY handled. */
static void test_rekey(void **state)
{
    struct fx *x = *state;
    char msg[32];
    handshake(x);
    size_t expect = 0;
    for (unsigned k = 0; k < 3 * CHANNEL_REKEY_MSGS + 7; k++) {
        int len = snprintf(msg, sizeof msg, "m%u;", k);
        assert_int_equal(channel_send(&x->i, msg, (size_t)len, &x->i_wire),
                         0);
        assert_int_equal(channel_send(&x->r, msg, (size_t)len, &x->r_wire),
                         0);
        expect += (size_t)len;
        if (k % 100 == 0)
            exchange(x);
    }
    exchange(x);
    assert_int_equal(x->r_err, 0);
    assert_int_equal(x->i_err, 0);
    assert_int_equal(x->r_plain.len, expect);
    assert_int_equal(x->i_plain.len, expect);
    assert_memory_equal(x->r_plain.base, "m0;m1;m2;", 9);
}

static void test_bad_config(void **state)
{
    struct fx *x = *state;
    struct channel c;
    struct channel_config cfg = {.initiator = true, .self = &x->a,
                                 .cluster_id = "virtcloud"};
    assert_int_equal(channel_init(&c, &cfg), -EINVAL); /* no expect/addr */
    channel_close(&c);
    cfg.initiator = false;
    assert_int_equal(channel_init(&c, &cfg), -EINVAL); /* no allow */
    channel_close(&c);
    channel_close(NULL);
}

/* agent/keys: the text forms and the key files keygen writes. */
static void test_keys(void **state)
{
    struct fx *x = *state;
    char text[KEYS_PUBLIC_TEXT_MAX], err[512], dir[] = "/tmp/vckeysXXXXXX";
    char path[600], pub_path[640];
    uint8_t pk[KEYS_PUBLIC_BYTES];
    struct keys_pair back;
    struct stat st;
    keys_format_public(x->a.pk, text, sizeof text);
    assert_int_equal(strlen(text), 48);
    assert_int_equal(keys_parse_public(text, pk, err, sizeof err), 0);
    assert_memory_equal(pk, x->a.pk, sizeof pk);
    text[10] ^= 1; /* another key, or not base64 at all */
    assert_true(keys_parse_public(text, pk, err, sizeof err) != 0 ||
                memcmp(pk, x->a.pk, sizeof pk) != 0);
    assert_int_equal(keys_parse_public("vc1:", pk, err, sizeof err), -EINVAL);
    assert_int_equal(keys_parse_public("ssh-ed25519 AAAA", pk, err,
                                       sizeof err), -EINVAL);
    assert_contains(err, "ssh-ed25519");
    /* 32 zero bytes: base64 fine, not a usable Ed25519 point. */
    assert_int_equal(keys_parse_public(
        "vc1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", pk, err,
        sizeof err), -EINVAL);

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/site.key", dir);
    snprintf(pub_path, sizeof pub_path, "%s.pub", path);
    assert_int_equal(keys_write(path, &x->a, err, sizeof err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(keys_load_private(path, &back, err, sizeof err), 0);
    assert_memory_equal(back.pk, x->a.pk, sizeof back.pk);
    assert_memory_equal(back.sk, x->a.sk, sizeof back.sk);
    /* Never overwrites, and leaves the existing pair alone. */
    assert_int_equal(keys_write(path, &x->b, err, sizeof err), -EEXIST);
    assert_int_equal(keys_load_private(path, &back, err, sizeof err), 0);
    assert_memory_equal(back.pk, x->a.pk, sizeof back.pk);
    /* A private key others may read is refused. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(keys_load_private(path, &back, err, sizeof err),
                     -EACCES);
    assert_contains(err, "chmod 600");
    /* A public key file is not a private key. */
    assert_int_equal(chmod(pub_path, 0600), 0);
    assert_int_equal(keys_load_private(pub_path, &back, err, sizeof err),
                     -EINVAL);
    keys_wipe(&back);
    unlink(path);
    unlink(pub_path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_both_ways),
        cmocka_unit_test(test_handshake_byte_by_byte),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wrong_cluster),
        cmocka_unit_test(test_garbage_and_version),
        cmocka_unit_test(test_truncated_handshake),
        cmocka_unit_test(test_replayed_handshake),
        cmocka_unit_test(test_purpose_accepted),
        cmocka_unit_test(test_purpose_unknown),
        cmocka_unit_test(test_purpose_refused_and_signed),
        cmocka_unit_test(test_replayed_frame),
        cmocka_unit_test(test_flipped_bit),
        cmocka_unit_test(test_reordered_frames),
        cmocka_unit_test(test_dropped_frame),
        cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_final_tag),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
