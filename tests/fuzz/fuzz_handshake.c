/* Fuzz target: the secure peer channel (agent/channel.c), which reads
 * bytes from any host that can reach a site's raft port.
 *
 * The first input byte picks who reads the rest and in what pieces:
 *   mode 0: a responder, as a stranger's first bytes (msg1, msg3, ...):
 *           a msg1 purpose byte the channel does not know is refused at
 *           once (-EPROTO), before the key is looked at;
 *   mode 1: an initiator that sent msg1 and reads the reply (msg2, ...);
 *   mode 2: an established channel reading frames after a real handshake
 *           (length prefixes, secretstream tags, rekeys, final tag).
 * The second byte sets the piece size, so partial messages and frames
 * split anywhere are covered.
 *
 * Properties beyond "does not crash": an error is sticky and explained;
 * nothing unauthenticated comes out as plaintext (the fuzzer cannot forge
 * a signature or a Poly1305 tag, so modes 0 and 1 never establish and
 * mode 2 never yields plaintext); the receive buffer stays bounded.
 */
#include <errno.h>
#include <string.h>

#include "agent/channel.h"
#include "fuzz.h"

static struct keys_pair k_init, k_resp;

/* The initiator's key, for either purpose (the responder's own purpose
 * check is what the fuzzer exercises). */
static int allow_init_key(void *data, const uint8_t *pk,
                          enum channel_purpose purpose, char *name, size_t cap)
{
    (void)data;
    FUZZ_CHECK((unsigned)purpose < CHANNEL_PURPOSES,
               "allow asked about unknown purpose %u", (unsigned)purpose);
    if (memcmp(pk, k_init.pk, KEYS_PUBLIC_BYTES) != 0)
        return -EACCES;
    snprintf(name, cap, "site-i");
    return 0;
}

static void setup_keys(void)
{
    static int done;
    uint8_t seed[crypto_sign_SEEDBYTES];
    if (done)
        return;
    FUZZ_CHECK(keys_init() == 0, "libsodium");
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(k_init.pk, k_init.sk, seed);
    memset(seed, 2, sizeof seed);
    crypto_sign_seed_keypair(k_resp.pk, k_resp.sk, seed);
    done = 1;
}

static void config(struct channel_config *cfg, bool initiator)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->initiator = initiator;
    cfg->cluster_id = "fuzz";
    if (initiator) {
        cfg->self = &k_init;
        cfg->address = "127.0.0.1:7001";
        cfg->expect = k_resp.pk;
    } else {
        cfg->self = &k_resp;
        cfg->allow = allow_init_key;
    }
}

/* Moves every byte of from->wire into to, as TCP would. */
static int pump(struct channel *to, struct channel_buf *wire,
                struct channel_buf *reply, struct channel_buf *plain)
{
    int rv = channel_recv(to, wire->base, wire->len, reply, plain);
    wire->len = 0;
    return rv;
}

/* A real handshake between two channels; a must be the initiator. */
static void establish(struct channel *a, struct channel *b)
{
    struct channel_config ca, cb;
    struct channel_buf wa = {0}, wb = {0}, plain = {0};
    config(&ca, true);
    config(&cb, false);
    FUZZ_CHECK(channel_init(a, &ca) == 0 && channel_init(b, &cb) == 0,
               "init");
    FUZZ_CHECK(channel_start(a, &wa) == 0, "start");
    FUZZ_CHECK(pump(b, &wa, &wb, &plain) == 0, "msg1");
    FUZZ_CHECK(pump(a, &wb, &wa, &plain) == 0, "msg2");
    FUZZ_CHECK(pump(b, &wa, &wb, &plain) == 0, "msg3");
    FUZZ_CHECK(channel_established(a) && channel_established(b),
               "handshake did not complete");
    channel_buf_free(&wa);
    channel_buf_free(&wb);
    channel_buf_free(&plain);
}

/* Feeds data to c in pieces of step bytes; returns the first error. */
static int feed(struct channel *c, const uint8_t *data, size_t size,
                size_t step, struct channel_buf *plain)
{
    struct channel_buf wire = {0};
    int rv = 0;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        int r = channel_recv(c, data + off, n, &wire, plain);
        if (rv != 0)
            FUZZ_CHECK(r == rv, "error not sticky: %d then %d", rv, r);
        else if (r != 0) {
            FUZZ_CHECK(channel_error(c)[0] != '\0', "error %d unexplained",
                       r);
            rv = r;
        }
        FUZZ_CHECK(c->rlen <= CHANNEL_FRAME_OVERHEAD + CHANNEL_FRAME_MAX,
                   "receive buffer holds %zu bytes", c->rlen);
        wire.len = 0;
    }
    channel_buf_free(&wire);
    return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct channel c, peer;
    struct channel_config cfg;
    struct channel_buf wire = {0}, plain = {0};
    if (size < 2)
        return 0;
    setup_keys();
    unsigned mode = data[0] % 3;
    size_t step = (size_t)data[1] + 1;
    data += 2;
    size -= 2;
    memset(&peer, 0, sizeof peer);
    if (mode == 2) {
        establish(&peer, &c);
    } else {
        config(&cfg, mode == 1);
        FUZZ_CHECK(channel_init(&c, &cfg) == 0, "init");
        if (mode == 1)
            FUZZ_CHECK(channel_start(&c, &wire) == 0, "start");
    }
    int rv = feed(&c, data, size, step, &plain);
    /* An oracle on the first frame header an established channel reads:
     * a length outside one sealed frame must be refused at once. */
    if (mode == 2 && size >= 4) {
        uint32_t clen = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                        (uint32_t)data[2] << 8 | data[3];
        if (clen < crypto_secretstream_xchacha20poly1305_ABYTES ||
            clen > CHANNEL_FRAME_MAX +
                       crypto_secretstream_xchacha20poly1305_ABYTES)
            FUZZ_CHECK(rv == -EMSGSIZE, "frame length %u not refused (%d)",
                       clen, rv);
    }
    /* Oracle: a stranger's msg1 with a valid magic and version but an
     * unknown purpose must be refused as such. */
    if (mode == 0 && size >= 6 && memcmp(data, "VCPC", 4) == 0 &&
        data[4] == CHANNEL_VERSION && data[5] >= CHANNEL_PURPOSES)
        FUZZ_CHECK(rv == -EPROTO && strstr(channel_error(&c), "purpose"),
                   "unknown purpose %u not refused (%d: %s)", data[5], rv,
                   channel_error(&c));
    FUZZ_CHECK(plain.len == 0, "%zu bytes of unauthenticated plaintext",
               plain.len);
    if (mode != 2)
        FUZZ_CHECK(!channel_established(&c), "forged handshake accepted");
    if (rv == 0 && mode != 2)
        FUZZ_CHECK(channel_eof(&c) == -EPIPE, "cut handshake not noticed");
    channel_buf_free(&wire);
    channel_buf_free(&plain);
    channel_close(&c);
    if (mode == 2)
        channel_close(&peer);
    return 0;
}
