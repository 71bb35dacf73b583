#!/usr/bin/env python3
"""Two of three agents down (the leader frozen with SIGSTOP, a follower
killed): a write to the survivor fails with "no quorum" (exit 3) in bounded
time and leaves nothing behind; once both are back, writes succeed, the
failed write's cluster does not exist, and retrying it with its request id
applies it exactly once. A write caught in the middle of losing quorum
(exit 3 or 4) gets one consistent answer when retried with its id."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

CLI_TIMEOUT = "5s"
BOUND_S = 15.0


def test(env):
    c = env.cluster(3)
    leader = c.wait_leader()
    f1, f2 = c.followers(leader)
    r = c.cli(f1, "cluster", "create", "base", "--sites", "brno,praha,plzen")
    vc.check(r.rc == 0 and r.doc["vlan"] == 150, "%r", r)
    c.wait_converged()
    survivor = f2
    vc.log("leader %s, survivor %s", c[leader].name, c[survivor].name)

    # Down: freeze the leader (its sockets stay open), kill a follower.
    c[leader].stop()
    c[f1].kill9()
    t_down = time.monotonic()

    # A write issued at once may race with the survivor noticing: it must
    # still end within the bound, and as "unavailable" or "unknown".
    race_id = env.req_id("race")
    r_race = c.cli(survivor, "--request-id", race_id, "cluster", "create",
                   "race", "--sites", "praha,plzen", timeout=CLI_TIMEOUT)
    vc.log("write during the loss: rc=%d in %.2fs: %s", r_race.rc,
           r_race.elapsed, r_race.message)
    vc.check(r_race.rc in (3, 4), "write without quorum: %r", r_race)
    vc.check(r_race.elapsed < BOUND_S, "took %.1fs", r_race.elapsed)

    # Once the survivor knows there is no leader, a write fails fast with
    # NOQUORUM (exit 3): it was never sent, so nothing can apply.
    vc.wait_until(lambda: c.leader_of(survivor) == "", 10,
                  "%s to lose its leader" % c[survivor].name)
    vc.log("survivor has no leader %.2fs after the faults",
           time.monotonic() - t_down)
    st_before = c.status(survivor)
    nq_id = env.req_id("noquorum")
    r = c.cli(survivor, "--request-id", nq_id, "cluster", "create", "nq",
              "--sites", "praha,plzen", timeout=CLI_TIMEOUT)
    vc.log("write without quorum: rc=%d in %.2fs: %s", r.rc, r.elapsed,
           r.message)
    vc.check(r.rc == 3, "want exit 3 (unavailable), got %r", r)
    vc.check(r.doc and r.doc["error"] == "NOQUORUM", "%r", r)
    vc.check("no quorum" in r.message, "message lacks 'no quorum': %r", r)
    # The frozen leader's link stays open and counts as reachable until
    # its pings are overdue (peer.c REACHABLE_MS), so 1 or 2 of 3.
    vc.check(re.search(r"no quorum: [12] of 3 voters reachable", r.message),
             "%r", r)
    vc.check(r.elapsed < BOUND_S, "no-quorum answer took %.1fs", r.elapsed)
    # A read without --stale needs the leader too; --stale still answers.
    rr = c.cli(survivor, "cluster", "list", timeout=CLI_TIMEOUT)
    vc.check(rr.rc in (3, 4), "linearizable read without quorum: %r", rr)
    vc.check(rr.elapsed < BOUND_S, "read took %.1fs", rr.elapsed)
    rs = c.cli(survivor, "cluster", "list", "--stale")
    vc.check(rs.rc == 0 and [x["name"] for x in rs.doc] == ["base"],
             "survivor's local state changed without quorum: %r", rs)
    st_after = c.status(survivor)
    vc.check(st_after["commit"] == st_before["commit"],
             "commit index moved without quorum: %r -> %r",
             st_before["commit"], st_after["commit"])

    # Heal: thaw the old leader, restart the killed follower.
    c[leader].cont()
    c[f1].start()
    c.wait_leader(among=[0, 1, 2], timeout=30)
    r = c.cli(survivor, "cluster", "create", "healed", "--sites", "brno,plzen",
              timeout="10s")
    vc.check(r.rc == 0, "write after healing: %r", r)

    lst = c.cli(leader, "cluster", "list", timeout="10s")
    vc.check(lst.rc == 0, "%r", lst)
    names = {x["name"]: x for x in lst.doc}
    vc.check("nq" not in names, "the refused write was applied: %r",
             names.get("nq"))

    # The race write: one answer, the same on every retry, and the state
    # agrees with it.
    answers = []
    for i in (survivor, leader, f1):
        a = c.repeat(i, "--request-id", race_id, "cluster", "create", "race",
                     "--sites", "praha,plzen", timeout="10s")
        answers.append((a.rc, a.doc.get("vlan") if a.doc else None))
    vc.log("race write retried: %r", answers)
    vc.check(len(set(answers)) == 1 and answers[0][0] == 0,
             "inconsistent answers for %s: %r", race_id, answers)
    lst = c.cli(leader, "cluster", "list", timeout="10s")
    race = [x for x in lst.doc if x["name"] == "race"]
    vc.check(len(race) == 1 and race[0]["vlan"] == answers[0][1],
             "race cluster %r vs answer %r", race, answers[0])

    # The refused write, retried with its id, now applies exactly once.
    r1 = c.repeat(f1, "--request-id", nq_id, "cluster", "create", "nq",
                  "--sites", "praha,plzen", timeout="10s")
    r2 = c.repeat(survivor, "--request-id", nq_id, "cluster", "create", "nq",
                  "--sites", "praha,plzen", timeout="10s")
    vc.check(r1.rc == 0 and r2.rc == 0 and r1.doc["vlan"] == r2.doc["vlan"],
             "retry of the refused write: %r / %r", r1, r2)
    clusters, sites = c.wait_converged(timeout=20)
    vc.check(sorted(x["name"] for x in clusters) ==
             ["base", "healed", "nq", "race"], "%r", clusters)
    used = {s["name"]: s["used"] for s in sites}
    vc.check(used == {"brno": 2, "praha": 3, "plzen": 4}, "VLAN use %r", used)


if __name__ == "__main__":
    vc.main(test)
