/* systemd integration and reload (agent/service.h).
 *
 * Happy path: main.c calls service_start() once raft has loaded and the
 * API listens -> /metrics listens -> READY=1 with a first STATUS= line ->
 * every second STATUS= is refreshed when its text changed (role, leader,
 * term, applied/commit) -> if systemd asked for a watchdog
 * (WATCHDOG_USEC), WATCHDOG=1 every half period from a loop timer, so a
 * stuck loop stops the beats and systemd restarts the agent -> SIGHUP
 * re-reads the files and flags, applies the live keys, logs each change
 * and each refused one -> shutdown: STOPPING=1.
 *
 * Failure modes: /metrics cannot listen -> fatal when the address was
 * configured, a warning with the default address (several agents on one
 * host, e.g. the local launcher); the reloaded configuration is invalid
 * -> logged, the running one is kept; a key that needs a restart changed
 * -> logged and ignored.
 */
#include "service.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"
#include "metrics_http.h"

#define STATUS_MS 1000

static struct {
    struct agent *a;
    int argc;
    char **argv;
    uv_signal_t sighup;
    uv_timer_t status, watchdog;
    char last_status[256];
    bool started;
} svc;

static const char *role_of(int state)
{
    switch (state) {
    case RAFT_LEADER: return "leader";
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    default: return "unavailable";
    }
}

/* "STATUS=follower, leader praha, term 3, applied 41 of 42 committed" */
static void status_line(struct agent *a, char *buf, size_t len)
{
    static struct consensus_status st; /* large: not on the stack */
    consensus_status(&a->cons, &st);
    const char *leader = api_leader_name(a);
    snprintf(buf, len, "STATUS=%s, leader %s, term %llu, applied %llu of "
             "%llu committed", role_of(st.state),
             leader[0] ? leader : "(none)",
             (unsigned long long)st.term, (unsigned long long)st.applied,
             (unsigned long long)st.commit);
}

static void send_status(struct agent *a, const char *prefix)
{
    char line[256], msg[300];
    status_line(a, line, sizeof line);
    if (!prefix && !strcmp(line, svc.last_status))
        return;
    snprintf(svc.last_status, sizeof svc.last_status, "%s", line);
    snprintf(msg, sizeof msg, "%s%s", prefix ? prefix : "", line);
    sd_notify(0, msg);
}

static void service_status_cb(uv_timer_t *t)
{
    (void)t;
    send_status(svc.a, NULL);
}

