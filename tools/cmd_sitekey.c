/* virtcloud site invite NAME [--ttl D]: a one-time join token;
 * virtcloud site rotate-key --agent-key PATH [--site NAME]: a new site key
 * without downtime (agent/auth.c, "Key rotation"). docs/cli.md. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/keys.h"
#include "agent/token.h"
#include "cli.h"
#include "cli_render.h"
#include "proto/err.h"

#define TTL_DEFAULT_MS (3600ull * 1000) /* an hour */
#define TTL_MAX_MS (30ull * 24 * 3600 * 1000)

/* The string value of key in map o into buf ("" if absent). */
static const char *get_str(const msgpack_object *o, const char *key,
                           char *buf, size_t len)
{
    const msgpack_object *v = render_get(o, key);
    buf[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(buf, len, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    return buf;
}

/* Fills the token's cluster id and members (sites with a key). */
static int fill_members(struct cli *c, struct token *t)
{
    struct client_response r;
    char buf[256];
    int status = cli_read(c, PROTO_OP_STATUS, NULL, &r);
    if (status != 0) {
        client_response_close(&r);
        return status;
    }
    get_str(&r.resp.payload, "cluster_id", t->cluster_id,
            sizeof t->cluster_id);
    client_response_close(&r);
    if ((status = cli_read(c, PROTO_OP_SITES, "", &r)) != 0) {
        client_response_close(&r);
        return status;
    }
    const msgpack_object *a = &r.resp.payload;
    for (uint32_t i = 0; a->type == MSGPACK_OBJECT_ARRAY &&
                         i < a->via.array.size &&
                         t->nmembers < TOKEN_MEMBERS_MAX; i++) {
        const msgpack_object *s = &a->via.array.ptr[i];
        struct token_member *m = &t->members[t->nmembers];
        char why[128];
        if (keys_parse_public(get_str(s, "key", buf, sizeof buf), m->pk, why,
                              sizeof why) != 0)
            continue; /* a site without a key cannot be pinned */
        get_str(s, "name", m->site, sizeof m->site);
        get_str(s, "addr", m->addr, sizeof m->addr);
        t->nmembers++;
    }
    client_response_close(&r);
    if (!t->cluster_id[0] || t->nmembers == 0)
        return cli_fail(c, VC_ESTATE, false, "no site has a key yet: the "
                        "cluster must run with keys (key, peer-keys) to "
                        "invite sites");
    return 0;
}

static int print_token(struct cli *c, const struct token *t, uint64_t ttl)
{
    char text[TOKEN_TEXT_MAX];
    if (token_format(t, text, sizeof text) != 0)
        return cli_fail(c, VC_ETOOBIG, true, "token too long");
    if (c->json)
        printf("{\"ok\":true,\"site\":\"%s\",\"ttl_s\":%llu,\"members\":%u,"
               "\"token\":\"%s\"}\n", t->site, (unsigned long long)ttl / 1000,
               t->nmembers, text);
    else {
        printf("%s\n", text);
        fprintf(stderr, "virtcloud: site invite %s: one join within %llu s; "
                "give the new site join-token = <the line above> (it pins "
                "%u member keys)\n", t->site, (unsigned long long)ttl / 1000,
                t->nmembers);
    }
    sodium_memzero(text, sizeof text);
    return CLI_EXIT_OK;
}

static int site_invite(struct cli *c, int argc, char **argv)
{
    const char *ttl_arg = NULL, *pos[1];
    const struct cli_opt opts[] = {{"ttl", &ttl_arg, NULL},
                                   {NULL, NULL, NULL}};
    uint64_t ttl = TTL_DEFAULT_MS;
    uint8_t hash[32];
    struct token t;
    struct proto_cmd cmd;
    struct proto_result res;
    int status;
    if (!cli_parse(c, argc, argv, opts, pos, 1, 1, &status))
        return status;
    cli_what(c, "site invite %s", pos[0]);
    if (ttl_arg && (cli_parse_duration(ttl_arg, &ttl) != 0 || ttl < 1000 ||
                    ttl > TTL_MAX_MS))
        return cli_usage(c, "--ttl \"%s\": a duration from 1s to 30d",
                         ttl_arg);
    if (sodium_init() < 0)
        return cli_fail(c, VC_EIO, false, "libsodium failed to initialise");
    memset(&t, 0, sizeof t);
    snprintf(t.site, sizeof t.site, "%s", pos[0]);
    if ((status = fill_members(c, &t)) != 0)
        return status;
    randombytes_buf(t.secret, sizeof t.secret);
    crypto_generichash(hash, sizeof hash, t.secret, sizeof t.secret, NULL, 0);
    proto_cmd_init(&cmd, PROTO_CMD_INVITE_ADD);
    cmd.name = mp_cstr(pos[0]);
    cmd.hash = (struct mp_str){(const char *)hash, sizeof hash};
    cmd.lease_ms = ttl;
    status = cli_submit(c, &cmd, &res);
    if (status == 0)
        status = print_token(c, &t, ttl);
    sodium_memzero(&t, sizeof t);
    return status;
}

/* --- rotate-key ---------------------------------------------------------- */

/* The new key: PATH.next if an earlier run left one, else a fresh one
 * written there (0600). The agent renames it over PATH itself. */
static int next_key(struct cli *c, const char *path, struct keys_pair *kp)
{
    char next[600], why[512];
    snprintf(next, sizeof next, "%s.next", path);
    if (access(next, F_OK) == 0) {
        if (keys_load_private(next, kp, why, sizeof why) != 0)
            return cli_fail(c, VC_EINVAL, false, "%s", why);
        return 0;
    }
    if (keys_generate(kp) != 0 || keys_write(next, kp, why, sizeof why) != 0)
        return cli_fail(c, VC_EIO, false, "%s", why);
    return 0;
}

/* Polls the site's record until its key is pk and no old key is left
 * (the agent took the new key and dropped the old one). */
static int wait_rotated(struct cli *c, const char *site, const char *pub)
{
    struct timespec ts = {0, 200 * 1000000};
    uint64_t waited = 0;
    char key[128], old[128];
    for (;;) {
        struct client_response r;
        int status = cli_read(c, PROTO_OP_SITES, site, &r);
        if (status != 0) {
            client_response_close(&r);
            return status;
        }
        const msgpack_object *a = &r.resp.payload;
        bool done = a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 1 &&
                    !strcmp(get_str(a->via.array.ptr, "key", key, sizeof key),
                            pub) &&
                    !get_str(a->via.array.ptr, "old_key", old, sizeof old)[0];
        client_response_close(&r);
        if (done)
            return 0;
        if (waited >= c->timeout_ms)
            return cli_fail(c, VC_ETIMEOUT, true, "the new key %s is "
                            "committed, but site %s has not dropped its old "
                            "key yet: is its agent running with key = the "
                            "--agent-key given?", pub, site);
        nanosleep(&ts, NULL);
        waited += 200;
    }
}

static int site_rotate_key(struct cli *c, int argc, char **argv)
{
    const char *path = NULL, *site = NULL;
    const struct cli_opt opts[] = {{"agent-key", &path, NULL},
                                   {"site", &site, NULL},
                                   {NULL, NULL, NULL}};
    struct keys_pair kp;
    struct proto_cmd cmd;
    struct proto_result res;
    char own[VC_NAME_MAX + 1], pub[KEYS_PUBLIC_TEXT_MAX];
    int status;
    if (!cli_parse(c, argc, argv, opts, NULL, 0, 0, &status))
        return status;
    cli_what(c, "site rotate-key");
    if (!path)
        return cli_usage(c, "--agent-key: the site agent's key file (its "
                         "key setting) is required");
    if (!site) { /* the answering agent's own site */
        struct client_response r;
        if ((status = cli_read(c, PROTO_OP_STATUS, NULL, &r)) == 0)
            site = get_str(&r.resp.payload, "site", own, sizeof own);
        client_response_close(&r);
        if (status != 0)
            return status;
    }
    cli_what(c, "site rotate-key %s", site);
    if ((status = next_key(c, path, &kp)) != 0)
        return status;
    keys_format_public(kp.pk, pub, sizeof pub);
    proto_cmd_init(&cmd, PROTO_CMD_SITE_KEY);
    cmd.name = mp_cstr(site);
    cmd.key = (struct mp_str){(const char *)kp.pk, KEYS_PUBLIC_BYTES};
    cmd.ok = true; /* overlap: the old key stays valid until dropped */
    status = cli_submit(c, &cmd, &res);
    keys_wipe(&kp);
    if (status == 0)
        status = wait_rotated(c, site, pub);
    if (status != 0)
        return status;
    if (c->json)
        printf("{\"ok\":true,\"site\":\"%s\",\"key\":\"%s\"}\n", site, pub);
    else
        printf("site %s now uses key %s; the old key is revoked\n", site,
               pub);
    return CLI_EXIT_OK;
}

int cmd_site_invite(struct cli *c, int argc, char **argv)
{
    return site_invite(c, argc, argv);
}

int cmd_site_rotate_key(struct cli *c, int argc, char **argv)
{
    return site_rotate_key(c, argc, argv);
}
