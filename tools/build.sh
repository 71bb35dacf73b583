#!/bin/sh
# Installs missing dependencies and (re)builds VirtCloud into a build dir.
#   tools/build.sh [BUILDDIR] [meson setup options...]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
[ $# -gt 0 ] && shift
"$top/tools/setup-deps.sh"
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$top" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
