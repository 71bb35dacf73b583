#!/usr/bin/env python3
"""The encrypted, authenticated peer transport (agent/transport.c), with keys
made by `virtcloud keygen`:

1. three agents with pinned keys elect a leader and commit creates; a
   follower killed and restarted rejoins through new handshakes;
2. a slow-loris connection (connect, 1 byte, silence) to a peer port is
   closed within the handshake deadline while the cluster keeps committing;
3. garbage bytes on the peer port are refused (closed, logged with the
   address) without harming the cluster; idle connections beyond the
   per-address cap are closed at once;
4. a site running with another key than the one pinned for it never joins
   the raft traffic: its peers log the refusal, it never leads or commits;
5. a man in the middle (a proxy on every peer address) that flips a bit in
   a frame, replays one or cuts a connection in the middle of one: the
   receiver closes the connection and logs it with the peer's address,
   raft redials and the cluster keeps committing;
6. forwarding over the channel (client-auth = required): creates sent to a
   follower commit, and the follower agent holds no TCP connection to the
   leader's client API port, only channel connections to its peer port
   (the same check on a plain cluster does see the API connection); a
   forward-purpose handshake from a key that is not a site's, or with an
   unknown purpose, is refused; a site's own is answered.

With VC_BENCH=path/to/virtcloud-bench, runs the creates benchmark against a
plain-TCP cluster and a secure one (encrypted peers, every request signed
and checked: client-auth = required) instead (same binaries, same run) and prints
both throughputs and the cost in percent (VC_BENCH_COUNT, VC_BENCH_CONC,
VC_BENCH_ROUNDS tune it).
"""
import base64
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promtext  # noqa: E402
import test_metrics  # noqa: E402
import vc  # noqa: E402

CHANNEL_VERSION = 3  # agent/channel.h
DEADLINE_S = 5.0  # TRANSPORT_HANDSHAKE_MS
PER_IP_CAP = 8    # TRANSPORT_UNAUTH_PER_IP


def keygen(env, name):
    """Runs `virtcloud keygen`; returns (private key path, public key)."""
    kdir = os.path.join(env.dir, "keys%d" % len(env.clusters))
    os.makedirs(kdir, exist_ok=True)
    path = os.path.join(kdir, name + ".key")
    r = env.cli("keygen", "--out", path)
    vc.check(r.rc == 0 and isinstance(r.doc, dict), "keygen: %r", r)
    pub = r.doc["public"]
    vc.check(re.fullmatch(r"vc1:[A-Za-z0-9+/]{43}=", pub), "public key %r",
             pub)
    vc.check(os.stat(path).st_mode & 0o777 == 0o600, "%s is not 0600", path)
    with open(path + ".pub") as f:
        vc.check(f.read().strip() == pub, "%s.pub differs", path)
    # Never overwrites.
    again = env.cli("keygen", "--out", path)
    vc.check(again.rc != 0, "keygen overwrote %s: %r", path, again)
    return path, pub


def fresh_dirs(env, c):
    """Site names repeat across the clusters of one run: give every cluster
    after the first its own data dirs and logs."""
    if len(env.clusters) > 1:
        for a in c.agents:
            tag = "c%d-%s" % (len(env.clusters), a.name)
            a.data_dir = os.path.join(env.dir, tag)
            a.log_path = os.path.join(env.dir, tag + ".log")


def secure_cluster(env, n=3, wrong=None, start=True, timeout=60, pools=None,
                   client_auth="off"):
    """n agents with keys pinned in each other's peer-keys; the site named
    `wrong` runs with a key of its own instead of the pinned one. Clients
    are not authenticated unless client_auth="required" (this file tests
    the peer transport; test_secure_auth.py the clients)."""
    c = env.cluster(n, start=False, pools=pools)
    fresh_dirs(env, c)
    keys = {a.name: keygen(env, a.name) for a in c.agents}
    pins = ",".join("%s=%s" % (name, keys[name][1]) for name in keys)
    for a in c.agents:
        path = keys[a.name][0]
        if a.name == wrong:
            path = keygen(env, a.name + "-wrong")[0]
        a.extra += ["--key", path, "--peer-keys", pins,
                    "--cluster-id", "itest", "--client-auth", client_auth]
    if start:
        c.start(timeout)
    return c, keys


def create(c, i, name, sites="brno,praha,plzen", timeout="10s"):
    r = c.cli(i, "cluster", "create", name, "--sites", sites, timeout=timeout)
    vc.check(r.rc == 0 and r.doc.get("ok") is True, "create %s: %r", name, r)
    return r


