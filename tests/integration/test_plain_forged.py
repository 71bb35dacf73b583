#!/usr/bin/env python3
"""Forged raft messages at a leader's plain peer port (agent/consensus.c
guard_recv(), consensus_second_leader()).

libraft 0.22.1 (assertions compiled out) corrupts a leader that receives
an AppendEntries or InstallSnapshot carrying the very term it leads: a
double free of the entries' batch, then a SEGV. Without keys the agent
uses raft_uv_tcp, which authenticates nobody, so anyone who reaches the
peer port can send one. The agent drops such a message before raft sees
it, with a rate-limited warning (one per 5 s).

A plain 3-site cluster; this test dials the leader L's peer port as
raft_uv_tcp would, naming a follower F's raft id and address in the
handshake, and sends one message at L's current term (virtcloud_raft_term
of L's /metrics), each case on its own connection and more than 5 s after
the previous warning:

a. an AppendEntries carrying one entry;
b. an AppendEntries without entries (a heartbeat);
c. an InstallSnapshot (the group's configuration, 8 bytes of data).

After each, L's log has the warning naming F's id and address, the type
and the term; 1.5 s later L still runs and leads at the same term.
Before and after, creates commit (through L and through F). Last, L
exits 0 on SIGTERM with no sanitizer report: unguarded (the check
disabled), the 1-entry AppendEntries got the forged entry committed and
every site stopped on it, and the heartbeat and the InstallSnapshot left
L leading but with a leak from raft_step() that LeakSanitizer reports at
exit.

The encoding follows libraft's raft_uv (cowsql/raft src/uv_tcp_*.c,
uv_encoding.c, configuration.c), all integers little-endian:

  handshake  u64 protocol (1), u64 id, u64 address length (NUL
             included, padded to 8), the address NUL-padded
  message    preamble: u8 type, u8 0, u8 version, u8 0, u32 0; u64 header
             length; the header; then the payload (entries' data, or the
             snapshot's data)
  AppendEntries header: u64 term, prev_log_index, prev_log_term,
             leader_commit; u64 n entries; per entry u64 term, u8 type,
             3 bytes unused, u32 data length; u64 unused
  InstallSnapshot header: u64 term, last_index, last_term, conf_index,
             conf length; the configuration (u8 format 1, u64 n; per
             server u64 id, address NUL-terminated, u8 role; padded to 8);
             u64 data length; u64 unused
"""
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402
from test_metrics import scrape, v  # noqa: E402

HANDSHAKE_PROTOCOL = 1               # raft_uv_tcp's handshake version
APPEND_ENTRIES, INSTALL_SNAPSHOT = 1, 5   # enum raft_message_type
RAFT_COMMAND = 1                     # entry type
RAFT_VOTER = 1                       # server role
CONF_FORMAT = 1                      # configuration encoding version
MARK = "which this site leads: dropped"
RATE_MS = 5000                       # guard_recv()'s log_limit period
HOLD_S = 1.5                         # L must still run this long after
EXIT_S = 15.0                        # SIGTERM to exit (ASan, shared machine)


def site_id(name):
    """consensus_site_id(): FNV-1a 64 of the name, top bit cleared."""
    h = 1469598103934665603
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
    return (h & 0x7fffffffffffffff) or 1


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def handshake(raft_id, address):
    addr = pad8(address.encode() + b"\0")
    return struct.pack("<QQQ", HANDSHAKE_PROTOCOL, raft_id, len(addr)) + addr


def message(mtype, header, payload=b""):
    preamble = bytes([mtype, 0, 0, 0]) + struct.pack("<I", 0)
    return preamble + struct.pack("<Q", len(header)) + header + payload


def append_entries(term, prev_index, prev_term, commit, entries):
    """entries: [(term, data)], data a multiple of 8 bytes long (raft_uv
    sizes the payload as the sum of the lengths, then pads each to 8)."""
    h = struct.pack("<QQQQQ", term, prev_index, prev_term, commit,
                    len(entries))
    payload = b""
    for eterm, data in entries:
        assert len(data) % 8 == 0 and data
        h += struct.pack("<QB3xI", eterm, RAFT_COMMAND, len(data))
        payload += data
    h += struct.pack("<Q", 0)
    return message(APPEND_ENTRIES, h, payload)


def configuration(servers):
    b = struct.pack("<BQ", CONF_FORMAT, len(servers))
    for sid, address in servers:
        b += struct.pack("<Q", sid) + address.encode() + b"\0"
        b += bytes([RAFT_VOTER])
    return pad8(b)


