/* The agent daemon's shared state: one struct agent per process.
 *
 * Data path of a write: api.c reads a frame -> request.c (new request,
 * de-duplicated by request id) -> leader: queued, group-committed through
 * consensus.c; follower: forwarded to the leader by peer.c -> raft log ->
 * fsm -> apply hook completes the request (on the forwarding follower too,
 * as soon as it applies the entry) -> api.c writes the answer.
 */
#ifndef VC_AGENT_AGENT_H
#define VC_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/cmd.h"
#include "../proto/frame.h"
#include "config.h"
#include "consensus.h"
#include "fsm.h"
#include "map.h"
#include "reconcile.h"
#include "transport.h"

struct agent;
struct request;

/* A client connection (TCP or Unix), or another agent's forwarding
 * channel (chan and site set; h.timer is then only a handle to close, so
 * that freeing is deferred as for the others). */
struct conn {
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_timer_t timer;
    } h;
    struct transport_chan *chan; /* forwarding channel, or NULL */
    struct transport_chan_user chan_user;
    struct agent *a;
    char *buf;
    size_t len, cap;
    struct request *reqs; /* pending requests answering on this conn */
    unsigned npending;
    bool closing;
    bool close_after_write;
    char peer[64];
    /* The authenticated site of a forwarding channel (transport.c proved
     * its key), "" for a client: auth.c takes it as the identity. */
    char site[VC_NAME_MAX + 1];
    struct conn *next, *prev;
    /* Client session (auth.c, proto/envelope.h): opened by a signed
     * PROTO_OP_SESSION; then requests carry a MAC under sess_key. */
    bool has_session;
    uint64_t sess_seq;     /* the seq the next session frame must carry */
    uint8_t sess_key[32];  /* wiped when the connection is freed */
    uint8_t sess_pk[32];   /* the client key that signed the session */
};

enum req_state {
    RS_NEW = 0,
    RS_QUEUED,    /* leader: waiting for the next batch */
    RS_PROPOSED,  /* in a batch raft is committing */
    RS_FORWARDED, /* sent to the leader */
    RS_WAITING,   /* no usable leader yet: retried by the tick */
    RS_READWAIT,  /* leader read waiting for a barrier */
    RS_JOINING,   /* leader: join in progress (members.c) */
    RS_TWIN,      /* waits for the in-flight request with its id */
};

typedef void (*request_done_fn)(struct request *r, int code,
                                const struct proto_result *res);

struct request {
    struct agent *a;
    struct conn *conn; /* NULL: internal, or the client went away */
    uint32_t seq;      /* the client's sequence number */
    uint8_t op, flags;
    uint8_t state;
    bool touched; /* proposed or forwarded once: outcome may be unknown */
    uint64_t deadline_ms;
    uint64_t start_ns;    /* uv_hrtime() at arrival, for /metrics */
    struct proto_cmd cmd; /* PROTO_OP_SUBMIT: strings live in strbuf */
    char *strbuf;       /* strinl, or malloc'd if they do not fit */
    char strinl[256];
    char name[VC_NAME_MAX + 1]; /* read filter */
    uint64_t barrier_gen;
    request_done_fn done; /* internal requests */
    void *done_data;
    int64_t pidx;        /* index in the pending table, -1 if none */
    struct batch *batch; /* while RS_PROPOSED */
    uint32_t bidx;
    int peer;            /* site index forwarded to, -1 */
    uint32_t fwd_seq;
    struct request *qnext;               /* RS_QUEUED: FIFO */
    struct request *twins;               /* same request id, answered
                                            with this one's outcome */
    struct request *twin_of, *twin_next; /* RS_TWIN: the primary */
    struct mp_str raft_addr;             /* PROTO_OP_JOIN: raft address */
    void *join;                          /* members.c state while joining */
    struct request *next, *prev;         /* all requests */
    struct request *cnext, *cprev;       /* requests of conn */
};

struct batch {
    struct agent *a;
    uint32_t n;
    struct request *reqs[];
};

/* A link to another agent: forwarding and health. Plain mode: TCP to its
 * client API (addr = its API address). Secure mode: a forward-purpose
 * secure channel to its peer (raft) address, served in-process (chan). */
struct peer {
    bool used;
    char site[VC_NAME_MAX + 1];
    char addr[VC_ADDR_MAX + 1];
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;   /* plain */
        uv_pipe_t pipe; /* secure */
    } h;
    uv_connect_t creq;          /* plain: TCP connect */
    struct transport_link link; /* secure: channel being set up */
    struct transport_chan *chan; /* secure: the channel, once up */
    struct transport_chan_user chan_user;
    bool open, connecting, closing;
    char *buf;
    size_t len, cap;
    struct mp_buf out; /* frames queued for the next peer_flush() */
    uint32_t next_seq;
    uint32_t ping_seq;
    uint64_t ping_sent_ms;
    uint64_t last_ok_ms; /* last answer of any kind */
    uint64_t next_try_ms;
};

struct agent {
    uv_loop_t *loop;
    struct auth *auth; /* auth.c: keys, client authentication */
    struct config cfg;
    struct fsm fsm;
    struct consensus cons;
    int exit_code;
    bool stopping;
    bool fatal; /* the replica cannot go on: shut down at the next tick */