def closed_after(sock, limit):
    """Seconds until the peer closed sock (EOF or reset), or None if it is
    still open after limit seconds."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


def check_secure_cluster(env):
    c, keys = secure_cluster(env)
    for a in c.agents:
        vc.check("peer traffic authenticated and encrypted" in a.log_text(),
                 "%s does not say its peer traffic is encrypted", a.name)
        vc.check("not encrypted" not in a.log_text(), "%s runs plain TCP",
                 a.name)
    leader = c.wait_leader()
    f = c.followers(leader)[0]
    vc.log("secure cluster up: leader %s", c[leader].name)
    r = create(c, f, "sec1")
    vc.check(r.doc["vlan"] == 150, "%r", r)
    clusters, _ = c.wait_converged()
    vc.check([x["name"] for x in clusters] == ["sec1"], "%r", clusters)

    # --- slow loris on a follower's peer port, creates meanwhile ---------
    target = c[f]
    host, port = target.peer.rsplit(":", 1)
    loris = socket.create_connection((host, int(port)), timeout=5)
    loris.sendall(b"V")  # a plausible first byte, then nothing
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < DEADLINE_S - 1.5:
        create(c, leader, "loris%d" % n)
        r = c.cli(leader, "cluster", "release", "loris%d" % n)
        vc.check(r.rc == 0, "release loris%d: %r", n, r)
        n += 1
    took = closed_after(loris, DEADLINE_S + 3 - (time.monotonic() - t0))
    total = time.monotonic() - t0
    loris.close()
    vc.check(took is not None, "slow-loris connection still open after %.1fs",
             DEADLINE_S + 3)
    vc.check(total <= DEADLINE_S + 1.5, "slow loris closed after %.1fs", total)
    vc.log("slow loris closed after %.1fs; %d creates committed meanwhile",
           total, n)
    vc.check(n >= 3, "only %d creates committed during the slow loris", n)
    vc.wait_until(lambda: "no completed handshake within" in
                  target.log_text(), 5, "the slow-loris refusal in the log")

    # --- garbage -----------------------------------------------------------
    g = socket.create_connection((host, int(port)), timeout=5)
    g.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(2000))
    took = closed_after(g, 3)
    g.close()
    vc.check(took is not None and took < 2, "garbage not refused: %r", took)
    vc.wait_until(lambda: re.search(r"peer 127\.0\.0\.1:\d+: refused: not a "
                                    r"VirtCloud peer", target.log_text()),
                  5, "the garbage refusal with the peer's address")
    # Random bytes that start like a handshake: refused by size/signature.
    g = socket.create_connection((host, int(port)), timeout=5)
    g.sendall(b"VCPC" + bytes([CHANNEL_VERSION, 0, 0, 0]) + os.urandom(128))
    took = closed_after(g, 3)
    g.close()
    vc.check(took is not None, "random msg1 not refused")

    # --- too many idle connections from one address -----------------------
    idle = [socket.create_connection((host, int(port)), timeout=5)
            for _ in range(PER_IP_CAP + 4)]
    time.sleep(0.5)
    dropped = sum(1 for s in idle if closed_after(s, 0.3) is not None)
    for s in idle:
        s.close()
    vc.check(dropped >= 4, "only %d of %d idle connections dropped at once",
             dropped, len(idle))
    vc.log("%d of %d idle connections refused at once", dropped, len(idle))

    create(c, leader, "after-abuse")
    vc.check(all(a.running() for a in c.agents), "an agent died")
    check_peer_metrics(c, target)

    # A follower killed (its connections end without a final frame) and
    # restarted: raft redials through new handshakes and it catches up.
    victim = c.followers(leader)[-1]
    c[victim].kill9()
    create(c, leader, "while-down", sites="brno,praha,plzen")
    c[victim].start()
    clusters, _ = c.wait_converged(timeout=30)
    vc.check({x["name"] for x in clusters} >= {"while-down", "after-abuse"},
             "%r", clusters)
    for a in c.agents:
        vc.check(a.log_text().count("cannot pump") == 0, "%s: pump error",
                 a.name)
    # Clean stop: every agent exits 0 (peers see final frames, no leaks).
    for a in c.agents:
        a.signal(15)
    for a in c.agents:
        rc = a.wait_exit(20)
        vc.check(rc == 0, "%s exited %r after SIGTERM", a.name, rc)


def peer_metrics(agent):
    """The secure transport's series of agent's /metrics, by name."""
    fams = test_metrics.scrape(agent)
    def v(name, **labels):
        x = promtext.value(fams, name, **labels)
        vc.check(x is not None, "%s: no %s%r in /metrics", agent.name, name,
                 labels)
        return x
    return v


def check_peer_metrics(c, abused):
    """Every agent counts its raft channels both ways and the raft messages
    through them; the agent abused above counts the refusals (loris,
    garbage, random msg1, idle connections over the cap)."""
    for a in c.agents:
        v = peer_metrics(a)
        for d in ("in", "out"):
            vc.check(v("virtcloud_peer_connections", purpose="raft",
                       direction=d) >= 1, "%s: no raft channel %s", a.name, d)
            vc.check(v("virtcloud_raft_messages_total", direction=d,
                       result="ok") > 0, "%s: no raft message %s", a.name, d)
    v = peer_metrics(abused)
    vc.check(v("virtcloud_peer_refused_total") >= 6, "%s counted %r refused "
             "connections", abused.name, v("virtcloud_peer_refused_total"))


def check_wrong_key(env):
    c, keys = secure_cluster(env, wrong="plzen", start=False)
    for a in c.agents:
        a.start()
    leader = c.wait_leader(among=[0, 1], timeout=60)
    vc.log("leader %s without plzen", c[leader].name)

    def registered():
        r = c.cli(leader, "site", "list", timeout="3s")
        names = {x["name"] for x in r.doc} if r.rc == 0 else set()
        return {"brno", "praha"} <= names

    vc.wait_until(registered, 20, "brno and praha registered")
    create(c, leader, "wk1", sites="brno,praha")
    bad = c.by_name("plzen")
    # Its peers refuse it: as a caller (unknown key) and as a callee (not
    # the pinned key), logged with its address.
    vc.wait_until(lambda: any("unknown key" in c[i].log_text() and
                              "refused" in c[i].log_text()
                              for i in (0, 1)),
                  15, "a peer logging plzen's unknown key")
    vc.wait_until(lambda: any("its pinned key is" in c[i].log_text()
                              for i in (0, 1)),
                  15, "a peer logging plzen's wrong key")
    for _ in range(10):
        st = c.status(c.index("plzen"))
        vc.check(st is not None, "plzen does not answer status")
        vc.check(st["role"] != "leader", "plzen became leader: %r", st)
        # Index 1 is its own bootstrap configuration, committed locally.
        vc.check(st["commit"] <= 1 and not st["leader"],
                 "plzen committed or follows a leader: %r", st)
        time.sleep(0.3)
    r = c.cli(c.index("plzen"), "cluster", "list", "--stale")
    vc.check(r.rc == 0 and r.doc == [], "plzen applied entries: %r", r)
    vc.check("peer-keys pins another key for this site" in bad.log_text(),
             "plzen does not warn about its key")
    create(c, leader, "wk2", sites="brno,praha")


# --- a man in the middle --------------------------------------------------

HANDSHAKE_UP = 136 + 88  # msg1 + msg3: what the dialler sends before frames


class Proxy:
    """Forwards a peer port; when armed, does one thing to one frame the
    dialler sends after the handshake: "flip" a bit, "replay" it or "cut"
    the connection in its middle. One shot, shared by every proxy."""

    shared = {"mode": None, "done": threading.Event()}
    lock = threading.Lock()

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def arm(cls, mode):
        cls.shared["done"].clear()
        cls.shared["mode"] = mode

    @classmethod
    def take(cls):
        with cls.lock:
            mode, cls.shared["mode"] = cls.shared["mode"], None
            return mode

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            host, port = self.target.rsplit(":", 1)
            try:
                u = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c),
                             daemon=True).start()

    @staticmethod
    def _down(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _up(self, src, dst):
        buf, skipped = b"", 0
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                buf += b
                if skipped < HANDSHAKE_UP:
                    n = min(HANDSHAKE_UP - skipped, len(buf))
                    dst.sendall(buf[:n])
                    buf, skipped = buf[n:], skipped + n
                while skipped >= HANDSHAKE_UP and len(buf) >= 4:
                    n = 4 + struct.unpack(">I", buf[:4])[0]
                    if len(buf) < n:
                        break
                    f, buf = buf[:n], buf[n:]
                    if not self._tamper(f, dst):
                        dst.sendall(f)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _tamper(self, f, dst):
        mode = self.take() if len(f) > 40 else None
        if mode == "flip":
            g = bytearray(f)
            g[len(g) // 2] ^= 0x10
            dst.sendall(bytes(g))
        elif mode == "replay":
            dst.sendall(f + f)
        elif mode == "cut":
            dst.sendall(f[:len(f) // 2])
            self.shared["done"].set()
            raise OSError("cut")
        if mode:
            self.shared["done"].set()
        return mode is not None


def check_tampering(env):
    c, keys = secure_cluster(env, start=False)
    proxies = [Proxy(a.peer) for a in c.agents]
    boot = ",".join("%s=%s" % (a.name, p.addr)
                    for a, p in zip(c.agents, proxies))
    for a in c.agents:
        a.bootstrap = boot
    c.start()
    leader = c.wait_leader()
    create(c, leader, "mitm0")
    marks = {"flip": "fails authentication", "replay": "fails authentication",
             "cut": "cut short"}
    for k, (mode, mark) in enumerate(marks.items()):
        before = sum(a.log_text().count(mark) for a in c.agents)
        Proxy.arm(mode)
        vc.check(Proxy.shared["done"].wait(10), "%s: no frame seen", mode)
        vc.wait_until(lambda: sum(a.log_text().count(mark)
                                  for a in c.agents) > before, 10,
                      "%r logged after a %s frame" % (mark, mode))
        line = [l for a in c.agents for l in a.log_text().splitlines()
                if mark in l][-1]
        vc.check(re.search(r"peer 127\.0\.0\.1:\d+ \w+: ", line),
                 "no peer address in %r", line)
        vc.log("%s: %s", mode, line.split(": ", 1)[1][:150])
        create(c, c.wait_leader(), "mitm%d" % (k + 1))
    c.wait_converged()
    errors = sum(peer_metrics(a)("virtcloud_peer_errors_total")
                 for a in c.agents)
    vc.check(errors >= 2, "flipped and replayed frames counted as %r "
             "peer errors", errors)


# --- forwarding over the channel -------------------------------------------

def tcp_conns(pid):
    """The established TCP connections of process pid, as (local port,
    remote "ip:port") pairs: its socket inodes (/proc/PID/fd) matched
    against /proc/PID/net/tcp and tcp6. Loopback IPv4 only is decoded."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if col[3] != "01" or col[9] not in inodes:  # 01: ESTABLISHED
                continue
            lport = int(col[1].rsplit(":", 1)[1], 16)
            rhex, rport = col[2].rsplit(":", 1)
            rip = (socket.inet_ntoa(struct.pack("<I", int(rhex, 16)))
                   if len(rhex) == 8 else "v6")
            out.append((lport, "%s:%d" % (rip, int(rport, 16))))
    return out


