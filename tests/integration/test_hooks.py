"""Scheduler and libvirt hooks (tools/hooks/) against live agents.

Three agents with the dryrun switch driver, so that each site really
applies and reports every cluster (brno and praha after 1.5 s; plzen never:
every operation of its switch fails). The hooks run as Slurm, PBS and
libvirt would run them: fake SLURM_* environments, PBS arguments and a
node file, a domain XML on stdin. A fake `scontrol` records requeues.

Checks: the Slurm PrologSlurmctld creates slurm-JOB on the sites of the
job's nodes (map file and host list), exactly once when run again; the
per-node Prolog returns only once its own site applied the cluster, lets a
job without cluster through, and on a site that never applies requeues
the job (exit 0, node not drained) or, with VC_NODE_FAILURE=drain, exits
1; a requeued run (SLURM_RESTART_COUNT=1) gets a new cluster; the
EpilogSlurmctld releases once. PBS: prologue creates and waits, exit 2
(requeue) when no agent answers, epilogue releases, a re-run after a
requeue makes a new cluster. libvirt: prepare waits for the bridge's
VLAN at this host's site, refuses a VLAN that no cluster of the site
holds, ignores other operations.
"""
import os
import subprocess
import time

import vc

HOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                     "tools", "hooks")


class Hooks:
    def __init__(self, env, c):
        self.env, self.c = env, c
        d = os.path.join(env.dir, "hooks")
        os.makedirs(os.path.join(d, "bin"))
        self.dir = d
        self.requeue_log = os.path.join(d, "requeued")
        with open(os.path.join(d, "bin", "scontrol"), "w") as f:
            f.write("#!/bin/sh\n"
                    "case $1 in\n"
                    "requeue) echo \"$2\" >> %s; exit 0 ;;\n"
                    "*) exit 1 ;;  # show hostnames: use the fallback\n"
                    "esac\n" % self.requeue_log)
        os.chmod(os.path.join(d, "bin", "scontrol"), 0o755)
        self.map = os.path.join(d, "nodes.map")
        with open(self.map, "w") as f:
            f.write("# node -> site\nbn[0-9]* brno\npl* plzen\n")
        self.conf = os.path.join(d, "hooks.conf")
        self.write_conf(c.api_list())

    def write_conf(self, api, extra=""):
        with open(self.conf, "w") as f:
            f.write("VIRTCLOUD_API=%s\nVC_CLI=%s\nVC_NODE_MAP=%s\n"
                    "VC_SYSLOG=no\nVC_WAIT=20s\nVC_CREATE_TIMEOUT=20s\n"
                    "VC_BRIDGE_WAIT=no\n%s"
                    % (api, self.env.cli_path, self.map, extra))

    def run(self, script, env=None, args=(), stdin=b"", timeout=90):
        e = {"PATH": os.path.join(self.dir, "bin") + ":/usr/bin:/bin",
             "VIRTCLOUD_HOOKS_CONF": self.conf}
        e.update(env or {})
        t = time.monotonic()
        p = subprocess.run([os.path.join(HOOKS, script)] + list(args),
                           input=stdin, env=e, capture_output=True,
                           timeout=timeout)
        err = p.stderr.decode("utf-8", "replace")
        vc.log("%s %s -> %d in %.1fs: %s", script, " ".join(args),
               p.returncode, time.monotonic() - t, err.strip()[-300:])
        return p.returncode, err

    def requeued(self):
        try:
            with open(self.requeue_log) as f:
                return f.read().split()
        except OSError:
            return []


def show(c, name):
    r = c.cli(0, "cluster", "show", name)
    return r.doc if r.rc == 0 else None


def site_state(doc, site):
    for s in doc["status"]:
        if s["site"] == site:
            return s["state"]
    return None


def slurm_env(job, nodes, **kw):
    e = {"SLURM_JOB_ID": str(job), "SLURM_JOB_NODELIST": nodes,
         "SLURM_JOB_USER": "alice", "SLURM_JOB_PARTITION": "batch"}
    e.update({k: str(v) for k, v in kw.items()})
    return e


