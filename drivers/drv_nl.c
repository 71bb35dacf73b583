/* rtnetlink through libmnl (see drv_nl.h).
 *
 * Happy path of an exec: pack up to DRV_NL_BATCH requests, each with
 * NLM_F_ACK and its own sequence number, send them in one sendmsg(), read
 * one ack per request, repeat. Failure modes: a request fails (its ack
 * carries -errno and, with NETLINK_EXT_ACK, the kernel's text): the rest
 * of its batch still ran, later batches are not sent; the socket's receive
 * buffer overflows (-ENOBUFS: acks lost, the outcome of the batch is
 * unknown, the next apply re-reads the state); no ack within
 * DRV_NL_TIMEOUT_MS (-ETIMEDOUT, should not happen with the kernel).
 */
#include "drv_nl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/ipv6.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define ERR(code, ...)                                                         \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

#define MSG_MAX 1024 /* the largest request we build */

int drv_nl_open(struct drv_nl *nl, char *errmsg, size_t errlen)
{
    int one = 1, rcvbuf = 4 << 20;
    memset(nl, 0, sizeof *nl);
    nl->buf = malloc(DRV_NL_BATCH_BYTES + MSG_MAX);
    nl->rbuf = malloc(DRV_NL_RECV_BYTES);
    if (!nl->buf || !nl->rbuf) {
        drv_nl_close(nl);
        ERR(-ENOMEM, "out of memory");
    }
    nl->sk = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl->sk || mnl_socket_bind(nl->sk, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        drv_nl_close(nl);
        ERR(-e, "netlink socket: %s", strerror(e));
    }
    nl->portid = mnl_socket_get_portid(nl->sk);
    nl->seq = 1;
    /* Small acks (no copy of the request) with the kernel's error text. */
    mnl_socket_setsockopt(nl->sk, NETLINK_CAP_ACK, &one, sizeof one);
    mnl_socket_setsockopt(nl->sk, NETLINK_EXT_ACK, &one, sizeof one);
    /* Room for a whole batch of acks and big dumps; FORCE needs
     * CAP_NET_ADMIN, which a driver needs anyway, the plain one is the
     * fallback. */
    int fd = mnl_socket_get_fd(nl->sk);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    return 0;
}

void drv_nl_close(struct drv_nl *nl)
{
    if (nl->sk)
        mnl_socket_close(nl->sk);
    free(nl->buf);
    free(nl->rbuf);
    memset(nl, 0, sizeof *nl);
}

int drv_nl_fd(const struct drv_nl *nl)
{
    return nl->sk ? mnl_socket_get_fd(nl->sk) : -1;
}

/* Waits for data, then receives into rbuf. Returns bytes or -errno. */
static ssize_t recv_some(struct drv_nl *nl)
{
    struct pollfd p = {.fd = mnl_socket_get_fd(nl->sk), .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, DRV_NL_TIMEOUT_MS);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return -ETIMEDOUT;
    if (r < 0)
        return -errno;
    ssize_t n = mnl_socket_recvfrom(nl->sk, nl->rbuf, DRV_NL_RECV_BYTES);
    return n < 0 ? -errno : n;
}

/* --- parsing ------------------------------------------------------------- */

struct attrs {
    const struct nlattr **tb;
    int max;
};

static int collect_cb(const struct nlattr *a, void *data)
{
    struct attrs *t = data;
    int type = mnl_attr_get_type(a);
    if (type <= t->max)
        t->tb[type] = a;
    return MNL_CB_OK;
}

static void copy_str(const struct nlattr *a, char *out, size_t len)
{
    size_t n =
        a ? strnlen(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a)) : 0;
    if (n >= len)
        n = len - 1;
    if (n)
        memcpy(out, mnl_attr_get_payload(a), n);
    out[n] = '\0';
}

static uint32_t get_u32(const struct nlattr *a)
{
    return a && mnl_attr_validate(a, MNL_TYPE_U32) == 0 ? mnl_attr_get_u32(a)
                                                        : 0;
}

