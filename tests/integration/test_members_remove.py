#!/usr/bin/env python3
"""Removing a site. 3 founders + a joined standby (liberec). `site remove
X` (X a voter, not the leader) is refused with exit 1 while clusters span
X, naming one; `--force` shrinks them in the same command: a cluster that
spanned X and another site keeps only the other, one that spanned only X
is gone, others are untouched. X disappears from `site list` at once and,
within a bounded time, from the raft configuration of every remaining
agent; X's agent logs that it was removed; the role manager promotes the
standby so that there are 3 voters again; writes keep working. Then the
leader's own site is removed: it leaves the configuration too and the two
remaining sites elect a leader among themselves. Finally the first removed
site joins again under its name with a new agent and data dir."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

POOLS = ["100-199", "100-199", "100-199"]


def no_member(c, among, site_id):
    def ok():
        for i in among:
            st = c.status(i)
            if not st or any(m["id"] == site_id for m in st["members"]):
                return None
        return True
    return ok


def test(env):
    c = env.cluster(3, pools=POOLS)
    ml.add_joiner(c, "liberec", "100-199")
    ml.wait_member(c, c.index("liberec"))
    li = c.wait_leader()
    x = [i for i in range(3) if i != li][0]
    y = [i for i in range(3) if i not in (li, x)][0]
    X, Y, L = c[x].name, c[y].name, c[li].name
    x_id = c.status(x)["id"]
    vc.log("leader %s; removing %s (raft id %d)", L, X, x_id)

    for name, sites in [("b-mixed", [X, Y]), ("a-only", [X]),
                        ("c-other", [Y, L]), ("d-new", ["liberec", Y])]:
        r = c.cli(li, "cluster", "create", name, "--sites", ",".join(sites))
        vc.check(r.rc == 0, "%r", r)
    before = {x_["name"]: x_ for x_ in c.cli(li, "cluster", "list").doc}

    r = c.cli(y, "site", "remove", X)
    vc.check(r.rc == 1, "remove without --force: %r", r)
    vc.check(r.doc and r.doc["error"] == "INUSE", "%r", r)
    vc.check("a-only" in r.message and "2 cluster" in r.message,
             "the refusal should name a spanning cluster: %r", r.message)
    vc.check("--force" in r.message, "no hint at --force: %r", r.message)
    r = c.cli(li, "site", "list")
    vc.check(X in [s["name"] for s in r.doc], "refused remove took %s away",
             X)

    t = time.monotonic()
    r = c.cli(y, "--request-id", env.req_id("rm"), "site", "remove", X,
              "--force", timeout="10s")
    vc.check(r.rc == 0, "remove --force: %r", r)
    vc.log("%s", r.message)
    survivors = [i for i in range(4) if i != x]
    clusters, sites = ml.check_same_state(c, among=survivors)
    vc.check(X not in [s["name"] for s in sites], "%s still in site list",
             X)
    got = {x_["name"]: x_ for x_ in clusters}
    vc.check("a-only" not in got, "a-only (only at %s) survived: %r", X,
             got.get("a-only"))
    vc.check(got["b-mixed"]["sites"] == [Y], "b-mixed sites %r",
             got["b-mixed"]["sites"])
    vc.check(got["b-mixed"]["vlan"] == before["b-mixed"]["vlan"], "%r",
             got["b-mixed"])
    vc.check(all(s["site"] != X for s in got["b-mixed"]["status"]),
             "b-mixed status still has %s: %r", X, got["b-mixed"]["status"])
    for n in ("c-other", "d-new"):
        vc.check(got[n]["sites"] == before[n]["sites"] and
                 got[n]["vlan"] == before[n]["vlan"], "%s changed: %r -> %r",
                 n, before[n], got[n])
    for cl in clusters:
        vc.check(X not in cl["sites"], "%s still lists %s", cl["name"], X)

    vc.wait_until(no_member(c, survivors, x_id), 15,
                  "%s out of every remaining agent's raft configuration" % X)
    ml.timing("remove %s: command to out of the raft configuration" % X,
              time.monotonic() - t)
    vc.wait_until(lambda: "this site was removed" in c[x].log_text(), 10,
                  "%s to log that it was removed" % X)
    vc.check(c[x].running(), "%s exited: %r", X, c[x].proc.returncode)

    li2, ms = ml.wait_roles(c, lambda m: len(ml.voters(m)) == 3, 15,
                            "3 voters again (liberec promoted)",
                            among=survivors)
    ml.timing("remove %s: command to 3 voters again" % X,
              time.monotonic() - t)
    vc.check(sorted(ms) == sorted([L, Y, "liberec"]), "members %r",
             sorted(ms))
    vc.check(ms["liberec"]["role"] == "voter", "%r", ms)

    # Writes keep working, through every remaining agent; the removed
    # site cannot be used any more.
    for k, i in enumerate(survivors):
        r = c.cli(i, "cluster", "create", "after%d" % k, "--sites",
                  "%s,liberec" % Y, timeout="10s")
        vc.check(r.rc == 0, "create through %s: %r", c[i].name, r)
    r = c.cli(li2, "cluster", "create", "at-x", "--sites", X)
    vc.check(r.rc == 1 and r.doc["error"] == "NOTFOUND", "%r", r)
    c.wait_converged(among=survivors)

    # Remove the leader's own site.
    li = ml.leader(c, survivors)
    L = c[li].name
    l_id = c.status(li)["id"]
    rest = [i for i in survivors if i != li]
    vc.log("removing the leader's site %s", L)
    t = time.monotonic()
    r = c.cli(rest[0], "--request-id", env.req_id("rm2"), "site", "remove",
              L, "--force", timeout="10s")
    vc.check(r.rc == 0, "remove the leader's site: %r", r)
    vc.wait_until(no_member(c, rest, l_id), 15,
                  "%s out of the remaining agents' configuration" % L)
    new = c.wait_leader(among=rest, exclude=[L, X], timeout=20)
    ml.timing("remove the leader %s: command to a new leader" % L,
              time.monotonic() - t)
    vc.log("new leader %s", c[new].name)
    r = c.cli(rest[1], "cluster", "create", "last", "--sites",
              ",".join(c[i].name for i in rest), timeout="10s")
    vc.check(r.rc == 0, "create after removing the leader: %r", r)
    _, sites = ml.check_same_state(c, among=rest)
    vc.check(sorted(s["name"] for s in sites) ==
             sorted(c[i].name for i in rest), "sites %r", sites)
    vc.wait_until(lambda: "this site was removed" in c[li].log_text(), 10,
                  "%s to log that it was removed" % L)

    # The first removed site comes back: its old agent stopped as its log
    # asks, a new one with an empty data dir joins under the same name.
    c[x].signal(signal.SIGTERM)
    vc.check(c[x].wait_exit(10) == 0, "removed %s did not exit 0 on SIGTERM",
             X)
    t = time.monotonic()
    again = ml.add_joiner(c, X, c[x].pool, via=rest[0], label=X + "-again",
                          append=False)
    ml.replace(c, x, again)  # the slot of the old X: c.index(X) finds it
    ml.wait_member(c, x, timeout=30)
    ml.timing("re-join of removed %s (start to member)" % X,
              time.monotonic() - t)
    among = rest + [x]
    li, ms = ml.wait_roles(c, lambda m: len(m) == 3 and
                           len(ml.voters(m)) == 3, 20,
                           "%s back, 3 voters" % X, among=among)
    vc.check(ms[X]["addr"] == again.peer, "%r", ms[X])
    r = c.cli(x, "cluster", "create", "back", "--sites", X, timeout="10s")
    vc.check(r.rc == 0 and r.doc["vlan"] == 100, "create at the re-joined "
             "%s: %r", X, r)
    clusters, sites = ml.check_same_state(c, among=among)
    vc.check(sorted(s["name"] for s in sites) ==
             sorted(c[i].name for i in among), "sites %r", sites)
    vc.check([s["addr"] for s in sites if s["name"] == X] == [again.api],
             "%s's record does not have the new API address: %r", X, sites)


if __name__ == "__main__":
    vc.main(test)
