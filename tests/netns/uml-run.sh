#!/bin/sh
# Runs a command as root inside user-mode Linux (Debian: user-mode-linux,
# busybox-static), for kernels that lack what the netns tests need:
#   uml-run.sh CMD [ARG]...
# The guest's root is this machine's root filesystem (hostfs, so built
# binaries and scripts are there as they are here), with its own /proc,
# /sys, /run and /dev, its bridge, 8021q and veth modules loaded and one
# CPU. CMD runs in the current directory; its output and exit status are
# passed through. Exits 77 if user-mode Linux is not installed. ASan
# builds cannot run in a UML process (no room for the shadow memory).
set -u
uml=$(command -v linux.uml || command -v linux || true)
if [ -z "$uml" ] || ! command -v busybox >/dev/null; then
    echo "SKIP: user-mode Linux not installed (user-mode-linux, busybox-static)"
    exit 77
fi
tmp=$(mktemp -d /tmp/vc-uml.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for a in "$@"; do printf "'%s' " "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done \
    > "$tmp/cmd"
cat > "$tmp/init" <<EOF2
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs run /run
mount -t devtmpfs dev /dev 2>/dev/null
M=/usr/lib/uml/modules/\$(uname -r)
load() {
    line=\$(grep "^kernel/.*/\$1.ko:" \$M/modules.dep) || return 0
    for d in \$(echo "\${line#*:}" | tr ' ' '\n' | tac); do
        busybox insmod \$M/\$d 2>/dev/null
    done
    busybox insmod \$M/\${line%%:*} 2>/dev/null
}
for m in bridge 8021q veth; do load \$m; done
ip link set lo up
cd "$PWD"
export VC_IN_UML=1
eval "\$(cat "$tmp/cmd")" > "$tmp/out" 2>&1
echo \$? > "$tmp/rc"
busybox poweroff -f
EOF2
chmod +x "$tmp/init"
timeout "${VC_UML_TIMEOUT:-280}" "$uml" mem=${VC_UML_MEM:-1024M} \
    root=/dev/root rootfstype=hostfs rootflags=/ rw init="$tmp/init" \
    uml_dir="$tmp" con=null con0=null,fd:2 quiet \
    </dev/null >/dev/null 2>"$tmp/console" || true
cat "$tmp/out" 2>/dev/null
if [ ! -f "$tmp/rc" ]; then
    echo "user-mode Linux did not finish the command; console:"
    tail -40 "$tmp/console"
    exit 1
fi
exit "$(cat "$tmp/rc")"
