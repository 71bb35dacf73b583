/* The raft peer transport, behind raft's raft_uv_transport interface so the
 * encrypted transport replaces plain TCP without touching consensus.c's
 * use of raft_uv.
 *
 * With cfg->key_path set, every raft connection is a TCP connection that
 * runs the agent/channel.h handshake (only sites pinned in cfg->peer_keys
 * are accepted, their raft id taken from their key) and then carries
 * raft's messages, encoded by proto/raftmsg.h, in encrypted frames. Raft
 * hands them over through raft_io's send() and gets them through its
 * receive callback: consensus.c routes both here (transport_send,
 * transport_set_recv) instead of letting raft_uv use a stream. Forwarded
 * client requests between agents use the same channel (purpose
 * CHANNEL_FORWARD, below). Without a key,
 * stock raft_uv_tcp, with a warning: peer traffic is then neither
 * authenticated nor encrypted.
 */
#ifndef VC_AGENT_TRANSPORT_H
#define VC_AGENT_TRANSPORT_H

#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "keys.h"

struct fsm;

/* A silent or slow peer is dropped after this long without a completed
 * handshake (also bounds an outgoing connect). */
#define TRANSPORT_HANDSHAKE_MS 5000
/* Connections not yet authenticated, in all and from one IP address. */
#define TRANSPORT_UNAUTH_MAX 64
#define TRANSPORT_UNAUTH_PER_IP 8
/* Authenticated incoming raft connections of one site. */
#define TRANSPORT_CONN_PER_SITE 4
/* Authenticated incoming forwarding connections of one site: a cap of
 * their own, so that they never evict raft connections (nor the reverse). */
#define TRANSPORT_FWD_PER_SITE 2

/* Initialises t for raft_uv_init(). cfg is borrowed and must outlive t
 * (it lives in struct agent). Loads the private key if one is configured.
 * Returns 0, or a negative errno with a one-line errmsg. */
int transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const struct config *cfg, char *errmsg, size_t errlen);

/* Releases t once raft_uv has been closed (or was never started). */
void transport_close(struct raft_uv_transport *t);

/* The replicated state whose site records list the accepted keys (borrowed,
 * must outlive t). Until it is set, and for sites it has no keyed record
 * of, the bootstrap pins (cfg->peer_keys) apply; keys the state revoked
 * never do. No-op on the plain transport. */
void transport_set_fsm(struct raft_uv_transport *t, const struct fsm *f);

/* Re-checks every authenticated connection against the current keys and
 * closes at once those whose peer key is no longer accepted (site removed,
 * key rotated out). Call after applying site-remove or site-key. Returns
 * how many were closed. */
unsigned transport_revalidate(struct raft_uv_transport *t);

/* This site's key for connections made from now on (key rotation); the
 * open ones keep the key they authenticated with. Copied. */
void transport_set_self(struct raft_uv_transport *t,
                        const struct keys_pair *kp);

/* --- client-request forwarding over the channel --------------------------
 *
 * Agents forward client requests (and health pings) to each other over the
 * same authenticated, encrypted channel as raft, to the peer (raft) listen
 * address, with purpose CHANNEL_FORWARD in the handshake. Like raft's
 * messages they are served in-process, without a socketpair (that cost 4
 * syscalls and 2 loop iterations per forwarded burst each way): the user
 * attaches to the established channel, gets the decrypted byte
 * stream (request and response frames, proto/frame.h) through on_data and
 * writes with transport_chan_write(). transport_revalidate() covers these
 * connections as well. Secure transport only. */

struct transport_chan; /* an established forwarding channel */

/* The user of a channel, owned by the caller; valid until on_close or
 * transport_chan_close(). */
struct transport_chan_user {
    /* Decrypted bytes, borrowed for the call. The user may write or close
     * from here. */
    void (*on_data)(struct transport_chan_user *u, const char *buf,
                    size_t len);
    /* The channel is gone (error, revoked key, the peer closed, shutdown):
     * no call after this one, and the channel must not be used. */
    void (*on_close)(struct transport_chan_user *u);
};

/* Attaches u to ch: from now on ch calls u. Only from the callbacks that
 * hand over ch (transport_link_cb, transport_serve_fn); a channel nobody
 * attached to is closed when they return. */
