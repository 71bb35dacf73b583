"""Helpers for the membership tests (sites join, leave, fail over), on top
of vc.py: agents started with --join, status parsing, waits on raft roles
and applied indexes, and a background load of creates whose every
acknowledged answer is checked afterwards.

    c = env.cluster(3)
    j = members_lib.add_joiner(c, "liberec", "1000-1199")
    members_lib.wait_member(c, c.index("liberec"))

Joiners are appended to the vc.Cluster's agents, so c.index(), c.live(),
c.snapshot(), c.wait_converged() and the harness's cleanup and log dumps
cover them like founders.
"""
import os
import random
import threading
import time

import vc

# Names for sites that join (vc.SITE_NAMES are the founders').
JOIN_NAMES = ["liberec", "jihlava", "zlin", "opava", "kladno", "tabor",
              "most"]


class Joiner(vc.Agent):
    """An agent that joins through another member's client API: empty data
    dir, --join, no --bootstrap. `label` names its data dir and log when
    two agents of one test share a site name (a refused duplicate)."""

    def __init__(self, env, name, pool, join_api, extra=(), label=None):
        super().__init__(env, name, pool, extra)
        label = label or name
        self.data_dir = os.path.join(env.dir, label)
        self.log_path = os.path.join(env.dir, label + ".log")
        self.join = join_api

    def argv(self):
        return [self.env.agent, "--site", self.name,
                "--data-dir", self.data_dir, "--peer", self.peer,
                "--api", self.api, "--join", self.join,
                "--vlans", self.pool] + self.extra


def add_joiner(c, name, pool, via=None, extra=None, start=True, label=None,
               append=True):
    """Creates (and starts) a joiner joining through agent `via` (index;
    default: the first live agent). extra defaults to the founders' extra
    flags. Appended to c.agents unless append=False (then it is only in
    the harness's cleanup through env.clusters' extra list)."""
    via = c.live()[0] if via is None else via
    extra = list(c[0].extra) if extra is None else list(extra)
    j = Joiner(c.env, name, pool, c[via].api, extra, label)
    if append:
        c.agents.append(j)
    else:
        _strays(c.env).agents.append(j)
    if start:
        j.start()
    return j


def replace(c, i, new):
    """Puts agent `new` in slot i of c (a site that comes back with a new
    agent); the old one stays known to the harness for log dumps and the
    sanitizer scan."""
    strays = _strays(c.env).agents
    if new in strays:
        strays.remove(new)
    strays.append(c.agents[i])
    c.agents[i] = new


class _Strays:
    """Agents not part of the cluster (refused joiners): listed in
    env.clusters so that the harness dumps their logs and scans them."""

    def __init__(self):
        self.agents = []


def _strays(env):
    for x in env.clusters:
        if isinstance(x, _Strays):
            return x
    s = _Strays()
    env.clusters.append(s)
    return s


# --- status ------------------------------------------------------------------

def members(c, i):
    """{site: member} from agent i's status, or None."""
    st = c.status(i)
    if not st:
        return None
    return {m["site"]: m for m in st["members"]}


def roles(c, i):
    """{site: role} from agent i's status, or None."""
    ms = members(c, i)
    return {k: v["role"] for k, v in ms.items()} if ms is not None else None


def leader(c, among=None):
    """Index of the live agent that says it is the leader, or None."""
    for i in (c.live() if among is None else among):
        st = c.status(i)
        if st and st["role"] == "leader":
            return i
    return None


def wait_member(c, j, roles_ok=("standby", "voter"), timeout=30):
    """Waits until agent j sees itself in the raft configuration with one
    of roles_ok and knows a leader; returns its role."""
    name = c[j].name

    def ok():
        st = c.status(j)
        if not st or not st["leader"]:
            return None
        for m in st["members"]:
            if m["site"] == name and m["role"] in roles_ok:
                return m["role"]
        return None

    return vc.wait_until(ok, timeout, "%s to be a member (%s)"
                         % (name, "/".join(roles_ok)))


def wait_roles(c, pred, timeout, what, among=None):
    """Waits until the leader's member map satisfies pred(members) (members
    as from members()); returns (leader index, members)."""
    def ok():
        li = leader(c, among)
        if li is None:
            return None
        ms = members(c, li)
        if ms is None or not pred(ms):
            return None
        return (li, ms)

    return vc.wait_until(ok, timeout, what, interval=0.2)


