/* The CLI's key: requests are signed when it has one (proto/envelope.h).
 *
 * Found, first match wins: --key PATH, $VIRTCLOUD_KEY, then the per-user
 * default $XDG_CONFIG_HOME/virtcloud/key (~/.config/virtcloud/key). A
 * given path (--key, VIRTCLOUD_KEY) must load; the default path is used
 * only if it exists. Without a key requests go unsigned, which an agent
 * requiring client authentication accepts only from root on its local
 * socket. Every refusal names the key that was tried and where it came
 * from (cli_key_desc()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/keys.h"
#include "agent/sign.h"
#include "cli.h"

static struct keys_pair key;
static bool loaded;
static char desc[800];

static int seal(void *ctx, const void *in, size_t len, struct mp_buf *out)
{
    (void)ctx;
    return sign_request(&key, sign_wall_ms(), in, len, out);
}

static void default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buf, len, "%s/virtcloud/key", xdg);
    else if (home && *home)
        snprintf(buf, len, "%s/.config/virtcloud/key", home);
    else
        buf[0] = '\0';
}

const char *cli_key_desc(void)
{
    return desc;
}

int cli_key_setup(struct cli *c)
{
    const char *env = getenv("VIRTCLOUD_KEY"), *path = c->key_arg, *from;
    char def[600], why[512], pub[KEYS_PUBLIC_TEXT_MAX];
    if (loaded || desc[0])
        return 0;
    from = "--key";
    if (!path && env && *env) {
        path = env;
        from = "VIRTCLOUD_KEY";
    }
    if (!path) {
        default_path(def, sizeof def);
        if (!def[0] || access(def, F_OK) != 0) {
            snprintf(desc, sizeof desc, "no key (no --key, no VIRTCLOUD_KEY, "
                     "no %s): request sent unsigned",
                     def[0] ? def : "~/.config/virtcloud/key");
            return 0;
        }
        path = def;
        from = "the default path";
    }
    if (keys_load_private(path, &key, why, sizeof why) != 0)
        return cli_usage(c, "key %s (from %s): %s", path, from, why);
    keys_format_public(key.pk, pub, sizeof pub);
    snprintf(desc, sizeof desc, "key %s (from %s, public %s)", path, from,
             pub);
    loaded = true;
    client_set_sealer(seal, NULL);
    return 0;
}
