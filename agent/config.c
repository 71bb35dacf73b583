#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../proto/err.h"
#include "keys.h"
#include "log.h"

struct key {
    const char *name;
    const char *help;
    int (*set)(struct config *c, const char *v, char *err, size_t len);
};

static int set_str(char *dst, size_t cap, const char *v, char *err,
                   size_t len)
{
    if (strlen(v) >= cap) {
        snprintf(err, len, "value \"%.40s...\" longer than %zu bytes", v,
                 cap - 1);
        return VC_EINVAL;
    }
    snprintf(dst, cap, "%s", v);
    return 0;
}

static int set_uint(unsigned *dst, const char *v, unsigned lo, unsigned hi,
                    char *err, size_t len)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        snprintf(err, len, "\"%s\" is not a number in %u..%u", v, lo, hi);
        return VC_EINVAL;
    }
    *dst = (unsigned)n;
    return 0;
}

int config_parse_addr(const char *s, void *out)
{
    char host[VC_ADDR_MAX + 1];
    const char *colon;
    char *end;
    struct sockaddr_storage *ss = out;
    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return VC_EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host || colon == s)
            return VC_EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535)
        return VC_EINVAL;
    struct sockaddr_in *v4 = out;
    struct sockaddr_in6 *v6 = out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return VC_EINVAL;
}

static int set_addr(char *dst, const char *v, char *err, size_t len)
{
    struct sockaddr_storage ss;
    if (config_parse_addr(v, &ss) != 0) {
        snprintf(err, len, "\"%s\" is not IP:PORT (or [IPv6]:PORT)", v);
        return VC_EINVAL;
    }
    return set_str(dst, VC_ADDR_MAX + 1, v, err, len);
}

static int k_site(struct config *c, const char *v, char *e, size_t l)
{
    if (!proto_name_ok(mp_cstr(v))) {
        snprintf(e, l, "\"%s\" is not a valid site name (1-63 of A-Z a-z 0-9 "
                 ". _ -)", v);
        return VC_EINVAL;
    }
    return set_str(c->site, sizeof c->site, v, e, l);
}

static int k_data_dir(struct config *c, const char *v, char *e, size_t l)
{
    if (!*v) {
        snprintf(e, l, "must not be empty");
        return VC_EINVAL;
    }
    return set_str(c->data_dir, sizeof c->data_dir, v, e, l);
}

static int k_peer(struct config *c, const char *v, char *e, size_t l)
{
    return set_addr(c->peer, v, e, l);
}

static int k_api(struct config *c, const char *v, char *e, size_t l)
{
    return set_addr(c->api, v, e, l);
}

static int k_advertise(struct config *c, const char *v, char *e, size_t l)
{
    return set_addr(c->advertise, v, e, l);
}

static int k_unix(struct config *c, const char *v, char *e, size_t l)
{
    return set_str(c->unix_path, sizeof c->unix_path, v, e, l);
}

static int k_bootstrap(struct config *c, const char *v, char *e, size_t l)
{
    char buf[2048], *save, *item;
    if (set_str(buf, sizeof buf, v, e, l) != 0)
        return VC_EINVAL;
    c->nbootstrap = 0;
    for (item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(e, l, "\"%s\" is not NAME=HOST:PORT", item);
            return VC_EINVAL;
        }
        *eq = '\0';
        if (c->nbootstrap == CONFIG_MEMBERS_MAX) {
            snprintf(e, l, "more than %d members", CONFIG_MEMBERS_MAX);
            return VC_EINVAL;
        }
        struct config_member *m = &c->bootstrap[c->nbootstrap];
        if (!proto_name_ok(mp_cstr(item))) {
            snprintf(e, l, "\"%s\" is not a valid site name", item);
            return VC_EINVAL;
        }
        for (unsigned i = 0; i < c->nbootstrap; i++)
            if (strcmp(c->bootstrap[i].site, item) == 0) {
                snprintf(e, l, "site \"%s\" listed twice", item);
                return VC_EINVAL;
            }
        snprintf(m->site, sizeof m->site, "%s", item);
        if (set_addr(m->addr, eq + 1, e, l) != 0)
            return VC_EINVAL;
        c->nbootstrap++;
    }
    if (c->nbootstrap == 0) {
        snprintf(e, l, "no members listed");
        return VC_EINVAL;
    }
    return 0;
}

