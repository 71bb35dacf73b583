/* The reconciler: turns this site's share of the replicated state into
 * device configuration and reports the outcome back into the log.
 */
#ifndef VC_AGENT_RECONCILE_H
#define VC_AGENT_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct agent;
struct drv;
struct reconcile_job;
struct reconcile_slot;
struct watch;

enum reconcile_drift { DRIFT_OFF = 0, DRIFT_REPORT = 1, DRIFT_REPAIR = 2 };

struct reconcile {
    struct agent *a;
    struct drv *sw;       /* the site's edge switch driver, NULL if none */
    uv_work_t work;
    struct reconcile_job *job; /* in flight on a worker, NULL if idle */
    bool dirty;           /* a commit changed what this site should carry */
    uint64_t next_ms;     /* next timed pass (drift repair, retries) */
    uint64_t backoff_ms;  /* after a failed apply */
    unsigned reports;     /* apply reports in flight */
    char last_error[512]; /* of the last failed apply, "" after success */
    bool closing;
    /* Host agents (watch.c) and aggregation: a slot is reported applied
     * once the switch carried its generation (done: the slots of the last
     * successful switch pass, by cluster name) and every host did. */
    struct watch *watch;
    struct reconcile_slot *done;
    uint32_t ndone;
    bool settle_due; /* settle once no report is in flight */
};

/* Opens the switch driver named by the configuration (if any). Returns 0
 * or a negative code with errmsg. */
int reconcile_init(struct reconcile *r, struct agent *a, char *errmsg,
                   size_t errlen);

/* A committed command may change this site's desired state. */
void reconcile_kick(struct reconcile *r);

/* Runs a pass when one is due and none is running. */
void reconcile_tick(struct reconcile *r, uint64_t now);

/* Stops scheduling; the driver is closed once no pass runs. */
void reconcile_close(struct reconcile *r);

#endif
