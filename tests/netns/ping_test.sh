#!/bin/sh
# Real packets: VMs on two hosts reach each other on VLAN 42 through a
# linuxbridge switch; a VM on VLAN 43 with the same address hears nothing.
#
#   vm1 -- hv1 [vc42: eth1.42, tap1] -- eth1 == swp1 -- sw br0
#   vm2 -- hv2 [vc42: eth1.42, tap2] -- eth1 == swp2 -/
#   vm3 -- hv2 [vc43: eth1.43, tap3] -/
. "$LIB"
for n in sw hv1 hv2 vm1 vm2 vm3; do
    mkns $n
    # No IPv6 chatter (router solicitations, MLD) to blur the counts.
    at $n sh -c 'for f in all default; do
        echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done' 2>/dev/null
done
wire() { # wire NS1 IF1 NS2 IF2
    ip link add "$2" netns "$(ns $1)" type veth peer name "$4" netns "$(ns $3)"
    at "$1" ip link set "$2" up
    at "$3" ip link set "$4" up
}
at sw ip link add br0 type bridge
at sw ip link set br0 up
wire hv1 eth1 sw swp1
wire hv2 eth1 sw swp2
wire sw up0 sw up0x
for p in swp1 swp2 up0; do at sw ip link set $p master br0; done
wire vm1 eth0 hv1 tap1
wire vm2 eth0 hv2 tap2
wire vm3 eth0 hv2 tap3
at vm1 ip addr add 10.99.0.1/24 dev eth0
at vm2 ip addr add 10.99.0.2/24 dev eth0
at vm3 ip addr add 10.99.0.2/24 dev eth0

expect_changes "switch" + drv sw linuxbridge:br0:uplink=up0:hv1=swp1:hv2=swp2 \
    switch xponder 40-50 42:hv1,hv2:up 43:hv2:up
expect_changes "host 1" + drv hv1 host host eth1 42=c1:tap1
expect_changes "host 2" + drv hv2 host host eth1 42=c1:tap2 43=c2:tap3

PING=ping
command -v ping >/dev/null 2>&1 || PING="busybox ping"
# sniff NS STOPFILE MAC...: counts the frames eth0 receives until STOPFILE
# exists (30 s at most) that come from cluster A: sent by one of the MACs,
# or IPv4/ARP from vm1's address. Every IPv4/ARP frame is described on
# stderr, so a failure names the frame and its sender.
sniff() {
    n=$1 stop=$2; shift 2
    at "$n" python3 -c '
import os, socket, sys, time
# Protocol 0 at creation, ETH_P_ALL at bind: nothing queues from other
# interfaces before the socket is bound to eth0.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind(("eth0", 3))
s.settimeout(0.1)
print("ready", flush=True)
macs = {bytes.fromhex(m.replace(":", "")) for m in sys.argv[2:]}
vm1 = socket.inet_aton("10.99.0.1")
hexmac = lambda b: ":".join("%02x" % x for x in b)
end, n = time.time() + 30, 0
while time.time() < end and not os.path.exists(sys.argv[1]):
    try:
        f, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING or len(f) < 42:
        continue
    et = f[12:14]
    if et == b"\x08\x06":
        src, what = f[28:32], "arp op %d %s > %s" % (
            f[21], socket.inet_ntoa(f[28:32]), socket.inet_ntoa(f[38:42]))
    elif et == b"\x08\x00":
        src, what = f[26:30], "ipv4 proto %d %s > %s" % (
            f[23], socket.inet_ntoa(f[26:30]), socket.inet_ntoa(f[30:34]))
    else:
        src, what = b"", "ethertype %s" % f[12:14].hex()
    leak = f[6:12] in macs or src == vm1
    if leak or src:
        print("%s %s > %s %s" % ("LEAK" if leak else "other", hexmac(f[6:12]),
              hexmac(f[0:6]), what), file=sys.stderr, flush=True)
    n += leak
print(n)' "$stop" "$@"
}
tmp=$TMPD/sniff
mac() { at "$1" cat /sys/class/net/eth0/address; }
sniff vm3 "$tmp.stop" "$(mac vm1)" "$(mac vm2)" > "$tmp" 2> "$tmp.frames" &
sniffer=$!
sniff vm2 "$tmp.stop" "$(mac vm1)" > "$tmp.2" 2>/dev/null &
sniffer2=$!
while [ "$(head -1 "$tmp" 2>/dev/null)" != ready ] ||
      [ "$(head -1 "$tmp.2" 2>/dev/null)" != ready ]; do
    sleep 0.2
done
check "vm1 pings vm2 over VLAN 42" at vm1 $PING -c 3 -W 2 10.99.0.2
check "vm2 answered (ARP entry on vm1)" sh -c \
    "ip netns exec $(ns vm1) ip neigh show 10.99.0.2 | grep -q lladdr"
touch "$tmp.stop"
wait $sniffer $sniffer2
check "vm2 received vm1's pings and ARP" test "$(tail -1 "$tmp.2")" -ge 4
expect_eq "vm3 (VLAN 43, same IP) received no frame of VLAN 42's VMs" 0 \
    "$(tail -1 "$tmp")"
if [ -s "$tmp.frames" ]; then
    sed 's/^/  /' "$tmp.frames"
    for n in hv1 hv2 vm1 vm2 vm3; do
        at $n ip -o link | awk -v n=$n '{for (i = 1; i < NF; i++)
            if ($i == "link/ether") print "  " n, $2, $(i + 1)}'
    done
fi
check_not "vm3 cannot reach vm1 across VLANs" at vm3 $PING -c 2 -W 1 10.99.0.1

# Take VLAN 42 off host 2: vm1 loses vm2.
expect_changes "host 2 without VLAN 42" + drv hv2 host host eth1 43=c2:tap3
at vm1 ip neigh flush dev eth0
check_not "vm1 no longer reaches vm2" at vm1 $PING -c 2 -W 1 10.99.0.2
finish
