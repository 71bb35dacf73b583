#!/usr/bin/env python3
"""Chaos against real processes (issue "Prove it", part 2).

Five virtcloud-agent processes on loopback (random free ports, one temp
dir; one agent's data dir on a small tmpfs) take a steady client load of
creates, extends and releases from random sites, each command with its
own request id, while a nemesis kills -9, pauses (SIGSTOP/SIGCONT) and
restarts agents, cuts, blackholes and delays raft links through a
fault-injecting proxy (tools/chaos_proxy.py: every agent's raft address
in the bootstrap list is its proxy front), tears the open raft segment of
a killed agent at a random byte before its restart, and fills the tmpfs.
Every request and outcome is recorded; at the end the faults are healed,
every agent restarted and converged, outcomes still unknown are learnt by
sending the same request id again, and history.py checks the history
(docs/testing.md, "chaos").

    chaos.py AGENT CLI [--seconds N] [--seed S] [--clients N]

VC_CHAOS_SECONDS and VC_CHAOS_SEED do the same as the flags; VC_SECURE=1
gives every agent a key (raft over the encrypted transport). The seed
drives the workload and the nemesis (process timing is not
deterministic, so a replay repeats the same schedule, not the same
interleaving). VC_KEEP=1 keeps the temp dir; the history is written there
as history.json.
"""
import argparse
import atexit
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import history  # noqa: E402
import vc  # noqa: E402

PROXY = os.path.join(HERE, "..", "..", "tools", "chaos_proxy.py")

# Small, overlapping pools: VLANs are reused all the time and some creates
# find no common VLAN.
POOLS = ["100-139", "110-149", "100-114,125-149", "100-149", "105-144"]
PREFIX = "ch-"
LEASE_MS = 86400000           # a day: no lease expires during a run
REQ_TIMEOUT_MS = 2500         # the agent's deadline per attempt
SOCK_SLACK_S = 1.5            # we wait that much longer for its answer
ATTEMPTS = 4                  # at most, per operation during the load
MAX_DOWN = 2                  # agents killed, paused or full at once
DISK_AGENT = 4                # its data dir is on the tmpfs
TMPFS_MB = 48

E_NOQUORUM, E_UNAVAILABLE, E_TIMEOUT = -10012, -10013, -10014
E_MALFORMED, E_INVAL, E_VERSION = -10009, -10006, -10010
OP_SUBMIT, OP_STATUS, OP_SITES, OP_CLUSTERS = 1, 2, 3, 4
F_STALE = 1
T_CREATE, T_EXTEND, T_RELEASE = 9, 10, 13

_t0 = time.monotonic()


def now():
    return time.monotonic() - _t0


# --- a direct client -------------------------------------------------------

class Conn:
    """One TCP connection to an agent's client API; one request at a time."""

    def __init__(self, addr):
        self.addr = addr
        self.sock = vc.connect(addr, timeout=2)
        self.seq = 0

    def call(self, op, body, flags=0, timeout_ms=REQ_TIMEOUT_MS):
        """The response list; raises OSError/socket.timeout/EOFError."""
        self.seq += 1
        req = vc.mp_pack([1, self.seq, op, flags, timeout_ms, body])
        self.sock.sendall(vc.frame(req))
        deadline = time.monotonic() + timeout_ms / 1000.0 + SOCK_SLACK_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no answer")
            r = vc.recv_frame(self.sock, left)
            if r is None:
                raise EOFError("connection closed")
            if r[1] == self.seq:
                return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Client:
    """Connections by agent, dropped after any error."""

    def __init__(self, agents):
        self.agents = agents
        self.conns = {}

    def call(self, i, op, body, flags=0, timeout_ms=REQ_TIMEOUT_MS):
        c = self.conns.get(i)
        if c is None:
            c = self.conns[i] = Conn(self.agents[i].api)
        try:
            return c.call(op, body, flags, timeout_ms)
        except BaseException:
            c.close()
            self.conns.pop(i, None)
            raise

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}


def submit_body(op):
    if op.kind == history.CREATE:
        t, fields = T_CREATE, [op.name, "chaos", 0, LEASE_MS, list(op.args)]
    elif op.kind == history.EXTEND:
        t, fields = T_EXTEND, [op.name, op.args]
    else:
        t, fields = T_RELEASE, [op.name, False]
    return [t, op.rid, 0, "", fields]


