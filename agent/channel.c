#include "channel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "VCPC"
#define HDR_BYTES 8 /* magic, version, purpose (msg1; 0 in msg2), 0, 0 */
#define SIG_BYTES crypto_sign_BYTES
#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_REKEY crypto_secretstream_xchacha20poly1305_TAG_REKEY
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL
#define MSG2_SIGNED (HDR_BYTES + 2 * KEYS_PUBLIC_BYTES) /* hashed into h2 */

_Static_assert(CHANNEL_MSG1_BYTES == HDR_BYTES + 2 * 32 + CHANNEL_ADDR_MAX,
               "msg1 layout");
_Static_assert(CHANNEL_MSG2_BYTES == MSG2_SIGNED + SIG_BYTES + SS_HEADER,
               "msg2 layout");
_Static_assert(CHANNEL_MSG3_BYTES == SIG_BYTES + SS_HEADER, "msg3 layout");
_Static_assert(crypto_scalarmult_BYTES == 32 && KEYS_PUBLIC_BYTES == 32,
               "key sizes");

/* Records the first error; every later call returns it. */
static int fail(struct channel *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct channel *c, int err, const char *fmt, ...)
{
    va_list ap;
    if (c->state == CHANNEL_FAILED)
        return c->error;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    c->state = CHANNEL_FAILED;
    c->error = err;
    /* Nothing secret outlives a failure. */
    sodium_memzero(c->eph_sk, sizeof c->eph_sk);
    sodium_memzero(c->rx_key, sizeof c->rx_key);
    sodium_memzero(&c->tx, sizeof c->tx);
    sodium_memzero(&c->rx, sizeof c->rx);
    return err;
}

/* --- buffers ------------------------------------------------------------ */

