#!/bin/sh
# Checks that the committed seed corpora are what fuzz-gen-corpus writes
# now (the 'fuzz' suite, test corpus-current):
#   check-corpus.sh FUZZ_GEN_CORPUS CORPUS_DIR
#
# A format change that is not followed by regenerating the corpus leaves
# seeds the decoders reject at once, and a generator that aborts leaves
# none. Only the files the generator writes are compared: libFuzzer's
# additions and crash-* regressions are not its.
set -eu
gen=$1 corpus=$2
out=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$gen" "$out"
bad=0 n=0
for f in "$out"/*/*; do
    rel=${f#"$out"/}
    n=$((n + 1))
    if ! cmp -s "$f" "$corpus/$rel"; then
        echo "$corpus/$rel: not what the generator writes"
        bad=1
    fi
done
if [ "$bad" -ne 0 ]; then
    echo "regenerate: $gen $corpus (then commit the changed seeds)"
    exit 1
fi
echo "$n seeds as generated"
