#include "drv_linkmon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

struct drv_linkmon {
    struct mnl_socket *sk;
    char buf[65536];
};

int drv_linkmon_open(struct drv_linkmon **out, char *errmsg, size_t errlen)
{
    struct drv_linkmon *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    m->sk = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!m->sk || mnl_socket_bind(m->sk, RTMGRP_LINK, MNL_SOCKET_AUTOPID)) {
        int e = errno;
        drv_linkmon_close(m);
        snprintf(errmsg, errlen, "link monitor: netlink socket: %s",
                 strerror(e));
        return -e;
    }
    *out = m;
    return 0;
}

void drv_linkmon_close(struct drv_linkmon *m)
{
    if (!m)
        return;
    if (m->sk)
        mnl_socket_close(m->sk);
    free(m);
}

int drv_linkmon_fd(const struct drv_linkmon *m)
{
    return mnl_socket_get_fd(m->sk);
}

static int count_cb(const struct nlmsghdr *nlh, void *data)
{
    if (nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK)
        (*(unsigned *)data)++;
    return MNL_CB_OK;
}

unsigned drv_linkmon_drain(struct drv_linkmon *m)
{
    unsigned n = 0;
    for (;;) {
        ssize_t len = mnl_socket_recvfrom(m->sk, m->buf, sizeof m->buf);
        if (len < 0)
            return errno == ENOBUFS && n == 0 ? 1 : n;
        if (len == 0)
            return n;
        mnl_cb_run(m->buf, (size_t)len, 0, 0, count_cb, &n);
    }
}
