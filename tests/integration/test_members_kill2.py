#!/usr/bin/env python3
"""5 sites (3 founders + 2 joined standbys, --voters 3), kill -9 two of
them: the leader (a voter) and a standby. The two remaining voters elect a
leader and commits continue, through every survivor (also the remaining
standby). Restarted, the killed agents catch up to identical state, and
the killed voter is still a member."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402


def test(env):
    c = env.cluster(3)
    t0 = time.monotonic()
    ml.add_joiner(c, "liberec", "100-199")
    ml.add_joiner(c, "jihlava", "150-249", via=1)
    for n in ("liberec", "jihlava"):
        vc.check(ml.wait_member(c, c.index(n)) == "standby",
                 "%s not standby", n)
    ml.timing("2 joins (start to both standby)", time.monotonic() - t0)
    li, ms = ml.wait_roles(c, lambda m: len(m) == 5 and
                           all(x["reachable"] for x in m.values()), 20,
                           "5 reachable members")
    vc.check(ml.voters(ms) == ["brno", "plzen", "praha"], "voters %r", ms)

    r = c.cli(li, "cluster", "create", "before", "--sites", "brno,liberec")
    vc.check(r.rc == 0 and r.doc["vlan"] == 100, "%r", r)

    victims = [li, c.index(ml.standbys(ms)[0])]
    vc.log("kill -9 %s (leader, voter) and %s (standby)",
           c[victims[0]].name, c[victims[1]].name)
    t = time.monotonic()
    for v in victims:
        c[v].kill9()
    survivors = c.live()
    new = c.wait_leader(among=survivors, exclude=[c[v].name
                                                  for v in victims],
                        timeout=20)
    ml.timing("new leader after killing leader+standby", time.monotonic() - t)
    vc.check(c[new].name in ("brno", "praha", "plzen"), "leader %s",
             c[new].name)

    # Commits continue, through each survivor.
    want = 101
    for k, i in enumerate(survivors):
        r = c.cli(i, "--request-id", env.req_id("after%d" % k), "cluster",
                  "create", "after%d" % k, "--sites", "brno,liberec",
                  timeout="10s")
        vc.check(r.rc == 0, "create through %s with 2 of 5 down: %r",
                 c[i].name, r)
        vc.check(r.doc["vlan"] == want, "after%d: VLAN %d, want %d", k,
                 r.doc["vlan"], want)
        want += 1
    ml.timing("first commit after the kills", time.monotonic() - t)
    ml.check_same_state(c, among=survivors)

    # Restart both: they catch up; default demote-after (30 s) has not
    # passed, so the configuration is unchanged.
    for v in victims:
        c[v].start()
    t = time.monotonic()
    c.wait_leader(timeout=20)
    clusters, _ = ml.check_same_state(c, among=list(range(5)), timeout=30)
    ml.timing("restarted agents caught up", time.monotonic() - t)
    vc.check(sorted(x["name"] for x in clusters) ==
             ["after0", "after1", "after2", "before"], "%r", clusters)
    li, ms = ml.wait_roles(c, lambda m: len(m) == 5 and
                           all(x["reachable"] for x in m.values()), 20,
                           "5 reachable members after the restart")
    vc.check(ml.voters(ms) == ["brno", "plzen", "praha"], "voters %r",
             ml.voters(ms))


if __name__ == "__main__":
    vc.main(test)