static void service_watchdog_cb(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

/* --- reload ------------------------------------------------------------- */

static void reload_change(void *data, const char *key, const char *old,
                          const char *new, bool live)
{
    struct agent *a = data;
    if (!live) {
        log_warn("reload: %s: \"%s\" -> \"%s\" needs a restart; keeping "
                 "\"%s\"", key, old, new, old);
        return;
    }
    if (!strcmp(key, "log-level"))
        log_set_level(a->cfg.log_level);
    log_info("reload: %s: \"%s\" -> \"%s\"", key, old, new);
}

static void reload(struct agent *a)
{
    char err[512];
    struct config *next = malloc(sizeof *next);
    int rv;
    sd_notify(0, "RELOADING=1");
    log_info("SIGHUP: reloading the configuration");
    if (!next) {
        log_error("reload: out of memory; keeping the running configuration");
    } else if ((rv = config_load(next, svc.argc, svc.argv, err,
                                 sizeof err)) != 0) {
        log_error("reload: %s; keeping the running configuration",
                  rv == 1 ? "unexpected --help or --version" : err);
    } else if ((rv = config_apply_live(&a->cfg, next, reload_change, a)) < 0) {
        log_error("reload: out of memory");
    } else {
        /* A level set from the CLI lasts until the next reload. */
        if (log_get_level() != a->cfg.log_level) {
            log_info("reload: log level %s -> %s (configured)",
                     log_level_name(log_get_level()),
                     log_level_name(a->cfg.log_level));
            log_set_level(a->cfg.log_level);
        }
        log_info("reload: done%s", rv ? " (some changes need a restart)"
                                       : "");
    }
    free(next);
    send_status(a, "READY=1\n");
}

static void service_sighup_cb(uv_signal_t *h, int signum)
{
    (void)h, (void)signum;
    if (!svc.a->stopping)
        reload(svc.a);
}

/* --- life cycle --------------------------------------------------------- */

static int start_metrics(struct agent *a, char *err, size_t len)
{
    if (!strcmp(a->cfg.metrics, "off"))
        return 0;
    int rv = metrics_http_start(a, a->cfg.metrics, err, len);
    if (rv == 0) {
        log_info("metrics on http://%s/metrics", a->cfg.metrics);
        return 0;
    }
    if (a->cfg.metrics_set)
        return rv;
    log_warn("%s; /metrics is off (set metrics = IP:PORT, or off)", err);
    return 0;
}

int service_start(struct agent *a, int argc, char **argv, char *err,
                  size_t len)
{
    uint64_t usec = 0;
    int rv = start_metrics(a, err, len);
    if (rv != 0)
        return rv;
    svc.a = a;
    svc.argc = argc;
    svc.argv = argv;
    uv_signal_init(a->loop, &svc.sighup);
    uv_signal_start(&svc.sighup, service_sighup_cb, SIGHUP);
    uv_timer_init(a->loop, &svc.status);
    uv_timer_start(&svc.status, service_status_cb, STATUS_MS, STATUS_MS);
    uv_timer_init(a->loop, &svc.watchdog);
    if (sd_watchdog_enabled(0, &usec) > 0 && usec) {
        uint64_t ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&svc.watchdog, service_watchdog_cb, ms, ms);
        log_info("systemd watchdog: a beat every %llu ms",
                 (unsigned long long)ms);
    }
    svc.started = true;
    send_status(a, "READY=1\n");
    return 0;
}

void service_stopping(struct agent *a)
{
    (void)a;
    if (!svc.started)
        return;
    svc.started = false;
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    metrics_http_stop();
    uv_close((uv_handle_t *)&svc.sighup, NULL);
    uv_close((uv_handle_t *)&svc.status, NULL);
}

/* --- run-time log level -------------------------------------------------- */

struct level_change {
    const char *before, *after;
};

static void pack_levels(msgpack_packer *pk, void *ctx)
{
    const struct level_change *l = ctx;
    msgpack_pack_map(pk, 2);
    mp_pack_cstr(pk, "level");
    mp_pack_cstr(pk, l->after);
    mp_pack_cstr(pk, "previous");
    mp_pack_cstr(pk, l->before);
}

int service_log_level(struct agent *a, struct conn *c,
                       const struct proto_request *req)
{
    char want[16], msg[96];
    struct level_change l = {log_level_name(log_get_level()), NULL};
    int level = log_get_level();
    (void)a;
    /* Admin only, once client roles exist (security work: signed client
     * requests with roles): check c's role here and answer VC_EDENIED.
     * Until then, as every other operation, it is open to whoever can
     * reach the API. */
    if (req->name.n) {
        snprintf(want, sizeof want, "%.*s", (int)req->name.n, req->name.p);
        if (req->name.n >= sizeof want || (level = log_level_parse(want)) < 0) {
            snprintf(msg, sizeof msg, "\"%.*s\" is not debug, info, warn or "
                     "error", (int)(req->name.n < 40 ? req->name.n : 40),
                     req->name.p);
            api_reply(c, req->seq, VC_EINVAL, msg, NULL, NULL);
            return VC_EINVAL;
        }
    }
    l.after = log_level_name(level);
    if (level != log_get_level()) {
        /* Logged at warn so the change shows whatever the levels. */
        log_warn("log level %s -> %s (from a client)", l.before, l.after);
        log_set_level(level);
    }
    api_reply(c, req->seq, 0, "", pack_levels, &l);
    return 0;
}
