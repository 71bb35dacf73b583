#!/bin/sh
# End-to-end (issue 5): three sites with their real agents (raft on disk),
# driven by the CLI; real packets between VMs in namespaces.
#
#   mgmt: bridge mbr 10.255.0.254/16; every agent's namespace has a veth
#         mg0 into it (site agent of site I 10.255.I.1, host hIJ 10.255.I.1J)
#   site I (1..3): swI, a bridge br0 (the edge switch, driven by the site
#         agent through the linuxbridge driver) with ports p1, p2 (trunks
#         to hosts hI1, hI2, their eth1) and up0 (uplink to the core's uI)
#   core: VLAN-aware bridge cbr carrying the pools' VIDs 100-199 on u1, u2
#         (sites 1 xponder, 2 vpls) and on u3.300, the 802.1ad S-VLAN 300
#         of site 3 (qinq:300): the core pops the S-tag there
#   hosts: a host-role agent each, applying its state from its site agent
#   VMs: a1 (h11), a2 (h21) in cluster A on sites 1,2; b1 (h11), b2 (h31)
#         in cluster B on sites 1,3; a1 and b1 are 10.99.0.1, a2 and b2
#         10.99.0.2; each answers UDP 7007 with its name
#
# Checks: A and B each connected across sites, the right VM answers, no
# frame of one cluster reaches the other; a2 moves to site 3 (extend,
# attach, detach), same IP; drift repair of a host subinterface and of the
# switch's S-VLAN device; release of A with its site-2 agent killed -9
# and restarted meanwhile leaves every host and switch exactly as before A;
# a switch that refuses: the error shows, is retried, and a creation that
# cannot be applied is rolled back after apply-deadline.
. "$LIB"
if [ -z "${AGENT:-}" ] || [ ! -x "$AGENT" ] || [ -z "${CLI:-}" ] ||
   [ ! -x "$CLI" ]; then
    echo "SKIP: the agent and the CLI are not given (run.sh's AGENT, CLI)"
    exit 77
fi
for t in jq python3 nsenter; do
    command -v $t >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
TOOL=$(dirname "$LIB")/e2e_tool.py
T0=$(date +%s)
DEADLINE=10s # apply-deadline of the site agents
SITES="1 2 3"
HOSTS="h11 h12 h21 h22 h31 h32"
PIDS=""

