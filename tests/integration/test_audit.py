"""virtcloud audit: the replicated history of changes, the same at every
site.

Three agents; changes made through different agents, with and without
request ids, some refused, one repeated. Every agent, asked with its own
replica, lists the same entries in the same order (seq, time, who, the
command, request id, result); refusals and the repeat are not changes and
do not appear; --cluster and --since filter; --limit keeps the last.
Then, after enough commands for snapshots, an agent is killed and
restarted: it loads its snapshot (the trail travels in it) and replays
the log after it, and shows the same history again.
"""
import time

import vc


def audit(c, i, *args):
    r = c.cli(i, "audit", *args)
    vc.check(r.rc == 0 and isinstance(r.doc, list), "audit at %s: %r",
             c[i].name, r)
    return r.doc


def same_everywhere(c, among, *args):
    def agreed():
        docs = []
        for i in among:
            r = c.cli(i, "audit", *args)
            if r.rc != 0 or not isinstance(r.doc, list):
                return None  # e.g. restarting
            docs.append(r.doc)
        return docs[0] if all(d == docs[0] for d in docs[1:]) else None
    return vc.wait_until(agreed, 30, "the same audit trail at %s"
                         % [c[i].name for i in among])


def test(env):
    c = env.cluster(3, extra=["--snapshot-threshold", "16",
                              "--snapshot-trailing", "16"])
    t0 = int(time.time() * 1000)
    r = c.cli(0, "--request-id", "slurm:1:create", "cluster", "create", "j1",
              "--sites", "brno,praha", "--owner", "alice")
    vc.check(r.rc == 0, "create j1: %r", r)
    r = c.cli(1, "cluster", "create", "j2", "--sites", "praha,plzen")
    vc.check(r.rc == 0, "create j2: %r", r)
    r = c.cli(2, "--request-id", "slurm:1:create", "cluster", "create", "j1",
              "--sites", "brno,praha")  # a retry: the first answer
    vc.check(r.rc == 0, "repeat: %r", r)
    r = c.cli(2, "cluster", "create", "j1", "--sites", "brno")  # refused
    vc.check(r.rc == 1, "duplicate create: %r", r)
    r = c.cli(2, "cluster", "renew", "j1", "--lease", "2h")
    vc.check(r.rc == 0, "renew: %r", r)
    r = c.cli(1, "--request-id", "ops:rel:j2", "cluster", "release", "j2")
    vc.check(r.rc == 0, "release: %r", r)

    trail = same_everywhere(c, range(3))
    mine = [e for e in trail if e["type"].startswith("cluster-")]
    vc.check([(e["type"], e["name"]) for e in mine] ==
             [("cluster-create", "j1"), ("cluster-create", "j2"),
              ("cluster-renew", "j1"), ("cluster-release", "j2")],
             "cluster entries: %r", mine)
    seqs = [e["seq"] for e in trail]
    vc.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
             "seq order: %r", seqs)
    j1 = mine[0]
    vc.check(j1["request_id"] == "slurm:1:create" and j1["origin"] == "brno"
             and j1["sites"] == "brno,praha" and j1["code"] == 0 and
             "created" in j1["message"] and j1["time_ms"] >= t0 - 5000,
             "j1's entry: %r", j1)
    vc.check(mine[1]["origin"] == "praha" and mine[2]["origin"] == "plzen",
             "who asked: %r", mine)
    vc.check(mine[3]["request_id"] == "ops:rel:j2", "release id: %r",
             mine[3])

    # Filters.
    only = audit(c, 1, "--cluster", "j1")
    vc.check([e["type"] for e in only] == ["cluster-create", "cluster-renew"],
             "--cluster j1: %r", only)
    vc.check(audit(c, 2, "--limit", "1") == trail[-1:], "--limit 1")
    since = audit(c, 0, "--since", str(mine[2]["time_ms"]))
    vc.check(since and since[0]["seq"] >= mine[2]["seq"] - 0 and
             all(e["time_ms"] >= mine[2]["time_ms"] for e in since),
             "--since: %r", since)
    r = c.cli(0, "audit", "--since", "yesterday-ish")
    vc.check(r.rc == 2, "bad --since: %r", r)

    # Enough commands for snapshots, then a site joins from one and an
    # agent restarts from its snapshot + log.
    for i in range(40):
        r = c.cli(i % 3, "cluster", "renew", "j1", "--lease", "%dh" % (i + 3))
        vc.check(r.rc == 0, "renew %d: %r", i, r)
    c[2].kill9()
    c[2].start()
    before = same_everywhere(c, range(3))
    vc.check(len(before) == len(trail) + 40, "trail length %d, want %d",
             len(before), len(trail) + 40)
    vc.check(before[:len(trail)] == trail, "history changed")


if __name__ == "__main__":
    vc.main(test)
