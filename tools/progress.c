#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

uint64_t progress_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void progress_init(struct progress *p, bool json)
{
    p->on = !json && isatty(STDERR_FILENO);
    p->drawn = false;
    p->start_ms = progress_now_ms();
}

/* Columns of the terminal, 80 when it does not say. */
static size_t width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 8)
        return ws.ws_col;
    return 80;
}

void progress_update(struct progress *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (!p->on)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    uint64_t s = (progress_now_ms() - p->start_ms) / 1000u;
    char tail[32];
    int tl = snprintf(tail, sizeof tail, " [%llus]", (unsigned long long)s);
    size_t max = width() - 1 - (size_t)tl;
    /* Control characters from the agent must not reach the terminal. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    fprintf(stderr, "\r\033[K%.*s%s", (int)(len < max ? len : max), line,
            tail);
    fflush(stderr);
    p->drawn = true;
}

void progress_done(struct progress *p)
{
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}