# --- processes: started in namespaces, stopped by PID on any exit -------
stop_all() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    i=0
    while [ $i -lt 30 ]; do
        alive=""
        for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
}
on_exit() {
    rc=$?
    if [ "$FAILS" != 0 ] || [ "$rc" != 0 ]; then
        for f in "$TMPD"/*.log; do
            [ -f "$f" ] || continue
            echo "--- tail of $(basename "$f")"
            tail -25 "$f" | sed 's/^/  /'
        done
    fi
    stop_all
    # VC_E2E_LOGS=DIR keeps the agents' logs for a post-mortem.
    if [ -n "${VC_E2E_LOGS:-}" ]; then
        mkdir -p "$VC_E2E_LOGS" && cp "$TMPD"/*.log "$VC_E2E_LOGS"/
    fi
    cleanup
    exit $rc
}
trap on_exit EXIT
note() { echo "# [$(($(date +%s) - T0))s] $*"; }
die() { bad "$*"; finish; }

# Raft needs a file system with direct I/O or at least not UML's hostfs:
# the data directories go to a tmpfs there.
DATA=$TMPD
if [ -n "${VC_IN_UML:-}" ]; then DATA=$(mktemp -d /run/vc-e2e.XXXXXX); fi

# bg NAME NS CMD...: starts CMD in namespace NS, output to $TMPD/NAME.log;
# its PID in $PID_<NAME>.
bg() {
    name=$1 where=$2; shift 2
    ip netns exec "$(ns "$where")" "$@" >> "$TMPD/$name.log" 2>&1 &
    eval "PID_$name=$!"
    PIDS="$PIDS $!"
}

# wait_for DESC SECONDS CMD...: polls CMD until it succeeds (a bounded
# wait for something asynchronous, not a measurement); ok or FAIL.
wait_for() {
    d=$1 lim=$2; shift 2
    end=$(($(date +%s) + lim))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$end" ]; then bad "$d (waited ${lim}s)"
            return 1; fi
        sleep 0.3
    done
    ok "$d"
}

# --- topology -----------------------------------------------------------
nip() { x=$1; shift; ip -n "$(ns "$x")" "$@"; }
nbr() { x=$1; shift; bridge -n "$(ns "$x")" "$@"; }
# inns NS CMD...: CMD in NS's network namespace only (ip netns exec also
# makes a mount namespace and mounts sysfs: slow in user-mode Linux).
inns() { x=$1; shift; nsenter --net="/run/netns/$(ns "$x")" "$@"; }
# mst NS IF: IF's master ("" if none); master_is NS IF BRIDGE
mst() { nip "$1" -o link show dev "$2" 2>/dev/null |
    sed -n 's/.* master \([^ ]*\) .*/\1/p'; }
master_is() { [ "$(mst "$1" "$2")" = "$3" ]; }
no_link() { ! nip "$1" link show dev "$2" >/dev/null 2>&1; }
# Queued, then made by one `ip -b` in this namespace and one `ip -b` and
# `bridge -b` per test namespace: one process per command would cost
# minutes in user-mode Linux.
B=$TMPD/batch
mkdir "$B"
NSS=""
mk() { NSS="$NSS $1"; echo "netns add $(ns "$1")" >> "$B/root"
    echo "link set lo up" >> "$B/ip.$1"; }
q() { x=$1; shift; echo "$*" >> "$B/ip.$x"; }   # q NS IP-COMMAND
qb() { x=$1; shift; echo "$*" >> "$B/br.$x"; }  # qb NS BRIDGE-COMMAND
wire() { # wire NS1 IF1 NS2 IF2 [MAC1]: a veth pair, both ends up
    echo "link add $2 netns $(ns "$1") ${5:+address $5} type veth" \
        "peer name $4 netns $(ns "$3")" >> "$B/veth"
    q "$1" link set "$2" up
    q "$3" link set "$4" up
}
build() {
    cat "$B/veth" >> "$B/root"
    ip -b "$B/root" || return 1
    for x in $NSS; do
        [ ! -f "$B/ip.$x" ] || ip -n "$(ns "$x")" -b "$B/ip.$x" || return 1
        [ ! -f "$B/br.$x" ] || bridge -n "$(ns "$x")" -b "$B/br.$x" ||
            return 1
    done
}

mk mgmt
q mgmt link add mbr type bridge
q mgmt link set mbr up
q mgmt addr add 10.255.0.254/16 dev mbr
mgmt_link() { # mgmt_link NS ADDR
    wire "$1" mg0 mgmt "m-$1"
    q mgmt link set "m-$1" master mbr
    q "$1" addr add "$2/16" dev mg0
}

mk core
q core link add cbr type bridge vlan_filtering 1 vlan_default_pvid 0
q core link set cbr up
for i in $SITES; do
    mk sw$i
    q sw$i link add br0 type bridge
    q sw$i link set br0 up
    for j in 1 2; do
        mk h$i$j
        wire h$i$j eth1 sw$i p$j
        q sw$i link set p$j master br0
        mgmt_link h$i$j 10.255.$i.1$j
    done
    wire sw$i up0 core u$i
    q sw$i link set up0 master br0
    mgmt_link sw$i 10.255.$i.1
done
for p in u1 u2; do
    q core link set $p master cbr
    qb core vlan add dev $p vid 100-199
done
q core link add link u3 name u3.300 type vlan proto 802.1ad id 300
q core link set u3.300 up
q core link set u3.300 master cbr
qb core vlan add dev u3.300 vid 100-199

# vm NAME HOST MAC IP: a VM namespace with eth0, its tap tNAME on HOST.
vm() {
    mk "$1"
    wire "$1" eth0 "$2" "t$1" "$3"
    q "$1" addr add "$4/24" dev eth0
}
vm a1 h11 02:aa:00:00:00:01 10.99.0.1
vm a2 h21 02:aa:00:00:00:02 10.99.0.2
vm b1 h11 02:bb:00:00:00:01 10.99.0.1
vm b2 h31 02:bb:00:00:00:02 10.99.0.2
build || die "topology"
note "topology built"
for v in a1 a2 b1 b2; do
    case $v in a*) c=A ;; *) c=B ;; esac
    bg "echo_$v" $v python3 "$TOOL" echo "cluster$c-$v"
