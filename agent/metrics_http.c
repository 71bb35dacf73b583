/* /metrics over HTTP: libmicrohttpd in external mode on the libuv loop.
 *
 * Why libmicrohttpd and not our own parser: scrapers and browsers send
 * whatever HTTP/1.1 allows (keep-alive, pipelining, odd headers, slow
 * clients); MHD handles all of it, bounds memory per connection and
 * drops idle connections, and exposes the whole server as one epoll fd
 * (MHD_USE_EPOLL without an internal thread), which fits libuv exactly:
 *
 * Happy path: MHD_start_daemon() binds and listens -> uv_poll on MHD's
 * epoll fd wakes us for any socket event -> MHD_run() accepts, reads,
 * calls access_cb (on the loop thread: the agent's state is read without
 * locks) and writes -> the timer is re-armed from MHD_get_timeout() so
 * idle connections time out and work MHD left pending (edge-triggered
 * sockets with more data) is resumed.
 *
 * Failure modes: bind fails (address in use, not local) -> start returns
 * an error naming the address; rendering runs out of memory -> 503; a
 * bad request -> MHD answers 400 itself; too many connections (> 32) ->
 * MHD refuses the newest.
 */
#include "metrics_http.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"
#include "metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct {
    struct agent *a;
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    bool running;
} h;

static void reschedule(void);

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status,
                              const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result metrics_http_access_cb(void *cls,
                                              struct MHD_Connection *c,
                                              const char *url,
                                              const char *method,
                                              const char *version,
                                              const char *data, size_t *size,
                                              void **con_cls)
{
    size_t len;
    char *text;
    (void)cls, (void)version, (void)data, (void)con_cls;
    if (*size != 0)
        return MHD_NO; /* GET and HEAD have no body: drop the connection */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (strcmp(url, "/metrics") != 0)
        return answer(c, MHD_HTTP_NOT_FOUND, "try /metrics\n");
    if (!(text = metrics_render(h.a, &len)))
        return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", CONTENT_TYPE);
    enum MHD_Result rv = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rv;
}

static void metrics_http_log_cb(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_debug("metrics: %s", line);
}

static void run_mhd(void)
{
    if (h.running)
        MHD_run(h.d);
    reschedule();
}

static void metrics_http_poll_cb(uv_poll_t *p, int status, int events)
{
    (void)p, (void)status, (void)events;
    run_mhd();
}

static void metrics_http_timer_cb(uv_timer_t *t)
{
    (void)t;
    run_mhd();
}

static void reschedule(void)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (!h.running)
        return;
    if (MHD_get_timeout(h.d, &ms) == MHD_YES)
        uv_timer_start(&h.timer, metrics_http_timer_cb, ms, 0);
    else
        uv_timer_stop(&h.timer);
}

int metrics_http_start(struct agent *a, const char *addr, char *err,
                       size_t len)
{
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    if (config_parse_addr(addr, &ss) != 0) {
        snprintf(err, len, "metrics: \"%s\" is not IP:PORT", addr);
        return VC_EINVAL;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h.a = a;
    /* Port 0 in the call: MHD takes the port from SOCK_ADDR. */
    h.d = MHD_start_daemon(flags, 0, NULL, NULL, metrics_http_access_cb,
                           NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                           MHD_OPTION_CONNECTION_LIMIT, 32u,
                           MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                           MHD_OPTION_EXTERNAL_LOGGER, metrics_http_log_cb,
                           NULL, MHD_OPTION_END);
    if (!h.d) {
        snprintf(err, len, "metrics: cannot listen on %s (address in use or "
                 "not local?)", addr);
        return VC_EIO;
    }
    info = MHD_get_daemon_info(h.d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || uv_poll_init(a->loop, &h.poll, info->epoll_fd) != 0) {
        MHD_stop_daemon(h.d);
        h.d = NULL;
        snprintf(err, len, "metrics: cannot watch the server's epoll fd");
        return VC_EIO;
    }
    uv_timer_init(a->loop, &h.timer);
    uv_poll_start(&h.poll, UV_READABLE, metrics_http_poll_cb);
    h.running = true;
    reschedule();
    return 0;
}

void metrics_http_stop(void)
{
    if (!h.running)
        return;
    h.running = false;
    /* Out of libuv's epoll set before MHD closes the fd. */
    uv_close((uv_handle_t *)&h.poll, NULL);
    uv_close((uv_handle_t *)&h.timer, NULL);
    MHD_stop_daemon(h.d);
    h.d = NULL;
}
