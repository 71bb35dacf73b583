/* Invariant checks of one state machine, shared by the simulator
 * (tools/sim.c) and the fuzz targets (tests/fuzz/).
 *
 * Unlike tests/unit/testlib.c these do not abort through cmocka: each
 * returns 0, or -1 with a one-line description of the first violation in
 * err, so a caller can print its seed and replay command first.
 */
#ifndef VC_TESTS_SIM_CHECK_H
#define VC_TESTS_SIM_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "agent/fsm.h"

/* I1 and the state machine's own bookkeeping:
 *  - no VLAN is held by two live clusters at one site, and each site's
 *    used bitmap is exactly the VLANs its cluster slots hold;
 *  - every cluster's VLAN is inside the pool of every site it spans, and
 *    free == pool & ~used;
 *  - slot, host and cluster counts, the name indexes, cluster states and
 *    attachments agree with the entities. */
int check_fsm(const struct fsm *f, char *err, size_t errlen);

/* FNV-1a 64 of data, chained from h (start with CHECK_HASH_INIT). */
#define CHECK_HASH_INIT 1469598103934665603ull
uint64_t check_hash(uint64_t h, const void *data, size_t len);

/* Hash of f's canonical snapshot (fsm_snapshot()): equal states give equal
 * digests. *len receives the snapshot's size if len is not NULL. Returns 0
 * on out-of-memory. */
uint64_t check_digest(const struct fsm *f, size_t *len);

#endif