done

# --- agents -------------------------------------------------------------
BOOT=s1=10.255.1.1:7801,s2=10.255.2.1:7801,s3=10.255.3.1:7801
APIS=10.255.1.1:7800,10.255.2.1:7800,10.255.3.1:7800
site_start() { # site_start I
    case $1 in 1) up=xponder ;; 2) up=vpls ;; 3) up=qinq:300 ;; esac
    bg s$1 sw$1 "$AGENT" --site s$1 --data-dir "$DATA/s$1" \
        --peer 10.255.$1.1:7801 --api 10.255.$1.1:7800 --bootstrap $BOOT \
        --vlans 100-199 --uplink $up \
        --switch linuxbridge:br0:uplink=up0:h${1}1=p1:h${1}2=p2 \
        --host-agents yes --apply-deadline $DEADLINE \
        --reconcile-interval 1000 --election-timeout 1000 \
        --heartbeat-timeout 100 --metrics off
}
for i in $SITES; do site_start $i; done
note "site agents started"

# vc ARGS...: the CLI (JSON) from the management namespace, any agent.
vc() { inns mgmt "$CLI" --json --api $APIS --timeout 10s "$@"; }
# show NAME: cluster show's JSON ("" if it failed)
show() { vc cluster show "$1" 2>/dev/null; }
# site_field NAME SITE FIELD: a field of SITE's status in cluster NAME
site_field() {
    show "$1" | jq -r --arg s "$2" --arg f "$3" \
        '.status[] | select(.site == $s) | .[$f] // ""' 2>/dev/null
}
# ready NAME SECONDS: cluster wait (the agents say when it is ready)
ready() { inns mgmt "$CLI" --json --api $APIS --timeout "$2s" cluster wait "$1" \
    >/dev/null 2>&1; }
state_is() { [ "$(show "$1" | jq -r .state 2>/dev/null)" = "$2" ]; }
gone() { ! vc cluster show "$1" >/dev/null 2>&1; }
all_gone() { for c in "$@"; do gone "$c" || return 1; done; }
sites_in() { [ "$(vc site list 2>/dev/null | jq length)" = 3 ]; }

wait_for "3 site agents elected a leader and registered their sites" 60 \
    sites_in || finish
note "sites registered"
for i in $SITES; do
    for j in 1 2; do
        out=$(vc host add h$i$j --site s$i --trunk eth1 2>&1) ||
            bad "host add h$i$j: $out"
    done
