#!/usr/bin/env python3
"""SIGTERM the leader: it hands leadership over and exits 0 within a few
seconds; a survivor reports the new leader quickly; writes keep working.
Then the rest of the group is stopped with SIGTERM too: every agent exits 0
in bounded time, also the last one, which has nobody left to hand over to."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

EXIT_S = 5.0


def test(env):
    c = env.cluster(3)
    old = c.wait_leader()
    r = c.cli(old, "cluster", "create", "before", "--sites", "brno,praha")
    vc.check(r.rc == 0, "%r", r)
    survivors = c.followers(old)
    vc.log("SIGTERM to leader %s (pid %d)", c[old].name, c[old].pid)

    t = time.monotonic()
    c[old].signal(signal.SIGTERM)
    new = c.wait_leader(among=survivors, exclude=(c[old].name,), timeout=10,)
    took = time.monotonic() - t
    vc.log("new leader %s seen by both survivors %.3fs after SIGTERM",
           c[new].name, took)
    print("leadership moved in %.3f s" % took)
    rc = c[old].wait_exit(EXIT_S)
    vc.log("old leader exited with %r %.2fs after SIGTERM", rc,
           time.monotonic() - t)
    vc.check(rc == 0, "leader did not exit 0 within %.0fs after SIGTERM "
             "(status %r)", EXIT_S, rc)
    vc.check(took < 3.0, "new leader took %.2fs", took)
    log = c[old].log_text()
    vc.check("handing leadership over" in log, "no hand-over in the log")

    for i in survivors:
        r = c.cli(i, "cluster", "create", "after-%s" % c[i].name,
                  "--sites", "brno,praha,plzen", timeout="10s")
        vc.check(r.rc == 0, "write after the leader left, through %s: %r",
                 c[i].name, r)
    r = c.cli(0, "cluster", "list", api=c.api_list([old] + survivors))
    vc.check(r.rc == 0 and sorted(x["name"] for x in r.doc) ==
             sorted(["before"] + ["after-%s" % c[i].name for i in survivors]),
             "%r", r)

    # The old leader comes back as a follower with everything.
    c[old].start()
    c.wait_converged(among=[0, 1, 2], timeout=30)

    # Stop everybody at once, as a host shutdown does.
    t = time.monotonic()
    for a in c.agents:
        a.signal(signal.SIGTERM)
    for a in c.agents:
        rc = a.wait_exit(max(0.1, EXIT_S - (time.monotonic() - t)))
        vc.log("%s exited %r at %.2fs", a.name, rc, time.monotonic() - t)
        vc.check(rc == 0, "%s did not exit 0 within %.0fs of a group SIGTERM "
                 "(status %r)", a.name, EXIT_S, rc)


if __name__ == "__main__":
    vc.main(test)
