/* Blocking client: connect, send one frame, read frames until ours.
 *
 * Happy path: client_connect() resolves each address of the list in turn
 * and connects a non-blocking socket, waiting in poll() for at most the
 * entry's share of the time left; client_send() encodes the request and
 * writes it whole; client_recv() reads the 4-byte length, then the body,
 * then decodes it into a client_response that owns both the bytes and the
 * msgpack zone.
 *
 * Failure modes: a name that does not resolve, a refused or unanswered
 * connect (next address); the agent closing the connection (-ECONNRESET)
 * or sending a frame that is too big, not msgpack or of another version;
 * the deadline passing while waiting to write or read (VC_ETIMEOUT). The
 * socket is non-blocking throughout, so no call waits past the deadline,
 * except getaddrinfo(), which has no timeout of its own.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/err.h"

#define ENTRY_MAX 256 /* bytes in one address entry */

uint64_t client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int ms_left(uint64_t deadline)
{
    uint64_t now = client_now_ms();
    if (now >= deadline)
        return 0;
    return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

/* Appends to errmsg, "; "-separated, truncating silently. */
static void msg_add(char *errmsg, size_t errlen, const char *fmt, ...)
{
    size_t n = strnlen(errmsg, errlen);
    va_list ap;
    if (n + 3 >= errlen)
        return;
    if (n > 0) {
        memcpy(errmsg + n, "; ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(errmsg + n, errlen - n, fmt, ap);
    va_end(ap);
}

/* Waits until fd is ready for events. Returns 0, VC_ETIMEOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int left = ms_left(deadline);
        if (left == 0)
            return VC_ETIMEOUT;
        int rv = poll(&p, 1, left);
        if (rv > 0)
            return 0;
        if (rv < 0 && errno != EINTR)
            return -errno;
    }
}

/* --- connecting --------------------------------------------------------- */

/* Connects fd to sa, waiting until deadline. Returns 0, VC_ETIMEOUT or
 * -errno. */
static int connect_addr(int fd, const struct sockaddr *sa, socklen_t len,
                        uint64_t deadline)
{
    int err;
    socklen_t elen = sizeof err;
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
        return -errno;
    int rv = wait_fd(fd, POLLOUT, deadline);
    if (rv != 0)
        return rv;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        return -errno;
    return -err;
}

static int new_socket(int family)
{
    return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static int connect_unix(const char *path, uint64_t deadline, int *fd,
                        const char **why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sun.sun_path) {
        *why = "socket path empty or too long";
        return VC_EINVAL;
    }
    memcpy(sun.sun_path, path, n);
    if ((*fd = new_socket(AF_UNIX)) < 0)
        return -errno;
    int rv = connect_addr(*fd, (struct sockaddr *)&sun, sizeof sun, deadline);
    if (rv != 0) {
        close(*fd);
        *fd = -1;
    }
    return rv;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "HOST" in place. Returns 0 or
 * VC_EINVAL with *why set. */
static int split_host_port(char *s, char **host, char **port, const char **why)
{
    char *colon;
    *port = CLIENT_PORT;
    if (s[0] == '[') {
        char *end = strchr(s, ']');
        if (!end || (end[1] != '\0' && end[1] != ':')) {
            *why = "expected [IPv6]:PORT";
            return VC_EINVAL;
        }
        *end = '\0';
        *host = s + 1;
        if (end[1] == ':')
            *port = end + 2;
    } else {
        *host = s;
        colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            *why = "an IPv6 address needs brackets: [ADDR]:PORT";
            return VC_EINVAL;
        }
        if (colon) {
            *colon = '\0';
            *port = colon + 1;
        }
    }
    char *end;
    long p = strtol(*port, &end, 10);
    if (**host == '\0' || **port == '\0' || *end != '\0' || p < 1 ||
        p > 65535) {
        *why = "expected HOST:PORT with a port in 1..65535";
        return VC_EINVAL;
    }
    return 0;
}

/* Tries every address the name resolves to. On failure *why points to a
 * static reason, or is NULL when the return code says it all. */
static int connect_tcp(char *entry, uint64_t deadline, int *fd,
                       const char **why)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char *host, *port;
    int rv = split_host_port(entry, &host, &port, why);
    if (rv != 0)
        return rv;
    rv = getaddrinfo(host, port, &hints, &res);
    if (rv != 0) {
        *why = rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv);
        return VC_EUNAVAILABLE;
    }
    rv = VC_EUNAVAILABLE;
    for (ai = res; ai; ai = ai->ai_next) {
        if ((*fd = new_socket(ai->ai_family)) < 0) {
            rv = -errno;
            continue;
        }
        rv = connect_addr(*fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (rv == 0)
            break;
        close(*fd);
        *fd = -1;
        if (rv == VC_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rv == 0) {
        int one = 1;
        setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return rv;
}

/* Connects to one entry of a list. On failure appends "entry: reason" to
 * errmsg. Returns 0, VC_EINVAL (bad syntax) or another negative code. */
static int connect_entry(struct client *cl, const char *entry,
                         uint64_t deadline, char *errmsg, size_t errlen)
{
    char buf[ENTRY_MAX];
    const char *why = NULL;
    int fd = -1, rv;
    uint64_t start = client_now_ms();
    if (strlen(entry) >= sizeof buf) {
        msg_add(errmsg, errlen, "%.40s...: address too long", entry);
        return VC_EINVAL;
    }
    snprintf(buf, sizeof buf, "%s", entry);
    if (strncmp(buf, "unix:", 5) == 0)
        rv = connect_unix(buf + 5, deadline, &fd, &why);
    else
        rv = connect_tcp(buf, deadline, &fd, &why);
    if (rv == 0) {
        cl->fd = fd;
        snprintf(cl->addr, sizeof cl->addr, "%s", entry);
        return 0;
    }
    if (rv == VC_ETIMEOUT)
        msg_add(errmsg, errlen, "%s: no answer to connect within %llu ms",
                entry, (unsigned long long)(client_now_ms() - start));
    else
        msg_add(errmsg, errlen, "%s: %s", entry, why ? why : vc_strerror(rv));
    return rv;
}

/* Splits a comma-separated list in place into at most max entries, spaces
 * around entries trimmed, empty entries dropped. Returns the count. */
static size_t split_list(char *s, char **items, size_t max)
{
    size_t n = 0;
    char *save;
    for (char *tok = strtok_r(s, ",", &save); tok && n < max;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok)
            items[n++] = tok;
    }
    return n;
}

/* Connects to the first reachable of items[from..n); *next is the index
 * after the one connected. */
static int connect_from(struct client *cl, char **items, size_t n, size_t *next,
                        uint64_t deadline, char *errmsg, size_t errlen)
{
    bool bad_syntax = false;
    for (size_t i = *next; i < n; i++) {
        /* An unanswered address must not eat the time of the others. */
        uint64_t now = client_now_ms();
        uint64_t share = deadline > now ? (deadline - now) / (n - i) : 0;
        int rv = connect_entry(cl, items[i], now + share, errmsg, errlen);
        *next = i + 1;
        if (rv == 0)
            return 0;
        bad_syntax |= rv == VC_EINVAL;
    }
    return bad_syntax ? VC_EINVAL : VC_EUNAVAILABLE;
}

void client_init(struct client *cl)
{
    cl->fd = -1;
    cl->next_seq = 1;
    cl->addr[0] = '\0';
    cl->seal = NULL;
    cl->seal_ctx = NULL;
}

int client_connect(struct client *cl, const char *addrs, uint64_t deadline,
                   char *errmsg, size_t errlen)
{
    char *copy = strdup(addrs), *items[CLIENT_ADDRS_MAX];
    size_t next = 0;
    int rv;
    errmsg[0] = '\0';
    if (!copy)
        return VC_ENOMEM;
    size_t n = split_list(copy, items, CLIENT_ADDRS_MAX);
    if (n == 0) {
        snprintf(errmsg, errlen, "empty address list");
        rv = VC_EINVAL;
    } else {
        rv = connect_from(cl, items, n, &next, deadline, errmsg, errlen);
    }
    free(copy);
    return rv;
}

void client_close(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cl->seal = NULL; /* a session dies with its connection */
    cl->seal_ctx = NULL;
}

/* --- frames ------------------------------------------------------------- */

/* Writes all of buf. Returns 0, VC_ETIMEOUT or -errno. */
static int write_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rv = wait_fd(fd, POLLOUT, deadline);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* Reads exactly len bytes. Returns 0, VC_ETIMEOUT, -ECONNRESET on end of
 * stream, or -errno. */
static int read_all(int fd, char *buf, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rv = wait_fd(fd, POLLIN, deadline);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int io_failed(const struct client *cl, int rv, const char *what,
                     char *errmsg, size_t errlen)
{
    if (rv == VC_ETIMEOUT)
        snprintf(errmsg, errlen, "%s: no answer in time", cl->addr);
    else if (rv == -ECONNRESET)
        snprintf(errmsg, errlen,
                 "%s: connection closed by the agent while "
                 "%s",
                 cl->addr, what);
    else
        snprintf(errmsg, errlen, "%s: %s: %s", cl->addr, what, vc_strerror(rv));
    return rv;
}

static client_seal_fn sealer;
static void *sealer_ctx;

void client_set_sealer(client_seal_fn fn, void *ctx)
{
    sealer = fn;
    sealer_ctx = ctx;
}

/* Passes the encoded frame in out through the connection's sealer, else
 * the process's, if any. */
static int seal(const struct client *cl, struct mp_buf *out, char *errmsg,
                size_t errlen)
{
    struct mp_buf sealed;
    client_seal_fn fn = cl->seal ? cl->seal : sealer;
    void *ctx = cl->seal ? cl->seal_ctx : sealer_ctx;
    int rv;
    if (!fn)
        return 0;
    mp_buf_init(&sealed);
    if ((rv = fn(ctx, out->data, out->len, &sealed)) != 0) {
        snprintf(errmsg, errlen, "signing the request: %s", vc_strerror(rv));
        mp_buf_close(&sealed);
        return rv;
    }
    mp_buf_close(out);
    *out = sealed;
    return 0;
}

int client_send(struct client *cl, struct proto_request *req, uint64_t deadline,
                char *errmsg, size_t errlen)
{
    struct mp_buf out;
    int rv;
    if (cl->fd < 0) {
        snprintf(errmsg, errlen, "not connected");
        return -ENOTCONN;
    }
    req->seq = cl->next_seq++;
    mp_buf_init(&out);
    rv = proto_request_encode(req, &out, errmsg, errlen);
    if (rv == 0)
        rv = seal(cl, &out, errmsg, errlen);
    if (rv == 0) {
        rv = write_all(cl->fd, out.data, out.len, deadline);
        if (rv != 0)
            io_failed(cl, rv, "sending", errmsg, errlen);
    }
    mp_buf_close(&out);
    return rv;
}

void client_response_init(struct client_response *r)
{
    memset(r, 0, sizeof *r);
}

void client_response_close(struct client_response *r)
{
    if (r->zone_live)
        msgpack_zone_destroy(&r->zone);
    free(r->buf);
    client_response_init(r);
}

static int decode_failed(const struct client *cl, int rv, char *errmsg,
                         size_t errlen)
{
    snprintf(errmsg, errlen, "%s: %s", cl->addr,
             rv == VC_EVERSION ? "the agent answers in another protocol "
                                 "version"
                               : "the answer is not a valid frame (is this "
                                 "a VirtCloud agent's client API?)");
    return rv;
}

int client_recv(struct client *cl, struct client_response *r, uint64_t deadline,
                char *errmsg, size_t errlen)
{
    uint8_t hdr[PROTO_FRAME_HDR];
    uint32_t len;
    client_response_init(r);
    int rv = read_all(cl->fd, (char *)hdr, sizeof hdr, deadline);
    if (rv != 0)
        return io_failed(cl, rv, "waiting for the answer", errmsg, errlen);
    if ((rv = proto_response_len(hdr, &len)) != 0)
        return decode_failed(cl, rv, errmsg, errlen);
    if (!(r->buf = malloc(len)) || !msgpack_zone_init(&r->zone, 4096)) {
        snprintf(errmsg, errlen, "out of memory for a %u-byte answer", len);
        return VC_ENOMEM;
    }
    r->zone_live = true;
    r->len = len;
    rv = read_all(cl->fd, r->buf, len, deadline);
    if (rv != 0)
        return io_failed(cl, rv, "reading the answer", errmsg, errlen);
    rv = proto_response_decode(r->buf, len, &r->zone, &r->resp);
    if (rv != 0)
        return decode_failed(cl, rv, errmsg, errlen);
    return 0;
}

/* --- non-blocking reading ------------------------------------------------ */

void client_reader_init(struct client_reader *rd)
{
    memset(rd, 0, sizeof *rd);
}

void client_reader_close(struct client_reader *rd)
{
    free(rd->buf);
    client_reader_init(rd);
}

/* Makes room for want bytes in rd. Returns 0 or VC_ENOMEM. */
static int reader_reserve(struct client_reader *rd, size_t want)
{
    if (want <= rd->cap)
        return 0;
    size_t cap = rd->cap ? rd->cap : 4096;
    while (cap < want)
        cap *= 2;
    char *b = realloc(rd->buf, cap);
    if (!b)
        return VC_ENOMEM;
    rd->buf = b;
    rd->cap = cap;
    return 0;
}

/* Bytes rd needs to hold a whole frame: the header, then header + body.
 * Returns 0 or VC_ETOOBIG. */
static int reader_want(const struct client_reader *rd, size_t *want)
{
    uint32_t len;
    *want = PROTO_FRAME_HDR;
    if (rd->len < PROTO_FRAME_HDR)
        return 0;
    int rv = proto_response_len((const uint8_t *)rd->buf, &len);
    *want = PROTO_FRAME_HDR + (size_t)len;
    return rv;
}

/* Reads from fd until rd holds a whole frame or the socket is drained.
 * Returns 0, -ECONNRESET at end of stream, VC_ETOOBIG, VC_ENOMEM or
 * -errno. */
static int reader_fill(int fd, struct client_reader *rd)
{
    size_t want;
    int rv;
    while ((rv = reader_want(rd, &want)) == 0 && rd->len < want) {
        /* Read ahead, so a frame and the next one's header take one call. */
        if ((rv = reader_reserve(rd, want < 4096 ? 4096 : want)) != 0)
            return rv;
        ssize_t n = recv(fd, rd->buf + rd->len, rd->cap - rd->len, 0);
        if (n > 0) {
            rd->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    }
    return rv;
}

int client_recv_nb(struct client *cl, struct client_reader *rd,
                   struct client_response *r, char *errmsg, size_t errlen)
{
    size_t want;
    client_response_init(r);
    int rv = reader_fill(cl->fd, rd);
    if (rv == VC_ETOOBIG)
        return decode_failed(cl, rv, errmsg, errlen);
    if (rv == VC_ENOMEM) {
        snprintf(errmsg, errlen, "out of memory for an answer");
        return rv;
    }
    /* Bytes already buffered are answered before a reset is reported. */
    if (reader_want(rd, &want) != 0 || rd->len < want)
        return rv != 0 ? io_failed(cl, rv, "waiting for the answer", errmsg,
                                   errlen)
                       : -EAGAIN;
    r->len = want - PROTO_FRAME_HDR;
    if (!(r->buf = malloc(r->len ? r->len : 1)) ||
        !msgpack_zone_init(&r->zone, 4096)) {
        snprintf(errmsg, errlen, "out of memory for a %zu-byte answer",
                 r->len);
        return VC_ENOMEM;
    }
    r->zone_live = true;
    memcpy(r->buf, rd->buf + PROTO_FRAME_HDR, r->len);
    memmove(rd->buf, rd->buf + want, rd->len - want);
    rd->len -= want;
    rv = proto_response_decode(r->buf, r->len, &r->zone, &r->resp);
    return rv != 0 ? decode_failed(cl, rv, errmsg, errlen) : 0;
}

int client_call(struct client *cl, struct proto_request *req,
                struct client_response *r, uint64_t deadline, char *errmsg,
                size_t errlen)
{
    int rv = client_send(cl, req, deadline, errmsg, errlen);
    client_response_init(r);
    while (rv == 0) {
        rv = client_recv(cl, r, deadline, errmsg, errlen);
        if (rv != 0 || r->resp.seq == req->seq)
            return rv;
        client_response_close(r); /* a late answer to an earlier call */
    }
    return rv;
}

/* --- one-shot requests -------------------------------------------------- */

/* Whether sending req again, to the same or another agent, cannot apply
 * it twice. */
static bool retry_safe(const struct proto_request *req)
{
    return req->op != PROTO_OP_SUBMIT || req->cmd.req_id.n > 0;
}

/* Answers that mean "this agent cannot serve you, another one may". */
static bool try_next(int code)
{
    return code == VC_ESHUTDOWN || code == VC_ENOTLEADER;
}

/* Runs req on the agents items[0..n) until one answers. tried collects
 * "address: reason" of the agents skipped; it becomes the message when no
 * agent answers. */
static int request_from(char **items, size_t n, struct proto_request *req,
                        uint64_t deadline, struct client_response *r,
                        char *tried, char *errmsg, size_t errlen)
{
    size_t next = 0;
    bool lost = false; /* a command was sent and its answer lost */
    for (;;) {
        struct client cl;
        client_init(&cl);
        int rv = connect_from(&cl, items, n, &next, deadline, tried, errlen);
        if (rv != 0) {
            snprintf(errmsg, errlen, "%s%s", tried,
                     lost ? " (the command may have been applied)" : "");
            return lost ? VC_EUNKNOWN : rv;
        }
        client_response_close(r);
        rv = client_call(&cl, req, r, deadline, errmsg, errlen);
        client_close(&cl);
        if (rv == 0 && !(try_next(r->resp.code) && next < n))
            return 0;
        if (rv == 0) {
            msg_add(tried, errlen, "%s: %s", cl.addr,
                    vc_strerror(r->resp.code));
            continue;
        }
        if (rv == VC_ETIMEOUT || rv == VC_EMALFORMED || rv == VC_EVERSION ||
            rv == VC_ETOOBIG || rv == VC_EINVAL || rv == VC_ENOMEM)
            return rv; /* no time left, or the next agent would agree */
        /* The connection broke after it was made. */
        lost |= req->op == PROTO_OP_SUBMIT;
        if (!retry_safe(req))
            return VC_EUNKNOWN;
        msg_add(tried, errlen, "%s", errmsg);
    }
}

int client_request(const char *addrs, struct proto_request *req,
                   uint32_t timeout_ms, struct client_response *r, char *errmsg,
                   size_t errlen)
{
    uint64_t deadline = client_now_ms() + timeout_ms;
    char *copy = strdup(addrs), *items[CLIENT_ADDRS_MAX];
    char *tried = calloc(1, errlen);
    int rv = VC_ENOMEM;
    client_response_init(r);
    snprintf(errmsg, errlen, "out of memory");
    if (copy && tried) {
        size_t n = split_list(copy, items, CLIENT_ADDRS_MAX);
        if (n == 0) {
            snprintf(errmsg, errlen, "empty address list");
            rv = VC_EINVAL;
        } else {
            rv =
                request_from(items, n, req, deadline, r, tried, errmsg, errlen);
        }
    }
    free(copy);
    free(tried);
    return rv;
}