static void parse_vlan(const struct nlattr *data, struct drv_link *k)
{
    const struct nlattr *tb[IFLA_VLAN_MAX + 1] = {0};
    struct attrs t = {tb, IFLA_VLAN_MAX};
    k->kind = DRV_KIND_VLAN;
    k->vproto = DRV_ETH_P_8021Q;
    if (!data || mnl_attr_parse_nested(data, collect_cb, &t) < 0)
        return;
    if (tb[IFLA_VLAN_ID] &&
        mnl_attr_validate(tb[IFLA_VLAN_ID], MNL_TYPE_U16) == 0)
        k->vid = mnl_attr_get_u16(tb[IFLA_VLAN_ID]);
    if (tb[IFLA_VLAN_PROTOCOL] &&
        mnl_attr_validate(tb[IFLA_VLAN_PROTOCOL], MNL_TYPE_U16) == 0)
        k->vproto = ntohs(mnl_attr_get_u16(tb[IFLA_VLAN_PROTOCOL]));
}

static void parse_bridge(const struct nlattr *data, struct drv_link *k)
{
    const struct nlattr *tb[IFLA_BR_MAX + 1] = {0};
    struct attrs t = {tb, IFLA_BR_MAX};
    k->kind = DRV_KIND_BRIDGE;
    if (!data || mnl_attr_parse_nested(data, collect_cb, &t) < 0)
        return;
    const struct nlattr *f = tb[IFLA_BR_VLAN_FILTERING];
    if (f && mnl_attr_validate(f, MNL_TYPE_U8) == 0)
        k->vlan_filtering = mnl_attr_get_u8(f) != 0;
}

static void parse_linkinfo(const struct nlattr *info, struct drv_link *k)
{
    const struct nlattr *tb[IFLA_INFO_MAX + 1] = {0};
    struct attrs t = {tb, IFLA_INFO_MAX};
    char kind[32];
    if (!info || mnl_attr_parse_nested(info, collect_cb, &t) < 0)
        return;
    copy_str(tb[IFLA_INFO_KIND], kind, sizeof kind);
    if (strcmp(kind, "vlan") == 0)
        parse_vlan(tb[IFLA_INFO_DATA], k);
    else if (strcmp(kind, "bridge") == 0)
        parse_bridge(tb[IFLA_INFO_DATA], k);
}

/* IPv6 is on unless IFLA_AF_SPEC/AF_INET6/IFLA_INET6_CONF says
 * disable_ipv6 (no AF_INET6 at all: the kernel has no IPv6, so off). */
static void parse_af_spec(const struct nlattr *af, struct drv_link *k)
{
    const struct nlattr *a, *b;
    if (!af)
        return;
    mnl_attr_for_each_nested(a, af)
    {
        if (mnl_attr_get_type(a) != AF_INET6)
            continue;
        mnl_attr_for_each_nested(b, a)
        {
            if (mnl_attr_get_type(b) != IFLA_INET6_CONF ||
                mnl_attr_get_payload_len(b) <
                    (DEVCONF_DISABLE_IPV6 + 1) * sizeof(int32_t))
                continue;
            const int32_t *conf = mnl_attr_get_payload(b);
            k->ipv6_on = conf[DEVCONF_DISABLE_IPV6] == 0;
        }
    }
}

struct dump_ctx {
    struct drv_links *out;
    bool intr; /* NLM_F_DUMP_INTR seen: the dump is torn */
    int err;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
    struct dump_ctx *c = data;
    const struct nlattr *tb[IFLA_MAX + 1] = {0};
    struct attrs t = {tb, IFLA_MAX};
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
        c->intr = true;
    if (nlh->nlmsg_type != RTM_NEWLINK ||
        mnl_attr_parse(nlh, sizeof(struct ifinfomsg), collect_cb, &t) < 0)
        return MNL_CB_OK;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    struct drv_link *k = drv_links_add(c->out);
    if (!k) {
        c->err = -ENOMEM;
        return MNL_CB_ERROR;
    }
    k->ifindex = ifi->ifi_index;
    k->flags = ifi->ifi_flags;
    k->master = (int)get_u32(tb[IFLA_MASTER]);
    k->link = (int)get_u32(tb[IFLA_LINK]);
    k->group = get_u32(tb[IFLA_GROUP]);
    copy_str(tb[IFLA_IFNAME], k->name, sizeof k->name);
    copy_str(tb[IFLA_IFALIAS], k->alias, sizeof k->alias);
    parse_linkinfo(tb[IFLA_LINKINFO], k);
    parse_af_spec(tb[IFLA_AF_SPEC], k);
    return MNL_CB_OK;
}

