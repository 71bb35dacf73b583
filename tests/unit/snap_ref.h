/* Reference snapshot encoder for tests (tests/unit/snap_ref.c). */
#ifndef VC_TESTS_UNIT_SNAP_REF_H
#define VC_TESTS_UNIT_SNAP_REF_H

#include "agent/fsm.h"

/* fsm_snapshot() as the msgpack-c packer wrote it. 0 or VC_ENOMEM. */
int snap_ref_encode(const struct fsm *f, struct mp_buf *out);

#endif
