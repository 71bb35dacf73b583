/* virtcloud-agent: one per site. Wires the state machine, raft, the client
 * API and the periodic duties (leader changes, lease sweeps, registering
 * this site's record) onto one libuv loop.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting clients; a leader first hands
 * leadership to another voter so a planned restart costs no election
 * timeout; then pending requests are answered "shutting down", raft is
 * closed and every handle released. A second signal skips the hand-over.
 */
#include <raft.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../proto/err.h"
#include "agent.h"
#include "auth.h"
#include "hostrole.h"
#include "log.h"
#include "rollback.h"
#include "service.h"

#define TICK_MS 50

static void shutdown_begin(struct agent *a, bool transfer);

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t agent_now_ms(struct agent *a)
{
    (void)a;
    return clock_ms(CLOCK_MONOTONIC); /* deadlines and intervals */
}

uint64_t agent_wall_ms(struct agent *a)
{
    (void)a;
    return clock_ms(CLOCK_REALTIME); /* the leader's command timestamps */
}

/* --- hooks from consensus ---------------------------------------------- */

static void on_apply(void *data, const struct proto_cmd *cmd,
                     const struct proto_result *r)
{
    struct agent *a = data;
    members_on_apply(a, cmd, r);
    auth_on_apply(a, cmd, r);
    if (cmd->type != PROTO_CMD_APPLY_REPORT || r->code == 0)
        reconcile_kick(&a->rec);
    request_on_apply(a, cmd, r);
}

static void on_fatal(void *data, const char *why)
{
    struct agent *a = data;
    log_error("stopping: %s; restart the agent to recover from its data "
              "directory", why);
    a->exit_code = 1;
    /* Called from inside raft's apply: close raft from the next tick. */
    a->fatal = true;
}

/* --- internal commands ------------------------------------------------- */

static void sweep_done(struct request *r, int code,
                       const struct proto_result *res)
{
    struct agent *a = r->done_data;
    a->sweeping = false;
    if (code == 0 && res && res->gen)
        log_info("lease sweep: %s", res->msg);
}

/* The leader proposes a sweep, stamped with its clock, when some lease
 * has run out. Followers never act on their clocks. */
static void maybe_sweep(struct agent *a, uint64_t now)
{
    if (a->sweeping || now - a->last_sweep_ms < a->cfg.sweep_interval_ms ||
        !consensus_is_leader(&a->cons))
        return;
    a->last_sweep_ms = now;
    bool expired = false;
    for (uint32_t i = 0; i < a->fsm.nclusters && !expired; i++) {
        const struct fsm_cluster *c = &a->fsm.clusters[i];
        expired = c->live && c->state != FSM_RELEASING &&
                  c->deadline_ms < agent_wall_ms(a);
    }
    if (!expired)
        return;
    struct proto_cmd cmd;
    proto_cmd_init(&cmd, PROTO_CMD_LEASE_SWEEP);
    a->sweeping = true;
    request_internal(a, &cmd, sweep_done, a);
}

static char last_register_err[VC_MSG_MAX + 1];

static void register_done(struct request *r, int code,
                          const struct proto_result *res)
{
    struct agent *a = r->done_data;
    a->registering = false;
    if (code == 0) {
        log_info("site record registered: %s", res ? res->msg : "ok");
        last_register_err[0] = '\0';
        return;
    }
    const char *msg = res ? res->msg : vc_strerror(code);
    if (strcmp(msg, last_register_err) != 0) {
        /* Once per distinct reason, not every second. */
        log_error("cannot register this site's configuration: %s", msg);
        snprintf(last_register_err, sizeof last_register_err, "%s", msg);
    }
}

static bool site_matches(const struct agent *a, const struct fsm_site *s)
{
    return vlanset_equal(&s->pool, &a->cfg.vlans) &&
           s->uplink == a->cfg.uplink && s->svlan == a->cfg.svlan &&
           s->managed == a->cfg.managed && !strcmp(s->addr, a->cfg.advertise) &&
           (!auth_site_pk(a) || s->has_key);
}

/* True once this replica has applied everything committed when it
 * started, so that acting on its view (reconciling devices, feeding host
 * agents, trusting keys) cannot undo live configuration. A follower's own
 * commit index says nothing about that right after a restart: raft only
 * raises it as the leader's entries arrive. So the target is the leader's
 * commit index, learnt from its answer to a ping (peer.c); a leader holds
 * every committed entry and uses its own -- both only once a barrier of
 * the leader's term committed (consensus_leader_ready()): before that a
 * new leader's commit index can lag what its predecessor committed. */