def test_slurm(env, c, h):
    # praha's nodes are found through the host list, brno's and plzen's
    # through the map file.
    for host in ("pr01", "pr02"):
        r = c.cli(0, "host", "add", host, "--site", "praha", "--trunk",
                  "eth0")
        vc.check(r.rc == 0, "host add %s: %r", host, r)

    rc, err = h.run("slurm-prolog-slurmctld",
                    slurm_env(4242, "bn[01-02],pr[01-02]"))
    vc.check(rc == 0, "PrologSlurmctld failed: %s", err)
    doc = show(c, "slurm-4242")
    vc.check(doc is not None, "no cluster slurm-4242 after the prolog")
    vc.check(sorted(doc["sites"]) == ["brno", "praha"] and
             doc["owner"] == "alice", "wrong cluster: %r", doc)
    vlan = doc["vlan"]

    # Run again (slurmctld retried it): the first answer, no second cluster.
    rc, err = h.run("slurm-prolog-slurmctld",
                    slurm_env(4242, "bn[01-02],pr[01-02]"))
    vc.check(rc == 0, "PrologSlurmctld re-run failed: %s", err)
    doc2 = show(c, "slurm-4242")
    vc.check(doc2["vlan"] == vlan and doc2["created_ms"] == doc["created_ms"]
             and doc2["gen"] == doc["gen"], "re-run changed the cluster: "
             "%r -> %r", doc, doc2)

    # Per-node prolog on bn01: returns once brno applied it (1.5 s switch).
    rc, err = h.run("slurm-prolog", slurm_env(4242, "", SLURMD_NODENAME="bn01"))
    vc.check(rc == 0, "per-node Prolog failed: %s", err)
    doc = show(c, "slurm-4242")
    vc.check(site_state(doc, "brno") == "applied",
             "Prolog returned before brno applied: %r", doc["status"])
    rc, err = h.run("slurm-prolog", slurm_env(4242, "", SLURMD_NODENAME="pr02"))
    vc.check(rc == 0 and site_state(show(c, "slurm-4242"), "praha") ==
             "applied", "Prolog on pr02: rc %d %s", rc, err)

    # A job without a cluster (say, another partition): through at once.
    rc, err = h.run("slurm-prolog", slurm_env(5000, "", SLURMD_NODENAME="bn01"))
    vc.check(rc == 0 and not h.requeued(), "job without cluster: rc %d %s",
             rc, err)

    # A node of a site that never applies (plzen's switch fails every
    # operation): the job is requeued, the node not drained (exit 0).
    rc, err = h.run("slurm-prolog-slurmctld", slurm_env(4300, "bn01,pl01"))
    vc.check(rc == 0, "PrologSlurmctld for 4300: %s", err)
    h.write_conf(c.api_list(), "VC_WAIT=3s\n")
    rc, err = h.run("slurm-prolog", slurm_env(4300, "", SLURMD_NODENAME="pl01"))
    vc.check(rc == 0 and h.requeued() == ["4300"],
             "failed wait: rc %d, requeued %r: %s", rc, h.requeued(), err)
    h.write_conf(c.api_list(), "VC_WAIT=3s\nVC_NODE_FAILURE=drain\n")
    rc, err = h.run("slurm-prolog", slurm_env(4300, "", SLURMD_NODENAME="pl01"))
    vc.check(rc == 1 and h.requeued() == ["4300"],
             "drain policy: rc %d, requeued %r", rc, h.requeued())
    h.write_conf(c.api_list())

    # A node no map and no host list knows: the job is requeued (exit 1).
    rc, err = h.run("slurm-prolog-slurmctld", slurm_env(4400, "zz01"))
    vc.check(rc == 1 and "zz01" in err, "unknown node: rc %d %s", rc, err)
    vc.check(show(c, "slurm-4400") is None, "cluster made for unknown node")

    # Epilog: released; again: nothing more happens, still exit 0.
    rc, err = h.run("slurm-epilog-slurmctld", slurm_env(4242, ""))
    vc.check(rc == 0, "EpilogSlurmctld failed: %s", err)
    doc = show(c, "slurm-4242")
    vc.check(doc is None or doc["state"] == "releasing",
             "not released: %r", doc)
    rc, err = h.run("slurm-epilog-slurmctld", slurm_env(4242, ""))
    vc.check(rc == 0, "EpilogSlurmctld re-run failed: %s", err)

    # The job is requeued and runs again: a new cluster (once the old one
    # is gone: the prolog retries while the name is taken).
    rc, err = h.run("slurm-prolog-slurmctld",
                    slurm_env(4242, "bn01,pr01", SLURM_RESTART_COUNT=1))
    vc.check(rc == 0, "requeued run's PrologSlurmctld: %s", err)
    doc3 = show(c, "slurm-4242")
    vc.check(doc3 and doc3["state"] != "releasing" and
             doc3["created_ms"] != doc2["created_ms"],
             "no new cluster for the requeued run: %r", doc3)
    rc, err = h.run("slurm-epilog-slurmctld", slurm_env(4242, ""))
    vc.check(rc == 0, "second EpilogSlurmctld: %s", err)
    return vlan