/* Adds one bridge_vlan_info entry; *range is where an open range began. */
static void add_vinfo(struct drv_portvlans *pv,
                      const struct bridge_vlan_info *vi, unsigned *range)
{
    unsigned lo = vi->vid, hi = vi->vid;
    if (vi->flags & BRIDGE_VLAN_INFO_RANGE_BEGIN) {
        *range = vi->vid;
        return;
    }
    if ((vi->flags & BRIDGE_VLAN_INFO_RANGE_END) && *range)
        lo = *range;
    *range = 0;
    for (unsigned v = lo; v <= hi; v++) {
        vlanset_add(&pv->vids, v);
        if (vi->flags & BRIDGE_VLAN_INFO_UNTAGGED)
            vlanset_add(&pv->untagged, v);
    }
    if (vi->flags & BRIDGE_VLAN_INFO_PVID)
        pv->pvid = vi->vid;
}

static int brvlan_cb(const struct nlmsghdr *nlh, void *data)
{
    struct dump_ctx *c = data;
    const struct nlattr *tb[IFLA_MAX + 1] = {0}, *a;
    struct attrs t = {tb, IFLA_MAX};
    unsigned range = 0;
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
        c->intr = true;
    if (nlh->nlmsg_type != RTM_NEWLINK ||
        mnl_attr_parse(nlh, sizeof(struct ifinfomsg), collect_cb, &t) < 0 ||
        !tb[IFLA_AF_SPEC])
        return MNL_CB_OK;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    struct drv_link *k =
        (struct drv_link *)drv_links_get(c->out, ifi->ifi_index);
    if (!k || k->pv)
        return MNL_CB_OK; /* appeared since the first dump, or self entry */
    if (!(k->pv = calloc(1, sizeof *k->pv))) {
        c->err = -ENOMEM;
        return MNL_CB_ERROR;
    }
    mnl_attr_for_each_nested(a, tb[IFLA_AF_SPEC])
    {
        if (mnl_attr_get_type(a) == IFLA_BRIDGE_VLAN_INFO &&
            mnl_attr_get_payload_len(a) >= sizeof(struct bridge_vlan_info))
            add_vinfo(k->pv, mnl_attr_get_payload(a), &range);
    }
    return MNL_CB_OK;
}

/* --- dumps --------------------------------------------------------------- */

static int dump_once(struct drv_nl *nl, uint8_t family, uint32_t mask,
                     mnl_cb_t cb, struct dump_ctx *c)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = ++nl->seq;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = family;
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, mask);
    if (mnl_socket_sendto(nl->sk, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        ssize_t n = recv_some(nl);
        if (n < 0)
            return (int)n;
        int r = mnl_cb_run(nl->rbuf, (size_t)n, nl->seq, nl->portid, cb, c);
        if (c->err)
            return c->err;
        if (r < 0)
            return -errno;
        if (r == MNL_CB_STOP)
            return 0;
    }
}

static int dump_links(struct drv_nl *nl, bool brvlan, struct drv_links *out,
                      struct dump_ctx *c)
{
    drv_links_reset(out);
    int rc = dump_once(nl, AF_UNSPEC, RTEXT_FILTER_SKIP_STATS, link_cb, c);
    if (rc == 0)
        rc = drv_links_index(out);
    if (rc == 0 && brvlan)
        rc = dump_once(nl, AF_BRIDGE, RTEXT_FILTER_BRVLAN_COMPRESSED, brvlan_cb,
                       c);
    return rc;
}

int drv_nl_dump(struct drv_nl *nl, bool brvlan, struct drv_links *out,
                char *errmsg, size_t errlen)
{
    /* A dump torn by concurrent changes is retried; a few times is
     * plenty, links do not change that fast. */
    for (int attempt = 0; attempt < 5; attempt++) {
        struct dump_ctx c = {.out = out};
        int rc = dump_links(nl, brvlan, out, &c);
        if (rc == -ENOBUFS || (rc == 0 && c.intr))
            continue;
        if (rc)
            ERR(rc, "link dump: %s", strerror(-rc));
        return 0;
    }
    ERR(-EAGAIN, "link dump: interrupted by concurrent changes 5 times");
}

/* --- requests ------------------------------------------------------------ */

static struct nlmsghdr *put_req(char *at, uint16_t type, uint16_t flags,
                                uint8_t family, int ifindex)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(at);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = family;
    ifi->ifi_index = ifindex;
    return nlh;
}

