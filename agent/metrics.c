/* Metrics registry and Prometheus text rendering (agent/metrics.h).
 *
 * Counters live in one static struct of fixed arrays: every label set is
 * known in advance (request types from the protocol's tables, results
 * from the error table, at most 16 driver names), so a bump is an array
 * increment and a scrape never allocates per series. Gauges (raft, state,
 * reachability) are read from the agent when rendering.
 *
 * The output follows the text exposition format 0.0.4: one HELP and TYPE
 * line per family before its samples, the samples of a family together,
 * label values escaped, histogram buckets cumulative and ending in
 * le="+Inf" equal to _count.
 */
#include "metrics.h"

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"

#define CMD_SLOTS 48 /* type indexes 1..47: command types of a submit */
#define TYPES_MAX 64 /* CMD_SLOTS + op: the other operations */
#define RESULTS 34   /* 0 ok, 1..32 VirtCloud codes, 33 system errors */
#define RESULT_SYSTEM 33
#define BUCKETS_MAX 16
#define DRIVERS_MAX 16

struct hist {
    uint64_t n[BUCKETS_MAX + 1]; /* per bucket, not cumulative; last +Inf */
    uint64_t count;
    double sum;
};

static const double req_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,  0.05,  0.1,    0.25,  0.5,
                                    1,      2.5,   5,      10};
static const double rec_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25,
                                    0.5,   1,     2.5,  5,    10,  30};
#define NBOUNDS(b) (sizeof b / sizeof b[0])

static struct {
    uint64_t requests[TYPES_MAX][RESULTS];
    struct hist latency[TYPES_MAX];
    struct hist reconcile;
    uint64_t reconcile_result[2]; /* ok, error */
    char drivers[DRIVERS_MAX][32];
    uint64_t driver_errors[DRIVERS_MAX + 1]; /* last: "other" */
    uint64_t drift_repaired, drift_reported;
} m;

/* --- bumping ----------------------------------------------------------- */

static unsigned type_index(int op, int cmd_type)
{
    if (op == PROTO_OP_SUBMIT)
        return cmd_type > 0 && cmd_type < CMD_SLOTS ? (unsigned)cmd_type : 0;
    return op > 0 && op < TYPES_MAX - CMD_SLOTS ? CMD_SLOTS + (unsigned)op
                                                 : 0;
}

static unsigned result_index(int code)
{
    if (code == 0)
        return 0;
    if (code < VC_ERR_BASE && code >= VC_ERR_BASE - (RESULTS - 2))
        return (unsigned)(VC_ERR_BASE - code);
    return RESULT_SYSTEM;
}

static void observe(struct hist *h, const double *bounds, size_t nb,
                    double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->n[i]++;
    h->count++;
    h->sum += v;
}

void metrics_request_done(int op, int cmd_type, int code, uint64_t ns)
{
    unsigned t = type_index(op, cmd_type);
    m.requests[t][result_index(code)]++;
    observe(&m.latency[t], req_bounds, NBOUNDS(req_bounds), (double)ns / 1e9);
}

void metrics_reconcile_done(uint64_t ns, bool ok)
{
    observe(&m.reconcile, rec_bounds, NBOUNDS(rec_bounds), (double)ns / 1e9);
    m.reconcile_result[ok ? 0 : 1]++;
}

void metrics_driver_error(const char *driver)
{
    unsigned i;
    for (i = 0; i < DRIVERS_MAX && m.drivers[i][0]; i++)
        if (!strcmp(m.drivers[i], driver))
            break;
    if (i < DRIVERS_MAX && !m.drivers[i][0])
        snprintf(m.drivers[i], sizeof m.drivers[i], "%s", driver);
    m.driver_errors[i]++;
}

void metrics_drift_repaired(unsigned changes)
{
    m.drift_repaired += changes;
}

void metrics_drift_reported(unsigned vlans)
{
    m.drift_reported += vlans;
}

void metrics_reset(void)
{
    memset(&m, 0, sizeof m);
}

/* --- names ------------------------------------------------------------- */

