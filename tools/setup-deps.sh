#!/bin/sh
# Install every build and test dependency VirtCloud needs on Debian 12.
#
# Idempotent: packages already present are skipped, so the README commands
# can call this on every run at the cost of a few dpkg queries.
# libraft-dev must come from bookworm-backports (0.22.1): Debian 12's own
# 0.15.0 can lose committed entries, so we refuse to build against it.
set -eu

RAFT_MIN=0.22.1
BASE_PKGS="build-essential meson ninja-build pkg-config libuv1-dev libsodium-dev \
libmsgpack-dev libcmocka-dev libmnl-dev libinih-dev iproute2 clang python3 \
libclang-rt-14-dev libssh-dev openssh-server libsystemd-dev libmicrohttpd-dev \
systemd scdoc bash-completion"
# scdoc: the man pages (docs/man); bash-completion: where the CLI's
# completion installs (its pkg-config file) and the completion test.
# libclang-rt-14-dev: clang's sanitizer and libFuzzer runtimes, which
# --no-install-recommends leaves out (CC=clang ... -Dfuzz=true builds).
# libssh-dev: the ssh switch driver (drivers/drv_ssh.c); openssh-server:
# its test runs a private sshd on loopback whose forced command is a fake
# switch (tests/integration/test_ssh_switch.py); the system sshd the
# package may enable is not used.
# libsystemd-dev: sd_notify (Type=notify, watchdog) and the journald
# priority prefixes; libmicrohttpd-dev: GET /metrics; systemd: the
# install test checks the unit with systemd-analyze.
# tests/netns boot user-mode Linux (with busybox for its init) where the
# running kernel lacks 802.1Q VLAN devices or bridge VLAN filtering; jq
# reads the CLI's JSON in the end-to-end script (tests/netns/e2e_test.sh).
NETNS_PKGS="user-mode-linux busybox-static jq"
BPO_LIST=/etc/apt/sources.list.d/bookworm-backports.sources

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "setup-deps: missing packages ($*); run as root or install them" >&2
        exit 1
    fi
}

missing() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
            printf '%s ' "$p"
    done
}

raft_ok() {
    v=$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge "$RAFT_MIN"
}

updated=0
apt_update() {
    [ "$updated" = 1 ] || { apt-get update -qq >&2; updated=1; }
}

miss=$(missing $BASE_PKGS $NETNS_PKGS)
if [ -n "$miss" ]; then
    need_root $miss
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $miss >&2
fi

if ! raft_ok; then
    need_root libraft-dev
    if [ ! -f "$BPO_LIST" ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat > "$BPO_LIST" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    updated=0
    apt_update
    # -t only on this line: it would otherwise upgrade meson and friends.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -t bookworm-backports libraft-dev >&2
    if ! raft_ok; then
        echo "setup-deps: libraft-dev >= $RAFT_MIN not available from bookworm-backports" >&2
        exit 1
    fi
fi