static void put_kind(struct nlmsghdr *nlh, const char *kind,
                     const struct drv_op *op)
{
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
    if (op->type == DRV_OP_ADD_VLAN || op->type == DRV_OP_BR_FILTER) {
        struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
        if (op->type == DRV_OP_ADD_VLAN) {
            mnl_attr_put_u16(nlh, IFLA_VLAN_ID, op->vid);
            mnl_attr_put_u16(nlh, IFLA_VLAN_PROTOCOL, htons(op->vproto));
        } else {
            mnl_attr_put_u8(nlh, IFLA_BR_VLAN_FILTERING, 1);
        }
        mnl_attr_nest_end(nlh, data);
    }
    mnl_attr_nest_end(nlh, info);
}

static struct nlmsghdr *build_set(char *at, const struct drv_op *op)
{
    struct nlmsghdr *nlh = put_req(at, RTM_SETLINK, 0, AF_UNSPEC, op->ifindex);
    struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    if (!op->ifindex)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, op->name);
    if (op->alias[0])
        mnl_attr_put_strz(nlh, IFLA_IFALIAS, op->alias);
    if (op->master >= 0)
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)op->master);
    if (op->group >= 0)
        mnl_attr_put_u32(nlh, IFLA_GROUP, (uint32_t)op->group);
    if (op->up) {
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
    }
    return nlh;
}

static struct nlmsghdr *build_port_vlan(char *at, const struct drv_op *op)
{
    uint16_t type =
        op->type == DRV_OP_PORT_VLAN_ADD ? RTM_SETLINK : RTM_DELLINK;
    struct nlmsghdr *nlh = put_req(at, type, 0, AF_BRIDGE, op->ifindex);
    struct bridge_vlan_info vi = {.flags = 0, .vid = op->vid};
    struct nlattr *af = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    mnl_attr_put(nlh, IFLA_BRIDGE_VLAN_INFO, sizeof vi, &vi);
    mnl_attr_nest_end(nlh, af);
    return nlh;
}

static struct nlmsghdr *build(char *at, const struct drv_op *op)
{
    const uint16_t create = NLM_F_CREATE | NLM_F_EXCL;
    struct nlmsghdr *nlh;
    switch (op->type) {
    case DRV_OP_ADD_BRIDGE:
    case DRV_OP_ADD_VLAN:
        nlh = put_req(at, RTM_NEWLINK, create, AF_UNSPEC, 0);
        mnl_attr_put_strz(nlh, IFLA_IFNAME, op->name);
        if (op->type == DRV_OP_ADD_VLAN)
            mnl_attr_put_u32(nlh, IFLA_LINK, (uint32_t)op->link);
        if (op->master > 0)
            mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)op->master);
        if (op->group >= 0)
            mnl_attr_put_u32(nlh, IFLA_GROUP, (uint32_t)op->group);
        put_kind(nlh, op->type == DRV_OP_ADD_VLAN ? "vlan" : "bridge", op);
        return nlh;
    case DRV_OP_SET:
        return build_set(at, op);
    case DRV_OP_DEL:
        return put_req(at, RTM_DELLINK, 0, AF_UNSPEC, op->ifindex);
    case DRV_OP_DEL_GROUP:
        nlh = put_req(at, RTM_DELLINK, 0, AF_UNSPEC, 0);
        mnl_attr_put_u32(nlh, IFLA_GROUP, (uint32_t)op->group);
        return nlh;
    case DRV_OP_PORT_VLAN_ADD:
    case DRV_OP_PORT_VLAN_DEL:
        return build_port_vlan(at, op);
    case DRV_OP_BR_FILTER:
        nlh = put_req(at, RTM_NEWLINK, 0, AF_UNSPEC, op->ifindex);
        put_kind(nlh, "bridge", op);
        return nlh;
    case DRV_OP_NO_IPV6: /* not a netlink request: see no_ipv6() */
        break;
    }
    return NULL;
}

/* --- acks ---------------------------------------------------------------- */

struct batch {
    const struct drv_op *ops;
    uint8_t *ok;
    size_t first, n; /* ops[first .. first+n) */
    uint32_t seq0;   /* sequence number of ops[first] */
    size_t acked;
    size_t failed; /* lowest failed index, or SIZE_MAX */
    int err;
    char text[256]; /* kernel's extack message of that failure */
};