def voters(ms):
    return sorted(k for k, m in ms.items() if m["role"] == "voter")


def standbys(ms):
    return sorted(k for k, m in ms.items() if m["role"] == "standby")


def wait_applied(c, among=None, timeout=30):
    """Waits until every agent of `among` has applied the same index and
    that index is the leader's commit index (nothing in flight); returns
    the index."""
    among = c.live() if among is None else among

    def same():
        sts = [c.status(i) for i in among]
        if any(s is None for s in sts):
            return None
        applied = {s["applied"] for s in sts}
        commits = {s["commit"] for s in sts if s["role"] == "leader"}
        if len(applied) != 1 or len(commits) != 1:
            return None
        a = applied.pop()
        return (a,) if a == commits.pop() else None

    return vc.wait_until(same, timeout, "equal applied index on %s"
                         % [c[i].name for i in among], interval=0.2)[0]


def check_same_state(c, among=None, timeout=30):
    """Waits for equal applied indexes, then compares every agent's local
    (--stale) cluster and site lists to the first's, field by field.
    Returns (clusters, sites)."""
    among = c.live() if among is None else among
    idx = wait_applied(c, among, timeout)
    snaps = [c.snapshot(i) for i in among]
    for k, i in enumerate(among):
        vc.check(snaps[k] is not None, "%s cannot answer a stale read",
                 c[i].name)
    for k, i in enumerate(among[1:], 1):
        for what, a, b in (("clusters", snaps[0][0], snaps[k][0]),
                           ("sites", snaps[0][1], snaps[k][1])):
            if a != b:
                da = {x["name"]: x for x in a}
                db = {x["name"]: x for x in b}
                diff = sorted(n for n in set(da) | set(db)
                              if da.get(n) != db.get(n))
                raise vc.TestFailure(
                    "%s of %s and %s differ at applied index %d: %s\n  "
                    "%s: %r\n  %s: %r" % (what, c[among[0]].name, c[i].name,
                                          idx, diff[:5], c[among[0]].name,
                                          [da.get(n) for n in diff[:2]],
                                          c[i].name,
                                          [db.get(n) for n in diff[:2]]))
    vc.log("state identical on %s at applied index %d: %d clusters, %d "
           "sites", [c[i].name for i in among], idx, len(snaps[0][0]),
           len(snaps[0][1]))
    return snaps[0]


def timing(what, seconds):
    """A timing figure, printed, never asserted."""
    vc.log("TIMING %s: %.2f s", what, seconds)


# --- background load ----------------------------------------------------------

