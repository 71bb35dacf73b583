/* Client authentication and authorisation (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../proto/envelope.h"
#include "../proto/err.h"
#include "agent.h"
#include "keys.h"
#include "log.h"
#include "sign.h"
#include "token.h"
#include "transport.h"

/* Who sent a request. */
enum who { WHO_USER = ROLE_USER, WHO_SCHEDULER = ROLE_SCHEDULER,
           WHO_ADMIN = ROLE_ADMIN, WHO_SITE, WHO_JOINER, WHO_ANY };

struct ident {
    int who;
    char name[VC_NAME_MAX + 1];
    char key[KEYS_PUBLIC_TEXT_MAX]; /* text form, "" if unsigned */
};

/* A generation of the replay cache: open addressing over 64-bit tags
 * (keyed SipHash of key and nonce; 0 means empty). */
struct nonce_gen {
    uint64_t *slot;
    uint32_t used;
    uint64_t since_ms; /* monotonic time this generation started */
};

struct auth {
    bool required;
    bool has_key;
    struct keys_pair self;
    uint8_t tag_key[crypto_shorthash_KEYBYTES];
    struct nonce_gen gen[2]; /* [0] filling, [1] previous */
    char origin[VC_NAME_MAX + 1];             /* of the current request */
    uint8_t token_hash[PROTO_KEY_BYTES];      /* of the current request */
    /* Key rotation (see auth_tick). */
    uint64_t adopted_ms;   /* when this agent took a new key, 0 if not */
    uint64_t last_rot_ms;  /* last rotation step tried */
    bool dropping;         /* the site-key dropping the old key in flight */
    /* Joining with a token: the token's secret. */
    bool has_token;
    uint8_t token[PROTO_KEY_BYTES];
};

static struct auth *au(struct agent *a)
{
    return a->auth;
}

static int join_token_start(struct agent *a, char *errmsg, size_t errlen);

/* --- replay cache ----------------------------------------------------- */

static int gen_init(struct nonce_gen *g, uint64_t now)
{
    if (!g->slot && !(g->slot = calloc(AUTH_NONCE_SLOTS, sizeof *g->slot)))
        return VC_ENOMEM;
    memset(g->slot, 0, AUTH_NONCE_SLOTS * sizeof *g->slot);
    g->used = 0;
    g->since_ms = now;
    return 0;
}

static bool gen_has(const struct nonce_gen *g, uint64_t tag)
{
    for (uint32_t i = (uint32_t)tag & (AUTH_NONCE_SLOTS - 1);;
         i = (i + 1) & (AUTH_NONCE_SLOTS - 1)) {
        if (g->slot[i] == tag)
            return true;
        if (g->slot[i] == 0)
            return false;
    }
}

static void gen_put(struct nonce_gen *g, uint64_t tag)
{
    uint32_t i = (uint32_t)tag & (AUTH_NONCE_SLOTS - 1);
    while (g->slot[i])
        i = (i + 1) & (AUTH_NONCE_SLOTS - 1);
    g->slot[i] = tag;
    g->used++;
}

/* Remembers key+nonce. 0, VC_EDENIED if seen already, VC_EUNAVAILABLE if
 * the cache cannot take more without forgetting a nonce that is still
 * within the accepted time window. */
