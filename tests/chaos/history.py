"""The chaos suite's history and its checker (no I/O: unit-tested on
fabricated histories by test_history.py).

A history is a list of operations and a list of reads, each with the
client's monotonic times: `inv` when the first attempt was sent, `resp`
when the outcome became known (the end-of-run resolution included).

Op: one client command with one request id, sent one or more times (same
id each time). Its outcome:
  ok      an answer with a result payload, code 0: committed and applied
  fail    an answer with a result payload, code != 0: committed, changed
          nothing (NOVLAN, CONFLICT, ...)
  unsent  every attempt was answered TIMEOUT, NOQUORUM or UNAVAILABLE
          without a payload: the agents say it never reached raft, so it
          must never take effect
  indet   a timeout, a lost connection, UNKNOWN or SHUTDOWN: may or may
          not have taken effect until resolved (the same id sent again
          returns the first result, or applies it now)

Read: a CLUSTERS answer ({name: (vlan, sites)}) from one agent, `linear`
if it went through the leader's barrier (not STALE).

Checks, each returning a list of violation strings:
  check_exactly_once   two definite answers for one request id differ (I2)
  check_holds          two clusters held one VLAN at one site at a moment
                       every linearization agrees on (I1, over time)
  check_reads          I1 inside every read; a linearizable read misses an
                       acknowledged create or extension, or shows an
                       acknowledged release's cluster again (I3); a read
                       shows a cluster nobody created or whose create
                       failed, or with another VLAN than acknowledged
  check_final          the converged state against the model: exactly the
                       clusters whose create took effect and that no
                       release removed, with the acknowledged VLAN and
                       sites; I1 and pools
"""

CREATE, EXTEND, RELEASE = "create", "extend", "release"
DEFINITE = ("ok", "fail")


class Op:
    """One request id. `args`: create: sites (list); extend: site."""

    def __init__(self, rid, kind, name, args, inv):
        self.rid, self.kind, self.name, self.args = rid, kind, name, args
        self.inv = inv
        self.resp = None
        self.outcome = "indet"
        self.result = None      # [code, vlan, gen, msg] of the first answer
        self.attempts = []      # (agent, t0, t1, class, code, result)
        self.resolved = False   # outcome learnt only at the end

    def add_attempt(self, agent, t0, t1, cls, code, result):
        """Records one attempt and folds it into the outcome: the first
        definite answer wins (later ones are compared by
        check_exactly_once)."""
        self.attempts.append((agent, t0, t1, cls, code, result))
        if self.outcome in DEFINITE:
            return
        if cls in DEFINITE:
            self.outcome, self.result, self.resp = cls, result, t1
        elif cls == "unsent" and all(a[3] == "unsent" for a in self.attempts):
            self.outcome, self.resp = "unsent", t1
        else:
            self.outcome, self.resp = "indet", t1

    @property
    def vlan(self):
        return self.result[1] if self.result else None

    def took_effect(self):
        return self.outcome == "ok"

    def __repr__(self):
        return "<%s %s %s %r %s [%.3f..%s] %r>" % (
            self.rid, self.kind, self.name, self.args, self.outcome, self.inv,
            "%.3f" % self.resp if self.resp is not None else "-",
            self.result)


class Read:
    def __init__(self, agent, linear, inv, resp, clusters):
        self.agent, self.linear, self.inv, self.resp = agent, linear, inv, resp
        self.clusters = clusters  # {name: (vlan, frozenset(sites))}


