#!/usr/bin/env python3
"""Grow 3 -> 5 sites under load: while two threads keep creating clusters
(with request ids, at random agents), two new agents start with --join and
empty data dirs, at the same time. Both become members as standby (target
voters is 3). After the load stops, all five have applied the same index
and hold identical clusters and sites; every acknowledged create is
present with its VLAN; the new sites' pools are usable, alone and together
with old sites, through the new agents."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

POOLS = ["100-1099", "500-1499", "800-1799"]
NEW = [("liberec", "1000-1199"), ("jihlava", "1050-1099,2100-2299")]


def test(env):
    c = env.cluster(3, pools=POOLS)
    founders = [a.name for a in c.agents]
    load = ml.Load(c, "grow", founders, threads=2).start()
    load.wait_acked(5, 60)

    t0 = time.monotonic()
    for k, (name, pool) in enumerate(NEW):
        ml.add_joiner(c, name, pool, via=k)  # through brno, then praha
    vc.log("started joiners %s", [n for n, _ in NEW])
    new = [c.index(n) for n, _ in NEW]
    for j in new:
        role = ml.wait_member(c, j, timeout=40)
        ml.timing("join of %s (start to member, under load)" % c[j].name,
                  time.monotonic() - t0)
        vc.check(role == "standby", "%s joined as %s, want standby (3 "
                 "voters wanted, 3 present)", c[j].name, role)

    li, ms = ml.wait_roles(c, lambda m: len(m) == 5, 20, "5 members")
    vc.check(ml.voters(ms) == sorted(founders), "voters %r", ml.voters(ms))
    vc.check(ml.standbys(ms) == sorted(n for n, _ in NEW), "standbys %r",
             ml.standbys(ms))
    for name, m in ms.items():
        vc.check(m["reachable"], "%s unreachable from leader %s: %r", name,
                 c[li].name, m)

    # Keep loading a little after the joins, then stop.
    n = load.acked_count()
    load.wait_acked(n + 10, 60)
    load.stop()
    acked = load.resolve()
    vc.check(len(acked) >= 15, "only %d creates acknowledged", len(acked))

    clusters, sites = ml.check_same_state(c, timeout=30)
    vc.check(sorted(s["name"] for s in sites) ==
             sorted(founders + [n for n, _ in NEW]), "sites %r",
             [s["name"] for s in sites])
    by_name = {s["name"]: s for s in sites}
    for name, pool in NEW:
        a = c.by_name(name)
        vc.check(vc.parse_pool(by_name[name]["pool"]) == vc.parse_pool(pool),
                 "%s pool %r, configured %r", name, by_name[name]["pool"],
                 pool)
        vc.check(by_name[name]["addr"] == a.api, "%s api %r, want %r", name,
                 by_name[name]["addr"], a.api)
    pools = {s["name"]: vc.parse_pool(s["pool"]) for s in sites}
    load.check(clusters, pools)
    ml.check_no_vlan_twice(clusters)

    # The new sites' pools are usable: through the new agents (standbys,
    # forwarding to the leader), alone and with old sites.
    for k, (name, sites_) in enumerate([
            ("new-only", ["liberec"]),
            ("new-old", ["liberec", "brno"]),
            ("new-new-old", ["jihlava", "liberec", "praha"]),
            ("jihlava-old", ["jihlava", "plzen"])]):
        r = c.cli(0, "cluster", "list", timeout="10s")
        vc.check(r.rc == 0, "%r", r)
        want = ml.lowest_common_free(r.doc, pools, sites_)
        via = new[k % 2]
        r = c.cli(via, "--request-id", env.req_id(name), "cluster", "create",
                  name, "--sites", ",".join(sites_), timeout="10s")
        vc.check(r.rc == 0, "create %s through %s: %r", name, c[via].name, r)
        vc.check(r.doc["vlan"] == want, "%s on %s got VLAN %d, want %r",
                 name, sites_, r.doc["vlan"], want)
        for s in sites_:
            vc.check(r.doc["vlan"] in pools[s], "%s: VLAN %d not in %s's "
                     "pool", name, r.doc["vlan"], s)
        vc.log("%s on %s: VLAN %d (through %s)", name, sites_, r.doc["vlan"],
               c[via].name)
    clusters, _ = ml.check_same_state(c, timeout=30)
    vc.check(len(clusters) == len(acked) + 4, "%d clusters, want %d",
             len(clusters), len(acked) + 4)
    ml.check_no_vlan_twice(clusters)


if __name__ == "__main__":
    vc.main(test)
