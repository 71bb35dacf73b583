/* rtnetlink through libmnl: one socket, link dumps into a drv_links table
 * and batched execution of planned operations.
 *
 * Requests are packed into batches (up to DRV_NL_BATCH messages or
 * DRV_NL_BATCH_BYTES), sent with one sendmsg(), and their acks read back
 * before the next batch. The kernel executes rtnetlink requests inside
 * sendmsg() and keeps going after a failed one, so each ack is matched to
 * its op by sequence number.
 */
#ifndef VC_DRIVERS_DRV_NL_H
#define VC_DRIVERS_DRV_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv_plan.h"

#define DRV_NL_BATCH 128
#define DRV_NL_BATCH_BYTES 32768
#define DRV_NL_RECV_BYTES 65536
#define DRV_NL_TIMEOUT_MS 10000 /* an ack the kernel owes us */

struct mnl_socket;

struct drv_nl {
    struct mnl_socket *sk;
    uint32_t portid;
    uint32_t seq;
    char *buf;  /* DRV_NL_BATCH_BYTES + one message */
    char *rbuf; /* DRV_NL_RECV_BYTES */
};

/* Opens a NETLINK_ROUTE socket. 0 or -errno with errmsg. */
int drv_nl_open(struct drv_nl *nl, char *errmsg, size_t errlen);
/* Closes; safe on a zeroed or closed struct. */
void drv_nl_close(struct drv_nl *nl);
/* The socket's fd, for a uv_poll watcher. */
int drv_nl_fd(const struct drv_nl *nl);

/* Dumps every link into out (reset first, then indexed); with brvlan also
 * the VLANs of bridge ports (AF_BRIDGE dump, RTEXT_FILTER_BRVLAN). */
int drv_nl_dump(struct drv_nl *nl, bool brvlan, struct drv_links *out,
                char *errmsg, size_t errlen);

/* See struct drv_io.exec. */
int drv_nl_exec(struct drv_nl *nl, const struct drv_op *ops, size_t n,
                uint8_t *ok, size_t *failed, char *errmsg, size_t errlen);

#endif
