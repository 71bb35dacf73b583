/* Link event monitor: a NETLINK_ROUTE socket subscribed to link changes
 * (RTMGRP_LINK), so a host agent notices at once when someone deletes or
 * changes a link by hand, instead of at its next timed pass.
 *
 * The socket is non-blocking: watch drv_linkmon_fd() with uv_poll and
 * call drv_linkmon_drain() when it is readable.
 */
#ifndef VC_DRIVERS_DRV_LINKMON_H
#define VC_DRIVERS_DRV_LINKMON_H

#include <stddef.h>

struct drv_linkmon;

/* Opens the monitor in the current network namespace. 0 with *out owned
 * by the caller (drv_linkmon_close), or -errno with errmsg. */
int drv_linkmon_open(struct drv_linkmon **out, char *errmsg, size_t errlen);
/* NULL is a no-op. */
void drv_linkmon_close(struct drv_linkmon *m);
int drv_linkmon_fd(const struct drv_linkmon *m);

/* Reads every pending message. Returns how many link events (new, changed
 * or deleted links) were read, or 1 if the receive buffer overflowed
 * (events were lost: the caller must re-read the state anyway). */
unsigned drv_linkmon_drain(struct drv_linkmon *m);

#endif
