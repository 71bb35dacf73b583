#!/bin/sh
# Runs one netns test script where the kernel can do what it needs:
#   run.sh SCRIPT DRVCTL DRVCTL_PLAIN [AGENT AGENT_PLAIN CLI CLI_PLAIN]
# 1. not root, or no network namespaces: skip (exit 77) and say why;
# 2. this kernel has veth, 802.1Q VLAN devices and bridge VLAN filtering:
#    run SCRIPT here with DRVCTL (the sanitized build, as AGENT and CLI);
# 3. otherwise, if user-mode Linux is installed (Debian: user-mode-linux,
#    busybox-static), run SCRIPT there through uml-run.sh with
#    DRVCTL_PLAIN, AGENT_PLAIN and CLI_PLAIN (ASan does not work in a UML
#    process);
# 4. otherwise skip, naming the missing kernel features.
# The scripts create their own namespaces (vc-test-*) and remove them on
# any exit; inside UML everything vanishes with the guest anyway.
set -u
script=$(realpath "$1") drvctl=$(realpath "$2") plain=$(realpath "$3")
# The agent and the CLI (the end-to-end test), exported as $AGENT, $CLI.
agent=${4:-} agent_plain=${5:-} cli=${6:-} cli_plain=${7:-}
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }

if [ -n "${VC_IN_UML:-}" ]; then
    AGENT=$agent_plain CLI=$cli_plain DRVCTL=$plain LIB=$here/lib.sh \
        exec sh "$script"
fi
[ "$(id -u)" = 0 ] || skip "netns tests need root (network namespaces)"
command -v ip >/dev/null || skip "iproute2's ip not found"

probe=vc-test-probe-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
ip netns add "$probe" 2>/dev/null || skip "no network namespace support"
missing=""
p() { ip netns exec "$probe" "$@" >/dev/null 2>&1; }
p ip link add pv0 type veth peer name pv1 || missing="$missing veth"
p ip link add pb0 type bridge vlan_filtering 1 || missing="$missing bridge-vlan-filtering"
p ip link add link pv0 name pv0.5 type vlan id 5 || missing="$missing 8021q"
p ip link add link pv0 name pv0.6 type vlan proto 802.1ad id 6 || missing="$missing 802.1ad"
ip netns del "$probe"

if [ -z "$missing" ]; then
    AGENT=$agent CLI=$cli DRVCTL=$drvctl LIB=$here/lib.sh exec sh "$script"
fi

if ! command -v linux.uml >/dev/null && ! command -v linux >/dev/null; then
    skip "this kernel lacks:$missing; install user-mode-linux and" \
         "busybox-static (tools/setup-deps.sh) to run these tests in UML"
fi
echo "this kernel lacks:$missing; running in user-mode Linux"
# The guest starts with a clean environment: pass what the scripts read.
exec "$here/uml-run.sh" env "VC_E2E_LOGS=${VC_E2E_LOGS:-}" \
    sh "$here/run.sh" "$script" "$drvctl" "$plain" \
    "$agent" "$agent_plain" "$cli" "$cli_plain"
