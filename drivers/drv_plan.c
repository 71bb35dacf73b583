/* Desired-state diffing (see drv_plan.h). */
#include "drv_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mp.h"
#include "drv_mark.h"

#define ERR(code, ...)                                                         \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

/* --- link tables --------------------------------------------------------- */

void drv_links_init(struct drv_links *l)
{
    memset(l, 0, sizeof *l);
}

void drv_links_reset(struct drv_links *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].pv);
    l->n = 0;
    free(l->by_name);
    l->by_name = NULL;
}

void drv_links_close(struct drv_links *l)
{
    drv_links_reset(l);
    free(l->v);
    memset(l, 0, sizeof *l);
}

struct drv_link *drv_links_add(struct drv_links *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct drv_link *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    free(l->by_name);
    l->by_name = NULL;
    struct drv_link *k = &l->v[l->n++];
    memset(k, 0, sizeof *k);
    return k;
}

static int by_ifindex(const void *a, const void *b)
{
    const struct drv_link *x = a, *y = b;
    return (x->ifindex > y->ifindex) - (x->ifindex < y->ifindex);
}

/* qsort has no context argument: sort positions through a thread-local
 * table, only read during the qsort call below. */
static _Thread_local const struct drv_link *sort_base;

static int by_name_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return strcmp(sort_base[*x].name, sort_base[*y].name);
}

int drv_links_index(struct drv_links *l)
{
    if (l->n) /* an empty table may have no array: qsort wants one */
        qsort(l->v, l->n, sizeof *l->v, by_ifindex);
    free(l->by_name);
    l->by_name = malloc((l->n ? l->n : 1) * sizeof *l->by_name);
    if (!l->by_name)
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        l->by_name[i] = (uint32_t)i;
    sort_base = l->v;
    qsort(l->by_name, l->n, sizeof *l->by_name, by_name_cmp);
    return 0;
}

const struct drv_link *drv_links_find(const struct drv_links *l,
                                      const char *name)
{
    size_t lo = 0, hi = l->by_name ? l->n : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct drv_link *k = &l->v[l->by_name[mid]];
        int c = strcmp(name, k->name);
        if (c == 0)
            return k;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct drv_link *drv_links_get(const struct drv_links *l, int ifindex)
{
    struct drv_link key = {.ifindex = ifindex};
    if (ifindex <= 0 || !l->n)
        return NULL;
    return bsearch(&key, l->v, l->n, sizeof *l->v, by_ifindex);
}

/* --- plans --------------------------------------------------------------- */

void drv_plan_init(struct drv_plan *p)
{
    memset(p, 0, sizeof *p);
}

void drv_plan_close(struct drv_plan *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}

void drv_plan_reset(struct drv_plan *p)
{
    p->n = 0;
    p->missing = 0;
    p->note[0] = '\0';
}

struct drv_op *drv_plan_add(struct drv_plan *p, uint8_t type)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct drv_op *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    struct drv_op *op = &p->v[p->n++];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->master = -1;
    op->group = -1;
    return op;
}

/* Execution phases (drv_plan_order). A new link is marked, then loses
 * IPv6, then goes up: no moment with IPv6 on an up link of a tenant VLAN
 * (no link-local address, no SLAAC from a tenant's router
 * advertisement). */
static int phase(const struct drv_op *op)
{
    switch (op->type) {
    case DRV_OP_DEL:
    case DRV_OP_DEL_GROUP:
        return 0;
    case DRV_OP_SET:
        if (op->ifindex == 0)
            return op->up ? 4 : 2;
        return op->group >= 0 ? 0 : 5;
    case DRV_OP_ADD_BRIDGE:
    case DRV_OP_ADD_VLAN:
        return 1;
    case DRV_OP_NO_IPV6:
        return 3;
    default:
        return 5;
    }
}

int drv_plan_order(struct drv_plan *p)
{
    if (p->n < 2)
        return 0;
    struct drv_op *v = malloc(p->n * sizeof *v);
    size_t k = 0;
    if (!v)
        return -ENOMEM;
    for (int ph = 0; ph < 6; ph++)
        for (size_t i = 0; i < p->n; i++)
            if (phase(&p->v[i]) == ph)
                v[k++] = p->v[i];
    memcpy(p->v, v, p->n * sizeof *v);
    free(v);
    return 0;
}

