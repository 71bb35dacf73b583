"""Harness for the integration tests: real virtcloud-agent processes on
loopback, real raft on disk, the real virtcloud CLI.

Each test file calls vc.main(test_fn). main() finds the binaries (argv[1]
and argv[2] as meson passes them, or $VC_AGENT / $VC_CLI), makes one temp
dir, runs test_fn(env) and, whatever happens (exception, assertion,
SIGTERM from meson's timeout), kills every process it started by PID and
removes the temp dir. A failing test prints the tail of every agent log.
After a passing test the logs are scanned for sanitizer reports.

Exit status: 0 pass, 1 fail, 77 skip (something required is missing; the
reason is printed).

    def test(env):
        c = env.cluster(3)             # started, leader elected, sites in
        r = c.cli(0, "cluster", "create", "x", "--sites", "brno,praha")
        assert r.rc == 0, r

Set VC_KEEP=1 to keep the temp dir (and its logs) for a post-mortem.
"""
import atexit
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP = 77

SITE_NAMES = ["brno", "praha", "plzen", "ostrava", "olomouc"]
# Overlapping, different pools, so that allocation has to intersect: the
# lowest VLAN free at all three sites is 150 (150-179 is common to all).
POOLS = ["100-199", "150-249", "120-179,200-260", "100-299", "100-299"]

# Every Popen we started and not yet reaped: the cleanup walks this list.
_procs = []
_procs_lock = threading.Lock()


class Skip(Exception):
    """Raised when the test cannot run here (exit 77)."""


class TestFailure(AssertionError):
    pass


def log(fmt, *args):
    msg = fmt % args if args else fmt
    sys.stdout.write("[%7.2f] %s\n" % (time.monotonic() - _t0, msg))
    sys.stdout.flush()


_t0 = time.monotonic()


# --- waiting ---------------------------------------------------------------

def wait_until(pred, timeout, what, interval=0.1):
    """Polls pred() until it returns a true value, which is returned; raises
    TestFailure naming `what` after `timeout` seconds. pred may raise
    nothing; its last value is shown on failure."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s (last: %r)"
                              % (timeout, what, last))
        time.sleep(interval)


# --- ports -----------------------------------------------------------------

_used_ports = set()


def free_port():
    """A loopback TCP port that is free now, outside the ephemeral range
    (so that outgoing connections cannot take it before the agent binds)
    and not handed out before in this process."""
    lo, hi = 20000, 32000
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise TestFailure("no free loopback port found")


# --- CLI results -----------------------------------------------------------

class Result:
    """One CLI run: rc, doc (parsed JSON or None), out, err, elapsed (s)."""

    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        self.elapsed = elapsed
        self.doc = None
        line = out.strip()
        if line:
            try:
                self.doc = json.loads(line)
            except ValueError:
                self.doc = None

    @property
    def message(self):
        if isinstance(self.doc, dict) and "message" in self.doc:
            return self.doc["message"]
        return self.err.strip()

    def __repr__(self):
        return ("<%s: rc=%d %.2fs out=%s err=%s>"
                % (" ".join(self.argv[1:]), self.rc, self.elapsed,
                   self.out.strip()[:600], self.err.strip()[:600]))


# --- agents ----------------------------------------------------------------

class Agent:
    def __init__(self, env, name, pool, extra):
        self.env = env
        self.name = name
        self.pool = pool
        self.peer = "127.0.0.1:%d" % free_port()
        self.api = "127.0.0.1:%d" % free_port()
        # Each agent its own /metrics port (the default 127.0.0.1:9464
        # would be taken by the first agent only).
        self.metrics = "127.0.0.1:%d" % free_port()
        self.environ = None  # the process environment; None: inherit
        self.data_dir = os.path.join(env.dir, name)
        self.log_path = os.path.join(env.dir, name + ".log")
        self.extra = list(extra)
        self.bootstrap = ""
        self.proc = None
        self.starts = 0

    def argv(self):
        return [self.env.agent, "--site", self.name,
                "--data-dir", self.data_dir, "--peer", self.peer,
                "--api", self.api, "--bootstrap", self.bootstrap,
                "--vlans", self.pool, "--metrics", self.metrics] + self.extra

    def start(self):
        """Starts (or restarts, same data dir and ports) the agent."""
        assert not self.running(), "%s is already running" % self.name
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(("=== harness: start #%d of %s: %s\n"
                     % (self.starts, self.name, " ".join(self.argv())))
                    .encode())
            f.flush()
            p = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT,
                                 env=self.environ)
        with _procs_lock:
            _procs.append(p)
        self.proc = p
        return p

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        """Sends sig to this agent's PID (never by name)."""
        assert self.running(), "%s is not running" % self.name
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Waits for the process to end; returns its exit status, or None
        if it is still running after timeout seconds."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        _forget(self.proc)
        return rc

    def kill9(self):
        """SIGKILL and reap; returns once the PID is gone."""
        self.signal(signal.SIGKILL)
        rc = self.wait_exit(10)
        assert rc is not None, "%s survived SIGKILL" % self.name
        return rc

    def stop(self):
        self.signal(signal.SIGSTOP)

    def cont(self):
        self.signal(signal.SIGCONT)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=40):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])


