#!/usr/bin/env python3
"""chaos_proxy: a fault-injecting TCP proxy for raft peer traffic on loopback.

One process serves one listening port per agent ("front"); every agent's
raft address in the bootstrap list is its front, so all raft traffic to
that agent passes here. libraft's plain TCP transport starts each
connection with a handshake that names the dialling server's raft id
(uint64 protocol, uint64 id, uint64 address length, address; little
endian), and connections are one-way (a server dials its peers for the
messages it sends), so a connection arriving at B's front that names A
carries the messages A -> B. Each ordered pair (src, dst) has a mode:

  ok         forward
  drop       close the pair's connections at once and refuse new ones
             (the dialler sees the connection reset and redials)
  blackhole  keep connections open but forward nothing (bytes are read
             and discarded): the dialler believes its messages are sent.
             Leaving blackhole aborts the pair's connections, as TCP would
             after a long stall, so the agent never sees a stream with a
             hole in it
  delay MS   forward each chunk MS milliseconds after it arrived, in order

Raft ids come from site names the way the agent makes them (64-bit
FNV-1a, top bit cleared; agent/consensus.c consensus_site_id()). A
connection whose id matches no front's site is forwarded as is.

Agents with keys speak the secure peer channel instead (agent/channel.h):
its first message (136 bytes, starting "VCPC") carries the dialler's own
raft address in clear at bytes 72-135, which names the dialling site by
its front's target. Every connection of the pair obeys the pair's mode,
whatever it carries (raft, forwarded requests).

Control: one command per line on stdin, one answer line on stdout
("ok ..." or "err ..."):

  listen NAME HOST:PORT       open a front for site NAME forwarding to
                              HOST:PORT; answers "ok NAME 127.0.0.1:PORT"
  link SRC DST MODE [MS]      set one direction's mode (SRC/DST: names or *)
  heal                        every pair back to ok
  stats                       "ok {json}": connections and bytes per pair
  quit                        close everything and exit

EOF on stdin also exits, so the proxy never outlives the test that
started it. Standard library only (asyncio).
"""
import asyncio
import json
import struct
import sys

HANDSHAKE_FIXED = 24  # protocol, id, address length: 3 x uint64 LE
CHANNEL_MSG1 = 136    # the secure channel's first message
CHANNEL_ADDR = slice(72, 136)  # the dialler's address, NUL-padded
MODES = ("ok", "drop", "blackhole", "delay")


def site_id(name):
    """The agent's raft id for a site name (consensus_site_id)."""
    h = 1469598103934665603
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    h &= 0x7FFFFFFFFFFFFFFF
    return h or 1


class Pair:
    """Mode and live connections of one direction src -> dst."""

    def __init__(self):
        self.mode, self.delay_ms = "ok", 0
        self.conns = set()
        self.accepted = self.refused = self.bytes = self.dropped = 0


class Proxy:
    def __init__(self):
        self.fronts = {}   # name -> (server, target)
        self.ids = {}      # raft id -> name
        self.pairs = {}    # (src, dst) -> Pair

    def pair(self, src, dst):
        p = self.pairs.get((src, dst))
        if p is None:
            p = self.pairs[(src, dst)] = Pair()
        return p

    async def listen(self, name, target):
        host, port = target.rsplit(":", 1)

        async def on_conn(reader, writer):
            await self.serve(name, host, int(port), reader, writer)

        srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        self.fronts[name] = (srv, target)
        self.ids[site_id(name)] = name
        return "127.0.0.1:%d" % srv.sockets[0].getsockname()[1]

    def by_target(self, addr):
        """The site whose front forwards to addr (bytes), or "?"."""
        for name, (_, target) in self.fronts.items():
            if target.encode() == addr:
                return name
        return "?"

    async def serve(self, dst, host, port, reader, writer):
        try:
            head = await asyncio.wait_for(reader.readexactly(HANDSHAKE_FIXED),
                                          10)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            writer.close()
            return
        if head[:4] == b"VCPC":
            try:
                head += await asyncio.wait_for(
                    reader.readexactly(CHANNEL_MSG1 - HANDSHAKE_FIXED), 10)
            except (asyncio.IncompleteReadError, asyncio.TimeoutError,
                    OSError):
                writer.close()
                return
            src = self.by_target(head[CHANNEL_ADDR].rstrip(b"\0"))
        else:
            src = self.ids.get(struct.unpack("<Q", head[8:16])[0], "?")
        p = self.pair(src, dst)
        if p.mode == "drop":
            p.refused += 1
            writer.transport.abort()
            return
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            writer.transport.abort()
            return
        p.accepted += 1
        conn = Conn(p, reader, writer, ur, uw)
        p.conns.add(conn)
        try:
            await conn.run(head)
        finally:
            p.conns.discard(conn)

    def set_mode(self, src, dst, mode, ms):
        names = list(self.fronts) + ["?"]
        for s in (names if src == "*" else [src]):
            for d in (list(self.fronts) if dst == "*" else [dst]):
                if s == d:
                    continue
                p = self.pair(s, d)
                was = p.mode
                p.mode, p.delay_ms = mode, ms
                if mode == "drop" or (was == "blackhole" and
                                      mode != "blackhole"):
                    for c in list(p.conns):
                        c.abort()

    def stats(self):
        return {"%s>%s" % k: {"mode": p.mode, "delay_ms": p.delay_ms,
                              "open": len(p.conns), "accepted": p.accepted,
                              "refused": p.refused, "bytes": p.bytes,
                              "dropped": p.dropped}
                for k, p in sorted(self.pairs.items())}


