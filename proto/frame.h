/* Client API frames (docs/protocol.md, "Client API").
 *
 * On the wire every frame is a 4-byte big-endian length followed by that
 * many bytes of msgpack, at most PROTO_FRAME_MAX. A request is
 *   [version, seq, op, flags, timeout_ms, body]
 * and its response
 *   [version, seq, code, msg, leader, payload]
 * seq is chosen by the client and echoed, so one connection can carry many
 * requests at once (answers may come out of order).
 */
#ifndef VC_PROTO_FRAME_H
#define VC_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "mp.h"
#include "watch.h"

#define PROTO_FRAME_VERSION 1
#define PROTO_FRAME_MAX (1u << 20)     /* requests */
#define PROTO_RESPONSE_MAX (64u << 20) /* answers: a list of 65,536 clusters */
#define PROTO_FRAME_HDR 4
#define PROTO_LEVEL_MAX 16 /* PROTO_OP_LOGLEVEL body, bytes */

enum proto_op {
    PROTO_OP_SUBMIT = 1,   /* body: one command; payload: its result */
    PROTO_OP_STATUS = 2,   /* body: nil; payload: status map */
    PROTO_OP_SITES = 3,    /* body: name or ""; payload: array of sites */
    PROTO_OP_CLUSTERS = 4, /* body: name or ""; payload: array of clusters */
    PROTO_OP_PING = 5,     /* body: nil; payload: site name */
    PROTO_OP_JOIN = 6,     /* body: [site-add command, raft peer address] */
    PROTO_OP_WATCH = 7,    /* body: watch subscribe or report (watch.h);
                              payloads: snapshot, update, insync */
    PROTO_OP_LOGLEVEL = 8, /* body: "debug".."error", or "" to ask;
                              payload: {level, previous} (this agent) */
    /* 9: reserved. */
    PROTO_OP_AUDIT = 10,   /* body: audit query [name, since_ms, after_seq,
                              limit]; payload: audit page (agent's own
                              replica) */
    PROTO_OP_SESSION = 11, /* body: bin 32, the client's ephemeral X25519
                              key; only inside a signed envelope; payload:
                              bin 32, the agent's (proto/envelope.h) */
    PROTO_OP_MAX = 11
};
#define PROTO_SESSION_KEY 32

/* PROTO_OP_AUDIT: which entries of the replicated audit trail
 * (agent/fsm_audit.h), oldest first. */
#define PROTO_AUDIT_LIMIT_MAX 10000 /* entries per answer */
struct proto_audit_query {
    struct mp_str name; /* only commands about this cluster/site/host, or "" */
    uint64_t since_ms;  /* only commands at or after this time, or 0 */
    uint64_t after_seq; /* only entries with a larger seq (paging), or 0 */
    uint32_t limit;     /* at most this many, 1..PROTO_AUDIT_LIMIT_MAX */
};

enum proto_flag {
    PROTO_FLAG_STALE = 1,     /* read local state, no leader round trip */
    PROTO_FLAG_FORWARDED = 2, /* sent by another agent: do not forward */
};

struct proto_request {
    uint32_t seq;
    uint8_t op;
    uint8_t flags;
    uint32_t timeout_ms; /* 0: the server's default */
    uint8_t session_pk[PROTO_SESSION_KEY]; /* PROTO_OP_SESSION */
    struct proto_cmd cmd; /* PROTO_OP_SUBMIT; PROTO_OP_JOIN: site-add */
    struct mp_str peer;   /* PROTO_OP_JOIN: the joiner's raft address */
    struct mp_str name;   /* PROTO_OP_SITES / PROTO_OP_CLUSTERS filter;
                             PROTO_OP_LOGLEVEL: the level, "" to ask */
    struct proto_watch watch; /* PROTO_OP_WATCH; arrays in the zone */
    struct proto_audit_query audit; /* PROTO_OP_AUDIT */
};

struct proto_response {
    uint32_t seq;
    int code;
    struct mp_str msg;    /* borrowed from the frame */
    struct mp_str leader; /* site name of the leader as the server knows it */
    msgpack_object payload;
};

/* Parses a request frame header: 0 and *len (1..PROTO_FRAME_MAX), or
 * VC_ETOOBIG. */
int proto_frame_len(const uint8_t hdr[PROTO_FRAME_HDR], uint32_t *len);
/* Same for an answer: 1..PROTO_RESPONSE_MAX. */
int proto_response_len(const uint8_t hdr[PROTO_FRAME_HDR], uint32_t *len);

/* Frame building blocks for other frame kinds (envelope.c): begin
 * reserves the 4-byte header at out->len (*start) and readies pk to
 * append to out; end fills the header in, or returns VC_ENOMEM (out ran
 * out of memory) or VC_ETOOBIG (body over max: out is cut back to
 * start). */
int proto_frame_begin(msgpack_packer *pk, struct mp_buf *out, size_t *start);
int proto_frame_end(struct mp_buf *out, size_t start, uint32_t max);

/* Appends header + request. Returns 0, VC_EINVAL (errmsg says why) or
 * VC_ENOMEM. */
int proto_request_encode(const struct proto_request *req, struct mp_buf *out,
                         char *errmsg, size_t errlen);

/* Decodes a frame body (without header). Strings borrow from data and zone.
 * On failure *seq holds the sequence number if it could be read (so the
 * server can answer), else 0. */
int proto_request_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_request *req, char *errmsg,
                         size_t errlen);

/* Starts a response frame: writes header placeholder and the fields up to
 * payload; the caller packs exactly one payload value with pk, then calls
 * proto_response_finish(). */
void proto_response_begin(msgpack_packer *pk, struct mp_buf *out,
                          size_t *start, uint32_t seq, int code,
                          const char *msg, const char *leader);
int proto_response_finish(struct mp_buf *out, size_t start);

int proto_response_decode(const void *data, size_t len, msgpack_zone *zone,
                          struct proto_response *resp);

#endif
