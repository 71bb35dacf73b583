#!/usr/bin/env python3
"""A site joins after the log was compacted: with --snapshot-threshold 64
--snapshot-trailing 16 on every agent, 240 creates make the founders take
snapshots and drop the early log, so the joiner can only catch up by
installing a snapshot (its log says so and its data dir holds one). Its
state then equals the founders'. Then every agent is restarted (SIGTERM,
exit 0, started again on the same data dir): same state afterwards, and
writes still work."""
import glob
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
import members_lib as ml  # noqa: E402

SNAP = ["--snapshot-threshold", "64", "--snapshot-trailing", "16"]
POOLS = ["100-999", "100-999", "100-999"]
THREADS, PER_THREAD = 4, 60


def fill(env, c):
    """THREADS x PER_THREAD creates over 1-3 sites, through all agents."""
    names = [a.name for a in c.agents]
    results, errors = [], []

    def worker(t):
        try:
            for k in range(PER_THREAD):
                n = (t * PER_THREAD + k)
                sites = [names[(n + x) % 3] for x in range(1 + n % 3)]
                name = "s%03d" % n
                r = c.cli(t % 3, "--request-id", env.req_id(name), "cluster",
                          "create", name, "--sites", ",".join(sites),
                          timeout="15s")
                results.append((name, sites, r))
        except BaseException as e:  # noqa: B902
            errors.append(e)

    ths = [threading.Thread(target=worker, args=(t,), daemon=True)
           for t in range(THREADS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(120)
        vc.check(not th.is_alive(), "a create thread hung")
    if errors:
        raise errors[0]
    for name, sites, r in results:
        vc.check(r.rc == 0 and r.doc["sites"] == sites, "create %s: %r", name,
                 r)
    return {name: r.doc["vlan"] for name, sites, r in results}


def snapshots(a):
    return sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(a.data_dir, "snapshot-*"))
                  if not p.endswith(".meta"))


def first_index(a):
    """First index of the closed log segments (START-END files) in a's
    data dir: > 1 once the log was compacted; 0 if there is none."""
    starts = []
    for p in os.listdir(a.data_dir):
        parts = p.split("-")
        if len(parts) == 2 and all(x.isdigit() for x in parts):
            starts.append(int(parts[0]))
    return min(starts) if starts else 0


def test(env):
    c = env.cluster(3, pools=POOLS, extra=SNAP)
    t = time.monotonic()
    vlans = fill(env, c)
    vc.log("%d creates in %.1f s", len(vlans), time.monotonic() - t)
    vc.check(len(vlans) == THREADS * PER_THREAD, "%d creates", len(vlans))
    st = c.status(0)
    vc.log("commit index %d after the creates", st["commit"])
    # Group commit packs concurrent creates into shared entries: top the
    # log up with one-at-a-time creates (one entry each at least).
    for k in range(max(0, 3 * 64 - st["commit"])):
        name, site = "t%03d" % k, c.agents[k % 3].name
        r = c.cli(k % 3, "--request-id", env.req_id(name), "cluster",
                  "create", name, "--sites", site, timeout="15s")
        vc.check(r.rc == 0 and r.doc["sites"] == [site], "create %s: %r",
                 name, r)
        vlans[name] = r.doc["vlan"]
    st = c.status(0)
    vc.log("commit index %d after topping up", st["commit"])
    vc.check(st["commit"] >= 3 * 64, "only %d log entries: no compaction "
             "forced", st["commit"])
    ml.wait_applied(c)
    for a in c.agents:
        vc.wait_until(lambda: snapshots(a) and first_index(a) > 1, 10,
                      "a snapshot and a compacted log in %s's data dir"
                      % a.name)
        vc.log("%s: snapshots %s, first log entry kept %d", a.name,
               snapshots(a), first_index(a))

    t = time.monotonic()
    ml.add_joiner(c, "liberec", "500-1199", extra=SNAP, via=1)
    j = c.index("liberec")
    vc.check(ml.wait_member(c, j, timeout=40) == "standby", "not standby")
    ml.timing("join from snapshot (start to member)", time.monotonic() - t)
    before = ml.check_same_state(c, timeout=40)
    ml.timing("join from snapshot (start to identical state)",
              time.monotonic() - t)
    got = {x["name"]: x["vlan"] for x in before[0]}
    vc.check(got == vlans, "state differs from the acknowledged creates: "
             "%d vs %d clusters", len(got), len(vlans))
    text = c[j].log_text()
    vc.check("restored snapshot of" in text, "the joiner did not install a "
             "snapshot (log compacted at threshold 64?):\n%s", c[j].tail(20))
    vc.wait_until(lambda: snapshots(c[j]), 10, "a snapshot file in the "
                  "joiner's data dir")
    vc.log("joiner's snapshots: %s", snapshots(c[j]))

    # Restart everybody on the same data dirs.
    marks = [len(a.log_text()) for a in c.agents]
    for a in c.agents:
        a.signal(signal.SIGTERM)
    for a in c.agents:
        rc = a.wait_exit(15)
        vc.check(rc == 0, "%s: exit %r after SIGTERM", a.name, rc)
    t = time.monotonic()
    for a in c.agents:
        a.start()
    c.wait_leader(timeout=30)
    after = ml.check_same_state(c, timeout=30)
    ml.timing("restart of all 4 (start to identical state)",
              time.monotonic() - t)
    vc.check(after == before, "state changed across the restart")
    for k, a in enumerate(c.agents):
        vc.check("restored snapshot of" in a.log_text()[marks[k]:],
                 "%s did not load its snapshot at restart", a.name)
    li, ms = ml.wait_roles(c, lambda m: len(m) == 4, 20, "4 members")
    vc.check(ms["liberec"]["role"] == "standby", "%r", ms["liberec"])

    r = c.cli(j, "cluster", "create", "after", "--sites", "liberec,brno",
              timeout="10s")
    vc.check(r.rc == 0, "%r", r)
    want = ml.lowest_common_free(before[0], {s["name"]: vc.parse_pool(
        s["pool"]) for s in before[1]}, ["liberec", "brno"])
    vc.check(r.doc["vlan"] == want, "VLAN %d, want %r", r.doc["vlan"], want)
    ml.check_same_state(c)


if __name__ == "__main__":
    vc.main(test)
