#!/usr/bin/env python3
"""Configuration errors: one line on stderr naming the key, exit status 2,
nothing started; --check-config prints the effective configuration (file,
then its conf.d drop-ins in lexical order, then flags) and exits 0 without
touching the data dir. A key twice in one file, an unknown key, a bad
value, an unreadable file or a bad drop-in each give their one line naming
file:line and key."""
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


def write(env, name, text):
    path = os.path.join(env.dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def config_dir(env, name, main, dropins):
    """DIR/agent.conf and DIR/conf.d/NAME for each (NAME, text); a text of
    None makes NAME a directory. Returns the main file's path."""
    path = write(env, os.path.join(name, "agent.conf"), main)
    os.makedirs(os.path.join(env.dir, name, "conf.d"), exist_ok=True)
    for n, text in dropins:
        if text is None:
            os.makedirs(os.path.join(env.dir, name, "conf.d", n))
        else:
            write(env, os.path.join(name, "conf.d", n), text)
    return path


def unreadable_as_nobody(env, good, failures):
    """As root every file is readable: run the agent as nobody (setpriv)
    against a mode 000 file, if setpriv is there."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        vc.log("NOTE: root and no setpriv: the unreadable-file case is "
               "covered by the directory case only")
        return
    path = write(env, "unreadable.ini", "log-level = info\n")
    os.chmod(path, 0)
    os.chmod(env.dir, 0o755)
    p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534",
                        "--clear-groups", env.agent, "--config", path] + good,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=20)
    err = p.stderr.decode("utf-8", "replace")
    vc.log("unreadable file (as nobody) rc=%d stderr=%r", p.returncode,
           err.strip())
    if (p.returncode != 2 or len(err.splitlines()) != 1 or
            "unreadable.ini: Permission denied" not in err):
        failures.append("unreadable file: rc=%d stderr %r"
                        % (p.returncode, err))


def test(env):
    data = os.path.join(env.dir, "data")
    port = vc.free_port()
    good = ["--site", "brno", "--data-dir", data,
            "--peer", "127.0.0.1:%d" % port, "--vlans", "100-199"]

    def without(flag):
        i = good.index(flag)
        return good[:i] + good[i + 2:]

    def replace(flag, value):
        i = good.index(flag)
        return good[:i + 1] + [value] + good[i + 2:]

    unknown_key = write(env, "unknown.ini",
                        "[agent]\nsite = brno\n\ncolour = blue\n")
    bad_syntax = write(env, "syntax.ini",
                       "[agent]\nsite = brno\nthis line has no equals sign\n")
    bad_section = write(env, "section.ini", "[server]\nsite = brno\n")
    bad_value = write(env, "value.ini", "election-timeout = soon\n")
    dup = write(env, "dup.ini", "[agent]\nlog-level = info\ndrift = off\n"
                "log-level = debug\n")
    cont = write(env, "cont.ini", "vlans = 100-199\n  300-399\n")
    low = write(env, "range.ini", "heartbeat-timeout = 40\n"
                "election-timeout = 10\n")
    isdir = os.path.join(env.dir, "isdir.ini")
    os.makedirs(isdir)
    bad_dropin = config_dir(env, "d-unknown", "log-level = info\n",
                            [("10-ok.conf", "drift = report\n"),
                             ("20-bad.conf", "drift = off\ncolour = blue\n")])
    syntax_dropin = config_dir(env, "d-syntax", "log-level = info\n",
                               [("10-syn.conf", "\nno equals here\n")])
    dir_dropin = config_dir(env, "d-dir", "log-level = info\n",
                            [("30-dir.conf", None)])
    dup_dropin = config_dir(env, "d-dup", "log-level = info\n",
                            [("10-dup.conf", "drift = off\ndrift = report\n")])

    cases = [
        # (what, argv, words the one line must contain)
        ("unknown flag", good + ["--colour", "blue"], ["--colour"]),
        ("VLAN out of range", replace("--vlans", "5000"), ["vlans", "5000"]),
        ("VLAN range reversed", replace("--vlans", "300-200"), ["vlans"]),
        ("missing --site", without("--site"), ["site", "required"]),
        ("missing --vlans", without("--vlans"), ["vlans", "required"]),
        ("bad --peer", replace("--peer", "localhost"), ["peer", "localhost"]),
        ("bad --peer port", replace("--peer", "127.0.0.1:99999"),
         ["peer", "99999"]),
        ("bad site name", replace("--site", "br/no"), ["site", "br/no"]),
        ("flag without value", good + ["--api"], ["--api"]),
        ("bad --bootstrap", good + ["--bootstrap", "brno"],
         ["bootstrap", "brno"]),
        ("heartbeat > election/2", good + ["--election-timeout", "100",
                                           "--heartbeat-timeout", "60"],
         ["heartbeat-timeout"]),
        ("unknown key in INI", ["--config", unknown_key] + without("--site"),
         ["colour", "unknown.ini:4"]),
        ("INI syntax error", ["--config", bad_syntax] + without("--site"),
         ["syntax.ini:3", "syntax error"]),
        ("INI unknown section", ["--config", bad_section] + good,
         # inih reports keys, not headers: the line is the section's
         # first key.
         ["[server]", "section.ini:"]),
        ("INI bad value", ["--config", bad_value] + good,
         ["election-timeout", "soon", "value.ini:1"]),
        ("missing INI file", ["--config", os.path.join(env.dir, "nope.ini")]
         + good, ["nope.ini"]),
        ("stray argument", good + ["extra"], ["extra"]),
        ("key twice in a file", ["--config", dup] + good,
         ["dup.ini:4", "duplicate key", "log-level", "line 2"]),
        ("continuation line", ["--config", cont] + without("--vlans"),
         ["cont.ini:2", "vlans", "indented"]),
        ("value out of range", ["--config", low] + good,
         ["range.ini:2", "election-timeout", "\"10\"", "50..600000"]),
        ("flag out of range", good + ["--max-batch", "0"],
         ["max-batch", "\"0\""]),
        ("config is a directory", ["--config", isdir] + good,
         ["isdir.ini", "Is a directory"]),
        ("unknown key in drop-in", ["--config", bad_dropin] + good,
         ["d-unknown/conf.d/20-bad.conf:2", "unknown key", "colour"]),
        ("syntax error in drop-in", ["--config", syntax_dropin] + good,
         ["d-syntax/conf.d/10-syn.conf:2", "syntax error"]),
        ("drop-in is a directory", ["--config", dir_dropin] + good,
         ["d-dir/conf.d/30-dir.conf", "Is a directory"]),
        ("key twice in a drop-in", ["--config", dup_dropin] + good,
         ["d-dup/conf.d/10-dup.conf:2", "duplicate key", "drift"]),
        ("bad metrics address", good + ["--metrics", "nowhere"],
         ["metrics", "nowhere"]),
    ]
    if os.geteuid() != 0:
        # root reads files whatever their mode: only checked as a user.
        unreadable = write(env, "unreadable.ini", "log-level = info\n")
        os.chmod(unreadable, 0)
        cases.append(("unreadable file", ["--config", unreadable] + good,
                      ["unreadable.ini", "Permission denied"]))
    failures = []
    if os.geteuid() == 0:
        unreadable_as_nobody(env, good, failures)
    # Checked when raft starts, not by config.c: startup lines may come
    # first (reported), so only the exit status and the last line count.
    late = [
        ("bootstrap without this site",
         good + ["--bootstrap", "praha=127.0.0.1:%d" % port],
         ["bootstrap", "brno"]),
    ]
    for what, argv, words in cases:
        rc, out, err = env.run_agent(argv)
        lines = err.splitlines()
        vc.log("%-22s rc=%d stderr=%r", what, rc, err.strip())
        problems = []
        if rc != 2:
            problems.append("exit %d, want 2" % rc)
        if len(lines) != 1:
            problems.append("%d stderr lines, want 1" % len(lines))
        for w in words:
            if w not in err:
                problems.append("stderr lacks %r" % w)
        if out:
            problems.append("stdout not empty: %r" % out[:200])
        if problems:
            failures.append("%s: %s (stderr %r)" % (what, "; ".join(problems),
                                                    err[:300]))
    for what, argv, words in late:
        rc, out, err = env.run_agent(argv)
        last = (err.splitlines() or [""])[-1]
        vc.log("%-22s rc=%d stderr=%r", what, rc, err.strip())
        if rc != 2 or not all(w in last for w in words):
            failures.append("%s: exit %d, last stderr line %r" % (what, rc,
                                                                  last))
    if os.path.exists(data):
        vc.log("note: a refused start left the data dir %s behind", data)
        os.rmdir(data)

    # --check-config: file values, flags win, defaults filled in.
    ini = write(env, "agent.ini",
                "[agent]\nsite = praha\nvlans = 100-199, 300\n"
                "election-timeout = 300\nlog-level = warn\n")
    rc, out, err = env.run_agent(["--config", ini, "--check-config",
                                  "--site", "brno", "--data-dir", data,
                                  "--peer", "127.0.0.1:%d" % port,
                                  "--election-timeout=500"])
    vc.log("--check-config rc=%d:\n%s", rc, out)
    vc.check(rc == 0 and not err, "--check-config: rc=%d err=%r", rc, err)
    conf = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        conf[k.strip()] = v.strip()
    want = {"site": "brno", "data-dir": data, "peer": "127.0.0.1:%d" % port,
            "api": "127.0.0.1:7800", "advertise": "127.0.0.1:7800",
            "unix": data + "/agent.sock", "vlans": "100-199,300",
            "election-timeout": "500", "heartbeat-timeout": "40",
            "request-timeout": "10000", "log-level": "warn",
            "uplink": "xponder", "managed": "no"}
    for k, v in want.items():
        if conf.get(k) != v:
            failures.append("--check-config: %s = %r, want %r"
                            % (k, conf.get(k), v))
    vc.check(not os.path.exists(data), "--check-config created the data dir")

    # Drop-ins: lexical order, each overriding what came before; files
    # not named *.conf and dot files are not read; flags still win.
    main = config_dir(env, "d-order",
                      "[agent]\nsite = praha\nlog-level = error\n"
                      "drift = off\nmetrics = off\n",
                      [("20-b.conf", "log-level = debug\n"),
                       ("10-a.conf", "log-level = warn\ndrift = report\n"),
                       ("README", "this is not INI\n"),
                       (".hidden.conf", "colour = blue\n"),
                       ("30-c.conf.disabled", "colour = blue\n")])
    rc, out, err = env.run_agent(["--config", main, "--check-config",
                                  "--data-dir", data, "--peer",
                                  "127.0.0.1:%d" % port, "--vlans", "100",
                                  "--site", "brno"])
    vc.log("drop-ins --check-config rc=%d:\n%s%s", rc, out, err)
    conf = dict((k.strip(), v.strip()) for k, _, v in
                (line.partition("=") for line in out.splitlines()))
    d = os.path.join(env.dir, "d-order")
    read = "# read: %s, %s/conf.d/10-a.conf, %s/conf.d/20-b.conf" % (main, d,
                                                                    d)
    vc.check(rc == 0 and conf.get("log-level") == "debug" and
             conf.get("drift") == "report" and conf.get("site") == "brno" and
             conf.get("metrics") == "off" and out.startswith(read + "\n"),
             "drop-ins: rc=%d log-level=%r drift=%r site=%r metrics=%r, "
             "first line %r (want %r), err %r", rc, conf.get("log-level"),
             conf.get("drift"), conf.get("site"), conf.get("metrics"),
             out.splitlines()[:1], read, err)

    # An explicitly configured /metrics address that cannot be had stops
    # the agent (the default one only warns: several local agents).
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    taken = "127.0.0.1:%d" % held.getsockname()[1]
    rc, out, err = env.run_agent(good + ["--bootstrap", "brno=127.0.0.1:%d"
                                         % port, "--metrics", taken,
                                         "--api", "127.0.0.1:%d"
                                         % vc.free_port()])
    held.close()
    why = [line for line in err.splitlines()
           if "error" in line and "metrics: cannot listen on %s" % taken
           in line]
    vc.log("metrics address taken: rc=%d %r", rc, why)
    vc.check(rc == 1 and len(why) == 1, "taken metrics address: rc=%d, "
             "stderr:\n%s", rc, err)

    rc, out, err = env.run_agent(["--help"])
    vc.check(rc == 0 and "--vlans" in out and "--bootstrap" in out and
             "--metrics" in out,
             "--help: rc=%d", rc)
    vc.check(not failures, "config checks failed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    vc.main(test)
