#!/usr/bin/env python3
"""GET /metrics on every agent of a three-site group: the text parses with
a strict parser of the Prometheus text format (promtext.py, which must also
refuse a set of broken texts), the raft gauges agree with `virtcloud
status`, and the numbers move: creating clusters raises the cluster count
at every site, lowers the free VLANs of the sites they span and counts the
requests (and their latencies) at the agent that answered; killing a site
makes it unreachable in the others' metrics. Other paths answer 404, other
methods 405."""
import http.client
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtext  # noqa: E402
import vc  # noqa: E402

N_CREATE = 5


def fetch(agent, path="/metrics", method="GET"):
    host, port = agent.metrics.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def scrape(agent):
    status, ctype, body = fetch(agent)
    vc.check(status == 200, "%s /metrics: HTTP %d", agent.name, status)
    vc.check(ctype == "text/plain; version=0.0.4; charset=utf-8",
             "%s content type %r", agent.name, ctype)
    try:
        return promtext.parse(body)
    except promtext.ParseError as e:
        raise vc.TestFailure("%s: /metrics does not parse: %s\n%s"
                             % (agent.name, e, body))


def v(fams, name, **labels):
    x = promtext.value(fams, name, **labels)
    return 0 if x is None else x


def clusters(fams):
    return sum(v(fams, "virtcloud_clusters", state=s)
               for s in ("pending", "ready", "releasing"))


def test(env):
    for bad in promtext.BAD:
        try:
            promtext.parse(bad)
        except promtext.ParseError:
            continue
        raise vc.TestFailure("the test parser accepted %r" % bad)

    c = env.cluster(3)
    leader = c.wait_leader()
    before = [scrape(a) for a in c.agents]
    for i, fams in enumerate(before):
        st = c.status(i)
        vc.check(fams["virtcloud_raft_term"].type == "gauge", "term type")
        vc.check(v(fams, "virtcloud_raft_term") == st["term"],
                 "%s: term %r, status says %r", c[i].name,
                 v(fams, "virtcloud_raft_term"), st["term"])
        vc.check(v(fams, "virtcloud_raft_leader", site=c[leader].name) == 1,
                 "%s: leader label is not %s", c[i].name, c[leader].name)
        vc.check(v(fams, "virtcloud_raft_state", state="leader") ==
                 (1 if i == leader else 0), "%s: raft_state", c[i].name)
        vc.check(v(fams, "virtcloud_raft_members", role="voter") == 3,
                 "%s: voters", c[i].name)
        vc.check(v(fams, "virtcloud_sites") == 3, "%s: sites", c[i].name)
        for a in c.agents:
            vc.check(promtext.value(fams, "virtcloud_member_reachable",
                                    site=a.name) is not None,
                     "%s: no reachability for %s", c[i].name, a.name)
    base_free = v(before[0], "virtcloud_site_vlans_free", site="brno")
    vc.check(base_free == v(before[0], "virtcloud_site_vlans_pool",
                            site="brno") == 100,
             "brno: free %r of pool 100 before any cluster", base_free)

    # Creates through agent 1; each spans brno and praha.
    via = 1
    req_before = v(before[via], "virtcloud_requests_total",
                   type="cluster-create", result="ok")
    for k in range(N_CREATE):
        r = c.cli(via, "cluster", "create", "m%d" % k,
                  "--sites", "brno,praha")
        vc.check(r.rc == 0, "create m%d: %r", k, r)
    r = c.cli(via, "cluster", "create", "m0", "--sites", "brno,praha")
    vc.check(r.rc != 0, "duplicate create succeeded: %r", r)
    c.wait_converged()

    after = [scrape(a) for a in c.agents]
    for i, fams in enumerate(after):
        vc.check(clusters(fams) == clusters(before[i]) + N_CREATE,
                 "%s: clusters %r -> %r after %d creates", c[i].name,
                 clusters(before[i]), clusters(fams), N_CREATE)
        for site in ("brno", "praha"):
            vc.check(v(fams, "virtcloud_site_vlans_free", site=site) ==
                     v(before[i], "virtcloud_site_vlans_free", site=site)
                     - N_CREATE, "%s: free VLANs of %s did not drop by %d",
                     c[i].name, site, N_CREATE)
        vc.check(v(fams, "virtcloud_site_vlans_free", site="plzen") ==
                 v(before[i], "virtcloud_site_vlans_free", site="plzen"),
                 "%s: plzen's free VLANs moved", c[i].name)
        vc.check(v(fams, "virtcloud_raft_applied_index") >
                 v(before[i], "virtcloud_raft_applied_index"),
                 "%s: applied index did not move", c[i].name)
    fams = after[via]
    got = v(fams, "virtcloud_requests_total", type="cluster-create",
            result="ok")
    vc.check(got == req_before + N_CREATE, "requests_total ok: %r -> %r",
             req_before, got)
    vc.check(v(fams, "virtcloud_requests_total", type="cluster-create",
               result="EXISTS") == 1, "the refused create is not counted "
             "as EXISTS")
    count = v(fams, "virtcloud_request_duration_seconds_count",
              type="cluster-create")
    vc.check(count >= N_CREATE + 1 and
             v(fams, "virtcloud_request_duration_seconds_sum",
               type="cluster-create") > 0,
             "latency histogram of cluster-create: count %r", count)
    vc.check(v(fams, "virtcloud_requests_total", type="status",
               result="ok") >= 1, "status requests not counted")

    # HTTP corner cases.
    status, _, _ = fetch(c[0], "/nope")
    vc.check(status == 404, "/nope: HTTP %d", status)
    status, _, _ = fetch(c[0], "/metrics", method="POST")
    vc.check(status == 405, "POST /metrics: HTTP %d", status)

    # Reachability: a killed site drops to 0 at the others.
    dead = 2
    c[dead].kill9()
    live = [i for i in range(3) if i != dead]

    def unreachable():
        return all(v(scrape(c[i]), "virtcloud_member_reachable",
                     site=c[dead].name) == 0 for i in live)
    vc.wait_until(unreachable, 15, "%s unreachable in /metrics"
                  % c[dead].name)
    for i in live:
        for j in live:
            vc.check(v(scrape(c[i]), "virtcloud_member_reachable",
                       site=c[j].name) == 1, "%s: %s unreachable",
                     c[i].name, c[j].name)


if __name__ == "__main__":
    vc.main(test)
