/* Raft membership: joins, role management and removals (leader side).
 *
 * Join (happy path): a new site's agent sends JOIN (its site record and
 * raft address) to any agent; it reaches the leader like a write. The
 * leader commits the site record first (so a site that is a member is
 * always usable), then adds the server as a spare, makes it a standby
 * (replicating, not voting) and answers. The role manager then promotes
 * it if the cluster has fewer voters than its target.
 *
 * Roles (like dqlite's role management): one change at a time, from the
 * tick, on the leader only: promote a healthy standby while voters are
 * below target or a voter has been unreachable longer than demote-after;
 * then demote the unreachable voter to standby. A site that returns
 * catches up and stays a standby until needed.
 *
 * Removal: every replica notes committed site removals; whichever agent
 * leads removes those servers from the raft configuration, so a leader
 * change in between cannot strand a removed site in the configuration.
 *
 * Failure modes: a name taken by a member at another raft address, or a
 * raft address used by another member, is refused with a clear error;
 * raft refusing a change (another in flight, catch-up failed) is retried
 * from the tick until the join request's deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "agent.h"
#include "log.h"

enum join_step { JOIN_RECORD, JOIN_RECORD_WAIT, JOIN_ADD, JOIN_WAIT };

struct join {
    struct agent *a;
    struct request *r; /* NULL once the joiner's request is gone */
    uint64_t id;
    int step;
    bool inflight; /* a callback still points here */
    bool dead;     /* unlinked: free when the callback comes */
    struct join *next;
};

/* Pending joins and removals live in the agent; see agent.h. */

static bool site_healthy(struct agent *a, const char *site)
{
    return !strcmp(site, a->cfg.site) || peer_reachable(a, site);
}

static const char *site_of(struct agent *a, uint64_t id)
{
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (a->fsm.sites[i].live &&
            consensus_site_id(a->fsm.sites[i].name) == id)
            return a->fsm.sites[i].name;
    return NULL;
}

/* --- joins ------------------------------------------------------------- */

static void join_free(struct agent *a, struct join *j)
{
    struct join **pp = &a->joins;
    while (*pp && *pp != j)
        pp = &(*pp)->next;
    if (*pp)
        *pp = j->next;
    if (j->inflight)
        j->dead = true;
    else
        free(j);
}

static void join_finish(struct agent *a, struct join *j, int code,
                        const char *msg)
{
    struct request *r = j->r;
    j->r = NULL;
    join_free(a, j);
    if (r) {
        r->join = NULL;
        request_finish(r, code, msg, NULL);
    }
}

void members_request_gone(struct request *r)
{
    if (r->join)
        ((struct join *)r->join)->r = NULL;
}

/* Refuses a join whose name or raft address belongs to another member. */
static int join_conflict(struct agent *a, struct join *j, char *msg,
                         size_t len)
{
    const struct raft_configuration *conf = &a->cons.raft.configuration;
    char peer[VC_ADDR_MAX + 1];
    mp_str_copy(j->r->raft_addr, peer, sizeof peer);
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        if (s->id == j->id && strcmp(s->address, peer) != 0) {
            snprintf(msg, len, "site %.*s is already a member at %s; remove "
                     "it first (virtcloud site remove) or use another name",
                     (int)j->r->cmd.name.n, j->r->cmd.name.p, s->address);
            return VC_ECONFLICT;
        }
        if (s->id != j->id && strcmp(s->address, peer) == 0) {
            const char *other = site_of(a, s->id);
            snprintf(msg, len, "raft address %s is already used by site %s",
                     peer, other ? other : "(unregistered)");
            return VC_ECONFLICT;
        }
    }
    return 0;
}

static void record_done(struct request *ir, int code,
                        const struct proto_result *res)
{
    struct join *j = ir->done_data;
    struct agent *a = j->a;
    j->inflight = false;
    if (j->dead) {
        free(j);
        return;
    }
    if (!j->r) { /* the joiner's request expired meanwhile */
        join_free(a, j);
        return;
    }
    if (code != 0 && code != VC_EEXISTS) {
        join_finish(a, j, code, res ? res->msg : vc_strerror(code));
        return;
    }
    j->step = JOIN_ADD;
}

