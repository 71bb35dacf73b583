#!/bin/sh
# Installs missing dependencies and (re)builds VirtCloud into a build dir.
#   tools/build.sh [BUILDDIR] [meson setup options...]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
[ $# -gt 0 ] && shift
"$top/tools/setup-deps.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$dir/build.ninja" ]; then
    if ! meson setup "$dir" "$top" "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "build: meson setup failed" >&2
        exit 1
    fi
fi
if ! ninja -C "$dir" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build: compilation failed" >&2
    exit 1
fi