static int k_key(struct config *c, const char *v, char *e, size_t l)
{
    if (!*v) {
        snprintf(e, l, "must not be empty (leave the key out for plain TCP)");
        return VC_EINVAL;
    }
    return set_str(c->key_path, sizeof c->key_path, v, e, l);
}

static int k_cluster_id(struct config *c, const char *v, char *e, size_t l)
{
    if (!proto_name_ok(mp_cstr(v))) {
        snprintf(e, l, "\"%s\" is not a valid cluster id (1-63 of A-Z a-z "
                 "0-9 . _ -)", v);
        return VC_EINVAL;
    }
    return set_str(c->cluster_id, sizeof c->cluster_id, v, e, l);
}

/* "vc1:" + base64 of a 32-byte Ed25519 point (agent/keys.h); parsed here
 * with libsodium directly so that config.c links on its own (fuzzing). */
static int parse_pk(const char *v, uint8_t pk[32])
{
    size_t got = 0, plen = strlen(KEYS_PUBLIC_PREFIX);
    const char *end = NULL;
    if (strncmp(v, KEYS_PUBLIC_PREFIX, plen) != 0 || sodium_init() < 0 ||
        sodium_base642bin(pk, 32, v + plen, strlen(v + plen), NULL, &got,
                          &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != 32 || *end || !crypto_core_ed25519_is_valid_point(pk))
        return VC_EINVAL;
    return 0;
}

static int k_peer_keys(struct config *c, const char *v, char *e, size_t l)
{
    char buf[4096], *save, *item;
    if (set_str(buf, sizeof buf, v, e, l) != 0)
        return VC_EINVAL;
    c->npeer_keys = 0;
    for (item = strtok_r(buf, ", ", &save); item;
         item = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(item, '=');
        struct config_peer_key *k = &c->peer_keys[c->npeer_keys];
        if (!eq) {
            snprintf(e, l, "\"%.80s\" is not SITE=vc1:KEY", item);
            return VC_EINVAL;
        }
        *eq = '\0';
        if (c->npeer_keys == CONFIG_PEER_KEYS_MAX) {
            snprintf(e, l, "more than %d keys", CONFIG_PEER_KEYS_MAX);
            return VC_EINVAL;
        }
        if (!proto_name_ok(mp_cstr(item))) {
            snprintf(e, l, "\"%s\" is not a valid site name", item);
            return VC_EINVAL;
        }
        for (unsigned i = 0; i < c->npeer_keys; i++)
            if (strcmp(c->peer_keys[i].site, item) == 0) {
                snprintf(e, l, "site \"%s\" listed twice", item);
                return VC_EINVAL;
            }
        if (parse_pk(eq + 1, k->pk) != 0) {
            snprintf(e, l, "%s: \"%.60s\" is not a public key (vc1:BASE64, "
                     "as printed by virtcloud keygen)", item, eq + 1);
            return VC_EINVAL;
        }
        snprintf(k->site, sizeof k->site, "%s", item);
        c->npeer_keys++;
    }
    return 0;
}

static int k_join(struct config *c, const char *v, char *e, size_t l)
{
    return set_addr(c->join, v, e, l);
}

static int k_voters(struct config *c, const char *v, char *e, size_t l)
{
    if (set_uint(&c->voters, v, 1, 15, e, l) != 0)
        return VC_EINVAL;
    if (c->voters % 2 == 0) {
        snprintf(e, l, "%u is even: an odd number of voters tolerates the "
                 "same failures with one site less", c->voters);
        return VC_EINVAL;
    }
    return 0;
}

static int k_vlans(struct config *c, const char *v, char *e, size_t l)
{
    int rv = vlanset_parse(&c->vlans, v, e, l);
    c->have_vlans = rv == 0;
    return rv;
}

static int k_uplink(struct config *c, const char *v, char *e, size_t l)
{
    char kind[16];
    const char *colon = strchr(v, ':');
    size_t n = colon ? (size_t)(colon - v) : strlen(v);
    unsigned svlan = 0;
    int u;
    if (n >= sizeof kind || (memcpy(kind, v, n), kind[n] = '\0',
                             (u = proto_uplink_parse(kind)) < 0)) {
        snprintf(e, l, "\"%s\" is not xponder, vpls or qinq:SVLAN", v);
        return VC_EINVAL;
    }
    if (u == UPLINK_QINQ) {
        if (!colon || set_uint(&svlan, colon + 1, 1, 4094, e, l) != 0) {
            snprintf(e, l, "qinq needs the outer S-VLAN: qinq:1..4094, got "
                     "\"%s\"", v);
            return VC_EINVAL;
        }
    } else if (colon) {
        snprintf(e, l, "only qinq takes an S-VLAN (\"%s\")", v);
        return VC_EINVAL;
    }
    c->uplink = (uint8_t)u;
    c->svlan = (uint16_t)svlan;
    return 0;
}

static int k_switch(struct config *c, const char *v, char *e, size_t l)
{
    return set_str(c->switch_cfg, sizeof c->switch_cfg, v, e, l);
}

static int k_drift(struct config *c, const char *v, char *e, size_t l)
{
    static const char *modes[] = {"off", "report", "repair"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, modes[i])) {
            c->drift = i;
            return 0;
        }
    snprintf(e, l, "\"%s\" is not off, report or repair", v);
    return VC_EINVAL;
}

