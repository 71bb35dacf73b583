#!/usr/bin/env python3
"""Concurrent creates from all three agents (3 threads x 30 creates over
random subsets of sites, each with its own request id): no VLAN is held
twice at a shared site (I1), every acknowledged create is present with the
VLAN it was acknowledged with, every refused one is absent, and each
cluster's VLAN lies in each of its sites' pools."""
import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

THREADS = 3
PER_THREAD = 30


def worker(env, c, t, rng, results, errors):
    try:
        names = [a.name for a in c.agents]
        for k in range(PER_THREAD):
            sites = rng.sample(names, rng.randint(1, len(names)))
            name = "t%dc%02d" % (t, k)
            rid = env.req_id("conc-%s" % name)
            r = c.cli(t, "--request-id", rid, "cluster", "create", name,
                      "--sites", ",".join(sites), timeout="15s")
            results.append((name, sites, rid, t, r))
    except BaseException as e:  # reported by the main thread
        errors.append(e)


def test(env):
    c = env.cluster(3)
    rng = random.Random(int(os.environ.get("VC_SEED", "0")) or None)
    seed = rng.randrange(1 << 30)
    vc.log("seed %d (set VC_SEED to replay the site choices)", seed)
    results, errors = [], []
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(env, c, t, random.Random(seed + t),
                                      results, errors))
               for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=240)
        vc.check(not th.is_alive(), "a worker thread hung")
    if errors:
        raise errors[0]

    by_rc = {}
    for name, sites, rid, t, r in results:
        by_rc.setdefault(r.rc, []).append(name)
    vc.log("answers by exit code: %s",
           {k: len(v) for k, v in sorted(by_rc.items())})
    vc.check(len(results) == THREADS * PER_THREAD, "%d results", len(results))
    for name, sites, rid, t, r in results:
        vc.check(r.rc in (0, 1, 3, 4), "unexpected exit: %r", r)
        if r.rc == 1:
            vc.check(r.doc["error"] == "NOVLAN", "refused for another reason: "
                     "%r", r)
    vc.check(len(by_rc.get(0, [])) >= 30, "too few creates acknowledged: %r",
             {k: len(v) for k, v in by_rc.items()})

    # Outcome of the uncertain ones (exit 3/4): ask again with the same id.
    acked = {}
    refused = set()
    for name, sites, rid, t, r in results:
        if r.rc in (3, 4):
            r = c.repeat((t + 1) % 3, "--request-id", rid, "cluster", "create",
                         name, "--sites", ",".join(sites), timeout="15s")
            vc.check(r.rc in (0, 1), "retry of %s: %r", rid, r)
        if r.rc == 0:
            vc.check(r.doc["name"] == name and r.doc["sites"] == sites,
                     "%r", r)
            acked[name] = (r.doc["vlan"], sites)
        else:
            refused.add(name)

    lst = c.cli(0, "cluster", "list", timeout="15s")
    vc.check(lst.rc == 0, "%r", lst)
    state = {x["name"]: x for x in lst.doc}
    pools = {s["name"]: vc.parse_pool(s["pool"])
             for s in c.cli(0, "site", "list", timeout="15s").doc}
    vc.check(set(pools) == {"brno", "praha", "plzen"}, "%r", pools)

    for name, (vlan, sites) in acked.items():
        vc.check(name in state, "acknowledged cluster %s is missing", name)
        vc.check(state[name]["vlan"] == vlan,
                 "%s acknowledged with VLAN %d, state has %d", name, vlan,
                 state[name]["vlan"])
        vc.check(state[name]["sites"] == sites, "%s sites %r vs %r", name,
                 state[name]["sites"], sites)
    for name in refused:
        vc.check(name not in state, "refused cluster %s exists: %r", name,
                 state.get(name))
    vc.check(set(state) == set(acked), "state holds clusters nobody was told "
             "about: %r", set(state) - set(acked))

    # I1: pairwise, no VLAN twice at a shared site.
    live = list(state.values())
    for i, a in enumerate(live):
        for s in a["sites"]:
            vc.check(a["vlan"] in pools[s], "%s: VLAN %d outside %s's pool",
                     a["name"], a["vlan"], s)
        for b in live[i + 1:]:
            shared = set(a["sites"]) & set(b["sites"])
            vc.check(not shared or a["vlan"] != b["vlan"],
                     "VLAN %d given to %s and %s, both at %s", a["vlan"],
                     a["name"], b["name"], sorted(shared))

    # Every agent ends with the same state, and the site counters agree
    # with the clusters.
    clusters, sites = c.wait_converged(timeout=30)
    vc.check({x["name"]: x["vlan"] for x in clusters} ==
             {k: v[0] for k, v in acked.items()}, "replicas differ from the "
             "leader's answer")
    for s in sites:
        n = sum(1 for x in clusters if s["name"] in x["sites"])
        vc.check(s["used"] == n, "%s: used=%d but %d clusters", s["name"],
                 s["used"], n)
        vc.check(s["free"] == len(pools[s["name"]]) - n, "%s: free=%d",
                 s["name"], s["free"])
    vc.log("%d clusters, %d refused (no common VLAN)", len(acked),
           len(refused))


if __name__ == "__main__":
    vc.main(test)