def _forget(p):
    with _procs_lock:
        if p in _procs:
            _procs.remove(p)


def kill_all():
    """SIGKILL every process we started that is still around, by PID, and
    reap it. SIGKILL also ends SIGSTOPped processes."""
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sys.stderr.write("vc: pid %d did not die\n" % p.pid)
        _forget(p)


class Cluster:
    """N agents that bootstrapped one raft group together."""

    def __init__(self, env, n, extra=(), pools=None):
        self.env = env
        pools = pools or POOLS
        self.agents = [Agent(env, SITE_NAMES[i], pools[i], extra)
                       for i in range(n)]
        self.inflight_refusals = []
        boot = ",".join("%s=%s" % (a.name, a.peer) for a in self.agents)
        for a in self.agents:
            a.bootstrap = boot

    def __getitem__(self, i):
        return self.agents[i]

    def __len__(self):
        return len(self.agents)

    def index(self, name):
        for i, a in enumerate(self.agents):
            if a.name == name:
                return i
        raise KeyError(name)

    def by_name(self, name):
        return self.agents[self.index(name)]

    def start(self, timeout=60):
        if os.environ.get("VC_SECURE") == "1":
            self.secure()
        for a in self.agents:
            a.start()
        self.wait_ready(timeout)
        keyed = os.environ.get("VC_SECURE") == "1"
        for a in self.agents:
            check(not (keyed or "--key" in a.extra) or
                  "peer traffic authenticated and encrypted" in a.log_text(),
                  "%s: keyed (or VC_SECURE=1) but not on the secure "
                  "transport", a.name)

    def secure(self):
        """VC_SECURE=1: unless the test set keys itself, every agent gets a
        key from `virtcloud keygen`, the others' pinned, so that raft runs
        over the encrypted transport (clients stay unauthenticated)."""
        if any("--key" in a.extra for a in self.agents):
            return
        kdir = os.path.join(self.env.dir, "keys-%d" % id(self))
        os.makedirs(kdir, exist_ok=True)
        pubs = {}
        for a in self.agents:
            path = os.path.join(kdir, a.name + ".key")
            r = self.env.cli("keygen", "--out", path)
            check(r.rc == 0 and isinstance(r.doc, dict), "keygen: %r", r)
            pubs[a.name] = (path, r.doc["public"])
        pins = ",".join("%s=%s" % (n, pubs[n][1]) for n in pubs)
        for a in self.agents:
            a.extra += ["--key", pubs[a.name][0], "--peer-keys", pins,
                        "--cluster-id", "itest-secure", "--client-auth", "off"]

    def api_list(self, which=None):
        which = range(len(self)) if which is None else which
        return ",".join(self.agents[i].api for i in which)

    def cli(self, i, *args, timeout="5s", json_out=True, api=None):
        """Runs the CLI against agent i (or api=...)."""
        return self.env.cli(*args, api=api or self.agents[i].api,
                            timeout=timeout, json_out=json_out)

    def repeat(self, i, *args, timeout="5s", within=10):
        """Runs a write that carries a --request-id already used, retrying
        exit 3 "already in flight" answers (docs/cli.md: exit 3, retry with
        the same id) for up to `within` seconds. Returns the final Result;
        the refusals seen are counted in self.inflight_refusals."""
        deadline = time.monotonic() + within
        while True:
            r = self.cli(i, *args, timeout=timeout)
            if not (r.rc == 3 and "already in flight" in r.message) or \
                    time.monotonic() >= deadline:
                return r
            self.inflight_refusals.append(r)
            log("repeat refused as in flight at %s; retrying: %s",
                self.agents[i].name, r.message)
            time.sleep(0.2)

    def status(self, i):
        r = self.cli(i, "status", timeout="3s")
        return r.doc if r.rc == 0 and isinstance(r.doc, dict) else None

    def leader_of(self, i):
        """Leader name as agent i sees it ("" or None when unknown)."""
        st = self.status(i)
        return st["leader"] if st else None

    def live(self):
        return [i for i, a in enumerate(self.agents) if a.running()]

    def wait_leader(self, among=None, exclude=(), timeout=30):
        """Waits until every running agent of `among` names the same leader,
        itself one of `among` and not in exclude, and that leader says it
        is the leader. Returns the leader's index."""
        among = self.live() if among is None else among

        def agreed():
            seen = set()
            for i in among:
                st = self.status(i)
                if not st or not st["leader"]:
                    return None
                seen.add(st["leader"])
            if len(seen) != 1:
                return None
            name = seen.pop()
            if name in exclude:
                return None
            try:
                li = self.index(name)
            except KeyError:
                return None
            if li not in among:
                return None
            st = self.status(li)
            return (li,) if st and st["role"] == "leader" else None

        return wait_until(agreed, timeout, "an agreed leader among %s"
                          % [self.agents[i].name for i in among])[0]

    def wait_ready(self, timeout=60):
        """Leader agreed by all and every site's record registered (seen
        locally by every agent)."""
        self.wait_leader(timeout=timeout)
        n = len(self)

        def registered():
            for i in self.live():
                r = self.cli(i, "site", "list", "--stale", timeout="3s")
                if r.rc != 0 or not isinstance(r.doc, list) or len(r.doc) != n:
                    return None
            return True

        wait_until(registered, timeout, "all %d site records on every agent"
                   % n)

    def followers(self, leader):
        return [i for i in self.live() if i != leader]

    def snapshot(self, i):
        """(clusters, sites) as agent i sees them locally (--stale), or
        None if it cannot answer."""
        c = self.cli(i, "cluster", "list", "--stale", timeout="3s")
        s = self.cli(i, "site", "list", "--stale", timeout="3s")
        if c.rc != 0 or s.rc != 0:
            return None
        return (sorted(c.doc, key=lambda x: x["name"]),
                sorted(s.doc, key=lambda x: x["name"]))

    def wait_converged(self, among=None, timeout=30):
        """Waits until every agent of `among` holds the same clusters and
        sites locally; returns that (clusters, sites)."""
        among = self.live() if among is None else among

        def same():
            snaps = [self.snapshot(i) for i in among]
            if any(s is None for s in snaps):
                return None
            first = snaps[0]
            return (first,) if all(s == first for s in snaps[1:]) else None

        return wait_until(same, timeout, "equal state on %s"
                          % [self.agents[i].name for i in among],
                          interval=0.2)[0]


