"""Every command of docs/operations.md, run against live local agents.

Extracts the ```sh blocks of the guide: each must start with
"# test: run" or "# test: skip -- reason" (an untagged block fails the
test, so nothing documented escapes it). The "run" blocks are executed in
order in one bash (set -e: any failing command fails the test) with the
guide's variables set to loopback ports and temp directories, the built
virtcloud and virtcloud-agent first on PATH, and agent_start /
agent_stop standing for systemctl: they start the agent with
`--config $ETC/SITE/agent.conf` in the background (by PID, stopped at
the end whatever happens) and wait until it answers. Afterwards the
state the guide promises is checked: four sites, the clusters it made,
praha back after its disk died, the metrics read.
"""
import os
import re
import signal
import subprocess

import vc

GUIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                     "docs", "operations.md")

PRELUDE = r'''
set -euo pipefail
agent_start() {
    local site=$1
    virtcloud-agent --config "$ETC/$site/agent.conf" >> "$LOGS/$site.log" 2>&1 &
    echo "$site $!" >> "$PIDS"
    local api
    api=$(sed -n 's/^api = //p' "$ETC/$site/agent.conf")
    _wait 60 "virtcloud --api $api --timeout 2s status --local"
}
agent_stop() {
    local pid
    pid=$(awk -v s="$1" '$1 == s { p = $2 } END { print p }' "$PIDS")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
_wait() {  # SECONDS COMMAND (the guide defines its own wait_for)
    local end=$((SECONDS + $1))
    until eval "$2" > /dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then
            echo "timed out waiting for: $2" >&2
            return 1
        fi
        sleep 0.3
    done
}
'''


def blocks(text):
    """[(tag, body)] of the ```sh blocks."""
    out = []
    for m in re.finditer(r"```sh\n(.*?)```", text, re.S):
        body = m.group(1)
        first = body.splitlines()[0] if body.strip() else ""
        tag = re.match(r"# test: (run|skip)\b", first)
        vc.check(tag, "docs/operations.md: a ```sh block without "
                 "'# test: run' or '# test: skip -- why': %r", body[:200])
        if tag.group(1) == "skip":
            vc.check("--" in first and len(first.split("--", 1)[1].strip())
                     > 5, "a skipped block must say why: %r", first)
        out.append((tag.group(1), body))
    return out


def kill_started(pids_file):
    try:
        with open(pids_file) as f:
            for line in f:
                try:
                    os.kill(int(line.split()[1]), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
    except OSError:
        pass


def test(env):
    with open(GUIDE) as f:
        text = f.read()
    bs = blocks(text)
    run = [b for t, b in bs if t == "run"]
    vc.check(len(run) >= 8, "only %d runnable blocks", len(run))
    d = env.dir
    bindir = os.path.join(d, "bin")
    os.makedirs(bindir)
    os.symlink(env.cli_path, os.path.join(bindir, "virtcloud"))
    os.symlink(env.agent, os.path.join(bindir, "virtcloud-agent"))
    e = dict(env.cli_env)
    e["PATH"] = bindir + ":" + e.get("PATH", "/usr/bin:/bin")
    e.update(ETC=os.path.join(d, "etc"), VAR=os.path.join(d, "var"),
             LOGS=d, PIDS=os.path.join(d, "pids"))
    for site in ("brno", "praha", "plzen", "ostrava"):
        up = site.upper()
        e[up + "_API"] = "127.0.0.1:%d" % vc.free_port()
        e[up + "_PEER"] = "127.0.0.1:%d" % vc.free_port()
        e["METRICS_" + up] = "127.0.0.1:%d" % vc.free_port()
    script = PRELUDE + "\n".join(
        "echo '=== block %d' >&2\n%s" % (i, b) for i, b in enumerate(run))
    path = os.path.join(d, "guide.sh")
    with open(path, "w") as f:
        f.write(script)
    try:
        p = subprocess.run(["bash", path], env=e, capture_output=True,
                           timeout=400)
        out, err = p.stdout.decode(), p.stderr.decode()
        vc.log("guide: rc %d\n--- stdout (tail)\n%s\n--- stderr (tail)\n%s",
               p.returncode, out[-3000:], err[-3000:])
        vc.check(p.returncode == 0, "a command of the guide failed (see "
                 "stderr above)")
        # What the guide promises.
        api = ",".join(e[s + "_API"] for s in ("BRNO", "PRAHA", "PLZEN",
                                                 "OSTRAVA"))
        r = env.cli("site", "list", api=api)
        names = sorted(x["name"] for x in r.doc)
        vc.check(names == ["brno", "ostrava", "plzen", "praha"],
                 "sites: %r", names)
        r = env.cli("cluster", "list", api=api)
        cl = {x["name"]: x for x in r.doc}
        vc.check({"first", "second", "during", "spans-plzen"} <= set(cl),
                 "clusters: %r", sorted(cl))
        vc.check("praha" in cl["first"]["sites"], "first not extended to "
                 "praha again: %r", cl["first"])
        vc.check("virtcloud_raft_term" in out, "no metrics read")
        vc.check("cluster-create" in out and "ops:first" in out,
                 "no audit entry printed")
    finally:
        kill_started(e["PIDS"])
        for site in ("brno", "praha", "plzen", "ostrava"):
            log = os.path.join(d, site + ".log")
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    t = f.read()
                for m in vc.SANITIZER_MARKS:
                    vc.check(m not in t, "%s: %r in its log", site, m)


if __name__ == "__main__":
    vc.main(test)
