/* The VirtCloud state machine: sites, hosts, clusters and their VLANs.
 *
 * Pure and deterministic: no clock, no I/O, no randomness. Time comes in
 * each command (time_ms, the proposer's clock). Every replica that applies
 * the same commands in the same order ends in the same state, and
 * fsm_snapshot() writes that state in one canonical byte form.
 *
 * Each command either applies completely or changes nothing; business
 * refusals are results (proto_result.code), not failures of fsm_apply().
 *
 * VLAN lifecycle at a site: a VLAN is "used" from the commit that assigns
 * it until that site reports its removal (managed sites) or at once for
 * unmanaged sites. So a VLAN still configured somewhere is never handed to
 * another cluster.
 */
#ifndef VC_AGENT_FSM_H
#define VC_AGENT_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/cmd.h"
#include "../proto/mp.h"
#include "../proto/vlanset.h"
#include "fsm_audit.h"
#include "fsm_auth.h"
#include "map.h"

#define FSM_HOSTS_MAX 65536
#define FSM_CLUSTERS_MAX 65536
#define FSM_ATTACH_MAX 1024   /* per cluster */
#define FSM_DEDUPE_MAX 100000 /* remembered request ids (FIFO) */
#define FSM_SNAPSHOT_VERSION 3 /* 2: audit trail; 3: site keys and auth;
                                  1 and 2 still read */
#define FSM_DD_GENS 3
/* Rounded up: the full generations must hold the whole window. */
#define FSM_DD_GEN_IDS \
    ((FSM_DEDUPE_MAX + FSM_DD_GENS - 2) / (FSM_DD_GENS - 1))
#define FSM_DD_FILTER_WORDS 8192 /* 64 KiB per generation */

enum fsm_cluster_state {
    FSM_PENDING = 0,   /* committed; some site has not applied it yet */
    FSM_READY = 1,     /* every site applied the current generation */
    FSM_RELEASING = 2, /* released; waiting for sites to report removal */
};

struct fsm_site {
    bool live;
    uint32_t id; /* assigned at add, never reused */
    char name[VC_NAME_MAX + 1];
    char addr[VC_ADDR_MAX + 1];
    struct vlanset pool;
    struct vlanset used; /* held by some cluster (incl. being removed) */
    struct vlanset free; /* pool & ~used, kept in step */
    uint8_t uplink;
    uint16_t svlan;
    bool managed; /* reports apply/removal; false: bookkeeping only */
    uint32_t nslots; /* cluster slots referencing this site */
    bool has_key, has_old_key; /* see fsm_auth.h */
    uint8_t key[PROTO_KEY_BYTES];     /* Ed25519 public key */
    uint8_t old_key[PROTO_KEY_BYTES]; /* previous key, during rotation */
};

struct fsm_host {
    bool live;
    char name[VC_NAME_MAX + 1];
    uint8_t site; /* index into fsm.sites */
    char trunk[VC_IFNAME_MAX + 1];
    bool service; /* joins every cluster VLAN at its site */
};

/* A cluster's presence at one site. */
struct fsm_slot {
    uint8_t site;
    bool removing; /* shrink/release committed, removal not reported */
    bool failed;   /* last report for gen was an error */
    uint64_t gen;     /* cluster generation of the last change here */
    uint64_t applied; /* highest generation reported applied */
    char *err;        /* last error text, malloc'd, NULL if none */
};

struct fsm_attach {
    char host[VC_NAME_MAX + 1];
    char iface[VC_IFNAME_MAX + 1];
};

/* The fields every command on a cluster reads come first, then the name
 * the index compares: for short names one or two cache lines serve a
 * lookup and a release (the owner is rarely read). */
struct fsm_cluster {
    bool live;
    uint8_t image;
    uint8_t state; /* enum fsm_cluster_state */
    bool keep;     /* keep on failure: never rolled back */
    uint16_t vlan;
    bool settled;  /* was ready once: its creation was applied */
    uint32_t nslots;
    uint32_t natt;
    struct fsm_slot *slots;
    struct fsm_attach *att;
    uint64_t created_ms;
    uint64_t deadline_ms;
    uint64_t gen;
    char name[VC_NAME_MAX + 1];
    char owner[VC_NAME_MAX + 1];
};

/* A remembered result. id and msg are NUL-terminated and live in the
 * window's byte ring (fsm.dd_bytes): valid until the next fsm_apply(),
 * fsm_dedupe_put() or fsm_restore(). */
struct fsm_dedupe {
    char *id;
    char *msg; /* NULL if empty */
    uint64_t gen;
    int code;
    uint32_t hash;   /* map_hash(id): forgetting the entry reads no key */
    uint32_t id_len;
    uint16_t msg_len;
    uint16_t vlan;
};

