/* ssh back-end (see drv_ssh.h): one SSH session per apply, commands typed
 * into an interactive shell on a pty, as an operator would.
 *
 * Happy path of an apply: connect (ssh config applied), check the host
 * key against known_hosts, authenticate by public key, open a shell,
 * wait for the prompt, SESSION_SETUP (paging off), ENABLE_MODE if the
 * prompt says unprivileged ('>'), read back (SHOW_VLANS, SHOW_PORT),
 * plan (drv_swcli.c); if the plan is not empty: CONFIG_MODE, every
 * operation's commands, EXIT_CONFIG_MODE and SAVE_CONFIGURATION in the
 * vendor's order, then read back and plan again, which must come out
 * empty. Close.
 *
 * Failure modes, each an error with the switch's own words and nothing
 * more sent: connect or DNS failure, unknown/changed host key (with the
 * offered key's fingerprint), authentication refused, the shell closes,
 * no prompt within the timeout (with the last line seen, e.g. an enable
 * password prompt), a line of output matching one of the vendor's error
 * patterns (errmsg "vlan 42: ADD_NETWORK_TO_TRUNK Gi0/9: interface Gi0/9:
 * % Invalid input detected at '^' marker."), or a switch that still
 * differs after the batch (templates that do not do what they say). A
 * failed batch is not saved; the session is closed without leaving
 * configuration mode (Junos "configure private" then drops the uncommitted
 * changes) and the next apply starts again from a fresh read-back.
 */
#include "drv_ssh.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libssh/libssh.h>

#include "drv_int.h"

#define OUT_MAX (4u << 20) /* output of one command: more is an error */
#define SCRIPT_MAX 16384   /* one operation's rendered commands */

/* --- config ------------------------------------------------------------------
 */

static bool host_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 253 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

static bool path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= DRV_SSH_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

static int add_port(struct drv_ssh_cfg *c, const char *host, const char *port,
                    char *errmsg, size_t errlen)
{
    if (!drv_tmpl_port_ok(port)) {
        snprintf(errmsg, errlen,
                 "port \"%.64s\": not 1..64 of A-Za-z0-9/._- and single "
                 "spaces",
                 port);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->nports; i++) {
        bool same_port = strcmp(c->ports[i], port) == 0;
        if (same_port || (host && c->hosts[i] && !strcmp(c->hosts[i], host))) {
            snprintf(errmsg, errlen, "%s %s: listed twice",
                     same_port ? "port" : "host", same_port ? port : host);
            return -EINVAL;
        }
    }
    char **p = realloc(c->ports, (c->nports + 1) * sizeof *p);
    if (p)
        c->ports = p;
    char **h = p ? realloc(c->hosts, (c->nports + 1) * sizeof *h) : NULL;
    if (h)
        c->hosts = h;
    if (!p || !h || !(c->ports[c->nports] = strdup(port))) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    c->hosts[c->nports] = host ? strdup(host) : NULL;
    if (host && !c->hosts[c->nports]) {
        free(c->ports[c->nports]);
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    c->nports++;
    return 0;
}

static int set_num(const char *key, const char *v, unsigned lo, unsigned hi,
                   unsigned *out, char *errmsg, size_t errlen)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || v[0] == '-' || n < lo || n > hi) {
        snprintf(errmsg, errlen, "%s \"%.32s\": not %u..%u", key, v, lo, hi);
        return -EINVAL;
    }
    *out = (unsigned)n;
    return 0;
}

static int set_path(const char *key, const char *v, char *out, char *errmsg,
                    size_t errlen)
{
    if (!path_ok(v)) {
        snprintf(errmsg, errlen, "%s \"%.64s\": not a usable path", key, v);
        return -EINVAL;
    }
    snprintf(out, DRV_SSH_PATH_MAX, "%s", v);
    return 0;
}

static int cfg_field(struct drv_ssh_cfg *c, char *f, char *uplink, char *errmsg,
                     size_t errlen);

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Reads "HOST = PORT" lines (and "uplink = PORT"; '#' comments) from
 * path: a site's cabling can outgrow one config line. */
