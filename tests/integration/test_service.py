#!/usr/bin/env python3
"""The agent as a systemd service, without systemd: the test owns the
NOTIFY_SOCKET (a Unix datagram socket) and checks what sd_notify sends.

- READY=1 (with a STATUS= line) once raft loaded and the API listens: the
  API answers at that moment;
- STATUS= refreshed with leader, term and applied index;
- WATCHDOG=1 beats with WATCHDOG_USEC set;
- SIGHUP re-reads agent.conf and conf.d/: live keys (log-level) change,
  others (election-timeout) are refused with a log line, an invalid file
  keeps the running configuration; RELOADING=1 then READY=1;
- `virtcloud log-level` shows and sets the level at run time; a reload
  goes back to the configured one;
- with JOURNAL_STREAM naming stderr, lines carry <N> priority prefixes;
- SIGTERM: STOPPING=1, exit 0."""
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402


class Notify:
    """The NOTIFY_SOCKET end: collects every datagram sent to it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.msgs = []

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.msgs
            self.msgs.append(data.decode("utf-8", "replace"))

    def fields(self, key):
        """Values of KEY= over all messages, in order."""
        out = []
        for m in self.drain():
            for line in m.split("\n"):
                if line.startswith(key + "="):
                    out.append(line[len(key) + 1:])
        return out

    def after(self, n, key):
        """Values of KEY= in messages n onwards."""
        self.drain()
        out = []
        for m in self.msgs[n:]:
            for line in m.split("\n"):
                if line.startswith(key + "="):
                    out.append(line[len(key) + 1:])
        return out


def write_conf(path, level, election="200", extra=""):
    with open(path, "w") as f:
        f.write("[agent]\nlog-level = %s\nelection-timeout = %s\n%s"
                % (level, election, extra))


def level_of(c):
    r = c.cli(0, "log-level")
    vc.check(r.rc == 0 and isinstance(r.doc, dict), "log-level: %r", r)
    return r.doc["level"]


def test(env):
    conf_dir = os.path.join(env.dir, "etc")
    os.makedirs(os.path.join(conf_dir, "conf.d"))
    conf = os.path.join(conf_dir, "agent.conf")
    write_conf(conf, "info")
    note = Notify(os.path.join(env.dir, "notify.sock"))

    c = env.cluster(1, start=False, extra=["--config", conf])
    a = c[0]
    # stderr is the harness's log file: name it as the journal stream.
    open(a.log_path, "ab").close()
    st = os.stat(a.log_path)
    a.environ = dict(os.environ, NOTIFY_SOCKET=note.path,
                     WATCHDOG_USEC="300000",
                     JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    a.start()

    ready = vc.wait_until(lambda: "1" in note.fields("READY"), 30, "READY=1")
    # READY means the API listens: it answers now, without a retry.
    r = env.cli("status", api=a.api, timeout="2s")
    vc.check(r.rc == 0, "API not answering right after READY=1: %r", r)
    first = note.msgs[[i for i, m in enumerate(note.msgs)
                       if "READY=1" in m][0]]
    vc.log("READY message: %r", first)
    vc.check("STATUS=" in first and "term" in first and "applied" in first,
             "READY=1 came without a STATUS= line: %r", first)
    c.wait_ready()
    vc.wait_until(lambda: [s for s in note.fields("STATUS")
                           if s.startswith("leader, leader brno, term ")],
                  10, "a STATUS= naming the leader")
    beats = vc.wait_until(lambda: len(note.fields("WATCHDOG")) >= 3 and
                          note.fields("WATCHDOG"), 10, "3 WATCHDOG=1 beats")
    vc.check(set(beats) == {"1"}, "watchdog values %r", beats)
    vc.log("statuses: %r", sorted(set(note.fields("STATUS")))[:5])
    del ready

    # Journal prefixes: "<6>info brno: ..." (sd-daemon.h SD_INFO).
    text = a.log_text()
    vc.check("<6>info brno: " in text and "<4>warn brno: " in text,
             "no journald priority prefixes with JOURNAL_STREAM set:\n%s",
             text[-1500:])

    # Run-time level from the CLI.
    vc.check(level_of(c) == "info", "initial level")
    r = c.cli(0, "log-level", "warn")
    vc.check(r.rc == 0 and r.doc == {"level": "warn", "previous": "info"},
             "log-level warn: %r", r)
    vc.check(level_of(c) == "warn", "level after log-level warn")
    r = c.cli(0, "log-level", "loud")
    vc.check(r.rc == 2, "log-level loud: want usage error, got %r", r)
    r = c.cli(0, "log-level", "debug", json_out=False)
    vc.check(r.rc == 0 and "debug" in r.out, "human log-level: %r", r)

    # SIGHUP: a live key, a restart-only key.
    n = len(note.drain())
    write_conf(conf, "error", election="400")
    with open(os.path.join(conf_dir, "conf.d", "10-level.conf"), "w") as f:
        f.write("log-level = info\n")  # the drop-in wins over the file
    a.signal(signal.SIGHUP)
    vc.wait_until(lambda: "reload: done" in a.log_text(), 10, "reload done")
    text = a.log_text()
    vc.check('reload: election-timeout: "200" -> "400" needs a restart'
             in text, "no refusal of the restart-only key:\n%s",
             text[-1500:])
    vc.check(level_of(c) == "info",
             "the drop-in's level was not applied (set from the CLI: debug)")
    vc.wait_until(lambda: "1" in note.after(n, "READY"), 5,
                  "READY=1 after the reload")
    vc.check("1" in note.after(n, "RELOADING"), "no RELOADING=1")

    # Live change through the drop-in, then an invalid file: kept.
    with open(os.path.join(conf_dir, "conf.d", "10-level.conf"), "w") as f:
        f.write("log-level = debug\n")
    a.signal(signal.SIGHUP)
    vc.wait_until(lambda: level_of(c) == "debug", 10, "level debug")
    vc.check('reload: log-level: "info" -> "debug"' in a.log_text(),
             "no reload line for log-level")
    with open(os.path.join(conf_dir, "conf.d", "20-bad.conf"), "w") as f:
        f.write("log-level = info\ncolour = blue\n")
    a.signal(signal.SIGHUP)
    vc.wait_until(lambda: "keeping the running configuration"
                  in a.log_text(), 10, "invalid reload refused")
    text = a.log_text()
    vc.check('20-bad.conf:2: unknown key "colour"' in text,
             "refused reload does not name file:line and key:\n%s",
             text[-1500:])
    vc.check(level_of(c) == "debug" and a.running(),
             "a failed reload changed something")
    r = c.cli(0, "cluster", "create", "after-reload", "--sites", "brno")
    vc.check(r.rc == 0, "write after reloads: %r", r)

    # Shutdown.
    n = len(note.drain())
    a.signal(signal.SIGTERM)
    rc = a.wait_exit(10)
    vc.check(rc == 0, "exit status %r after SIGTERM", rc)
    stop = note.after(n, "STOPPING")
    vc.check(stop == ["1"], "STOPPING=1 not sent once: %r (messages %s)",
             stop, json.dumps(note.msgs[n:]))


if __name__ == "__main__":
    vc.main(test)
