/* Site reconciler: desired state from the state machine -> edge switch
 * driver -> apply reports into the log.
 *
 * Happy path: after a commit (reconcile_kick) or when the timer is due,
 * build this site's desired switch state from the applied state machine
 * (only committed entries: no device write ever comes from an uncommitted
 * one), hand it to the driver on a libuv worker (it reads the device back
 * and changes only the difference), and on success report every cluster
 * generation it carried (or removed) at this site with an apply-report
 * command; on failure report the error once per generation and retry
 * with exponential backoff. A cluster becomes ready when every site it
 * spans reported its current generation; a released VLAN becomes free at
 * this site once this site reported its removal.
 *
 * Safety: until this agent has applied the commit index it saw at
 * start-up, passes only add and repair, never delete (a stale view must
 * not tear down live configuration). Each state carries the applied index
 * that produced it, and the driver refuses to let an older state overwrite
 * a newer one. Drift (configuration changed by hand) is repaired by the
 * timed pass in mode "repair", only logged in "report", ignored in "off".
 */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../drivers/drv.h"
#include "../proto/err.h"
#include "agent.h"
#include "log.h"
#include "metrics.h"
#include "watch.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define REPORTS_MAX 256

/* What one slot looked like when the state was built. */
struct reconcile_slot {
    char cluster[VC_NAME_MAX + 1];
    uint64_t gen;
    bool removing;
};

struct reconcile_job {
    struct reconcile *r;
    struct drv_switch_state want;
    struct drv_switch_vlan *vlans;
    const char **hosts; /* all host name pointers, into names */
    char *names;        /* cluster and host names */
    struct reconcile_slot *slots;
    uint32_t nslots;
    bool read_only;     /* drift "report": read back and compare */
    int rv;
    struct drv_result res;
    char err[DRV_ERRMSG_MAX];
    unsigned drift;     /* report mode: VIDs differing */
    bool timed;         /* no news: a drift check or repair only */
    uint64_t start_ns;  /* uv_hrtime() when queued, for /metrics */
};

static void job_free(struct reconcile_job *j)
{
    if (!j)
        return;
    free(j->vlans);
    free(j->hosts);
    free(j->names);
    free(j->slots);
    free(j);
}

int reconcile_init(struct reconcile *r, struct agent *a, char *err,
                   size_t len)
{
    memset(r, 0, sizeof *r);
    r->a = a;
    r->work.data = r;
    r->dirty = true;
    if (watch_init(&r->watch, a) != 0) {
        snprintf(err, len, "out of memory");
        return VC_ENOMEM;
    }
    if (!a->cfg.switch_cfg[0])
        return 0;
    int rv = drv_open(a->cfg.switch_cfg, &r->sw, err, len);
    if (rv != 0)
        return rv;
    log_info("edge switch: %s (drift mode %s)", drv_label(r->sw),
             a->cfg.drift == DRIFT_REPAIR   ? "repair"
             : a->cfg.drift == DRIFT_REPORT ? "report"
                                            : "off");
    return 0;
}

void reconcile_kick(struct reconcile *r)
{
    r->dirty = true;
    watch_kick(r->watch);
}

/* --- desired state ------------------------------------------------------ */

static bool attached_here(const struct fsm *f, const struct fsm_cluster *c,
                          const char *host)
{
    for (uint32_t i = 0; i < c->natt; i++)
        if (!strcmp(c->att[i].host, host))
            return true;
    (void)f;
    return false;
}

