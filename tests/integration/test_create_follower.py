#!/usr/bin/env python3
"""Three agents: a cluster created through a follower is committed and every
agent agrees on its name, VLAN and sites, read through the leader and from
each agent's local copy (--stale)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


def test(env):
    c = env.cluster(3)
    leader = c.wait_leader()
    f = c.followers(leader)[0]
    vc.log("leader %s, creating through follower %s", c[leader].name, c[f].name)

    # Sites' pools intersect in 150-179 (vc.POOLS): the lowest VLAN free at
    # all three is 150, and a second cluster on brno+praha gets 151.
    rid = env.req_id("follower")
    r = c.cli(f, "--request-id", rid, "cluster", "create", "web1",
              "--sites", "brno,praha,plzen", "--owner", "alice")
    vc.check(r.rc == 0, "create through follower failed: %r", r)
    vc.check(r.doc["ok"] is True and r.doc["name"] == "web1", "%r", r)
    vc.check(r.doc["vlan"] == 150, "expected VLAN 150, got %r", r)
    vc.check(r.doc["sites"] == ["brno", "praha", "plzen"], "%r", r)
    vc.check(r.doc["request_id"] == rid, "%r", r)

    other = c.followers(leader)[1]
    r2 = c.cli(other, "cluster", "create", "web2", "--sites", "brno,praha")
    vc.check(r2.rc == 0 and r2.doc["vlan"] == 151,
             "second create: expected VLAN 151, got %r", r2)

    want = {"web1": (150, ["brno", "praha", "plzen"]),
            "web2": (151, ["brno", "praha"])}

    def view(doc):
        return {x["name"]: (x["vlan"], x["sites"]) for x in doc}

    # Linearizable reads: every agent answers with the leader's state.
    for i in range(3):
        r = c.cli(i, "cluster", "list")
        vc.check(r.rc == 0, "%r", r)
        vc.check(view(r.doc) == want, "%s (linearizable) sees %r, want %r",
                 c[i].name, view(r.doc), want)
        s = c.cli(i, "cluster", "show", "web1")
        vc.check(s.rc == 0 and s.doc["vlan"] == 150 and
                 s.doc["owner"] == "alice", "%r", s)

    # Stale reads: each agent's own copy catches up by itself.
    for i in range(3):
        vc.wait_until(
            lambda: (lambda r: r.rc == 0 and view(r.doc) == want)(
                c.cli(i, "cluster", "list", "--stale")),
            10, "%s's local copy to hold web1 and web2" % c[i].name)

    clusters, sites = c.wait_converged()
    vc.check([x["name"] for x in clusters] == ["web1", "web2"], "%r", clusters)
    used = {s["name"]: s["used"] for s in sites}
    vc.check(used == {"brno": 2, "praha": 2, "plzen": 1},
             "per-site VLAN use %r", used)

    # An unknown cluster is NOTFOUND (exit 1) everywhere.
    for i in range(3):
        r = c.cli(i, "cluster", "show", "nosuch", "--stale")
        vc.check(r.rc == 1 and r.doc["error"] == "NOTFOUND", "%r", r)


if __name__ == "__main__":
    vc.main(test)