class Env:
    def __init__(self, agent, cli, dir):
        self.agent, self.cli_path, self.dir = agent, cli, dir
        self.clusters = []
        self.cli_env = dict(os.environ)
        self.cli_env.pop("VIRTCLOUD_API", None)
        self.cli_env["USER"] = "itest"
        self._seq = 0

    def cluster(self, n=3, start=True, extra=(), pools=None, timeout=60):
        c = Cluster(self, n, extra, pools)
        self.clusters.append(c)
        if start:
            c.start(timeout)
        return c

    def agents(self):
        return [a for c in self.clusters for a in c.agents]

    def cli(self, *args, api=None, timeout="5s", json_out=True):
        """Runs virtcloud with --json, --api and --timeout; the process is
        killed if it overruns its own timeout by 15 s (a CLI bug)."""
        argv = [self.cli_path]
        if api:
            argv += ["--api", api]
        if json_out:
            argv.append("--json")
        if timeout:
            argv += ["--timeout", timeout]
        argv += list(args)
        hard = _duration_s(timeout) + 15 if timeout else 30
        t = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.cli_env)
        with _procs_lock:
            _procs.append(p)
        try:
            out, err = p.communicate(timeout=hard)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise TestFailure("CLI hung past its --timeout %s: %s"
                              % (timeout, " ".join(argv)))
        finally:
            _forget(p)
        return Result(argv, p.returncode, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"), time.monotonic() - t)

    def req_id(self, tag):
        self._seq += 1
        return "itest:%s:%d:%d" % (tag, os.getpid(), self._seq)

    def run_agent(self, args, timeout=20):
        """Runs the agent binary to completion (config checks)."""
        p = subprocess.run([self.agent] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))