static int nonce_check(struct auth *s, const uint8_t *key,
                       const uint8_t *nonce, uint64_t now)
{
    uint8_t in[PROTO_ENVELOPE_KEY + PROTO_ENVELOPE_NONCE];
    uint64_t tag;
    memcpy(in, key, PROTO_ENVELOPE_KEY);
    memcpy(in + PROTO_ENVELOPE_KEY, nonce, PROTO_ENVELOPE_NONCE);
    crypto_shorthash((uint8_t *)&tag, in, sizeof in, s->tag_key);
    tag |= 1; /* never 0, the empty mark */
    if (gen_has(&s->gen[0], tag) || gen_has(&s->gen[1], tag))
        return VC_EDENIED;
    if (s->gen[0].used >= AUTH_NONCE_SLOTS / 4 * 3) {
        /* The previous generation may be forgotten only once nothing in
         * it can be replayed (2 * skew after it stopped filling). */
        if (now - s->gen[0].since_ms < 2ull * AUTH_SKEW_MS)
            return VC_EUNAVAILABLE;
    }
    if (now - s->gen[0].since_ms >= 2ull * AUTH_SKEW_MS ||
        s->gen[0].used >= AUTH_NONCE_SLOTS / 4 * 3) {
        struct nonce_gen old = s->gen[1];
        s->gen[1] = s->gen[0];
        s->gen[0] = old;
        if (gen_init(&s->gen[0], now) != 0)
            return VC_ENOMEM;
    }
    gen_put(&s->gen[0], tag);
    return 0;
}

/* --- start ------------------------------------------------------------ */

int auth_start(struct agent *a, char *errmsg, size_t errlen)
{
    struct auth *s = calloc(1, sizeof *s);
    uint64_t now = agent_now_ms(a);
    char why[512];
    int rv;
    if (!s || gen_init(&s->gen[0], now) != 0 || gen_init(&s->gen[1], now)) {
        if (s) {
            free(s->gen[0].slot);
            free(s);
        }
        snprintf(errmsg, errlen, "auth: out of memory");
        return VC_ENOMEM;
    }
    crypto_shorthash_keygen(s->tag_key);
    a->auth = s;
    if (a->cfg.key_path[0]) {
        if ((rv = keys_load_private(a->cfg.key_path, &s->self, why,
                                    sizeof why)) != 0) {
            snprintf(errmsg, errlen, "key: %s", why);
            return rv;
        }
        s->has_key = true;
    }
    s->required = a->cfg.client_auth == CONFIG_CLIENT_AUTH_REQUIRED ||
                  (a->cfg.client_auth == CONFIG_CLIENT_AUTH_DEFAULT &&
                   s->has_key);
    transport_set_fsm(&a->cons.transport, &a->fsm);
    if (!s->required)
        log_warn("client requests are not authenticated (client-auth = "
                 "off%s)", s->has_key ? "" : ", no key");
    else
        log_info("client requests must be signed by a key with a role "
                 "(or come from root on %s)", a->cfg.unix_path);
    return join_token_start(a, errmsg, errlen);
}

void auth_close(struct agent *a)
{
    struct auth *s = au(a);
    if (!s)
        return;
    keys_wipe(&s->self);
    free(s->gen[0].slot);
    free(s->gen[1].slot);
    free(s);
    a->auth = NULL;
}

const uint8_t *auth_site_pk(const struct agent *a)
{
    const struct auth *s = a->auth;
    return s && s->has_key ? s->self.pk : NULL;
}


/* --- identity --------------------------------------------------------- */

