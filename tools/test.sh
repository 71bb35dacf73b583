#!/bin/sh
# Installs what is missing, builds with ASan+UBSan and runs every test suite
# (slow suites in their short form). Extra arguments go to `meson test`,
# e.g. tools/test.sh --suite unit.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/build-asan
"$top/tools/build.sh" "$dir" -Db_sanitize=address,undefined -Db_lundef=false
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
