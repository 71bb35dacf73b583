/* Shared pieces of the fuzz targets (tests/fuzz/fuzz_<target>.c).
 *
 * Each target defines LLVMFuzzerTestOneInput(). Built with clang and
 * -Dfuzz=true it links libFuzzer; otherwise replay.c supplies main() and
 * feeds it the seed corpus plus deterministic mutations of it (the 'fuzz'
 * test suite), so the same entry points run under gcc's ASan+UBSan too.
 *
 * Beyond "does not crash", targets check properties of the decoders: what
 * decodes re-encodes, and re-encoding is a fixed point; a restored snapshot
 * passes the state machine's invariants. A violated property aborts with
 * FUZZ_CHECK, which both drivers report as a crash.
 */
#ifndef VC_TESTS_FUZZ_FUZZ_H
#define VC_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                             \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__,   \
                    __LINE__, #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

#endif