class Conn:
    """One proxied connection. Upstream bytes (dialler -> agent) obey the
    pair's mode at the moment they arrive; downstream bytes (raft sends
    nothing back on these one-way connections but the TCP stream stays
    two-way) are forwarded unless the pair drops or blackholes."""

    def __init__(self, pair, reader, writer, ur, uw):
        self.p = pair
        self.r, self.w, self.ur, self.uw = reader, writer, ur, uw
        self.queue = asyncio.Queue()

    def abort(self):
        for w in (self.w, self.uw):
            try:
                w.transport.abort()
            except Exception:  # noqa: BLE001 -- already gone
                pass

    async def run(self, head):
        self.queue.put_nowait((asyncio.get_running_loop().time(), head))
        tasks = [asyncio.ensure_future(x) for x in
                 (self.up_read(), self.up_write(), self.down())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        self.abort()

    async def up_read(self):
        loop = asyncio.get_running_loop()
        while True:
            b = await self.r.read(65536)
            if not b:
                return
            if self.p.mode == "blackhole":
                self.p.dropped += len(b)
                continue
            self.queue.put_nowait((loop.time(), b))

    async def up_write(self):
        loop = asyncio.get_running_loop()
        while True:
            t, b = await self.queue.get()
            if self.p.mode == "delay":
                wait = t + self.p.delay_ms / 1000.0 - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            if self.p.mode == "blackhole":
                self.p.dropped += len(b)
                continue
            self.uw.write(b)
            self.p.bytes += len(b)
            await self.uw.drain()

    async def down(self):
        while True:
            b = await self.ur.read(65536)
            if not b:
                return
            if self.p.mode != "blackhole":
                self.w.write(b)
                await self.w.drain()


async def control(proxy):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                 sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        words = line.decode().split()
        if not words:
            continue
        try:
            out = await command(proxy, words)
        except (ValueError, IndexError, KeyError, OSError) as e:
            out = "err %s: %s" % (words[0], e)
        sys.stdout.write(out + "\n")
        sys.stdout.flush()
        if words[0] == "quit":
            return


async def command(proxy, w):
    if w[0] == "listen":
        return "ok %s %s" % (w[1], await proxy.listen(w[1], w[2]))
    if w[0] == "link":
        mode = w[3]
        if mode not in MODES:
            raise ValueError("mode %r not in %s" % (mode, MODES))
        ms = int(w[4]) if mode == "delay" else 0
        for n in (w[1], w[2]):
            if n != "*" and n not in proxy.fronts and n != "?":
                raise KeyError("no front named %r" % n)
        proxy.set_mode(w[1], w[2], mode, ms)
        return "ok"
    if w[0] == "heal":
        proxy.set_mode("*", "*", "ok", 0)
        return "ok"
    if w[0] == "stats":
        return "ok " + json.dumps(proxy.stats(), sort_keys=True)
    if w[0] == "quit":
        return "ok"
    raise ValueError("unknown command")


def main():
    proxy = Proxy()
    asyncio.run(control(proxy))


if __name__ == "__main__":
    main()