static void format_set(const struct drv_op *op, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "link set %s", op->name);
#define APPEND(...)                                                            \
    do {                                                                       \
        if (n < len)                                                           \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);              \
    } while (0)
    if (op->alias[0])
        APPEND(" alias \"%s\"", op->alias);
    if (op->group >= 0)
        APPEND(" group %" PRId64, op->group);
    if (op->master == 0)
        APPEND(" nomaster");
    else if (op->master > 0)
        APPEND(" master %s", op->mname);
    if (op->up)
        APPEND(" up");
#undef APPEND
}

void drv_op_format(const struct drv_op *op, char *buf, size_t len)
{
    switch (op->type) {
    case DRV_OP_ADD_BRIDGE:
        snprintf(buf, len, "link add %s group %" PRId64 " type bridge",
                 op->name, op->group);
        break;
    case DRV_OP_ADD_VLAN:
        snprintf(buf, len,
                 "link add %s link %s%s%s group %" PRId64 " type vlan%s id %u",
                 op->name, op->lower, op->master > 0 ? " master " : "",
                 op->master > 0 ? op->mname : "", op->group,
                 op->vproto == DRV_ETH_P_8021AD ? " proto 802.1ad" : "",
                 (unsigned)op->vid);
        break;
    case DRV_OP_SET:
        format_set(op, buf, len);
        break;
    case DRV_OP_DEL:
        snprintf(buf, len, "link del %s", op->name);
        break;
    case DRV_OP_DEL_GROUP:
        snprintf(buf, len, "link del group %" PRId64, op->group);
        break;
    case DRV_OP_PORT_VLAN_ADD:
        snprintf(buf, len, "vlan add dev %s vid %u", op->name,
                 (unsigned)op->vid);
        break;
    case DRV_OP_PORT_VLAN_DEL:
        snprintf(buf, len, "vlan del dev %s vid %u", op->name,
                 (unsigned)op->vid);
        break;
    case DRV_OP_BR_FILTER:
        snprintf(buf, len, "link set %s type bridge vlan_filtering 1",
                 op->name);
        break;
    case DRV_OP_NO_IPV6:
        snprintf(buf, len, "sysctl -w net/ipv6/conf/%s/disable_ipv6=1",
                 op->name);
        break;
    default:
        snprintf(buf, len, "op %u", (unsigned)op->type);
    }
}

/* --- configs ------------------------------------------------------------- */

/* Copies args into buf (len bytes) and splits it at ':' into f (at most
 * max fields). Returns the field count, or -1 if args is too long or has
 * too many fields. An empty args has no fields. */
static int split(const char *args, char *buf, size_t len, char **f, int max)
{
    int n = 0;
    if (strlen(args) >= len)
        return -1;
    strcpy(buf, args);
    if (!buf[0])
        return 0;
    for (char *p = buf;; p++) {
        if (n == max)
            return -1;
        f[n++] = p;
        p = strchr(p, ':');
        if (!p)
            return n;
        *p = '\0';
    }
}

int drv_host_cfg_parse(struct drv_host_cfg *c, const char *args, char *errmsg,
                       size_t errlen)
{
    char buf[256], *f[8];
    memset(c, 0, sizeof *c);
    strcpy(c->pattern, DRV_PATTERN_DEFAULT);
    c->trash_group = DRV_TRASH_GROUP;
    int n = split(args ? args : "", buf, sizeof buf, f, 8);
    if (n < 0)
        ERR(-EINVAL, "\"%.64s\": too long", args);
    for (int i = 0; i < n; i++) {
        char *end;
        if (strncmp(f[i], "bridge=", 7) == 0) {
            int rc = drv_pattern_check(f[i] + 7, errmsg, errlen);
            if (rc)
                return rc;
            strcpy(c->pattern, f[i] + 7);
        } else if (strncmp(f[i], "group=", 6) == 0) {
            unsigned long long g = strtoull(f[i] + 6, &end, 0);
            if (!f[i][6] || *end || g > UINT32_MAX || f[i][6] == '-')
                ERR(-EINVAL, "group \"%s\": not a link group (0..%u)", f[i] + 6,
                    UINT32_MAX);
            c->trash_group = (uint32_t)g;
        } else {
            ERR(-EINVAL, "\"%s\": unknown option (bridge=PATTERN, group=N)",
                f[i]);
        }
    }
    return 0;
}

