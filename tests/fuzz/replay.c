/* Fuzz driver without libFuzzer: replays the seed corpus, then a number of
 * deterministic random mutations of it, through LLVMFuzzerTestOneInput().
 *
 *   replay_<target> [--runs N] [--seed S] [--max-len L] PATH...
 *
 * PATH is a corpus directory or a single input file. Every input is copied
 * into a buffer of exactly its size, so ASan catches a read one byte past
 * the end. If an input crashes, it is written to crash-<target>-<hash> in
 * the current directory (ASan death callback or SIGABRT/SIGSEGV) and the
 * command that replays it alone is printed. The same seed replays the same
 * mutations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "tests/sim/gen.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct input {
    uint8_t *data;
    size_t len;
    char *name;
};

static struct input *inputs;
static size_t ninputs, cap_inputs;
static const char *target = "fuzz";

/* The input running now, for the crash handlers. */
static const uint8_t *cur_data;
static size_t cur_len;
static char cur_desc[512];

static void add_input(uint8_t *data, size_t len, const char *name)
{
    if (ninputs == cap_inputs) {
        cap_inputs = cap_inputs ? 2 * cap_inputs : 64;
        inputs = realloc(inputs, cap_inputs * sizeof *inputs);
        if (!inputs)
            abort();
    }
    inputs[ninputs].data = data;
    inputs[ninputs].len = len;
    inputs[ninputs].name = strdup(name);
    ninputs++;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    *data = malloc((size_t)n + 1);
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds PATH (a file, or every regular file in a directory, sorted). */
static int load(const char *path)
{
    struct stat st;
    uint8_t *data;
    size_t len;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (read_file(path, &data, &len) != 0)
            return -1;
        add_input(data, len, path);
        return 0;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names || asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
            abort();
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) &&
            read_file(names[i], &data, &len) == 0)
            add_input(data, len, names[i]);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* --- crash reporting --------------------------------------------------- */

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void save_crash(void)
{
    static bool saved;
    char path[128], msg[900];
    int fd, n;
    if (saved || !cur_data)
        return;
    saved = true;
    snprintf(path, sizeof path, "crash-%s-%016llx", target,
             (unsigned long long)fnv(cur_data, cur_len));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, cur_data, cur_len) != (ssize_t)cur_len)
            path[0] = '\0';
        close(fd);
    }
    n = snprintf(msg, sizeof msg,
                 "\nreplay: %s crashed on %s (%zu bytes)\n"
                 "replay: input saved as %s; run it alone with:\n"
                 "  replay_%s %s\n",
                 target, cur_desc, cur_len, path, target, path);
    if (n > 0 && write(2, msg, (size_t)n) < 0)
        return;
}