static int ports_file(struct drv_ssh_cfg *c, const char *path, char *uplink,
                      char *errmsg, size_t errlen)
{
    char line[512];
    int n = 0, rc = 0;
    FILE *f = path_ok(path) ? fopen(path, "r") : NULL;
    if (!f) {
        int e = path_ok(path) ? errno : EINVAL;
        snprintf(errmsg, errlen, "ports \"%.64s\": %s", path, strerror(e));
        return -e;
    }
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char field[512];
        n++;
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (eq)
            *eq = '\0';
        char *k = trim(line), *v = eq ? trim(eq + 1) : NULL;
        if (!k[0] || k[0] == '#')
            continue;
        snprintf(field, sizeof field, "%s%s%s", k, v ? "=" : "", v ? v : "");
        if ((rc = cfg_field(c, field, uplink, errmsg, errlen)) != 0)
            drv_errwrap(errmsg, errlen, "%s:%d", path, n);
    }
    fclose(f);
    return rc;
}

static int set_word(const char *key, const char *v, char *out, size_t cap,
                    char *errmsg, size_t errlen)
{
    if (!host_ok(v) || strlen(v) >= cap) {
        snprintf(errmsg, errlen, "%s \"%.64s\": refused", key, v);
        return -EINVAL;
    }
    snprintf(out, cap, "%s", v);
    return 0;
}

static int set_mark(struct drv_ssh_cfg *c, const char *v, char *errmsg,
                    size_t errlen)
{
    if (!drv_tmpl_name_ok(v) || strlen(v) > DRV_SWCLI_MARK_MAX) {
        snprintf(errmsg, errlen,
                 "mark \"%.32s\": a letter, then up to 14 of A-Za-z0-9_.-", v);
        return -EINVAL;
    }
    snprintf(c->mark, sizeof c->mark, "%s", v);
    return 0;
}

