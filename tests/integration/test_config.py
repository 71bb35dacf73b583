#!/usr/bin/env python3
"""Configuration errors: one line on stderr naming the key, exit status 2,
nothing started; --check-config prints the effective configuration (file
overridden by flags) and exits 0 without touching the data dir."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


def write(env, name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


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
    ]
    # Checked when raft starts, not by config.c: startup lines may come
    # first (reported), so only the exit status and the last line count.
    late = [
        ("bootstrap without this site",
         good + ["--bootstrap", "praha=127.0.0.1:%d" % port],
         ["bootstrap", "brno"]),
    ]
    failures = []
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

    rc, out, err = env.run_agent(["--help"])
    vc.check(rc == 0 and "--vlans" in out and "--bootstrap" in out,
             "--help: rc=%d", rc)
    vc.check(not failures, "config checks failed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    vc.main(test)
