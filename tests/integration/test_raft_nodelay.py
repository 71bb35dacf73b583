#!/usr/bin/env python3
"""Three agents on the plain transport: every raft TCP connection (to or
from a peer port) has Nagle's algorithm off (TCP_NODELAY).

raft_uv_tcp leaves Nagle on; raft's connections are one-way, so the
receiver delays its ACKs and Nagle then held the next AppendEntries for
40+ ms (the bench's p99.9). The agent turns it off when raft gets a
stream (agent/consensus.c). The test inspects the agents' own sockets:
pidfd_getfd() duplicates each socket of the agent into this process,
where getsockopt() reads the option."""
import ctypes
import os
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

SYS_pidfd_getfd = 438  # x86_64 and aarch64 alike (asm-generic numbering)
_libc = ctypes.CDLL(None, use_errno=True)


def dup_from(pidfd, fd):
    """fd of another process duplicated into this one, or None."""
    r = _libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    if r < 0:
        err = ctypes.get_errno()
        if err in (1, 38):  # EPERM, ENOSYS: cannot inspect here
            raise vc.Skip("pidfd_getfd: %s" % os.strerror(err))
        return None  # closed meanwhile
    return r


def raft_sockets(agent, peer_ports):
    """[(local, remote, nodelay)] of the agent's TCP sockets that connect
    to or from a raft peer port."""
    out = []
    pidfd = os.pidfd_open(agent.pid)
    try:
        fddir = "/proc/%d/fd" % agent.pid
        for name in os.listdir(fddir):
            try:
                if not stat.S_ISSOCK(os.stat(os.path.join(fddir, name)).st_mode):
                    continue
            except FileNotFoundError:
                continue
            fd = dup_from(pidfd, int(name))
            if fd is None:
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                    continue
                try:
                    local, remote = s.getsockname(), s.getpeername()
                except OSError:
                    continue  # a listener
                if local[1] in peer_ports or remote[1] in peer_ports:
                    out.append((local, remote, s.getsockopt(
                        socket.IPPROTO_TCP, socket.TCP_NODELAY)))
            finally:
                s.close()
    finally:
        os.close(pidfd)
    return out


def test(env):
    if not hasattr(os, "pidfd_open"):
        raise vc.Skip("os.pidfd_open needs Python 3.9 and Linux 5.3")
    c = env.cluster(3)
    leader = c.wait_leader()
    # Traffic, so that every server has dialled both peers.
    r = c.cli(leader, "cluster", "create", "nd1", "--sites", "brno,praha")
    vc.check(r.rc == 0, "create failed: %r", r)
    peer_ports = {int(a.peer.rsplit(":", 1)[1]) for a in c.agents}

    def all_seen():
        found = {a.name: raft_sockets(a, peer_ports) for a in c.agents}
        # The leader dials both followers and accepts their connections;
        # a follower only talks to the leader (one each way).
        want = {a.name: 4 if a is c[leader] else 2 for a in c.agents}
        return found if all(len(found[n]) >= want[n] for n in want) else None

    found = vc.wait_until(all_seen, 20, "raft connections between all agents")
    for name, socks in found.items():
        for local, remote, nodelay in socks:
            vc.log("%s: %s:%d -> %s:%d TCP_NODELAY=%d", name, local[0],
                   local[1], remote[0], remote[1], nodelay)
            vc.check(nodelay != 0, "%s: raft connection %r -> %r has Nagle "
                     "on (TCP_NODELAY unset)", name, local, remote)


if __name__ == "__main__":
    vc.main(test)
