#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static char site_name[64] = "?";
static int min_level = LOG_INFO;
static int journal = -1;

static const char *names[] = {"debug", "info", "warn", "error"};
static const int priorities[] = {7, 6, 4, 3}; /* syslog levels */

void log_init(const char *site, int level)
{
    snprintf(site_name, sizeof site_name, "%s", site ? site : "?");
    min_level = level;
    journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(int level)
{
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
        n = snprintf(line, sizeof line, "<%d>%s %s: ", priorities[level],
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