/* A driver setting (not a host mapping); 1 if k is no setting. */
static int cfg_setting(struct drv_ssh_cfg *c, const char *k, const char *v,
                       char *uplink, char *errmsg, size_t errlen)
{
    if (!strcmp(k, "vendor"))
        return set_word(k, v, c->vendor, sizeof c->vendor, errmsg, errlen);
    if (!strcmp(k, "uplink")) { /* checked when cfg_check adds it */
        snprintf(uplink, DRV_TMPL_PORT_MAX + 2, "%.*s", DRV_TMPL_PORT_MAX + 1,
                 v);
        return 0;
    }
    if (!strcmp(k, "user"))
        return set_word(k, v, c->user, sizeof c->user, errmsg, errlen);
    if (!strcmp(k, "port"))
        return set_num(k, v, 1, 65535, &c->port, errmsg, errlen);
    if (!strcmp(k, "timeout"))
        return set_num(k, v, 1, 3600, &c->timeout_s, errmsg, errlen);
    if (!strcmp(k, "mark"))
        return set_mark(c, v, errmsg, errlen);
    if (!strcmp(k, "ports"))
        return ports_file(c, v, uplink, errmsg, errlen);
    static const struct {
        const char *key;
        size_t off;
    } paths[] = {
        {"identity", offsetof(struct drv_ssh_cfg, identity)},
        {"known_hosts", offsetof(struct drv_ssh_cfg, known_hosts)},
        {"ssh_config", offsetof(struct drv_ssh_cfg, ssh_config)},
        {"templates", offsetof(struct drv_ssh_cfg, templates)},
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (!strcmp(k, paths[i].key))
            return set_path(k, v, (char *)c + paths[i].off, errmsg, errlen);
    return 1;
}

/* One "key=value" field: a setting or a "HOST=PORT" mapping. The uplink
 * goes first in ports: it is kept aside until all fields are read. */
static int cfg_field(struct drv_ssh_cfg *c, char *f, char *uplink, char *errmsg,
                     size_t errlen)
{
    char *eq = strchr(f, '=');
    if (!eq || eq == f) {
        snprintf(errmsg, errlen, "\"%.64s\": expected key=value", f);
        return -EINVAL;
    }
    *eq = '\0';
    const char *k = f, *v = eq + 1;
    int rc = cfg_setting(c, k, v, uplink, errmsg, errlen);
    if (rc <= 0)
        return rc;
    if (!host_ok(k) || strlen(k) > VC_NAME_MAX) {
        snprintf(errmsg, errlen, "host \"%.64s\": not a host name", k);
        return -EINVAL;
    }
    return add_port(c, k, v, errmsg, errlen);
}

static int cfg_check(struct drv_ssh_cfg *c, const char *uplink, char *errmsg,
                     size_t errlen)
{
    if (!c->vendor[0]) {
        snprintf(errmsg, errlen,
                 "vendor=: missing (cisco_ios, hp_procurve, "
                 "dell_force10, juniper_junos or a "
                 "templates= section)");
        return -EINVAL;
    }
    if (!uplink[0]) {
        snprintf(errmsg, errlen, "uplink=PORT: missing");
        return -EINVAL;
    }
    /* Move the uplink to the front. */
    size_t n = c->nports;
    int rc = add_port(c, NULL, uplink, errmsg, errlen);
    if (rc)
        return rc;
    char *p = c->ports[n], *h = c->hosts[n];
    memmove(c->ports + 1, c->ports, n * sizeof *c->ports);
    memmove(c->hosts + 1, c->hosts, n * sizeof *c->hosts);
    c->ports[0] = p;
    c->hosts[0] = h;
    return 0;
}

int drv_ssh_cfg_parse(struct drv_ssh_cfg *c, const char *args, char *errmsg,
                      size_t errlen)
{
    char uplink[DRV_TMPL_PORT_MAX + 2] = "";
    memset(c, 0, sizeof *c);
    snprintf(c->mark, sizeof c->mark, "%s", DRV_SSH_MARK_DEFAULT);
    c->timeout_s = DRV_SSH_TIMEOUT_DEFAULT;
    char *buf = strdup(args ? args : "");
    if (!buf) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    char *save = NULL, *f = strtok_r(buf, ":", &save);
    int rc = 0;
    if (!f || !host_ok(f)) {
        snprintf(errmsg, errlen,
                 "switch \"%.64s\": expected ssh:HOST:vendor=...:uplink=PORT "
                 "(HOST a name, an IPv4 address or an ssh config alias)",
                 f ? f : "");
        rc = -EINVAL;
    } else {
        snprintf(c->host, sizeof c->host, "%s", f);
    }
    while (rc == 0 && (f = strtok_r(NULL, ":", &save)))
        rc = cfg_field(c, f, uplink, errmsg, errlen);
    free(buf);
    return rc ? rc : cfg_check(c, uplink, errmsg, errlen);
}

void drv_ssh_cfg_close(struct drv_ssh_cfg *c)
{
    for (size_t i = 0; i < c->nports; i++) {
        free(c->ports[i]);
        free(c->hosts[i]);
    }
    free(c->ports);
    free(c->hosts);
    c->ports = c->hosts = NULL;
    c->nports = 0;
}

void drv_ssh_swcfg(const struct drv_ssh_cfg *c, struct drv_swcfg *out)
{
    out->mark = c->mark;
    out->ports = (const char *const *)c->ports;
    out->hosts = (const char *const *)c->hosts;
    out->nports = c->nports;
}

/* --- rendering
 * ---------------------------------------------------------------- */

int drv_ssh_render_op(const struct drv_tmpl_vendor *v,
                      const struct drv_swcfg *c, const struct drv_swop *op,
                      char *out, size_t outlen, char *errmsg, size_t errlen)
{
    struct drv_tmpl_args a = {
        .vid = op->vid,
        .name = op->name,
        .port = op->port >= 0 && (size_t)op->port < c->nports
                    ? c->ports[op->port]
                    : NULL,
    };
    return drv_tmpl_render(v, op->op, &a, out, outlen, errmsg, errlen);
}

/* Appends s and a newline to out[*len..]; false if it does not fit. */
static bool append(char *out, size_t outlen, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (!n)
        return true;
    if (*len + n + 2 > outlen)
        return false;
    memcpy(out + *len, s, n);
    *len += n;
    out[(*len)++] = '\n';
    out[*len] = '\0';
    return true;
}

int drv_ssh_script(const struct drv_tmpl_vendor *v, const struct drv_swcfg *c,
                   const struct drv_swplan *p, char *out, size_t outlen,
                   char *errmsg, size_t errlen)
{
    static const int tail_save_last[] = {DRV_TMPL_EXIT_CONFIG_MODE,
                                         DRV_TMPL_SAVE_CONFIGURATION};
    static const int tail_save_first[] = {DRV_TMPL_SAVE_CONFIGURATION,
                                          DRV_TMPL_EXIT_CONFIG_MODE};
    char buf[SCRIPT_MAX];
    size_t len = 0;
    if (!outlen)
        return -ENOSPC;
    out[0] = '\0';
    if (!p->n)
        return 0;
    const int *tail = v->save_in_config_mode ? tail_save_first : tail_save_last;
    for (size_t i = 0; i < p->n + 3; i++) {
        int rc;
        if (i == 0)
            rc = drv_tmpl_render(v, DRV_TMPL_CONFIG_MODE, NULL, buf, sizeof buf,
                                 errmsg, errlen);
        else if (i <= p->n)
            rc = drv_ssh_render_op(v, c, &p->v[i - 1], buf, sizeof buf, errmsg,
                                   errlen);
        else
            rc = drv_tmpl_render(v, tail[i - p->n - 1], NULL, buf, sizeof buf,
                                 errmsg, errlen);
        if (rc < 0)
            return rc;
        if (!append(out, outlen, &len, buf)) {
            snprintf(errmsg, errlen, "script exceeds %zu bytes", outlen - 1);
            out[0] = '\0';
            return -ENOSPC;
        }
    }
    return (int)len;
}

/* --- the session
 * ----------------------------------------------------------------- */

struct sess {
    const struct drv_ssh_cfg *cfg;
    const struct drv_tmpl_vendor *v;
    ssh_session s;
    ssh_channel ch;
    char *buf; /* output since the last command, control chars removed */
    size_t len, cap;
    bool esc; /* inside an ANSI escape sequence */
    char *errmsg;
    size_t errlen;
};

static int sess_err(struct sess *x, int code, const char *what)
{
    snprintf(x->errmsg, x->errlen, "%s: %s", what,
             x->s ? ssh_get_error(x->s) : "out of memory");
    return code;
}

static int verify_host(struct sess *x)
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char *fp = NULL;
    enum ssh_known_hosts_e st = ssh_session_is_known_server(x->s);
    if (st == SSH_KNOWN_HOSTS_OK)
        return 0;
    if (ssh_get_server_publickey(x->s, &key) == SSH_OK &&
        ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) ==
            0)
        fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    const char *fps = fp ? fp : "(no fingerprint)";
    switch (st) {
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        snprintf(x->errmsg, x->errlen,
                 "host key %s: it does NOT match known_hosts (%s): refusing "
                 "to connect (a man in the middle, or a replaced switch: "
                 "fix known_hosts by hand)",
                 fps,
                 st == SSH_KNOWN_HOSTS_OTHER ? "other key type"
                                             : "key changed");
        break;
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
        snprintf(x->errmsg, x->errlen,
                 "host key %s: unknown (not in known_hosts): refusing to "
                 "connect; check the fingerprint on the switch and add it "
                 "(ssh-keyscan)",
                 fps);
        break;
    default:
        snprintf(x->errmsg, x->errlen, "known_hosts: %s", ssh_get_error(x->s));
    }
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(key);
    return st == SSH_KNOWN_HOSTS_ERROR ? -EIO : -EPERM;
}

