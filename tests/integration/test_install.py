#!/usr/bin/env python3
"""`meson install` into a temporary root (--destdir): the agent, the CLI
and the systemd unit land where the unit says; `systemd-analyze verify`
accepts the unit with nothing to say (directives, paths, dependencies), and
`systemd-analyze security` rates its sandbox at most 4.0 ("OK"); the
installed agent validates an /etc/virtcloud-like layout (agent.conf plus
conf.d drop-ins) with --check-config.

Skips (77) when meson is missing; the systemd-analyze checks are skipped,
with a message, when systemd-analyze is missing."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

UNIT = "virtcloud-agent.service"


def run(argv, **kw):
    vc.log("$ %s", " ".join(argv))
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=120, **kw)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    return p.returncode, out, err


def build_dir(agent):
    d = os.path.dirname(os.path.dirname(os.path.abspath(agent)))
    if not os.path.exists(os.path.join(d, "meson-private")):
        raise vc.Skip("%s is not a meson build directory" % d)
    return d


def find(root, tail):
    """The one installed file whose path ends in /TAIL."""
    hits = []
    for dirpath, _, files in os.walk(root):
        hits += [os.path.join(dirpath, f) for f in files
                 if os.path.join(dirpath, f).endswith("/" + tail)]
    vc.check(len(hits) == 1, "%s installed %d times: %r", tail, len(hits),
             hits)
    return hits[0]


def verify(root, unit_path):
    """systemd-analyze verify on a copy of the unit whose paths point into
    the destdir (where the binaries really are)."""
    sa = shutil.which("systemd-analyze")
    if not sa:
        print("NOTE: systemd-analyze not found: unit not verified "
              "(apt-get install systemd)")
        return
    with open(unit_path) as f:
        text = f.read()
    execs = re.findall(r"^Exec\w*=(\S+)", text, re.M)
    vc.check(execs, "no Exec lines in the unit")
    for e in execs:
        if e.startswith("/") and not e.startswith("/bin/"):
            vc.check(os.access(root + e, os.X_OK),
                     "the unit runs %s, not installed (%s)", e, root + e)
    vdir = os.path.join(os.path.dirname(root), "verify")
    os.makedirs(vdir)
    copy = os.path.join(vdir, UNIT)
    with open(copy, "w") as f:
        f.write(re.sub(r"(?m)^(Exec\w*=)(/(?!bin/))", r"\1" + root + r"\2",
                       text))
    # --man=no: the man pages named by Documentation= are installed only
    # when scdoc is found (docs/meson.build).
    rc, out, err = run([sa, "verify", "--man=no", copy])
    vc.log("verify: rc=%d %s%s", rc, out, err)
    vc.check(rc == 0 and not out.strip() and not err.strip(),
             "systemd-analyze verify: rc=%d\n%s%s", rc, out, err)
    rc, out, err = run([sa, "security", "--offline=yes", "--threshold=40",
                        copy])
    summary = [line for line in out.splitlines() if "Overall" in line]
    vc.log("security: rc=%d %s", rc, summary)
    print("\n".join(summary))
    vc.check(rc == 0, "systemd-analyze security: exposure above 4.0 or "
             "error (rc=%d):\n%s%s", rc, out[-3000:], err)


def check_config(agent, root):
    etc = os.path.join(root, "etc", "virtcloud")
    os.makedirs(os.path.join(etc, "conf.d"))
    data = os.path.join(root, "var", "lib", "virtcloud")
    with open(os.path.join(etc, "agent.conf"), "w") as f:
        f.write("site = brno\ndata-dir = %s\npeer = 127.0.0.1:%d\n"
                "vlans = 100-199\nlog-level = info\n" % (data, vc.free_port()))
    with open(os.path.join(etc, "conf.d", "50-debug.conf"), "w") as f:
        f.write("log-level = debug\n")
    rc, out, err = run([agent, "--config", os.path.join(etc, "agent.conf"),
                        "--check-config"])
    vc.check(rc == 0 and "log-level = debug" in out and "50-debug.conf" in out,
             "installed agent --check-config: rc=%d\n%s%s", rc, out, err)


def test(env):
    meson = shutil.which("meson")
    if not meson:
        raise vc.Skip("meson not found")
    build = build_dir(env.agent)
    root = os.path.join(env.dir, "root")
    rc, out, err = run([meson, "install", "-C", build, "--destdir", root,
                        "--no-rebuild", "--quiet"])
    vc.check(rc == 0, "meson install: rc=%d\n%s%s", rc, out, err)
    agent = find(root, "sbin/virtcloud-agent")
    find(root, "bin/virtcloud")
    unit = find(root, "lib/systemd/system/" + UNIT)
    with open(unit) as f:
        text = f.read()
    vc.log("unit:\n%s", text)
    for want in ("Type=notify", "ExecReload=", "StateDirectory=virtcloud",
                 "RuntimeDirectory=virtcloud",
                 "ConfigurationDirectory=virtcloud",
                 "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
                 "ProtectSystem=strict", "WatchdogSec="):
        vc.check(want in text, "the unit lacks %s", want)
    vc.check(not re.search(r"@[a-z_]+@", text),
             "unsubstituted @VAR@ in the unit")
    verify(root, unit)
    check_config(agent, root)


if __name__ == "__main__":
    vc.main(test)