done
for h in $HOSTS; do
    i=${h#h}; i=${i%?}
    bg $h $h "$AGENT" --role host --host $h --site-agent 10.255.$i.1:7800 \
        --reconcile-interval 1000 --metrics off
done
note "topology and agents up"

# inv: every link (name, flags, master, alias) and bridge VLAN of the
# switches, hosts and core, but not the VMs' taps (moved by the test).
inv() {
    for x in core sw1 sw2 sw3 $HOSTS; do
        echo "@link $x"; nip $x -o -d link show
        echo "@vlan $x"; nbr $x vlan show
    done | awk '
        $1 == "@link" || $1 == "@vlan" { kind = substr($1, 2); ns = $2
            head = 1; next }
        kind == "link" {
            n = $2; sub(/@.*/, "", n); sub(/:$/, "", n); m = ""; a = ""
            for (i = 3; i < NF; i++) {
                if ($i == "master") m = $(i + 1)
                # the ifindex in a mark changes when a link is re-created
                if ($i == "alias") { a = $(i + 1); sub(/:idx=[0-9]+/, "", a) }
            }
            print ns, "link", n, $3, "master=" m, "alias=" a }
        kind == "vlan" && head { head = 0; next }
        kind == "vlan" && NF {
            if ($0 !~ /^[ \t]/) { port = $1; $1 = "" }
            print ns, "vlan", port, $0 }' | grep -v ' t[ab][0-9] ' | sort
}
# vids NS PORT: the tagged VIDs a bridge port carries, sorted, one line
vids() {
    nbr "$1" -j vlan show dev "$2" | jq -r '[.[].vlans[] |
        select(((.flags // []) | index("PVID")) | not) | .vlan] |
        sort | map(tostring) | join(" ")'
}
carries() { vids "$1" "$2" | tr ' ' '\n' | grep -qx "$3"; }
# ask VM IP: who answers at IP:7007 from VM ("none" if nobody)
ask() { inns "$1" python3 "$TOOL" ask "$2" "who-is-$2-from-$1" 20; }

empty=$(inv) # (sw3's S-VLAN device vcq300 is there from the start)

# --- cluster B on sites 1, 3 (qinq) --------------------------------------
out=$(vc cluster create B --sites s1,s3 --wait 2>&1)
note "B ready $(echo "$out" | jq -r .waited_ms) ms after its creation"
check "cluster B created and ready on s1,s3" test "$(echo "$out" | jq -r .ok)" = true ||
    echo "$out" | sed 's/^/  /'
VB=$(show B | jq -r .vlan)
for x in "h11 tb1" "h31 tb2"; do
    set -- $x
    out=$(vc cluster attach B --host $1 --iface $2 2>&1) ||
        bad "attach B $1 $2: $out"
done
check "B ready with its VMs attached" ready B 30
wait_for "tb1 in vc$VB on h11 (host agent)" 15 \
    master_is h11 tb1 vc$VB
wait_for "tb2 in vc$VB on h31 (host agent)" 15 \
    master_is h31 tb2 vc$VB
expect_eq "sw3: the S-VLAN device vcq300 carries B's VLAN $VB" "$VB" \
    "$(vids sw3 vcq300)"
expect_eq "sw3: the raw uplink carries no cluster VLAN" "" "$(vids sw3 up0)"
before=$(inv)
note "B is VLAN $VB; inventory taken"

# --- cluster A on sites 1, 2 ---------------------------------------------
out=$(vc cluster create A --sites s1,s2 --wait 2>&1)
note "A ready $(echo "$out" | jq -r .waited_ms) ms after its creation"
check "cluster A created and ready on s1,s2" test "$(echo "$out" | jq -r .ok)" = true ||
    echo "$out" | sed 's/^/  /'
VA=$(show A | jq -r .vlan)
check "A and B have different VLANs at site 1 ($VA, $VB)" test "$VA" != "$VB"
for x in "h11 ta1" "h21 ta2"; do
    set -- $x
    out=$(vc cluster attach A --host $1 --iface $2 2>&1) ||
        bad "attach A $1 $2: $out"
done
check "A ready with its VMs attached" ready A 30
wait_for "ta1 in vc$VA on h11" 15 master_is h11 ta1 vc$VA
wait_for "ta2 in vc$VA on h21" 15 master_is h21 ta2 vc$VA
check "h11: eth1.$VA marked with A" has "$(alias_of h11 eth1.$VA)" \
    "^virtcloud:cluster=A:vlan=$VA\\b"
expect_eq "sw1: p1 (h11) carries A and B" \
    "$(printf '%s\n' $VA $VB | sort -n | tr '\n' ' ' | sed 's/ $//')" \
    "$(vids sw1 p1)"
check "sw2: uplink carries A's VLAN" carries sw2 up0 $VA
check_not "sw2: uplink does not carry B's VLAN" carries sw2 up0 $VB
check_not "sw3: no A VLAN on the S-VLAN device yet" carries sw3 vcq300 $VA
note "A is VLAN $VA"

# --- isolation: the right VM answers; no frame crosses ------------------
stop=$TMPD/sniff.stop
python3 "$TOOL" sniff "$stop" \
    "$(ns b1),02bb00,02aa00,clusterA" "$(ns b2),02bb00,02aa00,clusterA" \
    "$(ns a1),02aa00,02bb00,clusterB" > "$TMPD/sniff.out" \
    2> "$TMPD/sniff.frames" &
sniffer=$!
PIDS="$PIDS $sniffer"
wait_for "sniffer ready" 20 grep -q ready "$TMPD/sniff.out"
expect_eq "A: a1 asks 10.99.0.2 across sites, a2 answers" clusterA-a2 \
    "$(ask a1 10.99.0.2)"
expect_eq "A: a2 asks 10.99.0.1, a1 answers" clusterA-a1 "$(ask a2 10.99.0.1)"
expect_eq "B: b1 asks 10.99.0.2 across sites (qinq), b2 answers" \
    clusterB-b2 "$(ask b1 10.99.0.2)"
expect_eq "B: b2 asks 10.99.0.1, b1 answers" clusterB-b1 "$(ask b2 10.99.0.1)"

# --- a2 moves from site 2 (h21) to site 3 (h32) --------------------------
out=$(vc cluster extend A --site s3 2>&1) || bad "extend A to s3: $out"
nip h21 link del ta2 # the VM stops on h21...
ip link add eth0 netns "$(ns a2)" address 02:aa:00:00:00:02 type veth \
    peer name ta2 netns "$(ns h32)" # ...and runs on h32, same MAC and IP
nip a2 addr add 10.99.0.2/24 dev eth0
nip a2 link set eth0 up
nip h32 link set ta2 up
out=$(vc cluster attach A --host h32 --iface ta2 2>&1) ||
    bad "attach A h32 ta2: $out"
out=$(vc cluster detach A --host h21 --iface ta2 2>&1) ||
    bad "detach A h21 ta2: $out"
check "A ready again on s1,s2,s3" ready A 30
wait_for "ta2 in vc$VA on h32" 15 master_is h32 ta2 vc$VA
# The VM announces itself once it runs at its new place, as QEMU does
# after a migration, so the bridges on the way learn where it went.
inns a2 python3 "$TOOL" announce 10.99.0.2
check "sw3: vcq300 now carries A's VLAN too" carries sw3 vcq300 $VA
wait_for "h21 removed A's bridge (no VM of A left there)" 15 \
    no_link h21 vc$VA
expect_eq "A after the move: a1 asks 10.99.0.2, a2 answers from site 3" \
    clusterA-a2 "$(ask a1 10.99.0.2)"
expect_eq "B after the move: b1 asks 10.99.0.2, still b2" clusterB-b2 \
    "$(ask b1 10.99.0.2)"
expect_eq "A: a2 (site 3) asks 10.99.0.1, a1 answers" clusterA-a1 \
    "$(ask a2 10.99.0.1)"
expect_eq "B: b2 (site 3) asks 10.99.0.1, b1 answers" clusterB-b1 \
    "$(ask b2 10.99.0.1)"
touch "$stop"
wait $sniffer
for v in b1 b2 a1; do
    line=$(grep "^$(ns $v) " "$TMPD/sniff.out")
    mine=$(echo "$line" | sed -n 's/.* mine=\([0-9]*\).*/\1/p')
    other=$(echo "$line" | sed -n 's/.* other=\([0-9]*\).*/\1/p')
    check "capture on $v saw its own cluster's frames (${mine:-?})" \
        test "${mine:-0}" -gt 0
    expect_eq "capture on $v: no frame of the other cluster" 0 "${other:-?}"
done
[ -s "$TMPD/sniff.frames" ] && sed 's/^/  /' "$TMPD/sniff.frames"
note "isolation and move checked"

# --- drift repair ----------------------------------------------------------
nip h11 link del eth1.$VB
wait_for "h11: hand-deleted eth1.$VB restored by its host agent" 10 \
    master_is h11 eth1.$VB vc$VB
nip sw3 link del vcq300
wait_for "sw3: hand-deleted S-VLAN device vcq300 restored by s3's agent" 10 \
    carries sw3 vcq300 $VB
expect_eq "B after repairs: b1 asks 10.99.0.2, b2 answers" clusterB-b2 \
    "$(ask b1 10.99.0.2)"
note "drift repaired"

# --- release A; kill -9 site 2's agent while it applies ------------------
out=$(vc cluster release A 2>&1) || bad "release A: $out"
kill -KILL $PID_s2
wait $PID_s2 2>/dev/null
# Where the kill landed is up to the scheduler: before s2's switch pass
# (then A cannot be gone: s2 has not removed it, let alone reported), or
# after it (its report may or may not have committed).
if carries sw2 up0 $VA; then
    note "site 2's agent killed -9 before its switch dropped VLAN $VA"
    check "A still releasing while s2 is down" state_is A releasing
else
    note "site 2's agent killed -9 after its switch dropped VLAN $VA"
fi
site_start 2
wait_for "A released everywhere after s2's agent restarted" 40 gone A
wait_for "hosts took A's bridges down" 15 eval \
    "no_link h11 vc$VA && no_link h32 vc$VA"
after=$(inv)
check "release A: hosts, switches and core exactly as before A" \
    test "$before" = "$after"
[ "$before" = "$after" ] || { printf '%s\n' "$before" > "$TMPD/i1"
    printf '%s\n' "$after" > "$TMPD/i2"
    diff "$TMPD/i1" "$TMPD/i2" | sed 's/^/  /'; }
check_not "no link anywhere marked with cluster A" has "$after" 'cluster=A:'
expect_eq "taps of A left alone, out of any bridge" ":" \
    "$(mst h11 ta1):$(mst h32 ta2)"
check "B still works: b1 asks 10.99.0.2, b2 answers" test \
    "$(ask b1 10.99.0.2)" = clusterB-b2
note "A released"

# --- a switch that refuses ---------------------------------------------------
rename_sw2() { # rename_sw2 FROM TO: sw2's uplink port
    nip sw2 link set "$1" down
    nip sw2 link set "$1" name "$2"
    nip sw2 link set "$2" up
}
failed_on_up0() {
    [ "$(site_field "$1" s2 state)" = failed ] &&
        site_field "$1" s2 error | grep -q "up0"
}
rename_sw2 up0 up0off
out=$(vc cluster create F --sites s1,s2 2>&1) || bad "create F: $out"
wait_for "F: s2's status shows the switch error" 20 failed_on_up0 F
echo "  s2: $(site_field F s2 error)"
rename_sw2 up0off up0
check "F: s2 retried and applied once the switch works" ready F 30
check "sw2: uplink carries F's VLAN" carries sw2 up0 "$(show F | jq -r .vlan)"

rename_sw2 up0 up0off
out=$(vc cluster create G --sites s1,s2 2>&1) || bad "create G: $out"
wait_for "G: s2's status shows the switch error" 20 failed_on_up0 G
wait_for "G: rolled back after the $DEADLINE apply-deadline" 60 sh -c \
    "grep -q 'cluster G rolled back' $TMPD/s1.log $TMPD/s2.log $TMPD/s3.log"
check_not "G is not pending any more" state_is G pending
rename_sw2 up0off up0
wait_for "G gone once s2 applied the removal" 60 gone G
check "F unaffected" state_is F ready
note "switch failure checked"

# --- release everything: back to the empty inventory ---------------------
for c in B F; do
    out=$(vc cluster release $c 2>&1) || bad "release $c: $out"
done
wait_for "B and F released" 30 all_gone B F
after=$(inv)
check "all released: hosts, switches and core as before any cluster" \
    test "$empty" = "$after"
[ "$empty" = "$after" ] || { printf '%s\n' "$empty" > "$TMPD/i0"
    printf '%s\n' "$after" > "$TMPD/i3"
    diff "$TMPD/i0" "$TMPD/i3" | sed 's/^/  /'; }
note "all released"

finish
