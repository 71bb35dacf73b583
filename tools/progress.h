/* Progress of long CLI operations (wait, join, bulk release) on a
 * terminal.
 *
 * One status line on stderr, redrawn in place ("\r" + erase line), only
 * when stderr is a terminal and the command is not in --json mode: a
 * script reading stdout or a log capturing stderr sees nothing of it.
 * progress_done() erases the line so that the final answer (or error)
 * starts on a clean line.
 */
#ifndef VC_TOOLS_PROGRESS_H
#define VC_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
    bool on;          /* stderr is a terminal and not --json */
    bool drawn;       /* a line is on the screen */
    uint64_t start_ms; /* monotonic, for the elapsed time shown */
};

/* Switches progress on when stderr is a terminal and json is false. */
void progress_init(struct progress *p, bool json);

/* Replaces the line with the formatted text and the elapsed seconds. A
 * no-op when off. The text is cut to the terminal's width. */
void progress_update(struct progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Erases the line (if any). */
void progress_done(struct progress *p);

/* Milliseconds on the monotonic clock. */
uint64_t progress_now_ms(void);

#endif
