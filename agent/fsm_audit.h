/* The audit trail: a bounded ring of the last FSM_AUDIT_MAX commands the
 * state machine applied, with who asked (the command's origin: "role:name"
 * of a signed request, else the proposing site), when (the command's
 * time_ms, the leader's clock), the request id and the result.
 *
 * Part of the replicated state: fsm_apply() records every command that
 * changed something (result 0; not a refusal, which leaves the state
 * untouched; not the repeats that dedupe answers; not apply reports,
 * which are per-site bookkeeping shown by `cluster show`), the ring is in the
 * canonical snapshot, so every site holds the same history at the same
 * applied index. Pure and deterministic like the rest of agent/fsm*.c:
 * the record depends on the command and its result only. Served by
 * client op PROTO_OP_AUDIT (agent/api.c, view_audit()).
 */
#ifndef VC_AGENT_FSM_AUDIT_H
#define VC_AGENT_FSM_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "../proto/cmd.h"

#define FSM_AUDIT_MAX 100000 /* entries kept; the oldest go first */
#define FSM_AUDIT_MSG_MAX 160 /* bytes of the result message kept */
#define FSM_AUDIT_SITES_MAX 255 /* bytes of the site list kept */

enum fsm_audit_text {
    AUDIT_REQ_ID = 0,
    AUDIT_ORIGIN,
    AUDIT_NAME,  /* cluster, site or host the command is about */
    AUDIT_SITES, /* cluster create: "a,b"; else the command's site */
    AUDIT_MSG,   /* the result message, cut to FSM_AUDIT_MSG_MAX */
    AUDIT_NTEXT
};

struct fsm_audit_entry {
    uint64_t seq;     /* 1, 2, ... over the whole history */
    uint64_t time_ms; /* the command's time */
    int32_t code;     /* the result: 0 or VC_E* */
    uint8_t type;     /* enum proto_cmd_type */
    char *text;       /* malloc'd: the AUDIT_NTEXT strings, each ending
                         in a NUL, in enum order */
};

struct fsm_audit {
    struct fsm_audit_entry *ring; /* cap slots; NULL until the first */
    uint32_t cap;                 /* grows by doubling to FSM_AUDIT_MAX */
    uint32_t head;                /* slot of the oldest entry */
    uint32_t len;                 /* entries held */
    uint64_t next_seq;            /* seq of the next record (from 1) */
};

/* Frees every entry; the struct is empty (zeroed) afterwards. */
void fsm_audit_close(struct fsm_audit *a);

/* Whether commands of type are recorded. */
bool fsm_audit_wants(int type);

/* Records cmd (borrowed) and its result r if it is a change (r->code 0,
 * a type fsm_audit_wants()). Returns 0 or VC_ENOMEM (the
 * trail is then unchanged, and the caller must treat the apply as failed
 * like any other out-of-memory in the state machine). */
int fsm_audit_record(struct fsm_audit *a, const struct proto_cmd *cmd,
                     const struct proto_result *r);

/* The i-th oldest entry held (i < a->len). */
const struct fsm_audit_entry *fsm_audit_at(const struct fsm_audit *a,
                                           uint32_t i);

/* A text field of e (never NULL). */
const char *fsm_audit_text(const struct fsm_audit_entry *e,
                           enum fsm_audit_text which);

/* Snapshot section: [next_seq, [[seq, time_ms, type, code, req_id,
 * origin, name, sites, msg], ...]] oldest first. */
void fsm_audit_pack(struct mp_buf *b, const struct fsm_audit *a);

/* Replaces a's content with the section o (as packed above). Bounded and
 * total: a malformed section returns VC_EMALFORMED with errmsg, a failed
 * allocation VC_ENOMEM; a is then empty. */
int fsm_audit_restore(struct fsm_audit *a, const msgpack_object *o,
                      char *errmsg, size_t errlen);

#endif