static int set_opts(struct sess *x)
{
    const struct drv_ssh_cfg *c = x->cfg;
    long timeout = (long)c->timeout_s;
    int port = (int)c->port;
    if (ssh_options_set(x->s, SSH_OPTIONS_HOST, c->host) != SSH_OK)
        return sess_err(x, -EINVAL, "host");
    /* The operator's ssh config first; explicit keys then override it. */
    if (ssh_options_parse_config(x->s,
                                 c->ssh_config[0] ? c->ssh_config : NULL) != 0)
        return sess_err(x, -EINVAL, "ssh config");
    if ((c->user[0] &&
         ssh_options_set(x->s, SSH_OPTIONS_USER, c->user) != SSH_OK) ||
        (port && ssh_options_set(x->s, SSH_OPTIONS_PORT, &port) != SSH_OK) ||
        (c->identity[0] &&
         ssh_options_set(x->s, SSH_OPTIONS_IDENTITY, c->identity) != SSH_OK) ||
        (c->known_hosts[0] && ssh_options_set(x->s, SSH_OPTIONS_KNOWNHOSTS,
                                              c->known_hosts) != SSH_OK) ||
        ssh_options_set(x->s, SSH_OPTIONS_TIMEOUT, &timeout) != SSH_OK)
        return sess_err(x, -EINVAL, "ssh options");
    return 0;
}

