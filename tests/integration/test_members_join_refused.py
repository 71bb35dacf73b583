#!/usr/bin/env python3
"""Join refusals and interrupted joins.

1. A second agent named like an existing member (praha) but with another
   raft address is refused: it exits non-zero and its log says the name is
   taken; the member's site record is untouched.
2. A joiner killed with -9 right after it started (before and in the
   middle of its join, at several delays) and restarted on the same data
   dir finishes the join: it becomes a standby with the others' state, and
   its pool is usable."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

# (name, pool, how long after start to kill it: None = as soon as the
# leader logs its join request)
HALF = [("liberec", "300-399", 0.05), ("jihlava", "400-499", None),
        ("zlin", "500-599", 0.6)]


def test(env):
    c = env.cluster(3)
    li = c.wait_leader()
    r = c.cli(li, "cluster", "create", "pre", "--sites", "brno,praha")
    vc.check(r.rc == 0, "%r", r)
    praha_before = c.cli(li, "site", "show", "praha").doc

    # 1. Name taken by a member at another raft address.
    dup = ml.add_joiner(c, "praha", "150-249", via=0, label="praha-dup",
                        append=False)
    rc = dup.wait_exit(20)
    vc.check(rc is not None, "duplicate praha still running after 20 s")
    vc.check(rc != 0, "duplicate praha exited 0")
    text = dup.log_text()
    vc.log("duplicate praha exited %d: %s", rc,
           [ln for ln in text.splitlines() if "join refused" in ln])
    vc.check("join refused" in text and "already a member" in text and
             c.by_name("praha").peer in text,
             "the log does not say the name is taken:\n%s", dup.tail(10))
    r = c.cli(li, "site", "show", "praha")
    vc.check(r.rc == 0 and r.doc == praha_before, "praha's record changed: "
             "%r -> %r", praha_before, r.doc)
    _, ms = ml.wait_roles(c, lambda m: len(m) == 3, 10, "3 members")
    vc.check(ms["praha"]["addr"] == c.by_name("praha").peer, "%r",
             ms["praha"])

    # 2. Half-joined agents, restarted.
    for k, (name, pool, delay) in enumerate(HALF):
        li = ml.leader(c)
        mark = len(c[li].log_text())
        t = time.monotonic()
        j = ml.add_joiner(c, name, pool, via=k % 3)
        if delay is None:
            vc.wait_until(lambda: "join request from site %s" % name
                          in c[li].log_text()[mark:], 10,
                          "the leader to log %s's join request" % name,
                          interval=0.005)
        else:
            time.sleep(delay)
        j.kill9()
        took = time.monotonic() - t
        ms = ml.members(c, li) or {}
        rec = c.cli(li, "site", "show", name, "--stale").rc == 0
        vc.log("killed %s %.3f s after its start; then: site record %s, raft "
               "role %s", name, took, "committed" if rec else "absent",
               ms.get(name, {}).get("role", "none"))
        time.sleep(0.5)
        j.start()
        ji = c.index(name)
        role = ml.wait_member(c, ji, timeout=30)
        vc.check(role == "standby", "%s is %s", name, role)
        ml.timing("interrupted join of %s (first start to member)" % name,
                  time.monotonic() - t)
        vc.check(j.running(), "%s exited", name)
        r = c.cli(ji, "cluster", "create", "on-%s" % name, "--sites", name,
                  timeout="10s")
        vc.check(r.rc == 0 and r.doc["vlan"] == min(vc.parse_pool(pool)),
                 "create on %s: %r", name, r)

    _, ms = ml.wait_roles(c, lambda m: len(m) == 6 and
                          all(x["reachable"] for x in m.values()), 20,
                          "6 reachable members")
    vc.check(ml.voters(ms) == ["brno", "plzen", "praha"], "%r", ms)
    clusters, sites = ml.check_same_state(c, timeout=30)
    vc.check(sorted(s["name"] for s in sites) ==
             sorted(["brno", "praha", "plzen"] + [h[0] for h in HALF]),
             "sites %r", [s["name"] for s in sites])
    vc.check(len(clusters) == 1 + len(HALF), "%r", clusters)


if __name__ == "__main__":
    vc.main(test)
