#!/usr/bin/env python3
"""Three agents: raft's open segments hold written zeros, not unwritten
(fallocated) extents, and the log still works across a restart.

raft_uv prepares open segments with posix_fallocate(); the agent replaces
it with one that writes zeros (agent/consensus.c), so that appends are
plain overwrites that libraft can submit from the loop (RWF_NOWAIT).
Unwritten extents and holes both read back as a hole through SEEK_HOLE
(ext4 and xfs report an unwritten extent without cached pages as a hole),
so a fully written segment has its first hole at its end."""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


def first_hole(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.fstat(fd).st_size, os.lseek(fd, 0, os.SEEK_HOLE)
    finally:
        os.close(fd)


def segments(agent):
    return sorted(glob.glob(os.path.join(agent.data_dir, "open-*")))


def check_written(c):
    seen = 0
    for a in c.agents:
        for path in segments(a):
            try:
                size, hole = first_hole(path)
            except FileNotFoundError:
                continue  # closed (renamed) meanwhile
            vc.log("%s: %s: %d bytes, first hole at %d", a.name,
                   os.path.basename(path), size, hole)
            vc.check(size >= 8 << 20, "%s: %s is %d bytes, not a full "
                     "segment", a.name, path, size)
            vc.check(hole == size, "%s: %s has a hole or unwritten extent "
                     "at %d of %d: preallocated, not written", a.name,
                     path, hole, size)
            seen += 1
    return seen


def test(env):
    c = env.cluster(3)
    leader = c.wait_leader()
    if not hasattr(os, "SEEK_HOLE"):
        raise vc.Skip("no SEEK_HOLE on this platform")
    for i in range(5):
        r = c.cli(leader, "cluster", "create", "pre%d" % i,
                  "--sites", "brno,praha")
        vc.check(r.rc == 0, "create failed: %r", r)
    seen = vc.wait_until(lambda: check_written(c), 10,
                         "open segments in every data dir")
    vc.check(seen >= 3, "expected open segments at every agent, saw %d", seen)

    # The zero-filled segments are a valid log: restart one agent and read
    # the clusters back through it.
    f = c.followers(leader)[0]
    c[f].kill9()
    c[f].start()
    clusters, _ = c.wait_converged()
    names = sorted(x["name"] for x in clusters)
    vc.check(names == ["pre%d" % i for i in range(5)], "%r", names)
    check_written(c)


if __name__ == "__main__":
    vc.main(test)
