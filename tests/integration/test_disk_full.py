#!/usr/bin/env python3
"""A leader whose disk fills hands leadership over; commits go on.

Every agent's data dir is on its own small tmpfs, with 64 KiB raft
segments (`segment-size`). The leader's tmpfs is filled: raft_uv does
not report that (it retries its writes), so the agent notices the free
space itself, logs that it cannot write its log and transfers
leadership to a follower. A steady load (virtcloud-bench through the
followers) then completes with every create and release committed. Once
space is freed, the old leader catches up and every agent holds the same
state.

Without the hand-over the full leader stays leader (the followers
commit for it) while its log is not written. Needs root (mount).
"""
import atexit
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

TMPFS_MB = 4


class Tmpfs:
    def __init__(self, path):
        self.path, self.mounted = path, False
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%dm" % TMPFS_MB, "vc-disk-full", path],
                           capture_output=True)
        if r.returncode != 0:
            raise vc.Skip("cannot mount a tmpfs: %s" % r.stderr.decode())
        self.mounted = True
        atexit.register(self.umount)
        self.filler = os.path.join(path, "filler")

    def fill(self):
        n = 0
        with open(self.filler, "ab", buffering=0) as f:
            for size in (65536, 512):
                while True:
                    try:
                        n += f.write(b"\xaa" * size)
                    except OSError:
                        break
        return n

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def umount(self):
        if self.mounted:
            r = subprocess.run(["umount", self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.path])
            self.mounted = False


def test(env):
    if os.geteuid() != 0:
        raise vc.Skip("needs root to mount a tmpfs")
    bench = os.path.join(os.path.dirname(env.cli_path), "virtcloud-bench")
    c = env.cluster(3, start=False, pools=["100-3999"] * 3,
                    extra=["--segment-size", "64"])
    disks = []
    try:
        for a in c.agents:
            t = Tmpfs(os.path.join(env.dir, "tmpfs-" + a.name))
            disks.append(t)
            a.data_dir = os.path.join(t.path, "data")
        c.start()
        leader = c.wait_leader()
        old = c[leader].name
        n = disks[leader].fill()
        vc.log("filled %s's tmpfs (%d bytes)", old, n)
        now = c.wait_leader(exclude=(old,), timeout=20)
        vc.log("leadership moved from %s to %s", old, c[now].name)
        followers = c.followers(leader)
        p = subprocess.run([bench, "--api", c.api_list(followers),
                            "--count", "2000", "--concurrency", "8",
                            "--timeout", "20000"],
                           capture_output=True, timeout=300,
                           env=env.cli_env)
        out = p.stdout.decode() + p.stderr.decode()
        vc.log("bench:\n%s", out)
        vc.check(p.returncode == 0, "writes failed while %s's disk was "
                 "full:\n%s", old, out)
        text = c[leader].log_text()
        vc.check("cannot write the raft log" in text,
                 "%s never said its log disk failed", old)
        vc.check(c[leader].running(), "%s died of its full disk", old)
        now = c.wait_leader()
        vc.check(c[now].name != old, "leadership went back to %s while its "
                 "disk is full", old)
        disks[leader].unfill()
        r = c.cli(now, "cluster", "create", "after-disk", "--sites",
                  c[leader].name, timeout="20s")
        vc.check(r.rc == 0, "create after freeing the disk: %r", r)
        c.wait_converged(timeout=60)
    finally:
        for a in c.agents:
            if a.running():
                a.signal(15)
        for a in c.agents:
            if a.running():
                a.wait_exit(20)
        for t in disks:
            t.umount()


if __name__ == "__main__":
    vc.main(test)