def _duration_s(d):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for u in ("ms", "s", "m"):
        if d.endswith(u) and d[:-len(u)].isdigit():
            return int(d[:-len(u)]) * units[u]
    return 10


# --- frames (for raw-socket tests) ----------------------------------------

def mp_pack(o):
    """Minimal msgpack encoder: None, bool, int, str, bytes, list."""
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        if -32 <= o < 0:
            return struct.pack("b", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(o, bytes):  # raw, pre-encoded
        return o
    if isinstance(o, (list, tuple)):
        assert len(o) < 16
        return bytes([0x90 | len(o)]) + b"".join(mp_pack(x) for x in o)
    raise TypeError(type(o))


def mp_unpack(b, i=0):
    """Minimal msgpack decoder for answers; returns (value, next index)."""
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if t >= 0xe0:
        return t - 0x100, i
    if 0x90 <= t <= 0x9f:
        return _mp_seq(b, i, t & 0x0f, False)
    if 0x80 <= t <= 0x8f:
        return _mp_seq(b, i, t & 0x0f, True)
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i:i + n].decode("utf-8", "replace"), i + n
    if t == 0xc0:
        return None, i
    if t in (0xc2, 0xc3):
        return t == 0xc3, i
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
             0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}
    if t in fixed:
        f = fixed[t]
        n = struct.calcsize(f)
        return struct.unpack(f, b[i:i + n])[0], i + n
    lens = {0xd9: ">B", 0xda: ">H", 0xdb: ">I"}
    if t in lens:
        f = lens[t]
        k = struct.calcsize(f)
        n = struct.unpack(f, b[i:i + k])[0]
        i += k
        return b[i:i + n].decode("utf-8", "replace"), i + n
    if t in (0xdc, 0xde):
        n = struct.unpack(">H", b[i:i + 2])[0]
        return _mp_seq(b, i + 2, n, t == 0xde)
    if t in (0xdd, 0xdf):
        n = struct.unpack(">I", b[i:i + 4])[0]
        return _mp_seq(b, i + 4, n, t == 0xdf)
    raise ValueError("msgpack type 0x%02x not supported" % t)


def _mp_seq(b, i, n, is_map):
    if is_map:
        d = {}
        for _ in range(n):
            k, i = mp_unpack(b, i)
            v, i = mp_unpack(b, i)
            d[k] = v
        return d, i
    out = []
    for _ in range(n):
        v, i = mp_unpack(b, i)
        out.append(v)
    return out, i


def frame(body):
    return struct.pack(">I", len(body)) + body


def recv_frame(sock, timeout):
    """Reads one answer frame. Returns the decoded response list, or None
    when the agent closed the connection. Raises socket.timeout."""
    sock.settimeout(timeout)
    hdr = _recv_exact(sock, 4)
    if hdr is None:
        return None
    n = struct.unpack(">I", hdr)[0]
    body = _recv_exact(sock, n)
    if body is None:
        return None
    return mp_unpack(body)[0]


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def connect(addr, timeout=5):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


# --- checks ----------------------------------------------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "UndefinedBehaviorSanitizer",
                   "Assertion `", "SUMMARY: AddressSanitizer")


