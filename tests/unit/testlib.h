/* Shared pieces of the unit tests: a seeded PRNG, a state-machine fixture
 * whose commands take the real path (proto_batch_encode ->
 * proto_batch_decode -> fsm_apply), snapshot helpers, an invariant check
 * of a whole state machine and a generator of random valid commands.
 *
 * Include after <cmocka.h>: failures are reported with cmocka's asserts.
 */
#ifndef VC_TESTS_UNIT_TESTLIB_H
#define VC_TESTS_UNIT_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/fsm.h"
#include "proto/cmd.h"
#include "proto/err.h"
#include "proto/mp.h"

/* The seeded PRNG (splitmix64: same seed, same sequence on every
 * platform) and the random command generator are the simulator's
 * (tests/sim/gen.h). */
#include "tests/sim/gen.h"

/* --- buffers ----------------------------------------------------------- */

/* A malloc'd copy of exactly len bytes (at least one byte is allocated),
 * so ASan flags any read past len. Caller frees. */
void *dup_exact(const void *data, size_t len);

/* Asserts that haystack contains needle; prints both otherwise. */
#define assert_contains(hay, needle) \
    assert_contains_at((hay), (needle), __FILE__, __LINE__)
void assert_contains_at(const char *hay, const char *needle, const char *file,
                        int line);
#define assert_not_contains(hay, needle) \
    assert_not_contains_at((hay), (needle), __FILE__, __LINE__)
void assert_not_contains_at(const char *hay, const char *needle,
                            const char *file, int line);

/* --- state-machine fixture --------------------------------------------- */

struct tfsm {
    struct fsm f;
    uint64_t now;             /* time_ms of the next command */
    const char *req;          /* request id of the next command, or NULL */
    struct proto_result r;    /* result of the last command */
};

/* Allocates and initialises a fixture (now = 1e12 ms). Caller frees with
 * tfsm_free(). */
struct tfsm *tfsm_new(void);
void tfsm_free(struct tfsm *t);

/* Runs cmd through encode -> decode -> fsm_apply. time_ms, origin and
 * req_id are filled from t. Fails the test if encoding, decoding or
 * fsm_apply fails. Returns the result code (also in t->r). */
int t_run(struct tfsm *t, struct proto_cmd *cmd);

/* Applies cmd (already decoded) to f and asserts fsm_apply returned 0. */
void t_apply(struct fsm *f, const struct proto_cmd *cmd,
             struct proto_result *r);

/* Command builders: each runs one command and returns its result code.
 * Lists of sites are comma-separated ("a,b,c"). */
int t_site_add(struct tfsm *t, const char *name, const char *pool,
               bool managed);
int t_site_add_full(struct tfsm *t, const char *name, const char *pool,
                    bool managed, int uplink, unsigned svlan,
                    const char *addr);
int t_site_update(struct tfsm *t, const char *name, const char *pool,
                  bool managed);
int t_site_remove(struct tfsm *t, const char *name, bool force);
int t_pool_set(struct tfsm *t, const char *name, const char *pool);
int t_host_add(struct tfsm *t, const char *name, const char *site,
               const char *trunk);
int t_host_remove(struct tfsm *t, const char *name);
int t_service(struct tfsm *t, const char *host, bool on);
int t_create(struct tfsm *t, const char *name, const char *sites,
             uint64_t lease_ms);
int t_extend(struct tfsm *t, const char *name, const char *site);
int t_shrink(struct tfsm *t, const char *name, const char *site);
int t_renew(struct tfsm *t, const char *name, uint64_t lease_ms);
int t_release(struct tfsm *t, const char *name, bool force);
int t_sweep(struct tfsm *t);
int t_attach(struct tfsm *t, const char *cluster, const char *host,
             const char *iface);
int t_detach(struct tfsm *t, const char *cluster, const char *host,
             const char *iface);
int t_report(struct tfsm *t, const char *cluster, const char *site,
             uint64_t gen, bool ok, const char *text);
/* Reports success for the cluster's current generation. */
int t_report_ok(struct tfsm *t, const char *cluster, const char *site);

/* Cluster / site / slot lookups that fail the test when missing. */
struct fsm_cluster *t_cluster(struct tfsm *t, const char *name);
struct fsm_site *t_site(struct tfsm *t, const char *name);
struct fsm_slot *t_slot(struct tfsm *t, const char *cluster,
                        const char *site);

/* --- snapshots --------------------------------------------------------- */

/* fsm_snapshot() into a fresh buffer (asserting success). Close with
 * mp_buf_close(). */
void snap_take(const struct fsm *f, struct mp_buf *b);
/* Asserts that f's snapshot equals the bytes in b. */
void assert_snap_is(const struct fsm *f, const struct mp_buf *b);
void assert_bufs_equal(const struct mp_buf *a, const struct mp_buf *b);
/* Restores f's snapshot into g (initialised here; the caller closes it)
 * and asserts that g's snapshot is the same bytes. */
void snap_restore_same(const struct fsm *f, struct fsm *g);

/* Checks every internal invariant of f: per-site used/free bitmaps agree
 * with the clusters' slots, no VLAN is held twice at a site, slot counts,
 * cluster states match their slots, the indexes find every live entity,
 * attachments name live hosts. */
void check_invariants(const struct fsm *f);

/* --- random valid commands --------------------------------------------- */

/* Fills cmd with a random command that passes proto_cmd_validate(),
 * mostly about entities that exist in ref (which is only read): the
 * simulator's gen_cmd(), plus a clock that moves forward, an origin and,
 * for 40 % of them, a request id (10 % of those repeat an earlier one).
 * Strings point into static tables or into gen's buffers, valid until the
 * generator's next call with the same slot. */
struct cmdgen {
    struct rng rng;
    uint64_t now;
    uint32_t next_req;
    char req[64][16]; /* ring of request ids issued */
    uint32_t nreq;
};

void cmdgen_init(struct cmdgen *g, uint64_t seed);
void cmdgen_next(struct cmdgen *g, const struct fsm *ref,
                 struct proto_cmd *cmd);

#endif
