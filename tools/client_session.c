/* Client sessions for long-running clients (virtcloud-bench --key, the
 * session probe of the integration tests): each connection opens a
 * session with one signed request, then MACs every request
 * (proto/envelope.h). Without a session every request is signed, as the
 * CLI signs its one request. */
#include "client_session.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "agent/keys.h"
#include "agent/sign.h"
#include "proto/err.h"

static struct keys_pair key;
static bool have_key;

static int sign_each(void *ctx, const void *in, size_t len, struct mp_buf *out)
{
    (void)ctx;
    return sign_request(&key, sign_wall_ms(), in, len, out);
}

static int session_seal(void *ctx, const void *in, size_t len,
                        struct mp_buf *out)
{
    struct client_session *s = ctx;
    return sign_session_request(s->key, s->seq++, in, len, out);
}

int client_key_setup(const char *path)
{
    char why[512];
    if (keys_load_private(path, &key, why, sizeof why) != 0) {
        fprintf(stderr, "--key: %s\n", why);
        return -1;
    }
    have_key = true;
    client_set_sealer(sign_each, NULL); /* the session request, at least */
    return 0;
}

/* The agent's answer: bin 32, its ephemeral key. */
static int answer_key(const struct client_response *r, const uint8_t **pk)
{
    const msgpack_object *p = &r->resp.payload;
    if (p->type != MSGPACK_OBJECT_BIN || p->via.bin.size != 32)
        return VC_EMALFORMED;
    *pk = (const uint8_t *)p->via.bin.ptr;
    return 0;
}

int client_session_open(struct client *cl, struct client_session *s,
                       uint64_t deadline, char *err, size_t errlen)
{
    static struct proto_request req; /* ~3 KiB: off the stack */
    struct client_response r;
    uint8_t pk[32], sk[32];
    const uint8_t *agent_pk;
    int rv;
    if (!have_key)
        return 0;
    memset(&req, 0, sizeof req);
    req.op = PROTO_OP_SESSION;
    sign_session_keypair(pk, sk);
    memcpy(req.session_pk, pk, sizeof pk);
    if ((rv = client_send(cl, &req, deadline, err, errlen)) != 0)
        return rv;
    rv = client_recv(cl, &r, deadline, err, errlen);
    if (rv == 0 && r.resp.code != 0) {
        snprintf(err, errlen, "session refused: %.*s", (int)r.resp.msg.n,
                 r.resp.msg.p);
        rv = r.resp.code;
    } else if (rv == 0 && (r.resp.seq != req.seq ||
                           answer_key(&r, &agent_pk) != 0)) {
        snprintf(err, errlen, "session: unexpected answer");
        rv = VC_EMALFORMED;
    } else if (rv == 0 && sign_session_derive(sk, agent_pk, key.pk, pk,
                                              agent_pk, s->key) != 0) {
        snprintf(err, errlen, "session: the agent's key is unusable");
        rv = VC_EMALFORMED;
    }
    client_response_close(&r);
    sodium_memzero(sk, sizeof sk);
    if (rv != 0)
        return rv;
    s->seq = 1;
    cl->seal = session_seal;
    cl->seal_ctx = s;
    return 0;
}
