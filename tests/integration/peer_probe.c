/* vc-peer-probe: one secure peer channel (agent/channel.h) to an agent's
 * peer port as a site, for test_raft_records.py.
 *
 *   vc-peer-probe --peer HOST:PORT --key KEYFILE --cluster-id ID
 *                 --expect vc1:... [--address ADDR] [--purpose raft|forward]
 *                 [--pause MS] [--send HEX]... [--wait MS]
 *
 * Dials HOST:PORT, runs the handshake as the initiator with the site key in
 * KEYFILE, expecting the responder's pinned key, then seals each --send
 * (hex bytes: one channel_send() each, in order; --pause MS sleeps before
 * each send but the first, so that the agent reads them apart) and waits
 * up to --wait MS (default 1000) for the agent to close the connection.
 * Prints one line: "closed after N ms" (EOF or reset, N counted from the
 * last send) or "open". Exit 0 once the handshake completed, 2 if it
 * failed (why on stderr), 1 on a usage or system error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/channel.h"
#include "agent/keys.h"

#define HANDSHAKE_MS 5000
#define MAX_SENDS 64

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(void)
{
    fprintf(stderr, "usage: vc-peer-probe --peer HOST:PORT --key KEYFILE "
                    "--cluster-id ID --expect vc1:... [--address ADDR] "
                    "[--purpose raft|forward] [--pause MS] [--send HEX]... "
                    "[--wait MS]\n");
    return 1;
}

static int dial(const char *addr)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints = {0}, *res, *ai;
    int fd = -1;
    if (!colon || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "vc-peer-probe: bad address %s\n", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        fprintf(stderr, "vc-peer-probe: cannot resolve %s\n", addr);
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "vc-peer-probe: cannot connect to %s: %s\n", addr,
                strerror(errno));
    return fd;
}

/* Writes all of b and empties it. 0, or -errno (-EPIPE, -ECONNRESET: the
 * peer closed). */
static int flush(int fd, struct channel_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->base + off, b->len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    b->len = 0;
    return 0;
}

/* Reads what is there within ms. >0 bytes, 0 on EOF, -ETIMEDOUT, or
 * -errno. */