def conns_to(pid, addr):
    return sum(1 for _, r in tcp_conns(pid) if r == addr)


def forward_creates(c, f, tag, n=5):
    for k in range(n):
        create(c, f, "%s%d" % (tag, k), sites="brno,praha")


def msg1(purpose, pk, addr=b"127.0.0.1:1"):
    """A handshake msg1 (agent/channel.h) with a random ephemeral key:
    enough for the responder's purpose and key checks, which come before
    any signature."""
    return (b"VCPC" + bytes([CHANNEL_VERSION, purpose, 0, 0]) + os.urandom(32) + pk +
            addr.ljust(64, b"\0"))


def handshake_reply(addr, m):
    """Sends msg1 m to a peer port; returns the bytes answered before the
    responder closed (or 1 s passed)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(m)
    got = b""
    s.settimeout(1)
    try:
        while len(got) < 160:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return got


def pk_bytes(pub):
    return base64.b64decode(pub[4:])


def site_channel(addr, key_path, cluster_id="itest", purpose=1):
    """A complete handshake (agent/channel.h) as the site whose private key
    file is key_path; returns the open socket (no frames sent), or None if
    the python `cryptography` package is missing."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
        from cryptography.hazmat.primitives import serialization as ser
    except ImportError:
        return None
    import hashlib
    raw = ser.Encoding.Raw, ser.PublicFormat.Raw
    with open(key_path) as f:
        seed = base64.b64decode(f.read().strip()[len("vc1-private:"):])
    me = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    eph = x25519.X25519PrivateKey.generate()
    m1 = (b"VCPC" + bytes([CHANNEL_VERSION, purpose, 0, 0]) +
          eph.public_key().public_bytes(*raw) +
          me.public_key().public_bytes(*raw) + b"127.0.0.1:1".ljust(64, b"\0"))
    label = b"virtcloud peer channel\0"
    cid = cluster_id.encode()
    h = hashlib.blake2b(label + bytes([CHANNEL_VERSION, len(cid)]) + cid,
                        digest_size=32).digest()
    h = hashlib.blake2b(h + m1, digest_size=32).digest()
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(m1)
    m2 = b""
    while len(m2) < 160:
        b = s.recv(160 - len(m2))
        vc.check(b, "responder closed instead of msg2")
        m2 += b
    h = hashlib.blake2b(h + m2[:72], digest_size=32).digest()
    s.sendall(me.sign(b"I" + h) + os.urandom(24))  # msg3
    return s


