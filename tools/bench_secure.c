/* virtcloud-bench --local --secure and --compare.
 *
 * --secure: the local cluster runs as a secure deployment would: every
 * site has a key (peer traffic authenticated and encrypted, forwarding
 * over the same channel) and requires authenticated client requests; the
 * benchmark authenticates with the first site's key, one signed session
 * per connection (--sign-each: every request signed).
 *
 * --compare: runs this program again without --compare, alternating a
 * plain and a --secure local cluster ROUNDS times (--rounds, default 3),
 * echoes their figures and prints the medians and the cost of security
 * in throughput and in the agents' CPU per create, and the median and
 * range of each round's own cost.
 */
#include "bench_secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/keys.h"
#include "client_session.h"

int bench_secure_setup(struct launch *l, char *err, size_t errlen)
{
    char dir[600], pins[1024] = "";
    size_t off = 0;
    snprintf(dir, sizeof dir, "%s/keys", l->dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    for (unsigned i = 0; i < l->n; i++) {
        struct launch_site *s = &l->sites[i];
        struct keys_pair kp;
        char pub[KEYS_PUBLIC_TEXT_MAX];
        int rv;
        char name[sizeof s->name];
        memcpy(name, s->name, sizeof name);
        if (snprintf(s->key, sizeof s->key, "%.520s/%.31s.key", dir, name) >=
            (int)sizeof s->key) {
            snprintf(err, errlen, "%s: path too long", dir);
            return -ENAMETOOLONG;
        }
        if ((rv = keys_generate(&kp)) != 0 ||
            (rv = keys_write(s->key, &kp, err, errlen)) != 0) {
            if (rv != 0 && !err[0])
                snprintf(err, errlen, "key generation failed");
            keys_wipe(&kp);
            return rv;
        }
        keys_format_public(kp.pk, pub, sizeof pub);
        keys_wipe(&kp);
        off += (size_t)snprintf(pins + off, sizeof pins - off, "%s%s=%s",
                                i ? "," : "", s->name, pub);
        if (off >= sizeof pins) {
            snprintf(err, errlen, "too many sites for --secure");
            return -E2BIG;
        }
    }
    size_t n = strlen(l->extra);
    snprintf(l->extra + n, sizeof l->extra - n,
             "%s--peer-keys %s --cluster-id virtcloud-bench "
             "--client-auth required",
             n ? " " : "", pins);
    /* A site's key is accepted like an admin's. */
    return client_key_setup(l->sites[0].key) == 0 ? 0 : -EINVAL;
}

/* --- --compare ----------------------------------------------------------- */

struct figures {
    double rate, p50, p99, cpu_us; /* cpu: agents' CPU per create */
    bool ok;
};

/* Runs argv, echoing its output with a prefix; fills f from the
 * "cpu_s:", "totals:" and "creates_per_s=" lines. */
static int run_child(char **argv, const char *tag, struct figures *f)
{
    int fds[2];
    char line[1024];
    double agents = 0, ok = 0;
    memset(f, 0, sizeof *f);
    if (pipe(fds) != 0)
        return -errno;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    while (in && fgets(line, sizeof line, in)) {
        printf("[%s] %s", tag, line);
        if (!strncmp(line, "cpu_s:", 6)) {
            /* "cpu_s: bench=X site=Y ... (leader S)" */
            for (char *p = strchr(line, ' '); p; p = strchr(p + 1, ' ')) {
                char name[64];
                double v;
                if (sscanf(p + 1, "%63[^=]=%lf", name, &v) == 2 &&
                    strcmp(name, "bench") != 0)
                    agents += v;
            }
        } else if (!strncmp(line, "totals:", 7)) {
            sscanf(line, "totals: ok=%lf", &ok);
        } else if (!strncmp(line, "creates_per_s=", 14)) {
            f->ok = sscanf(line, "creates_per_s=%lf p50_ms=%lf p99_ms=%lf",
                           &f->rate, &f->p50, &f->p99) == 3;
        }
    }
    if (in)
        fclose(in);
    int status;
    waitpid(pid, &status, 0);
    f->cpu_us = ok > 0 ? agents * 1e6 / ok : 0;
    f->ok = f->ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return f->ok ? 0 : -1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, by_value);
    return v[n / 2];
}

#define ROUNDS_MAX 20

int bench_compare(int argc, char **argv, unsigned rounds)
{
    char *args[128];
    double rate[2][ROUNDS_MAX], cpu[2][ROUNDS_MAX], p99[2][ROUNDS_MAX];
    int n = 0;
    if (rounds < 1 || rounds > ROUNDS_MAX || argc > 120)
        return 2;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--compare") || !strcmp(argv[i], "--secure"))
            continue;
        if (!strcmp(argv[i], "--rounds")) {
            i++;
            continue;
        }
        args[n++] = argv[i];
    }
    for (unsigned r = 0; r < rounds; r++) {
        for (int secure = 0; secure < 2; secure++) {
            struct figures f;
            char tag[32];
            args[n] = secure ? "--secure" : NULL;
            args[n + 1] = NULL;
            snprintf(tag, sizeof tag, "%s %u", secure ? "secure" : "plain",
                     r + 1);
            if (run_child(args, tag, &f) != 0) {
                fprintf(stderr, "virtcloud-bench: the %s run failed\n", tag);
                return 1;
            }
            rate[secure][r] = f.rate;
            cpu[secure][r] = f.cpu_us;
            p99[secure][r] = f.p99;
        }
    }
    /* Each round's plain and secure runs are neighbours in time: their
     * ratio is less exposed to the VM's drift than the medians'. */
    double pair[ROUNDS_MAX], lo = 1e9, hi = -1e9;
    for (unsigned r = 0; r < rounds; r++) {
        pair[r] = rate[0][r] > 0
                      ? 100 * (rate[0][r] - rate[1][r]) / rate[0][r]
                      : 0;
        lo = pair[r] < lo ? pair[r] : lo;
        hi = pair[r] > hi ? pair[r] : hi;
    }
    double pr = median(rate[0], rounds), sr = median(rate[1], rounds);
    double pc = median(cpu[0], rounds), sc = median(cpu[1], rounds);
    printf("plain:  creates_per_s=%.0f p99_ms=%.3f agents_cpu_us_per_create="
           "%.0f (medians of %u)\n",
           pr, median(p99[0], rounds), pc, rounds);
    printf("secure: creates_per_s=%.0f p99_ms=%.3f agents_cpu_us_per_create="
           "%.0f (encrypted peers, authenticated requests)\n",
           sr, median(p99[1], rounds), sc);
    printf("secure_cost_pct=%.1f cpu_cost_pct=%.1f\n",
           pr > 0 ? 100 * (pr - sr) / pr : 0, pc > 0 ? 100 * (sc - pc) / pc
                                                     : 0);
    printf("pair_cost_pct: median=%.1f min=%.1f max=%.1f (per round, "
           "plain and secure back to back)\n", median(pair, rounds), lo, hi);
    return 0;
}
