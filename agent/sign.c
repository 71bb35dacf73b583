#include "sign.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/envelope.h"
#include "../proto/err.h"
#include "../proto/frame.h"

uint64_t sign_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sign_request(const struct keys_pair *kp, uint64_t wall_ms,
                 const void *frame, size_t len, struct mp_buf *out)
{
    struct proto_envelope env;
    uint8_t nonce[PROTO_ENVELOPE_NONCE], sig[PROTO_ENVELOPE_SIG];
    uint8_t small[4096], *m = small;
    size_t n;
    if (len <= PROTO_FRAME_HDR)
        return VC_EINVAL;
    randombytes_buf(nonce, sizeof nonce);
    env.payload = (const uint8_t *)frame + PROTO_FRAME_HDR;
    env.payload_len = len - PROTO_FRAME_HDR;
    env.key = kp->pk;
    env.time_ms = wall_ms;
    env.nonce = nonce;
    env.sig = sig;
    /* The signed message: prefix | payload, contiguous. */
    n = PROTO_ENVELOPE_PREFIX + env.payload_len;
    if (n > sizeof small && !(m = malloc(n)))
        return VC_ENOMEM;
    proto_envelope_prefix(wall_ms, nonce, m);
    memcpy(m + PROTO_ENVELOPE_PREFIX, env.payload, env.payload_len);
    crypto_sign_detached(sig, NULL, m, n, kp->sk);
    if (m != small)
        free(m);
    return proto_envelope_encode(&env, out);
}