bool agent_caught_up(struct agent *a)
{
    struct consensus_status st;
    if (a->caught_up)
        return true;
    consensus_status(&a->cons, &st);
    if (!st.leader_id)
        return false;
    if (!a->startup_commit) {
        if (consensus_leader_ready(&a->cons))
            a->startup_commit = st.commit ? st.commit : 1;
        else if (a->leader_commit)
            a->startup_commit = a->leader_commit;
        else
            return false;
    }
    if (st.applied >= a->startup_commit) {
        a->caught_up = true;
        log_info("caught up at index %llu", (unsigned long long)st.applied);
    }
    return a->caught_up;
}

/* A marker in the data dir remembers that this site's record was once
 * committed, so a site removed by an operator never re-adds itself, even
 * across restarts. */
static bool marker(struct agent *a, bool set)
{
    char path[600];
    snprintf(path, sizeof path, "%s/registered", a->cfg.data_dir);
    if (set) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(a->cfg.site, f);
            fputc('\n', f);
            fclose(f);
        }
        return true;
    }
    return access(path, F_OK) == 0;
}

static bool founder(const struct agent *a)
{
    for (unsigned i = 0; i < a->cfg.nbootstrap; i++)
        if (!strcmp(a->cfg.bootstrap[i].site, a->cfg.site))
            return true;
    return false;
}

/* Registers or updates this site's record from the configuration once a
 * leader can commit it. Only founders (bootstrap members) add their record
 * this way, and only once: joiners have it committed by the join, and a
 * record that disappears was removed by an operator and stays removed. */
static void maybe_register(struct agent *a, uint64_t now)
{
    const struct fsm_site *s = fsm_site_find(&a->fsm, a->cfg.site);
    if (!agent_caught_up(a))
        return; /* a stale view would re-add a removed site */
    if (s && !a->registered_once) {
        a->registered_once = true;
        if (!marker(a, false))
            marker(a, true);
    }
    if (!s && !a->registered_once && marker(a, false))
        a->registered_once = true;
    if (a->registering || now - a->last_register_ms < 1000 ||
        !consensus_leader(&a->cons, NULL) || (s && site_matches(a, s)) ||
        consensus_member_role(&a->cons, consensus_site_id(a->cfg.site),
                              NULL) < 0)
        return;
    if (!s && (a->registered_once || !founder(a))) {
        if (a->registered_once && !a->removed_warned) {
            log_warn("this site was removed from the cluster (site remove); "
                     "it takes no further part: stop this agent");
            a->removed_warned = true;
        }
        return;
    }
    a->last_register_ms = now;
    struct proto_cmd cmd;
    proto_cmd_init(&cmd, s ? PROTO_CMD_SITE_UPDATE : PROTO_CMD_SITE_ADD);
    cmd.name = mp_cstr(a->cfg.site);
    cmd.addr = mp_cstr(a->cfg.advertise);
    cmd.pool = a->cfg.vlans;
    cmd.uplink = a->cfg.uplink;
    cmd.svlan = a->cfg.svlan;
    cmd.managed = a->cfg.managed;
    if (auth_site_pk(a) && !(s && s->has_key))
        cmd.key = (struct mp_str){(const char *)auth_site_pk(a), 32};
    a->registering = true;
    request_internal(a, &cmd, register_done, a);
}

/* --- loop duties ------------------------------------------------------- */

static void watch_leader(struct agent *a, uint64_t now)
{
    uint64_t leader = consensus_leader(&a->cons, NULL);
    if (leader == a->last_leader)
        return;
    if (leader)
        log_info("leader is now %s%s", api_leader_name(a),
                 consensus_is_leader(&a->cons) ? " (this site)" : "");
    else
        log_warn("no leader");
    a->no_leader_since_ms = leader ? 0 : now;
    a->last_leader = leader;
    if (consensus_is_leader(&a->cons))
        a->leader_since_ms = now;
}

static void tick_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    uint64_t now = agent_now_ms(a);
    if (a->fatal && !a->stopping)
        shutdown_begin(a, false);
    if (a->stopping)
        return;
    if (!a->last_leader && !a->no_leader_since_ms)
        a->no_leader_since_ms = now;
    watch_leader(a, now);
    peer_tick(a);
    request_tick(a);
    consensus_tick(&a->cons);
    maybe_sweep(a, now);
    maybe_register(a, now);
    members_tick(a, now);
    join_tick(a, now);
    auth_tick(a, now);
    reconcile_tick(&a->rec, now);
    rollback_tick(a, now);
}

static void flush_cb(uv_check_t *h)
{
    struct agent *a = h->data;
    if (!a->stopping) {
        request_flush(a);
        peer_flush(a);
    }
}

/* --- shutdown ---------------------------------------------------------- */

static void walk_close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void consensus_closed_cb(struct consensus *c)
{
    /* Whatever is still open (timers, peer links) goes now. */
    uv_walk(c->loop, walk_close_cb, NULL);
}

