#!/usr/bin/env python3
"""A fake Cisco-IOS-like switch CLI, run as the forced command of a test
sshd (tests/integration/test_ssh_switch.py) for the ssh switch driver.

    fake_switch.py STATE.json

It speaks on its stdin/stdout (a pty the ssh client asked for; paging
" --More-- " until "terminal length 0", one key to go on): prompts
"sw1>", "sw1#", "sw1(config)#", "sw1(config-vlan)#", "sw1(config-if)#",
accepts the commands of the built-in cisco_ios templates and answers
anything else, or an unknown interface, with IOS's
"% Invalid input detected at '^' marker.". Its configuration is a JSON
file the test reads and edits by hand:

    {"vlans": {"1": "default", "42": "vc-42"},      VID -> name
     "ports": {"Gi0/1": [1, 42], ...},              trunk allowed VLANs
     "routed": ["Gi0/3"],                           no switchport: refuses
                                                    every switchport command
     "saves": 0, "sessions": 0, "log": [...]}       write memory count,
                                                    logins, config lines
     "trace": [1, 1, 1, 2, 2, ...]                  the session of each
                                                    command: two sessions
                                                    at once would interleave
Every change is written back at once, so a dropped session leaves what a
real switch's running configuration would hold.
"""
import contextlib
import fcntl
import json
import os
import signal
import sys
import termios
import tty

STATE = sys.argv[1]
INVALID = "% Invalid input detected at '^' marker."


@contextlib.contextmanager
def locked():
    """Serialises the read-modify-write of STATE across sessions."""
    with open(STATE + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def load():
    with open(STATE) as f:
        return json.load(f)


def save(st):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f, indent=1, sort_keys=True)
    os.replace(tmp, STATE)


def vid_list(text):
    """'1,42,100-102' -> set of ints; None if malformed."""
    out = set()
    for item in text.split(","):
        lo, _, hi = item.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        lo = int(lo)
        hi = int(hi) if hi else lo
        if not 1 <= lo <= hi <= 4094:
            return None
        out.update(range(lo, hi + 1))
    return out


def ranges(vids):
    vids = sorted(vids)
    out = []
    for v in vids:
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return [f"{a}" if a == b else f"{a}-{b}" for a, b in out]