def install_snapshot(term, last_index, last_term, conf_index, servers,
                     data):
    conf = configuration(servers)
    h = struct.pack("<QQQQQ", term, last_index, last_term, conf_index,
                    len(conf)) + conf + struct.pack("<QQ", len(data), 0)
    return message(INSTALL_SNAPSHOT, h, data)


def raft_gauges(agent):
    fams = scrape(agent)
    return (int(v(fams, "virtcloud_raft_term")),
            int(v(fams, "virtcloud_raft_last_index")),
            int(v(fams, "virtcloud_raft_commit_index")))


def leading(c, li, term):
    L = c[li]
    vc.check(L.running(), "%s died (exit %r)", L.name,
             L.proc.returncode if L.proc else None)
    st = c.status(li)
    vc.check(st is not None and st["role"] == "leader",
             "%s no longer leads: %r", L.name, st)
    vc.check(st["term"] == term, "%s: term moved from %d: %r", L.name, term,
             st)
    vc.check(raft_gauges(L)[0] == term, "%s /metrics term moved from %d",
             L.name, term)


def create(c, i, name):
    r = c.cli(i, "cluster", "create", name, "--sites", "brno,praha",
              timeout="10s")
    vc.check(r.rc == 0, "create %s through %s: %r", name, c[i].name, r)


def test(env):
    c = env.cluster(3)
    li = c.wait_leader()
    L = c[li]
    F = c[c.followers(li)[0]]
    fid = site_id(F.name)
    vc.log("leader %s (pid %d), forging as %s (id %d)", L.name, L.pid,
           F.name, fid)
    create(c, li, "before")
    st = c.status(li)
    term, last, commit = raft_gauges(L)
    vc.check(st["term"] == term, "status term %r, /metrics %d", st, term)
    vc.check(last >= 1 and commit >= 1, "last %d commit %d", last, commit)
    servers = [(site_id(a.name), a.peer) for a in c.agents]
    data = b"forged!\0"

    cases = [
        ("AppendEntries, 1 entry", "AppendEntries",
         append_entries(term, last, term, commit, [(term, data)])),
        ("AppendEntries, heartbeat", "AppendEntries",
         append_entries(term, last, term, commit, [])),
        ("InstallSnapshot", "InstallSnapshot",
         install_snapshot(term, last, term, 1, servers, data)),
    ]
    last_warn = None
    for what, kind, msg in cases:
        # One warning per RATE_MS: the next one must not be suppressed.
        if last_warn is not None:
            time.sleep(max(0.0, last_warn + RATE_MS / 1000 + 0.3
                           - time.monotonic()))
        n = L.log_text().count(MARK)
        s = vc.connect(L.peer)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(handshake(fid, F.peer) + msg)
            vc.wait_until(lambda: L.log_text().count(MARK) > n
                          or not L.running(), 10,
                          "%r in %s's log after %s" % (MARK, L.name, what))
            last_warn = time.monotonic()
            vc.check(L.running(), "%s died after %s", L.name, what)
            line = [x for x in L.log_text().splitlines() if MARK in x][-1]
            want = "raft message from id %d at %s: %s of term %d, %s" % (
                fid, F.peer, kind, term, MARK)
            vc.check(want in line, "%s: warning %r lacks %r", what, line,
                     want)
            vc.log("%s: %s", what, line.split(": ", 1)[-1])
            time.sleep(HOLD_S)
            leading(c, li, term)
        finally:
            s.close()

    # The group still commits, through L and through F, at the same term.
    create(c, li, "after-leader")
    create(c, c.index(F.name), "after-follower")
    leading(c, li, term)
    clusters, _ = c.wait_converged()
    names = sorted(x["name"] for x in clusters)
    vc.check(names == ["after-follower", "after-leader", "before"],
             "clusters %r", names)

    # L's raft closes cleanly: what an unguarded message did to a leader
    # shows here too (LeakSanitizer reports from raft_step(), scanned for
    # by vc.check_logs(); exit status non-zero).
    vc.log("SIGTERM to %s", L.name)
    L.signal(signal.SIGTERM)
    rc = L.wait_exit(EXIT_S)
    vc.check(rc == 0, "%s did not exit 0 within %.0f s after SIGTERM: %r",
             L.name, EXIT_S, rc)
    c.wait_leader(among=c.followers(li), exclude=(L.name,), timeout=20)


if __name__ == "__main__":
    vc.main(test)