static int k_managed(struct config *c, const char *v, char *e, size_t l)
{
    c->managed_set = true;
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        c->managed = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        c->managed = false;
    else {
        snprintf(e, l, "\"%s\" is not yes or no", v);
        return VC_EINVAL;
    }
    return 0;
}

#define UINT_KEY(fn, field, lo, hi)                                       \
    static int fn(struct config *c, const char *v, char *e, size_t l)    \
    {                                                                     \
        return set_uint(&c->field, v, lo, hi, e, l);                      \
    }
UINT_KEY(k_election, election_timeout_ms, 50, 600000)
UINT_KEY(k_heartbeat, heartbeat_timeout_ms, 10, 60000)
UINT_KEY(k_snap_threshold, snapshot_threshold, 16, 10000000)
UINT_KEY(k_snap_trailing, snapshot_trailing, 16, 10000000)
UINT_KEY(k_sweep, sweep_interval_ms, 100, 3600000)

/* raft_uv writes whole 4 KiB blocks: a segment is a multiple of them. */
static int k_segment(struct config *c, const char *v, char *e, size_t l)
{
    unsigned kib;
    int rv = set_uint(&kib, v, 64, 1048576, e, l);
    if (rv == 0 && kib % 4 != 0) {
        snprintf(e, l, "must be a multiple of 4 (KiB)");
        return VC_EINVAL;
    }
    if (rv == 0)
        c->segment_kib = kib;
    return rv;
}
UINT_KEY(k_req_timeout, request_timeout_ms, 100, 600000)
UINT_KEY(k_max_batch, max_batch, 1, VC_BATCH_MAX)
UINT_KEY(k_demote_after, demote_after_ms, 100, 86400000)
UINT_KEY(k_reconcile_interval, reconcile_interval_ms, 100, 3600000)

static int k_log_level(struct config *c, const char *v, char *e, size_t l)
{
    if ((c->log_level = log_level_parse(v)) < 0) {
        snprintf(e, l, "\"%s\" is not debug, info, warn or error", v);
        return VC_EINVAL;
    }
    return 0;
}

static int k_metrics(struct config *c, const char *v, char *e, size_t l)
{
    c->metrics_set = true;
    if (!strcmp(v, "off"))
        return set_str(c->metrics, sizeof c->metrics, v, e, l);
    return set_addr(c->metrics, v, e, l);
}

