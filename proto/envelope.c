#include "envelope.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "frame.h"

bool proto_envelope_is(const void *data, size_t len)
{
    const uint8_t *p = data;
    return len >= 2 && p[0] == 0x96 && p[1] == PROTO_ENVELOPE_VERSION;
}

static bool get_bin(const msgpack_object *o, uint32_t min, uint32_t max,
                    const uint8_t **p, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size < min ||
        o->via.bin.size > max)
        return false;
    *p = (const uint8_t *)o->via.bin.ptr;
    *n = o->via.bin.size;
    return true;
}

int proto_envelope_decode(const void *data, size_t len, msgpack_zone *zone,
                          struct proto_envelope *env, char *errmsg,
                          size_t errlen)
{
    msgpack_object root;
    const msgpack_object *f;
    uint32_t n;
    uint64_t version;
    size_t k, nn, s;
    memset(env, 0, sizeof *env);
    if (len > PROTO_FRAME_MAX || mp_decode(data, len, zone, &root) != 0 ||
        mp_get_array(&root, 6, 6, &f, &n) != 0 ||
        mp_get_u64(&f[0], &version) != 0) {
        snprintf(errmsg, errlen, "signed request: not [version, payload, "
                 "key, time, nonce, signature]");
        return VC_EMALFORMED;
    }
    if (version != PROTO_ENVELOPE_VERSION) {
        snprintf(errmsg, errlen, "signed request: version %llu (this agent "
                 "reads %d)", (unsigned long long)version,
                 PROTO_ENVELOPE_VERSION);
        return VC_EVERSION;
    }
    if (!get_bin(&f[1], 1, PROTO_FRAME_MAX, &env->payload,
                 &env->payload_len) ||
        !get_bin(&f[2], PROTO_ENVELOPE_KEY, PROTO_ENVELOPE_KEY, &env->key,
                 &k) ||
        mp_get_u64(&f[3], &env->time_ms) != 0 ||
        !get_bin(&f[4], PROTO_ENVELOPE_NONCE, PROTO_ENVELOPE_NONCE,
                 &env->nonce, &nn) ||
        !get_bin(&f[5], PROTO_ENVELOPE_SIG, PROTO_ENVELOPE_SIG, &env->sig,
                 &s)) {
        snprintf(errmsg, errlen, "signed request: malformed field (payload, "
                 "32-byte key, time, 16-byte nonce, 64-byte signature)");
        return VC_EMALFORMED;
    }
    return 0;
}

void proto_envelope_prefix(uint64_t time_ms, const uint8_t *nonce,
                           uint8_t out[PROTO_ENVELOPE_PREFIX])
{
    memcpy(out, PROTO_ENVELOPE_LABEL, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(time_ms >> (56 - 8 * i));
    memcpy(out + 16, nonce, PROTO_ENVELOPE_NONCE);
}

static void put_bin(struct mp_buf *b, const uint8_t *p, size_t n)
{
    msgpack_packer pk;
    mp_packer_init(&pk, b);
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, p, n);
}

int proto_envelope_encode(const struct proto_envelope *env,
                          struct mp_buf *out)
{
    msgpack_packer pk;
    size_t start;
    if (proto_frame_begin(&pk, out, &start) != 0)
        return VC_ENOMEM;
    mp_put_array(out, 6);
    mp_put_uint(out, PROTO_ENVELOPE_VERSION);
    put_bin(out, env->payload, env->payload_len);
    put_bin(out, env->key, PROTO_ENVELOPE_KEY);
    mp_put_uint(out, env->time_ms);
    put_bin(out, env->nonce, PROTO_ENVELOPE_NONCE);
    put_bin(out, env->sig, PROTO_ENVELOPE_SIG);
    return proto_frame_end(out, start, PROTO_FRAME_MAX);
}

/* --- sessions ---------------------------------------------------------- */

bool proto_session_is(const void *data, size_t len)
{
    const uint8_t *p = data;
    return len >= 2 && p[0] == 0x94 && p[1] == PROTO_SESSION_VERSION;
}

int proto_session_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_session_frame *sf, char *errmsg,
                         size_t errlen)
{
    msgpack_object root;
    const msgpack_object *f;
    uint32_t n;
    uint64_t version;
    size_t m;
    memset(sf, 0, sizeof *sf);
    if (len > PROTO_FRAME_MAX || mp_decode(data, len, zone, &root) != 0 ||
        mp_get_array(&root, 4, 4, &f, &n) != 0 ||
        mp_get_u64(&f[0], &version) != 0) {
        snprintf(errmsg, errlen, "session request: not [version, payload, "
                 "seq, mac]");
        return VC_EMALFORMED;
    }
    if (version != PROTO_SESSION_VERSION) {
        snprintf(errmsg, errlen, "session request: version %llu (this agent "
                 "reads %d)", (unsigned long long)version,
                 PROTO_SESSION_VERSION);
        return VC_EVERSION;
    }
    if (!get_bin(&f[1], 1, PROTO_FRAME_MAX, &sf->payload, &sf->payload_len) ||
        mp_get_u64(&f[2], &sf->seq) != 0 || sf->seq == 0 ||
        !get_bin(&f[3], PROTO_SESSION_MAC, PROTO_SESSION_MAC, &sf->mac, &m)) {
        snprintf(errmsg, errlen, "session request: malformed field (payload, "
                 "seq >= 1, 16-byte mac)");
        return VC_EMALFORMED;
    }
    return 0;
}

void proto_session_prefix(uint64_t seq, uint8_t out[PROTO_SESSION_PREFIX])
{
    memcpy(out, PROTO_SESSION_LABEL, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

int proto_session_encode(const struct proto_session_frame *sf,
                         struct mp_buf *out)
{
    msgpack_packer pk;
    size_t start;
    if (proto_frame_begin(&pk, out, &start) != 0)
        return VC_ENOMEM;
    mp_put_array(out, 4);
    mp_put_uint(out, PROTO_SESSION_VERSION);
    put_bin(out, sf->payload, sf->payload_len);
    mp_put_uint(out, sf->seq);
    put_bin(out, sf->mac, PROTO_SESSION_MAC);
    return proto_frame_end(out, start, PROTO_FRAME_MAX);
}
