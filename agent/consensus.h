/* The only module that talks to raft (libraft 0.22.1 with its libuv I/O).
 *
 * Everything else sees this small API: propose a batch of commands, ask for
 * a barrier (linearizable reads), read leadership and membership, hand over
 * leadership, close. Applied commands are reported through the apply hook
 * with their results, on every replica, in log order.
 *
 * Failure modes: raft I/O errors and undecodable log entries are fatal for
 * this replica (fatal hook): the agent stops serving and exits, and raft's
 * on-disk state lets it restart cleanly.
 */
#ifndef VC_AGENT_CONSENSUS_H
#define VC_AGENT_CONSENSUS_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/cmd.h"
#include "../proto/mp.h"
#include "config.h"
#include "fsm.h"
#include "log.h"

struct consensus;

/* Called for every applied command, on every replica, in log order. */
typedef void (*consensus_apply_hook)(void *data, const struct proto_cmd *cmd,
                                     const struct proto_result *r);
/* The replica cannot go on (I/O error, bad entry, out of memory). */
typedef void (*consensus_fatal_hook)(void *data, const char *why);

/* Outcome of a proposal or barrier: 0 (committed and applied),
 * VC_ENOTLEADER (not appended), VC_EUNKNOWN (leadership lost: the entry
 * may still commit), VC_ESHUTDOWN, or another negative code. */
typedef void (*consensus_done_cb)(void *data, int status);

struct consensus_member {
    uint64_t id;
    char site[VC_NAME_MAX + 1]; /* "" if not known yet */
    char addr[VC_ADDR_MAX + 1];
    int role; /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
    bool leader;
    uint64_t match; /* leader only, else 0 */
    uint64_t lag;   /* leader only: entries behind the leader's log */
};

struct consensus_status {
    int state; /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER, ... */
    uint64_t term, commit, applied, leader_id, last_index;
    char leader_addr[VC_ADDR_MAX + 1];
    unsigned nmembers;
    struct consensus_member members[CONFIG_MEMBERS_MAX * 4];
};

struct consensus {
    uv_loop_t *loop;
    const struct config *cfg;
    struct fsm *fsm;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm raft_fsm;
    msgpack_zone zone;
    struct proto_cmd *cmds; /* decode scratch, VC_BATCH_MAX entries */
    consensus_apply_hook on_apply;
    consensus_fatal_hook on_fatal;
    void *hook_data;
    bool started, closing;
    void (*close_cb)(struct consensus *c);
    struct raft_transfer transfer;
    bool changing; /* a membership change of ours is in flight */
    void (*transfer_cb)(struct consensus *c);
    uint64_t disk_stepdown_ms; /* last hand-over for a failing log disk */
    uint64_t disk_checked_ms;
    bool disk_low; /* less than two segments of free space */
    uint64_t ready_term;       /* a barrier of this term has committed */
    uint64_t term_barrier_term;
    bool term_barrier_inflight;
    struct log_limit apply_warn;
    /* The transport's own connect/listen and raft's callbacks, wrapped to
     * turn Nagle off on raft's TCP streams (see nodelay_wrap()). */
    int (*tr_connect)(struct raft_uv_transport *, struct raft_uv_connect *,
                      raft_id, const char *, raft_uv_connect_cb);
    int (*tr_listen)(struct raft_uv_transport *, raft_uv_accept_cb);
    raft_uv_accept_cb raft_accept_cb;
    /* raft_uv's start(), wrapped to route raft's messages through the
     * secure transport (see io_wrap()). */
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb,
                    raft_io_recv_cb);
    raft_io_recv_cb raft_recv; /* raft's, behind guard_recv() */
    struct log_limit forged_warn;
    /* The snapshot buffer, kept between snapshots (see snapshot_cb()):
     * lent to raft from snapshot() to snapshot_finalize(). */
    struct mp_buf snap;
    bool snap_lent;
};