static const struct key keys[] = {
    {"site", "this site's name (required)", k_site},
    {"data-dir", "raft log and snapshots (required)", k_data_dir},
    {"peer", "IP:PORT for agent-to-agent traffic (required)", k_peer},
    {"api", "IP:PORT for clients (default 127.0.0.1:7800)", k_api},
    {"advertise", "API address other agents use (default: api)", k_advertise},
    {"unix", "local client socket (default DATA-DIR/agent.sock)", k_unix},
    {"bootstrap", "initial members NAME=IP:PORT,... (empty data dir only)",
     k_bootstrap},
    {"join", "client API of any member to join through (empty data dir)",
     k_join},
    {"key", "this site's private key file (virtcloud keygen); without it "
            "peer traffic is plain TCP", k_key},
    {"cluster-id", "name bound into every peer handshake (default "
                   "virtcloud)", k_cluster_id},
    {"peer-keys", "pinned site keys SITE=vc1:KEY,... (every bootstrap member)",
     k_peer_keys},
    {"client-auth", "required | off: clients sign requests (default "
                    "required with key, else off)", config_k_client_auth},
    {"join-token", "token from virtcloud site invite: pins the members' "
                   "keys and authorises the join (empty data dir)",
     config_k_join_token},
    {"voters", "target number of voters, odd (default 3)", k_voters},
    {"demote-after", "ms before an unreachable voter is replaced (default "
                     "30000)", k_demote_after},
    {"vlans", "this site's VLAN pool, e.g. 100-999,2000-2999 (required)",
     k_vlans},
    {"uplink", "xponder | vpls | qinq:SVLAN (default xponder)", k_uplink},
    {"managed", "yes if this site reports applied configuration (default: "
                "yes with a switch, else no)",
     k_managed},
    {"switch", "edge switch driver, e.g. linuxbridge:br0:uplink=up0:h1=p1 "
               "or dryrun",
     k_switch},
    {"drift", "off | report | repair (default repair)", k_drift},
    {"reconcile-interval", "ms between timed reconcile passes (default "
                           "5000)",
     k_reconcile_interval},
    {"election-timeout", "ms (default 200)", k_election},
    {"heartbeat-timeout", "ms (default 40)", k_heartbeat},
    {"snapshot-threshold", "entries between snapshots (default 4096)",
     k_snap_threshold},
    {"snapshot-trailing", "entries kept after a snapshot (default 8192)",
     k_snap_trailing},
    {"segment-size", "KiB per raft log segment, a multiple of 4 (default "
                     "8192)",
     k_segment},
    {"sweep-interval", "ms between lease checks (default 1000)", k_sweep},
    {"request-timeout", "ms a write may wait for commit (default 10000)",
     k_req_timeout},
    {"max-batch", "commands per log entry (default 1024)", k_max_batch},
    {"log-level", "debug | info | warn | error (default info)", k_log_level},
    {"metrics", "IP:PORT for GET /metrics (Prometheus), or off (default "
                "127.0.0.1:9464)", k_metrics},
    {"role", "site | host (default site; host: no raft, applies its host's "
             "state from the site agent)", config_k_role},
    {"host", "host role: this hypervisor host's name", config_k_host},
    {"site-agent", "host role: the site agent's API IP:PORT[,IP:PORT...]",
     config_k_site_agent},
    {"host-driver", "host role: driver, e.g. host:bridge=vc%u (default "
                    "host)", config_k_host_driver},
    {"host-agents", "yes if every host of this site runs a host agent whose "
                    "report counts for readiness (default no)",
     config_k_host_agents},
    {"apply-deadline", "roll back a creation not applied everywhere in "
                       "time, e.g. 60s, or off (default 5m)",
     config_k_apply_deadline},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* Keys config_apply_live() may change while the agent runs: each is read
 * where it is used, never cached at start-up. */
static const char *const live_keys[] = {
    "log-level", "drift", "reconcile-interval", "sweep-interval",
    "request-timeout", "max-batch", "demote-after",
};

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static void defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->api, sizeof c->api, "127.0.0.1:7800");
    c->uplink = UPLINK_XPONDER;
    c->election_timeout_ms = 200;
    c->heartbeat_timeout_ms = 40;
    c->snapshot_threshold = 4096;
    c->snapshot_trailing = 8192;
    c->segment_kib = 8192;
    c->sweep_interval_ms = 1000;
    c->request_timeout_ms = 10000;
    c->max_batch = 1024;
    c->voters = 3;
    snprintf(c->cluster_id, sizeof c->cluster_id, "virtcloud");
    c->drift = 2; /* repair */
    c->reconcile_interval_ms = 5000;
    c->demote_after_ms = 30000;
    c->log_level = LOG_INFO;
    c->apply_deadline_ms = 300000;
    snprintf(c->metrics, sizeof c->metrics, "127.0.0.1:9464");
}