class Model:
    """Per cluster name: its create, extends and releases, in issue order."""

    def __init__(self, ops):
        self.create, self.extends, self.releases = {}, {}, {}
        self.errors = []
        for op in ops:
            if op.kind == CREATE:
                if op.name in self.create:
                    self.errors.append("two creates of %s: %r and %r" % (
                        op.name, self.create[op.name], op))
                self.create[op.name] = op
            elif op.kind == EXTEND:
                self.extends.setdefault(op.name, []).append(op)
            elif op.kind == RELEASE:
                self.releases.setdefault(op.name, []).append(op)

    def release_inv(self, name):
        """Earliest invocation of a release of `name` that may have taken
        effect (ok or indet), or None."""
        ts = [r.inv for r in self.releases.get(name, ())
              if r.outcome in ("ok", "indet")]
        return min(ts) if ts else None

    def released(self, name):
        """Acknowledged release (the earliest), or None."""
        ok = [r for r in self.releases.get(name, ()) if r.outcome == "ok"]
        return min(ok, key=lambda r: r.resp) if ok else None

    def expected(self):
        """{name: (vlan, frozenset(sites))} the final state must hold."""
        out = {}
        for name, c in self.create.items():
            if not c.took_effect() or self.released(name):
                continue
            sites = set(c.args)
            for e in self.extends.get(name, ()):
                if e.took_effect():
                    sites.add(e.args)
            out[name] = (c.vlan, frozenset(sites))
        return out


# --- checks ------------------------------------------------------------------

def check_exactly_once(ops):
    bad = []
    for op in ops:
        answers = [a for a in op.attempts if a[3] in DEFINITE]
        for a in answers[1:]:
            if list(a[5]) != list(answers[0][5]):
                bad.append("I2: %s answered %r at %s (t=%.3f), then %r at %s "
                           "(t=%.3f)" % (op.rid, answers[0][5], answers[0][0],
                                         answers[0][2], a[5], a[0], a[2]))
    return bad


def holds(model):
    """(site, vlan) -> [(cluster, start_inv, start_resp, end_inv|None)]: the
    windows in which each cluster may have started and stopped holding a
    VLAN at a site, from acknowledged creates and extensions."""
    out = {}
    for name, c in model.create.items():
        if not c.took_effect():
            continue
        end = model.release_inv(name)
        starts = [(s, c) for s in c.args]
        starts += [(e.args, e) for e in model.extends.get(name, ())
                   if e.took_effect()]
        for site, op in starts:
            out.setdefault((site, c.vlan), []).append(
                (name, op.inv, op.resp, end))
    return out


def check_holds(model):
    """Two holds of one (site, VLAN) by different clusters overlap in every
    linearization when neither could have ended before the other began:
    a hold ends at its release's linearization point, no earlier than the
    release was sent; it begins no later than its create was answered."""
    bad = []
    for (site, vlan), hs in sorted(holds(model).items()):
        hs.sort(key=lambda h: h[1])
        for i, a in enumerate(hs):
            for b in hs[i + 1:]:
                if a[0] == b[0]:
                    continue
                a_first = a[3] is not None and a[3] < b[2]
                b_first = b[3] is not None and b[3] < a[2]
                if not a_first and not b_first:
                    bad.append("I1: VLAN %d at %s held by %s (from "
                               "[%.3f..%.3f], released from %s) and %s "
                               "(from [%.3f..%.3f], released from %s)"
                               % (vlan, site, a[0], a[1], a[2], _t(a[3]),
                                  b[0], b[1], b[2], _t(b[3])))
    return bad


def _t(x):
    return "never" if x is None else "%.3f" % x


def check_state_i1(clusters, pools, where):
    """I1 and pools inside one state {name: (vlan, sites)}."""
    bad = []
    seen = {}
    for name in sorted(clusters):
        vlan, sites = clusters[name]
        for s in sorted(sites):
            if (s, vlan) in seen:
                bad.append("I1: %s: VLAN %d at %s held by %s and %s"
                           % (where, vlan, s, seen[(s, vlan)], name))
            seen[(s, vlan)] = name
            if pools is not None and s in pools and vlan not in pools[s]:
                bad.append("%s: %s has VLAN %d outside %s's pool"
                           % (where, name, vlan, s))
    return bad


