/* Keys and roles in the replicated state (part of the state machine: pure,
 * deterministic, no clock, no I/O).
 *
 * - Each site record may hold its Ed25519 public key, and during a key
 *   rotation its previous key too (struct fsm_site key/old_key). The peer
 *   transport accepts exactly these keys (plus bootstrap pins of sites not
 *   yet recorded), so a committed site-remove or site-key revokes at once.
 * - Keys that left the state (removed sites, rotated-out keys) are kept in
 *   a bounded FIFO of revoked keys: a bootstrap pin can never bring one
 *   back, and a site can never be (re)added with one.
 * - Role bindings: client public key -> (name, role).
 * - Invites: one-time join tokens, stored as BLAKE2b-256 hashes with an
 *   expiry; a site-add carrying the matching hash consumes its invite in
 *   the same command (atomically, once).
 *
 * Commands (proto/cmd.h): site-key (20), role-add (21), role-remove (22),
 * invite-add (23), invite-remove (24); hooks into site-add, site-update and
 * site-remove (agent/fsm.c).
 */
#ifndef VC_AGENT_FSM_AUTH_H
#define VC_AGENT_FSM_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "../proto/cmd.h"
#include "../proto/mp.h"

#define FSM_ROLES_MAX 4096
#define FSM_INVITES_MAX 64
#define FSM_REVOKED_MAX 256

struct fsm;
struct fsm_site;

struct fsm_role {
    uint8_t pk[PROTO_KEY_BYTES];
    char name[VC_NAME_MAX + 1];
    uint8_t role; /* enum proto_role */
};

struct fsm_invite {
    char site[VC_NAME_MAX + 1];
    uint8_t hash[PROTO_KEY_BYTES];
    uint64_t expires_ms; /* proposer's clock of invite-add + ttl */
};

struct fsm_auth {
    struct fsm_role *roles; /* malloc'd, nroles used, unordered */
    uint32_t nroles, roles_cap;
    struct fsm_invite invites[FSM_INVITES_MAX];
    uint32_t ninvites;
    uint8_t revoked[FSM_REVOKED_MAX][PROTO_KEY_BYTES]; /* ring, oldest at
                                                          revoked_head */
    uint32_t nrevoked, revoked_head;
};

/* Frees the role table; the struct may be zeroed again afterwards. */
void fsm_auth_close(struct fsm_auth *a);

/* Command handlers (same contract as fsm.c's: business refusals go in r;
 * return 0 or VC_ENOMEM). */
int fsm_auth_site_key(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r);
int fsm_auth_role_add(struct fsm *f, const struct proto_cmd *c,
                      struct proto_result *r);
int fsm_auth_role_remove(struct fsm *f, const struct proto_cmd *c,
                         struct proto_result *r);
int fsm_auth_invite_add(struct fsm *f, const struct proto_cmd *c,
                        struct proto_result *r);
int fsm_auth_invite_remove(struct fsm *f, const struct proto_cmd *c,
                           struct proto_result *r);

/* site-add: checks the key (unused, not revoked) and the invite if the
 * command carries a token hash. Returns true if the command is refused
 * (r filled); nothing changed either way. */
bool fsm_auth_site_add_refused(const struct fsm *f, const struct proto_cmd *c,
                               struct proto_result *r);
/* site-add accepted: records the key in s and consumes the invite. */
void fsm_auth_site_added(struct fsm *f, struct fsm_site *s,
                         const struct proto_cmd *c);
/* site-update: a key may be set on a site without one, or repeated;
 * changing it takes site-key. true if refused (r filled). */
bool fsm_auth_site_update_refused(const struct fsm *f,
                                  const struct fsm_site *s,
                                  const struct proto_cmd *c,
                                  struct proto_result *r);
void fsm_auth_site_updated(struct fsm_site *s, const struct proto_cmd *c);
/* site-remove: its keys become revoked. */
void fsm_auth_site_removed(struct fsm *f, const struct fsm_site *s);

/* Lookups (pointers valid until the next apply). */
const struct fsm_site *fsm_auth_site_by_key(const struct fsm *f,
                                            const uint8_t *pk);
bool fsm_auth_revoked(const struct fsm *f, const uint8_t *pk);
/* Is there an invite for site with this token hash, unexpired at now_ms?
 * (A pre-check where a join arrives; the commit decides.) */
bool fsm_auth_invite_valid(const struct fsm *f, struct mp_str site,
                           const uint8_t *hash, uint64_t now_ms);
const struct fsm_role *fsm_auth_role_by_key(const struct fsm *f,
                                            const uint8_t *pk);
const struct fsm_role *fsm_auth_role_by_name(const struct fsm *f,
                                             const char *name);

/* Snapshot part: [roles, invites, revoked], canonical (roles and invites
 * by name, revoked oldest first). */
void fsm_auth_pack(msgpack_packer *pk, const struct fsm *f);
/* Restores into f (fresh, sites already restored). 0 or VC_EMALFORMED /
 * VC_ENOMEM with errmsg. */
int fsm_auth_restore(struct fsm *f, const msgpack_object *o, char *errmsg,
                     size_t errlen);

#endif
