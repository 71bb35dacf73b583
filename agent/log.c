#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static char site_name[64] = "?";
static int min_level = LOG_INFO;
static int journal = -1;

static const char *names[] = {"debug", "info", "warn", "error"};
/* sd-daemon.h's syslog prefixes, which journald turns into PRIORITY=. */
static const char *prefixes[] = {SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR};

/* systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connected to
 * stderr. Comparing it with stderr itself (sd-daemon(3)) keeps prefixes out
 * of a file or terminal that stderr was redirected to by a child process
 * of the service or by hand. */
static bool stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;
    if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void log_init(const char *site, int level)
{
    snprintf(site_name, sizeof site_name, "%s", site ? site : "?");
    min_level = level;
    journal = stderr_is_journal();
}

void log_set_level(int level)
{
    if (level >= LOG_DEBUG && level <= LOG_ERROR)
        min_level = level;
}

int log_get_level(void)
{
    return min_level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    return level >= LOG_DEBUG && level <= LOG_ERROR ? names[level] : "?";
}

bool log_to_journal(void)
{
    return journal == 1;
}

void log_msg(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n = 0;
    if (level < min_level)
        return;
    if (level < LOG_DEBUG || level > LOG_ERROR)
        level = LOG_ERROR;
    if (journal == 1) {
        /* journald stamps the time itself. */
        n = snprintf(line, sizeof line, "%s%s %s: ", prefixes[level],
                     names[level], site_name);
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s: ",
                     tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), names[level], site_name);
    }
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent agents' output does not interleave. */
    size_t len = strnlen(line, sizeof line - 2);
    line[len] = '\n';
    fwrite(line, 1, len + 1, stderr);
}

bool log_limit_ok(struct log_limit *l, uint64_t now_ms, uint64_t every_ms,
                  unsigned *suppressed)
{
    if (l->used && now_ms - l->last_ms < every_ms) {
        l->suppressed++;
        return false;
    }
    *suppressed = l->suppressed;
    l->suppressed = 0;
    l->last_ms = now_ms;
    l->used = true;
    return true;
}
