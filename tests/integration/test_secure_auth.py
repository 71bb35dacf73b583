#!/usr/bin/env python3
"""Keys in the replicated state and client authentication (agent/auth.c,
agent/fsm_auth.c), with real agents on loopback and the real CLI:

1. client-auth = required: an unsigned request over TCP is refused; root
   on the local Unix socket is admin and binds the first admin key;
2. roles: a scheduler creates for any owner but cannot add sites (invite),
   remove sites or bind keys; a user cannot release another user's
   cluster but releases its own; an unknown key is refused, naming the
   key tried; a removed role binding is refused from the next request;
3. raw frames captured from the CLI: replayed, a bit flipped, another key
   put in the envelope, cut short: each refused, nothing applied, the
   cluster keeps committing;
4. key rotation of one site while creates run: every create commits, the
   site ends with the new key (its key file replaced), the old key
   revoked;
5. a site joins with a one-time token (site invite): it pins the members'
   keys from the token; the same token is refused a second time;
6. removing a site revokes its key at once: the other agents close its
   connections, raft's and the forwarding channels alike, and refuse its
   handshakes; commits go on.
Needs root (the Unix socket's SO_PEERCRED admin), else skips.
"""
import base64
import os
import re
import socket
import struct
import subprocess
import threading
import time

import vc
import members_lib
import test_secure_peer as sp

VC_EDENIED = -10019


def admin(env, c):
    """Binds an admin key through the Unix socket as root; returns its
    path."""
    path, pub = sp.keygen(env, "admin")
    sock = "unix:" + os.path.join(c[0].data_dir, "agent.sock")
    r = env.cli("role", "add", "ops", pub, "--role", "admin", api=sock)
    vc.check(r.rc == 0, "root on the unix socket: role add: %r", r)
    bound_everywhere(c, path)
    return path


def bound_everywhere(c, key):
    """Waits until every agent has applied the binding of key: an agent
    answers a committed write before every replica applied it, and
    each agent checks keys against its own replica."""
    for i in range(len(c.agents)):
        for _ in range(100):
            r = cli(c, i, key, "status")
            if r.rc == 0:
                break
            time.sleep(0.05)
        vc.check(r.rc == 0, "agent %d never learnt key %s: %r", i, key, r)


def cli(c, i, key, *args, timeout="10s"):
    return c.cli(i, "--key", key, *args, timeout=timeout)


def client_key(env, c, adm, name, role):
    path, pub = sp.keygen(env, "client-" + name)
    r = cli(c, 0, adm, "role", "add", name, pub, "--role", role)
    vc.check(r.rc == 0, "role add %s: %r", name, r)
    bound_everywhere(c, path)
    return path


def denied(r, *words):
    vc.check(r.rc != 0 and r.doc and r.doc.get("error") == "DENIED",
             "expected a refusal: %r", r)
    for w in words:
        vc.check(w in r.doc.get("message", ""), "%r not in %r", w,
                 r.doc.get("message"))


def check_roles(env, c, adm):
    site_key = env.cli_env.pop("VIRTCLOUD_KEY")
    r = c.cli(0, "cluster", "list")
    env.cli_env["VIRTCLOUD_KEY"] = site_key
    denied(r, "unsigned request refused", "no key")
    sched = client_key(env, c, adm, "slurm", "scheduler")
    alice = client_key(env, c, adm, "alice", "user")
    bob = client_key(env, c, adm, "bob", "user")
    for owner in ("alice", "bob"):
        r = cli(c, 1, sched, "cluster", "create", "c-" + owner, "--sites",
                "brno,praha", "--owner", owner)
        vc.check(r.rc == 0, "scheduler create for %s: %r", owner, r)
    # A scheduler is no admin.
    denied(cli(c, 0, sched, "site", "invite", "newsite"), "admin")
    denied(cli(c, 0, sched, "site", "remove", "plzen"), "admin")
    denied(cli(c, 0, sched, "role", "add", "eve", alice + ".pub", "--role",
               "admin"), "admin")
    # A user acts on its own clusters only.
    r = cli(c, 2, bob, "cluster", "release", "c-alice")
    denied(r, "only on clusters it owns", "(bob)", bob)
    denied(cli(c, 0, bob, "cluster", "show", "c-alice"), "its own")
    denied(cli(c, 0, bob, "cluster", "create", "c-bob2", "--sites", "brno",
               "--owner", "bob"), "scheduler")
    r = cli(c, 0, alice, "cluster", "show", "c-alice")
    vc.check(r.rc == 0, "alice shows her cluster: %r", r)
    r = cli(c, 2, alice, "cluster", "renew", "c-alice", "--lease", "2h")
    vc.check(r.rc == 0, "alice renews her cluster: %r", r)
    r = cli(c, 1, alice, "cluster", "release", "c-alice")
    vc.check(r.rc == 0, "alice releases her cluster: %r", r)
    # An unknown key; then a removed binding.
    stranger, _ = sp.keygen(env, "stranger")
    denied(cli(c, 0, stranger, "cluster", "list"), "not bound to a role",
           stranger)
    # A follower says it may lag behind a binding added just now; the
    # leader, which commits bindings, does not.
    li = c.wait_leader()
    r = cli(c, c.followers(li)[0], stranger, "cluster", "list")
    denied(r, "not bound to a role", "may not have applied it yet")
    r = cli(c, li, stranger, "cluster", "list")
    denied(r, "not bound to a role")
    vc.check("may not have applied" not in r.doc["message"], "the leader "
             "suggests it lags: %r", r.doc["message"])
    r = cli(c, 0, adm, "role", "remove", "bob")
    vc.check(r.rc == 0, "role remove bob: %r", r)
    denied(cli(c, 0, bob, "cluster", "show", "c-bob"), "not bound")
    return sched


