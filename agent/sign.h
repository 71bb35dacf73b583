/* Signing client requests (proto/envelope.h), shared by the agent (its
 * forwarded requests) and the CLI. */
#ifndef VC_AGENT_SIGN_H
#define VC_AGENT_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "../proto/mp.h"
#include "keys.h"

/* Wraps the plain request frame frame[0..len) (header included) into a
 * signed envelope frame appended to out, stamped wall_ms with a random
 * nonce. 0 or VC_ENOMEM / VC_ETOOBIG / VC_EINVAL. */
int sign_request(const struct keys_pair *kp, uint64_t wall_ms,
                 const void *frame, size_t len, struct mp_buf *out);

/* Wall-clock milliseconds since the epoch. */
uint64_t sign_wall_ms(void);

#endif
