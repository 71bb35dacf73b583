#!/usr/bin/env python3
"""Host agents (issue 5): two sites whose agents drive a dryrun switch and
wait for their hosts (host-agents = yes, apply-deadline = 6s), one host
agent per site (role = host, dryrun host driver) watching its host's state.

- the watch stream drives the host agents: an attachment becomes a
  subinterface, a bridge and an enslaved VM interface on that host only;
  a detach takes the VM interface out again;
- host results aggregate into the site's apply report: a host whose driver
  fails (injected) makes its site "failed" with the host's error, and the
  cluster is ready only once that host applied; cluster show lists the
  hosts that carry the cluster with their host agents' status;
- create --wait waits for ready; a creation that cannot be applied (a
  failing service host) is rolled back after the deadline, unless created
  with --keep-on-failure;
- a restarted site agent resumes its host agents' streams (insync);
- release: each host removes what it carried before the cluster is gone.
"""
import os
import re
import signal
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

DEADLINE = "6s"
GOOD = "dryrun"
FAILING = "dryrun:0:1"  # every operation fails (-EIO, injected failure)


class HostAgent(vc.Agent):
    """virtcloud-agent --role host, watching site_api for host."""

    def __init__(self, env, host, site_api, driver):
        super().__init__(env, host, "", ())
        self.site_api = site_api
        self.driver = driver

    def argv(self):
        return [self.env.agent, "--role", "host", "--host", self.name,
                "--site-agent", self.site_api, "--host-driver", self.driver,
                "--reconcile-interval", "1000", "--log-level", "debug"]

    def restart(self, driver):
        self.signal(signal.SIGTERM)
        vc.check(self.wait_exit(10) == 0, "%s did not exit cleanly" % self.name)
        self.driver = driver
        self.start()

    def log_since(self, mark):
        return self.log_text()[mark:]


def show(c, name):
    r = c.cli(0, "cluster", "show", name)
    return r.doc if r.rc == 0 and isinstance(r.doc, dict) else None


def site_status(doc, site):
    for s in doc["status"]:
        if s["site"] == site:
            return s
    return None


def wait_state(c, name, state, timeout=30):
    return vc.wait_until(
        lambda: (lambda d: d if d and d["state"] == state else None)(
            show(c, name)),
        timeout, "cluster %s %s" % (name, state))


def wait_log(agent, pattern, start=0, timeout=20):
    rx = re.compile(pattern)
    return vc.wait_until(lambda: rx.search(agent.log_text()[start:]),
                         timeout, "%s's log to match %r" % (agent.name,
                                                            pattern))


