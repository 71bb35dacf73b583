"""Long CLI operations show progress on a terminal and stay quiet
otherwise: `cluster release --all --owner U` (bulk) and `cluster wait` /
`cluster create --wait`.

The CLI runs with stderr on a pseudo-terminal (what an operator sees) or
on a pipe (a script or a log), stdout always on a pipe. Checks: on a
terminal the progress line is drawn (carriage return + erase) and erased
at the end; with --json or on a pipe nothing but the answer is written;
--json prints exactly one document. Bulk release releases exactly the
owner's clusters, each with request id ID:NAME, and a re-run sends
nothing for clusters already releasing.
"""
import json
import os
import pty
import select
import subprocess
import time

import vc


def run_tty(env, api, *args, timeout=60):
    """Runs the CLI with stderr on a pty; returns (rc, stdout, tty text)."""
    master, slave = pty.openpty()
    argv = [env.cli_path, "--api", api] + list(args)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave,
                         env=env.cli_env)
    os.close(slave)
    tty = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the pty
                chunk = b""
            if not chunk and p.poll() is not None:
                break
            tty += chunk
        elif p.poll() is not None:
            break
    out = p.stdout.read().decode()
    rc = p.wait(timeout=10)
    os.close(master)
    text = tty.decode("utf-8", "replace")
    vc.log("tty run %s -> %d, tty %r", " ".join(args), rc, text[-200:])
    return rc, out, text


def test(env):
    c = env.cluster(3, start=False)
    for a in c.agents:
        a.extra += ["--switch", "dryrun:1200", "--managed", "yes"]
    c.start()
    api = c.api_list()
    for i in range(5):
        r = c.cli(0, "cluster", "create", "a%d" % i, "--sites", "brno,praha",
                  "--owner", "alice")
        vc.check(r.rc == 0, "create: %r", r)
    for i in range(2):
        r = c.cli(0, "cluster", "create", "b%d" % i, "--sites", "praha",
                  "--owner", "bob")
        vc.check(r.rc == 0, "create: %r", r)

    # Wait on a terminal: a progress line, erased before the answer.
    rc, out, tty = run_tty(env, api, "--timeout", "30s", "cluster", "wait",
                           "a0")
    vc.check(rc == 0 and "applied at" in out, "wait: %d %s", rc, out)
    vc.check("waiting for a0" in tty and "\r\x1b[K" in tty and
             tty.endswith("\r\x1b[K"), "no progress drawn and erased: %r",
             tty)
    # create --wait with --json on a terminal: no progress, one document.
    rc, out, tty = run_tty(env, api, "--json", "--timeout", "30s", "cluster",
                           "create", "a9", "--sites", "brno,plzen",
                           "--owner", "alice", "--wait")
    vc.check(rc == 0 and tty == "", "--json wrote to the terminal: %r", tty)
    vc.check(len(out.strip().splitlines()) == 1 and
             json.loads(out)["ok"] is True, "--json output: %r", out)
    # On a pipe: nothing on stderr.
    r = c.cli(0, "cluster", "wait", "a1", "--site", "praha", json_out=False,
              timeout="30s")
    vc.check(r.rc == 0 and r.err == "", "wait on a pipe: %r", r)

    # Bulk release on a terminal: progress per cluster, a table at the end.
    rc, out, tty = run_tty(env, api, "--request-id", "bulk1", "cluster",
                           "release", "--all", "--owner", "alice")
    vc.check(rc == 0, "release --all: %d %s %s", rc, out, tty)
    vc.check("releasing 1/6: a0" in tty and "releasing 6/6: a9" in tty and
             tty.endswith("\r\x1b[K"), "bulk progress: %r", tty)
    vc.check(all(n in out for n in ("a0", "a4", "a9", "bulk1:a3")) and
             "b0" not in out, "bulk table: %s", out)
    left = c.cli(0, "cluster", "list").doc
    states = {x["name"]: x["state"] for x in left}
    vc.check(all(states.get("a%d" % i, "releasing") == "releasing"
                 for i in list(range(5)) + [9]) and
             states.get("b0") not in (None, "releasing") and
             states.get("b1") not in (None, "releasing"),
             "after bulk release: %r", states)

    # Again (an operator re-running it): alice's clusters are releasing or
    # gone, so nothing is sent.
    r = c.cli(0, "--request-id", "bulk1", "cluster", "release", "--all",
              "--owner", "alice")
    vc.check(r.rc == 0 and r.doc == [], "bulk again: %r", r)
    r = c.cli(0, "cluster", "release", "--all", "--owner", "nobody")
    vc.check(r.rc == 0 and r.doc == [], "no clusters: %r", r)
    r = c.cli(0, "cluster", "release", "--all")
    vc.check(r.rc == 2, "--all without --owner: %r", r)
    left = {x["name"] for x in c.cli(0, "cluster", "list").doc}
    vc.check({"b0", "b1"} <= left, "bob's clusters gone: %r", left)


if __name__ == "__main__":
    vc.main(test)