struct ini_ctx {
    struct config *c;
    const char *file;
    FILE *f;
    int lineno; /* counted by our reader: Debian's inih passes no line */
    bool indented; /* the line just read starts with white space */
    const struct key *prev; /* key of the previous callback */
    int first[NKEYS]; /* line of each key's first occurrence, 0 if none */
    char *err;
    size_t len;
    int rv;
};

static char *read_line(char *str, int num, void *stream)
{
    struct ini_ctx *x = stream;
    char *line = fgets(str, num, x->f);
    if (line) {
        x->lineno++;
        x->indented = line[0] == ' ' || line[0] == '\t';
    }
    return line;
}

/* inih continues a value on an indented line by calling back again with
 * the same key; that would read as a duplicate (or silently replace the
 * value), so say what it is. A key given twice in one file is refused:
 * one of the two is a mistake (drop-ins override on purpose). */
static int check_repeat(struct ini_ctx *x, const struct key *k)
{
    size_t i = (size_t)(k - keys);
    if (x->first[i] == 0) {
        x->first[i] = x->lineno;
        return 0;
    }
    if (x->indented && x->prev == k)
        snprintf(x->err, x->len, "%s:%d: %s: indented line continues the "
                 "value; put the value on one line", x->file, x->lineno,
                 k->name);
    else
        snprintf(x->err, x->len, "%s:%d: duplicate key \"%s\" (first set "
                 "on line %d; a drop-in may override it, one file may not)",
                 x->file, x->lineno, k->name, x->first[i]);
    return VC_EINVAL;
}

static int ini_cb(void *user, const char *section, const char *name,
                  const char *value)
{
    struct ini_ctx *x = user;
    int lineno = x->lineno;
    char why[256];
    const struct key *k;
    if (x->rv != 0)
        return 0;
    if (section[0] && strcmp(section, "agent") != 0) {
        snprintf(x->err, x->len, "%s:%d: unknown section [%s]", x->file,
                 lineno, section);
        x->rv = VC_EINVAL;
        return 0;
    }
    if (!(k = find_key(name))) {
        snprintf(x->err, x->len, "%s:%d: unknown key \"%s\"", x->file, lineno,
                 name);
        x->rv = VC_EINVAL;
        return 0;
    }
    if ((x->rv = check_repeat(x, k)) != 0)
        return 0;
    x->prev = k;
    if (k->set(x->c, value, why, sizeof why) != 0) {
        snprintf(x->err, x->len, "%s:%d: %s: %s", x->file, lineno, name, why);
        x->rv = VC_EINVAL;
        return 0;
    }
    return 1;
}

static void note_source(struct config *c, const char *file)
{
    size_t n = strlen(c->sources);
    if (n + strlen(file) + 3 < sizeof c->sources)
        snprintf(c->sources + n, sizeof c->sources - n, "%s%s",
                 n ? ", " : "", file);
}

/* Opens file for reading; a directory is refused here, as fopen() takes
 * it and the reads then fail as if the file were empty. */
static FILE *open_file(const char *file, char *err, size_t len)
{
    struct stat st;
    FILE *f = fopen(file, "r");
    int e = errno;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        f = NULL;
        e = EISDIR;
    }
    if (!f)
        snprintf(err, len, "config: cannot read %s: %s", file, strerror(e));
    return f;
}