static const char *type_name(unsigned t)
{
    static const char *ops[] = {
        [PROTO_OP_STATUS] = "status", [PROTO_OP_SITES] = "sites",
        [PROTO_OP_CLUSTERS] = "clusters", [PROTO_OP_PING] = "ping",
        [PROTO_OP_JOIN] = "join", [7] = "watch", [8] = "log-level",
        [PROTO_OP_AUDIT] = "audit", [PROTO_OP_SESSION] = "session",
    };
    const char *n = NULL;
    if (t > 0 && t < CMD_SLOTS)
        n = proto_cmd_name((int)t);
    else if (t >= CMD_SLOTS && t - CMD_SLOTS < sizeof ops / sizeof ops[0])
        n = ops[t - CMD_SLOTS];
    return n ? n : "unknown";
}

static const char *result_name(unsigned r)
{
    if (r == 0)
        return "ok";
    if (r == RESULT_SYSTEM)
        return "system";
    return vc_errname(VC_ERR_BASE - (int)r);
}

/* --- rendering --------------------------------------------------------- */

static void family(FILE *f, const char *name, const char *type,
                   const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes a label value with the format's escapes (\\, \", \n). */
static void label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*v, f);
    }
}

/* name{k="v"} value, with one label (k NULL: none). */
static void sample1(FILE *f, const char *name, const char *k, const char *v,
                    double value)
{
    fputs(name, f);
    if (k) {
        fprintf(f, "{%s=\"", k);
        label_value(f, v);
        fputs("\"}", f);
    }
    fprintf(f, " %.17g\n", value);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "gauge", help);
    sample1(f, name, NULL, NULL, v);
}

static void counter(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "counter", help);
    sample1(f, name, NULL, NULL, v);
}

static const char *state_label(int s)
{
    switch (s) {
    case RAFT_LEADER: return "leader";
    case RAFT_FOLLOWER: return "follower";
    case RAFT_CANDIDATE: return "candidate";
    default: return "unavailable";
    }
}

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER: return "voter";
    case RAFT_STANDBY: return "standby";
    default: return "spare";
    }
}

static void render_raft_core(FILE *f, struct agent *a,
                             const struct consensus_status *st)
{
    static const int states[] = {RAFT_LEADER, RAFT_FOLLOWER, RAFT_CANDIDATE,
                                 RAFT_UNAVAILABLE};
    family(f, "virtcloud_build_info", "gauge",
           "Always 1; labels name the version and this site.");
    fprintf(f, "virtcloud_build_info{version=\"0.1.0\",site=\"");
    label_value(f, a->cfg.site);
    fprintf(f, "\"} 1\n");
    gauge(f, "virtcloud_raft_term", "Current raft term.", (double)st->term);
    gauge(f, "virtcloud_raft_commit_index", "Highest log index known "
          "committed.", (double)st->commit);
    gauge(f, "virtcloud_raft_applied_index", "Highest log index applied to "
          "this replica's state machine.", (double)st->applied);
    gauge(f, "virtcloud_raft_last_index", "Last index in this replica's "
          "log.", (double)st->last_index);
    family(f, "virtcloud_raft_state", "gauge",
           "1 for this agent's raft state, 0 for the others.");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        sample1(f, "virtcloud_raft_state", "state", state_label(states[i]),
                st->state == states[i] ||
                    (i == 3 && st->state != RAFT_LEADER &&
                     st->state != RAFT_FOLLOWER &&
                     st->state != RAFT_CANDIDATE));
    gauge(f, "virtcloud_raft_has_leader", "1 if this agent knows a leader.",
          st->leader_id != 0);
    family(f, "virtcloud_raft_leader", "gauge",
           "1, labelled with the leader this agent knows (absent if none).");
    if (st->leader_id) {
        fprintf(f, "virtcloud_raft_leader{site=\"");
        label_value(f, api_leader_name(a));
        fprintf(f, "\",id=\"%llu\"} 1\n", (unsigned long long)st->leader_id);
    }
}

