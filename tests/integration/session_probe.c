/* vc-session-probe API KEYFILE: drives one client session against an
 * agent for test_secure_auth.py, one command per stdin line, one answer
 * per stdout line: "CODE CLOSED MESSAGE" (CLOSED 1: the agent closed the
 * connection after answering; newlines in MESSAGE become spaces).
 *
 *   open                   sign a session request (a new connection if
 *                          the last one was closed)
 *   ping                   a PING in the session
 *   show NAME              the cluster NAME (read) in the session
 *   create NAME SITE OWNER a cluster-create in the session
 *   replay                 the last session frame again, byte for byte
 *   flip                   a PING with one payload bit flipped
 *   skip                   a PING whose seq skips one
 *   bare                   on a new connection without a session: a
 *                          session frame under a random key
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/sign.h"
#include "proto/envelope.h"
#include "proto/err.h"
#include "tools/client.h"
#include "tools/client_session.h"

#define WAIT_MS 10000

static struct client cl;
static struct client_session sess;
static const char *api;
static struct mp_buf last; /* the last session frame sent */
static struct proto_request req;

static void answer(int code, const char *msg, size_t n, bool closed)
{
    printf("%d %d ", code, closed ? 1 : 0);
    for (size_t i = 0; i < n; i++)
        putchar(msg[i] == '\n' ? ' ' : msg[i]);
    putchar('\n');
    fflush(stdout);
}

/* After an answer: did the agent close the connection? */
static bool closed_now(void)
{
    struct client_response r;
    char err[256];
    int rv = client_recv(&cl, &r, client_now_ms() + 300, err, sizeof err);
    client_response_close(&r);
    if (rv == VC_ETIMEOUT)
        return false;
    client_close(&cl);
    return true;
}

static void await(void)
{
    struct client_response r;
    char err[512];
    int rv = client_recv(&cl, &r, client_now_ms() + WAIT_MS, err,
                         sizeof err);
    if (rv != 0) {
        client_response_close(&r);
        client_close(&cl);
        answer(rv, err, strlen(err), true);
        return;
    }
    int code = r.resp.code;
    char msg[1024];
    snprintf(msg, sizeof msg, "%.*s", (int)r.resp.msg.n, r.resp.msg.p);
    client_response_close(&r);
    answer(code, msg, strlen(msg), code != 0 && closed_now());
}

/* Seals the plain frame of req by hand (seq, payload bit) and sends it. */
static void send_crafted(uint64_t seq, bool flip)
{
    struct mp_buf plain;
    char err[256];
    mp_buf_init(&plain);
    req.seq = cl.next_seq++;
    mp_buf_reset(&last);
    if (proto_request_encode(&req, &plain, err, sizeof err) != 0 ||
        sign_session_request(sess.key, seq, plain.data, plain.len, &last)) {
        mp_buf_close(&plain);
        answer(VC_EINVAL, "encode", 6, false);
        return;
    }
    mp_buf_close(&plain);
    if (flip)
        last.data[last.len - PROTO_SESSION_MAC - 4] ^= 0x01; /* payload */
    if (send(cl.fd, last.data, last.len, MSG_NOSIGNAL) != (ssize_t)last.len) {
        answer(-errno, "send", 4, true);
        return;
    }
    await();
}

static void request(void)
{
    if (cl.fd < 0) {
        answer(-ENOTCONN, "not connected", 13, true);
        return;
    }
    send_crafted(sess.seq++, false);
}

static void open_session(void)
{
    char err[512];
    int rv = 0;
    if (cl.fd < 0)
        rv = client_connect(&cl, api, client_now_ms() + WAIT_MS, err,
                            sizeof err);
    if (rv == 0)
        rv = client_session_open(&cl, &sess, client_now_ms() + WAIT_MS, err,
                                 sizeof err);
    if (rv != 0) {
        answer(rv, err, strlen(err), cl.fd < 0);
        return;
    }
    answer(0, "", 0, false);
}

static void bare(void)
{
    char err[512];
    client_close(&cl);
    if (client_connect(&cl, api, client_now_ms() + WAIT_MS, err,
                       sizeof err) != 0) {
        answer(VC_EUNAVAILABLE, err, strlen(err), true);
        return;
    }
    randombytes_buf(sess.key, sizeof sess.key);
    req.op = PROTO_OP_PING;
    send_crafted(1, false);
}

int main(int argc, char **argv)
{
    char line[512];
    if (argc != 3 || sodium_init() < 0) {
        fprintf(stderr, "usage: vc-session-probe API KEYFILE\n");
        return 2;
    }
    api = argv[1];
    if (client_key_setup(argv[2]) != 0)
        return 2;
    client_init(&cl);
    mp_buf_init(&last);
    while (fgets(line, sizeof line, stdin)) {
        char a[3][VC_NAME_MAX + 1] = {"", "", ""}, cmd[16] = "";
        if (sscanf(line, "%15s %63s %63s %63s", cmd, a[0], a[1], a[2]) < 1)
            continue;
        memset(&req, 0, sizeof req);
        req.name = mp_cstr("");
        req.op = PROTO_OP_PING;
        if (!strcmp(cmd, "open")) {
            open_session();
        } else if (!strcmp(cmd, "ping")) {
            request();
        } else if (!strcmp(cmd, "show")) {
            req.op = PROTO_OP_CLUSTERS;
            req.name = mp_cstr(a[0]);
            request();
        } else if (!strcmp(cmd, "create")) {
            req.op = PROTO_OP_SUBMIT;
            proto_cmd_init(&req.cmd, PROTO_CMD_CLUSTER_CREATE);
            req.cmd.name = mp_cstr(a[0]);
            req.cmd.nsites = 1;
            req.cmd.sites[0] = mp_cstr(a[1]);
            req.cmd.owner = mp_cstr(a[2]);
            req.cmd.lease_ms = 3600000;
            req.cmd.image = IMAGE_CERTIFIED;
            request();
        } else if (!strcmp(cmd, "replay")) {
            if (send(cl.fd, last.data, last.len, MSG_NOSIGNAL) < 0)
                answer(-errno, "send", 4, true);
            else
                await();
        } else if (!strcmp(cmd, "flip")) {
            send_crafted(sess.seq++, true);
        } else if (!strcmp(cmd, "skip")) {
            sess.seq++;
            send_crafted(sess.seq++, false);
        } else if (!strcmp(cmd, "bare")) {
            bare();
        } else {
            answer(VC_EINVAL, "unknown command", 15, false);
        }
    }
    client_close(&cl);
    mp_buf_close(&last);
    return 0;
}
