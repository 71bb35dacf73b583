#include "frame.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

static int frame_len(const uint8_t hdr[PROTO_FRAME_HDR], uint32_t *len,
                     uint32_t max)
{
    *len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
           (uint32_t)hdr[2] << 8 | hdr[3];
    return *len > max || *len == 0 ? VC_ETOOBIG : 0;
}

int proto_frame_len(const uint8_t hdr[PROTO_FRAME_HDR], uint32_t *len)
{
    return frame_len(hdr, len, PROTO_FRAME_MAX);
}

int proto_response_len(const uint8_t hdr[PROTO_FRAME_HDR], uint32_t *len)
{
    return frame_len(hdr, len, PROTO_RESPONSE_MAX);
}

static void put_len(struct mp_buf *out, size_t start)
{
    uint32_t n = (uint32_t)(out->len - start - PROTO_FRAME_HDR);
    uint8_t *p = (uint8_t *)out->data + start;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

int proto_frame_begin(msgpack_packer *pk, struct mp_buf *out, size_t *start)
{
    static const char zero[PROTO_FRAME_HDR];
    *start = out->len;
    mp_packer_init(pk, out);
    /* The packer's write callback appends raw bytes to out. */
    return pk->callback(pk->data, zero, sizeof zero);
}

int proto_frame_end(struct mp_buf *out, size_t start, uint32_t max)
{
    if (out->oom)
        return VC_ENOMEM;
    if (out->len - start - PROTO_FRAME_HDR > max) {
        out->len = start;
        return VC_ETOOBIG;
    }
    put_len(out, start);
    return 0;
}

int proto_request_encode(const struct proto_request *req, struct mp_buf *out,
                         char *errmsg, size_t errlen)
{
    msgpack_packer pk;
    size_t start;
    if (req->op < 1 || req->op > PROTO_OP_MAX) {
        snprintf(errmsg, errlen, "unknown operation %u", req->op);
        return VC_EINVAL;
    }
    if (req->op == PROTO_OP_SUBMIT || req->op == PROTO_OP_JOIN) {
        int rv = proto_cmd_validate(&req->cmd, errmsg, errlen);
        if (rv != 0)
            return rv;
    }
    if (req->op == PROTO_OP_WATCH) {
        int rv = proto_watch_validate(&req->watch, errmsg, errlen);
        if (rv != 0)
            return rv;
        if (req->watch.kind != PROTO_WATCH_SUBSCRIBE &&
            req->watch.kind != PROTO_WATCH_REPORT) {
            snprintf(errmsg, errlen, "watch: a request carries a subscribe "
                     "or a report");
            return VC_EINVAL;
        }
    }
    if (req->op == PROTO_OP_AUDIT &&
        (req->audit.limit < 1 || req->audit.limit > PROTO_AUDIT_LIMIT_MAX ||
         req->audit.name.n > VC_NAME_MAX)) {
        snprintf(errmsg, errlen, "audit: limit 1..%d, name at most %d bytes",
                 PROTO_AUDIT_LIMIT_MAX, VC_NAME_MAX);
        return VC_EINVAL;
    }
    if (req->op == PROTO_OP_JOIN && (req->cmd.type != PROTO_CMD_SITE_ADD ||
                                     req->peer.n == 0 ||
                                     req->peer.n > VC_ADDR_MAX)) {
        snprintf(errmsg, errlen, "join: needs a site-add and a peer address");
        return VC_EINVAL;
    }
    proto_frame_begin(&pk, out, &start);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, PROTO_FRAME_VERSION);
    msgpack_pack_uint32(&pk, req->seq);
    msgpack_pack_uint8(&pk, req->op);
    msgpack_pack_uint8(&pk, req->flags);
    msgpack_pack_uint32(&pk, req->timeout_ms);
    switch (req->op) {
    case PROTO_OP_SUBMIT:
        proto_cmd_pack(&pk, &req->cmd);
        break;
    case PROTO_OP_JOIN:
        msgpack_pack_array(&pk, 2);
        proto_cmd_pack(&pk, &req->cmd);
        mp_pack_str(&pk, req->peer);
        break;
    case PROTO_OP_SITES:
    case PROTO_OP_CLUSTERS:
    case PROTO_OP_LOGLEVEL:
        mp_pack_str(&pk, req->name.p ? req->name : mp_cstr(""));
        break;
    case PROTO_OP_WATCH:
        proto_watch_pack(&pk, &req->watch);
        break;
    case PROTO_OP_AUDIT:
        msgpack_pack_array(&pk, 4);
        mp_pack_str(&pk, req->audit.name.p ? req->audit.name : mp_cstr(""));
        msgpack_pack_uint64(&pk, req->audit.since_ms);
        msgpack_pack_uint64(&pk, req->audit.after_seq);
        msgpack_pack_uint32(&pk, req->audit.limit);
        break;
    case PROTO_OP_SESSION:
        msgpack_pack_bin(&pk, PROTO_SESSION_KEY);
        msgpack_pack_bin_body(&pk, req->session_pk, PROTO_SESSION_KEY);
        break;
    default:
        msgpack_pack_nil(&pk);
    }
    int rv = proto_frame_end(out, start, PROTO_FRAME_MAX);
    if (rv != 0)
        snprintf(errmsg, errlen, "%s", vc_strerror(rv));
    return rv;
}

