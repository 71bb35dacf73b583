"""The man pages say what the binaries do (docs/man/*.scd).

No agents: reads `virtcloud help` and `virtcloud-agent --help` and checks
both ways that
  - every command of the CLI (its command words) has an entry in
    virtcloud(8), every option of its synopsis is mentioned there, and
    every command entry of the page is a real command;
  - every configuration key the agent accepts has an entry "*key* = ..."
    in virtcloud-agent.conf(5), and every entry there is a real key;
  - every global option of the CLI is in virtcloud(8);
  - scdoc turns each page into roff without complaint (when installed).
"""
import os
import re
import shutil
import subprocess

import vc

MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "docs", "man")


def read(name):
    with open(os.path.join(MAN, name)) as f:
        return f.read()


def run(argv):
    p = subprocess.run(argv, capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def command_words(synopsis):
    words = []
    for w in synopsis.split():
        if not re.fullmatch(r"[a-z][a-z-]*", w):
            break
        words.append(w)
    return " ".join(words)


def test_cli(env):
    rc, out, err = run([env.cli_path, "help"])
    vc.check(rc == 0, "virtcloud help failed: %s", err)
    page = read("virtcloud.8.scd")
    synopses = re.findall(r"^  virtcloud (.*)$", out, re.M)
    vc.check(len(synopses) > 10, "no synopsis in help: %s", out)
    commands = set()
    for syn in synopses:
        cmd = command_words(syn)
        commands.add(cmd)
        vc.check(re.search(r"^\*%s\*" % re.escape(cmd), page, re.M),
                 "virtcloud(8) has no entry for \"%s\"", cmd)
        for opt in re.findall(r"--[a-z][a-z-]*", syn):
            vc.check("*%s*" % opt in page, "virtcloud(8) does not mention "
                     "%s of \"%s\"", opt, cmd)
    for opt in re.findall(r"^  (--[a-z][a-z-]*)", out, re.M):
        vc.check("*%s*" % opt in page, "global option %s not in "
                 "virtcloud(8)", opt)
    # Entries of the COMMANDS section name real commands.
    section = page.split("# COMMANDS", 1)[1].split("\n# ", 1)[0]
    for entry in re.findall(r"^\*([a-z][a-z -]*)\*", section, re.M):
        vc.check(entry.strip() in commands, "virtcloud(8) documents \"%s\", "
                 "which virtcloud help does not list", entry)
    vc.log("virtcloud(8): %d commands checked", len(commands))


def test_agent(env):
    rc, out, err = run([env.agent, "--help"])
    vc.check(rc == 0, "virtcloud-agent --help failed: %s", err)
    keys = set(re.findall(r"^  --([a-z][a-z-]*)", out, re.M))
    vc.check(len(keys) > 20, "few keys in --help: %s", out)
    page = read("virtcloud-agent.conf.5.scd")
    documented = set(re.findall(r"^\*([a-z][a-z-]*)\* =", page, re.M))
    vc.check(keys - documented == set(), "keys missing from "
             "virtcloud-agent.conf(5): %s", sorted(keys - documented))
    vc.check(documented - keys == set(), "virtcloud-agent.conf(5) documents "
             "keys the agent does not accept: %s", sorted(documented - keys))
    page8 = read("virtcloud-agent.8.scd")
    for flag in re.findall(r"\[(--[a-z-]+)", out.splitlines()[0]):
        vc.check("*%s*" % flag in page8, "virtcloud-agent(8) lacks %s", flag)
    vc.log("virtcloud-agent.conf(5): %d keys checked", len(keys))


def test_scdoc(env):
    scdoc = shutil.which("scdoc")
    if not scdoc:
        vc.log("scdoc not installed: pages not rendered")
        return
    for name in sorted(os.listdir(MAN)):
        if name.endswith(".scd"):
            with open(os.path.join(MAN, name), "rb") as f:
                p = subprocess.run([scdoc], stdin=f, capture_output=True,
                                   timeout=30)
            vc.check(p.returncode == 0 and p.stdout.startswith(b".\\\""),
                     "scdoc %s: %s", name, p.stderr.decode())


def test(env):
    test_cli(env)
    test_agent(env)
    test_scdoc(env)


if __name__ == "__main__":
    vc.main(test)