static void render_members(FILE *f, struct agent *a,
                           const struct consensus_status *st)
{
    static const int roles[] = {RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE};
    family(f, "virtcloud_raft_members", "gauge",
           "Members of the raft configuration by role.");
    for (size_t r = 0; r < 3; r++) {
        unsigned n = 0;
        for (unsigned i = 0; i < st->nmembers; i++)
            n += st->members[i].role == roles[r];
        sample1(f, "virtcloud_raft_members", "role", role_name(roles[r]), n);
    }
    family(f, "virtcloud_member_reachable", "gauge",
           "1 if this agent heard from the member's agent recently (pings "
           "on the client API); this agent is always reachable.");
    for (unsigned i = 0; i < st->nmembers; i++) {
        const struct consensus_member *mb = &st->members[i];
        bool self = !strcmp(mb->site, a->cfg.site);
        fprintf(f, "virtcloud_member_reachable{site=\"");
        label_value(f, mb->site);
        fprintf(f, "\",id=\"%llu\",role=\"%s\"} %d\n",
                (unsigned long long)mb->id, role_name(mb->role),
                self || peer_reachable(a, mb->site));
    }
    family(f, "virtcloud_member_lag_entries", "gauge",
           "Leader only: log entries each member is behind the leader.");
    if (st->state != RAFT_LEADER)
        return;
    for (unsigned i = 0; i < st->nmembers; i++)
        sample1(f, "virtcloud_member_lag_entries", "site",
                st->members[i].site, (double)st->members[i].lag);
}

static void render_state(FILE *f, struct agent *a)
{
    static const int states[] = {FSM_PENDING, FSM_READY, FSM_RELEASING};
    const struct fsm_site *order[VC_SITES_MAX];
    uint32_t n = fsm_sites_by_id(&a->fsm, order), count[3] = {0, 0, 0};
    gauge(f, "virtcloud_sites", "Live sites in the replicated state.", n);
    for (uint32_t i = 0; i < a->fsm.nclusters; i++) {
        const struct fsm_cluster *c = &a->fsm.clusters[i];
        if (c->live && c->state < 3)
            count[c->state]++;
    }
    family(f, "virtcloud_clusters", "gauge",
           "Clusters in this replica's state, by state.");
    for (int s = 0; s < 3; s++)
        sample1(f, "virtcloud_clusters", "state", fsm_state_name(states[s]),
                count[s]);
    family(f, "virtcloud_site_vlans_free", "gauge",
           "VLANs of the site's pool that no cluster holds.");
    for (uint32_t i = 0; i < n; i++)
        sample1(f, "virtcloud_site_vlans_free", "site", order[i]->name,
                vlanset_count(&order[i]->free));
    family(f, "virtcloud_site_vlans_pool", "gauge",
           "VLANs in the site's pool.");
    for (uint32_t i = 0; i < n; i++)
        sample1(f, "virtcloud_site_vlans_pool", "site", order[i]->name,
                vlanset_count(&order[i]->pool));
    gauge(f, "virtcloud_requests_in_flight", "Requests this agent holds "
          "(queued, proposed, forwarded or waiting).", a->nreqs);
    gauge(f, "virtcloud_client_connections", "Open client API connections.",
          a->nconns);
}

/* The secure transport's connections and raft traffic (absent on the
 * plain transport, which keeps no counts). */
static void render_peers(FILE *f, struct agent *a)
{
    static const char *purposes[] = {"raft", "forward"};
    struct transport_stats st;
    if (!transport_stats(&a->cons.transport, &st))
        return;
    family(f, "virtcloud_peer_connections", "gauge",
           "Authenticated peer channels, by purpose and direction.");
    for (int p = 0; p < 2; p++)
        for (int in = 0; in < 2; in++)
            fprintf(f, "virtcloud_peer_connections{purpose=\"%s\","
                       "direction=\"%s\"} %u\n", purposes[p],
                    in ? "in" : "out", st.conns[p][in]);
    gauge(f, "virtcloud_peer_handshakes", "Peer connections still in the "
          "handshake.", st.handshaking);
    counter(f, "virtcloud_peer_refused_total", "Peer connections refused or "
            "timed out in the handshake (unknown or wrong key, garbage, "
            "slow, over a cap).", (double)st.refused);
    counter(f, "virtcloud_peer_errors_total", "Authenticated peer channels "
            "closed on data that failed to authenticate or decode.",
            (double)st.errors);
    family(f, "virtcloud_raft_messages_total", "counter",
           "Raft messages through the secure transport, by direction and "
           "result.");
    fprintf(f, "virtcloud_raft_messages_total{direction=\"out\",result="
               "\"ok\"} %llu\n", (unsigned long long)st.raft_sent);
    fprintf(f, "virtcloud_raft_messages_total{direction=\"out\",result="
               "\"failed\"} %llu\n", (unsigned long long)st.raft_send_failed);
    fprintf(f, "virtcloud_raft_messages_total{direction=\"in\",result="
               "\"ok\"} %llu\n", (unsigned long long)st.raft_received);
}

