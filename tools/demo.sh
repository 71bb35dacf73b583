#!/bin/sh
# The main job: installs what is missing, builds, and runs the demo.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/build.sh" "$top/build"
exec "$top/build/tools/virtcloud-demo" "$@"
