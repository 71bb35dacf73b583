/* Seeded random numbers and random valid state-machine commands, shared by
 * the simulator (tools/sim.c) and the fuzz corpus generator.
 *
 * The same seed gives the same sequence on every platform (splitmix64, no
 * libc rand()). Commands name entities from small fixed sets (sites s0-s5,
 * hosts h0-h11, clusters c0-c23) with small overlapping VLAN pools, so
 * allocations collide, pools run out and most commands meet existing
 * entities.
 */
#ifndef VC_TESTS_SIM_GEN_H
#define VC_TESTS_SIM_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/fsm.h"
#include "proto/cmd.h"

struct rng {
    uint64_t s;
};

uint64_t rng_next(struct rng *r);
/* Uniform in 0..n-1 (n > 0). */
uint32_t rng_below(struct rng *r, uint32_t n);
/* True with probability pct/100. */
bool rng_pct(struct rng *r, unsigned pct);

#define GEN_SITES 6
#define GEN_HOSTS 12
#define GEN_CLUSTERS 24

extern const char *const gen_site_names[GEN_SITES];
extern const char *const gen_host_names[GEN_HOSTS];
extern const char *const gen_cluster_names[GEN_CLUSTERS];

/* A command type drawn with weights that favour cluster operations. Never
 * cluster-rollback (the leader's own) nor the key, role and invite types
 * (20-24): giving them weight would change the run of every seed. */
int gen_type(struct rng *r);

/* Fills cmd with a random command of type that passes proto_cmd_validate(),
 * mostly about entities that exist in ref (only read; may be NULL). Strings
 * point into static tables. req_id, origin and time_ms are left empty. */
void gen_cmd(struct rng *r, const struct fsm *ref, int type,
             struct proto_cmd *cmd);

#endif