def check_reads(model, reads, pools, prefix):
    """See the module comment. Only clusters named with `prefix` are ours;
    others (none expected) are phantoms too."""
    bad = []
    acked = [(n, c.resp, c.vlan) for n, c in model.create.items()
             if c.took_effect()]
    rel = {n: model.release_inv(n) for n in model.create}
    for r in reads:
        where = "read at %s [%.3f..%.3f]%s" % (
            r.agent, r.inv, r.resp, "" if r.linear else " (stale)")
        bad += check_state_i1(r.clusters, pools, where)
        for name, (vlan, sites) in r.clusters.items():
            c = model.create.get(name) if name.startswith(prefix) else None
            if c is None or c.inv > r.resp:
                bad.append("%s: shows %s, which no create asked for "
                           "before" % (where, name))
            elif c.outcome in ("fail", "unsent"):
                bad.append("%s: shows %s, whose create was answered %s %r"
                           % (where, name, c.outcome, c.result or
                              c.attempts[-1][4]))
            elif c.outcome == "ok" and vlan != c.vlan:
                bad.append("%s: %s has VLAN %d, acknowledged %d"
                           % (where, name, vlan, c.vlan))
        if not r.linear:
            continue
        for name, t_ack, vlan in acked:
            if t_ack >= r.inv or name in r.clusters:
                continue
            if rel[name] is not None and rel[name] < r.resp:
                continue
            bad.append("I3: %s misses %s, acknowledged at %.3f with VLAN %d"
                       % (where, name, t_ack, vlan))
        for name, reqs in model.releases.items():
            for q in reqs:
                if q.outcome == "ok" and q.resp < r.inv and \
                        name in r.clusters:
                    bad.append("%s: shows %s, whose release was acknowledged "
                               "at %.3f" % (where, name, q.resp))
        for name, exts in model.extends.items():
            if name not in r.clusters:
                continue
            for e in exts:
                if e.outcome == "ok" and e.resp < r.inv and \
                        e.args not in r.clusters[name][1] and \
                        (rel.get(name) is None or rel[name] >= r.resp):
                    bad.append("I3: %s: %s lacks site %s, whose extension "
                               "was acknowledged at %.3f"
                               % (where, name, e.args, e.resp))
    return bad


def check_final(model, final, pools, prefix):
    """final: {name: (vlan, sites)} every agent agreed on at the end."""
    bad = check_state_i1(final, pools, "final state")
    exp = model.expected()
    for name in sorted(set(exp) | set(final)):
        if name in exp and name not in final:
            c = model.create[name]
            bad.append("I3: acknowledged %s (VLAN %d, create answered at "
                       "%.3f%s) is missing from the final state"
                       % (name, c.vlan, c.resp,
                          ", resolved at the end" if c.resolved else ""))
        elif name in final and name not in exp:
            c = model.create.get(name) if name.startswith(prefix) else None
            rel = model.released(name)
            if rel:
                bad.append("released %s (release acknowledged at %.3f) is "
                           "back in the final state" % (name, rel.resp))
            elif c is None:
                bad.append("final state holds %s, which nobody created"
                           % name)
            else:
                bad.append("final state holds %s, whose create ended %s %r"
                           % (name, c.outcome, c.result))
        elif final[name] != exp[name]:
            bad.append("final state has %s as VLAN %d at %s; the history "
                       "says VLAN %d at %s" % (
                           name, final[name][0], sorted(final[name][1]),
                           exp[name][0], sorted(exp[name][1])))
    return bad


def check_resolved(ops):
    return ["outcome never learnt: %r" % op for op in ops
            if op.outcome == "indet"]


def check_all(ops, reads, final, pools, prefix):
    """Every check; returns the violations (empty: the history is valid)."""
    model = Model(ops)
    bad = list(model.errors)
    bad += check_resolved(ops)
    bad += check_exactly_once(ops)
    bad += check_holds(model)
    bad += check_reads(model, reads, pools, prefix)
    if final is not None:
        bad += check_final(model, final, pools, prefix)
    return bad


def summary(ops, reads):
    by = {}
    for op in ops:
        k = "%s %s%s" % (op.kind, op.outcome, " (resolved)" if op.resolved
                         else "")
        by[k] = by.get(k, 0) + 1
    attempts = sum(len(op.attempts) for op in ops)
    return ("%d operations (%d attempts), %d reads (%d linearizable); %s"
            % (len(ops), attempts, len(reads),
               sum(1 for r in reads if r.linear),
               ", ".join("%s: %d" % kv for kv in sorted(by.items()))))
