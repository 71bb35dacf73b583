#!/usr/bin/env python3
"""Hostile raft records from an authenticated site (agent/transport.c
raft_records()/deliver(), proto/raftmsg.h).

A 3-site keyed cluster; vc-peer-probe (peer_probe.c) completes a raft
channel handshake to the leader L's peer port as follower F, with F's own
key and address, and sends records built here exactly as proto/raftmsg.h
lays them out (u32 BE length, body with little-endian fields):

a. an unknown type byte: closed at once, "raft message: unknown type" in
   L's log with F's name;
b. a record length of 0, and one over PROTO_RAFTMSG_MAX: closed, logged
   ("raft record of N bytes");
c. an AppendEntries that announces 0xffffffff entries in a short body:
   closed and logged, L alive and still leading (nothing huge allocated:
   ASan would report an allocation that size);
d. a well-formed, stale RequestVote (term 1, pre_vote) split across two
   frames, then a complete one: the connection stays open and the
   leadership and term are unchanged; the same records followed by a bad
   one on a new connection are parsed past (the bad one closes it);
e. that vote again, from F's key but with another address in the
   handshake: L answers F where it already reaches F and dials nothing
   at the claimed address;
f. an InstallSnapshot and an AppendEntries (one entry) at L's own term,
   as if F led it too: closed and logged, L alive and leading.

Before and after, the cluster commits creates and L runs and leads.
"""
import os
import select
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
from test_secure_peer import create, secure_cluster  # noqa: E402

# enum raft_message_type (raft.h)
APPEND_ENTRIES, REQUEST_VOTE, INSTALL_SNAPSHOT = 1, 3, 5
PROTO_RAFTMSG_MAX = 256 << 20
QUICK_MS = 2000  # "closed at once", with ASan on a shared machine


def record(body):
    return struct.pack(">I", len(body)) + body


def request_vote(term, candidate, last_index, last_term, pre_vote=True):
    flags = 2 if pre_vote else 0
    return bytes([REQUEST_VOTE, 2]) + struct.pack(
        "<QQQQB", term, candidate, last_index, last_term, flags)


def site_id(name):
    """consensus_site_id(): FNV-1a 64 of the name, top bit cleared."""
    h = 1469598103934665603
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
    return (h & 0x7fffffffffffffff) or 1


class Prober:
    def __init__(self, env, L, F, keys):
        build = os.path.dirname(os.path.dirname(os.path.abspath(env.agent)))
        self.exe = os.path.join(build, "tests", "integration",
                                "vc-peer-probe")
        vc.check(os.access(self.exe, os.X_OK), "%s not built", self.exe)
        self.base = [self.exe, "--peer", L.peer, "--key", keys[F.name][0],
                     "--cluster-id", "itest", "--expect", keys[L.name][1],
                     "--address", F.peer, "--purpose", "raft"]

    def run(self, sends, wait_ms=3000, pause_ms=0, address=None):
        """Sends each bytes object of sends as one channel_send() (pause_ms
        apart); returns the close time in ms, or None if the connection
        stayed open."""
        argv = list(self.base) + ["--wait", str(wait_ms), "--pause",
                                  str(pause_ms)]
        if address:
            argv[argv.index("--address") + 1] = address
        for s in sends:
            argv += ["--send", s.hex()]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        vc.check(p.returncode == 0, "probe exited %d: %s%s", p.returncode,
                 p.stdout, p.stderr)
        out = p.stdout.strip()
        if out == "open":
            return None
        vc.check(out.startswith("closed after ") and out.endswith(" ms"),
                 "probe said %r", out)
        return int(out.split()[2])


def leading(c, li, term=None):
    st = c.status(li)
    vc.check(st is not None and st["role"] == "leader",
             "%s no longer leads: %r", c[li].name, st)
    vc.check(c[li].running(), "%s died", c[li].name)
    if term is not None:
        vc.check(st["term"] == term, "term moved from %d: %r", term, st)
    return st


def expect_closed(probe, L, sends, marks, what, pause_ms=0):
    before = [L.log_text().count(m) for m in marks]
    took = probe.run(sends, pause_ms=pause_ms)
    vc.check(took is not None and took < QUICK_MS,
             "%s: not closed within %d ms (%r)", what, QUICK_MS, took)
    for m, n in zip(marks, before):
        vc.wait_until(lambda: L.log_text().count(m) > n, 5,
                      "%r in %s's log after %s" % (m, L.name, what))
    line = [x for x in L.log_text().splitlines() if marks[-1] in x][-1]
    vc.log("%s: closed after %d ms: %s", what, took, line.split(": ", 1)[-1])
    return line