static bool unix_root(struct conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    uv_os_fd_t fd;
    if (c->h.stream.type != UV_NAMED_PIPE ||
        uv_fileno((uv_handle_t *)&c->h.pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    return cred.uid == 0;
}

static const char *who_name(int who)
{
    switch (who) {
    case WHO_SITE: return "site";
    case WHO_JOINER: return "joining site";
    case WHO_ANY: return "unauthenticated";
    default: return proto_role_name(who);
    }
}

/* Identity of a verified key: a role binding, else a site key, else a
 * joining site (its JOIN is checked against its token by the state
 * machine). */
static int ident_of_key(struct agent *a, const struct proto_request *req,
                        const uint8_t *pk, struct ident *id, char *errmsg,
                        size_t errlen)
{
    const struct fsm_role *r = fsm_auth_role_by_key(&a->fsm, pk);
    keys_format_public(pk, id->key, sizeof id->key);
    if (r) {
        id->who = r->role;
        snprintf(id->name, sizeof id->name, "%s", r->name);
        return 0;
    }
    if (transport_site_key(&a->cfg, &a->fsm, pk, id->name, sizeof id->name)) {
        id->who = WHO_SITE;
        return 0;
    }
    if (req->op == PROTO_OP_JOIN && req->cmd.hash.n &&
        req->cmd.key.n == PROTO_KEY_BYTES &&
        memcmp(req->cmd.key.p, pk, PROTO_KEY_BYTES) == 0) {
        id->who = WHO_JOINER;
        mp_str_copy(req->cmd.name, id->name, sizeof id->name);
        return 0;
    }
    if (consensus_is_leader(&a->cons))
        snprintf(errmsg, errlen, "key %s is not bound to a role here (an "
                 "admin adds it with virtcloud role add)", id->key);
    else /* replicas apply a new binding a heartbeat or so after commit */
        snprintf(errmsg, errlen, "key %s is not bound to a role here (an "
                 "admin adds it with virtcloud role add; if one did just "
                 "now, this agent may not have applied it yet: retry, or "
                 "ask the leader's agent)", id->key);
    return VC_EDENIED;
}

/* Ed25519 over prefix | payload, without copying big payloads twice. */
static int verify(const struct proto_envelope *env,
                  const uint8_t prefix[PROTO_ENVELOPE_PREFIX])
{
    uint8_t small[4096], *m = small;
    size_t n = PROTO_ENVELOPE_PREFIX + env->payload_len;
    int rv;
    if (n > sizeof small && !(m = malloc(n)))
        return -1;
    memcpy(m, prefix, PROTO_ENVELOPE_PREFIX);
    memcpy(m + PROTO_ENVELOPE_PREFIX, env->payload, env->payload_len);
    rv = crypto_sign_verify_detached(env->sig, m, n, env->key);
    if (m != small)
        free(m);
    return rv;
}

static int check_signed(struct agent *a, const struct proto_envelope *env,
                        char *errmsg, size_t errlen)
{
    char key[KEYS_PUBLIC_TEXT_MAX];
    uint8_t prefix[PROTO_ENVELOPE_PREFIX];
    uint64_t wall = agent_wall_ms(a);
    keys_format_public(env->key, key, sizeof key);
    if (env->time_ms + AUTH_SKEW_MS < wall ||
        env->time_ms > wall + AUTH_SKEW_MS) {
        long long off = ((long long)env->time_ms - (long long)wall) / 1000;
        snprintf(errmsg, errlen, "key %s: request time is %lld s off this "
                 "agent's clock (at most %d s accepted)", key, off,
                 AUTH_SKEW_MS / 1000);
        return VC_EDENIED;
    }
    proto_envelope_prefix(env->time_ms, env->nonce, prefix);
    if (verify(env, prefix) != 0) {
        snprintf(errmsg, errlen, "key %s: signature does not verify "
                 "(request altered, or not signed by this key)", key);
        return VC_EDENIED;
    }
    return 0;
}

/* --- authorisation ---------------------------------------------------- */

static const struct fsm_cluster *cluster_of(struct agent *a,
                                            struct mp_str name)
{
    char buf[VC_NAME_MAX + 1];
    mp_str_copy(name, buf, sizeof buf);
    return fsm_cluster_find(&a->fsm, buf);
}

/* A user acts on its own clusters only (the owner recorded at create). */
static bool owns(struct agent *a, const struct ident *id, struct mp_str name)
{
    const struct fsm_cluster *c = cluster_of(a, name);
    return c && strcmp(c->owner, id->name) == 0;
}

static bool cmd_allowed(struct agent *a, const struct ident *id,
                        const struct proto_cmd *cmd, const char **why)
{
    switch (cmd->type) {
    case PROTO_CMD_CLUSTER_RENEW:
    case PROTO_CMD_CLUSTER_RELEASE:
    case PROTO_CMD_ATTACH:
    case PROTO_CMD_DETACH:
        if (id->who == WHO_USER) {
            *why = "a user may act only on clusters it owns";
            return owns(a, id, cmd->name);
        }
        /* fall through */
    case PROTO_CMD_CLUSTER_CREATE:
    case PROTO_CMD_CLUSTER_EXTEND:
    case PROTO_CMD_CLUSTER_SHRINK:
        *why = "needs the scheduler or admin role";
        return id->who == WHO_SCHEDULER || id->who == WHO_ADMIN;
    default:
        *why = "needs the admin role";
        return id->who == WHO_ADMIN;
    }
}

/* May id do req? Sites (agents forwarding, already checked where the
 * request arrived) may do anything; a joining site only its join. */
static bool allowed(struct agent *a, const struct ident *id,
                    const struct proto_request *req, const char **why)
{
    char name[VC_NAME_MAX + 1];
    if (id->who == WHO_SITE || id->who == WHO_ADMIN)
        return true;
    if (id->who == WHO_JOINER) {
        *why = "a joining site may only join";
        return req->op == PROTO_OP_JOIN;
    }
    switch (req->op) {
    case PROTO_OP_STATUS:
    case PROTO_OP_PING:
    case PROTO_OP_SITES:
    case PROTO_OP_SESSION: /* each request in it is checked on its own */
        return true;
    case PROTO_OP_CLUSTERS:
        if (id->who != WHO_USER)
            return true;
        mp_str_copy(req->name, name, sizeof name);
        *why = "a user may show only its own clusters, by name";
        return name[0] && owns(a, id, req->name);
    case PROTO_OP_SUBMIT:
        return cmd_allowed(a, id, &req->cmd, why);
    case PROTO_OP_AUDIT: /* names every owner: not for plain users */
        *why = "the audit trail needs the scheduler or admin role";
        return id->who != WHO_USER;
    default:
        *why = "needs the admin role";
        return false;
    }
}

/* "role:name" into the command's origin (a forwarding agent keeps the
 * origin the first agent set; an unauthenticated request keeps its own). */
static void set_origin(struct auth *s, const struct ident *id,
                       struct proto_request *req)
{
    if (id->who == WHO_SITE && (req->flags & PROTO_FLAG_FORWARDED))
        return;
    if (req->op != PROTO_OP_SUBMIT && req->op != PROTO_OP_JOIN)
        return;
    const char *what = id->who == WHO_JOINER ? "join" : who_name(id->who);
    size_t n = strlen(what), m = strlen(id->name);
    if (n + 1 + m >= sizeof s->origin) /* the name is cut, never the role */
        m = sizeof s->origin - n - 2;
    memcpy(s->origin, what, n);
    s->origin[n] = ':';
    memcpy(s->origin + n + 1, id->name, m);
    s->origin[n + 1 + m] = '\0';
    req->cmd.origin = mp_cstr(s->origin);
}

/* A join carries its token; the log only ever holds the token's hash
 * (hashed where the join arrives, not again when forwarded). */
static void hash_token(struct auth *s, struct proto_request *req)
{
    if (req->op != PROTO_OP_JOIN || (req->flags & PROTO_FLAG_FORWARDED) ||
        req->cmd.hash.n != PROTO_KEY_BYTES)
        return;
    crypto_generichash(s->token_hash, sizeof s->token_hash,
                       (const uint8_t *)req->cmd.hash.p, PROTO_KEY_BYTES,
                       NULL, 0);
    req->cmd.hash = (struct mp_str){(const char *)s->token_hash,
                                    PROTO_KEY_BYTES};
}

/* --- the request path ------------------------------------------------- */

static int unsigned_ident(struct conn *c, struct auth *s, struct ident *id,
                          char *errmsg, size_t errlen)
{
    memset(id, 0, sizeof *id);
    /* Another agent's forwarding channel: the handshake proved the site's
     * key, no per-request signature. */
    if (c->site[0]) {
        id->who = WHO_SITE;
        snprintf(id->name, sizeof id->name, "%s", c->site);
        return 0;
    }
    if (!s->required) {
        id->who = WHO_ANY;
        return 0;
    }
    if (unix_root(c)) {
        id->who = WHO_ADMIN;
        snprintf(id->name, sizeof id->name, "root");
        return 0;
    }
    snprintf(errmsg, errlen, "unsigned request refused: this agent requires "
             "signed requests (client-auth = required); give the client a "
             "key (--key, VIRTCLOUD_KEY or ~/.config/virtcloud/key) bound "
             "to a role, or use the local socket as root");
    return VC_EDENIED;
}

/* A session frame: the MAC and the sequence number stand for the
 * signature; the identity is the session's key, looked up now. Nothing
 * in the payload is read before it authenticated, except, on a refusal,
 * the seq to answer with. */
static int session_decode(struct conn *c, const void *data, size_t len,
                          msgpack_zone *zone, struct proto_request *req,
                          struct ident *id, char *errmsg, size_t errlen)
{
    struct proto_session_frame sf;
    uint8_t mac[PROTO_SESSION_MAC];
    char ignored[8];
    bool good;
    int rv = proto_session_decode(data, len, zone, &sf, errmsg, errlen);
    memset(req, 0, sizeof *req);
    if (rv != 0)
        return rv;
    if (c->has_session) {
        sign_session_mac(c->sess_key, sf.seq, sf.payload, sf.payload_len,
                         mac);
        good = crypto_verify_16(mac, sf.mac) == 0;
        if (good && sf.seq == c->sess_seq) {
            c->sess_seq++;
            if ((rv = proto_request_decode(sf.payload, sf.payload_len, zone,
                                           req, errmsg, errlen)) != 0)
                return rv;
            if (req->op == PROTO_OP_SESSION) {
                snprintf(errmsg, errlen, "a session is already open on "
                         "this connection");
                return VC_EINVAL;
            }
            return ident_of_key(c->a, req, c->sess_pk, id, errmsg, errlen);
        }
        /* Tampered, replayed, reordered or cut: this stream cannot be
         * trusted any further. */
        snprintf(errmsg, errlen, "session request %s (seq %llu, expected "
                 "%llu): refused, connection closed",
                 good ? "out of sequence (replayed or lost)"
                      : "does not authenticate (altered, or another "
                        "session's)",
                 (unsigned long long)sf.seq,
                 (unsigned long long)c->sess_seq);
        log_warn("client %s: %s", c->peer, errmsg);
        c->close_after_write = true;
    } else {
        snprintf(errmsg, errlen, "session request on a connection without "
                 "a session: open one with a signed session request first");
    }
    /* Only to learn the seq to answer with. */
    proto_request_decode(sf.payload, sf.payload_len, zone, req, ignored,
                         sizeof ignored);
    return VC_EDENIED;
}

/* A signed envelope: time, signature, identity, then the nonce. */
static int envelope_decode(struct conn *c, const void *data, size_t len,
                           msgpack_zone *zone, struct proto_request *req,
                           struct ident *id, char *errmsg, size_t errlen)
{
    struct agent *a = c->a;
    struct proto_envelope env;
    int rv;
    if ((rv = proto_envelope_decode(data, len, zone, &env, errmsg,
                                    errlen)) != 0) {
        memset(req, 0, sizeof req->seq);
        return rv;
    }
    /* The payload is decoded before it is verified only to learn the
     * seq to answer with; nothing in it is acted upon until then. */
    if ((rv = proto_request_decode(env.payload, env.payload_len, zone, req,
                                   errmsg, errlen)) != 0 ||
        (rv = check_signed(a, &env, errmsg, errlen)) != 0 ||
        (rv = ident_of_key(a, req, env.key, id, errmsg, errlen)) != 0)
        return rv;
    rv = nonce_check(au(a), env.key, env.nonce, agent_now_ms(a));
    if (rv == VC_EDENIED) {
        snprintf(errmsg, errlen, "key %s: replayed request (nonce seen "
                 "before): refused", id->key);
        return rv;
    }
    if (rv != 0) {
        snprintf(errmsg, errlen, "too many signed requests to remember "
                 "their nonces; retry shortly");
        return rv;
    }
    if (req->op == PROTO_OP_SESSION) {
        if (c->has_session) {
            snprintf(errmsg, errlen, "a session is already open on this "
                     "connection");
            return VC_EINVAL;
        }
        memcpy(c->sess_pk, env.key, sizeof c->sess_pk);
    }
    return 0;
}

static void pack_session_pk(msgpack_packer *pk, void *ctx)
{
    msgpack_pack_bin(pk, PROTO_SESSION_KEY);
    msgpack_pack_bin_body(pk, ctx, PROTO_SESSION_KEY);
}

int auth_session_open(struct conn *c, const struct proto_request *req)
{
    uint8_t pk[32], sk[32];
    int rv;
    sign_session_keypair(pk, sk);
    rv = sign_session_derive(sk, req->session_pk, c->sess_pk,
                             req->session_pk, pk, c->sess_key);
    sodium_memzero(sk, sizeof sk);
    if (rv != 0) {
        api_reply(c, req->seq, VC_EINVAL, "session: the client's key is "
                  "not a usable X25519 key", NULL, NULL);
        return VC_EINVAL;
    }
    c->has_session = true;
    c->sess_seq = 1;
    api_reply(c, req->seq, 0, "", pack_session_pk, pk);
    return 0;
}

int auth_request_decode(struct conn *c, const void *data, size_t len,
                        msgpack_zone *zone, struct proto_request *req,
                        char *errmsg, size_t errlen)
{
    struct agent *a = c->a;
    struct auth *s = au(a);
    struct ident id;
    const char *why = "";
    int rv;
    if (proto_session_is(data, len)) {
        if ((rv = session_decode(c, data, len, zone, req, &id, errmsg,
                                 errlen)) != 0)
            return rv;
    } else if (proto_envelope_is(data, len)) {
        if ((rv = envelope_decode(c, data, len, zone, req, &id, errmsg,
                                  errlen)) != 0)
            return rv;
    } else {
        if ((rv = proto_request_decode(data, len, zone, req, errmsg,
                                       errlen)) != 0 ||
            (rv = unsigned_ident(c, s, &id, errmsg, errlen)) != 0)
            return rv;
        if (req->op == PROTO_OP_SESSION) {
            snprintf(errmsg, errlen, "a session must be opened with a "
                     "signed request");
            return VC_EDENIED;
        }
        if (id.who == WHO_ANY) /* client-auth off: as before */
            return 0;
    }
    if (!allowed(a, &id, req, &why)) {
        snprintf(errmsg, errlen, "%s%s%s (%s): not allowed: %s",
                 id.key[0] ? "key " : "", id.key[0] ? id.key : "",
                 id.key[0] ? ", " : "", id.name[0] ? id.name : "?", why);
        return VC_EDENIED;
    }
    if (id.key[0] && id.who != WHO_SITE)
        log_debug("client %s: %s %s (%s)", c->peer, who_name(id.who),
                  id.name, id.key);
    set_origin(s, &id, req);
    hash_token(s, req);
    /* Before the leader adds a joiner to raft, where it arrives: an
     * unknown, used or expired token goes no further. */
    if (id.who == WHO_JOINER &&
        !fsm_auth_invite_valid(&a->fsm, req->cmd.name,
                               (const uint8_t *)req->cmd.hash.p,
                               agent_wall_ms(a))) {
        snprintf(errmsg, errlen, "join token for site %.*s is not valid: "
                 "unknown, already used or expired", (int)req->cmd.name.n,
                 req->cmd.name.p);
        return VC_EDENIED;
    }
    return 0;
}

/* --- forwarding ------------------------------------------------------- */

/* Used by join.c only: peer.c's links to other agents are plain (no key)
 * or the secure channel, which authenticates every byte already. */
int auth_request_encode(struct agent *a, const struct proto_request *req,
                        struct mp_buf *out, char *errmsg, size_t errlen)
{
    struct auth *s = au(a);
    struct mp_buf plain;
    int rv;
    if (!s || !s->has_key)
        return proto_request_encode(req, out, errmsg, errlen);
    mp_buf_init(&plain);
    rv = proto_request_encode(req, &plain, errmsg, errlen);
    if (rv == 0 && (rv = sign_request(&s->self, agent_wall_ms(a), plain.data,
                                      plain.len, out)) != 0)
        snprintf(errmsg, errlen, "%s", vc_strerror(rv));
    mp_buf_close(&plain);
    return rv;
}

/* --- key rotation ----------------------------------------------------- */

/* Rotation (virtcloud site rotate-key) without downtime:
 * 1. the CLI writes the new key to KEY.next beside this agent's key file
 *    and commits site-key(site, new, overlap): the state now accepts the
 *    old and the new key of this site;
 * 2. this agent sees its record's key differ from its own, finds the
 *    matching KEY.next, renames it over KEY and takes it for connections
 *    made from now on (open connections keep working: the old key is
 *    still accepted);
 * 3. ROTATE_OVERLAP_MS later it commits site-key(site, new, no overlap):
 *    the old key is revoked and every connection that authenticated with
 *    it closes; raft redials with the new key.
 * A crash anywhere is picked up by the same checks after a restart. */
#define ROTATE_OVERLAP_MS 2000
#define ROTATE_RETRY_MS 1000

static void drop_done(struct request *r, int code,
                      const struct proto_result *res)
{
    struct agent *a = r->done_data;
    au(a)->dropping = false;
    if (code == 0 && res && res->code == 0)
        log_info("key rotation: %s", res->msg);
    else
        log_warn("key rotation: dropping the old key: %s; retrying",
                 res ? res->msg : vc_strerror(code));
}

/* Step 2: take KEY.next if it holds the key the state now lists. */
static void adopt(struct agent *a, const struct fsm_site *rec, uint64_t now)
{
    struct auth *s = au(a);
    struct keys_pair next;
    char path[600], why[512], pub[KEYS_PUBLIC_TEXT_MAX];
    snprintf(path, sizeof path, "%s.next", a->cfg.key_path);
    keys_format_public(rec->key, pub, sizeof pub);
    if (keys_load_private(path, &next, why, sizeof why) != 0 ||
        sodium_memcmp(next.pk, rec->key, KEYS_PUBLIC_BYTES) != 0) {
        keys_wipe(&next);
        if (s->last_rot_ms == 0 || now - s->last_rot_ms > 30000) {
            log_error("this site's key in the replicated state is %s, which "
                      "this agent does not hold (%s): peers will refuse it",
                      pub, why[0] ? why : "KEY.next holds another key");
            s->last_rot_ms = now;
        }
        return;
    }
    if (rename(path, a->cfg.key_path) != 0) {
        log_error("key rotation: rename %s: %s", path, strerror(errno));
        keys_wipe(&next);
        return;
    }
    s->self = next;
    transport_set_self(&a->cons.transport, &next);
    keys_wipe(&next);
    s->adopted_ms = now;
    log_info("key rotation: now using key %s", pub);
}

void auth_tick(struct agent *a, uint64_t now)
{
    struct auth *s = au(a);
    const struct fsm_site *rec;
    if (!s || !s->has_key || !agent_caught_up(a) ||
        !(rec = fsm_site_find(&a->fsm, a->cfg.site)) || !rec->has_key)
        return;
    if (sodium_memcmp(rec->key, s->self.pk, KEYS_PUBLIC_BYTES) != 0) {
        adopt(a, rec, now);
        return;
    }
    if (!rec->has_old_key || s->dropping ||
        now - s->adopted_ms < ROTATE_OVERLAP_MS ||
        now - s->last_rot_ms < ROTATE_RETRY_MS)
        return;
    struct proto_cmd cmd;
    proto_cmd_init(&cmd, PROTO_CMD_SITE_KEY);
    cmd.name = mp_cstr(a->cfg.site);
    cmd.key = (struct mp_str){(const char *)s->self.pk, KEYS_PUBLIC_BYTES};
    cmd.ok = false;
    s->dropping = true;
    s->last_rot_ms = now;
    request_internal(a, &cmd, drop_done, a);
}

void auth_on_apply(struct agent *a, const struct proto_cmd *cmd,
                   const struct proto_result *r)
{
    if (r->code != 0 || (cmd->type != PROTO_CMD_SITE_REMOVE &&
                         cmd->type != PROTO_CMD_SITE_KEY))
        return;
    transport_revalidate(&a->cons.transport);
}

/* --- joining with a token --------------------------------------------- */

void auth_join_fill(struct agent *a, struct proto_cmd *cmd)
{
    struct auth *s = au(a);
    if (!s || !s->has_key)
        return;
    cmd->key = (struct mp_str){(const char *)s->self.pk, KEYS_PUBLIC_BYTES};
    if (s->has_token)
        cmd->hash = (struct mp_str){(const char *)s->token, PROTO_KEY_BYTES};
}

static int join_token_start(struct agent *a, char *errmsg, size_t errlen)
{
    struct auth *s = au(a);
    struct token tok;
    char why[256];
    if (!a->cfg.join_token[0])
        return 0;
    if (!s->has_key) {
        snprintf(errmsg, errlen, "config: join-token: needs key (this "
                 "site's private key)");
        return VC_EINVAL;
    }
    if (token_parse(a->cfg.join_token, &tok, why, sizeof why) != 0) {
        snprintf(errmsg, errlen, "config: join-token: %s", why);
        return VC_EINVAL;
    }
    if (strcmp(tok.site, a->cfg.site) != 0) {
        snprintf(errmsg, errlen, "config: join-token: the token invites site "
                 "\"%s\", this is \"%s\"", tok.site, a->cfg.site);
        return VC_EINVAL;
    }
    if (strcmp(tok.cluster_id, a->cfg.cluster_id) != 0) {
        if (strcmp(a->cfg.cluster_id, "virtcloud") != 0) {
            snprintf(errmsg, errlen, "config: join-token: the token is for "
                     "cluster-id \"%s\", configured \"%s\"", tok.cluster_id,
                     a->cfg.cluster_id);
            return VC_EINVAL;
        }
        snprintf(a->cfg.cluster_id, sizeof a->cfg.cluster_id, "%s",
                 tok.cluster_id);
    }
    memcpy(s->token, tok.secret, sizeof s->token);
    s->has_token = true;
    /* The members' keys become pins, as if listed in peer-keys. */
    for (unsigned i = 0; i < tok.nmembers; i++) {
        bool dup = false;
        for (unsigned k = 0; k < a->cfg.npeer_keys && !dup; k++)
            dup = strcmp(a->cfg.peer_keys[k].site, tok.members[i].site) == 0;
        if (dup || a->cfg.npeer_keys == CONFIG_PEER_KEYS_MAX)
            continue;
        struct config_peer_key *k = &a->cfg.peer_keys[a->cfg.npeer_keys++];
        snprintf(k->site, sizeof k->site, "%s", tok.members[i].site);
        memcpy(k->pk, tok.members[i].pk, sizeof k->pk);
    }
    if (!a->cfg.join[0] && tok.nmembers)
        snprintf(a->cfg.join, sizeof a->cfg.join, "%s", tok.members[0].addr);
    log_info("joining with a token: %u member keys pinned, via %s",
             tok.nmembers, a->cfg.join);
    sodium_memzero(&tok, sizeof tok);
    return 0;
}
