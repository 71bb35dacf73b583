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
# sniff NS STOPFILE: counts the IPv4 and ARP frames eth0 receives until
# STOPFILE exists (30 s at most).
sniff() {
    at "$1" python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
s.settimeout(0.1)
print("ready", flush=True)
end, n = time.time() + 30, 0
while time.time() < end and not os.path.exists(sys.argv[1]):
    try:
        f, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING and f[12:14] in (b"\x08\x00", b"\x08\x06"):
        n += 1
print(n)' "$2"
}
tmp=$TMPD/sniff
sniff vm3 "$tmp.stop" > "$tmp" &
sniffer=$!
sniff vm2 "$tmp.stop" > "$tmp.2" &
sniffer2=$!
while [ "$(head -1 "$tmp")" != ready ] || [ "$(head -1 "$tmp.2")" != ready ]; do
    sleep 0.2
done
check "vm1 pings vm2 over VLAN 42" at vm1 $PING -c 3 -W 2 10.99.0.2
check "vm2 answered (ARP entry on vm1)" sh -c \
    "ip netns exec $(ns vm1) ip neigh show 10.99.0.2 | grep -q lladdr"
touch "$tmp.stop"
wait $sniffer $sniffer2
check "vm2 received the pings and ARP" test "$(tail -1 "$tmp.2")" -ge 4
expect_eq "vm3 (VLAN 43, same IP) received no IPv4/ARP frame" 0 \
    "$(tail -1 "$tmp")"
check_not "vm3 cannot reach vm1 across VLANs" at vm3 $PING -c 2 -W 1 10.99.0.1

# Take VLAN 42 off host 2: vm1 loses vm2.
expect_changes "host 2 without VLAN 42" + drv hv2 host host eth1 43=c2:tap3
at vm1 ip neigh flush dev eth0
check_not "vm1 no longer reaches vm2" at vm1 $PING -c 2 -W 1 10.99.0.2
finish