static void shutdown_finish(struct agent *a)
{
    if (a->finishing)
        return;
    a->finishing = true;
    uv_timer_stop(&a->grace);
    log_info("closing");
    request_close_all(a, VC_ESHUTDOWN,
                      "agent is shutting down; retry at another site");
    peer_close_all(a);
    join_close(a);
    reconcile_close(&a->rec);
    uv_timer_stop(&a->tick);
    uv_check_stop(&a->flush);
    consensus_close(&a->cons, consensus_closed_cb);
}

static void transfer_done_cb(struct consensus *c)
{
    struct agent *a = (struct agent *)((char *)c - offsetof(struct agent, cons));
    log_info("leadership handed over to %s", api_leader_name(a));
    shutdown_finish(a);
}

static void grace_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    log_warn("leadership hand-over did not finish in time; closing anyway");
    shutdown_finish(a);
}

static void shutdown_begin(struct agent *a, bool transfer)
{
    if (a->stopping)
        return;
    a->stopping = true;
    service_stopping(a);
    api_close(a);
    if (transfer && consensus_transfer(&a->cons, transfer_done_cb) == 0) {
        /* raft gives up after an election timeout, but not always when no
         * voter answers: bound the wait ourselves. */
        uint64_t ms = 4ull * a->cfg.election_timeout_ms;
        log_info("handing leadership over before shutdown");
        uv_timer_start(&a->grace, grace_cb, ms < 1000 ? 1000 : ms, 0);
        return;
    }
    shutdown_finish(a);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    struct agent *a = s->data;
    if (a->stopping) {
        log_warn("second signal: closing now");
        shutdown_finish(a);
        return;
    }
    log_info("%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    shutdown_begin(a, true);
}

static int run(struct agent *a, int argc, char **argv)
{
    char err[512];
    int rv;
    a->loop = uv_default_loop();
    if (fsm_init(&a->fsm) != 0 || request_init(a) != 0) {
        log_error("out of memory");
        return 1;
    }
    if (reconcile_init(&a->rec, a, err, sizeof err) != 0) {
        log_error("config: switch: %s", err);
        return 2;
    }
    rv = consensus_start(&a->cons, a->loop, &a->cfg, &a->fsm, on_apply,
                         on_fatal, a, err, sizeof err);
    if (rv != 0) {
        log_error("%s", err);
        return rv == VC_EINVAL ? 2 : 1;
    }
    if ((rv = auth_start(a, err, sizeof err)) != 0) {
        log_error("%s", err);
        return rv == VC_EINVAL ? 2 : 1;
    }
    uv_timer_init(a->loop, &a->tick);
    a->tick.data = a;
    uv_timer_init(a->loop, &a->grace);
    a->grace.data = a;
    uv_check_init(a->loop, &a->flush);
    a->flush.data = a;
    if (api_start(a, err, sizeof err) != 0) {
        log_error("%s", err);
        a->exit_code = 1;
        shutdown_begin(a, false);
        uv_run(a->loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_signal_init(a->loop, &a->sigterm);
    uv_signal_init(a->loop, &a->sigint);
    a->sigterm.data = a->sigint.data = a;
    uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&a->sigint, signal_cb, SIGINT);
    /* READY=1 for systemd: raft loaded its log (consensus_start) and the
     * API listens. */
    if (service_start(a, argc, argv, err, sizeof err) != 0) {
        log_error("%s", err);
        a->exit_code = 1;
        shutdown_begin(a, false);
        uv_run(a->loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_timer_start(&a->tick, tick_cb, TICK_MS, TICK_MS);
    uv_check_start(&a->flush, flush_cb);
    log_info("serving clients on %s and %s; raft on %s, data in %s",
             a->cfg.api, a->cfg.unix_path, a->cfg.peer, a->cfg.data_dir);
    uv_run(a->loop, UV_RUN_DEFAULT);
    return a->exit_code;
}

int main(int argc, char **argv)
{
    static struct agent agent;
    char err[512];
    int rv;
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "virtcloud-agent: libsodium failed to initialise\n");
        return 1;
    }
    rv = config_load(&agent.cfg, argc, argv, err, sizeof err);
    if (rv == 1)
        return 0;
    if (rv != 0) {
        fprintf(stderr, "virtcloud-agent: %s\n", err);
        return 2;
    }
    if (agent.cfg.check_only) {
        config_print(&agent.cfg, stdout);
        return 0;
    }
    log_init(agent.cfg.site, agent.cfg.log_level);
    if (agent.cfg.role == CONFIG_ROLE_HOST)
        return hostrole_run(&agent.cfg); /* no raft, no state machine */
    rv = run(&agent, argc, argv);
    auth_close(&agent);
    fsm_close(&agent.fsm);
    map_close(&agent.pending);
    free(agent.ptab);
    free(agent.ptab_free);
    uv_loop_close(agent.loop);
    return rv;
}