static void hist_samples(FILE *f, const char *name, const char *labels,
                         const struct hist *h, const double *b, size_t nb)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < nb; i++) {
        cum += h->n[i];
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, b[i],
                (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
            (unsigned long long)h->count);
    fprintf(f, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels,
            labels[0] ? "}" : "", h->sum);
    fprintf(f, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
            labels[0] ? "}" : "", (unsigned long long)h->count);
}

static void render_requests(FILE *f)
{
    char labels[96];
    family(f, "virtcloud_requests_total", "counter",
           "Client requests this agent answered, by type and result.");
    for (unsigned t = 0; t < TYPES_MAX; t++)
        for (unsigned r = 0; r < RESULTS; r++)
            if (m.requests[t][r])
                fprintf(f, "virtcloud_requests_total{type=\"%s\",result="
                           "\"%s\"} %llu\n", type_name(t), result_name(r),
                        (unsigned long long)m.requests[t][r]);
    family(f, "virtcloud_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by type.");
    for (unsigned t = 0; t < TYPES_MAX; t++) {
        if (!m.latency[t].count)
            continue;
        snprintf(labels, sizeof labels, "type=\"%s\"", type_name(t));
        hist_samples(f, "virtcloud_request_duration_seconds", labels,
                     &m.latency[t], req_bounds, NBOUNDS(req_bounds));
    }
}

static void render_reconcile(FILE *f)
{
    family(f, "virtcloud_reconcile_duration_seconds", "histogram",
           "Duration of reconcile passes (driver read-back and apply).");
    hist_samples(f, "virtcloud_reconcile_duration_seconds", "", &m.reconcile,
                 rec_bounds, NBOUNDS(rec_bounds));
    family(f, "virtcloud_reconcile_passes_total", "counter",
           "Reconcile passes by result.");
    sample1(f, "virtcloud_reconcile_passes_total", "result", "ok",
            (double)m.reconcile_result[0]);
    sample1(f, "virtcloud_reconcile_passes_total", "result", "error",
            (double)m.reconcile_result[1]);
    family(f, "virtcloud_driver_errors_total", "counter",
           "Failed driver calls, by driver class.");
    for (unsigned i = 0; i < DRIVERS_MAX && m.drivers[i][0]; i++)
        sample1(f, "virtcloud_driver_errors_total", "driver", m.drivers[i],
                (double)m.driver_errors[i]);
    if (m.driver_errors[DRIVERS_MAX])
        sample1(f, "virtcloud_driver_errors_total", "driver", "other",
                (double)m.driver_errors[DRIVERS_MAX]);
    counter(f, "virtcloud_drift_repairs_total", "Changes timed passes made "
            "to undo configuration changed by hand (drift mode repair).",
            (double)m.drift_repaired);
    counter(f, "virtcloud_drift_reported_total", "VLANs found differing by "
            "timed passes in drift mode report.", (double)m.drift_reported);
}

char *metrics_render(struct agent *a, size_t *len)
{
    static struct consensus_status st; /* large: not on the stack */
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    consensus_status(&a->cons, &st);
    render_raft_core(f, a, &st);
    render_members(f, a, &st);
    render_state(f, a);
    render_peers(f, a);
    render_requests(f);
    render_reconcile(f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