class Load:
    """Threads creating clusters with request ids through a random agent
    first (then the others, so a killed agent fails over), over random
    subsets of `sites`. Results are kept; resolve() re-asks every
    uncertain one (exit 3/4) with its request id; check() verifies that
    every acknowledged create is in the state with its VLAN and sites and
    that nothing else of this load is."""

    def __init__(self, c, tag, sites, threads=2, seed=None, pause=0.0,
                 max_sites=None, timeout="8s"):
        self.c, self.tag, self.sites = c, tag, list(sites)
        self.nthreads, self.pause = threads, pause
        self.max_sites = max_sites or len(self.sites)
        self.timeout = timeout
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.results = []  # (name, sites, rid, Result)
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.errors = []
        self.threads = []

    def start(self):
        vc.log("load %s: %d threads, seed %d", self.tag, self.nthreads,
               self.seed)
        for t in range(self.nthreads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def _run(self, t):
        rng = random.Random(self.seed + t)
        k = 0
        try:
            while not self.stop_ev.is_set():
                sites = rng.sample(self.sites,
                                   rng.randint(1, self.max_sites))
                name = "%s-%d-%d" % (self.tag, t, k)
                k += 1
                rid = self.c.env.req_id(name)
                agents = [a for a in self.c.agents]
                rng.shuffle(agents)
                api = ",".join(a.api for a in agents)
                r = self.c.env.cli("--request-id", rid, "cluster", "create",
                                   name, "--sites", ",".join(sites),
                                   api=api, timeout=self.timeout)
                with self.lock:
                    self.results.append((name, sites, rid, r))
                if self.pause:
                    self.stop_ev.wait(rng.uniform(0, self.pause))
        except BaseException as e:  # reported by stop()
            self.errors.append(e)

    def acked_count(self):
        with self.lock:
            return sum(1 for x in self.results if x[3].rc == 0)

    def count(self):
        with self.lock:
            return len(self.results)

    def wait_acked(self, n, timeout):
        vc.wait_until(lambda: self.acked_count() >= n, timeout,
                      "%d acknowledged creates of load %s" % (n, self.tag))

    def stop(self, timeout=60):
        self.stop_ev.set()
        for th in self.threads:
            th.join(timeout)
            vc.check(not th.is_alive(), "a load thread hung")
        if self.errors:
            raise self.errors[0]
        by_rc = {}
        for x in self.results:
            by_rc[x[3].rc] = by_rc.get(x[3].rc, 0) + 1
        vc.log("load %s stopped: %d creates, by exit code %s", self.tag,
               len(self.results), dict(sorted(by_rc.items())))
        for name, sites, rid, r in self.results:
            vc.check(r.rc in (0, 1, 3, 4), "unexpected exit: %r", r)
            if r.rc == 1:
                vc.check(isinstance(r.doc, dict) and
                         r.doc.get("error") == "NOVLAN",
                         "create refused for a reason other than NOVLAN: %r",
                         r)

    def resolve(self, timeout=60):
        """Asks again, with the same request id, about every create whose
        outcome is unknown; returns {name: (vlan, sites)} of acknowledged
        ones (the first answer of a committed id is returned again)."""
        acked, refused = {}, set()
        deadline = time.monotonic() + timeout
        api = self.c.api_list(self.c.live())
        for name, sites, rid, r in self.results:
            while r.rc in (3, 4):
                vc.check(time.monotonic() < deadline,
                         "could not learn the outcome of %s: %r", rid, r)
                r = self.c.env.cli("--request-id", rid, "cluster", "create",
                                   name, "--sites", ",".join(sites), api=api,
                                   timeout="8s")
                if r.rc in (3, 4):
                    time.sleep(0.3)
            if r.rc == 0:
                vc.check(r.doc["name"] == name and r.doc["sites"] == sites,
                         "answer for %s: %r", rid, r)
                acked[name] = (r.doc["vlan"], sites)
            else:
                vc.check(r.doc.get("error") == "NOVLAN", "retry of %s: %r",
                         rid, r)
                refused.add(name)
        self.acked = acked
        return acked

    def check(self, clusters, pools):
        """clusters: a cluster list; pools: {site: set of VLANs}. Every
        acknowledged create is present with its VLAN and sites, and no
        other cluster of this load exists."""
        state = {x["name"]: x for x in clusters
                 if x["name"].startswith(self.tag + "-")}
        for name, (vlan, sites) in self.acked.items():
            vc.check(name in state, "acknowledged create %s (VLAN %d) is "
                     "missing", name, vlan)
            vc.check(state[name]["vlan"] == vlan, "%s acknowledged with VLAN "
                     "%d, state has %d", name, vlan, state[name]["vlan"])
            vc.check(state[name]["sites"] == sites, "%s sites %r, state %r",
                     name, sites, state[name]["sites"])
            for s in sites:
                vc.check(vlan in pools[s], "%s: VLAN %d outside %s's pool",
                         name, vlan, s)
        extra = set(state) - set(self.acked)
        vc.check(not extra, "clusters nobody was told about: %r",
                 sorted(extra))
        vc.log("load %s: all %d acknowledged creates present with their "
               "VLAN", self.tag, len(self.acked))


def check_no_vlan_twice(clusters):
    """I1: no VLAN held twice at a shared site."""
    seen = {}
    for x in clusters:
        for s in x["sites"]:
            key = (s, x["vlan"])
            vc.check(key not in seen, "VLAN %d given to %s and %s at %s",
                     x["vlan"], seen.get(key), x["name"], s)
            seen[key] = x["name"]


def site_pools(c, i):
    r = c.cli(i, "site", "list", timeout="10s")
    vc.check(r.rc == 0, "%r", r)
    return {s["name"]: vc.parse_pool(s["pool"]) for s in r.doc}


def lowest_common_free(clusters, pools, sites):
    """The VLAN a create over `sites` must get: the lowest that every site's
    pool holds and no cluster there uses."""
    used = set()
    for x in clusters:
        if set(x["sites"]) & set(sites):
            used.add(x["vlan"])
    # A releasing cluster keeps its VLAN at its sites: counted above too.
    common = set.intersection(*(pools[s] for s in sites)) - used
    return min(common) if common else None