static void extack_text(const struct nlmsghdr *nlh, char *out, size_t len)
{
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    out[0] = '\0';
    if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
        return;
    size_t off = sizeof *e;
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
        off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
    size_t plen = mnl_nlmsg_get_payload_len(nlh);
    if (off >= plen)
        return;
    const char *end = (const char *)e + plen;
    const struct nlattr *a = (const void *)((const char *)e + off);
    for (; mnl_attr_ok(a, (int)(end - (const char *)a)); a = mnl_attr_next(a))
        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
            copy_str(a, out, len);
}

static void on_ack(struct batch *b, const struct nlmsghdr *nlh)
{
    if (nlh->nlmsg_type != NLMSG_ERROR ||
        mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
        return;
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    uint32_t k = nlh->nlmsg_seq - b->seq0;
    if (k >= b->n)
        return;
    b->acked++;
    size_t i = b->first + k;
    if (e->error == 0) {
        b->ok[i] = 1;
    } else if (i < b->failed) {
        b->failed = i;
        b->err = e->error;
        extack_text(nlh, b->text, sizeof b->text);
    }
}

static int read_acks(struct drv_nl *nl, struct batch *b)
{
    while (b->acked < b->n) {
        ssize_t n = recv_some(nl);
        if (n < 0)
            return (int)n;
        const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->rbuf;
        int len = (int)n;
        while (mnl_nlmsg_ok(nlh, len)) {
            on_ack(b, nlh);
            nlh = mnl_nlmsg_next(nlh, &len);
        }
    }
    return 0;
}

static int send_batch(struct drv_nl *nl, struct batch *b, char *errmsg,
                      size_t errlen)
{
    size_t bytes = 0, i = b->first;
    bool adds = false;
    b->seq0 = nl->seq + 1;
    for (; i < b->first + b->n && bytes + MSG_MAX <= DRV_NL_BATCH_BYTES; i++) {
        const struct drv_op *op = &b->ops[i];
        /* A by-name op waits for the creations before it (drv_plan_order),
         * a sysctl for the requests before it. */
        if ((adds && op->type == DRV_OP_SET && op->ifindex == 0) ||
            op->type == DRV_OP_NO_IPV6)
            break;
        adds |= op->type == DRV_OP_ADD_BRIDGE || op->type == DRV_OP_ADD_VLAN;
        struct nlmsghdr *nlh = build(nl->buf + bytes, op);
        nlh->nlmsg_seq = ++nl->seq;
        bytes += NLMSG_ALIGN(nlh->nlmsg_len);
    }
    b->n = i - b->first;
    if (mnl_socket_sendto(nl->sk, nl->buf, bytes) < 0)
        ERR(-errno, "netlink send: %s", strerror(errno));
    int rc = read_acks(nl, b);
    if (rc)
        ERR(rc, "netlink acks: %s", strerror(-rc));
    return 0;
}

/* Not rtnetlink: the per-device sysctl, through /proc/sys (which shows
 * the namespace of the process, as the socket does). */
static int no_ipv6(const struct drv_op *op)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
             op->name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write(fd, "1\n", 2) == 2 ? 0 : -errno;
    close(fd);
    return rc;
}

int drv_nl_exec(struct drv_nl *nl, const struct drv_op *ops, size_t n,
                uint8_t *ok, size_t *failed, char *errmsg, size_t errlen)
{
    char line[384];
    *failed = n;
    for (size_t first = 0; first < n;) {
        if (ops[first].type == DRV_OP_NO_IPV6) {
            int rc = no_ipv6(&ops[first]);
            if (rc) {
                *failed = first;
                drv_op_format(&ops[first], line, sizeof line);
                ERR(rc, "%s: %s", line, strerror(-rc));
            }
            ok[first++] = 1;
            continue;
        }
        struct batch b = {.ops = ops,
                          .ok = ok,
                          .first = first,
                          .n = n - first < DRV_NL_BATCH ? n - first
                                                        : DRV_NL_BATCH,
                          .failed = SIZE_MAX};
        int rc = send_batch(nl, &b, errmsg, errlen);
        if (rc) {
            *failed = first;
            return rc;
        }
        if (b.err) {
            *failed = b.failed;
            drv_op_format(&ops[b.failed], line, sizeof line);
            ERR(b.err, "%s: %s%s%s", line, strerror(-b.err),
                b.text[0] ? ": " : "", b.text);
        }
        first += b.n;
    }
    return 0;
}
