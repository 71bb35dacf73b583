/* A small fixed state-machine state for the fuzz targets: the batch target
 * applies its input on top of it, the snapshot target restores over it. */
#ifndef VC_TESTS_FUZZ_FUZZ_STATE_H
#define VC_TESTS_FUZZ_FUZZ_STATE_H

#include "agent/fsm.h"

#define FUZZ_TIME0 1700000000000ull

/* Applies the baseline commands to f (fresh from fsm_init()): four sites,
 * three hosts, clusters in each state, an attachment, remembered request
 * ids. Aborts if a command fails. */
void fuzz_baseline(struct fsm *f);

/* Drives every cluster of f to the end of its life: sweeps at a far
 * future time, reports each site applied, removes sites by force. Checks
 * the invariants after each step (aborts on a violation). */
void fuzz_drain(struct fsm *f);

#endif
