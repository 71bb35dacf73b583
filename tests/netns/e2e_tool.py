"""Packet helpers of e2e_test.sh, run inside the test's namespaces.

    e2e_tool.py echo NAME
        answers every UDP datagram to port 7007 with "NAME re: <question>",
        so an asker learns which VM answered (forever; killed by PID).
    e2e_tool.py ask IP QUESTION TRIES
        asks IP:7007 up to TRIES times (0.5 s each) and prints the first
        answer's name, or "none". A bounded wait, not a timed assertion.
    e2e_tool.py announce IP
        one gratuitous ARP for IP from eth0, as QEMU announces a VM after
        a migration, so that bridges learn where its MAC went.
    e2e_tool.py sniff STOPFILE NS,MINE,OTHER,OTHERTAG...
        one AF_PACKET socket on eth0 of each namespace NS (/run/netns/NS):
        counts the frames received from the VM's own cluster (source MAC
        starting with hex MINE) and those of the other cluster (source MAC
        starting with OTHER, or OTHERTAG anywhere in the frame), until
        STOPFILE exists (90 s at most). Prints "ready", then one line per
        namespace: "NS mine=N other=M"; each foreign frame is described on
        stderr.
"""
import ctypes
import os
import select
import socket
import sys
import time

PORT = 7007
CLONE_NEWNET = 0x40000000


def echo(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", PORT))
    while True:
        data, addr = s.recvfrom(512)
        s.sendto(name.encode() + b" re: " + data[:64], addr)


def ask(ip, question, tries):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    for _ in range(int(tries)):
        try:
            s.sendto(question.encode(), (ip, PORT))
            data = s.recv(512)
            print(data.split(b" ")[0].decode())
            return
        except OSError:
            # timeout, or no route / unreachable while the path comes up
            time.sleep(0.2)
    print("none")


def announce(ip):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    mac = s.getsockname()[4]
    addr = socket.inet_aton(ip)
    arp = (b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + addr +
           b"\x00" * 6 + addr)
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)


def hexmac(b):
    return ":".join("%02x" % x for x in b)


def sniff(stop, specs):
    libc = ctypes.CDLL(None, use_errno=True)
    socks = {}
    for spec in specs:
        ns, mine, other, tag = spec.split(",")
        fd = os.open("/run/netns/" + ns, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        os.close(fd)
        # Protocol 0 at creation, ETH_P_ALL at bind: nothing queues from
        # other interfaces before the socket is bound to eth0.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        s.bind(("eth0", 3))
        socks[s] = {"ns": ns, "mine": bytes.fromhex(mine),
                    "other": bytes.fromhex(other), "tag": tag.encode(),
                    "n_mine": 0, "n_other": 0}
    print("ready", flush=True)
    end = time.time() + 90
    while time.time() < end and not os.path.exists(stop):
        ready, _, _ = select.select(list(socks), [], [], 0.1)
        for s in ready:
            try:
                f, addr = s.recvfrom(4096)
            except OSError:
                continue
            if addr[2] == socket.PACKET_OUTGOING or len(f) < 14:
                continue
            st = socks[s]
            src = f[6:12]
            if src.startswith(st["other"]) or st["tag"] in f:
                st["n_other"] += 1
                print("%s: FOREIGN frame %s > %s type %s: %r" % (
                    st["ns"], hexmac(src), hexmac(f[0:6]), f[12:14].hex(),
                    f[14:80]), file=sys.stderr, flush=True)
            elif src.startswith(st["mine"]):
                st["n_mine"] += 1
    for st in socks.values():
        print("%s mine=%d other=%d" % (st["ns"], st["n_mine"],
                                       st["n_other"]), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "echo":
        echo(sys.argv[2])
    elif cmd == "ask":
        ask(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "announce":
        announce(sys.argv[2])
    elif cmd == "sniff":
        sniff(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