static int sess_connect(struct sess *x)
{
    if (!(x->s = ssh_new()))
        return sess_err(x, -ENOMEM, "ssh");
    int rc = set_opts(x);
    if (rc)
        return rc;
    if (ssh_connect(x->s) != SSH_OK)
        return sess_err(x, -EHOSTUNREACH, "connect");
    if ((rc = verify_host(x)) != 0)
        return rc;
    if (ssh_userauth_publickey_auto(x->s, NULL, NULL) != SSH_AUTH_SUCCESS)
        return sess_err(x, -EACCES,
                        "public key authentication (ssh-agent, identity "
                        "files) refused");
    if (!(x->ch = ssh_channel_new(x->s)) ||
        ssh_channel_open_session(x->ch) != SSH_OK ||
        ssh_channel_request_pty_size(x->ch, "vt100", 511, 24) != SSH_OK ||
        ssh_channel_request_shell(x->ch) != SSH_OK)
        return sess_err(x, -EIO, "shell");
    return 0;
}

static void sess_close(struct sess *x)
{
    if (x->ch) {
        ssh_channel_close(x->ch);
        ssh_channel_free(x->ch);
    }
    if (x->s) {
        ssh_disconnect(x->s);
        ssh_free(x->s);
    }
    free(x->buf);
    x->ch = NULL;
    x->s = NULL;
    x->buf = NULL;
}

/* Appends output, dropping '\r', backspaces and ANSI escape sequences,
 * which pagers and pty line editing print. */
static int absorb(struct sess *x, const char *p, size_t n)
{
    if (x->len + n + 1 > x->cap) {
        if (x->len + n + 1 > OUT_MAX) {
            snprintf(x->errmsg, x->errlen, "output exceeds %u bytes", OUT_MAX);
            return -EMSGSIZE;
        }
        size_t cap = (x->len + n + 1) * 2;
        char *b = realloc(x->buf, cap);
        if (!b) {
            snprintf(x->errmsg, x->errlen, "out of memory");
            return -ENOMEM;
        }
        x->buf = b;
        x->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (x->esc) {
            x->esc = !(isalpha(ch) || ch == '~');
            continue;
        }
        if (ch == 0x1b)
            x->esc = true;
        else if (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch != 0x7f))
            x->buf[x->len++] = (char)ch;
    }
    x->buf[x->len] = '\0';
    return 0;
}

static const char *last_line(struct sess *x)
{
    if (!x->buf)
        return "";
    char *nl = x->len ? strrchr(x->buf, '\n') : NULL;
    return nl ? nl + 1 : x->buf;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool password_prompt(const char *line)
{
    const char *p = strcasestr(line, "password:");
    return p && !p[9 + strspn(p + 9, " ")];
}

/* Reads until the last line is the vendor's prompt (answering pagers). */
static int wait_prompt(struct sess *x)
{
    char chunk[4096];
    int64_t deadline = now_ms() + (int64_t)x->cfg->timeout_s * 1000;
    for (;;) {
        const char *last = last_line(x);
        if (drv_tmpl_is_prompt(x->v, last))
            return 0;
        if (password_prompt(last)) {
            snprintf(x->errmsg, x->errlen,
                     "the switch asks for a password (\"%.60s\"): enable "
                     "secrets are not supported, log in with a privileged "
                     "account",
                     last);
            return -EACCES;
        }
        if (drv_tmpl_is_more(x->v, last)) {
            x->len = (size_t)(last - x->buf); /* drop the pager line */
            x->buf[x->len] = '\0';
            if (ssh_channel_write(x->ch, " ", 1) != 1)
                return sess_err(x, -EIO, "write");
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(x->errmsg, x->errlen,
                     "no prompt within %u s (last output: \"%.80s\")",
                     x->cfg->timeout_s, last_line(x));
            return -ETIMEDOUT;
        }
        int n = ssh_channel_read_timeout(x->ch, chunk, sizeof chunk, 0,
                                         (int)(left > 1000 ? 1000 : left));
        if (n == SSH_ERROR)
            return sess_err(x, -EIO, "read");
        if (n == 0 && ssh_channel_is_eof(x->ch)) {
            snprintf(x->errmsg, x->errlen,
                     "the switch closed the session (last output: "
                     "\"%.80s\")",
                     last_line(x));
            return -ECONNRESET;
        }
        int rc = n > 0 ? absorb(x, chunk, (size_t)n) : 0;
        if (rc)
            return rc;
    }
}

/* The first output line matching an error pattern, copied to out. */
static bool find_error(struct sess *x, char *out, size_t outlen)
{
    const char *p = x->buf, *end = last_line(x);
    char line[512];
    while (p < end) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 511 ? n : 511), p);
        if (drv_tmpl_is_error(x->v, line)) {
            snprintf(out, outlen, "%s", line);
            return true;
        }
        p += n + 1;
    }
    return false;
}