/* [name, since_ms, after_seq, limit] of PROTO_OP_AUDIT. */
static int audit_unpack(const msgpack_object *o, struct proto_audit_query *q,
                        char *errmsg, size_t errlen)
{
    const msgpack_object *f;
    uint32_t n;
    uint64_t limit;
    if (mp_get_array(o, 4, 4, &f, &n) != 0 ||
        mp_get_str(&f[0], VC_NAME_MAX, &q->name) != 0 ||
        mp_get_u64(&f[1], &q->since_ms) != 0 ||
        mp_get_u64(&f[2], &q->after_seq) != 0 ||
        mp_get_uint(&f[3], PROTO_AUDIT_LIMIT_MAX, &limit) != 0 || limit == 0) {
        snprintf(errmsg, errlen, "malformed audit query: [name, since_ms, "
                 "after_seq, limit 1..%d]", PROTO_AUDIT_LIMIT_MAX);
        return VC_EMALFORMED;
    }
    q->limit = (uint32_t)limit;
    return 0;
}

int proto_request_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_request *req, char *errmsg,
                         size_t errlen)
{
    msgpack_object root;
    const msgpack_object *f;
    uint32_t n;
    uint64_t version, seq, op, flags, timeout;
    memset(req, 0, offsetof(struct proto_request, cmd));
    req->name = mp_cstr("");
    req->peer = mp_cstr("");
    if (mp_decode(data, len, zone, &root) != 0) {
        snprintf(errmsg, errlen, "request is not valid bounded msgpack");
        return VC_EMALFORMED;
    }
    if (mp_get_array(&root, 6, 6, &f, &n) != 0 ||
        mp_get_u64(&f[0], &version) != 0 ||
        mp_get_uint(&f[1], UINT32_MAX, &seq) != 0) {
        snprintf(errmsg, errlen, "request is not [version, seq, op, flags, "
                                 "timeout, body]");
        return VC_EMALFORMED;
    }
    req->seq = (uint32_t)seq;
    if (version != PROTO_FRAME_VERSION) {
        snprintf(errmsg, errlen, "client protocol version %llu (this agent "
                 "speaks %d)", (unsigned long long)version,
                 PROTO_FRAME_VERSION);
        return VC_EVERSION;
    }
    if (mp_get_uint(&f[2], PROTO_OP_MAX, &op) != 0 || op < 1 ||
        mp_get_uint(&f[3], 255, &flags) != 0 ||
        mp_get_uint(&f[4], UINT32_MAX, &timeout) != 0) {
        snprintf(errmsg, errlen, "malformed request header");
        return VC_EMALFORMED;
    }
    req->op = (uint8_t)op;
    req->flags = (uint8_t)flags;
    req->timeout_ms = (uint32_t)timeout;
    switch (req->op) {
    case PROTO_OP_SUBMIT:
        return proto_cmd_unpack(&f[5], &req->cmd, errmsg, errlen);
    case PROTO_OP_JOIN: {
        const msgpack_object *b;
        uint32_t nb;
        int rv;
        if (mp_get_array(&f[5], 2, 2, &b, &nb) != 0 ||
            mp_get_str(&b[1], VC_ADDR_MAX, &req->peer) != 0 ||
            req->peer.n == 0) {
            snprintf(errmsg, errlen, "malformed join request");
            return VC_EMALFORMED;
        }
        if ((rv = proto_cmd_unpack(&b[0], &req->cmd, errmsg, errlen)) != 0)
            return rv;
        if (req->cmd.type != PROTO_CMD_SITE_ADD) {
            snprintf(errmsg, errlen, "join: body must carry a site-add");
            return VC_EMALFORMED;
        }
        return 0;
    }
    case PROTO_OP_WATCH: {
        int rv = proto_watch_unpack(&f[5], zone, &req->watch, errmsg, errlen);
        if (rv == 0 && req->watch.kind != PROTO_WATCH_SUBSCRIBE &&
            req->watch.kind != PROTO_WATCH_REPORT) {
            snprintf(errmsg, errlen, "watch: a request carries a subscribe "
                     "or a report");
            rv = VC_EMALFORMED;
        }
        return rv;
    }
    case PROTO_OP_SITES:
    case PROTO_OP_CLUSTERS:
        if (mp_get_str(&f[5], VC_NAME_MAX, &req->name) != 0) {
            snprintf(errmsg, errlen, "malformed name filter");
            return VC_EMALFORMED;
        }
        return 0;
    case PROTO_OP_AUDIT:
        return audit_unpack(&f[5], &req->audit, errmsg, errlen);
    case PROTO_OP_LOGLEVEL:
        if (mp_get_str(&f[5], PROTO_LEVEL_MAX, &req->name) != 0) {
            snprintf(errmsg, errlen, "malformed log level");
            return VC_EMALFORMED;
        }
        return 0;
    case PROTO_OP_SESSION:
        if (f[5].type != MSGPACK_OBJECT_BIN ||
            f[5].via.bin.size != PROTO_SESSION_KEY) {
            snprintf(errmsg, errlen, "session: body must be a %d-byte key",
                     PROTO_SESSION_KEY);
            return VC_EMALFORMED;
        }
        memcpy(req->session_pk, f[5].via.bin.ptr, PROTO_SESSION_KEY);
        return 0;
    default:
        return 0;
    }
}

