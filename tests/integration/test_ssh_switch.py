#!/usr/bin/env python3
"""The ssh switch driver against a real sshd on loopback.

    test_ssh_switch.py VC_DRVCTL

Starts a private sshd (sshd -D -f <temp config>) on a random free port of
127.0.0.1 with a temporary host key and an authorized_keys whose forced
command is tests/integration/fake_switch.py, a Cisco-like CLI keeping its
configuration in a JSON file. The driver is driven through vc-drvctl with
the cisco_ios templates and an ssh config file (Host alias, HostName, Port,
User, IdentityFile, UserKnownHostsFile), and the test checks:
  - an unknown and a changed host key are refused before any login;
  - an apply creates the VLANs named "vc-<vid>", trunks them on the
    mapped ports and the uplink, saves once, in one session;
  - the same apply again changes nothing and does not save;
  - a VLAN of someone else's (not named vc-...) is never touched, and
    wanting its VID is an error; a released VLAN of ours is removed;
  - a VLAN removed from a port by hand is restored (drift);
  - switch-read reports what the switch carries;
  - a command the switch rejects ("% Invalid input") fails the apply
    with the switch's words, the batch is not saved, and the next apply
    converges;
  - an operator's templates= file defines a vendor (inherit cisco_ios)
    whose session setup leaves paging on: the driver answers --More--
    and reads back completely; a bad template file is refused.
sshd is killed by PID at the end, also on failure. Exits 77 (skip) if
sshd or ssh-keygen is missing.
"""
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    path], check=True)
    with open(path + ".pub") as f:
        return f.read().strip()