/* Types one command and waits for the prompt; x->buf then holds the
 * echo, the output and the new prompt. */
static int run(struct sess *x, const char *cmd)
{
    char line[512];
    x->len = 0;
    if (x->buf)
        x->buf[0] = '\0';
    size_t n = strlen(cmd);
    if (ssh_channel_write(x->ch, cmd, (uint32_t)n) != (int)n ||
        ssh_channel_write(x->ch, "\n", 1) != 1)
        return sess_err(x, -EIO, "write");
    int rc = wait_prompt(x);
    if (rc) {
        drv_errwrap(x->errmsg, x->errlen, "%s", cmd);
        return rc;
    }
    if (find_error(x, line, sizeof line)) {
        snprintf(x->errmsg, x->errlen, "%s: %s", cmd, line);
        return -EIO;
    }
    return 0;
}

/* Runs each line of a rendered template. */
static int run_lines(struct sess *x, const char *text)
{
    char cmd[1024];
    while (*text) {
        size_t n = strcspn(text, "\n");
        snprintf(cmd, sizeof cmd, "%.*s", (int)(n < 1023 ? n : 1023), text);
        text += n + (text[n] == '\n');
        int rc = cmd[0] ? run(x, cmd) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int run_op(struct sess *x, int op)
{
    char text[SCRIPT_MAX];
    int rc = drv_tmpl_render(x->v, op, NULL, text, sizeof text, x->errmsg,
                             x->errlen);
    if (rc < 0)
        return rc;
    rc = run_lines(x, text);
    if (rc)
        drv_errwrap(x->errmsg, x->errlen, "%s", drv_tmpl_op_name(op));
    return rc;
}

static int sess_open(struct sess *x)
{
    int rc = sess_connect(x);
    if (rc == 0 && (rc = wait_prompt(x)) != 0)
        drv_errwrap(x->errmsg, x->errlen, "login");
    if (rc == 0)
        rc = run_op(x, DRV_TMPL_SESSION_SETUP);
    if (rc)
        return rc;
    const char *last = last_line(x);
    size_t n = strlen(last);
    while (n && last[n - 1] == ' ')
        n--;
    if (n && last[n - 1] == '>') /* unprivileged exec mode */
        rc = run_op(x, DRV_TMPL_ENABLE_MODE);
    return rc;
}

/* --- read-back over the session
 * ----------------------------------------------------- */

static int read_back(struct sess *x, const struct drv_swcfg *c,
                     struct drv_swview *view)
{
    char text[SCRIPT_MAX];
    drv_swview_reset(view);
    int rc = run_op(x, DRV_TMPL_SHOW_VLANS);
    if (rc)
        return rc;
    drv_swcli_parse_vlans(x->v->dialect, x->buf, c, view);
    const char *show_port = x->v->ops[DRV_TMPL_SHOW_PORT];
    for (size_t i = 0; show_port && show_port[0] && i < c->nports; i++) {
        struct drv_tmpl_args a = {.port = c->ports[i]};
        rc = drv_tmpl_render(x->v, DRV_TMPL_SHOW_PORT, &a, text, sizeof text,
                             x->errmsg, x->errlen);
        if (rc >= 0)
            rc = run_lines(x, text);
        if (rc < 0) {
            drv_errwrap(x->errmsg, x->errlen, "SHOW_PORT %s", c->ports[i]);
            return rc;
        }
        drv_swcli_parse_port(x->v->dialect, x->buf, i, c, view);
    }
    return 0;
}

/* --- the instance
 * ----------------------------------------------------------------------- */

struct sshdrv {
    struct drv base; /* first */
    struct drv_ssh_cfg cfg;
    struct drv_swcfg sw;
    struct drv_tmpl_set tmpl;
    const struct drv_tmpl_vendor *v;
    struct drv_swview view;
    struct drv_swplan plan;
    pthread_mutex_t lock; /* one session per switch at a time */
};

static void op_label(const struct drv_swcfg *c, const struct drv_swop *op,
                     char *out, size_t len)
{
    snprintf(out, len, "%s%s%s", drv_tmpl_op_name(op->op),
             op->port >= 0 ? " " : "", op->port >= 0 ? c->ports[op->port] : "");
}

static void log_op(struct sshdrv *d, const char *text)
{
    char line[1024];
    size_t k = 0;
    for (size_t i = 0; text[i] && k + 3 < sizeof line; i++) {
        if (text[i] == '\n') {
            line[k++] = ';';
            line[k++] = ' ';
        } else {
            line[k++] = text[i];
        }
    }
    line[k] = '\0';
    drv_log_append(&d->base, line);
}

/* Sends the batch: configuration mode, every operation, leave and save
 * in the vendor's order. */
static int push(struct sshdrv *d, struct sess *x, struct drv_result *res)
{
    char text[SCRIPT_MAX], label[128];
    int rc = run_op(x, DRV_TMPL_CONFIG_MODE);
    for (size_t i = 0; rc == 0 && i < d->plan.n; i++) {
        const struct drv_swop *op = &d->plan.v[i];
        rc = drv_ssh_render_op(d->v, &d->sw, op, text, sizeof text, x->errmsg,
                               x->errlen);
        if (rc >= 0)
            rc = run_lines(x, text);
        if (rc < 0) {
            op_label(&d->sw, op, label, sizeof label);
            drv_errwrap(x->errmsg, x->errlen, "vlan %u: %s", (unsigned)op->vid,
                        label);
            return rc;
        }
        res->changes++;
        log_op(d, text);
    }
    if (rc)
        return rc;
    if (d->v->save_in_config_mode) {
        if ((rc = run_op(x, DRV_TMPL_SAVE_CONFIGURATION)) == 0)
            rc = run_op(x, DRV_TMPL_EXIT_CONFIG_MODE);
    } else if ((rc = run_op(x, DRV_TMPL_EXIT_CONFIG_MODE)) == 0) {
        rc = run_op(x, DRV_TMPL_SAVE_CONFIGURATION);
    }
    return rc;
}

static int apply_in_session(struct sshdrv *d, struct sess *x,
                            const struct drv_switch_state *want,
                            struct drv_result *res)
{
    char label[128];
    int rc = read_back(x, &d->sw, &d->view);
    if (rc == 0)
        rc = drv_swplan_make(&d->sw, want, &d->view, &d->plan, x->errmsg,
                             x->errlen);
    if (rc || d->plan.n == 0)
        return rc;
    if ((rc = push(d, x, res)) != 0)
        return rc;
    /* Confirm: templates that do not do what they claim would otherwise
     * churn silently on every pass. */
    if ((rc = read_back(x, &d->sw, &d->view)) != 0 ||
        (rc = drv_swplan_make(&d->sw, want, &d->view, &d->plan, x->errmsg,
                              x->errlen)) != 0)
        return rc;
    if (d->plan.n == 0)
        return 0;
    op_label(&d->sw, &d->plan.v[0], label, sizeof label);
    snprintf(x->errmsg, x->errlen,
             "after the batch the switch still needs \"%s\" for vlan %u "
             "(and %zu more): do the %s templates match this switch?",
             label, (unsigned)d->plan.v[0].vid, d->plan.n - 1, d->v->name);
    return -EIO;
}

static int ssh_apply(struct drv *base, const struct drv_switch_state *want,
                     struct drv_result *res, char *errmsg, size_t errlen)
{
    struct sshdrv *d = (struct sshdrv *)base;
    struct sess x = {
        .cfg = &d->cfg, .v = d->v, .errmsg = errmsg, .errlen = errlen};
    pthread_mutex_lock(&d->lock);
    /* Refuse a bad state before connecting: planned against an empty
     * view, only the state itself can fail. */
    drv_swview_reset(&d->view);
    int rc = drv_swplan_make(&d->sw, want, &d->view, &d->plan, errmsg, errlen);
    if (rc == 0)
        rc = sess_open(&x);
    if (rc == 0)
        rc = apply_in_session(d, &x, want, res);
    sess_close(&x);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static int ssh_read(struct drv *base, const struct vlanset *managed,
                    struct drv_switch_state **out, char *errmsg, size_t errlen)
{
    struct sshdrv *d = (struct sshdrv *)base;
    struct sess x = {
        .cfg = &d->cfg, .v = d->v, .errmsg = errmsg, .errlen = errlen};
    pthread_mutex_lock(&d->lock);
    int rc = sess_open(&x);
    if (rc == 0)
        rc = read_back(&x, &d->sw, &d->view);
    sess_close(&x);
    if (rc == 0 && drv_swcli_read(&d->sw, managed, &d->view, out) != 0) {
        snprintf(errmsg, errlen, "read-back: out of memory");
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

static void ssh_close(struct drv *base)
{
    struct sshdrv *d = (struct sshdrv *)base;
    drv_swplan_close(&d->plan);
    drv_swview_close(&d->view);
    drv_tmpl_set_close(&d->tmpl);
    drv_ssh_cfg_close(&d->cfg);
    pthread_mutex_destroy(&d->lock);
    drv_base_close(base);
    free(d);
}

static int ssh_open_vendor(struct sshdrv *d, char *errmsg, size_t errlen)
{
    int rc = drv_tmpl_set_load(&d->tmpl, d->cfg.templates, errmsg, errlen);
    if (rc)
        return rc;
    if (!(d->v = drv_tmpl_find(&d->tmpl, d->cfg.vendor))) {
        size_t k = (size_t)snprintf(errmsg, errlen, "vendor \"%s\": unknown (",
                                    d->cfg.vendor);
        for (size_t i = 0; i < d->tmpl.n && k < errlen; i++)
            k += (size_t)snprintf(errmsg + k, errlen - k, "%s%s", i ? ", " : "",
                                  d->tmpl.v[i].name);
        if (k < errlen)
            snprintf(errmsg + k, errlen - k, ")");
        return -EINVAL;
    }
    return drv_swview_init(&d->view, d->cfg.nports) == 0
               ? 0
               : (snprintf(errmsg, errlen, "out of memory"), -ENOMEM);
}

static int ssh_open(const char *args, struct drv **out, char *errmsg,
                    size_t errlen)
{
    char label[64];
    struct sshdrv *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&d->lock, NULL);
    snprintf(label, sizeof label, "ssh %.56s", args ? args : "");
    label[strcspn(label, ":")] = '\0';
    drv_base_init(&d->base, &drv_ssh_class, label);
    int rc = drv_ssh_cfg_parse(&d->cfg, args, errmsg, errlen);
    if (rc == 0)
        rc = ssh_open_vendor(d, errmsg, errlen);
    if (rc) {
        ssh_close(&d->base);
        return rc;
    }
    drv_ssh_swcfg(&d->cfg, &d->sw);
    *out = &d->base;
    return 0;
}

const struct drv_class drv_ssh_class = {
    .name = "ssh",
    .usage = "ssh:HOST:vendor=VENDOR:uplink=PORT[:HOST=PORT]...[:user=U]"
             "[:port=N][:identity=F][:known_hosts=F][:ssh_config=F]"
             "[:templates=F][:ports=F][:mark=P][:timeout=S]",
    .roles = DRV_ROLE_SWITCH,
    .open = ssh_open,
    .close = ssh_close,
    .switch_apply = ssh_apply,
    .switch_read = ssh_read,
};
