/* The joining side: a new site's agent asks an existing member to add it.
 *
 * Happy path: the agent starts with an empty data dir and `join` set; its
 * raft has no configuration, so it waits. join_tick() sends JOIN (this
 * site's record and raft address) to the join address once a second until
 * this server appears in its own raft configuration as standby or voter,
 * which happens when the leader's entries arrive. Restarting a half-joined
 * agent simply repeats the (idempotent) request.
 *
 * Failure modes: the join address unreachable or without a leader -> retry;
 * a refusal that retrying cannot fix (name or address taken) -> logged once
 * and the agent exits, since running unjoined would only mislead.
 */
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "auth.h"
#include "log.h"

static void join_closed_cb(uv_handle_t *h)
{
    struct agent *a = h->data;
    a->join_busy = false;
    free(a->join_buf);
    a->join_buf = NULL;
    a->join_len = 0;
}

static void join_end(struct agent *a)
{
    if (!uv_is_closing((uv_handle_t *)&a->join_tcp))
        uv_close((uv_handle_t *)&a->join_tcp, join_closed_cb);
}

static bool permanent(int code)
{
    return code == VC_ECONFLICT || code == VC_EEXISTS || code == VC_EINVAL ||
           code == VC_EMALFORMED || code == VC_EVERSION || code == VC_EDENIED;
}

static void on_answer(struct agent *a, const struct proto_response *resp)
{
    char msg[VC_MSG_MAX + 1];
    mp_str_copy(resp->msg.n > VC_MSG_MAX ? mp_cstr("") : resp->msg, msg,
                sizeof msg);
    if (resp->code == 0) {
        log_info("join accepted: %s", msg);
        return;
    }
    if (permanent(resp->code)) {
        log_error("join refused by %s: %s", a->cfg.join, msg);
        a->exit_code = 1;
        a->fatal = true;
        return;
    }
    log_info("join via %s not done yet: %s; retrying", a->cfg.join,
             msg[0] ? msg : vc_strerror(resp->code));
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct agent *a = h->data;
    (void)hint;
    size_t cap = 65536;
    if (!a->join_buf && !(a->join_buf = malloc(cap))) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(a->join_buf + a->join_len,
                       (unsigned)(cap - a->join_len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct agent *a = s->data;
    uint32_t len;
    (void)buf;
    if (n < 0) {
        join_end(a);
        return;
    }
    a->join_len += (size_t)n;
    if (a->join_len < PROTO_FRAME_HDR)
        return;
    if (proto_response_len((uint8_t *)a->join_buf, &len) != 0 ||
        len > 65536 - PROTO_FRAME_HDR) {
        join_end(a);
        return;
    }
    if (a->join_len < PROTO_FRAME_HDR + len)
        return;
    msgpack_zone zone;
    struct proto_response resp;
    if (msgpack_zone_init(&zone, 4096)) {
        if (proto_response_decode(a->join_buf + PROTO_FRAME_HDR, len, &zone,
                                  &resp) == 0)
            on_answer(a, &resp);
        msgpack_zone_destroy(&zone);
    }
    join_end(a);
}

static void write_cb(uv_write_t *req, int status)
{
    struct agent *a = req->handle->data;
    free(req->data);
    free(req);
    if (status != 0)
        join_end(a);
}

static void send_join(struct agent *a)
{
    struct proto_request req;
    struct mp_buf out;
    char err[256];
    memset(&req, 0, offsetof(struct proto_request, cmd));
    req.op = PROTO_OP_JOIN;
    req.timeout_ms = 30000;
    req.name = mp_cstr("");
    req.peer = mp_cstr(a->cfg.peer);
    proto_cmd_init(&req.cmd, PROTO_CMD_SITE_ADD);
    req.cmd.name = mp_cstr(a->cfg.site);
    req.cmd.addr = mp_cstr(a->cfg.advertise);
    req.cmd.pool = a->cfg.vlans;
    req.cmd.uplink = a->cfg.uplink;
    req.cmd.svlan = a->cfg.svlan;
    req.cmd.managed = a->cfg.managed;
    auth_join_fill(a, &req.cmd);
    mp_buf_init(&out);
    if (auth_request_encode(a, &req, &out, err, sizeof err) != 0) {
        log_error("join: %s", err);
        mp_buf_close(&out);
        join_end(a);
        return;
    }
    uv_write_t *w = malloc(sizeof *w);
    size_t len;
    char *data = mp_buf_take(&out, &len);
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    if (!w || (w->data = data, uv_write(w, (uv_stream_t *)&a->join_tcp, &buf,
                                        1, write_cb)) != 0) {
        free(w);
        free(data);
        join_end(a);
        return;
    }
    if (uv_read_start((uv_stream_t *)&a->join_tcp, alloc_cb, read_cb) != 0)
        join_end(a);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct agent *a = req->data;
    if (status != 0) {
        log_debug("join: cannot reach %s: %s", a->cfg.join,
                  uv_strerror(status));
        join_end(a);
        return;
    }
    send_join(a);
}

void join_tick(struct agent *a, uint64_t now)
{
    struct sockaddr_storage ss;
    int role;
    if (!a->cfg.join[0] || a->join_busy || a->stopping)
        return;
    role = consensus_member_role(&a->cons, consensus_site_id(a->cfg.site),
                                 NULL);
    if (role == RAFT_VOTER || role == RAFT_STANDBY) {
        if (!a->joined) {
            log_info("member of the cluster as %s",
                     role == RAFT_VOTER ? "voter" : "standby");
            a->joined = true;
        }
        return;
    }
    if (now - a->join_last_ms < 1000)
        return;
    a->join_last_ms = now;
    if (config_parse_addr(a->cfg.join, &ss) != 0)
        return;
    uv_tcp_init(a->loop, &a->join_tcp);
    a->join_tcp.data = a;
    a->join_creq.data = a;
    a->join_busy = true;
    if (uv_tcp_connect(&a->join_creq, &a->join_tcp, (struct sockaddr *)&ss,
                       connect_cb) != 0)
        join_end(a);
}

void join_close(struct agent *a)
{
    if (a->join_busy)
        join_end(a);
}