int channel_buf_reserve(struct channel_buf *b, size_t n)
{
    size_t cap;
    uint8_t *p;
    if (b->cap - b->len >= n)
        return 0;
    /* Doubling for many small appends, but one step for a big one. */
    cap = b->cap ? b->cap * 2 : 256;
    if (cap - b->len < n)
        cap = b->len + n;
    if (!(p = realloc(b->base, cap)))
        return -ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

void channel_buf_free(struct channel_buf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

static int put(struct channel_buf *b, const void *p, size_t n)
{
    if (channel_buf_reserve(b, n) != 0)
        return -ENOMEM;
    memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

/* --- transcript --------------------------------------------------------- */

/* h = H(h | data): a chain, so that h covers everything absorbed so far. */
static void absorb(struct channel *c, const uint8_t *data, size_t len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof c->h);
    crypto_generichash_update(&st, c->h, sizeof c->h);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, c->h, sizeof c->h);
}

static void sign_transcript(const struct channel *c, char who,
                            uint8_t sig[SIG_BYTES])
{
    uint8_t m[1 + sizeof c->h];
    m[0] = (uint8_t)who;
    memcpy(m + 1, c->h, sizeof c->h);
    crypto_sign_detached(sig, NULL, m, sizeof m, c->self->sk);
}

static int verify_transcript(const struct channel *c, char who,
                             const uint8_t sig[SIG_BYTES])
{
    uint8_t m[1 + sizeof c->h];
    m[0] = (uint8_t)who;
    memcpy(m + 1, c->h, sizeof c->h);
    return crypto_sign_verify_detached(sig, m, sizeof m, c->peer_pk);
}

/* Session keys from the ephemeral shared secret and h2. Fills tx_key and
 * c->rx_key; wipes the ephemeral secret. 0 or -1 (degenerate point). */
static int derive(struct channel *c, const uint8_t *peer_eph, uint8_t *tx_key)
{
    uint8_t q[crypto_scalarmult_BYTES], k[64];
    int rv = crypto_scalarmult(q, c->eph_sk, peer_eph);
    sodium_memzero(c->eph_sk, sizeof c->eph_sk);
    if (rv != 0)
        return -1;
    crypto_generichash(k, sizeof k, c->h, sizeof c->h, q, sizeof q);
    /* First half I->R, second half R->I. */
    memcpy(tx_key, c->initiator ? k : k + 32, 32);
    memcpy(c->rx_key, c->initiator ? k + 32 : k, 32);
    sodium_memzero(q, sizeof q);
    sodium_memzero(k, sizeof k);
    return 0;
}

/* --- set-up ------------------------------------------------------------- */

int channel_init(struct channel *c, const struct channel_config *cfg)
{
    static const char label[] = "virtcloud peer channel";
    size_t idlen;
    memset(c, 0, sizeof *c);
    c->initiator = cfg->initiator;
    c->purpose = cfg->initiator ? cfg->purpose : CHANNEL_RAFT;
    c->self = cfg->self;
    c->allow = cfg->allow;
    c->allow_data = cfg->allow_data;
    if (sodium_init() < 0)
        return fail(c, -EIO, "libsodium failed to initialise");
    if (!cfg->self || !cfg->cluster_id ||
        (idlen = strlen(cfg->cluster_id)) >= CHANNEL_CLUSTER_ID_MAX)
        return fail(c, -EINVAL, "no key or cluster id (at most %d bytes)",
                    CHANNEL_CLUSTER_ID_MAX - 1);
    if (cfg->initiator) {
        if ((unsigned)cfg->purpose >= CHANNEL_PURPOSES)
            return fail(c, -EINVAL, "unknown purpose %u",
                        (unsigned)cfg->purpose);
        if (!cfg->expect || !cfg->address ||
            strlen(cfg->address) >= CHANNEL_ADDR_MAX)
            return fail(c, -EINVAL, "initiator needs the expected key and "
                        "an address shorter than %d bytes", CHANNEL_ADDR_MAX);
        memcpy(c->expect, cfg->expect, sizeof c->expect);
        if ((c->has_alt = cfg->expect_alt != NULL))
            memcpy(c->expect_alt, cfg->expect_alt, sizeof c->expect_alt);
        snprintf(c->my_addr, sizeof c->my_addr, "%s", cfg->address);
    } else if (!cfg->allow) {
        return fail(c, -EINVAL, "responder needs an allow callback");
    }
    /* h0 = H(label | version | len | cluster id) */
    uint8_t h0[sizeof label + 2 + CHANNEL_CLUSTER_ID_MAX];
    memcpy(h0, label, sizeof label);
    h0[sizeof label] = CHANNEL_VERSION;
    h0[sizeof label + 1] = (uint8_t)idlen;
    memcpy(h0 + sizeof label + 2, cfg->cluster_id, idlen);
    crypto_generichash(c->h, sizeof c->h, h0, sizeof label + 2 + idlen, NULL,
                       0);
    c->state = cfg->initiator ? CHANNEL_START : CHANNEL_WAIT_MSG1;
    return 0;
}

void channel_close(struct channel *c)
{
    if (!c)
        return;
    if (c->rbuf) {
        sodium_memzero(c->rbuf, c->rcap);
        free(c->rbuf);
    }
    sodium_memzero(c, sizeof *c);
}

/* purpose: msg1's purpose byte, 0 in msg2. */
static void put_header(uint8_t *p, uint8_t purpose)
{
    memcpy(p, MAGIC, 4);
    p[4] = CHANNEL_VERSION;
    p[5] = purpose;
    p[6] = p[7] = 0;
}

/* Checks the first avail (<= HDR_BYTES) bytes of a msg1 (msg1 true) or
 * msg2 header: refused from the first wrong byte. */
static int check_header(struct channel *c, const uint8_t *p, size_t avail,
                        bool msg1)
{
    if (memcmp(p, MAGIC, avail < 4 ? avail : 4) != 0)
        return fail(c, -EPROTO, "not a VirtCloud peer (bad magic "
                    "%02x%02x%02x%02x)", p[0], avail > 1 ? p[1] : 0,
                    avail > 2 ? p[2] : 0, avail > 3 ? p[3] : 0);
    if (avail > 4 && p[4] != CHANNEL_VERSION)
        return fail(c, -EPROTONOSUPPORT, "peer speaks channel version %u, "
                    "we speak %u", p[4], CHANNEL_VERSION);
    if (avail > 5 && msg1 && p[5] >= CHANNEL_PURPOSES)
        return fail(c, -EPROTO, "unknown channel purpose %u (we know 0 "
                    "raft, 1 forward)", p[5]);
    if (avail > 5 && !msg1 && p[5])
        return fail(c, -EPROTO, "reserved handshake bytes are not zero");
    if (avail >= HDR_BYTES && (p[6] | p[7]))
        return fail(c, -EPROTO, "reserved handshake bytes are not zero");
    return 0;
}

int channel_start(struct channel *c, struct channel_buf *wire)
{
    uint8_t m[CHANNEL_MSG1_BYTES] = {0};
    if (c->state == CHANNEL_FAILED)
        return c->error;
    if (!c->initiator || c->state != CHANNEL_START)
        return fail(c, -EPROTO, "channel_start on a responder or twice");
    crypto_kx_keypair(c->eph_pk, c->eph_sk);
    put_header(m, (uint8_t)c->purpose);
    memcpy(m + HDR_BYTES, c->eph_pk, 32);
    memcpy(m + HDR_BYTES + 32, c->self->pk, 32);
    memcpy(m + HDR_BYTES + 64, c->my_addr, strlen(c->my_addr));
    if (put(wire, m, sizeof m) != 0)
        return fail(c, -ENOMEM, "out of memory");
    absorb(c, m, sizeof m);
    c->state = CHANNEL_WAIT_MSG2;
    return 0;
}

/* --- handshake, responder ----------------------------------------------- */

static bool addr_ok(const uint8_t *a)
{
    size_t n = strnlen((const char *)a, CHANNEL_ADDR_MAX);
    if (n == 0 || n == CHANNEL_ADDR_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (a[i] <= ' ' || a[i] > '~')
            return false;
    for (size_t i = n; i < CHANNEL_ADDR_MAX; i++)
        if (a[i])
            return false;
    return true;
}

static int on_msg1(struct channel *c, const uint8_t *m,
                   struct channel_buf *wire)
{
    uint8_t r[CHANNEL_MSG2_BYTES], txk[32];
    const uint8_t *peer_eph = m + HDR_BYTES;
    char key[KEYS_PUBLIC_TEXT_MAX];
    int rv;
    if ((rv = check_header(c, m, HDR_BYTES, true)) != 0)
        return rv;
    c->purpose = (enum channel_purpose)m[5];
    memcpy(c->peer_pk, m + HDR_BYTES + 32, 32);
    if (!addr_ok(m + HDR_BYTES + 64))
        return fail(c, -EPROTO, "bad address field in handshake");
    memcpy(c->peer_addr, m + HDR_BYTES + 64, CHANNEL_ADDR_MAX);
    if (c->allow(c->allow_data, c->peer_pk, c->purpose, c->peer_name,
                 sizeof c->peer_name) != 0) {
        keys_format_public(c->peer_pk, key, sizeof key);
        return fail(c, -EACCES, "unknown key %s (not an accepted site key%s)",
                    key, c->purpose == CHANNEL_RAFT ? ""
                                                    : " for forwarding");
    }
    c->peer_name[sizeof c->peer_name - 1] = '\0';
    absorb(c, m, CHANNEL_MSG1_BYTES);
    crypto_kx_keypair(c->eph_pk, c->eph_sk);
    put_header(r, 0);
    memcpy(r + HDR_BYTES, c->eph_pk, 32);
    memcpy(r + HDR_BYTES + 32, c->self->pk, 32);
    absorb(c, r, MSG2_SIGNED); /* h2 */
    if (derive(c, peer_eph, txk) != 0)
        return fail(c, -EPROTO, "degenerate ephemeral key");
    sign_transcript(c, 'R', r + MSG2_SIGNED);
    crypto_secretstream_xchacha20poly1305_init_push(
        &c->tx, r + MSG2_SIGNED + SIG_BYTES, txk);
    sodium_memzero(txk, sizeof txk);
    if (put(wire, r, sizeof r) != 0)
        return fail(c, -ENOMEM, "out of memory");
    c->state = CHANNEL_WAIT_MSG3;
    return 0;
}

static int on_msg3(struct channel *c, const uint8_t *m)
{
    if (verify_transcript(c, 'I', m) != 0)
        return fail(c, -EBADMSG, "handshake signature of %s does not verify "
                    "(wrong key or cluster id)", c->peer_name);
    if (crypto_secretstream_xchacha20poly1305_init_pull(
            &c->rx, m + SIG_BYTES, c->rx_key) != 0)
        return fail(c, -EPROTO, "bad stream header");
    sodium_memzero(c->rx_key, sizeof c->rx_key);
    c->state = CHANNEL_OPEN;
    return 0;
}

/* --- handshake, initiator ----------------------------------------------- */

static int on_msg2(struct channel *c, const uint8_t *m,
                   struct channel_buf *wire)
{
    uint8_t r[CHANNEL_MSG3_BYTES], txk[32];
    char got[KEYS_PUBLIC_TEXT_MAX], want[KEYS_PUBLIC_TEXT_MAX];
    int rv;
    if ((rv = check_header(c, m, HDR_BYTES, false)) != 0)
        return rv;
    memcpy(c->peer_pk, m + HDR_BYTES + 32, 32);
    if (sodium_memcmp(c->peer_pk, c->expect, 32) != 0 &&
        !(c->has_alt && sodium_memcmp(c->peer_pk, c->expect_alt, 32) == 0)) {
        keys_format_public(c->peer_pk, got, sizeof got);
        keys_format_public(c->expect, want, sizeof want);
        return fail(c, -EACCES, "peer presented key %s, its pinned key is "
                    "%s", got, want);
    }
    absorb(c, m, MSG2_SIGNED); /* h2 */
    if (verify_transcript(c, 'R', m + MSG2_SIGNED) != 0)
        return fail(c, -EBADMSG, "handshake signature does not verify "
                    "(wrong key or cluster id)");
    if (derive(c, m + HDR_BYTES, txk) != 0)
        return fail(c, -EPROTO, "degenerate ephemeral key");
    if (crypto_secretstream_xchacha20poly1305_init_pull(
            &c->rx, m + MSG2_SIGNED + SIG_BYTES, c->rx_key) != 0)
        return fail(c, -EPROTO, "bad stream header");
    sodium_memzero(c->rx_key, sizeof c->rx_key);
    sign_transcript(c, 'I', r);
    crypto_secretstream_xchacha20poly1305_init_push(&c->tx, r + SIG_BYTES,
                                                    txk);
    sodium_memzero(txk, sizeof txk);
    if (put(wire, r, sizeof r) != 0)
        return fail(c, -ENOMEM, "out of memory");
    c->state = CHANNEL_OPEN;
    return 0;
}

/* --- frames ------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int on_frame(struct channel *c, const uint8_t *f, size_t n,
                    struct channel_buf *plain)
{
    unsigned char tag = 0;
    unsigned long long plen = 0;
    if (channel_buf_reserve(plain, n - 4 - SS_ABYTES + 1) != 0)
        return fail(c, -ENOMEM, "out of memory");
    if (crypto_secretstream_xchacha20poly1305_pull(
            &c->rx, plain->base + plain->len, &plen, &tag, f + 4, n - 4, f,
            4) != 0)
        return fail(c, -EBADMSG, "frame %llu fails authentication "
                    "(tampered, replayed, reordered or cut)",
                    (unsigned long long)c->rx_frames + 1);
    c->rx_frames++;
    plain->len += plen;
    if (tag == TAG_FINAL)
        c->final_recv = true;
    return 0;
}

/* How many bytes the next unit needs, judging from the first avail bytes
 * at p; rejects garbage as early as the bytes allow. */
static int want(struct channel *c, const uint8_t *p, size_t avail,
                size_t *need)
{
    switch (c->state) {
    case CHANNEL_WAIT_MSG1:
    case CHANNEL_WAIT_MSG2:
        *need = c->state == CHANNEL_WAIT_MSG1 ? CHANNEL_MSG1_BYTES
                                              : CHANNEL_MSG2_BYTES;
        return avail ? check_header(c, p,
                                    avail < HDR_BYTES ? avail : HDR_BYTES,
                                    c->state == CHANNEL_WAIT_MSG1)
                     : 0;
    case CHANNEL_WAIT_MSG3:
        *need = CHANNEL_MSG3_BYTES;
        return 0;
    case CHANNEL_OPEN:
        if (c->final_recv)
            return fail(c, -EPROTO, "data after the final frame");
        *need = 4;
        if (avail < 4)
            return 0;
        uint32_t clen = be32(p);
        if (clen < SS_ABYTES || clen > CHANNEL_FRAME_MAX + SS_ABYTES)
            return fail(c, -EMSGSIZE, "frame of %u bytes (limit %u)",
                        clen < SS_ABYTES ? clen : clen - SS_ABYTES,
                        CHANNEL_FRAME_MAX);
        *need = 4 + (size_t)clen;
        return 0;
    case CHANNEL_START:
        return fail(c, -EPROTO, "bytes before channel_start");
    case CHANNEL_FAILED:
        break;
    }
    return c->error;
}

static int process(struct channel *c, const uint8_t *p, size_t n,
                   struct channel_buf *wire, struct channel_buf *plain)
{
    switch (c->state) {
    case CHANNEL_WAIT_MSG1: return on_msg1(c, p, wire);
    case CHANNEL_WAIT_MSG2: return on_msg2(c, p, wire);
    case CHANNEL_WAIT_MSG3: return on_msg3(c, p);
    case CHANNEL_OPEN: return on_frame(c, p, n, plain);
    default: return c->error ? c->error : -EPROTO;
    }
}

static int stash(struct channel *c, const uint8_t *p, size_t n)
{
    if (c->rcap - c->rlen < n) {
        /* Grows only to the unit being received: before authentication
         * that is at most one handshake message. */
        size_t cap = c->rlen + n;
        uint8_t *b = realloc(c->rbuf, cap < 256 ? 256 : cap);
        if (!b)
            return fail(c, -ENOMEM, "out of memory");
        c->rbuf = b;
        c->rcap = cap < 256 ? 256 : cap;
    }
    memcpy(c->rbuf + c->rlen, p, n);
    c->rlen += n;
    return 0;
}

int channel_recv(struct channel *c, const void *in, size_t len,
                 struct channel_buf *wire, struct channel_buf *plain)
{
    const uint8_t *src = in;
    size_t need = 0; /* set by want() on success (quiets -O3) */
    int rv;
    for (;;) {
        if (c->state == CHANNEL_FAILED)
            return c->error;
        /* A unit is taken straight from the input when it is all there;
         * otherwise it is assembled in rbuf. */
        bool buffered = c->rlen > 0;
        const uint8_t *p = buffered ? c->rbuf : src;
        size_t avail = buffered ? c->rlen : len;
        if (!buffered && avail == 0)
            return 0;
        if ((rv = want(c, p, avail, &need)) != 0)
            return rv;
        if (avail >= need) {
            if ((rv = process(c, p, need, wire, plain)) != 0)
                return rv;
            if (buffered)
                c->rlen = 0;
            else {
                src += need;
                len -= need;
            }
            continue;
        }
        if (len == 0)
            return 0;
        size_t take = buffered ? need - avail : len;
        if (take > len)
            take = len;
        if ((rv = stash(c, src, take)) != 0)
            return rv;
        src += take;
        len -= take;
    }
}

/* --- sending ------------------------------------------------------------ */

static int seal(struct channel *c, const uint8_t *data, size_t n,
                unsigned char tag, struct channel_buf *wire)
{
    uint8_t *f;
    uint32_t clen = (uint32_t)(n + SS_ABYTES);
    if (channel_buf_reserve(wire, 4 + clen) != 0)
        return fail(c, -ENOMEM, "out of memory");
    f = wire->base + wire->len;
    f[0] = (uint8_t)(clen >> 24);
    f[1] = (uint8_t)(clen >> 16);
    f[2] = (uint8_t)(clen >> 8);
    f[3] = (uint8_t)clen;
    crypto_secretstream_xchacha20poly1305_push(&c->tx, f + 4, NULL, data, n, f,
                                               4, tag);
    wire->len += 4 + clen;
    return 0;
}

int channel_send(struct channel *c, const void *data, size_t len,
                 struct channel_buf *wire)
{
    const uint8_t *p = data;
    int rv;
    if (c->state == CHANNEL_FAILED)
        return c->error;
    if (c->state != CHANNEL_OPEN || c->final_sent)
        return -ENOTCONN;
    do {
        size_t n = len < CHANNEL_FRAME_MAX ? len : CHANNEL_FRAME_MAX;
        unsigned char tag = TAG_MESSAGE;
        c->tx_msgs++;
        c->tx_bytes += n;
        if (c->tx_msgs >= CHANNEL_REKEY_MSGS ||
            c->tx_bytes >= CHANNEL_REKEY_BYTES) {
            /* Both sides derive the next key after this message. */
            tag = TAG_REKEY;
            c->tx_msgs = c->tx_bytes = 0;
        }
        if ((rv = seal(c, p, n, tag, wire)) != 0)
            return rv;
        p += n;
        len -= n;
    } while (len > 0);
    return 0;
}

int channel_finish(struct channel *c, struct channel_buf *wire)
{
    int rv;
    if (c->state == CHANNEL_FAILED)
        return c->error;
    if (c->state != CHANNEL_OPEN || c->final_sent)
        return -ENOTCONN;
    if ((rv = seal(c, NULL, 0, TAG_FINAL, wire)) != 0)
        return rv;
    c->final_sent = true;
    return 0;
}

int channel_eof(struct channel *c)
{
    if (c->state == CHANNEL_FAILED)
        return c->error;
    if (c->state == CHANNEL_OPEN && c->final_recv && c->rlen == 0)
        return 0;
    if (c->state != CHANNEL_OPEN)
        return fail(c, -EPIPE, "closed during the handshake (%zu bytes of "
                    "a message)", c->rlen);
    return fail(c, -EPIPE, "closed without a final frame after %llu frames%s",
                (unsigned long long)c->rx_frames,
                c->rlen ? " (one cut short)" : "");
}

bool channel_established(const struct channel *c)
{
    return c->state == CHANNEL_OPEN;
}

bool channel_peer_done(const struct channel *c)
{
    return c->state == CHANNEL_OPEN && c->final_recv;
}

const char *channel_error(const struct channel *c)
{
    return c->errmsg;
}