def test(env):
    c = env.cluster(2, start=False)
    for a in c.agents:
        a.extra += ["--switch", "dryrun", "--host-agents", "yes",
                    "--apply-deadline", DEADLINE]
    c.start()
    brno, praha = c[0], c[1]
    for host, site, trunk in (("h1", "brno", "eth1"), ("h2", "praha", "eth2")):
        r = c.cli(0, "host", "add", host, "--site", site, "--trunk", trunk)
        vc.check(r.rc == 0, "host add %s: %r", host, r)

    hosts = types.SimpleNamespace(agents=[])
    env.clusters.append(hosts)  # killed, tailed and scanned like agents
    h1 = HostAgent(env, "h1", brno.api, GOOD)
    h2 = HostAgent(env, "h2", praha.api, GOOD)
    hosts.agents += [h1, h2]
    h1.start()
    h2.start()
    wait_log(h1, r"watch: snapshot version")
    wait_log(h2, r"watch: snapshot version")

    # --- the watch stream drives the host agents ----------------------
    r = c.cli(0, "cluster", "create", "a", "--sites", "brno,praha", "--wait",
              timeout="20s")
    vc.check(r.rc == 0 and r.doc and r.doc.get("ok"), "create --wait: %r", r)
    vlan = show(c, "a")["vlan"]
    d = show(c, "a")
    vc.check(d["state"] == "ready", "a not ready after --wait: %r %r", r, d)
    for host, iface in (("h1", "vm1"), ("h2", "vm2")):
        r = c.cli(0, "cluster", "attach", "a", "--host", host, "--iface", iface)
        vc.check(r.rc == 0, "attach %s: %r", host, r)
    wait_state(c, "a", "ready")
    wait_log(h1, r"link add eth1\.%d link eth1" % vlan)
    wait_log(h1, r"link set vm1 master vc%d" % vlan)
    wait_log(h2, r"link add eth2\.%d link eth2" % vlan)
    wait_log(h2, r"link set vm2 master vc%d" % vlan)
    vc.check("vm2" not in h1.log_text() and "vm1" not in h2.log_text(),
             "a host was given another host's VM interface")
    rows = {(h["site"], h["host"]): h for h in show(c, "a")["hosts"]}
    vc.check(set(rows) == {("brno", "h1"), ("praha", "h2")} and
             all(h["connected"] and h["ok"] for h in rows.values()),
             "cluster show should list h1 and h2, connected and ok: %r", rows)
    st = c.cli(0, "status")
    vc.check(st.rc == 0 and [h["host"] for h in st.doc["hosts"]] == ["h1"] and
             st.doc["hosts"][0]["connected"] and st.doc["hosts"][0]["ok"],
             "brno's status should list h1 connected and ok: %r", st)

    # --- a failing host makes its site fail, and holds readiness ------
    h2.restart(FAILING)
    r = c.cli(0, "cluster", "attach", "a", "--host", "h2", "--iface", "vm3")
    vc.check(r.rc == 0, "attach vm3: %r", r)

    def praha_failed():
        d = show(c, "a")
        s = d and site_status(d, "praha")
        return s if s and s["state"] == "failed" else None
    s = vc.wait_until(praha_failed, 30, "site praha failed by host h2")
    vc.check("host h2" in s["error"] and "injected failure" in s["error"],
             "praha's error should name host h2 and its error: %r", s)
    vc.check(show(c, "a")["state"] == "pending", "a should be pending")
    vc.check(site_status(show(c, "a"), "brno")["state"] == "applied",
             "brno does not depend on h2")
    h2row = [h for h in show(c, "a")["hosts"] if h["host"] == "h2"][0]
    vc.check(not h2row["ok"] and "injected failure" in h2row["error"],
             "cluster show should give h2's own error: %r", h2row)
    h2.restart(GOOD)
    wait_state(c, "a", "ready")
    wait_log(h2, r"link set vm3 master vc%d" % vlan)

    # --- detach: the VM interface leaves the bridge -------------------
    mark = len(h1.log_text())
    r = c.cli(0, "cluster", "detach", "a", "--host", "h1", "--iface", "vm1")
    vc.check(r.rc == 0, "detach: %r", r)
    # h1 needs the VLAN no more: its bridge and subinterface go (through
    # the trash link group), which releases vm1.
    wait_log(h1, r"link set vc%d group \d+" % vlan, start=mark)
    wait_log(h1, r"link del group \d+", start=mark)
    wait_log(h1, r"applied for version \d+ \(0 VLANs\)", start=mark)
    wait_state(c, "a", "ready")

    # --- rollback after the deadline, unless kept on failure ----------
    r = c.cli(0, "host", "service", "h2", "on")
    vc.check(r.rc == 0, "service on: %r", r)
    h2.restart(FAILING)
    r = c.cli(0, "cluster", "create", "r", "--sites", "brno,praha", "--wait",
              timeout="40s")
    vc.check(r.rc == 1 and "gone" in r.message,
             "create --wait of an unappliable cluster should end when it is "
             "rolled back: %r", r)
    vc.check(show(c, "r") is None, "r still exists after its rollback")
    leader = c.wait_leader()
    vc.check("cluster r rolled back: not applied at site praha within 6 s"
             in c[leader].log_text(), "the leader should log the rollback")

    r = c.cli(0, "cluster", "create", "k", "--sites", "brno,praha",
              "--keep-on-failure", "--wait", timeout="12s")
    vc.check(r.rc == 4, "create --wait should time out (exit 4): %r", r)
    d = show(c, "k")
    vc.check(d is not None and d["state"] == "pending" and
             d["keep_on_failure"] is True,
             "k must be kept, pending, past the deadline: %r", d)
    vc.check("host h2" in site_status(d, "praha")["error"],
             "k's praha error should name host h2: %r", d)

    # --- a restarted site agent resumes its host's stream ------------
    r = c.cli(0, "host", "service", "h2", "off")
    vc.check(r.rc == 0, "service off: %r", r)
    h2.restart(GOOD)
    wait_state(c, "k", "ready")
    mark = len(h1.log_text())
    brno.signal(signal.SIGTERM)
    vc.check(brno.wait_exit(20) is not None, "brno did not stop")
    brno.start()
    wait_log(h1, r"watch: resumed: the state held is current", start=mark,
             timeout=40)

    # --- release: hosts remove what they carried ----------------------
    mark2 = len(h2.log_text())
    for name in ("a", "k"):
        r = c.cli(0, "cluster", "release", name, timeout="10s")
        vc.check(r.rc == 0, "release %s: %r", name, r)
    vc.wait_until(lambda: show(c, "a") is None and show(c, "k") is None, 30,
                  "a and k gone")
    log2 = h2.log_since(mark2)
    vc.check(re.search(r"link set vc%d group \d+" % vlan, log2) and
             re.search(r"link del group \d+", log2),
             "h2 should have removed a's bridge before a was gone:\n%s", log2)


if __name__ == "__main__":
    vc.main(test)