static int load_file(struct config *c, const char *file, char *err,
                     size_t len)
{
    struct ini_ctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.file = file;
    x.err = err;
    x.len = len;
    FILE *f = open_file(file, err, len);
    if (!f)
        return VC_EINVAL;
    x.f = f;
    int line = ini_parse_stream(read_line, &x, ini_cb, &x);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (x.rv != 0)
        return x.rv;
    if (bad) {
        snprintf(err, len, "config: cannot read %s: read error", file);
        return VC_EINVAL;
    }
    note_source(c, file);
    if (line != 0) {
        snprintf(err, len, "%s:%d: syntax error (want key = value)", file,
                 line);
        return VC_EINVAL;
    }
    return 0;
}

#define DROPINS_MAX 64

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists DIR's *.conf (no dot files) into names, sorted byte-wise.
 * Returns how many (0 if DIR does not exist), or VC_EINVAL with err. */
static int list_dropins(const char *dir, char *names[DROPINS_MAX],
                        char *err, size_t len)
{
    struct dirent *e;
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, len, "config: cannot read %s: %s", dir,
                 strerror(errno));
        return VC_EINVAL;
    }
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".conf"))
            continue;
        if (n == DROPINS_MAX || !(names[n] = strdup(e->d_name))) {
            snprintf(err, len, "config: %s: more than %d drop-ins", dir,
                     DROPINS_MAX);
            n = -n - 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n < 0) {
        for (int i = 0; i < -n - 1; i++)
            free(names[i]);
        return VC_EINVAL;
    }
    qsort(names, (size_t)n, sizeof names[0], by_name);
    return n;
}

/* Reads the drop-ins conf.d/NAME.conf in FILE's directory, in lexical
 * order. */
static int load_dropins(struct config *c, const char *file, char *err,
                        size_t len)
{
    char dir[600], path[900], *names[DROPINS_MAX];
    const char *slash = strrchr(file, '/');
    int n, rv = 0;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s/conf.d", (int)(slash - file), file);
    else
        snprintf(dir, sizeof dir, "conf.d");
    if ((n = list_dropins(dir, names, err, len)) < 0)
        return n;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rv == 0)
            rv = load_file(c, path, err, len);
        free(names[i]);
    }
    return rv;
}

static void usage(void)
{
    printf("usage: virtcloud-agent [--config FILE] [--check-config] "
           "[--KEY VALUE ...]\n\nkeys (also valid in the INI file, "
           "optionally under [agent]):\n");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        printf("  --%-20s %s\n", keys[i].name, keys[i].help);
}

/* Splits "--key=value" / "--key value". Returns the arg index consumed. */
static int flag_value(int argc, char **argv, int i, char *name, size_t cap,
                      const char **value)
{
    const char *a = argv[i] + 2, *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    if (n >= cap)
        n = cap - 1;
    memcpy(name, a, n);
    name[n] = '\0';
    if (eq) {
        *value = eq + 1;
        return i;
    }
    *value = i + 1 < argc ? argv[i + 1] : NULL;
    return i + 1;
}

/* With a key, every other bootstrap member needs a pinned key: the
 * founders can reach each other from the first start. */
static int check_keys(struct config *c, char *err, size_t len)
{
    if (!c->key_path[0]) {
        if (c->npeer_keys) {
            snprintf(err, len, "config: peer-keys: given without key (this "
                     "site's private key)");
            return VC_EINVAL;
        }
        return 0;
    }
    for (unsigned i = 0; i < c->nbootstrap; i++) {
        bool found = strcmp(c->bootstrap[i].site, c->site) == 0;
        for (unsigned k = 0; k < c->npeer_keys && !found; k++)
            found = strcmp(c->peer_keys[k].site, c->bootstrap[i].site) == 0;
        if (!found) {
            snprintf(err, len, "config: peer-keys: no key pinned for "
                     "bootstrap member \"%s\"", c->bootstrap[i].site);
            return VC_EINVAL;
        }
    }
    return 0;
}