void transport_chan_attach(struct transport_chan *ch,
                           struct transport_chan_user *u);

/* Seals buf[0..len) into channel frames and writes them to the peer.
 * 0 or a negative errno (ch is then closing: on_close follows). */
int transport_chan_write(struct transport_chan *ch, const void *buf,
                         size_t len);

/* Bytes written but not yet taken by the kernel (back-pressure). */
size_t transport_chan_queued(const struct transport_chan *ch);

/* Closes ch cleanly (our final frame, then the connection); its user is
 * detached at once: on_close will not be called. */
void transport_chan_close(struct transport_chan *ch);

struct transport_link;

/* Outgoing: ch (attach to it from here) and status 0 once the peer proved
 * the site's key, else ch NULL and a negative errno. Called once, never
 * after transport_link_cancel(). */
typedef void (*transport_link_cb)(struct transport_link *l,
                                  struct transport_chan *ch, int status);

/* An outgoing forwarding connection in progress, owned by the caller: it
 * must stay valid until its callback or transport_link_cancel(). */
struct transport_link {
    void *data; /* the caller's */
    transport_link_cb cb;
    void *pump; /* the transport's, while connecting */
};

/* Dials site at its raft address (expecting a key accepted for site).
 * Returns 0 (cb will fire) or a negative errno (-ENOTSUP on the plain
 * transport; cb will not fire). */
int transport_link_open(struct raft_uv_transport *t, struct transport_link *l,
                        const char *site, const char *address,
                        transport_link_cb cb);

/* Abandons a link still connecting: its callback will not fire. No-op if
 * it is not connecting. */
void transport_link_cancel(struct transport_link *l);

/* Incoming: serve(data, ch, site) gets the established channel of an
 * authenticated site (the name its key maps to) and attaches to it. While
 * none is set (the client API not up yet, or shutting down), such a
 * channel is closed cleanly once established: the forwarding agent
 * retries. */
typedef void (*transport_serve_fn)(void *data, struct transport_chan *ch,
                                   const char *site);
void transport_set_serve(struct raft_uv_transport *t, transport_serve_fn fn,
                         void *data);

/* --- raft's messages (secure transport only) -------------------------- */

/* raft_io's send(): encodes m, seals it and writes it on the connection to
 * m->server_id (dialling it at m->server_address if needed). Returns 0, or
 * RAFT_NOMEM or RAFT_CANCELED (the transport is closing): nothing sent,
 * cb will not fire. After 0, cb fires exactly once, from the loop, never
 * inside this call: 0 once written, RAFT_NOCONNECTION (peer unreachable,
 * its key unknown, more than 64 MiB unwritten to it, or dropped from a
 * full dial queue), RAFT_INVALID (m cannot be encoded: over the limits
 * of proto/raftmsg.h), RAFT_NOMEM, RAFT_CANCELED (closed meanwhile). m is
 * only read during the call. */
int transport_send(struct raft_uv_transport *t, struct raft_io_send *req,
                   const struct raft_message *m, raft_io_send_cb cb);

/* Where received messages go: raft's receive callback, from raft_io's
 * start(); io is passed back to it. Each message's sender is the
 * authenticated site's raft id and signed address. */
void transport_set_recv(struct raft_uv_transport *t, struct raft_io *io,
                        raft_io_recv_cb recv);

/* Counters of the secure transport, for /metrics. */
struct transport_stats {
    unsigned conns[2][2]; /* established, [purpose: raft, forward][in] */
    unsigned handshaking; /* connections still in the handshake */
    uint64_t refused;     /* refused or timed out in the handshake */
    uint64_t errors;      /* authenticated connections closed on bad data */
    uint64_t raft_sent, raft_received, raft_send_failed;
};

/* Fills *st. Returns false (st zeroed) on the plain transport. */
bool transport_stats(const struct raft_uv_transport *t,
                     struct transport_stats *st);

/* True for the secure transport (this agent has a key). */
bool transport_secure(const struct raft_uv_transport *t);

/* May the holder of pk act as a peer site? Fills its name. The same rule
 * the transport applies (used by client authentication for forwarded
 * requests). cfg and f (may be NULL) borrowed. */
bool transport_site_key(const struct config *cfg, const struct fsm *f,
                        const uint8_t *pk, char *name, size_t cap);

#endif
