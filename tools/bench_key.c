/* virtcloud-bench --key PATH: every request the benchmark sends is signed
 * with the key (proto/envelope.h), as the CLI does, so that the cost of
 * client authentication shows in the figures. */
#include <stdio.h>

#include "agent/keys.h"
#include "agent/sign.h"
#include "tools/client.h"

static struct keys_pair key;

static int seal(void *ctx, const void *in, size_t len, struct mp_buf *out)
{
    (void)ctx;
    return sign_request(&key, sign_wall_ms(), in, len, out);
}

/* Loads path and installs the signer. 0, or -1 after printing why. */
int bench_key_setup(const char *path)
{
    char why[512];
    if (keys_load_private(path, &key, why, sizeof why) != 0) {
        fprintf(stderr, "virtcloud-bench: --key: %s\n", why);
        return -1;
    }
    client_set_sealer(seal, NULL);
    return 0;
}
