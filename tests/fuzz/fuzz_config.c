/* Fuzz target: the agent's configuration (agent/config.c).
 *
 * The input is an INI file, optionally followed by NUL-separated command
 * line arguments: FILE \0 ARG \0 ARG ... The file goes to an in-memory
 * file (memfd) that config_load() reads through --config /proc/self/fd/N,
 * the same path the daemon takes. A configuration that loads must print
 * (--check-config) and satisfy what check_required() promises.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/config.h"
#include "fuzz.h"
#include "proto/err.h"

#define MAX_ARGS 24

static int memfd = -1;
static FILE *devnull;
static char path[64];

static void setup(void)
{
    memfd = memfd_create("fuzz-config", 0);
    FUZZ_CHECK(memfd >= 0, "memfd_create");
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL, "/dev/null");
}

static bool skip_arg(const char *a)
{
    /* These print usage or version to stdout and stop: nothing to check. */
    return !strcmp(a, "--help") || !strcmp(a, "-h") ||
           !strcmp(a, "--version");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config c;
    char *copy, *argv[MAX_ARGS + 4], err[512];
    int argc = 0;
    if (memfd < 0)
        setup();
    /* The input as strings: copy it with a NUL after the last piece. */
    if (!(copy = malloc(size + 1)))
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t flen = strnlen(copy, size);
    FUZZ_CHECK(ftruncate(memfd, 0) == 0, "truncate");
    FUZZ_CHECK(pwrite(memfd, copy, flen, 0) == (ssize_t)flen, "write");
    argv[argc++] = "virtcloud-agent";
    argv[argc++] = "--config";
    argv[argc++] = path;
    for (size_t off = flen + 1; off < size && argc < MAX_ARGS + 3;) {
        char *a = copy + off;
        off += strlen(a) + 1;
        if (!skip_arg(a))
            argv[argc++] = a;
    }
    argv[argc] = NULL;
    err[0] = '\0';
    int rv = config_load(&c, argc, argv, err, sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(rv == VC_EINVAL && err[0], "rv %d, message \"%s\"", rv,
                   err);
    } else {
        FUZZ_CHECK(c.site[0] && c.data_dir[0] && c.peer[0] && c.have_vlans &&
                       c.advertise[0] && c.unix_path[0],
                   "loaded without a required key");
        FUZZ_CHECK(c.heartbeat_timeout_ms * 2 <= c.election_timeout_ms,
                   "heartbeat");
        FUZZ_CHECK(c.nbootstrap <= CONFIG_MEMBERS_MAX, "members");
        config_print(&c, devnull);
    }
    free(copy);
    return 0;
}
