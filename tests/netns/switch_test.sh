#!/bin/sh
# Linux-bridge switch back-end on a real kernel: VLAN membership per port,
# idempotence, drift repair, the managed-VID rule, QinQ and back, removal.
. "$LIB"
S=sw
mkns $S
at $S ip link add br0 type bridge
at $S ip link set br0 up
for p in swp1 swp2 swp3 up0; do
    at $S ip link add $p type veth peer name ${p}x
    at $S ip link set $p master br0
    at $S ip link set $p up
    at $S ip link set ${p}x up
done
CFG=linuxbridge:br0:uplink=up0:h1=swp1:h2=swp2:h3=swp3
D="drv $S $CFG switch"
STATE="42:h1,h2:up 43:h3:up 44:h1"

# vids PORT: the VIDs a port carries tagged (not PVID/untagged), sorted.
vids() {
    at $S bridge -j vlan show dev "$1" | python3 -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    for v in e.get("vlans", []):
        lo = v["vlan"]; hi = v.get("vlanEnd", lo)
        f = v.get("flags", [])
        if "PVID" in f or "Egress Untagged" in f:
            continue
        out += range(lo, hi + 1)
print(" ".join(str(v) for v in sorted(out)))'
}

expect_changes "first apply" + $D xponder 40-50 $STATE
check "vlan_filtering on" sh -c \
    "ip netns exec $(ns $S) ip -d link show br0 | grep -q 'vlan_filtering 1'"
expect_eq "swp1 carries 42 44" "42 44" "$(vids swp1)"
expect_eq "swp2 carries 42" "42" "$(vids swp2)"
expect_eq "swp3 carries 43" "43" "$(vids swp3)"
expect_eq "uplink carries 42 43" "42 43" "$(vids up0)"
expect_changes "second apply changes nothing" 0 $D xponder 40-50 $STATE
expect_eq "read back" "$(printf 'uplink=xponder svlan=0\n42 h1,h2 up\n43 h3 up\n44 h1')" \
    "$(drv $S $CFG switch-read 40-50)"

at $S bridge vlan add dev swp1 vid 300      # outside the pool: not ours
at $S bridge vlan add dev swp2 vid 45       # inside: not desired, removed
at $S bridge vlan del dev swp1 vid 42       # drift: restored
at $S bridge vlan add dev swp3 vid 43 pvid untagged  # wrong flags: fixed
expect_changes "drift repaired" + $D xponder 40-50 $STATE
expect_eq "swp1: 42 back, 300 kept" "42 44 300" "$(vids swp1)"
expect_eq "swp2: 45 removed" "42" "$(vids swp2)"
expect_eq "swp3: 43 tagged again" "43" "$(vids swp3)"
expect_changes "then in sync" 0 $D xponder 40-50 $STATE

out=$($D xponder 40-50 $STATE 60:h1 2>&1)
check "VID outside the managed set refused" has "$out" 'not in the managed set'
out=$($D xponder 40-50 --incomplete 2>&1)
expect_eq "incomplete empty state removes nothing" 0 "$(changes "$out")"

expect_changes "QinQ uplink" + $D qinq:100 40-50 $STATE
check "vcq100 is 802.1ad id 100 on up0" sh -c \
    "ip netns exec $(ns $S) ip -d link show vcq100 | grep -q 'vlan protocol 802.1ad id 100'"
expect_eq "vcq100 alias" "virtcloud:qinq=br0:svlan=100" "$(alias_of $S vcq100)"
expect_eq "vcq100 in br0" br0 "$(master_of $S vcq100)"
expect_eq "IPv6 off on vcq100" 1 \
    "$(at $S cat /proc/sys/net/ipv6/conf/vcq100/disable_ipv6)"
expect_eq "vcq100 carries 42 43" "42 43" "$(vids vcq100)"
expect_eq "raw uplink carries none" "" "$(vids up0)"
expect_changes "QinQ in sync" 0 $D qinq:100 40-50 $STATE
expect_eq "read back QinQ" "$(printf 'uplink=qinq svlan=100\n42 h1,h2 up\n43 h3 up\n44 h1')" \
    "$(drv $S $CFG switch-read 40-50)"
expect_changes "S-VLAN 100 -> 200" + $D qinq:200 40-50 $STATE
check_not "vcq100 gone" at $S ip link show vcq100
expect_eq "vcq200 carries 42 43" "42 43" "$(vids vcq200)"

expect_changes "back to xponder" + $D xponder 40-50 $STATE
check_not "vcq200 gone" at $S ip link show vcq200
expect_eq "uplink carries 42 43 again" "42 43" "$(vids up0)"

expect_changes "remove all" + $D xponder 40-50
for p in swp1 swp2 swp3 up0; do
    expect_eq "$p: no managed VID left" "" \
        "$(vids $p | tr ' ' '\n' | awk '$1 >= 40 && $1 <= 50' | tr '\n' ' ')"
done
expect_eq "swp1 keeps 300" "300" "$(vids swp1)"
check "PVID 1 untouched" sh -c \
    "ip netns exec $(ns $S) bridge vlan show dev swp2 | grep -q '1 PVID'"
expect_changes "removal idempotent" 0 $D xponder 40-50

out=$(drv $S linuxbridge:br0:uplink=up0:h1=nope switch xponder 40-50 42:h1 2>&1)
check "missing port reported" has "$out" 'port nope: no such interface'
finish