def check_plain_forward_uses_api(env):
    """The inspection below can fail: a plain cluster's follower does
    forward over a TCP connection to the leader's API port."""
    c = env.cluster(3, start=False)
    fresh_dirs(env, c)
    c.start()
    leader = c.wait_leader()
    f = c.followers(leader)[0]
    forward_creates(c, f, "plain")
    n = conns_to(c[f].pid, c[leader].api)
    vc.check(n >= 1, "plain: follower %s has no connection to the leader's "
             "API %s: %r", c[f].name, c[leader].api, tcp_conns(c[f].pid))
    for a in c.agents:
        a.signal(15)
    for a in c.agents:
        a.wait_exit(20)


def check_forward_cap(c, L, F, keys):
    """Forwarding channels have a per-site cap of their own: three more
    as F (beside F's own link) close the oldest forwarding ones, never a
    raft connection, and F keeps forwarding."""
    socks = [site_channel(L.peer, keys[F.name][0]) for _ in range(3)]
    if socks[0] is None:
        vc.log("no python cryptography: forwarding cap not checked")
        return
    vc.wait_until(lambda: "forward connections from this site: closing "
                  "the oldest" in L.log_text(), 5,
                  "the leader capping %s's forwarding channels" % F.name)
    vc.check(closed_after(socks[0], 3) is not None,
             "the oldest extra forwarding channel is still open")
    vc.check(closed_after(socks[2], 0.5) is None,
             "the newest forwarding channel was closed")
    vc.check("raft connections from this site" not in L.log_text(),
             "a forwarding channel evicted a raft connection")
    for s in socks:
        s.close()
    forward_creates(c, c.index(F.name), "fwd-cap")