void proto_response_begin(msgpack_packer *pk, struct mp_buf *out,
                          size_t *start, uint32_t seq, int code,
                          const char *msg, const char *leader)
{
    proto_frame_begin(pk, out, start);
    msgpack_pack_array(pk, 6);
    msgpack_pack_uint8(pk, PROTO_FRAME_VERSION);
    msgpack_pack_uint32(pk, seq);
    msgpack_pack_int64(pk, code);
    mp_pack_cstr(pk, msg ? msg : "");
    mp_pack_cstr(pk, leader ? leader : "");
}

int proto_response_finish(struct mp_buf *out, size_t start)
{
    return proto_frame_end(out, start, PROTO_RESPONSE_MAX);
}

int proto_response_decode(const void *data, size_t len, msgpack_zone *zone,
                          struct proto_response *resp)
{
    msgpack_object root;
    const msgpack_object *f;
    uint32_t n;
    uint64_t version, seq;
    memset(resp, 0, sizeof *resp);
    if (mp_decode(data, len, zone, &root) != 0 ||
        mp_get_array(&root, 6, 6, &f, &n) != 0 ||
        mp_get_u64(&f[0], &version) != 0)
        return VC_EMALFORMED;
    if (version != PROTO_FRAME_VERSION)
        return VC_EVERSION;
    if (mp_get_uint(&f[1], UINT32_MAX, &seq) != 0 ||
        mp_get_str(&f[3], 4096, &resp->msg) != 0 ||
        mp_get_str(&f[4], VC_NAME_MAX, &resp->leader) != 0)
        return VC_EMALFORMED;
    if (f[2].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
        f[2].via.i64 >= -100000)
        resp->code = (int)f[2].via.i64;
    else if (!(f[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
               f[2].via.u64 == 0))
        return VC_EMALFORMED;
    resp->seq = (uint32_t)seq;
    resp->payload = f[5];
    return 0;
}