/* Commits the joiner's site record: add, or update if it exists. */
static void join_record(struct agent *a, struct join *j)
{
    struct proto_request req;
    char name[VC_NAME_MAX + 1];
    memset(&req, 0, offsetof(struct proto_request, cmd));
    req.op = PROTO_OP_SUBMIT;
    req.cmd = j->r->cmd;
    req.cmd.req_id = mp_cstr("");
    req.name = req.peer = mp_cstr("");
    mp_str_copy(req.cmd.name, name, sizeof name);
    if (fsm_site_find(&a->fsm, name))
        req.cmd.type = PROTO_CMD_SITE_UPDATE;
    j->step = JOIN_RECORD_WAIT;
    j->inflight = true;
    request_start(a, NULL, &req, record_done, j);
}

static void change_done(void *data, int status)
{
    struct join *j = data;
    j->inflight = false;
    if (j->dead) {
        free(j);
        return;
    }
    if (status != 0)
        log_warn("join: membership change failed: %s; retrying",
                 vc_strerror(status));
    j->step = JOIN_ADD; /* re-evaluate the role from the tick */
}

static void join_step(struct agent *a, struct join *j)
{
    char msg[256];
    const char *addr;
    int rv, role;
    if (!j->r) {
        join_free(a, j);
        return;
    }
    switch (j->step) {
    case JOIN_RECORD:
        if ((rv = join_conflict(a, j, msg, sizeof msg)) != 0) {
            join_finish(a, j, rv, msg);
            return;
        }
        join_record(a, j);
        return;
    case JOIN_ADD:
        if (consensus_changing(&a->cons))
            return;
        role = consensus_member_role(&a->cons, j->id, &addr);
        if (role == RAFT_STANDBY || role == RAFT_VOTER) {
            snprintf(msg, sizeof msg, "site %.*s joined as %s",
                     (int)j->r->cmd.name.n, j->r->cmd.name.p,
                     role == RAFT_VOTER ? "voter" : "standby");
            join_finish(a, j, 0, msg);
            return;
        }
        if (role < 0) {
            char peer[VC_ADDR_MAX + 1];
            mp_str_copy(j->r->raft_addr, peer, sizeof peer);
            rv = consensus_add(&a->cons, j->id, peer, change_done, j);
        } else {
            rv = consensus_assign(&a->cons, j->id, RAFT_STANDBY, change_done,
                                  j);
        }
        if (rv == 0) {
            j->step = JOIN_WAIT;
            j->inflight = true;
        }
        return;
    default:
        return; /* waiting for a callback */
    }
}

void members_join(struct agent *a, struct request *r)
{
    char name[VC_NAME_MAX + 1];
    struct join *j = calloc(1, sizeof *j);
    if (!j) {
        request_finish(r, VC_ENOMEM, "agent out of memory", NULL);
        return;
    }
    mp_str_copy(r->cmd.name, name, sizeof name);
    j->a = a;
    j->r = r;
    j->id = consensus_site_id(name);
    j->step = JOIN_RECORD;
    j->next = a->joins;
    a->joins = j;
    r->join = j;
    r->state = RS_JOINING;
    log_info("join request from site %s (raft %.*s)", name,
             (int)r->raft_addr.n, r->raft_addr.p);
    join_step(a, j);
}

/* --- removals ---------------------------------------------------------- */

void members_on_apply(struct agent *a, const struct proto_cmd *cmd,
                      const struct proto_result *res)
{
    if (cmd->type != PROTO_CMD_SITE_REMOVE ||
        (res->code != 0 && res->code != VC_ENOTFOUND))
        return;
    char name[VC_NAME_MAX + 1];
    mp_str_copy(cmd->name, name, sizeof name);
    uint64_t id = consensus_site_id(name);
    for (unsigned i = 0; i < a->nremovals; i++)
        if (a->removals[i].id == id)
            return;
    if (a->nremovals < sizeof a->removals / sizeof a->removals[0]) {
        struct consensus_status st;
        consensus_status(&a->cons, &st);
        a->removals[a->nremovals++] = (struct removal){
            id, st.commit, agent_now_ms(a), 0};
    }
}

static void removal_done(void *data, int status)
{
    (void)data;
    if (status != 0)
        log_warn("removing a site from the raft configuration: %s; retrying",
                 vc_strerror(status));
}

