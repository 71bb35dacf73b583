# Shared helpers of the netns test scripts (sourced; POSIX sh).
#
# Every namespace a test makes is named vc-test-<id>-<name> and removed by
# the EXIT trap, whatever way the script ends. No traffic leaves them: the
# only links are veths between namespaces of the same test.
set -u

ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
PREFIX=vc-test-$ID
FAILS=0
CHECKS=0
TMPD=$(mktemp -d /tmp/vc-netns.XXXXXX)

cleanup() {
    rm -rf "$TMPD"
    for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $n in "$PREFIX"-*) ip netns del "$n" 2>/dev/null ;; esac
    done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ns() { echo "$PREFIX-$1"; }
mkns() { ip netns add "$(ns "$1")" && at "$1" ip link set lo up; }
# at NAME CMD...: runs CMD inside the test namespace NAME.
at() { n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
drv() { n=$1; shift; ip netns exec "$(ns "$n")" "$DRVCTL" "$@"; }

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION CMD...: passes if CMD succeeds
    d=$1; shift
    if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
check_not() {
    d=$1; shift
    if "$@" >/dev/null 2>&1; then bad "$d"; else ok "$d"; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else
        bad "$1"; printf '  expected: %s\n  actual:   %s\n' "$2" "$3"
    fi
}
# changes OUTPUT: the N of "changes=N" (or "error")
changes() { echo "$1" | sed -n 's/^changes=\([0-9]*\).*/\1/p' | tail -1; }
# expect_changes DESCRIPTION WANT(0|+) CMD...: runs a drvctl apply
expect_changes() {
    d=$1 want=$2; shift 2
    out=$("$@" 2>&1); c=$(changes "$out")
    if [ -z "$c" ]; then bad "$d: apply failed"; echo "$out" | sed 's/^/  /'
    elif [ "$want" = + ] && [ "$c" -gt 0 ]; then ok "$d ($c changes)"
    elif [ "$want" = "$c" ]; then ok "$d ($c changes)"
    else bad "$d: $c changes, wanted $want"; echo "$out" | sed 's/^/  /'; fi
}
# inventory NS: sorted "name alias" of every link, the namespace's inventory
inventory() {
    at "$1" ip -o -d link show | awk '{n=$2; sub(/@.*/, "", n); sub(/:$/, "", n);
        a=""; for (i = 1; i <= NF; i++) if ($i == "alias") a=$(i+1);
        print n, a}' | sort
}
# The alias of a link ("" if none).
alias_of() { at "$1" cat "/sys/class/net/$2/ifalias" 2>/dev/null; }
master_of() {
    m=$(at "$1" readlink "/sys/class/net/$2/master" 2>/dev/null) &&
        basename "$m"
}
is_up() { at "$1" ip -o link show "$2" | grep -q "[<,]UP[,>]"; }

finish() {
    echo "# $CHECKS checks, $FAILS failed"
    [ "$FAILS" = 0 ]
    exit $?
}
# has TEXT REGEX: TEXT has a line matching REGEX
has() { printf '%s\n' "$1" | grep -q -- "$2"; }