struct fsm {
    uint32_t next_site_id;
    uint32_t nsites; /* live sites */
    struct fsm_site sites[VC_SITES_MAX];
    struct map site_map;

    struct fsm_host *hosts;
    uint32_t nhosts, hosts_cap; /* slots in use (live or not) */
    struct map host_map;

    struct fsm_cluster *clusters;
    uint32_t nclusters, clusters_cap;
    uint32_t live_clusters;
    uint32_t *free_idx; /* deleted cluster entities, for reuse */
    uint32_t nfree;
    struct map cluster_map;

    struct fsm_dedupe *dd; /* ring of FSM_DEDUPE_MAX */
    uint32_t dd_head, dd_len;
    struct map dd_map;
    /* Bytes of the entries' id and msg, one record per entry in ring
     * order: the oldest record is the first to go, so nothing is freed
     * one by one. dd_tail is where the next record starts. */
    char *dd_bytes;
    uint32_t dd_bytes_cap, dd_tail;
    /* Most request ids are new, and probing dd_map (larger than the cache)
     * for them is a miss. A filter answers "surely not seen" from a few
     * words: FSM_DD_GENS blocked Bloom filters, each covering
     * FSM_DD_GEN_IDS consecutive puts; the oldest is cleared and reused,
     * and the others always cover the window. Derived data: not in
     * snapshots, rebuilt by restore. */
    uint64_t *dd_filter; /* FSM_DD_GENS * FSM_DD_FILTER_WORDS */
    uint32_t dd_gen, dd_gen_ids; /* generation filling; ids put in it */

    struct fsm_auth auth; /* keys, roles, invites (fsm_auth.c) */
    struct fsm_audit audit; /* the last changes (fsm_audit.c) */

    uint64_t applied; /* commands applied, for diagnostics */
};

/* Returns 0 or VC_ENOMEM. Pair with fsm_close(). */
int fsm_init(struct fsm *f);
void fsm_close(struct fsm *f);

/* Applies one validated command (as proto_batch_decode() yields). Fills r.
 * Returns 0, or VC_ENOMEM if memory ran out: the command may then be half
 * applied, so the replica can no longer follow the log and must stop (and
 * recover from its snapshot and log on restart). */
int fsm_apply(struct fsm *f, const struct proto_cmd *cmd,
              struct proto_result *r);

/* A hint, no effect on the state: starts loading the memory fsm_apply()
 * will need first for cmd (its de-duplication check, a likely cache miss).
 * Call it for the next command of a decoded batch before applying the
 * current one, so the loads overlap. cmd is only read during the call. */
void fsm_prefetch(const struct fsm *f, const struct proto_cmd *cmd);

/* Canonical full-state encoding (docs/protocol.md). 0 or VC_ENOMEM. */
int fsm_snapshot(const struct fsm *f, struct mp_buf *out);

/* Replaces the state with the snapshot in data. On any error the state is
 * unchanged. Returns 0, VC_EMALFORMED, VC_EVERSION or VC_ENOMEM; errmsg
 * says what was wrong. */
int fsm_restore(struct fsm *f, const void *data, size_t len, char *errmsg,
                size_t errlen);

/* Lookups: entity or NULL. Pointers are valid until the next apply. */
struct fsm_site *fsm_site_find(const struct fsm *f, const char *name);
struct fsm_host *fsm_host_find(const struct fsm *f, const char *name);
struct fsm_cluster *fsm_cluster_find(const struct fsm *f, const char *name);

/* Slot of cluster c at site index s, or NULL. */
struct fsm_slot *fsm_cluster_slot(const struct fsm_cluster *c, unsigned s);

/* Fills order with the live sites by id (the order they were added);
 * returns how many. The pointers are valid until the next apply. */
uint32_t fsm_sites_by_id(const struct fsm *f,
                         const struct fsm_site *order[VC_SITES_MAX]);

const char *fsm_state_name(int state);

/* Internal to fsm*.c: a zeroed cluster entity (*idx). 0 or VC_ENOMEM. */
int fsm_cluster_new(struct fsm *f, uint32_t *idx);

/* Internal to fsm*.c: remembers the result of request id (FIFO window). */
int fsm_dedupe_put(struct fsm *f, struct mp_str id,
                   const struct proto_result *r);

/* Internal to fsm*.c: sets r's code and its message from a printf format
 * (the fast formatter of fsm.c, same bytes as vsnprintf). Returns 0. */
int fsm_result(struct proto_result *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