def test(env):
    c, keys = secure_cluster(env)
    li = c.wait_leader()
    L = c[li]
    F = c[c.followers(li)[0]]
    vc.log("leader %s, probing as %s", L.name, F.name)
    create(c, li, "before")
    st = leading(c, li)
    term = st["term"]
    vc.check(term > 1, "cluster still at term %d: a term-1 vote is not "
             "stale", term)
    probe = Prober(env, L, F, keys)

    # (a) an unknown type
    line = expect_closed(probe, L, [record(bytes([0x09, 0x00]))],
                         ["raft message: unknown type 9"], "unknown type")
    vc.check("peer 127.0.0.1:" in line and F.name in line and
             "connection closed" in line, "line without peer/site: %r", line)

    # (b) record lengths of 0 and over the limit
    expect_closed(probe, L, [b"\0\0\0\0"], ["raft record of 0 bytes"],
                  "length 0")
    big = PROTO_RAFTMSG_MAX + 1
    expect_closed(probe, L, [struct.pack(">I", big) + b"\0" * 16],
                  ["raft record of %d bytes" % big], "length over the limit")

    # (c) 0xffffffff entries announced in a short body
    ae = bytes([APPEND_ENTRIES, 0]) + struct.pack(
        "<QQQQI", term, 1, 1, 1, 0xffffffff) + b"\0" * 13
    expect_closed(probe, L, [record(ae)],
                  ["raft message: 4294967295 entries in 13 bytes"],
                  "huge entry count")
    leading(c, li)

    # (d) a stale pre-vote, split across two frames read apart (the first
    # part waits in the pump's buffer), then a whole one: decoded, handed
    # to raft, rejected there; the connection stays open.
    rv = record(request_vote(1, site_id(F.name), 1, 1))
    before = L.log_text().count("raft message:")
    took = probe.run([rv[:7], rv[7:] + rv], wait_ms=1500, pause_ms=300)
    vc.check(took is None, "a well-formed stale RequestVote closed the "
             "connection after %r ms", took)
    vc.check(L.log_text().count("raft message:") == before,
             "a well-formed RequestVote logged as malformed")
    leading(c, li, term)
    vc.check(c.wait_leader(timeout=10) == li, "leadership moved")
    # The same records then a bad one: parsed past the good ones.
    expect_closed(probe, L, [rv[:7], rv[7:] + rv,
                             record(bytes([0x09, 0x00]))],
                  ["raft message: unknown type 9"], "good records then bad",
                  pause_ms=300)

    # (e) the same vote from F's key, claiming another address in the
    # handshake: raft's answer goes to F where L already reaches it, not to
    # the claimed address (which would tear down L's connection to F).
    decoy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    decoy.bind(("127.0.0.1", 0))
    decoy.listen(4)
    claimed = "127.0.0.1:%d" % decoy.getsockname()[1]
    took = probe.run([rv], wait_ms=1500, address=claimed)
    vc.check(took is None, "stale RequestVote (claimed address) closed "
             "after %r ms", took)
    dialled, _, _ = select.select([decoy], [], [], 2.0)
    decoy.close()
    vc.check(not dialled, "%s dialled %s, the address claimed in a "
             "handshake with %s's key, instead of %s", L.name, claimed,
             F.name, F.peer)
    leading(c, li, term)

    # (e2) a vote asked for another site's id on F's channel: refused.
    other = [a for a in c.agents if a.name not in (L.name, F.name)][0]
    expect_closed(probe, L, [record(request_vote(1, site_id(other.name), 1,
                                                 1))],
                  ["RequestVote for candidate %d, not this site's id" %
                   site_id(other.name)], "RequestVote for another site")
    leading(c, li, term)

    # (f) F claiming to lead L's own term: an InstallSnapshot, then an
    # AppendEntries with one entry. Raft only asserts that this never
    # happens; L must close the connection, not take it (libraft as
    # packaged, without its assertions, double-frees the entries).
    commit = c.status(li)["commit"]
    snap = bytes([INSTALL_SNAPSHOT, 0]) + struct.pack(
        "<QQQQI", term, commit + 100, term, commit + 100, 1) + struct.pack(
        "<QBH", site_id(F.name), 1, len(F.peer)) + F.peer.encode() + b"data"
    expect_closed(probe, L, [record(snap)],
                  ["InstallSnapshot of term %d to this site, its leader" %
                   term], "InstallSnapshot in L's term")
    leading(c, li, term)
    ae = bytes([APPEND_ENTRIES, 0]) + struct.pack(
        "<QQQQI", term, commit, term, commit + 1, 1) + struct.pack(
        "<QBI", term, 1, 4) + b"abcd"
    expect_closed(probe, L, [record(ae)],
                  ["AppendEntries of term %d to this site, its leader" %
                   term], "AppendEntries in L's term")
    leading(c, li, term)

    # After all of it: L still leads (same term) and the cluster commits.
    create(c, li, "after")
    leading(c, li, term)
    clusters, _ = c.wait_converged()
    vc.check({x["name"] for x in clusters} >= {"before", "after"}, "%r",
             clusters)
    for a in c.agents:
        vc.check(a.running(), "%s died", a.name)
    for a in c.agents:
        a.signal(15)
    for a in c.agents:
        rc = a.wait_exit(20)
        vc.check(rc == 0, "%s exited %r after SIGTERM", a.name, rc)


if __name__ == "__main__":
    vc.main(test)