/* Builds the switch state of site s into j. Returns 0 or VC_ENOMEM. */
static int build(struct reconcile_job *j, const struct fsm *f, unsigned s)
{
    const struct fsm_site *site = &f->sites[s];
    uint32_t nv = 0, nslots = 0, nh = 0;
    size_t names = 0;
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        const struct fsm_slot *sl;
        if (!c->live || !(sl = fsm_cluster_slot(c, s)))
            continue;
        nslots++;
        names += strlen(c->name) + 1;
        if (!sl->removing)
            nv++;
    }
    for (uint32_t i = 0; i < f->nhosts; i++)
        if (f->hosts[i].live && f->hosts[i].site == s)
            nh++;
    j->vlans = calloc(nv ? nv : 1, sizeof *j->vlans);
    j->slots = calloc(nslots ? nslots : 1, sizeof *j->slots);
    j->hosts = calloc((size_t)nv * nh + 1, sizeof *j->hosts);
    j->names = malloc(names + (size_t)nh * (VC_NAME_MAX + 1) + 1);
    if (!j->vlans || !j->slots || !j->hosts || !j->names)
        return VC_ENOMEM;
    /* Host names first, then cluster names. */
    char *p = j->names;
    const char **hostname = calloc(nh ? nh : 1, sizeof *hostname);
    const struct fsm_host **hostptr = calloc(nh ? nh : 1, sizeof *hostptr);
    if (!hostname || !hostptr) {
        free(hostname);
        free(hostptr);
        return VC_ENOMEM;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < f->nhosts; i++)
        if (f->hosts[i].live && f->hosts[i].site == s) {
            hostptr[k] = &f->hosts[i];
            hostname[k++] = strcpy(p, f->hosts[i].name);
            p += strlen(p) + 1;
        }
    const char **hp = j->hosts;
    uint32_t v = 0;
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        const struct fsm_slot *sl;
        if (!c->live || !(sl = fsm_cluster_slot(c, s)))
            continue;
        struct reconcile_slot *js = &j->slots[j->nslots++];
        snprintf(js->cluster, sizeof js->cluster, "%s", c->name);
        js->gen = sl->gen;
        js->removing = sl->removing;
        if (sl->removing)
            continue;
        struct drv_switch_vlan *dv = &j->vlans[v++];
        uint32_t active = 0;
        for (uint32_t m = 0; m < c->nslots; m++)
            active += !c->slots[m].removing;
        dv->vid = c->vlan;
        dv->cluster = strcpy(p, c->name);
        p += strlen(p) + 1;
        dv->hosts = hp;
        for (uint32_t h = 0; h < nh; h++)
            if (hostptr[h]->service || attached_here(f, c, hostname[h]))
                hp[dv->nhosts++] = hostname[h];
        hp += dv->nhosts;
        if (dv->nhosts == 0)
            dv->hosts = NULL;
        dv->uplink = active > 1;
    }
    free(hostname);
    free(hostptr);
    j->want.uplink = site->uplink;
    j->want.svlan = site->svlan;
    for (int w = 0; w < VLANSET_WORDS; w++)
        j->want.managed.w[w] = site->pool.w[w] | site->used.w[w];
    j->want.vlans = v ? j->vlans : NULL;
    j->want.nvlans = v;
    return 0;
}

/* --- the pass on a worker ----------------------------------------------- */

static void work_cb(uv_work_t *w)
{
    struct reconcile *r = w->data;
    struct reconcile_job *j = r->job;
    if (j->read_only) {
        struct drv_switch_state *have = NULL;
        j->rv = drv_switch_read(r->sw, &j->want.managed, &have, j->err,
                                sizeof j->err);
        if (j->rv == 0) {
            struct vlanset want, got;
            vlanset_clear(&want);
            vlanset_clear(&got);
            for (uint32_t i = 0; i < j->want.nvlans; i++)
                vlanset_add(&want, j->want.vlans[i].vid);
            for (uint32_t i = 0; i < have->nvlans; i++)
                vlanset_add(&got, have->vlans[i].vid);
            for (int k = 0; k < VLANSET_WORDS; k++)
                j->drift += (unsigned)__builtin_popcountll(want.w[k] ^
                                                           got.w[k]);
        }
        drv_switch_state_free(have);
        return;
    }
    j->rv = drv_switch_apply(r->sw, &j->want, &j->res, j->err, sizeof j->err);
}

static void report_done(struct request *req, int code,
                        const struct proto_result *res)
{
    struct reconcile *r = req->done_data;
    r->reports--;
    if (code != 0 && code != VC_ESTATE && code != VC_ENOTFOUND)
        log_debug("apply report: %s", res ? res->msg : vc_strerror(code));
}