/* The removed site should learn of its removal (and log it) before it
 * leaves the configuration, after which nobody sends it entries: wait
 * until it stored the entry and a few heartbeats passed, or, if it is
 * down, at most REMOVAL_WAIT_MS. */
#define REMOVAL_WAIT_MS 10000

static bool removal_ready(struct agent *a, struct removal *rm, uint64_t now)
{
    uint64_t match = 0;
    if (now - rm->since_ms >= REMOVAL_WAIT_MS)
        return true;
    if (consensus_match_index(&a->cons, rm->id, &match) != 0)
        return true;
    if (match < rm->commit)
        return false;
    if (!rm->matched_ms)
        rm->matched_ms = now;
    return now - rm->matched_ms >= 4ull * a->cfg.heartbeat_timeout_ms;
}

static bool process_removals(struct agent *a, uint64_t now)
{
    while (a->nremovals) {
        struct removal *rm = &a->removals[0];
        uint64_t id = rm->id;
        /* A site that joined again since is no longer to be removed. */
        if (consensus_member_role(&a->cons, id, NULL) < 0 || site_of(a, id)) {
            a->removals[0] = a->removals[--a->nremovals];
            continue;
        }
        if (!removal_ready(a, rm, now))
            return false;
        if (consensus_remove(&a->cons, id, removal_done, a) == 0) {
            log_info("removing server %llx from the raft configuration",
                     (unsigned long long)id);
            return true;
        }
        return false;
    }
    return false;
}

/* --- role management ---------------------------------------------------- */

static uint64_t silent_ms(struct agent *a, const char *site, uint64_t now)
{
    uint64_t since = peer_last_ok(a, site);
    if (since < a->leader_since_ms)
        since = a->leader_since_ms; /* a new leader gives everyone time */
    return now > since ? now - since : 0;
}

static void role_done(void *data, int status)
{
    (void)data;
    if (status != 0)
        log_warn("role change failed: %s", vc_strerror(status));
}

static bool manage_roles(struct agent *a, uint64_t now)
{
    const struct raft_configuration *conf = &a->cons.raft.configuration;
    unsigned voters = 0;
    uint64_t standby = 0, silent_voter = 0, any_voter = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        const char *site = site_of(a, s->id);
        bool healthy = site && site_healthy(a, site);
        if (s->role == RAFT_VOTER) {
            voters++;
            if (s->id != a->cons.raft.id) {
                any_voter = s->id;
                if (!site || silent_ms(a, site, now) > a->cfg.demote_after_ms)
                    silent_voter = s->id;
            }
        } else if (s->role == RAFT_STANDBY && healthy && !standby) {
            standby = s->id;
        }
    }
    uint64_t target = a->cfg.voters;
    if (standby && (voters < target || (silent_voter && voters <= target))) {
        log_info("promoting %s to voter (%u voters, target %llu%s)",
                 site_of(a, standby), voters, (unsigned long long)target,
                 silent_voter ? ", one unreachable" : "");
        return consensus_assign(&a->cons, standby, RAFT_VOTER, role_done,
                                a) == 0;
    }
    if (voters > target && (silent_voter || any_voter)) {
        uint64_t id = silent_voter ? silent_voter : any_voter;
        const char *site = site_of(a, id);
        log_info("demoting %s to standby (%u voters, target %llu)",
                 site ? site : "?", voters, (unsigned long long)target);
        return consensus_assign(&a->cons, id, RAFT_STANDBY, role_done, a) == 0;
    }
    return false;
}

void members_tick(struct agent *a, uint64_t now)
{
    if (!consensus_is_leader(&a->cons)) {
        /* Joins reach only the leader; drop any left from a lost term:
         * the joiner retries. */
        while (a->joins)
            join_finish(a, a->joins, VC_ENOTLEADER,
                        "leadership changed during the join; retrying");
        return;
    }
    for (struct join *j = a->joins, *next; j; j = next) {
        next = j->next;
        join_step(a, j);
    }
    if (consensus_changing(&a->cons) || a->joins)
        return;
    if (now - a->last_roles_ms < 500)
        return;
    a->last_roles_ms = now;
    if (!process_removals(a, now))
        manage_roles(a, now);
}
