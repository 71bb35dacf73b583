/* Blocking client for the agents' client API (docs/protocol.md, "Client
 * API"; docs/cli.md for the command-line tool built on it).
 *
 * One struct client is one stream connection to one agent. Requests are
 * framed with proto_request_encode() and answers parsed with
 * proto_response_decode(); every wait is bounded by a deadline on the
 * monotonic clock (client_now_ms()), enforced with poll(). No globals, no
 * output: messages go to the caller's errmsg buffer, so a benchmark can
 * drive several clients from one thread.
 *
 * After any failure of client_send() / client_recv() the stream may hold
 * half a frame: close the connection and connect again.
 *
 * Addresses: "HOST:PORT" (IPv4, host name, or "[IPv6]:PORT"), "HOST"
 * (port CLIENT_PORT) or "unix:/path". Address lists separate entries with
 * commas and are tried in order.
 */
#ifndef VC_TOOLS_CLIENT_H
#define VC_TOOLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

#define CLIENT_PORT "7800"
#define CLIENT_ADDRS_MAX 32 /* entries in one address list */

/* Turns the plain request frame in[0..len) into the frame to send,
 * appended to out (e.g. signed: tools/cli_key.c). 0 or a negative code. */
typedef int (*client_seal_fn)(void *ctx, const void *in, size_t len,
                              struct mp_buf *out);

/* Every request sent from now on in this process passes fn (NULL: sent as
 * encoded). ctx borrowed. */
void client_set_sealer(client_seal_fn fn, void *ctx);

struct client {
    int fd;                     /* -1 while not connected */
    uint32_t next_seq;          /* seq of the next request sent */
    char addr[VC_ADDR_MAX + 8]; /* address connected to, for messages */
    /* This connection's own sealer (a session: tools/bench_key.c), used
     * instead of the process's; cleared by client_close(), ctx borrowed. */
    client_seal_fn seal;
    void *seal_ctx;
};

/* One answer. resp borrows its strings and payload from buf and zone, so
 * it stays valid until client_response_close(). */
struct client_response {
    struct proto_response resp;
    char *buf; /* frame body, malloc'd */
    size_t len;
    msgpack_zone zone;
    bool zone_live;
};

/* Milliseconds on the monotonic clock, for deadlines. */
uint64_t client_now_ms(void);

void client_init(struct client *cl);

/* Connects to the first entry of the comma-separated list addrs that
 * accepts a connection, giving each entry a fair share of the time left
 * until deadline. Returns 0, VC_EINVAL (an entry is not an address) or
 * VC_EUNAVAILABLE; errmsg then names every address tried and why it
 * failed. */
int client_connect(struct client *cl, const char *addrs, uint64_t deadline,
                   char *errmsg, size_t errlen);

/* Assigns req->seq and writes the request. Returns 0, VC_EINVAL (the
 * request does not validate; errmsg says why), VC_ETIMEOUT, or a negative
 * errno (connection lost). */
int client_send(struct client *cl, struct proto_request *req, uint64_t deadline,
                char *errmsg, size_t errlen);

/* Reads the next answer, whatever its seq, into r (initialized here; the
 * caller closes it, also on failure). Returns 0, VC_ETIMEOUT,
 * VC_EMALFORMED / VC_EVERSION / VC_ETOOBIG (undecodable frame), VC_ENOMEM
 * or a negative errno (-ECONNRESET when the agent closed the
 * connection). */
int client_recv(struct client *cl, struct client_response *r, uint64_t deadline,
                char *errmsg, size_t errlen);

/* client_send() then client_recv() until the answer to req->seq arrives;
 * answers to other requests are dropped. Same returns. */
int client_call(struct client *cl, struct proto_request *req,
                struct client_response *r, uint64_t deadline, char *errmsg,
                size_t errlen);

/* Non-blocking reading, for one thread driving many connections with
 * poll(): a reader buffers the bytes of one connection until a whole frame
 * is in. Once a connection is read through a reader, read it only through
 * that reader (client_recv() would miss the buffered bytes), and empty
 * it with client_reader_close() when the connection is closed.
 * client_send() never waits while the socket has room, which a request or
 * two in flight always leaves. */
struct client_reader {
    char *buf;
    size_t len, cap;
};

void client_reader_init(struct client_reader *rd);
/* Frees the buffer; closing twice is harmless. */
void client_reader_close(struct client_reader *rd);

/* Reads what cl's socket holds, without waiting, and decodes the first
 * whole answer in rd into r (initialized here; the caller closes it, also
 * on failure). Returns 0 (an answer; call again, rd may hold another),
 * -EAGAIN (no whole answer yet: poll for POLLIN), or the failures of
 * client_recv() other than VC_ETIMEOUT. */
int client_recv_nb(struct client *cl, struct client_reader *rd,
                   struct client_response *r, char *errmsg, size_t errlen);

/* Closes the connection; the struct may be connected again. */
void client_close(struct client *cl);

/* One request on a fresh connection. Tries the entries of addrs in order:
 * an entry that refuses the connection, answers VC_ESHUTDOWN or
 * VC_ENOTLEADER, or drops the connection is skipped, the last only when a
 * retry is safe (a read, or a command carrying a request id). Returns 0
 * (r->resp.code still holds the agent's verdict), VC_EUNAVAILABLE,
 * VC_ETIMEOUT (no answer before timeout_ms), VC_EUNKNOWN (a command
 * without request id was sent but the connection dropped) or another code
 * of client_call(). r is initialized here and closed by the caller. */
int client_request(const char *addrs, struct proto_request *req,
                   uint32_t timeout_ms, struct client_response *r, char *errmsg,
                   size_t errlen);

void client_response_init(struct client_response *r);
/* Frees the frame; r may be reused. Closing twice is harmless. */
void client_response_close(struct client_response *r);

#endif
