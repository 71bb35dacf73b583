#!/bin/sh
# Runs one libFuzzer target for a bounded time (the 'fuzz' test suite of a
# -Dfuzz=true build):  run-fuzz.sh FUZZ_BINARY CORPUS_DIR SECONDS
#
# New inputs go to a scratch directory, not into the committed corpus. A
# crash leaves its input in fuzz-artifacts/<target>/ under the build
# directory; copy it into the corpus as crash-<what> once fixed
# (docs/testing.md).
set -eu
bin=$1 corpus=$2 secs=$3
name=$(basename "$bin")
art="$PWD/fuzz-artifacts/${name#fuzz_}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$art"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" \
    "$scratch" "$corpus"
