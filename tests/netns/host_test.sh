#!/bin/sh
# Host back-end on a real kernel: create, idempotence, repair of drift,
# unmarked links left alone, fencing, incomplete views, exact removal.
. "$LIB"
H=h
mkns $H
at $H ip link add eth1 type veth peer name eth1p
at $H ip link set eth1 up
at $H ip link set eth1p up
for v in vm1 vm2 vm3; do
    at $H ip link add $v type veth peer name ${v}p
    at $H ip link set $v up
done
# Not ours: a VLAN device and a bridge that look like ours, but unmarked.
at $H ip link add link eth1 name eth1.99 type vlan id 99
at $H ip link add vc77 type bridge
at $H ip link add foreign0 type bridge
at $H ip link set foreign0 alias "someone else's"
before=$(inventory $H)
foreign_before=$(at $H ip -d link show eth1.99; at $H ip -d link show vc77)

D="drv $H host host"
STATE="42=c1:vm1 43=c2:vm2,vm3 100=c3"

expect_changes "first apply creates" + $D eth1 $STATE
check "eth1.42 is VLAN 42 on eth1" sh -c \
    "ip netns exec $(ns $H) ip -d link show eth1.42 | grep -q 'vlan protocol 802.1Q id 42'"
expect_eq "eth1.42 alias" "virtcloud:cluster=c1:vlan=42" "$(alias_of $H eth1.42)"
expect_eq "vc42 alias" "virtcloud:cluster=c1:vlan=42" "$(alias_of $H vc42)"
expect_eq "eth1.42 in vc42" vc42 "$(master_of $H eth1.42)"
expect_eq "vm1 in vc42" vc42 "$(master_of $H vm1)"
expect_eq "vm3 in vc43" vc43 "$(master_of $H vm3)"
expect_eq "eth1.100 in vc100" vc100 "$(master_of $H eth1.100)"
check "vc42 up" is_up $H vc42
check "eth1.43 up" is_up $H eth1.43
expect_eq "IPv6 off on vc42" 1 "$(at $H cat /proc/sys/net/ipv6/conf/vc42/disable_ipv6)"
expect_eq "IPv6 off on eth1.42" 1 \
    "$(at $H cat /proc/sys/net/ipv6/conf/eth1.42/disable_ipv6)"
check_not "no IPv6 link-local on vc42" sh -c \
    "ip netns exec $(ns $H) ip -6 addr show dev vc42 | grep -q fe80"

expect_changes "second apply changes nothing" 0 $D eth1 $STATE
expect_eq "read back" "$(printf '42 c1 vm1\n43 c2 vm2,vm3\n100 c3 -')" \
    "$(drv $H host host-read eth1)"

at $H ip link del eth1.42
expect_changes "hand-deleted eth1.42 restored" + $D eth1 $STATE
expect_eq "eth1.42 back in vc42" vc42 "$(master_of $H eth1.42)"
at $H ip link set vc43 down
at $H ip link set vm2 nomaster
at $H ip link set eth1.100 alias "virtcloud:cluster=other:vlan=100"
at $H sh -c 'echo 0 > /proc/sys/net/ipv6/conf/vc100/disable_ipv6'
expect_changes "drift repaired" + $D eth1 $STATE
check "vc43 up again" is_up $H vc43
expect_eq "vm2 back in vc43" vc43 "$(master_of $H vm2)"
expect_eq "alias restored" "virtcloud:cluster=c3:vlan=100" \
    "$(alias_of $H eth1.100)"
expect_eq "IPv6 off again on vc100" 1 \
    "$(at $H cat /proc/sys/net/ipv6/conf/vc100/disable_ipv6)"
expect_changes "then in sync" 0 $D eth1 $STATE

out=$($D eth1 $STATE 77=c4 2>&1)
check "unmarked vc77 is refused, not taken" has "$out" \
    'vc77 exists without our mark'
expect_changes "state without 77 still in sync" 0 $D eth1 $STATE

# A stray interface in our bridge is released; a missing VM iface is only
# counted.
at $H ip link add stray type veth peer name strayp
at $H ip link set stray master vc100
out=$($D eth1 42=c1:vm1,vm9 43=c2:vm2,vm3 100=c3 2>&1)
check "missing vm9 counted" has "$out" 'missing=1'
check_not "stray released from vc100" test "$(master_of $H stray)" = vc100

# Incomplete view: nothing is deleted.
expect_changes "incomplete empty state deletes nothing" 0 \
    $D eth1 --incomplete
check "vc42 still there" at $H ip link show vc42

# Fencing: a state older than the device's marks is refused.
expect_changes "index 10 rewrites no unchanged link" 0 $D eth1 --index=10 $STATE
expect_changes "index 10 marks what it changes" + \
    $D eth1 --index=10 42=c1:vm1 43=c2:vm2,vm3 100=c5
out=$($D eth1 --index=5 $STATE 2>&1)
check "older index 5 refused" has "$out" 'error=-116.*newer than'

# Shrink, then remove everything: exactly what was created goes.
expect_changes "shrink to VLAN 43" + $D eth1 --index=11 43=c2:vm2,vm3
check_not "vc42 gone" at $H ip link show vc42
check_not "eth1.100 gone" at $H ip link show eth1.100
check "vm1 still exists" at $H ip link show vm1
expect_eq "vm1 released" "" "$(master_of $H vm1)"
expect_changes "remove all" + $D eth1 --index=12
expect_changes "removal is idempotent" 0 $D eth1 --index=12
at $H ip link del stray
expect_eq "inventory as before" "$before" "$(inventory $H)"
expect_eq "unmarked look-alikes untouched" "$foreign_before" \
    "$(at $H ip -d link show eth1.99; at $H ip -d link show vc77)"

# Patterns that cannot make interface names are refused.
check_not "pattern too long refused" \
    drv $H host:bridge=averylongname%u host-read eth1
check_not "pattern without %u refused" drv $H host:bridge=vc host-read eth1
check "custom pattern works" drv $H host:bridge=br-%u host eth1 7=c7
check "br-7 made" at $H ip link show br-7
check "custom pattern removal" drv $H host:bridge=br-%u host eth1
finish
