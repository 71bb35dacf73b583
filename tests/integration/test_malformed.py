#!/usr/bin/env python3
"""Malformed client frames on a raw socket to one agent's API port: each gets
an error answer or a closed connection, the agent stays up, and a normal
CLI create through that agent still works afterwards."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vc  # noqa: E402

E_MALFORMED = -10009
E_VERSION = -10010
E_TOOBIG = -10018
ANSWER_S = 5.0


def ping(seq, version=1):
    return vc.frame(vc.mp_pack([version, seq, 5, 0, 0, None]))


def expect_answer(sock, what, codes, seq=None):
    """The next frame must be an error answer with one of codes."""
    resp = vc.recv_frame(sock, ANSWER_S)
    vc.check(resp is not None, "%s: connection closed without an answer",
             what)
    vc.check(isinstance(resp, list) and len(resp) == 6, "%s: answer %r",
             what, resp)
    vc.check(resp[2] in codes, "%s: code %r (%s), want one of %r", what,
             resp[2], resp[3], codes)
    if seq is not None:
        vc.check(resp[1] == seq, "%s: seq %r, want %r", what, resp[1], seq)
    vc.log("%s -> %d %s", what, resp[2], resp[3])
    return resp


def expect_closed(sock, what):
    """The agent closes the connection (an answer before it is allowed)."""
    deadline = time.monotonic() + ANSWER_S
    while time.monotonic() < deadline:
        try:
            resp = vc.recv_frame(sock, ANSWER_S)
        except socket.timeout:
            break
        if resp is None:
            vc.log("%s -> closed", what)
            return
        vc.check(resp[2] != 0, "%s: answered ok: %r", what, resp)
    raise vc.TestFailure("%s: connection still open after %.0fs" %
                         (what, ANSWER_S))


def expect_alive(sock, what, seq):
    """The connection still serves: a ping on it is answered."""
    sock.sendall(ping(seq))
    resp = vc.recv_frame(sock, ANSWER_S)
    vc.check(resp is not None and resp[1] == seq and resp[2] == 0,
             "%s: ping after it: %r", what, resp)


def test(env):
    c = env.cluster(3)
    target = c.followers(c.wait_leader())[0]
    a = c[target]
    vc.log("target %s at %s (pid %d)", a.name, a.api, a.pid)

    # A valid ping first: proves the encoder and the decoder right.
    with vc.connect(a.api) as s:
        expect_alive(s, "valid ping", 7)

    # 1. truncated frame, then our side closes: nothing to answer.
    with vc.connect(a.api) as s:
        s.sendall(struct.pack(">I", 100) + b"\x96\x01\x01")
    # 1b. truncated frame and half-close: the agent must close too.
    with vc.connect(a.api) as s:
        s.sendall(struct.pack(">I", 100) + b"\x96\x01\x01")
        s.shutdown(socket.SHUT_WR)
        expect_closed(s, "truncated frame + EOF")

    # 2. length 0xFFFFFFFF: error answer, then closed.
    with vc.connect(a.api) as s:
        s.sendall(b"\xff\xff\xff\xff" + b"x" * 64)
        expect_answer(s, "length 0xFFFFFFFF", (E_TOOBIG,))
        expect_closed(s, "length 0xFFFFFFFF")
    # 2b. one byte over the 1 MiB limit.
    with vc.connect(a.api) as s:
        s.sendall(struct.pack(">I", (1 << 20) + 1))
        expect_answer(s, "length 1MiB+1", (E_TOOBIG,))
        expect_closed(s, "length 1MiB+1")

    # 3. zero length.
    with vc.connect(a.api) as s:
        s.sendall(b"\x00\x00\x00\x00")
        expect_answer(s, "zero length", (E_TOOBIG, E_MALFORMED))
        expect_closed(s, "zero length")

    # 4. garbage inside a valid length: answered, connection kept.
    garbage = [
        ("never-used byte 0xc1", b"\xc1"),
        ("random bytes", bytes(range(200, 256)) * 3),
        ("not an array", vc.mp_pack("hello")),
        ("array of 5", vc.mp_pack([1, 9, 5, 0, 0])),
        ("trailing bytes", vc.mp_pack([1, 9, 5, 0, 0, None]) + b"\x00"),
        ("unknown op", vc.mp_pack([1, 9, 77, 0, 0, None])),
        ("submit with nil body", vc.mp_pack([1, 9, 1, 0, 0, None])),
        ("ext type", vc.mp_pack([1, 9, 5, 0, 0, b"\xd4\x01\x00"])),
        # Declared sizes larger than the bytes that follow (msgpack-c
        # #1013: would allocate ~96 GB if trusted).
        ("array32 of 0xff000000 (dd ff 00 00 00)", b"\xdd\xff\x00\x00\x00"),
        ("map32 of 0xff000000 (df ff 00 00 00)", b"\xdf\xff\x00\x00\x00"),
        ("request with body dd ff 00 00 00",
         vc.mp_pack([1, 9, 1, 0, 0, b"\xdd\xff\x00\x00\x00"])),
        ("request with body df ff 00 00 00",
         vc.mp_pack([1, 9, 1, 0, 0, b"\xdf\xff\x00\x00\x00"])),
        ("str32 of 4 GiB", vc.mp_pack([1, 9, 3, 0, 0,
                                       b"\xdb\xff\xff\xff\xff"])),
        ("deep nesting", b"\x91" * 10000 + b"\xc0"),
    ]
    seq = 100
    with vc.connect(a.api) as s:
        for what, body in garbage:
            s.sendall(vc.frame(body))
            expect_answer(s, what, (E_MALFORMED, E_TOOBIG, -10006))
            seq += 1
            expect_alive(s, what, seq)

    # 5. a valid frame of another protocol version: answered with VERSION
    # and the request's seq.
    with vc.connect(a.api) as s:
        s.sendall(ping(4242, version=3))
        expect_answer(s, "version 3", (E_VERSION,), seq=4242)
        expect_alive(s, "version 3", 4243)

    # 6. a frame cut in two writes is still one frame.
    with vc.connect(a.api) as s:
        f = ping(55)
        s.sendall(f[:3])
        time.sleep(0.05)
        s.sendall(f[3:])
        resp = vc.recv_frame(s, ANSWER_S)
        vc.check(resp and resp[1] == 55 and resp[2] == 0, "split: %r", resp)

    vc.check(a.running(), "%s died: exit %r", a.name, a.proc.returncode)
    st = c.status(target)
    vc.check(st and st["leader"], "%s has no leader afterwards: %r", a.name,
             st)
    r = c.cli(target, "cluster", "create", "after", "--sites",
              "brno,praha,plzen")
    vc.check(r.rc == 0 and r.doc["vlan"] == 150, "create afterwards: %r", r)
    vc.check(all(x.running() for x in c.agents), "an agent died")


if __name__ == "__main__":
    vc.main(test)