static int check_required(struct config *c, char *err, size_t len)
{
    int role = config_role_check(c, err, len);
    if (role != 0)
        return role < 0 ? role : 0; /* a host role needs no site keys */
    const char *missing = !c->site[0]       ? "site"
                          : !c->data_dir[0] ? "data-dir"
                          : !c->peer[0]     ? "peer"
                          : !c->have_vlans  ? "vlans"
                                            : NULL;
    if (missing) {
        snprintf(err, len, "config: %s: required (see --help)", missing);
        return VC_EINVAL;
    }
    if (c->heartbeat_timeout_ms * 2 > c->election_timeout_ms) {
        snprintf(err, len, "config: heartbeat-timeout: %u ms must be at most "
                 "half of election-timeout (%u ms)",
                 c->heartbeat_timeout_ms, c->election_timeout_ms);
        return VC_EINVAL;
    }
    if (c->nbootstrap && !c->join[0]) {
        bool self = false;
        for (unsigned i = 0; i < c->nbootstrap; i++)
            self |= !strcmp(c->bootstrap[i].site, c->site);
        if (!self) {
            snprintf(err, len, "config: bootstrap: this site (%s) is not "
                     "listed; list it, or use join to add it to a running "
                     "cluster", c->site);
            return VC_EINVAL;
        }
    }
    if (!c->managed_set)
        c->managed = c->switch_cfg[0] != '\0';
    if (check_keys(c, err, len) != 0)
        return VC_EINVAL;
    if (!c->advertise[0])
        snprintf(c->advertise, sizeof c->advertise, "%s", c->api);
    if (!c->unix_path[0] &&
        snprintf(c->unix_path, sizeof c->unix_path, "%s/agent.sock",
                 c->data_dir) >= (int)sizeof c->unix_path) {
        snprintf(err, len, "config: unix: socket path too long");
        return VC_EINVAL;
    }
    return 0;
}

int config_load(struct config *c, int argc, char **argv, char *err,
                size_t len)
{
    char name[64], why[256];
    const char *value;
    defaults(c);
    /* The file first, so flags override it whatever their order. */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--config", 8) == 0 &&
            (argv[i][8] == '\0' || argv[i][8] == '=')) {
            i = flag_value(argc, argv, i, name, sizeof name, &value);
            if (!value) {
                snprintf(err, len, "config: --config needs a file");
                return VC_EINVAL;
            }
            if (load_file(c, value, err, len) != 0 ||
                load_dropins(c, value, err, len) != 0)
                return VC_EINVAL;
        }
    }
    for (int i = 1; i < argc; i++) {
        const struct key *k;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 1;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("virtcloud-agent 0.1.0\n");
            return 1;
        }
        if (!strcmp(argv[i], "--check-config")) {
            c->check_only = true;
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            snprintf(err, len, "config: unexpected argument \"%s\"", argv[i]);
            return VC_EINVAL;
        }
        i = flag_value(argc, argv, i, name, sizeof name, &value);
        if (!strcmp(name, "config"))
            continue;
        if (!(k = find_key(name))) {
            snprintf(err, len, "config: unknown flag --%s", name);
            return VC_EINVAL;
        }
        if (!value) {
            snprintf(err, len, "config: --%s needs a value", name);
            return VC_EINVAL;
        }
        if (k->set(c, value, why, sizeof why) != 0) {
            snprintf(err, len, "config: %s: %s", name, why);
            return VC_EINVAL;
        }
    }
    return check_required(c, err, len);
}