/* The term of an AppendEntries or InstallSnapshot in m if it equals the
 * term r (may be NULL) leads, else 0. Raft cannot produce one (one leader
 * per term), and libraft only asserts that it never arrives: with its
 * assertions compiled out (NDEBUG, as packaged) a leader takes it down the
 * follower path and corrupts its state (a double free of the entries'
 * batch under ASan). Such a message is forged or from a broken peer: the
 * secure transport closes its connection, the plain one drops it. */
raft_term consensus_second_leader(struct raft *r,
                                  const struct raft_message *m);

/* Raft server id of a site: a 64-bit hash of its name, so every agent
 * derives the same id without coordination. Never 0. */
uint64_t consensus_site_id(const char *site);

/* Opens the raft log in cfg->data_dir, bootstraps it from cfg->bootstrap
 * if it is empty, and starts raft. fsm is borrowed. Returns 0 or a negative
 * code with errmsg. */
int consensus_start(struct consensus *c, uv_loop_t *loop,
                    const struct config *cfg, struct fsm *fsm,
                    consensus_apply_hook on_apply,
                    consensus_fatal_hook on_fatal, void *data, char *errmsg,
                    size_t errlen);

/* Proposes an encoded batch (proto_batch_encode output). Takes ownership of
 * data on success and on failure. cb fires once, unless this returns
 * non-zero (then it never fires). */
int consensus_propose(struct consensus *c, void *data, size_t len,
                      consensus_done_cb cb, void *cb_data);

/* Periodic work, from the agent's timer: a new leader commits a barrier
 * in its term (consensus_leader_ready()); the free space of the data dir
 * is checked at most once a second, and a leader short of space (less
 * than two segments) hands leadership to another voter. */
void consensus_tick(struct consensus *c);

/* True if this server leads and its commit index covers every entry ever
 * committed (a barrier of its term has committed). */
bool consensus_leader_ready(struct consensus *c);

/* Appends a barrier: cb(0) once every entry before it is applied and this
 * server was still leader. */
int consensus_barrier(struct consensus *c, consensus_done_cb cb,
                      void *cb_data);

bool consensus_is_leader(struct consensus *c);

/* Leader's id (0 if unknown) and raft address. */
uint64_t consensus_leader(struct consensus *c, const char **addr);

void consensus_status(struct consensus *c, struct consensus_status *st);

/* Hands leadership to another voter; cb fires when done or given up. Returns
 * non-zero (and never calls cb) if there is no one to hand over to. */
int consensus_transfer(struct consensus *c,
                       void (*cb)(struct consensus *c));

/* Membership changes (leader only, one at a time: VC_EBUSY-like
 * VC_ECONFLICT while another is in flight). cb(data, status) fires once
 * unless the call returns non-zero. raft_add makes a spare; assign sets
 * RAFT_VOTER / RAFT_STANDBY / RAFT_SPARE. */
int consensus_add(struct consensus *c, uint64_t id, const char *addr,
                  consensus_done_cb cb, void *data);
int consensus_assign(struct consensus *c, uint64_t id, int role,
                     consensus_done_cb cb, void *data);
int consensus_remove(struct consensus *c, uint64_t id, consensus_done_cb cb,
                     void *data);
bool consensus_changing(struct consensus *c);

/* Role of server id in the current configuration, -1 if absent; *addr
 * (may be NULL) receives its raft address. */
int consensus_member_role(struct consensus *c, uint64_t id,
                          const char **addr);

/* Leader only: highest index server id has stored. 0 or VC_ENOTFOUND. */
int consensus_match_index(struct consensus *c, uint64_t id, uint64_t *idx);

/* Last log index on this server (leader: for lag = last - match). */
uint64_t consensus_last_index(struct consensus *c);

/* Closes raft and its I/O; cb fires when every handle is closed. */
void consensus_close(struct consensus *c, void (*cb)(struct consensus *c));

#endif