def diff_state(a, b):
    """Readable differences between two (clusters, sites) snapshots."""
    out = []
    for kind, x, y in (("cluster", a[0], b[0]), ("site", a[1], b[1])):
        dx = {e["name"]: e for e in x}
        dy = {e["name"]: e for e in y}
        for n in sorted(set(dx) | set(dy)):
            if n not in dy:
                out.append("%s %s only before: %r" % (kind, n, dx[n]))
            elif n not in dx:
                out.append("%s %s only after: %r" % (kind, n, dy[n]))
            elif dx[n] != dy[n]:
                keys = sorted(k for k in set(dx[n]) | set(dy[n])
                              if dx[n].get(k) != dy[n].get(k))
                out.append("%s %s: %s" % (kind, n, ", ".join(
                    "%s %r -> %r" % (k, dx[n].get(k), dy[n].get(k))
                    for k in keys)))
    return "\n  ".join(out) or "(equal)"


def check_logs(env):
    bad = []
    for a in env.agents():
        text = a.log_text()
        for m in SANITIZER_MARKS:
            if m in text:
                bad.append("%s: log contains %r" % (a.name, m))
    if bad:
        raise TestFailure("sanitizer or assertion report in agent logs:\n  "
                          + "\n  ".join(bad))


def parse_pool(s):
    """"100-199,250" -> set of VLAN ids."""
    out = set()
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        else:
            out.add(int(part))
    return out


def check(cond, fmt, *args):
    if not cond:
        raise TestFailure(fmt % args if args else fmt)


# --- main ------------------------------------------------------------------

def _find_binaries():
    agent = os.environ.get("VC_AGENT") or (sys.argv[1] if len(sys.argv) > 1
                                           else None)
    cli = os.environ.get("VC_CLI") or (sys.argv[2] if len(sys.argv) > 2
                                       else None)
    if not agent or not cli:
        raise TestFailure("usage: %s AGENT CLI (or set VC_AGENT and VC_CLI)"
                          % sys.argv[0])
    for p in (agent, cli):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise TestFailure("%s is not an executable file (build first)" % p)
    return os.path.abspath(agent), os.path.abspath(cli)


def _loopback_ok():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.close()
        return True
    except OSError:
        return False


def _on_sigterm(signum, frame_):
    # meson's timeout sends SIGTERM: unwind so that finally blocks and the
    # cleanup run.
    raise SystemExit("killed by signal %d (test timeout?)" % signum)


def main(test_fn):
    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(kill_all)
    env = None
    dir = None
    rc = 1
    try:
        if not _loopback_ok():
            raise Skip("cannot bind a TCP socket on 127.0.0.1")
        agent, cli = _find_binaries()
        dir = tempfile.mkdtemp(prefix="vc-int-%s-" %
                               os.path.basename(sys.argv[0]).split(".")[0])
        atexit.register(_rmtree_unless_kept, dir)
        env = Env(agent, cli, dir)
        log("agent %s, cli %s, dir %s", agent, cli, dir)
        test_fn(env)
        check_logs(env)
        log("PASS")
        rc = 0
    except Skip as e:
        print("SKIP: %s" % e)
        rc = SKIP
    except BaseException as e:  # noqa: B902 -- we report and clean up
        traceback.print_exc(file=sys.stdout)
        print("FAIL: %s" % (e,))
        if env:
            for a in env.agents():
                print("---- %s (pid %s, %s) last log lines:"
                      % (a.name, a.pid,
                         "running" if a.running() else "exited %s"
                         % (a.proc.returncode if a.proc else "-")))
                print(a.tail())
        rc = 1
    finally:
        kill_all()
        if dir:
            _rmtree_unless_kept(dir)
    sys.stdout.flush()
    sys.exit(rc)


_removed = set()


def _rmtree_unless_kept(dir):
    if dir in _removed:
        return
    _removed.add(dir)
    if os.environ.get("VC_KEEP"):
        if os.path.isdir(dir):
            sys.stdout.write("vc: kept %s\n" % dir)
        return
    shutil.rmtree(dir, ignore_errors=True)