class Switch:
    def __init__(self, sid):
        self.sid = sid
        self.paging = True  # until "terminal length 0"
        self.mode = "exec"  # exec, priv, config, config-vlan, config-if
        self.vlan = None
        self.port = None

    def prompt(self):
        return {"exec": "sw1>", "priv": "sw1#"}.get(
            self.mode, f"sw1({self.mode})#")

    def show_vlans(self, st):
        lines = ["VLAN Name                             Status    Ports",
                 "---- -------------------------------- --------- " + "-" * 30]
        for vid in sorted(st["vlans"], key=int):
            lines.append(f"{vid:<4} {st['vlans'][vid]:<32} active    ")
        return "\n".join(lines)

    def show_port(self, st, port):
        allowed = st["ports"][port]
        lines = ["Building configuration...", "",
                 "Current configuration : 160 bytes", "!",
                 f"interface {port}"]
        if port in st.get("routed", []):
            return "\n".join(lines + [" no switchport", "end"])
        items = ranges(allowed)
        if not items:
            lines.append(" switchport trunk allowed vlan none")
        # IOS wraps long lists into "add" continuation lines.
        for i in range(0, len(items), 4):
            add = "add " if i else ""
            lines.append(" switchport trunk allowed vlan "
                         + add + ",".join(items[i:i + 4]))
        lines += [" switchport mode trunk", "end"]
        return "\n".join(lines)

    def exec_cmd(self, st, w, line):
        if line == "terminal length 0":
            self.paging = False
            return ""
        if w[:2] == ["terminal", "width"] and len(w) == 3 and w[2].isdigit():
            return ""
        if line == "enable":
            self.mode = "priv"
            return ""
        if line == "show vlan brief":
            return self.show_vlans(st)
        if w[:3] == ["show", "running-config", "interface"] and len(w) == 4:
            return self.show_port(st, w[3]) if w[3] in st["ports"] else INVALID
        if self.mode == "priv" and line == "configure terminal":
            self.mode = "config"
            return "Enter configuration commands, one per line.  " \
                   "End with CNTL/Z."
        if self.mode == "priv" and line == "write memory":
            st["saves"] += 1
            return "Building configuration...\n[OK]"
        return INVALID

    def config_cmd(self, st, w, line):
        if line == "end":
            self.mode = "priv"
            return ""
        if line == "exit":
            self.mode = "config" if self.mode != "config" else "priv"
            return ""
        if self.mode == "config-vlan" and len(w) == 2 and w[0] == "name":
            st["vlans"][self.vlan] = w[1]
            return ""
        if self.mode == "config-if":
            return self.if_cmd(st, w, line)
        if len(w) == 2 and w[0] == "vlan" and vid_list(w[1]) and \
                len(vid_list(w[1])) == 1:
            self.mode, self.vlan = "config-vlan", str(int(w[1]))
            st["vlans"].setdefault(self.vlan, f"VLAN{int(w[1]):04d}")
            return ""
        if len(w) == 3 and w[:2] == ["no", "vlan"] and w[2].isdigit():
            st["vlans"].pop(str(int(w[2])), None)
            return ""
        if len(w) == 2 and w[0] == "interface" and w[1] in st["ports"]:
            self.mode, self.port = "config-if", w[1]
            return ""
        return INVALID

    def if_cmd(self, st, w, line):
        allowed = set(st["ports"][self.port])
        if self.port in st.get("routed", []):
            return INVALID
        if line == "switchport mode trunk":
            return ""
        if w[:4] != ["switchport", "trunk", "allowed", "vlan"] or len(w) < 5:
            return INVALID
        if w[4] in ("add", "remove") and len(w) == 6:
            vids = vid_list(w[5])
            if vids is None:
                return INVALID
            allowed = allowed | vids if w[4] == "add" else allowed - vids
        elif w[4] == "none" and len(w) == 5:
            allowed = set()
        else:
            return INVALID
        st["ports"][self.port] = sorted(allowed)
        return ""

    def handle(self, line):
        with locked():
            st = load()
            st.setdefault("trace", []).append(self.sid)
            w = line.split()
            if self.mode in ("exec", "priv"):
                out = self.exec_cmd(st, w, line)
            else:
                out = self.config_cmd(st, w, line)
                if out != INVALID:
                    st["log"].append(line)
            save(st)
        return out


def session():
    """Counts logins; returns this session's number."""
    with locked():
        st = load()
        st["sessions"] += 1
        save(st)
        return st["sessions"]


PAGE = 6  # lines per screen while paging is on (IOS: terminal length)


def write(text):
    os.write(1, text.encode())


def page(sw, reply):
    """Writes reply, pausing at " --More-- " for a key while paging is on,
    as IOS does until "terminal length 0"."""
    lines = reply.split("\n")
    while len(lines) > PAGE and sw.paging:
        write("\n".join(lines[:PAGE]) + "\n --More-- ")
        if not os.read(0, 1):
            return False
        write("\r" + " " * 10 + "\r")  # IOS erases the pager line
        lines = lines[PAGE:]
    write("\n".join(lines) + "\n")
    return True


def read_line():
    """A line typed on the pty, echoed as the terminal would (it runs in
    cbreak mode so that a pager key needs no Enter); None at EOF."""
    buf = b""
    while True:
        ch = os.read(0, 1)
        if not ch:
            return None
        if ch in b"\r\n":
            write("\n")
            return buf.decode(errors="replace")
        buf += ch
        os.write(1, ch)


def main():
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))  # client gone
    try:
        tty.setcbreak(0)
    except termios.error:
        pass  # not a terminal: no pager keys, lines as they come
    sw = Switch(session())
    write("\nUser Access Verification\n\n" + sw.prompt())
    while (raw := read_line()) is not None:
        line = " ".join(raw.split())
        if line in ("quit", "logout") or (line == "exit" and
                                          sw.mode in ("exec", "priv")):
            break
        reply = sw.handle(line) if line else ""
        if reply and not page(sw, reply):
            break
        write(sw.prompt())


if __name__ == "__main__":
    main()