static void report(struct reconcile *r, const char *cluster, uint64_t gen,
                   bool ok, const char *text)
{
    struct proto_cmd cmd;
    proto_cmd_init(&cmd, PROTO_CMD_APPLY_REPORT);
    cmd.name = mp_cstr(cluster);
    cmd.site = mp_cstr(r->a->cfg.site);
    cmd.gen = gen;
    cmd.ok = ok;
    cmd.text = mp_cstr(text);
    r->reports++;
    request_internal(r->a, &cmd, report_done, r);
}

static int cmp_slot(const void *x, const void *y)
{
    return strcmp(((const struct reconcile_slot *)x)->cluster,
                  ((const struct reconcile_slot *)y)->cluster);
}

/* The slot of cluster as the last successful switch pass left it. */
static const struct reconcile_slot *switch_done(const struct reconcile *r,
                                                const char *cluster)
{
    struct reconcile_slot key;
    if (!r->ndone)
        return NULL;
    snprintf(key.cluster, sizeof key.cluster, "%s", cluster);
    return bsearch(&key, r->done, r->ndone, sizeof key, cmp_slot);
}

/* Reports, for every slot at this site with news, what the switch and
 * the hosts achieved: applied (or removed) once both did, the error of
 * a host that failed. Runs only while no report is in flight, so a slot
 * is never reported twice for the same outcome. */
static void settle(struct reconcile *r)
{
    const struct fsm *f = &r->a->fsm;
    const struct fsm_site *site = fsm_site_find(f, r->a->cfg.site);
    char text[VC_MSG_MAX + 1];
    if (!site || !site->managed)
        return;
    unsigned s = (unsigned)(site - f->sites);
    for (uint32_t i = 0; i < f->nclusters && r->reports < REPORTS_MAX; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        const struct fsm_slot *sl;
        const struct reconcile_slot *js;
        if (!c->live || !(sl = fsm_cluster_slot(c, s)) ||
            !(sl->removing || sl->applied < sl->gen || sl->failed))
            continue;
        if (r->sw && (!(js = switch_done(r, c->name)) || js->gen != sl->gen ||
                      js->removing != sl->removing))
            continue; /* the switch has not carried this generation */
        switch (watch_verdict(r->watch, c, sl, s, text, sizeof text)) {
        case WATCH_DONE:
            report(r, c->name, sl->gen, true, "");
            break;
        case WATCH_FAIL:
            if (!(sl->failed && sl->err && !strcmp(sl->err, text)))
                report(r, c->name, sl->gen, false, text);
            break;
        }
    }
}

/* A pass ended. Success: its slots become the switch's known state and
 * the slots are settled; failure: reported once per generation and
 * error, for slots whose generation is still the one it carried. */
static void send_reports(struct reconcile *r, struct reconcile_job *j)
{
    const struct fsm *f = &r->a->fsm;
    const struct fsm_site *site = fsm_site_find(f, r->a->cfg.site);
    char text[VC_MSG_MAX + 1];
    if (j->rv == 0) {
        free(r->done);
        r->done = j->slots;
        r->ndone = j->nslots;
        j->slots = NULL;
        qsort(r->done, r->ndone, sizeof *r->done, cmp_slot);
        r->settle_due = true;
        return;
    }
    if (!site || !site->managed)
        return;
    unsigned s = (unsigned)(site - f->sites);
    snprintf(text, sizeof text, "switch: %.240s", j->err);
    for (uint32_t i = 0; i < j->nslots && r->reports < REPORTS_MAX; i++) {
        const struct reconcile_slot *js = &j->slots[i];
        const struct fsm_cluster *c = fsm_cluster_find(f, js->cluster);
        const struct fsm_slot *sl = c ? fsm_cluster_slot(c, s) : NULL;
        if (!sl || sl->gen != js->gen || sl->removing != js->removing)
            continue;
        if (!(sl->failed && sl->err && !strcmp(sl->err, text)))
            report(r, js->cluster, js->gen, false, text);
    }
}

