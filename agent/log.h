/* One line per event on stderr: "<time> <level> <site>: <message>".
 *
 * When stderr is the journal stream systemd connected (JOURNAL_STREAM names
 * stderr's device and inode), lines carry sd-daemon.h's "<N>" priority
 * prefixes instead of the time, so journald records the level. The level
 * changes at run time (SIGHUP reload, `virtcloud log-level`). Not
 * thread-safe: the agent logs from its loop only.
 */
#ifndef VC_AGENT_LOG_H
#define VC_AGENT_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_init(const char *site, int level);
/* Out-of-range levels are ignored. */
void log_set_level(int level);
int log_get_level(void);

/* Returns the level for "debug|info|warn|error", or -1. */
int log_level_parse(const char *s);
/* "debug".."error", "?" if out of range. Static storage. */
const char *log_level_name(int level);
/* True if lines go to journald with priority prefixes. */
bool log_to_journal(void);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A recurring event logged at most once per interval (a full disk
 * refuses every proposal): log_limit_ok() says whether to log now and
 * how many occurrences were left out since the last line. */
struct log_limit {
    uint64_t last_ms;
    unsigned suppressed;
    bool used;
};
bool log_limit_ok(struct log_limit *l, uint64_t now_ms, uint64_t every_ms,
                  unsigned *suppressed);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
