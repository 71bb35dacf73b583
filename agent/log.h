/* One line per event on stderr: "<level> <site>: <message>".
 *
 * With JOURNAL_STREAM set (systemd), lines get "<N>" priority prefixes so
 * journald records the level. Not thread-safe: the agent logs from its loop.
 */
#ifndef VC_AGENT_LOG_H
#define VC_AGENT_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_init(const char *site, int level);
void log_set_level(int level);
int log_get_level(void);

/* Returns the level for "debug|info|warn|error", or -1. */
int log_level_parse(const char *s);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
