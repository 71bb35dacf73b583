/* virtcloud-bench's secure local cluster and plain/secure comparison
 * (bench_secure.c). */
#ifndef VC_TOOLS_BENCH_SECURE_H
#define VC_TOOLS_BENCH_SECURE_H

#include <stddef.h>

#include "launch.h"

/* After launch_plan(): keys for every site of l (in l->dir/keys), the
 * agents' key, peer-keys, cluster-id and client-auth flags, and this
 * process's client key (the first site's). 0 or negative with err. */
int bench_secure_setup(struct launch *l, char *err, size_t errlen);

/* Runs this program (argv without --compare/--rounds) rounds times plain
 * and rounds times with --secure, alternating; prints medians and the
 * cost. Returns the exit status. */
int bench_compare(int argc, char **argv, unsigned rounds);

#endif