def check_forward_channel(env):
    check_plain_forward_uses_api(env)
    c, keys = secure_cluster(env, client_auth="required", start=False)
    # The harness's CLI signs with a site key (accepted like an admin's).
    env.cli_env["VIRTCLOUD_KEY"] = keys["brno"][0]
    c.start()
    leader = c.wait_leader()
    f = c.followers(leader)[0]
    L, F = c[leader], c[f]
    vc.log("secure: leader %s, forwarding through %s", L.name, F.name)
    forward_creates(c, f, "fwd")
    vc.check(conns_to(F.pid, L.api) == 0, "follower %s is connected to the "
             "leader's API %s: %r", F.name, L.api, tcp_conns(F.pid))
    # Raft's connection and the forwarding channel, both to the peer port.
    vc.wait_until(lambda: conns_to(F.pid, L.peer) >= 2, 5,
                  "raft and forwarding channels from %s to %s" %
                  (F.name, L.peer))
    # Still none to any API port while it keeps forwarding.
    forward_creates(c, f, "fwd-more")
    apis = {a.api for a in c.agents}
    vc.check(not [r for _, r in tcp_conns(F.pid) if r in apis],
             "follower connected to an API port: %r", tcp_conns(F.pid))

    # A client key (not a site's) may not open a forwarding channel; an
    # unknown purpose is refused even with a site's key; the site's own
    # forward msg1 is answered with msg2.
    _, client_pub = keygen(env, "client")
    before = L.log_text().count("for forwarding")
    got = handshake_reply(L.peer, msg1(1, pk_bytes(client_pub)))
    vc.check(got == b"", "forward handshake from a client key answered: "
             "%d bytes", len(got))
    vc.wait_until(lambda: L.log_text().count("for forwarding") > before, 5,
                  "the client key's forward handshake refused in the log")
    site_pk = pk_bytes(keys[F.name][1])
    got = handshake_reply(L.peer, msg1(7, site_pk))
    vc.check(got == b"", "unknown purpose answered: %d bytes", len(got))
    vc.wait_until(lambda: "unknown channel purpose 7" in L.log_text(), 5,
                  "the unknown purpose refused in the log")
    got = handshake_reply(L.peer, msg1(1, site_pk))
    vc.check(len(got) == 160 and got[:5] == b"VCPC" + bytes([CHANNEL_VERSION]),
             "a site's forward msg1 not answered with msg2: %r", got[:8])
    check_forward_cap(c, L, F, keys)
    forward_creates(c, f, "fwd-after")
    env.cli_env.pop("VIRTCLOUD_KEY", None)
    for a in c.agents:
        a.signal(15)
    for a in c.agents:
        rc = a.wait_exit(20)
        vc.check(rc == 0, "%s exited %r after SIGTERM", a.name, rc)


