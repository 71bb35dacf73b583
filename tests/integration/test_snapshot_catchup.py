#!/usr/bin/env python3
"""Catch-up through a snapshot: with a tiny snapshot threshold, a follower
killed while the others commit (and compact their logs past its index) is
restarted and must be brought up to date by InstallSnapshot; afterwards all
agents hold the same state, request ids from before the snapshot are still
remembered (I2), and a full restart of every agent from its disk (snapshot
+ log) keeps everything (I3)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

SNAP = ["--snapshot-threshold", "16", "--snapshot-trailing", "16"]


def create(c, i, env, name, sites, ids):
    rid = env.req_id(name)
    r = c.cli(i, "--request-id", rid, "cluster", "create", name,
              "--sites", sites, timeout="10s")
    vc.check(r.rc == 0, "%r", r)
    ids[name] = (rid, sites, r.doc)
    return r


def test(env):
    c = env.cluster(3, extra=SNAP)
    leader = c.wait_leader()
    f1, f2 = c.followers(leader)
    ids = {}
    for k in range(5):
        create(c, f2, env, "early%d" % k, "brno,praha,plzen", ids)
    c.wait_converged()

    c[f1].kill9()
    vc.log("killed follower %s; committing past two snapshots", c[f1].name)
    for k in range(60):
        create(c, (leader, f2)[k % 2], env, "mid%02d" % k,
               ("brno,praha", "praha,plzen", "brno,plzen")[k % 3], ids)
    # Releases too, so that freed VLANs are part of the snapshot.
    for k in range(0, 60, 4):
        r = c.cli(leader, "cluster", "release", "mid%02d" % k)
        vc.check(r.rc == 0, "%r", r)
        del ids["mid%02d" % k]
    snaps = [l for l in c[leader].log_text().splitlines()
             if "snapshot" in l.lower()]
    vc.log("leader's log mentions snapshots %d times", len(snaps))

    c[f1].start()
    clusters, sites = c.wait_converged(among=[0, 1, 2], timeout=60)
    vc.check(sorted(x["name"] for x in clusters) == sorted(ids),
             "clusters after catch-up differ from the acknowledged set")
    vc.check("restored snapshot" in c[f1].log_text(),
             "%s caught up without a snapshot: the test did not exercise "
             "InstallSnapshot (log tail:\n%s)", c[f1].name, c[f1].tail(15))

    # Request ids from before the snapshot are still remembered, also by
    # the agent that only got the snapshot.
    for name in ("early0", "mid01"):
        rid, where, doc = ids[name]
        r = c.repeat(f1, "--request-id", rid, "cluster", "create", name,
                     "--sites", where, timeout="10s")
        vc.check(r.rc == 0 and r.doc == doc, "repeat of %s after the "
                 "snapshot: %r, first answer %r", rid, r, doc)

    # Everybody down hard, everybody up: state comes back from disk.
    for a in c.agents:
        a.kill9()
    for a in c.agents:
        a.start()
    c.wait_leader(timeout=60)
    after = c.wait_converged(timeout=60)
    vc.check(after == (clusters, sites), "state changed across a full "
             "restart:\n  %s", vc.diff_state((clusters, sites), after))
    r = c.cli(0, "cluster", "create", "last", "--sites", "brno,praha,plzen",
              timeout="10s")
    vc.check(r.rc == 0, "%r", r)


if __name__ == "__main__":
    vc.main(test)