class Rig:
    def __init__(self, drvctl, tmp):
        self.drvctl = drvctl
        self.tmp = tmp
        os.makedirs(tmp, exist_ok=True)
        self.port = free_port()
        self.state = os.path.join(tmp, "switch.json")
        self.known = os.path.join(tmp, "known_hosts")
        self.sshd = None
        self.host_pub = keygen(os.path.join(tmp, "host_key"))
        self.other_pub = keygen(os.path.join(tmp, "other_key"))
        client_pub = keygen(os.path.join(tmp, "id"))
        self.write_state({"vlans": {"1": "default"},
                          "ports": {"Gi0/1": [1], "Gi0/2": [1],
                                    "Gi0/24": [1], "Gi0/3": []},
                          "routed": ["Gi0/3"], "saves": 0, "sessions": 0, "log": []})
        # The system interpreter, isolated: the switch starts per login,
        # and a user-installed one with site packages can take a second.
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
            else sys.executable
        cmd = f"{py} -I -S {HERE}/fake_switch.py {self.state}"
        with open(os.path.join(tmp, "authorized_keys"), "w") as f:
            f.write(f'command="{cmd}",restrict,pty {client_pub}\n')
        with open(os.path.join(tmp, "sshd_config"), "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {tmp}/host_key
PidFile {tmp}/sshd.pid
AuthorizedKeysFile {tmp}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers {getpass.getuser()}
LogLevel ERROR
""")
        with open(os.path.join(tmp, "ssh_config"), "w") as f:
            f.write(f"""Host fakesw
    HostName 127.0.0.1
    Port {self.port}
    User {getpass.getuser()}
    IdentityFile {tmp}/id
    UserKnownHostsFile {self.known}
    GlobalKnownHostsFile /dev/null
""")
        self.config = (f"ssh:fakesw:vendor=cisco_ios:"
                       f"ssh_config={tmp}/ssh_config:uplink=Gi0/24:"
                       f"h1=Gi0/1:h2=Gi0/2:h3=Gi0/3:timeout=10")

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privsep directory
        log = open(os.path.join(self.tmp, "sshd.log"), "w")
        self.sshd = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", os.path.join(self.tmp, "sshd_config")],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.sshd.poll() is not None:
                raise RuntimeError("sshd exited: " + self.sshd_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd does not listen: " + self.sshd_log())

    def sshd_log(self):
        with open(os.path.join(self.tmp, "sshd.log")) as f:
            return f.read()

    def stop(self):
        if self.sshd and self.sshd.poll() is None:
            os.kill(self.sshd.pid, signal.SIGTERM)
            try:
                self.sshd.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.sshd.pid, signal.SIGKILL)
                self.sshd.wait()

    def known_hosts(self, pub):
        key = " ".join(pub.split()[:2])
        with open(self.known, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {key}\n" if pub else "")

    def read_state(self):
        with open(self.state) as f:
            return json.load(f)

    def write_state(self, st):
        with open(self.state, "w") as f:
            json.dump(st, f)

    def drv(self, *args):
        env = dict(os.environ)
        env.pop("SSH_AUTH_SOCK", None)  # no agent: the identity file only
        r = subprocess.run([self.drvctl, self.config] + list(args),
                           capture_output=True, text=True, timeout=60,
                           env=env)
        return r.returncode, r.stdout, r.stderr

    def apply(self, *vlans, log=False):
        return self.drv("switch", "xponder", "40-50",
                        *(["--log"] if log else []), *vlans)


def check(cond, what, *ctx):
    if not cond:
        print("FAIL:", what, *ctx, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def host_keys(rig):
    rig.known_hosts("")
    rc, out, err = rig.apply("42:h1")
    check(rc == 1 and "unknown (not in known_hosts)" in err
          and "SHA256:" in err, "unknown host key refused", err)
    rig.known_hosts(rig.other_pub)
    rc, out, err = rig.apply("42:h1")
    check(rc == 1 and "does NOT match known_hosts" in err,
          "changed host key refused", err)
    check(rig.read_state()["sessions"] == 0,
          "no login happened with a bad host key")
    rig.known_hosts(rig.host_pub)


def apply_and_repeat(rig):
    rc, out, err = rig.apply("42:h1,h2:up", "43:h1", log=True)
    check(rc == 0 and "changes=6 " in out, "first apply: 6 changes", out, err)
    check("vlan 42; name vc-42; exit" in out
          and "interface Gi0/24; switchport mode trunk; switchport trunk "
              "allowed vlan add 42; exit" in out,
          "operation log lists the commands", out)
    st = rig.read_state()
    check(st["vlans"] == {"1": "default", "42": "vc-42", "43": "vc-43"},
          "VLANs created with our mark", st["vlans"])
    check(st["ports"] == {"Gi0/1": [1, 42, 43], "Gi0/2": [1, 42],
                          "Gi0/24": [1, 42], "Gi0/3": []},
          "trunked on the mapped ports and the uplink only", st["ports"])
    check(st["saves"] == 1 and st["sessions"] == 1,
          "one session, saved once", st["saves"], st["sessions"])
    rc, out, err = rig.apply("42:h1,h2:up", "43:h1")
    st = rig.read_state()
    check(rc == 0 and "changes=0 " in out, "second apply changes nothing",
          out, err)
    check(st["saves"] == 1 and st["sessions"] == 2,
          "no save without a change", st["saves"])
    check(st["trace"] == sorted(st["trace"]),
          "one session at a time (commands never interleave)", st["trace"])


def foreign_and_release(rig):
    st = rig.read_state()
    st["vlans"]["44"] = "ops-mgmt"
    st["ports"]["Gi0/1"].append(44)
    st["ports"]["Gi0/24"].append(44)
    rig.write_state(st)
    rc, out, err = rig.apply("43:h1")
    st = rig.read_state()
    check(rc == 0 and "changes=4 " in out, "release of 42: 4 changes", out,
          err)
    check("42" not in st["vlans"] and st["vlans"]["44"] == "ops-mgmt",
          "our 42 deleted, their 44 kept", st["vlans"])
    check(st["ports"]["Gi0/1"] == [1, 43, 44]
          and st["ports"]["Gi0/24"] == [1, 44],
          "their 44 stays on the ports", st["ports"])
    rc, out, err = rig.apply("43:h1", "44:h2")
    check(rc == 1 and 'vlan 44: exists on the switch as "ops-mgmt"' in err,
          "wanting a foreign VLAN is refused", err)
    check(rig.read_state()["ports"]["Gi0/2"] == [1],
          "nothing sent after the refusal")


def drift_and_read(rig):
    st = rig.read_state()
    st["ports"]["Gi0/1"].remove(43)
    rig.write_state(st)
    rc, out, err = rig.apply("43:h1")
    check(rc == 0 and "changes=1 " in out, "drift repaired", out, err)
    check(43 in rig.read_state()["ports"]["Gi0/1"], "43 back on Gi0/1")
    rc, out, err = rig.drv("switch-read", "40-50")
    check(rc == 0 and out == "uplink=xponder svlan=0\n43 h1\n",
          "switch-read shows our VLAN only", out, err)


def failure(rig):
    saves = rig.read_state()["saves"]
    rc, out, err = rig.apply("43:h1", "46:h3")
    check(rc == 1 and "vlan 46: ADD_NETWORK_TO_TRUNK Gi0/3: switchport "
                      "mode trunk: % Invalid input detected" in err
          and err.startswith("error=-5: ssh fakesw: "),
          "a rejected command fails the apply", err)
    check(rig.read_state()["saves"] == saves, "a failed batch is not saved")
    rc, out, err = rig.apply("43:h1")
    st = rig.read_state()
    check(rc == 0 and "46" not in st["vlans"],
          "the next apply converges (half-made 46 removed)", out, err,
          st["vlans"])


def templates_and_pager(rig):
    tpl = os.path.join(rig.tmp, "templates.ini")
    with open(tpl, "w") as f:
        f.write("; paging stays on: the driver must answer --More--\n"
                "[lab_ios]\ninherit = cisco_ios\n"
                "SESSION_SETUP = terminal width 511\n")
    base = rig.config
    rig.config = (base.replace("vendor=cisco_ios", "vendor=lab_ios")
                  + f":templates={tpl}")
    try:
        want = ["43:h1"] + [f"{v}:h1" for v in range(45, 51)]
        rc, out, err = rig.apply(*want)
        st = rig.read_state()
        check(rc == 0 and "changes=12 " in out and
              st["ports"]["Gi0/1"] == [1, 43, 44] + list(range(45, 51)),
              "templates= vendor applies through the pager", out, err,
              st["ports"])
        rc, out, err = rig.apply(*want)
        check(rc == 0 and "changes=0 " in out,
              "read-back through the pager is complete (no-op repeat)",
              out, err)
        with open(tpl, "a") as f:
            f.write("DELETE_NETWORK = no vlan {vlan_id}\n")
        rc, out, err = rig.apply(*want)
        check(rc == 1 and "DELETE_NETWORK: placeholder {vlan_id}: unknown"
              in err, "a bad template file is refused at open", err)
    finally:
        rig.config = base


def main():
    if len(sys.argv) < 2:
        print("usage: test_ssh_switch.py VC_DRVCTL", file=sys.stderr)
        return 2
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        print("skip: sshd or ssh-keygen missing (apt-get install "
              "openssh-server)")
        return 77
    if os.geteuid() != 0:
        print("skip: sshd needs root for privilege separation here")
        return 77
    tmp = tempfile.mkdtemp(prefix="vc-ssh-")
    rig = Rig(os.path.abspath(sys.argv[1]), tmp)
    try:
        rig.start()
        host_keys(rig)
        apply_and_repeat(rig)
        foreign_and_release(rig)
        drift_and_read(rig)
        failure(rig)
        templates_and_pager(rig)
    finally:
        rig.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