def test(env):
    check_forward_channel(env)
    check_secure_cluster(env)
    check_wrong_key(env)
    check_tampering(env)


# --- benchmark: secure vs plain, same run ----------------------------------

def bench_once(env, bench, mode, count, conc):
    """mode: "plain" (plain TCP, no client auth), "session" (encrypted
    peers, client-auth required, one signed session per connection then a
    MAC per request) or "sign-each" (the same, every request signed)."""
    pools = ["100-3999"] * 3  # the benchmark must not run out of VLANs
    sign = []
    if mode != "plain":
        # The benchmark authenticates with a site key (accepted like an
        # admin's).
        c, keys = secure_cluster(env, pools=pools, client_auth="required",
                                 start=False)
        sign = ["--key", keys["brno"][0]]
        if mode == "sign-each":
            sign.append("--sign-each")
        env.cli_env["VIRTCLOUD_KEY"] = keys["brno"][0]  # the harness's CLI
        c.start()
    else:
        c = env.cluster(3, pools=pools, start=False)
        fresh_dirs(env, c)
        c.start()
    c.wait_leader()
    p = subprocess.run([bench, "--api", c.api_list(), "--count", str(count),
                        "--concurrency", str(conc)] + sign,
                       capture_output=True,
                       timeout=600, env=env.cli_env)
    out = p.stdout.decode() + p.stderr.decode()
    vc.check(p.returncode == 0, "bench failed:\n%s", out)
    m = re.search(r"creates_per_s=([0-9.]+) p50_ms=([0-9.]+) "
                  r"p99_ms=([0-9.]+)", out)
    vc.check(m, "no creates_per_s in:\n%s", out)
    env.cli_env.pop("VIRTCLOUD_KEY", None)
    cpu = sum(cpu_s(a.pid) for a in c.agents)
    for a in c.agents:
        a.signal(15)
    for a in c.agents:
        a.wait_exit(20)
    return (float(m.group(1)), cpu * 1e6 / count,
            "p50 %s ms, p99 %s ms" % m.group(2, 3))


def cpu_s(pid):
    """User + system CPU seconds of a running process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(env):
    path = os.environ["VC_BENCH"]
    count = int(os.environ.get("VC_BENCH_COUNT", "30000"))
    conc = int(os.environ.get("VC_BENCH_CONC", "64"))
    rounds = int(os.environ.get("VC_BENCH_ROUNDS", "3"))
    modes = ("plain", "session", "sign-each")
    res = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    for r in range(rounds):
        for mode in modes:
            rate, us, lat = bench_once(env, path, mode, count, conc)
            res[mode].append(rate)
            cpu[mode].append(us)
            vc.log("round %d %-9s: %.0f creates/s, agents' CPU %.0f us per "
                   "create (%s)", r + 1, mode, rate, us, lat)

    def median(v):
        return sorted(v)[len(v) // 2]

    plain = median(res["plain"])
    label = {"plain": "plain TCP ",
             "session": "secure    ",
             "sign-each": "sign-each "}
    what = {"plain": "",
            "session": " (encrypted peers, session-authenticated requests)",
            "sign-each": " (encrypted peers, every request signed)"}
    for mode in modes:
        print("%s: %s creates/s (median %.0f), CPU %.0f us/create%s" %
              (label[mode], " ".join("%.0f" % x for x in res[mode]),
               median(res[mode]), median(cpu[mode]), what[mode]))
    for mode in modes[1:]:
        print("cost %-9s: %.1f%% lower throughput (medians), %+.1f%% CPU" %
              (mode, 100 * (plain - median(res[mode])) / plain,
               100 * (median(cpu[mode]) - median(cpu["plain"])) /
               median(cpu["plain"])))


if __name__ == "__main__":
    vc.main(bench if os.environ.get("VC_BENCH") else test)
