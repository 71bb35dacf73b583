"""Bash completion (tools/completion/virtcloud.bash) against live agents.

Sources the script in a real bash, sets COMP_WORDS / COMP_CWORD as bash
would for a line being completed, calls the completion function and
compares COMPREPLY with what the agents hold: cluster, site and host names
come from the agents (with the --api of the line), commands and options
from `virtcloud help`. Skips (77) without bash.
"""
import os
import shutil
import subprocess

import vc

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "tools", "completion", "virtcloud.bash")


def complete(env, bindir, words):
    """COMPREPLY for the line `words`, the last word being completed."""
    cmd = ('source "$1"; shift; COMP_WORDS=("$@"); '
           'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _virtcloud; '
           'printf "%s\\n" "${COMPREPLY[@]}"')
    e = dict(env.cli_env)
    e["PATH"] = bindir + ":" + e.get("PATH", "/usr/bin:/bin")
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", cmd, "bash",
                        SCRIPT] + list(words), env=e, capture_output=True,
                       timeout=30)
    out = sorted(x for x in p.stdout.decode().split("\n") if x)
    vc.log("complete %r -> %r %s", words, out, p.stderr.decode().strip())
    vc.check(p.returncode == 0, "bash failed: %s", p.stderr.decode())
    return out


def test(env):
    if not shutil.which("bash"):
        raise vc.Skip("no bash")
    bindir = os.path.join(env.dir, "bin")
    os.makedirs(bindir)
    os.symlink(env.cli_path, os.path.join(bindir, "virtcloud"))
    c = env.cluster(3)
    for name in ("alpha", "alpine", "beta"):
        r = c.cli(0, "cluster", "create", name, "--sites", "brno,praha")
        vc.check(r.rc == 0, "create %s: %r", name, r)
    for host in ("hv1", "hv2"):
        r = c.cli(0, "host", "add", host, "--site", "plzen", "--trunk", "eth0")
        vc.check(r.rc == 0, "host add %s: %r", host, r)
    api = ["virtcloud", "--api", c[1].api]

    # Cluster names, live from the agent named on the line.
    vc.check(complete(env, bindir, api + ["cluster", "show", "al"]) ==
             ["alpha", "alpine"], "cluster names")
    vc.check(complete(env, bindir, api + ["cluster", "release", ""]) ==
             ["alpha", "alpine", "beta"], "cluster names (all)")
    vc.check(complete(env, bindir, api + ["--json", "cluster", "wait", "b"])
             == ["beta"], "after a global option")
    # Site names, also inside a comma list; host names.
    vc.check(complete(env, bindir, api + ["cluster", "create", "x",
                                          "--sites", "p"]) ==
             ["plzen", "praha"], "site names")
    vc.check(complete(env, bindir, api + ["cluster", "create", "x",
                                          "--sites", "brno,pr"]) ==
             ["brno,praha"], "second site of a list")
    vc.check(complete(env, bindir, api + ["site", "show", ""]) ==
             ["brno", "plzen", "praha"], "site show: sites, not hosts")
    vc.check(complete(env, bindir, api + ["host", "service", "hv"]) ==
             ["hv1", "hv2"], "host names")
    vc.check(complete(env, bindir, api + ["host", "service", "hv1", ""]) ==
             ["off", "on"], "on|off")
    # A new cluster shows up at once (nothing cached).
    r = c.cli(0, "cluster", "create", "gamma", "--sites", "plzen")
    vc.check(r.rc == 0, "create gamma: %r", r)
    vc.check(complete(env, bindir, api + ["cluster", "renew", "g"]) ==
             ["gamma"], "new cluster")

    # Commands and options from `virtcloud help`.
    sub = complete(env, bindir, ["virtcloud", "cluster", ""])
    for w in ("create", "list", "show", "release", "wait"):
        vc.check(w in sub, "cluster subcommand %s missing: %r", w, sub)
    top = complete(env, bindir, ["virtcloud", ""])
    for w in ("status", "site", "cluster", "host", "help"):
        vc.check(w in top, "command %s missing: %r", w, top)
    opts = complete(env, bindir, ["virtcloud", "cluster", "create", "x",
                                  "--"])
    for o in ("--sites", "--owner", "--lease", "--api", "--json"):
        vc.check(o in opts, "option %s missing: %r", o, opts)
    vc.check("--force" not in opts, "release's --force offered for create")

    # No agent reachable: no names, no error, quickly.
    dead = "127.0.0.1:%d" % vc.free_port()
    vc.check(complete(env, bindir, ["virtcloud", "--api", dead, "cluster",
                                    "show", ""]) == [], "dead agent")


if __name__ == "__main__":
    vc.main(test)
