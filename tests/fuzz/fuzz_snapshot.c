/* Fuzz target: state-machine snapshots (fsm_restore), as a follower
 * receives them from the leader.
 *
 * Restore over the baseline state. On failure the state must be unchanged
 * (same digest) and an error message set. On success the state passes the
 * invariants, snapshot -> restore -> snapshot is a fixed point, and the
 * restored clusters can be driven to the end of their lives.
 */
#include <stdbool.h>
#include <string.h>

#include "agent/fsm.h"
#include "fuzz.h"
#include "fuzz_state.h"
#include "tests/sim/check.h"

static void fixed_point(const struct fsm *f)
{
    struct mp_buf s1, s2;
    struct fsm g;
    char err[256];
    mp_buf_init(&s1);
    mp_buf_init(&s2);
    FUZZ_CHECK(fsm_snapshot(f, &s1) == 0, "snapshot");
    FUZZ_CHECK(fsm_init(&g) == 0, "init");
    FUZZ_CHECK(fsm_restore(&g, s1.data, s1.len, err, sizeof err) == 0,
               "own snapshot does not restore: %s", err);
    FUZZ_CHECK(fsm_snapshot(&g, &s2) == 0, "snapshot");
    FUZZ_CHECK(s1.len == s2.len && !memcmp(s1.data, s2.data, s1.len),
               "snapshot -> restore -> snapshot differs");
    fsm_close(&g);
    mp_buf_close(&s1);
    mp_buf_close(&s2);
}

/* The baseline state, rebuilt only after a restore replaced it: a refused
 * snapshot leaves it as it was (which is checked), and building a state
 * machine costs more than most inputs. */
static struct fsm base;
static bool base_ok;
static uint64_t base_digest;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (!base_ok) {
        FUZZ_CHECK(fsm_init(&base) == 0, "init");
        fuzz_baseline(&base);
        base_digest = check_digest(&base, NULL);
        base_ok = true;
    }
    err[0] = '\0';
    if (fsm_restore(&base, data, size, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(check_digest(&base, NULL) == base_digest,
                   "a refused snapshot changed the state (%s)", err);
        return 0;
    }
    base_ok = false;
    FUZZ_CHECK(check_fsm(&base, err, sizeof err) == 0, "restored: %s", err);
    fixed_point(&base);
    fuzz_drain(&base);
    fsm_close(&base);
    return 0;
}
