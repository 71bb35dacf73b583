#!/usr/bin/env python3
"""kill -9 the leader: the survivors elect a new leader and keep committing;
the killed agent, restarted on its data dir, catches up and ends with the
same clusters and sites as the others."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


def test(env):
    c = env.cluster(3)
    old = c.wait_leader()
    survivors = c.followers(old)
    vc.log("leader is %s (pid %d)", c[old].name, c[old].pid)

    # Committed before the crash: must survive it on the killed agent's disk.
    before = {}
    for k in range(3):
        r = c.cli(survivors[k % 2], "cluster", "create", "pre%d" % k,
                  "--sites", "brno,praha,plzen")
        vc.check(r.rc == 0, "%r", r)
        before["pre%d" % k] = r.doc["vlan"]
    vc.check(sorted(before.values()) == [150, 151, 152], "%r", before)

    t = time.monotonic()
    c[old].kill9()
    vc.log("SIGKILLed %s", c[old].name)
    new = c.wait_leader(among=survivors, exclude=(c[old].name,), timeout=20)
    vc.log("new leader %s after %.2fs", c[new].name, time.monotonic() - t)
    vc.check(new != old, "leader did not change")

    # Writes through each survivor (follower and leader) succeed.
    after = {}
    for k, i in enumerate([x for x in survivors if x != new] + [new]):
        r = c.cli(i, "cluster", "create", "post%d" % k,
                  "--sites", "brno,praha", timeout="10s")
        vc.check(r.rc == 0, "create at survivor %s: %r", c[i].name, r)
        after["post%d" % k] = r.doc["vlan"]
    vc.check(sorted(after.values()) == [153, 154], "%r", after)
    # The dead agent is also the first in the CLI's list: failover.
    r = c.cli(0, "cluster", "create", "failover", "--sites", "praha",
              api=c.api_list([old] + survivors), timeout="10s")
    vc.check(r.rc == 0, "create with the dead agent first in --api: %r", r)

    # Restart: same data dir and ports, the bootstrap list is ignored.
    c[old].start()
    vc.log("restarted %s (pid %d)", c[old].name, c[old].pid)
    clusters, sites = c.wait_converged(among=[0, 1, 2], timeout=30)
    names = {x["name"]: x["vlan"] for x in clusters}
    want = dict(before, **after)
    for n, v in want.items():
        vc.check(names.get(n) == v, "cluster %s: want VLAN %d, state has %r",
                 n, v, names.get(n))
    vc.check(len(names) == len(want) + 1, "unexpected clusters %r", names)

    # Snapshots compared field by field, not only equal as a whole: print
    # what each agent holds to make a mismatch readable.
    snaps = [c.snapshot(i) for i in range(3)]
    for i in range(1, 3):
        vc.check(snaps[i] == snaps[0], "%s and %s differ:\n%r\n%r",
                 c[0].name, c[i].name, snaps[0], snaps[i])

    # The restarted agent follows the current leader and applies new writes.
    vc.wait_until(lambda: c.leader_of(old) == c[new].name, 10,
                  "%s to see leader %s" % (c[old].name, c[new].name))
    r = c.cli(old, "cluster", "create", "back", "--sites", "brno,plzen",
              timeout="10s")
    vc.check(r.rc == 0, "create through the restarted agent: %r", r)
    c.wait_converged(timeout=15)

    # Applied index agrees once idle (I4 needs equal index, equal state).
    def same_applied():
        sts = [c.status(i) for i in range(3)]
        if any(s is None for s in sts):
            return None
        return len({s["applied"] for s in sts}) == 1
    vc.wait_until(same_applied, 10, "equal applied index")


if __name__ == "__main__":
    vc.main(test)
