/* virtcloud keygen [--out PATH]: a new Ed25519 key pair for a site.
 *
 * Writes the private key to PATH (default ./virtcloud.key, mode 0600,
 * never overwriting) and the public key to PATH.pub, and prints the public
 * key ("vc1:BASE64") on stdout, to be pinned in the other sites'
 * peer-keys. Talks to no agent.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/keys.h"
#include "cli.h"

#define DEFAULT_KEY_PATH "virtcloud.key"

/* Minimal JSON string escaping for a file path. */
static void print_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

int cmd_keygen(struct cli *c, int argc, char **argv)
{
    const char *out = NULL;
    const struct cli_opt opts[] = {{"out", &out, NULL}, {NULL, NULL, NULL}};
    struct keys_pair kp;
    char pub[KEYS_PUBLIC_TEXT_MAX], err[512];
    int status, rv;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    if (!out)
        out = DEFAULT_KEY_PATH;
    if (!*out)
        return cli_usage(c, "--out needs a file name");
    cli_what(c, "keygen");
    if ((rv = keys_generate(&kp)) != 0)
        return cli_fail(c, rv, false, "libsodium: %s", strerror(-rv));
    rv = keys_write(out, &kp, err, sizeof err);
    keys_format_public(kp.pk, pub, sizeof pub);
    keys_wipe(&kp);
    if (rv != 0)
        return cli_fail(c, rv, false, "%s", err);
    if (c->json) {
        char pub_path[4096];
        snprintf(pub_path, sizeof pub_path, "%s.pub", out);
        printf("{\"ok\":true,\"public\":\"%s\",\"private_path\":", pub);
        print_json_str(out);
        printf(",\"public_path\":");
        print_json_str(pub_path);
        printf("}\n");
    } else {
        printf("%s\n", pub);
        fprintf(stderr, "virtcloud: keygen: private key in %s (keep it "
                "secret), public key in %s.pub; pin it on the other sites "
                "as peer-keys = SITE=%s\n", out, out, pub);
    }
    return CLI_EXIT_OK;
}
