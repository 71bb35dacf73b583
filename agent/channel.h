/* The secure peer channel as a pure state machine over byte buffers: no
 * sockets, no clock, no allocation beyond its own receive buffer and the
 * caller's output buffers. transport.c drives it over TCP; unit tests feed
 * it bytes directly.
 *
 * Handshake (I = initiator, the dialling site; R = responder), fixed
 * sizes, nothing read past the expected size:
 *
 *   msg1 I->R 136 B: "VCPC" ver purpose 0 0 | I_eph[32] | I_static[32]
 *                    | I_addr[64]
 *   msg2 R->I 160 B: "VCPC" ver 0 0 0 | R_eph[32] | R_static[32]
 *                    | sig_R[64] | secretstream header R->I [24]
 *   msg3 I->R  88 B: sig_I[64] | secretstream header I->R [24]
 *
 * purpose (enum channel_purpose) says what the connection carries: raft's
 * messages or client requests forwarded between agents. It is part of msg1,
 * hence of the transcript both sides sign: a man in the middle cannot
 * change it, and the responder refuses a purpose it does not know (and
 * may refuse a known one for a key: the allow callback sees it). The
 * other reserved bytes must be zero. Version 2 added the purpose (version
 * 1 had zero there and carried raft only); version 3 carries raft's
 * messages as proto/raftmsg.h records instead of raft_uv's stream.
 *
 * Transcript hash (BLAKE2b-256 chain): h0 = H(label, version, cluster id),
 * h1 = H(h0 | msg1), h2 = H(h1 | first 72 bytes of msg2). R signs
 * "R" | h2 and I signs "I" | h2 with their Ed25519 static keys, so each
 * signature covers the cluster id, the version, both ephemeral keys, both
 * identities and I's address, and is fresh (it covers the other side's new
 * ephemeral key). Session keys: BLAKE2b-512 keyed by the X25519 shared
 * secret of the two ephemeral keys, over h2; the first half keys I->R, the
 * second R->I (forward secrecy: ephemeral secrets are wiped at once).
 *
 * Frames: 4-byte big-endian length of the ciphertext (which is
 * authenticated as additional data) then one
 * crypto_secretstream_xchacha20poly1305 message. One stream per direction,
 * plaintext <= CHANNEL_FRAME_MAX, TAG_REKEY every CHANNEL_REKEY_MSGS
 * messages or CHANNEL_REKEY_BYTES bytes, TAG_FINAL on a clean close: a
 * replayed, reordered, dropped, truncated or altered frame fails to
 * authenticate, and a stream cut short lacks its final tag.
 *
 * The responder accepts only keys its allow callback accepts, and the
 * peer's identity (name) comes from that callback, never from the wire.
 * The initiator accepts only the one key it expects for the site it
 * dialled. No plaintext leaves channel_recv() before the peer has proved
 * its key.
 *
 * Errors: negative errno, and channel_error() says why in one line. After
 * an error every call fails the same way; the caller drops the connection.
 *   -EPROTO           not a VirtCloud peer, bad handshake, unknown purpose,
 *                     data after final
 *   -EPROTONOSUPPORT  peer speaks another channel version
 *   -EACCES           the peer's key is unknown (or not accepted for the
 *                     purpose) or not the one expected
 *   -EBADMSG          a signature or a frame fails to authenticate
 *   -EMSGSIZE         a frame length outside 0..CHANNEL_FRAME_MAX
 *   -EPIPE            the peer closed before the handshake or the final tag
 *   -ENOTCONN         send before the handshake is done, or after finish
 *   -ENOMEM, -EINVAL  (bad configuration)
 */
#ifndef VC_AGENT_CHANNEL_H
#define VC_AGENT_CHANNEL_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define CHANNEL_VERSION 3
#define CHANNEL_MSG1_BYTES 136
#define CHANNEL_MSG2_BYTES 160
#define CHANNEL_MSG3_BYTES 88
#define CHANNEL_ADDR_MAX 64 /* I's address, NUL included */
#define CHANNEL_CLUSTER_ID_MAX 64
#define CHANNEL_NAME_MAX 64
#define CHANNEL_FRAME_MAX (1u << 20) /* plaintext bytes in one frame */
#define CHANNEL_FRAME_OVERHEAD \
    (4 + crypto_secretstream_xchacha20poly1305_ABYTES)
#define CHANNEL_REKEY_MSGS 1000u
#define CHANNEL_REKEY_BYTES (64ull << 20)

/* What a connection carries (msg1 byte 5, signed with the transcript). */
enum channel_purpose {
    CHANNEL_RAFT = 0,    /* raft messages (agent/transport.c) */
    CHANNEL_FORWARD = 1, /* client request frames between agents */
    CHANNEL_PURPOSES     /* count: any other value is refused */
};

