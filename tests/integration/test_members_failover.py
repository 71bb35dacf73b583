#!/usr/bin/env python3
"""7 members, 5 voters (--voters 5, 3 founders + 4 joiners, --demote-after
1500 ms): the role manager promotes two joiners to reach 5 voters. Then
kill -9 two voters, the leader among them: commits continue, and within a
bounded time the leader's status shows 5 voters, all reachable, the
killed ones demoted to standby. Restarted, the killed agents catch up and
stay standby (the 5 voters are healthy: nothing to promote)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

VOTERS = int(os.environ.get("VC_TEST_VOTERS", "5"))
DEMOTE_MS = 1500
EXTRA = ["--voters", str(VOTERS), "--demote-after", str(DEMOTE_MS)]
JOINERS = [("liberec", "100-199"), ("jihlava", "150-249"),
           ("zlin", "100-299"), ("opava", "120-220")]


def healthy_voters(n):
    """pred: n voters, every voter reachable from the leader."""
    def pred(ms):
        vs = [m for m in ms.values() if m["role"] == "voter"]
        return len(vs) == n and all(m["reachable"] for m in vs)
    return pred


def test(env):
    c = env.cluster(3, extra=EXTRA)
    t0 = time.monotonic()
    for k, (name, pool) in enumerate(JOINERS):
        ml.add_joiner(c, name, pool, via=k % 3)
    for name, _ in JOINERS:
        ml.wait_member(c, c.index(name), timeout=40)
    ml.timing("4 joins (start to member)", time.monotonic() - t0)
    li, ms = ml.wait_roles(c, lambda m: len(m) == 7 and
                           healthy_voters(5)(m), 40,
                           "7 members of which 5 healthy voters")
    ml.timing("4 joins (start to 5 voters)", time.monotonic() - t0)
    vc.check(len(ml.standbys(ms)) == 2, "standbys %r", ml.standbys(ms))
    vc.log("voters %s, standbys %s, leader %s", ml.voters(ms),
           ml.standbys(ms), c[li].name)
    # Stable: no flapping while everybody is healthy.
    time.sleep(DEMOTE_MS / 1000.0 + 1)
    li, ms2 = ml.wait_roles(c, lambda m: len(m) == 7, 10, "7 members")
    vc.check(ml.voters(ms2) == ml.voters(ms), "voters changed while all "
             "were healthy: %r -> %r", ml.voters(ms), ml.voters(ms2))

    r = c.cli(li, "cluster", "create", "before", "--sites", "brno,zlin")
    vc.check(r.rc == 0 and r.doc["vlan"] == 100, "%r", r)

    others = [v for v in ml.voters(ms) if v != c[li].name]
    victims = [li, c.index(others[0])]
    names = [c[v].name for v in victims]
    vc.log("kill -9 voters %s (%s is the leader)", names, names[0])
    t = time.monotonic()
    for v in victims:
        c[v].kill9()

    # Commits continue (3 of 5 voters up).
    r = c.cli(c.live()[0], "--request-id", env.req_id("during"), "cluster",
              "create", "during", "--sites", "zlin,opava", timeout="15s",
              api=c.api_list(c.live()))
    vc.check(r.rc == 0, "create with 2 of 5 voters down: %r", r)
    vc.check(r.doc["vlan"] == 120, "during: VLAN %d", r.doc["vlan"])
    ml.timing("first commit after killing 2 voters", time.monotonic() - t)

    li, ms = ml.wait_roles(c, healthy_voters(5), 30,
                           "5 reachable voters after killing %s" % names)
    ml.timing("promotion: kill to 5 reachable voters (demote-after %d ms)"
              % DEMOTE_MS, time.monotonic() - t)
    li, ms = ml.wait_roles(c, lambda m: all(m[n]["role"] == "standby"
                                            for n in names), 15,
                           "killed voters %s demoted" % names)
    vc.check(len(ml.voters(ms)) == 5 and not set(names) & set(ml.voters(ms)),
             "voters %r", ml.voters(ms))
    vc.log("voters %s, standbys %s", ml.voters(ms), ml.standbys(ms))
    r = c.cli(li, "cluster", "create", "promoted", "--sites", "brno,praha",
              timeout="10s", api=c.api_list(c.live()))
    vc.check(r.rc == 0, "create after the promotions: %r", r)

    # Restart the killed ones: they catch up and stay standby.
    t = time.monotonic()
    for v in victims:
        c[v].start()
    for v in victims:
        ml.wait_member(c, v, timeout=30)
    ml.check_same_state(c, among=list(range(7)), timeout=30)
    ml.timing("restarted voters caught up", time.monotonic() - t)
    time.sleep(DEMOTE_MS / 1000.0 + 1)
    li, ms = ml.wait_roles(c, lambda m: len(m) == 7 and
                           all(x["reachable"] for x in m.values()), 20,
                           "7 reachable members")
    vc.check(len(ml.voters(ms)) == 5, "voters %r", ml.voters(ms))
    for n in names:
        vc.check(ms[n]["role"] == "standby", "restarted %s is %s, want "
                 "standby", n, ms[n]["role"])
    clusters, _ = ml.check_same_state(c, among=list(range(7)))
    vc.check(sorted(x["name"] for x in clusters) ==
             ["before", "during", "promoted"], "%r", clusters)


if __name__ == "__main__":
    vc.main(test)