static void on_signal(int sig)
{
    save_crash();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_one(const uint8_t *data, size_t len)
{
    /* An exact-size copy: a read past len is a heap overflow. */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    cur_data = NULL;
    free(copy);
}

/* --- mutations --------------------------------------------------------- */

static const uint8_t interesting[] = {
    0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xc3, 0xcc, 0xcd, 0xce, 0xcf,
    0xd0, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x9f, 0xa0,
    0xbf, 0xc4, 0xc7, 0xd4, 0xe0, '\n', '=', '[', ']', ',', '-', ':'};

/* Grows *buf (capacity *cap) to hold n bytes. */
static uint8_t *reserve(uint8_t *buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return buf;
    while (*cap < n)
        *cap = *cap ? 2 * *cap : 64;
    buf = realloc(buf, *cap);
    if (!buf)
        abort();
    return buf;
}

static size_t mutate(struct rng *r, uint8_t **bufp, size_t *cap, size_t len,
                     size_t max_len)
{
    uint8_t *b = *bufp;
    unsigned kinds = 9;
    size_t pos = len ? rng_below(r, (uint32_t)len) : 0;
    switch (rng_below(r, kinds)) {
    case 0: /* flip a bit */
        if (len)
            b[pos] ^= (uint8_t)(1u << rng_below(r, 8));
        break;
    case 1: /* an interesting byte */
        if (len)
            b[pos] = interesting[rng_below(r, sizeof interesting)];
        break;
    case 2: /* a random byte */
        if (len)
            b[pos] = (uint8_t)rng_next(r);
        break;
    case 3: { /* insert 1-8 random or interesting bytes */
        size_t n = 1 + rng_below(r, 8);
        if (len + n > max_len)
            break;
        b = reserve(b, cap, len + n);
        memmove(b + pos + n, b + pos, len - pos);
        for (size_t i = 0; i < n; i++)
            b[pos + i] = rng_pct(r, 50)
                             ? interesting[rng_below(r, sizeof interesting)]
                             : (uint8_t)rng_next(r);
        len += n;
        break;
    }
    case 4: { /* delete a range */
        size_t n = len - pos ? 1 + rng_below(r, (uint32_t)(len - pos)) : 0;
        if (n > 16 && rng_pct(r, 70))
            n = 1 + rng_below(r, 16);
        memmove(b + pos, b + pos + n, len - pos - n);
        len -= n;
        break;
    }
    case 5: { /* duplicate a range */
        size_t n = len - pos ? 1 + rng_below(r, (uint32_t)(len - pos)) : 0;
        if (len + n > max_len)
            break;
        b = reserve(b, cap, len + n);
        memmove(b + pos + n, b + pos, len - pos);
        len += n;
        break;
    }
    case 6: /* truncate */
        len = pos;
        break;
    case 7: { /* splice in a piece of another input */
        const struct input *o = &inputs[rng_below(r, (uint32_t)ninputs)];
        size_t from = o->len ? rng_below(r, (uint32_t)o->len) : 0;
        size_t n = o->len - from;
        if (n > 64)
            n = 1 + rng_below(r, 64);
        if (len + n > max_len || !n)
            break;
        b = reserve(b, cap, len + n);
        memmove(b + pos + n, b + pos, len - pos);
        memcpy(b + pos, o->data + from, n);
        len += n;
        break;
    }
    case 8: /* a big-endian length field: 0, small, huge */
        if (len >= 5 && pos <= len - 5) {
            static const uint32_t v[] = {0, 1, 0x7f, 0xffff, 0xff000000u,
                                         0xffffffffu};
            uint32_t x = v[rng_below(r, 6)];
            b[pos + 1] = (uint8_t)(x >> 24);
            b[pos + 2] = (uint8_t)(x >> 16);
            b[pos + 3] = (uint8_t)(x >> 8);
            b[pos + 4] = (uint8_t)x;
        }
        break;
    }
    *bufp = b;
    return len;
}

static void usage(void)
{
    fprintf(stderr, "usage: replay_%s [--runs N] [--seed S] [--max-len L] "
                    "CORPUS_DIR|FILE...\n",
            target);
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long runs = 0, seed = 1, max_len = 4096;
    const char *slash = strrchr(argv[0], '/');
    const char *base = slash ? slash + 1 : argv[0];
    target = strncmp(base, "replay_", 7) == 0 ? base + 7 : base;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    signal(SIGABRT, on_signal);
#ifdef HAVE_ASAN
    /* ASan reports SIGSEGV itself, then calls this. */
    __sanitizer_set_death_callback(save_crash);
#else
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
#endif
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--max-len") && i + 1 < argc)
            max_len = strtoul(argv[++i], NULL, 0);
        else if (argv[i][0] == '-')
            usage();
        else if (load(argv[i]) != 0)
            return 2;
    }
    clock_t t0 = clock();
    for (size_t k = 0; k < ninputs; k++) {
        snprintf(cur_desc, sizeof cur_desc, "corpus file %s", inputs[k].name);
        run_one(inputs[k].data, inputs[k].len);
    }
    struct rng r = {seed};
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (unsigned long k = 0; k < runs; k++) {
        size_t len = 0;
        if (ninputs && !rng_pct(&r, 5)) {
            const struct input *in = &inputs[rng_below(&r, (uint32_t)ninputs)];
            buf = reserve(buf, &cap, in->len + 1);
            memcpy(buf, in->data, in->len);
            len = in->len;
        } else { /* fully random bytes */
            len = rng_below(&r, 64);
            buf = reserve(buf, &cap, len + 1);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)rng_next(&r);
        }
        unsigned n = 1 + rng_below(&r, 6);
        for (unsigned j = 0; j < n; j++)
            len = mutate(&r, &buf, &cap, len, max_len);
        snprintf(cur_desc, sizeof cur_desc,
                 "mutated input %lu of --seed %lu", k, seed);
        run_one(buf, len);
    }
    free(buf);
    printf("replay_%s: %zu corpus inputs and %lu mutations (seed %lu) in "
           "%.2f s: no crash\n",
           target, ninputs, runs, seed,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    for (size_t k = 0; k < ninputs; k++) {
        free(inputs[k].data);
        free(inputs[k].name);
    }
    free(inputs);
    return 0;
}