static void after_cb(uv_work_t *w, int status)
{
    struct reconcile *r = w->data;
    struct reconcile_job *j = r->job;
    struct agent *a = r->a;
    uint64_t now = agent_now_ms(a);
    r->job = NULL;
    if (r->closing || status == UV_ECANCELED) {
        job_free(j);
        if (r->closing) {
            drv_close(r->sw);
            r->sw = NULL;
        }
        return;
    }
    metrics_reconcile_done(uv_hrtime() - j->start_ns, j->rv == 0);
    if (j->rv != 0)
        metrics_driver_error(drv_class_of(r->sw)->name);
    if (j->read_only) {
        if (j->rv == 0)
            metrics_drift_reported(j->drift);
        if (j->rv == 0 && j->drift)
            log_warn("drift: %u VLAN(s) on the switch differ from the "
                     "replicated state (drift mode report: not repaired)",
                     j->drift);
        r->next_ms = now + a->cfg.reconcile_interval_ms;
        job_free(j);
        return;
    }
    if (j->rv == 0) {
        if (j->timed && a->cfg.drift == DRIFT_REPAIR)
            metrics_drift_repaired(j->res.changes);
        if (j->res.changes)
            log_info("switch: %u change(s) applied for %u cluster VLAN(s)",
                     j->res.changes, j->want.nvlans);
        r->last_error[0] = '\0';
        r->backoff_ms = 0;
        r->next_ms = now + a->cfg.reconcile_interval_ms;
    } else {
        if (strcmp(r->last_error, j->err) != 0)
            log_error("switch apply failed: %s", j->err);
        snprintf(r->last_error, sizeof r->last_error, "%.500s", j->err);
        r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (r->backoff_ms > BACKOFF_MAX_MS)
            r->backoff_ms = BACKOFF_MAX_MS;
        r->next_ms = now + r->backoff_ms;
    }
    send_reports(r, j);
    job_free(j);
}

/* --- scheduling ---------------------------------------------------------- */

void reconcile_tick(struct reconcile *r, uint64_t now)
{
    struct agent *a = r->a;
    const struct fsm_site *site;
    if (r->closing)
        return;
    if (watch_tick(r->watch))
        r->settle_due = true;
    if (!r->sw && r->dirty) {
        /* No switch: the hosts alone decide. */
        r->dirty = false;
        r->settle_due = true;
    }
    if (r->settle_due && r->reports == 0) {
        r->settle_due = false;
        settle(r);
    }
    if (!r->sw || r->job)
        return;
    bool timed = now >= r->next_ms;
    if (!r->dirty && !timed)
        return;
    if (r->backoff_ms && !timed)
        return; /* a failed apply waits for its backoff */
    if (!(site = fsm_site_find(&a->fsm, a->cfg.site)))
        return; /* not registered yet */
    struct reconcile_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->r = r;
    if (build(j, &a->fsm, (unsigned)(site - a->fsm.sites)) != 0) {
        job_free(j);
        return;
    }
    j->want.complete = agent_caught_up(a);
    struct consensus_status st;
    consensus_status(&a->cons, &st);
    j->want.index = st.applied;
    /* A timed pass without news only repairs drift, if asked to. */
    j->read_only = !r->dirty && !r->backoff_ms && a->cfg.drift == DRIFT_REPORT;
    if (!r->dirty && !r->backoff_ms && a->cfg.drift == DRIFT_OFF) {
        r->next_ms = now + a->cfg.reconcile_interval_ms;
        job_free(j);
        return;
    }
    j->timed = !r->dirty && !r->backoff_ms;
    j->start_ns = uv_hrtime();
    r->dirty = false;
    r->job = j;
    if (uv_queue_work(a->loop, &r->work, work_cb, after_cb) != 0) {
        r->job = NULL;
        r->dirty = true;
        job_free(j);
    }
}

void reconcile_close(struct reconcile *r)
{
    r->closing = true;
    watch_free(r->watch);
    r->watch = NULL;
    free(r->done);
    r->done = NULL;
    r->ndone = 0;
    if (!r->job) {
        drv_close(r->sw);
        r->sw = NULL;
    }
}