    uv_tcp_t api_tcp;
    uv_pipe_t api_pipe;
    bool api_tcp_open, api_pipe_open;
    struct conn *conns;
    unsigned nconns;
    uv_check_t api_check; /* api.c: writes the answers of an iteration */
    uv_idle_t api_idle;   /* api.c: ... and those made after that check */
    void *api_dirty;      /* api.c: connections with answers to write */

    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    uv_timer_t grace; /* bounds the leadership hand-over at shutdown */
    bool finishing;
    uv_check_t flush;
    uint64_t last_sweep_ms, last_register_ms, last_ping_ms;
    uint64_t last_leader;
    uint64_t no_leader_since_ms; /* 0 while a leader is known */
    bool registering, sweeping;
    bool registered_once, removed_warned;
    bool caught_up;
    uint64_t startup_commit;
    uint64_t leader_commit; /* highest commit index a leader answered a
                               ping with since this agent started */

    struct request *reqs; /* every live request */
    unsigned nreqs;
    struct request **ptab; /* pending submits by request id */
    uint32_t ptab_cap, ptab_n;
    uint32_t *ptab_free;
    uint32_t ptab_nfree;
    struct map pending;
    struct request *queue_head, *queue_tail; /* RS_QUEUED, FIFO */
    unsigned queued, inflight_batches;

    uint64_t barrier_issued, barrier_done;
    bool barrier_inflight;

    struct reconcile rec;
    struct peer peers[VC_SITES_MAX];
    uint64_t id_counter;

    struct join *joins;      /* leader: joins in progress */
    struct removal {
        uint64_t id;         /* raft id of a removed site still a member */
        uint64_t commit;     /* commit index when its removal applied */
        uint64_t since_ms;   /* when this agent noted it */
        uint64_t matched_ms; /* when it stored that index, 0 if not yet */
    } removals[64];
    unsigned nremovals;
    uint64_t last_roles_ms;
    uint64_t leader_since_ms;
    uv_tcp_t join_tcp;       /* joining agent: link to the join address */
    uv_connect_t join_creq;
    bool join_busy;
    bool joined;
    uint64_t join_last_ms;
    char *join_buf;
    size_t join_len;
};

/* True once this agent has applied the commit index it saw when it first
 * knew a leader: its view is complete enough to delete or re-register
 * anything (reliability note 6). */
bool agent_caught_up(struct agent *a);

/* Monotonic milliseconds, for deadlines and intervals. */
uint64_t agent_now_ms(struct agent *a);
/* Wall-clock milliseconds since the epoch, for command timestamps. */
uint64_t agent_wall_ms(struct agent *a);

/* request.c */
int request_init(struct agent *a);
void request_close_all(struct agent *a, int code, const char *msg);
/* Handles a decoded client request arriving on conn (or NULL + done for
 * internal ones). req's strings are copied. */
void request_start(struct agent *a, struct conn *conn,
                   const struct proto_request *req, request_done_fn done,
                   void *done_data);
/* Submits a command of the agent's own (sweep, registration, reports);
 * done(r, code, res) fires once with data in r->done_data. */
void request_internal(struct agent *a, const struct proto_cmd *cmd,
                      request_done_fn done, void *data);
void request_on_apply(struct agent *a, const struct proto_cmd *cmd,
                      const struct proto_result *res);
void request_flush(struct agent *a);
void request_tick(struct agent *a);
void request_detach_conn(struct conn *c);
/* Answers r with a committed result or an error, and frees it. */
void request_finish(struct request *r, int code, const char *msg,
                    const struct proto_result *res);
/* Relays a forwarded read's answer (payload re-packed) and frees r. */
void request_relay(struct request *r, const struct proto_response *resp);
/* A forwarded request came back unanswered: retry later. */
void request_retry(struct request *r);
struct request *request_by_fwd(struct agent *a, int peer, uint32_t seq);
/* Explains why no leader can be used ("no quorum: ..."). */
void request_unavailable_msg(struct agent *a, char *buf, size_t len);

/* peer.c */
void peer_tick(struct agent *a);
/* Writes every link's queued frames, one write per link. */
void peer_flush(struct agent *a);
/* True if the link to the leader's agent is open. */
bool peer_leader_link(struct agent *a);
/* Sends r to the leader's agent. 0, or negative if no link can be used. */
int peer_forward(struct agent *a, struct request *r);
bool peer_reachable(struct agent *a, const char *site);
/* Monotonic time of the site's last answer, 0 if never. */
uint64_t peer_last_ok(struct agent *a, const char *site);
void peer_close_all(struct agent *a);

/* members.c */
void members_join(struct agent *a, struct request *r);
void members_request_gone(struct request *r);
void members_on_apply(struct agent *a, const struct proto_cmd *cmd,
                      const struct proto_result *res);
void members_tick(struct agent *a, uint64_t now);

/* join.c: the joining side */
void join_tick(struct agent *a, uint64_t now);
void join_close(struct agent *a);

/* api.c */
int api_start(struct agent *a, char *err, size_t len);
void api_close(struct agent *a);
/* Bytes written to c but not yet taken by the kernel. */
size_t api_conn_queued(const struct conn *c);
/* Writes a response frame; payload_fn packs exactly one value (nil if
 * NULL). */
typedef void (*api_payload_fn)(msgpack_packer *pk, void *ctx);
void api_reply(struct conn *c, uint32_t seq, int code, const char *msg,
               api_payload_fn payload, void *ctx);
const char *api_leader_name(struct agent *a);
/* Closes a client connection now (watch.c: a watcher that does not
 * read). NULL is a no-op. */
void api_drop(struct conn *c);

/* view.c */
void view_status(msgpack_packer *pk, struct agent *a);
/* Packs the sites (or the one named); returns VC_ENOTFOUND if named and
 * absent (then packs nil). */
int view_sites(msgpack_packer *pk, const struct fsm *f, const char *name);
int view_clusters(msgpack_packer *pk, const struct fsm *f, const char *name);

#endif