static ssize_t read_within(int fd, uint8_t *buf, size_t cap, long long ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rv;
    if (ms < 0)
        ms = 0;
    do
        rv = poll(&pfd, 1, (int)ms);
    while (rv < 0 && errno == EINTR);
    if (rv < 0)
        return -errno;
    if (rv == 0)
        return -ETIMEDOUT;
    ssize_t n;
    do
        n = recv(fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a malloc'ed buffer. 0, or -1 if it is not hex. */
static int unhex(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 || !(*out = malloc(n / 2 ? n / 2 : 1)))
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*out);
            return -1;
        }
        (*out)[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

/* Runs the initiator's handshake on fd. 0 or -1 (why on stderr). */
static int handshake(int fd, struct channel *ch, struct channel_buf *wire,
                     struct channel_buf *plain)
{
    uint8_t buf[4096];
    long long deadline = now_ms() + HANDSHAKE_MS;
    int rv = channel_start(ch, wire);
    if (rv == 0)
        rv = flush(fd, wire);
    while (rv == 0 && !channel_established(ch)) {
        ssize_t n = read_within(fd, buf, sizeof buf, deadline - now_ms());
        if (n == -ETIMEDOUT) {
            fprintf(stderr, "vc-peer-probe: handshake: no answer within "
                            "%d ms\n", HANDSHAKE_MS);
            return -1;
        }
        if (n <= 0) {
            fprintf(stderr, "vc-peer-probe: handshake: the agent closed "
                            "the connection (%s)\n",
                    n == 0 ? "EOF" : strerror((int)-n));
            return -1;
        }
        rv = channel_recv(ch, buf, (size_t)n, wire, plain);
        if (rv == 0)
            rv = flush(fd, wire);
    }
    if (rv != 0) {
        fprintf(stderr, "vc-peer-probe: handshake: %s\n",
                channel_error(ch)[0] ? channel_error(ch) : strerror(-rv));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *peer = NULL, *key = NULL, *cid = NULL, *expect = NULL;
    const char *address = "127.0.0.1:1";
    const char *sends[MAX_SENDS];
    unsigned nsends = 0;
    long long wait_ms = 1000, pause_ms = 0;
    enum channel_purpose purpose = CHANNEL_RAFT;
    struct keys_pair self;
    uint8_t pk[KEYS_PUBLIC_BYTES];
    char err[256];
    struct channel ch;
    struct channel_buf wire = {0}, plain = {0};
    int fd, rc = 1;
    bool closed = false;
    long long t0, left;

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (strcmp(argv[i], "--peer") == 0)
            peer = v;
        else if (strcmp(argv[i], "--key") == 0)
            key = v;
        else if (strcmp(argv[i], "--cluster-id") == 0)
            cid = v;
        else if (strcmp(argv[i], "--expect") == 0)
            expect = v;
        else if (strcmp(argv[i], "--address") == 0)
            address = v;
        else if (strcmp(argv[i], "--purpose") == 0 &&
                 (strcmp(v, "raft") == 0 || strcmp(v, "forward") == 0))
            purpose = strcmp(v, "raft") == 0 ? CHANNEL_RAFT : CHANNEL_FORWARD;
        else if (strcmp(argv[i], "--send") == 0 && nsends < MAX_SENDS)
            sends[nsends++] = v;
        else if (strcmp(argv[i], "--wait") == 0)
            wait_ms = atoll(v);
        else if (strcmp(argv[i], "--pause") == 0)
            pause_ms = atoll(v);
        else
            return usage();
        i++;
    }
    if (!peer || !key || !cid || !expect || wait_ms < 0 || pause_ms < 0 ||
        pause_ms > 60000)
        return usage();
    if (keys_init() != 0)
        return 1;
    if (keys_parse_public(expect, pk, err, sizeof err) != 0 ||
        keys_load_private(key, &self, err, sizeof err) != 0) {
        fprintf(stderr, "vc-peer-probe: %s\n", err);
        return 1;
    }
    struct channel_config cfg = {
        .initiator = true,
        .self = &self,
        .cluster_id = cid,
        .address = address,
        .expect = pk,
        .purpose = purpose,
    };
    if (channel_init(&ch, &cfg) != 0) {
        fprintf(stderr, "vc-peer-probe: %s\n", channel_error(&ch));
        keys_wipe(&self);
        return 1;
    }
    if ((fd = dial(peer)) < 0)
        goto out;
    if (handshake(fd, &ch, &wire, &plain) != 0) {
        rc = 2;
        goto out;
    }
    rc = 0;
    for (unsigned i = 0; i < nsends && !closed; i++) {
        uint8_t *data;
        size_t len;
        if (i && pause_ms) {
            struct timespec ts = {pause_ms / 1000, pause_ms % 1000 * 1000000};
            nanosleep(&ts, NULL);
        }
        if (unhex(sends[i], &data, &len) != 0) {
            fprintf(stderr, "vc-peer-probe: --send %s: not hex\n", sends[i]);
            rc = 1;
            goto out;
        }
        int rv = channel_send(&ch, data, len, &wire);
        free(data);
        if (rv != 0) {
            fprintf(stderr, "vc-peer-probe: seal: %s\n", channel_error(&ch));
            rc = 1;
            goto out;
        }
        rv = flush(fd, &wire);
        if (rv == -EPIPE || rv == -ECONNRESET)
            closed = true; /* closed before we were done: counts as 0 ms */
        else if (rv != 0) {
            fprintf(stderr, "vc-peer-probe: send: %s\n", strerror(-rv));
            rc = 1;
            goto out;
        }
    }
    t0 = now_ms();
    left = wait_ms;
    while (!closed && left > 0) {
        uint8_t buf[4096];
        ssize_t n = read_within(fd, buf, sizeof buf, left);
        if (n == 0 || n == -ECONNRESET || n == -EPIPE)
            closed = true;
        else if (n < 0 && n != -ETIMEDOUT) {
            fprintf(stderr, "vc-peer-probe: read: %s\n", strerror((int)-n));
            rc = 1;
            goto out;
        }
        /* Bytes from the agent (none expected on a raft connection) are
         * read and dropped: only the close matters here. */
        left = wait_ms - (now_ms() - t0);
    }
    if (closed)
        printf("closed after %lld ms\n", now_ms() - t0);
    else
        printf("open\n");
out:
    if (fd >= 0)
        close(fd);
    channel_buf_free(&wire);
    channel_buf_free(&plain);
    channel_close(&ch);
    keys_wipe(&self);
    return rc;
}