def attempt(client, i, op):
    """One try of op at agent i: (class, code, result)."""
    try:
        r = client.call(i, OP_SUBMIT, submit_body(op))
    except ConnectionRefusedError:
        return "unsent", "refused", None      # never reached the agent
    except (OSError, EOFError, socket.timeout) as e:
        return "indet", type(e).__name__, None
    code, payload = r[2], r[5]
    if isinstance(payload, list):
        return ("ok" if payload[0] == 0 else "fail"), code, payload
    if code in (E_MALFORMED, E_INVAL, E_VERSION):
        raise vc.TestFailure("agent refused our request %r: %d %s"
                             % (submit_body(op), code, r[3]))
    if code in (E_TIMEOUT, E_NOQUORUM, E_UNAVAILABLE):
        return "unsent", code, None
    return "indet", code, None


def parse_clusters(payload):
    return {x["name"]: (x["vlan"], frozenset(x["sites"])) for x in payload}


# --- the agents, the proxy, the tmpfs --------------------------------------

class Proxy:
    """tools/chaos_proxy.py as a child process, driven over its stdin."""

    def __init__(self, dir):
        self.log = open(os.path.join(dir, "proxy.log"), "ab")
        self.p = subprocess.Popen([sys.executable, PROXY],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log)
        with vc._procs_lock:
            vc._procs.append(self.p)
        self.lock = threading.Lock()

    def cmd(self, *words):
        with self.lock:
            self.p.stdin.write((" ".join(str(w) for w in words) + "\n")
                               .encode())
            self.p.stdin.flush()
            line = self.p.stdout.readline().decode().strip()
        if not line.startswith("ok"):
            raise vc.TestFailure("proxy: %s: %r" % (" ".join(map(str, words)),
                                                   line))
        return line


_mounts = []  # every Tmpfs mounted, for the cleanup