def test_pbs(env, c, h):
    nodefile = os.path.join(h.dir, "pbs_nodefile")
    with open(nodefile, "w") as f:
        f.write("bn01\nbn01\npr01\n")
    pe = {"PBS_NODEFILE": nodefile, "VC_LOCAL_HOST": "bn01"}
    rc, err = h.run("pbs-prologue", pe, ["77.pbs01", "bob", "users"])
    vc.check(rc == 0, "PBS prologue failed: %s", err)
    doc = show(c, "pbs-77.pbs01")
    vc.check(doc and sorted(doc["sites"]) == ["brno", "praha"] and
             doc["owner"] == "bob" and site_state(doc, "brno") == "applied",
             "PBS cluster: %r", doc)
    first = doc["created_ms"]

    # No agent answers (the hosts are in the map file, so the create is
    # tried): exit 2, PBS requeues the job (1 would delete it).
    with open(nodefile + "2", "w") as f:
        f.write("bn01\npl01\n")
    dead = "127.0.0.1:%d" % vc.free_port()
    h.write_conf(dead, "VC_CREATE_TIMEOUT=2s\n")
    rc, err = h.run("pbs-prologue", dict(pe, PBS_NODEFILE=nodefile + "2"),
                    ["78.pbs01", "bob", "users"])
    vc.check(rc == 2 and "cluster create pbs-78.pbs01" in err and
             "no agent reachable" in err,
             "PBS prologue without agents: rc %d %s", rc, err)
    h.write_conf(c.api_list())

    rc, err = h.run("pbs-epilogue", {}, ["77.pbs01", "bob", "users"])
    vc.check(rc == 0, "PBS epilogue failed: %s", err)
    doc = show(c, "pbs-77.pbs01")
    vc.check(doc is None or doc["state"] == "releasing", "not released: %r",
             doc)
    # Requeued: PBS gives no run count; the same create id answers with
    # the released cluster, so the hook takes the next id.
    rc, err = h.run("pbs-prologue", pe, ["77.pbs01", "bob", "users"])
    doc = show(c, "pbs-77.pbs01")
    vc.check(rc == 0 and doc and doc["state"] != "releasing" and
             doc["created_ms"] != first, "PBS re-run: rc %d %r %s", rc, doc,
             err)
    rc, err = h.run("pbs-epilogue", {}, ["77.pbs01"])
    vc.check(rc == 0, "PBS second epilogue: %s", err)


XML = """<domain type='kvm'>
  <name>%s</name>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:56'/>
      <source bridge='%s'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <source bridge="br-mgmt"/>
    </interface>
  </devices>
</domain>
"""


def test_qemu(env, c, h):
    r = c.cli(0, "cluster", "create", "vm-net", "--sites", "brno,praha")
    vc.check(r.rc == 0, "create: %r", r)
    vlan = r.doc["vlan"]
    e = {"VC_LOCAL_HOST": "bn02"}
    xml = (XML % ("g1", "vc%d" % vlan)).encode()
    rc, err = h.run("qemu-virtcloud", e, ["g1", "prepare", "begin", "-"], xml)
    vc.check(rc == 0, "qemu prepare failed: %s", err)
    vc.check(site_state(show(c, "vm-net"), "brno") == "applied",
             "prepare returned before brno applied")
    # A VLAN no cluster of brno holds: the guest must not start.
    xml = (XML % ("g2", "vc4000")).encode()
    rc, err = h.run("qemu-virtcloud", e, ["g2", "prepare", "begin", "-"], xml)
    vc.check(rc == 1 and "4000" in err, "unknown VLAN: rc %d %s", rc, err)
    # Other operations never wait (not even with no agent reachable).
    h.write_conf("127.0.0.1:%d" % vc.free_port())
    rc, err = h.run("qemu-virtcloud", e, ["g2", "release", "end", "-"], xml)
    vc.check(rc == 0, "release op: rc %d %s", rc, err)
    h.write_conf(c.api_list())
    # No cluster bridge at all: nothing to wait for.
    xml = (XML % ("g3", "virbr0")).encode()
    rc, err = h.run("qemu-virtcloud", e, ["g3", "prepare", "begin", "-"], xml)
    vc.check(rc == 0, "guest without cluster bridge: rc %d %s", rc, err)


def test(env):
    c = env.cluster(3, start=False)
    for a in c.agents[:2]:
        a.extra += ["--switch", "dryrun:1500", "--managed", "yes"]
    c[2].extra += ["--switch", "dryrun:0:1", "--managed", "yes"]
    c.start()
    h = Hooks(env, c)
    test_slurm(env, c, h)
    test_pbs(env, c, h)
    test_qemu(env, c, h)


if __name__ == "__main__":
    vc.main(test)