class Capture:
    """A one-connection proxy to an agent's API that records what the
    client sends."""

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.sent = b""
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        cs, _ = self.lsock.accept()
        up = vc.connect(self.target)
        done = threading.Event()

        def down():
            try:
                while True:
                    b = up.recv(65536)
                    if not b:
                        break
                    cs.sendall(b)
            except OSError:
                pass
            done.set()
        threading.Thread(target=down, daemon=True).start()
        try:
            while True:
                b = cs.recv(65536)
                if not b:
                    break
                self.sent += b
                up.sendall(b)
        except OSError:
            pass
        up.shutdown(socket.SHUT_WR)
        done.wait(5)
        cs.close()
        up.close()
        self.lsock.close()


def send_raw(api, data):
    """Sends data on a fresh connection; returns the answer list (None if
    the agent closed without answering)."""
    s = vc.connect(api)
    try:
        s.sendall(data)
        return vc.recv_frame(s, 10)
    finally:
        s.close()


def cluster_names(c, key):
    r = cli(c, 0, key, "cluster", "list")
    vc.check(r.rc == 0, "list: %r", r)
    return sorted(x["name"] for x in r.doc)


def check_frames(env, c, sched, adm):
    cap = Capture(c[0].api)
    r = c.cli(0, "--key", sched, "cluster", "create", "cap1", "--sites",
              "brno", "--owner", "alice", api=cap.addr)
    vc.check(r.rc == 0, "create through the capture proxy: %r", r)
    cap.t.join(10)
    frame = cap.sent
    vc.check(len(frame) > 4 and frame[4:6] == b"\x96\x02",
             "the CLI did not send a signed frame: %r", frame[:8])
    before = cluster_names(c, adm)
    # 1. Replayed as is.
    resp = send_raw(c[0].api, frame)
    vc.check(resp and resp[2] == VC_EDENIED and "replayed" in resp[3],
             "replay: %r", resp)
    # 2. A bit flipped inside the signed payload.
    body = bytearray(frame)
    body[12] ^= 0x01
    resp = send_raw(c[1].api, bytes(body))
    vc.check(resp and resp[2] != 0, "flipped bit accepted: %r", resp)
    # 3. Another (admin's) key put in the envelope: the signature fails.
    with open(adm + ".pub") as f:
        pk = base64.b64decode(f.read().strip()[4:])
    body = bytearray(frame)
    at = body.index(b"\xc4\x20", len(body) - 140)
    body[at + 2:at + 34] = pk
    resp = send_raw(c[2].api, bytes(body))
    vc.check(resp and resp[2] == VC_EDENIED and "signature" in resp[3],
             "foreign key: %r", resp)
    # 4. Cut short: the agent waits for the rest, never applies it.
    s = vc.connect(c[0].api)
    s.sendall(frame[:len(frame) // 2])
    s.close()
    after = cluster_names(c, adm)
    vc.check(before == after, "raw frames changed the state: %r -> %r",
             before, after)
    r = cli(c, 2, sched, "cluster", "create", "after-frames", "--sites",
            "praha", "--owner", "bob")
    vc.check(r.rc == 0, "create after the raw frames: %r", r)


class Probe:
    """vc-session-probe (session_probe.c): one client session, driven a
    command at a time."""

    def __init__(self, env, api, key):
        # BUILD/agent/virtcloud-agent -> BUILD/tests/integration/
        build = os.path.dirname(os.path.dirname(os.path.abspath(env.agent)))
        exe = os.path.join(build, "tests", "integration", "vc-session-probe")
        self.p = subprocess.Popen([exe, api, key], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        with vc._procs_lock:  # stopped by the harness even on failure
            vc._procs.append(self.p)

    def do(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        vc.check(out, "session probe died on %r", line)
        code, closed, msg = out.rstrip("\n").split(" ", 2)
        return {"code": int(code), "closed": closed == "1", "msg": msg}

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def check_sessions(env, c, sched, adm):
    """One signed request opens a session; then a MAC per request, in
    sequence. Replayed, altered, skipped or session-less frames are
    refused and the connection closed; a role removed mid-session takes
    effect on the next request."""
    p = Probe(env, c[1].api, sched)
    try:
        vc.check(p.do("open")["code"] == 0, "open a session")
        r = p.do("create sess-1 brno alice")
        vc.check(r["code"] == 0, "create in a session: %r", r)
        r = p.do("show sess-1")
        vc.check(r["code"] == 0, "read in a session: %r", r)
        r = p.do("replay")
        vc.check(r["code"] == VC_EDENIED and "out of sequence" in r["msg"]
                 and r["closed"], "replayed session frame: %r", r)
        vc.check(p.do("open")["code"] == 0, "reopen")
        r = p.do("flip")
        vc.check(r["code"] == VC_EDENIED and "does not authenticate" in
                 r["msg"] and r["closed"], "flipped bit: %r", r)
        vc.check(p.do("open")["code"] == 0, "reopen")
        vc.check(p.do("ping")["code"] == 0, "ping")
        r = p.do("skip")
        vc.check(r["code"] == VC_EDENIED and r["closed"], "skipped seq: %r",
                 r)
        r = p.do("bare")
        vc.check(r["code"] == VC_EDENIED and "without a session" in
                 r["msg"], "session frame without a session: %r", r)
    finally:
        p.close()
    # A user's session: its own cluster, until its binding goes.
    carol = client_key(env, c, adm, "carol", "user")
    r = cli(c, 0, sched, "cluster", "create", "c-carol", "--sites", "brno",
            "--owner", "carol")
    vc.check(r.rc == 0, "create for carol: %r", r)
    p = Probe(env, c[0].api, carol)
    try:
        vc.check(p.do("open")["code"] == 0, "carol opens a session")
        for _ in range(50):  # until this agent has applied the create
            r = p.do("show c-carol")
            if r["code"] == 0:
                break
            time.sleep(0.1)
        vc.check(r["code"] == 0, "carol reads her cluster: %r", r)
        r = p.do("create c-carol2 brno carol")
        vc.check(r["code"] == VC_EDENIED and "scheduler" in r["msg"],
                 "a user's session cannot create: %r", r)
        r = cli(c, 0, adm, "role", "remove", "carol")
        vc.check(r.rc == 0, "role remove carol: %r", r)
        for _ in range(50):  # until this agent has applied the removal
            r = p.do("show c-carol")
            if r["code"] != 0:
                break
            time.sleep(0.1)
        vc.check(r["code"] == VC_EDENIED and "not bound" in r["msg"],
                 "removed binding still served in its session: %r", r)
    finally:
        p.close()
    names = cluster_names(c, adm)
    vc.check("sess-1" in names and "c-carol2" not in names,
             "state after the sessions: %r", names)


def check_rotation(env, c, sched, adm, keys):
    brno = c.index("brno")
    stop = threading.Event()
    results = []

    def load():
        n = 0
        while not stop.is_set():
            n += 1
            r = cli(c, (n % 2) + 1, sched, "cluster", "create",
                    "rot%d" % n, "--sites", "brno,praha,plzen", "--owner",
                    "alice", "--lease", "1h", timeout="20s")
            results.append(r)
            # Released again so that a fast build cannot run out of VLANs.
            if r.rc == 0:
                results.append(cli(c, n % 2, sched, "cluster", "release",
                                   "rot%d" % n, timeout="20s"))
    t = threading.Thread(target=load, daemon=True)
    t.start()
    time.sleep(1)
    with open(keys["brno"][0]) as f:
        old_private = f.read()
    r = cli(c, brno, adm, "site", "rotate-key", "--agent-key",
            keys["brno"][0], "--site", "brno", timeout="30s")
    vc.check(r.rc == 0 and r.doc.get("ok"), "rotate-key: %r", r)
    new = r.doc["key"]
    time.sleep(2)
    stop.set()
    t.join(60)
    bad = [x for x in results if x.rc != 0]
    vc.check(results and not bad, "creates failed across the rotation: %r",
             bad[:3])
    vc.log("%d creates and releases committed across the key rotation",
           len(results))
    r = cli(c, 0, adm, "site", "show", "brno")
    vc.check(r.rc == 0 and r.doc["key"] == new and r.doc["old_key"] == "",
             "brno's record after rotation: %r", r)
    with open(keys["brno"][0]) as f:
        vc.check(f.read() != old_private, "brno's key file was not replaced")
    vc.check(not os.path.exists(keys["brno"][0] + ".next"),
             "KEY.next left behind")
    vc.check("now using key" in c[brno].log_text(), "brno never switched")
    # The old key is revoked: a stale bootstrap pin cannot bring it back,
    # and commits go on with every site.
    r = cli(c, 1, sched, "cluster", "create", "post-rotation", "--sites",
            "brno,praha,plzen", "--owner", "bob")
    vc.check(r.rc == 0, "create after rotation: %r", r)


def metrics_flag(env):
    """Joiners get a /metrics port of their own where the agent has one
    (vc.Agent gives the founders theirs)."""
    rc, out, _ = env.run_agent(["--help"])
    return (["--metrics", "127.0.0.1:%d" % vc.free_port()]
            if "--metrics" in out else [])


def check_invite(env, c, adm):
    r = cli(c, 0, adm, "site", "invite", "liberec", "--ttl", "5m")
    vc.check(r.rc == 0 and r.doc["token"].startswith("vc1-join:"),
             "invite: %r", r)
    token = r.doc["token"]
    path, pub = sp.keygen(env, "liberec")
    extra = ["--key", path, "--join-token", token, "--client-auth",
             "required"] + metrics_flag(env)
    j = members_lib.add_joiner(c, "liberec", "100-199", extra=extra)
    vc.wait_until(lambda: cli(c, 0, adm, "site", "show", "liberec",
                              timeout="3s").doc.get("key") == pub, 60,
                  "liberec joined with its key")
    vc.check("member keys pinned" in j.log_text(), "liberec did not pin")
    # The token was single use: a second site with it is refused.
    path2, _ = sp.keygen(env, "liberec2")
    extra2 = ["--key", path2, "--join-token", token] + metrics_flag(env)
    j2 = members_lib.add_joiner(c, "liberec", "100-199", extra=extra2,
                                label="liberec-again", append=False)
    vc.wait_until(lambda: "is not valid" in j2.log_text(), 30,
                  "the reused token refused")
    if j2.running():  # a refused joiner may have stopped on its own
        j2.signal(15)
    j2.wait_exit(20)
    return j


def check_remove_revokes(env, c, sched, adm):
    plzen = c.index("plzen")
    r = cli(c, 0, adm, "site", "remove", "plzen", "--force", timeout="20s")
    vc.check(r.rc == 0, "site remove plzen: %r", r)
    others = [a for a in c.agents if a.name not in ("plzen",)]
    vc.wait_until(lambda: any("no longer accepted" in a.log_text()
                              for a in others), 20,
                  "plzen's connections closed at once")
    # Its forwarding channels too (every agent keeps one to every other
    # site for forwarding and health pings).
    vc.wait_until(lambda: any(re.search(r"no longer accepted.*forward "
                                        r"connection closed", a.log_text())
                              for a in others), 20,
                  "plzen's forwarding channels closed")
    peers = {a.peer for a in others}
    vc.wait_until(lambda: not [r for _, r in sp.tcp_conns(c[plzen].pid)
                               if r in peers], 20,
                  "plzen left with no established channel to the others")
    vc.wait_until(lambda: any("unknown key" in a.log_text()
                              for a in others), 30,
                  "plzen's new handshakes refused")
    r = cli(c, 0, sched, "cluster", "create", "after-remove", "--sites",
            "brno,praha", "--owner", "bob", timeout="30s")
    vc.check(r.rc == 0, "create after removing plzen: %r", r)
    c[plzen].signal(15)


def test(env):
    if os.geteuid() != 0:
        raise vc.Skip("needs root: the admin bootstrap uses SO_PEERCRED")
    c, keys = sp.secure_cluster(env, client_auth="required",
                                pools=["100-999"] * 3, start=False)
    # The harness's own CLI calls (status, readiness) sign with a site
    # key: agents trust each other's keys (forwarding). No default key.
    env.cli_env["HOME"] = env.dir
    env.cli_env["VIRTCLOUD_KEY"] = keys["brno"][0]
    c.start()
    adm = admin(env, c)
    sched = check_roles(env, c, adm)
    check_frames(env, c, sched, adm)
    check_sessions(env, c, sched, adm)
    check_rotation(env, c, sched, adm, keys)
    check_invite(env, c, adm)
    check_remove_revokes(env, c, sched, adm)


if __name__ == "__main__":
    vc.main(test)