/* Responder: may the holder of pk connect for purpose? Returns 0 and
 * writes its name (NUL-terminated, at most cap bytes) if so, else a
 * negative value. */
typedef int (*channel_allow_fn)(void *data, const uint8_t *pk,
                                enum channel_purpose purpose, char *name,
                                size_t cap);

struct channel_config {
    bool initiator;
    const struct keys_pair *self; /* borrowed: must outlive the channel */
    const char *cluster_id;       /* copied into the transcript */
    /* Initiator only. */
    const char *address;   /* ours, sent signed (R hands it to raft) */
    const uint8_t *expect; /* the pinned key of the dialled site */
    const uint8_t *expect_alt; /* NULL, or its other key while it rotates */
    enum channel_purpose purpose;
    /* Responder only. */
    channel_allow_fn allow;
    void *allow_data;
};

/* A growable output buffer, owned by the caller. */
struct channel_buf {
    uint8_t *base;
    size_t len, cap;
};

enum channel_state {
    CHANNEL_START = 0, /* initiator: before channel_start() */
    CHANNEL_WAIT_MSG1,
    CHANNEL_WAIT_MSG2,
    CHANNEL_WAIT_MSG3,
    CHANNEL_OPEN,
    CHANNEL_FAILED,
};

struct channel {
    enum channel_state state;
    bool initiator;
    enum channel_purpose purpose; /* initiator: asked; responder: from msg1 */
    bool final_sent, final_recv;
    int error;
    char errmsg[200];
    const struct keys_pair *self;
    channel_allow_fn allow;
    void *allow_data;
    uint8_t expect[KEYS_PUBLIC_BYTES];
    uint8_t expect_alt[KEYS_PUBLIC_BYTES];
    bool has_alt;
    uint8_t h[crypto_generichash_BYTES]; /* transcript hash so far */
    uint8_t eph_pk[crypto_scalarmult_BYTES];
    uint8_t eph_sk[crypto_scalarmult_SCALARBYTES];
    uint8_t rx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state tx, rx;
    uint64_t tx_msgs, tx_bytes; /* since the last rekey */
    uint64_t rx_frames;
    uint8_t *rbuf; /* the incomplete unit (message or frame) received */
    size_t rlen, rcap;
    /* The peer, valid once the handshake is done. */
    uint8_t peer_pk[KEYS_PUBLIC_BYTES];
    char peer_name[CHANNEL_NAME_MAX];  /* responder: from allow() */
    char peer_addr[CHANNEL_ADDR_MAX];  /* responder: I's signed address */
    char my_addr[CHANNEL_ADDR_MAX];
};

/* Prepares c. Returns 0 or -EINVAL (bad config: errmsg via
 * channel_error) or -EIO (libsodium). Pair with channel_close(). */
int channel_init(struct channel *c, const struct channel_config *cfg);

/* Initiator: appends msg1 to wire. 0 or negative errno. */
int channel_start(struct channel *c, struct channel_buf *wire);

/* Feeds len bytes received from the peer (borrowed). Appends handshake
 * replies to wire and authenticated plaintext to plain. Returns 0 (more
 * bytes may be needed) or negative errno; see channel_error(). */
int channel_recv(struct channel *c, const void *in, size_t len,
                 struct channel_buf *wire, struct channel_buf *plain);

/* Seals len bytes (borrowed) into frames appended to wire. 0 or negative
 * errno (-ENOTCONN before the handshake is done or after finish). */
int channel_send(struct channel *c, const void *data, size_t len,
                 struct channel_buf *wire);

/* Appends the empty TAG_FINAL frame: a clean end of our stream. */
int channel_finish(struct channel *c, struct channel_buf *wire);

/* The peer closed its side (EOF). 0 if its final frame had arrived, else
 * -EPIPE (handshake or stream truncated). */
int channel_eof(struct channel *c);

/* True once both sides are authenticated and frames may flow. */
bool channel_established(const struct channel *c);

/* True once the peer's TAG_FINAL frame has been received. */
bool channel_peer_done(const struct channel *c);

/* The last error in one line, "" if none. */
const char *channel_error(const struct channel *c);

/* Wipes keys and frees the receive buffer. NULL is a no-op. */
void channel_close(struct channel *c);

/* Reserves room for n more bytes in b. 0 or -ENOMEM. */
int channel_buf_reserve(struct channel_buf *b, size_t n);

/* Frees b's memory and empties it. */
void channel_buf_free(struct channel_buf *b);

#endif
