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

/* --- sessions ---------------------------------------------------------- */

void sign_session_keypair(uint8_t pk[32], uint8_t sk[32])
{
    randombytes_buf(sk, 32);
    crypto_scalarmult_base(pk, sk);
}

int sign_session_derive(const uint8_t my_sk[32], const uint8_t their_pk[32],
                        const uint8_t client_pk[32],
                        const uint8_t client_eph[32],
                        const uint8_t agent_eph[32],
                        uint8_t key[SIGN_SESSION_KEY])
{
    static const uint8_t label[8] = "VCSESSv1";
    uint8_t shared[crypto_scalarmult_BYTES];
    crypto_generichash_state st;
    if (crypto_scalarmult(shared, my_sk, their_pk) != 0)
        return -1;
    crypto_generichash_init(&st, shared, sizeof shared, SIGN_SESSION_KEY);
    crypto_generichash_update(&st, label, sizeof label);
    crypto_generichash_update(&st, client_pk, 32);
    crypto_generichash_update(&st, client_eph, 32);
    crypto_generichash_update(&st, agent_eph, 32);
    crypto_generichash_final(&st, key, SIGN_SESSION_KEY);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return 0;
}

void sign_session_mac(const uint8_t key[SIGN_SESSION_KEY], uint64_t seq,
                      const void *payload, size_t len, uint8_t mac[16])
{
    uint8_t prefix[PROTO_SESSION_PREFIX];
    crypto_generichash_state st;
    proto_session_prefix(seq, prefix);
    crypto_generichash_init(&st, key, SIGN_SESSION_KEY, PROTO_SESSION_MAC);
    crypto_generichash_update(&st, prefix, sizeof prefix);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, mac, PROTO_SESSION_MAC);
}

int sign_session_request(const uint8_t key[SIGN_SESSION_KEY], uint64_t seq,
                         const void *frame, size_t len, struct mp_buf *out)
{
    struct proto_session_frame sf;
    uint8_t mac[PROTO_SESSION_MAC];
    if (len <= PROTO_FRAME_HDR)
        return VC_EINVAL;
    sf.payload = (const uint8_t *)frame + PROTO_FRAME_HDR;
    sf.payload_len = len - PROTO_FRAME_HDR;
    sf.seq = seq;
    sf.mac = mac;
    sign_session_mac(key, seq, sf.payload, sf.payload_len, mac);
    return proto_session_encode(&sf, out);
}
