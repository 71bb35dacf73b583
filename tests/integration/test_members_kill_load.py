#!/usr/bin/env python3
"""kill -9 at random moments under load, then restart, a few times: 3
founders + a joined standby, --demote-after 1000 ms so that roles move
while agents are down (the standby is promoted, the dead voter demoted).
Two threads keep creating clusters through random agents, each with its
own request id. Each round kills one agent (the leader, a follower voter,
a standby, then a random one) at a random moment, leaves it down for a random while, restarts it.
Afterwards nothing acknowledged is lost: every create answered with exit 0
is present with its VLAN, the uncertain ones (exit 3/4) are resolved with
their request id, nothing else exists, and all four agents end with the
same state and 3 healthy voters."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

ROUNDS = 4
EXTRA = ["--demote-after", "1000"]
POOLS = ["100-1999", "100-1999", "100-1999"]


def test(env):
    seed = int(os.environ.get("VC_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    vc.log("seed %d (set VC_SEED to replay)", seed)
    c = env.cluster(3, pools=POOLS, extra=EXTRA)
    ml.add_joiner(c, "liberec", "100-1999")
    ml.wait_member(c, c.index("liberec"))
    load = ml.Load(c, "kl", ["brno", "praha", "plzen", "liberec"],
                   threads=2, seed=rng.randrange(1 << 30)).start()
    load.wait_acked(5, 30)

    for k in range(ROUNDS):
        time.sleep(rng.uniform(0.1, 1.5))
        # The leader, a follower voter, a standby, then anyone.
        li, ms = ml.wait_roles(c, lambda m: len(m) == 4, 10, "4 members")
        pick = {0: [li],
                1: [c.index(n) for n in ml.voters(ms) if n != c[li].name],
                2: [c.index(n) for n in ml.standbys(ms)]}.get(k)
        v = rng.choice(pick or c.live())
        down = rng.uniform(0.2, 2.5)
        n = load.count()
        vc.log("round %d: kill -9 %s%s, down %.1f s", k, c[v].name,
               " (leader)" if v == li else "", down)
        c[v].kill9()
        time.sleep(down)
        c[v].start()
        # Wait until the group works again (a leader and a fresh ack)
        # before the next kill, so at most one agent is down at a time.
        c.wait_leader(timeout=30)
        load.wait_acked(load.acked_count() + 3, 40)
        vc.log("round %d: %d creates during the round", k,
               load.count() - n)
    load.stop()
    acked = load.resolve()

    li, ms = ml.wait_roles(c, lambda m: len(m) == 4 and
                           len(ml.voters(m)) == 3 and
                           all(x["reachable"] for x in m.values()), 30,
                           "4 reachable members, 3 voters")
    vc.log("voters %s, standby %s", ml.voters(ms), ml.standbys(ms))
    clusters, sites = ml.check_same_state(c, among=list(range(4)),
                                          timeout=30)
    pools = {s["name"]: vc.parse_pool(s["pool"]) for s in sites}
    load.check(clusters, pools)
    ml.check_no_vlan_twice(clusters)
    vc.check(len(acked) >= 20, "only %d creates acknowledged", len(acked))
    # The cluster list through the leader agrees with the local copies.
    r = c.cli(li, "cluster", "list", timeout="10s")
    vc.check(r.rc == 0 and sorted(r.doc, key=lambda x: x["name"]) ==
             clusters, "leader's list differs from the replicas'")
    for s in sites:
        n = sum(1 for x in clusters if s["name"] in x["sites"])
        vc.check(s["used"] == n, "%s: used=%d but %d clusters", s["name"],
                 s["used"], n)


if __name__ == "__main__":
    vc.main(test)