void drv_switch_cfg_close(struct drv_switch_cfg *c)
{
    free(c->ports);
    memset(c, 0, sizeof *c);
}

static int by_host(const void *a, const void *b)
{
    const struct drv_port_map *x = a, *y = b;
    return strcmp(x->host, y->host);
}

static int add_port(struct drv_switch_cfg *c, char *f, char *errmsg,
                    size_t errlen)
{
    char *eq = strchr(f, '=');
    if (!eq)
        ERR(-EINVAL, "\"%s\": expected uplink=PORT or HOST=PORT", f);
    *eq = '\0';
    if (!proto_name_ok(mp_cstr(f)))
        ERR(-EINVAL, "host \"%s\": not a valid host name", f);
    if (!drv_ifname_ok(eq + 1))
        ERR(-EINVAL, "host %s: port \"%s\": not a valid interface name", f,
            eq + 1);
    for (size_t i = 0; i < c->nports; i++)
        if (strcmp(c->ports[i].host, f) == 0)
            ERR(-EINVAL, "host %s: listed twice", f);
    struct drv_port_map *v = realloc(c->ports, (c->nports + 1) * sizeof *v);
    if (!v)
        ERR(-ENOMEM, "out of memory");
    c->ports = v;
    strcpy(v[c->nports].host, f);
    strcpy(v[c->nports].port, eq + 1);
    c->nports++;
    return 0;
}

static int check_switch_cfg(const struct drv_switch_cfg *c, char *errmsg,
                            size_t errlen)
{
    if (!c->uplink[0])
        ERR(-EINVAL, "bridge %s: uplink=PORT missing", c->bridge);
    for (size_t i = 0; i < c->nports; i++) {
        const char *p = c->ports[i].port;
        if (strcmp(p, c->uplink) == 0 || strcmp(p, c->bridge) == 0)
            ERR(-EINVAL, "host %s: port %s is the %s", c->ports[i].host, p,
                strcmp(p, c->uplink) == 0 ? "uplink" : "bridge");
    }
    if (strcmp(c->uplink, c->bridge) == 0)
        ERR(-EINVAL, "uplink %s: is the bridge", c->uplink);
    return 0;
}

static int parse_switch(struct drv_switch_cfg *c, char **f, int n, char *errmsg,
                        size_t errlen)
{
    if (n < 1 || !drv_ifname_ok(f[0]))
        ERR(-EINVAL, "bridge \"%s\": not a valid interface name",
            n ? f[0] : "");
    strcpy(c->bridge, f[0]);
    for (int i = 1; i < n; i++) {
        if (strncmp(f[i], "uplink=", 7) == 0) {
            if (c->uplink[0] || !drv_ifname_ok(f[i] + 7))
                ERR(-EINVAL, "\"%s\": one uplink=PORT with a valid name", f[i]);
            strcpy(c->uplink, f[i] + 7);
        } else {
            int rc = add_port(c, f[i], errmsg, errlen);
            if (rc)
                return rc;
        }
    }
    int rc = check_switch_cfg(c, errmsg, errlen);
    if (rc == 0 && c->nports)
        qsort(c->ports, c->nports, sizeof *c->ports, by_host);
    return rc;
}

int drv_switch_cfg_parse(struct drv_switch_cfg *c, const char *args,
                         char *errmsg, size_t errlen)
{
    char buf[8192], *f[512];
    memset(c, 0, sizeof *c);
    int n = split(args ? args : "", buf, sizeof buf, f, 512);
    if (n < 0)
        ERR(-EINVAL, "switch config: more than 8191 bytes or 511 ports");
    int rc = parse_switch(c, f, n, errmsg, errlen);
    if (rc)
        drv_switch_cfg_close(c);
    return rc;
}

void drv_qinq_name(unsigned svlan, char *name)
{
    snprintf(name, IFNAMSIZ, "vcq%u", svlan);
}