class Tmpfs:
    """A small tmpfs for one agent's data dir; unmounted by PID-safe cleanup
    (atexit and the test's finally), lazily if still busy."""

    def __init__(self, path, mb):
        self.path, self.mounted = path, False
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mb,
                            "chaos", path], capture_output=True)
        if r.returncode != 0:
            vc.log("no tmpfs (%s): the full-disk fault is off",
                   r.stderr.decode().strip())
            return
        self.mounted = True
        _mounts.append(self)
        atexit.register(self.umount)
        self.filler = os.path.join(path, "filler")

    def fill(self):
        """Fills the file system; returns the bytes written."""
        n = 0
        with open(self.filler, "ab", buffering=0) as f:
            block = b"\xaa" * 65536
            while True:
                try:
                    n += f.write(block)
                except OSError:
                    try:
                        n += f.write(b"\xaa" * 512)
                        continue
                    except OSError:
                        break
        return n

    def unfill(self):
        try:
            os.unlink(self.filler)
        except FileNotFoundError:
            pass

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def umount(self):
        if not self.mounted:
            return
        r = subprocess.run(["umount", self.path], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        self.mounted = False


def start_cluster(env, dir, args):
    """5 agents behind the proxy; agent DISK_AGENT on the tmpfs."""
    c = vc.Cluster(env, 5, extra=["--log-level", "info"], pools=POOLS)
    env.clusters.append(c)
    proxy = Proxy(dir)
    fronts = {}
    for a in c.agents:
        fronts[a.name] = proxy.cmd("listen", a.name, a.peer).split()[2]
    boot = ",".join("%s=%s" % (a.name, fronts[a.name]) for a in c.agents)
    for a in c.agents:
        a.bootstrap = boot
    tmpfs = Tmpfs(os.path.join(dir, "tmpfs"), TMPFS_MB)
    if tmpfs.mounted:
        d = c.agents[DISK_AGENT]
        d.data_dir = os.path.join(tmpfs.path, "data")
        # Snapshots often, so that a full disk bites in a short run.
        d.extra += ["--snapshot-threshold", "256",
                    "--snapshot-trailing", "2048"]
    if os.environ.get("VC_SECURE") == "1":
        c.secure()  # keys: raft over the encrypted transport, via the proxy
    for a in c.agents:
        a.start()
    wait_ready(c, 90)
    for a in c.agents:
        vc.check(os.environ.get("VC_SECURE") != "1" or
                 "peer traffic authenticated and encrypted" in a.log_text(),
                 "%s: VC_SECURE=1 but not on the secure transport", a.name)
    return c, proxy, tmpfs


def wait_ready(c, timeout):
    """Every agent names the same leader, which says it leads, and holds
    all 5 site records (over our own client: the harness does not depend
    on the CLI's rendering)."""
    cl = Client(c.agents)

    def ready():
        sts = [status(cl, i) for i in range(len(c.agents))]
        if any(s is None for s in sts):
            return None
        leaders = {s["leader"] for s in sts}
        if len(leaders) != 1 or "" in leaders:
            return None
        name = leaders.pop()
        li = [i for i, s in enumerate(sts) if s["site"] == name]
        if not li or sts[li[0]]["role"] != "leader":
            return None
        for i in range(len(c.agents)):
            try:
                r = cl.call(i, OP_SITES, "", F_STALE, 2000)
            except (OSError, EOFError, socket.timeout):
                return None
            if not isinstance(r[5], list) or len(r[5]) != len(c.agents):
                return None
        return (li[0],)

    try:
        return vc.wait_until(ready, timeout, "an agreed leader and every "
                             "site record on all agents", interval=0.2)[0]
    finally:
        cl.close()


def status(client, i):
    try:
        r = client.call(i, OP_STATUS, None, timeout_ms=1000)
    except (OSError, EOFError, socket.timeout):
        return None
    return r[5] if r[2] == 0 and isinstance(r[5], dict) else None


# --- open segments ----------------------------------------------------------

def segment_written_end(path):
    """End of the last complete batch of a raft_uv open segment (format:
    uint64 version, then batches: 2 x crc32, uint64 n, n x 16-byte entry
    headers (size at byte 12), the entries' data each padded to 8), or 0
    when it holds none. Stops at the first batch that does not fit."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 8 or struct.unpack("<Q", b[:8])[0] == 0:
        return 0
    off = end = 8
    while off + 16 <= len(b):
        n = struct.unpack("<Q", b[off + 8:off + 16])[0]
        if n == 0 or n > 100000 or off + 16 + 16 * n > len(b):
            break
        size = 0
        for k in range(n):
            h = off + 16 + 16 * k
            size += (struct.unpack("<I", b[h + 12:h + 16])[0] + 7) // 8 * 8
        nxt = off + 16 + 16 * n + size
        if nxt > len(b):
            break
        off = end = nxt
    return end


def tear(rng, data_dir):
    """Tears the open segment holding the newest entries at a random byte
    of what was written, one of three ways: "truncate" cuts the file there
    (a file system that lost the preallocation), "zero" zeroes everything
    after it, "junk" overwrites up to 4 KiB after it with random bytes (a
    torn sector). Returns a description or None."""
    segs = []
    for f in os.listdir(data_dir):
        if f.startswith("open-"):
            p = os.path.join(data_dir, f)
            end = segment_written_end(p)
            if end > 8:
                segs.append((int(f[5:]), p, end))
    if not segs:
        return None
    _, path, end = max(segs)
    cut = rng.randrange(0, end)
    how = rng.choice(["truncate", "zero", "junk"])
    if how == "truncate":
        os.truncate(path, cut)
    else:
        n = end - cut if how == "zero" else min(end - cut, rng.randint(1, 4096))
        data = bytes(n) if how == "zero" else \
            bytes(rng.randrange(256) for _ in range(n))
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, cut)
        finally:
            os.close(fd)
    return "%s: %s at byte %d of %d written" % (os.path.basename(path), how,
                                                cut, end)


# --- the run ------------------------------------------------------------------

class Run:
    def __init__(self, env, args):
        self.env, self.args = env, args
        self.seed = args.seed
        self.deadline = None
        self.ops, self.reads = [], []
        self.lock = threading.Lock()
        self.stop_load = threading.Event()
        self.stop_nemesis = threading.Event()
        self.errors = []
        self.events = []          # (t, what) from the nemesis
        self.impaired = set()     # agents killed, paused or on a full disk
        self.counts = {}
        self.disk = []            # observations of the full-disk agent
        self.exits = []           # (agent, status, log tail) not ours
        self.applied_before = {}  # (agent, start #) -> applied index

    def event(self, fmt, *a):
        msg = fmt % a if a else fmt
        self.events.append((now(), msg))
        vc.log("nemesis: %s", msg)

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- load --

    def client_loop(self, k):
        rng = random.Random("%d:client:%d" % (self.seed, k))
        cl = Client(self.c.agents)
        mine, n, unknown = [], 0, []
        try:
            while not self.stop_load.is_set():
                if unknown and rng.random() < 0.1:
                    # Learn a create's unknown outcome with its request id
                    # (as a user would), so its cluster can be released:
                    # else long runs fill the pools with orphans.
                    op = unknown.pop(0)
                    self.run_op(rng, cl, op)
                else:
                    op = self.next_op(rng, k, mine, n)
                    n += 1
                    self.run_op(rng, cl, op)
                if op.kind == history.CREATE and op.outcome == "indet":
                    unknown.append(op)
                if op.kind == history.CREATE and op.outcome == "ok":
                    mine.append([op.name, set(op.args)])
                elif op.kind == history.EXTEND and op.outcome == "ok":
                    [m for m in mine if m[0] == op.name][0][1].add(op.args)
                elif op.kind == history.RELEASE:
                    mine[:] = [m for m in mine if m[0] != op.name]
                time.sleep(rng.uniform(0, 0.02))
        except BaseException as e:  # reported by the main thread
            self.errors.append(e)
        finally:
            cl.close()

    def next_op(self, rng, k, mine, n):
        names = [a.name for a in self.c.agents]
        x = rng.random()
        p_release = 0.25 if len(mine) < 10 else 0.6
        rid = "chaos:%x:%d:%d" % (self.seed & 0xffffffff, k, n)
        if mine and x < p_release:
            m = mine[rng.randrange(len(mine))]
            op = history.Op(rid, history.RELEASE, m[0], None, now())
        elif mine and x < p_release + 0.2:
            m = mine[rng.randrange(len(mine))]
            free = [s for s in names if s not in m[1]]
            if not free:
                return self.next_op(rng, k, [], n)
            op = history.Op(rid, history.EXTEND, m[0], rng.choice(free), now())
        else:
            sites = rng.sample(names, rng.choice([1, 2, 2, 3, 3, 4]))
            op = history.Op(rid, history.CREATE, "%s%d-%d" % (PREFIX, k, n),
                            sites, now())
        with self.lock:
            self.ops.append(op)
        return op

    def run_op(self, rng, cl, op):
        # Some clients give up early, so that some outcomes stay unknown
        # until the end.
        for _ in range(rng.choice([1, 2, ATTEMPTS, ATTEMPTS])):
            i = rng.randrange(len(self.c.agents))
            t0 = now()
            cls, code, res = attempt(cl, i, op)
            op.add_attempt(self.c.agents[i].name, t0, now(), cls, code, res)
            if op.outcome in history.DEFINITE or self.stop_load.is_set():
                return
            time.sleep(rng.uniform(0.05, 0.3))

    def read_loop(self):
        rng = random.Random("%d:reader" % self.seed)
        cl = Client(self.c.agents)
        try:
            while not self.stop_load.wait(rng.uniform(0.2, 0.6)):
                for linear in (True, False):
                    i = rng.randrange(len(self.c.agents))
                    t0 = now()
                    try:
                        r = cl.call(i, OP_CLUSTERS, "",
                                    0 if linear else F_STALE, 2000)
                    except (OSError, EOFError, socket.timeout):
                        continue
                    if r[2] == 0 and isinstance(r[5], list):
                        rd = history.Read(self.c.agents[i].name, linear, t0,
                                          now(), parse_clusters(r[5]))
                        with self.lock:
                            self.reads.append(rd)
        except BaseException as e:
            self.errors.append(e)
        finally:
            cl.close()

    # -- nemesis --

    def nemesis_loop(self):
        rng = random.Random("%d:nemesis" % self.seed)
        pending = []  # (t, fn)
        acts = [(self.n_kill, 3), (self.n_pause, 2), (self.n_partition, 3),
                (self.n_delay, 1), (self.n_restart, 1)]
        if self.tmpfs.mounted:
            acts.append((self.n_disk_full, 1))
        total = sum(w for _, w in acts)
        try:
            next_t = now() + rng.uniform(1, 2)
            while True:
                stop = self.stop_nemesis.is_set()
                pending.sort(key=lambda p: p[0])
                while pending and (stop or pending[0][0] <= now()):
                    pending.pop(0)[1]()
                if stop:
                    return
                self.watch()
                if now() >= next_t:
                    x = rng.uniform(0, total)
                    for fn, w in acts:
                        if x < w:
                            break
                        x -= w
                    fn(rng, pending)
                    next_t = now() + rng.uniform(0.5, 2.5)
                time.sleep(0.05)
        except BaseException as e:
            self.errors.append(e)

    def watch(self):
        """An agent that exited although the nemesis did not touch it is
        noted (a crash by signal fails the run) and restarted, as
        systemd's Restart=always would."""
        for i, a in enumerate(self.c.agents):
            if i in self.impaired or a.running() or a.proc is None:
                continue
            rc = a.proc.returncode
            vc._forget(a.proc)
            self.exits.append((a.name, rc, a.tail(5)))
            self.event("%s exited by itself (status %s); restarting it",
                       a.name, rc)
            self.count("exit by itself")
            a.start()

    def pick(self, rng, running=True):
        ok = [i for i, a in enumerate(self.c.agents)
              if i not in self.impaired and a.running() == running]
        return rng.choice(ok) if ok else None

    def n_kill(self, rng, pending):
        if len(self.impaired) >= MAX_DOWN:
            return
        i = self.pick(rng)
        if i is None:
            return
        a = self.c.agents[i]
        self.impaired.add(i)
        self.note_applied(i)
        a.kill9()
        torn = rng.random() < 0.6
        self.event("kill -9 %s%s", a.name, " (torn write at restart)"
                   if torn else "")
        self.count("kill")
        pending.append((now() + rng.uniform(0.5, 4),
                        lambda: self.restart(rng, i, torn)))

    def restart(self, rng, i, torn):
        a = self.c.agents[i]
        if torn:
            why = self.torn_safe(i)
            if why:
                self.event("torn write on %s skipped: %s", a.name, why)
                self.count("torn skipped")
            else:
                what = tear(rng, a.data_dir)
                self.event("torn write on %s: %s", a.name, what or
                           "no open segment with entries")
                if what:
                    self.count("torn")
        a.start()
        self.event("restart %s", a.name)
        self.impaired.discard(i)

    def torn_safe(self, x):
        """None if every entry the dead agent x stored that may be
        committed is on a majority of the voters without it (so that
        losing a suffix of x's log loses no acknowledged command, as a
        real torn write only loses what x had not yet acknowledged); else
        why not. Asks the leader for its commit index and its voters'
        match indexes."""
        cl = Client(self.c.agents)
        try:
            deadline = time.monotonic() + 3
            why = "no leader"
            while time.monotonic() < deadline:
                for i in range(len(self.c.agents)):
                    if i == x or not self.c.agents[i].running():
                        continue
                    st = status(cl, i)
                    if not st or st["role"] != "leader":
                        continue
                    c = st["commit"]
                    voters = [m for m in st["members"]
                              if m["role"] == "voter"]
                    ok = [m["site"] for m in voters
                          if m["site"] != self.c.agents[x].name and
                          m["match"] >= c]
                    if len(ok) > len(voters) // 2:
                        return None
                    why = "only voters %s of %d hold the commit index %d" % (
                        ok, len(voters), c)
                time.sleep(0.1)
            return why
        finally:
            cl.close()

    def n_pause(self, rng, pending):
        if len(self.impaired) >= MAX_DOWN:
            return
        i = self.pick(rng)
        if i is None:
            return
        a = self.c.agents[i]
        self.impaired.add(i)
        a.stop()
        self.event("SIGSTOP %s", a.name)
        self.count("pause")

        def resume():
            if a.running():
                a.cont()
            self.event("SIGCONT %s", a.name)
            self.impaired.discard(i)
        pending.append((now() + rng.uniform(0.3, 4), resume))

    def n_restart(self, rng, pending):
        if len(self.impaired) >= MAX_DOWN:
            return
        i = self.pick(rng)
        if i is None:
            return
        a = self.c.agents[i]
        self.impaired.add(i)
        self.note_applied(i)
        a.signal(signal.SIGTERM)
        rc = a.wait_exit(15)
        if rc is None:
            a.kill9()
            self.event("SIGTERM %s: still running after 15 s, killed", a.name)
            self.count("slow stop")
        else:
            self.event("SIGTERM %s: exit %d", a.name, rc)
        self.count("graceful restart")
        pending.append((now() + rng.uniform(0.2, 2),
                        lambda: self.restart(rng, i, False)))

    def n_partition(self, rng, pending):
        if self.net_busy:
            return
        names = [a.name for a in self.c.agents]
        rng.shuffle(names)
        mode = rng.choice(["drop", "blackhole"])
        kind = rng.choice(["isolate", "split", "oneway", "bridge"])
        cuts = []
        if kind == "isolate":
            cuts = [(names[0], b) for b in names[1:]]
            cuts += [(b, a) for a, b in cuts]
        elif kind == "split":
            g = set(names[:2])
            cuts = [(a, b) for a in names for b in names
                    if (a in g) != (b in g)]
        elif kind == "oneway":
            cuts = [(names[0], b) for b in names[1:rng.randint(2, 4)]]
        else:  # two sides that only names[0] connects
            left, right = names[1:3], names[3:]
            cuts = [(a, b) for a in left for b in right]
            cuts += [(b, a) for a, b in cuts]
        for s, d in cuts:
            self.proxy.cmd("link", s, d, mode)
        self.net_busy = True
        self.event("%s %s: %s", kind, mode,
                   " ".join("%s>%s" % p for p in cuts))
        self.count("partition " + kind)

        def heal():
            self.proxy.cmd("heal")
            self.net_busy = False
            self.event("heal")
        pending.append((now() + rng.uniform(1, 5), heal))

    def n_delay(self, rng, pending):
        if self.net_busy:
            return
        names = [a.name for a in self.c.agents]
        pairs = [(a, b) for a in names for b in names if a != b]
        pick = rng.sample(pairs, rng.randint(2, len(pairs)))
        ms = rng.choice([20, 50, 150, 400])
        for s, d in pick:
            self.proxy.cmd("link", s, d, "delay", ms)
        self.net_busy = True
        self.event("delay %d ms on %d links", ms, len(pick))
        self.count("delay")

        def heal():
            self.proxy.cmd("heal")
            self.net_busy = False
            self.event("heal")
        pending.append((now() + rng.uniform(1, 4), heal))

    def n_disk_full(self, rng, pending):
        i = DISK_AGENT
        a = self.c.agents[i]
        if i in self.impaired or not a.running() or \
                len(self.impaired) >= MAX_DOWN:
            return
        self.impaired.add(i)
        n = self.tmpfs.fill()
        self.disk_applied = self.applied(i)
        self.event("disk full on %s: %d bytes of filler, %d free, applied "
                   "index %s", a.name, n, self.tmpfs.free(),
                   self.disk_applied)
        self.count("disk full")
        pending.append((now() + rng.uniform(3, 10),
                        lambda: self.disk_full_restart(rng, i)))

    def note_applied(self, i):
        """Remembers agent i's applied index just before we stop it, to
        judge the "caught up at index N" its next start logs."""
        st = self.applied(i)
        if st:
            a = self.c.agents[i]
            self.applied_before[(a.name, a.starts + 1)] = st[0]

    def check_catch_up(self):
        """The agent says "caught up" once it applied the leader's commit
        index seen at start-up (main.c, agent_caught_up; the reconciler
        and watches treat the state as complete from then on). It can not
        be caught up below what it had applied before it was stopped."""
        bad = []
        for a in self.c.agents:
            start = 0
            for line in a.log_text().splitlines():
                if line.startswith("=== harness: start #"):
                    start = int(line.split("#")[1].split()[0])
                elif "caught up at index" in line:
                    n = int(line.rsplit(" ", 1)[1])
                    before = self.applied_before.get((a.name, start))
                    if before is not None and n < before:
                        bad.append("%s start #%d: caught up at index %d, "
                                   "but it had applied %d before it was "
                                   "stopped" % (a.name, start, n, before))
        return bad

    def applied(self, i):
        cl = Client(self.c.agents)
        st = status(cl, i)
        cl.close()
        return (st["applied"], st["role"]) if st else None

    def disk_full_restart(self, rng, i):
        """The agent ran on a full disk for a while: kill it and restart
        it on the still full disk (it must refuse to start, or run without
        corrupting anything), then free the disk and restart it."""
        a = self.c.agents[i]
        state = "running (applied index, role: %s, then %s)" % (
            self.disk_applied, self.applied(i)) if a.running() else \
            "exited %s" % a.proc.returncode
        self.disk.append(("while full", state))
        if a.running():
            a.kill9()
        a.start()
        rc = a.wait_exit(5)
        self.disk.append(("restart on a full disk",
                          "running after 5 s" if rc is None else
                          "exited %d" % rc))
        self.event("disk full on %s: it was %s; restarted on the full disk: "
                   "%s", a.name, state, self.disk[-1][1])
        if rc is None:
            a.kill9()
        self.tmpfs.unfill()
        a.start()
        self.event("disk freed on %s (%d free), restarted", a.name,
                   self.tmpfs.free())
        self.impaired.discard(i)

    # -- main --

    def go(self):
        args = self.args
        self.c, self.proxy, self.tmpfs = start_cluster(self.env, self.env.dir,
                                                       args)
        self.net_busy = False
        self.pools = {a.name: vc.parse_pool(a.pool) for a in self.c.agents}
        vc.log("chaos: seed %d, %d s of faults, %d clients, agents %s", args.seed,
               args.seconds, args.clients,
               ", ".join("%s pid %d" % (a.name, a.pid) for a in self.c.agents))
        threads = [threading.Thread(target=self.client_loop, args=(k,),
                                    daemon=True) for k in range(args.clients)]
        threads.append(threading.Thread(target=self.read_loop, daemon=True))
        nem = threading.Thread(target=self.nemesis_loop, daemon=True)
        for t in threads:
            t.start()
        nem.start()
        t_end = time.monotonic() + args.seconds
        while time.monotonic() < t_end and not self.errors:
            time.sleep(0.2)
        self.stop_nemesis.set()
        nem.join(60)
        self.stop_load.set()
        for t in threads:
            t.join(30)
        vc.check(not nem.is_alive() and not any(t.is_alive()
                                                 for t in threads),
                 "a load or nemesis thread hung")
        if self.errors:
            raise self.errors[0]
        try:
            self.heal()
            self.resolve()
            self.recheck()
            final = self.converge()
        except BaseException:
            # The cluster did not come back: still say what the history
            # recorded so far violates (outcomes unknown are not judged).
            done = [op for op in self.ops if op.outcome != "indet"]
            for b in history.check_all(done, self.reads, None, self.pools,
                                       PREFIX)[:40]:
                vc.log("VIOLATION (before the end) %s", b)
            raise
        bad = history.check_all(self.ops, self.reads, final, self.pools,
                                PREFIX)
        self.report(bad)

    def heal(self):
        """Every fault off, every agent restarted from its disk (so that
        each replays its log), leader elected, equal state everywhere."""
        self.watch()
        self.proxy.cmd("heal")
        self.tmpfs.unfill()
        for i, a in enumerate(self.c.agents):
            if a.running():
                self.note_applied(i)
                a.kill9()
        for a in self.c.agents:
            a.start()
        self.event("healed; every agent restarted")
        wait_ready(self.c, 90)

    def resolve(self):
        """Sends every operation whose outcome is unknown again with its
        request id until it gets a definite answer."""
        cl = Client(self.c.agents)
        rng = random.Random("%d:resolve" % self.seed)
        todo = [op for op in self.ops if op.outcome == "indet"]
        deadline = time.monotonic() + 120
        for op in todo:
            while op.outcome not in history.DEFINITE:
                vc.check(time.monotonic() < deadline,
                         "cannot learn the outcome of %r" % op)
                i = rng.randrange(len(self.c.agents))
                t0 = now()
                cls, code, res = attempt(cl, i, op)
                if cls in history.DEFINITE:
                    op.add_attempt(self.c.agents[i].name, t0, now(), cls,
                                   code, res)
                    op.resolved = True
                else:
                    time.sleep(0.2)
        cl.close()
        vc.log("resolved %d operations of unknown outcome by sending their "
               "request ids again", len(todo))

    def recheck(self, limit=3000):
        """I2 at rest: acknowledged operations (up to `limit`, random) sent
        again with their request ids must get their first answer back."""
        cl = Client(self.c.agents)
        rng = random.Random("%d:recheck" % self.seed)
        # Only ids still in the agents' de-duplication window (the last
        # 100 000 commands, agents' own included): keep a margin.
        done = [op for op in self.ops[-80000:]
                if op.outcome in history.DEFINITE]
        if len(done) > limit:
            done = rng.sample(done, limit)
        n = 0
        for op in done:
            for _ in range(20):
                i = rng.randrange(len(self.c.agents))
                t0 = now()
                cls, code, res = attempt(cl, i, op)
                if cls in history.DEFINITE:
                    op.add_attempt(self.c.agents[i].name, t0, now(), cls,
                                   code, res)
                    n += 1
                    break
                time.sleep(0.1)
        cl.close()
        self.rechecked = n
        vc.log("sent %d answered operations again with their request ids",
               n)

    def converge(self):
        """Waits until every agent applied the same index and holds the
        same clusters; returns them."""
        cl = Client(self.c.agents)

        def same():
            sts = [status(cl, i) for i in range(len(self.c.agents))]
            if any(s is None for s in sts) or \
                    len({s["applied"] for s in sts}) != 1:
                return None
            states = []
            for i in range(len(self.c.agents)):
                try:
                    r = cl.call(i, OP_CLUSTERS, "", F_STALE, 2000)
                except (OSError, EOFError, socket.timeout):
                    return None
                states.append(parse_clusters(r[5]))
            return (states[0],) if all(s == states[0] for s in states) \
                else None

        final = vc.wait_until(same, 90, "every agent at one applied index "
                              "with equal clusters", interval=0.5)[0]
        cl.close()
        vc.log("converged: %d clusters on all %d agents", len(final),
               len(self.c.agents))
        return final

    def report(self, bad):
        path = os.path.join(self.env.dir, "history.json")
        with open(path, "w") as f:
            json.dump({"seed": self.seed, "events": self.events,
                       "ops": [vars(o) for o in self.ops],
                       "reads": [{"agent": r.agent, "linear": r.linear,
                                  "inv": r.inv, "resp": r.resp,
                                  "clusters": {k: [v[0], sorted(v[1])]
                                               for k, v in r.clusters.items()}}
                                 for r in self.reads]}, f, default=str)
        vc.log("faults: %s", ", ".join("%s %d" % kv
                                       for kv in sorted(self.counts.items())))
        for what, obs in self.disk:
            vc.log("full disk: %s: %s", what, obs)
        vc.log("history: %s", history.summary(self.ops, self.reads))
        vc.log("HISTORY SIZE %d operations, %d attempts, %d reads",
               len(self.ops), sum(len(o.attempts) for o in self.ops),
               len(self.reads))
        st = json.loads(self.proxy.cmd("stats")[3:])
        unknown = sum(v["accepted"] for k, v in st.items()
                      if k.startswith("?>"))
        vc.log("proxy: %d raft connections, %d refused (drop), %d bytes "
               "forwarded, %d blackholed; %d from an unknown dialler",
               sum(v["accepted"] for v in st.values()),
               sum(v["refused"] for v in st.values()),
               sum(v["bytes"] for v in st.values()),
               sum(v["dropped"] for v in st.values()), unknown)
        if unknown:
            bad.append("the proxy could not tell the dialling site of %d "
                       "connections: link faults were not per pair" % unknown)
        early = self.check_catch_up()
        for b in early:
            vc.log("EARLY CATCH-UP %s", b)
        if early:
            vc.log("%d restarts declared themselves caught up too early "
                   "(docs/testing.md; VC_CHAOS_STRICT_CATCHUP=0 only "
                   "reports it)", len(early))
            if os.environ.get("VC_CHAOS_STRICT_CATCHUP", "1") != "0":
                bad += early
        for name, rc, tail in self.exits:
            vc.log("%s exited by itself with status %s; its last lines:\n%s",
                   name, rc, tail)
            if rc < 0:
                bad.append("%s died of signal %d (a crash)" % (name, -rc))
        if bad:
            for b in bad[:40]:
                vc.log("VIOLATION %s", b)
            vc.log("VERDICT: INVALID (%d violations); seed %d; replay: "
                   "VC_CHAOS_SEED=%d VC_CHAOS_SECONDS=%d meson test -C BUILD "
                   "--suite chaos chaos", len(bad), self.seed, self.seed,
                   self.args.seconds)
            raise vc.TestFailure("history violates %d invariant(s); seed %d"
                                 % (len(bad), self.seed))
        vc.log("VERDICT: VALID (seed %d)", self.seed)


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("agent")
    p.add_argument("cli")
    p.add_argument("--seconds", type=int,
                   default=int(os.environ.get("VC_CHAOS_SECONDS", "45")))
    p.add_argument("--seed", type=int,
                   default=int(os.environ.get("VC_CHAOS_SEED", "0")) or
                   random.SystemRandom().randrange(1, 1 << 31))
    p.add_argument("--clients", type=int,
                   default=int(os.environ.get("VC_CHAOS_CLIENTS", "4")))
    return p.parse_args()


def main():
    args = parse_args()
    sys.argv = [sys.argv[0], args.agent, args.cli]
    vc.log("chaos seed %d (replay: VC_CHAOS_SEED=%d)", args.seed, args.seed)
    run = Run(None, args)

    def test(env):
        run.env = env
        try:
            run.go()
        finally:
            # Before vc.main removes the temp dir: the tmpfs lives in it.
            vc.kill_all()
            for m in _mounts:
                m.umount()

    signal.signal(signal.SIGINT, lambda *_: (_ for _ in ()).throw(
        SystemExit("interrupted")))
    signal.signal(signal.SIGHUP, lambda *_: (_ for _ in ()).throw(
        SystemExit("hangup")))
    vc.main(test)


if __name__ == "__main__":
    main()