void config_print(const struct config *c, void *file)
{
    FILE *f = file;
    char pool[1024];
    fprintf(f, "# read: %s\n", c->sources[0] ? c->sources : "(flags only)");
    fprintf(f, "site = %s\ndata-dir = %s\npeer = %s\napi = %s\n"
               "advertise = %s\nunix = %s\n",
            c->site, c->data_dir, c->peer, c->api, c->advertise, c->unix_path);
    static const char *drift[] = {"off", "report", "repair"};
    fprintf(f, "switch = %s\ndrift = %s\nreconcile-interval = %u\n",
            c->switch_cfg, drift[c->drift], c->reconcile_interval_ms);
    fprintf(f, "join = %s\nvoters = %u\ndemote-after = %u\n", c->join,
            c->voters, c->demote_after_ms);
    fprintf(f, "bootstrap = ");
    for (unsigned i = 0; i < c->nbootstrap; i++)
        fprintf(f, "%s%s=%s", i ? "," : "", c->bootstrap[i].site,
                c->bootstrap[i].addr);
    fprintf(f, "\nvlans = %s\n", vlanset_format(&c->vlans, pool, sizeof pool));
    if (c->uplink == UPLINK_QINQ)
        fprintf(f, "uplink = qinq:%u\n", c->svlan);
    else
        fprintf(f, "uplink = %s\n", proto_uplink_name(c->uplink));
    fprintf(f, "managed = %s\nelection-timeout = %u\nheartbeat-timeout = %u\n"
               "snapshot-threshold = %u\nsnapshot-trailing = %u\n"
               "segment-size = %u\n"
               "sweep-interval = %u\nrequest-timeout = %u\nmax-batch = %u\n",
            c->managed ? "yes" : "no", c->election_timeout_ms,
            c->heartbeat_timeout_ms, c->snapshot_threshold,
            c->snapshot_trailing, c->segment_kib, c->sweep_interval_ms,
            c->request_timeout_ms, c->max_batch);
    fprintf(f, "key = %s\ncluster-id = %s\npeer-keys = ", c->key_path,
            c->cluster_id);
    for (unsigned i = 0; i < c->npeer_keys; i++) {
        char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, c->peer_keys[i].pk, 32,
                          sodium_base64_VARIANT_ORIGINAL);
        fprintf(f, "%s%s=%s%s", i ? "," : "", c->peer_keys[i].site,
                KEYS_PUBLIC_PREFIX, b64);
    }
    fprintf(f, "\n");
    static const char *lv[] = {"debug", "info", "warn", "error"};
    fprintf(f, "log-level = %s\nmetrics = %s\n", lv[c->log_level],
            c->metrics);
    config_role_print(c, f);
}

static bool is_live(const char *key)
{
    for (size_t i = 0; i < sizeof live_keys / sizeof live_keys[0]; i++)
        if (!strcmp(live_keys[i], key))
            return true;
    return false;
}

/* Splits "key = value\n" in place; false for comments. */
static bool split_line(char *line, char **key, char **value)
{
    char *eq = strstr(line, " = ");
    if (line[0] == '#' || !eq)
        return false;
    *eq = '\0';
    *key = line;
    *value = eq + 3;
    (*value)[strcspn(*value, "\n")] = '\0';
    return true;
}

static char *print_to_memory(const struct config *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    config_print(c, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Both texts come from config_print(): the same keys in the same order,
 * so they are compared line by line. A live key is re-applied through its
 * own setter with the printed value, which every setter accepts. */
int config_apply_live(struct config *cur, const struct config *next,
                      config_change_fn fn, void *data)
{
    char *a = print_to_memory(cur), *b = print_to_memory(next);
    char *sa, *sb, *la, *lb, *ka, *va, *kb, *vb, why[256];
    int refused = 0;
    if (!a || !b) {
        free(a);
        free(b);
        return VC_ENOMEM;
    }
    for (la = strtok_r(a, "\n", &sa), lb = strtok_r(b, "\n", &sb); la && lb;
         la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb)) {
        if (!split_line(la, &ka, &va) || !split_line(lb, &kb, &vb) ||
            strcmp(ka, kb) != 0 || !strcmp(va, vb))
            continue;
        bool live = is_live(ka) && find_key(ka)->set(cur, vb, why,
                                                     sizeof why) == 0;
        refused += !live;
        fn(data, ka, va, vb, live);
    }
    free(a);
    free(b);
    return refused;
}
