/* vc-drvctl: drive one back-end from the command line, for the netns
 * tests (and by hand).
 *
 *   vc-drvctl CONFIG host TRUNK [OPT]... [VID=CLUSTER[:IFACE[,IFACE]...]]...
 *   vc-drvctl CONFIG switch MODE MANAGED [OPT]... [VID:HOSTS[:up]]...
 *   vc-drvctl CONFIG host-read TRUNK
 *   vc-drvctl CONFIG switch-read MANAGED
 *
 * MODE is xponder, vpls or qinq:SVLAN; MANAGED a VLAN set ("40-50");
 * HOSTS a comma-separated list or "-". OPT: --index=N, --incomplete,
 * --log (print the operations performed). An apply prints
 * "changes=N missing=M"; a failure prints "error=-ERRNO: message" on
 * stderr and exits 1; bad usage exits 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/drv.h"

#define MAX_ITEMS 8192

struct opts {
    uint64_t index;
    bool incomplete, log;
};

static char *errmsg_buf(void)
{
    static char buf[DRV_ERRMSG_MAX];
    buf[0] = '\0';
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: vc-drvctl CONFIG host TRUNK [--index=N] "
                    "[--incomplete] [--log] [VID=CLUSTER[:IFACE,...]]...\n"
                    "       vc-drvctl CONFIG switch MODE MANAGED [opts] "
                    "[VID:HOSTS[:up]]...\n"
                    "       vc-drvctl CONFIG host-read TRUNK\n"
                    "       vc-drvctl CONFIG switch-read MANAGED\n");
    return 2;
}

/* Splits s in place at sep into at most max parts. */
static int split(char *s, char sep, char **out, int max)
{
    int n = 0;
    if (!*s || strcmp(s, "-") == 0)
        return 0;
    while (n < max) {
        out[n++] = s;
        s = strchr(s, sep);
        if (!s)
            break;
        *s++ = '\0';
    }
    return n;
}

/* Consumes leading options; returns the index of the first item. */
static int parse_opts(int argc, char **argv, int i, struct opts *o)
{
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strncmp(argv[i], "--index=", 8) == 0)
            o->index = strtoull(argv[i] + 8, NULL, 10);
        else if (strcmp(argv[i], "--incomplete") == 0)
            o->incomplete = true;
        else if (strcmp(argv[i], "--log") == 0)
            o->log = true;
        else
            return -1;
    }
    return i;
}

static int report(struct drv *d, int rc, const struct drv_result *res,
                  const char *errmsg, bool log)
{
    char *text = drv_log_take(d);
    if (log && text)
        fputs(text, stdout);
    free(text);
    if (rc) {
        fprintf(stderr, "error=%d: %s\n", rc, errmsg);
        return 1;
    }
    printf("changes=%u missing=%u%s%s\n", res->changes, res->missing,
           res->note[0] ? " note=" : "", res->note);
    return 0;
}

static int cmd_host(struct drv *d, int argc, char **argv)
{
    static struct drv_host_vlan v[MAX_ITEMS];
    static char *ifs[MAX_ITEMS][64];
    struct opts o = {0};
    struct drv_result res;
    char *parts[2];
    if (argc < 1)
        return usage();
    int i = parse_opts(argc, argv, 1, &o);
    if (i < 0 || argc - i > MAX_ITEMS)
        return usage();
    struct drv_host_state s = {.trunk = argv[0],
                               .vlans = v,
                               .nvlans = (uint32_t)(argc - i),
                               .index = o.index,
                               .complete = !o.incomplete};
    for (int k = 0; i < argc; i++, k++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return usage();
        *eq = '\0';
        v[k].vid = (uint16_t)atoi(argv[i]);
        int n = split(eq + 1, ':', parts, 2);
        v[k].cluster = n ? parts[0] : "";
        v[k].nifaces = n == 2 ? (uint32_t)split(parts[1], ',', ifs[k], 64) : 0;
        v[k].ifaces = (const char *const *)ifs[k];
    }
    drv_log_enable(d, true);
    char *err = errmsg_buf();
    int rc = drv_host_apply(d, &s, &res, err, DRV_ERRMSG_MAX);
    return report(d, rc, &res, err, o.log);
}

static int parse_mode(const char *m, struct drv_switch_state *s)
{
    if (strcmp(m, "xponder") == 0)
        s->uplink = UPLINK_XPONDER;
    else if (strcmp(m, "vpls") == 0)
        s->uplink = UPLINK_VPLS;
    else if (strncmp(m, "qinq:", 5) == 0)
        s->uplink = UPLINK_QINQ, s->svlan = (uint16_t)atoi(m + 5);
    else
        return -1;
    return 0;
}

static int cmd_switch(struct drv *d, int argc, char **argv)
{
    static struct drv_switch_vlan v[MAX_ITEMS];
    static char *hosts[MAX_ITEMS][256];
    struct opts o = {0};
    struct drv_result res;
    struct drv_switch_state s = {.vlans = v};
    char *err = errmsg_buf(), *parts[3];
    if (argc < 2 || parse_mode(argv[0], &s) != 0 ||
        vlanset_parse(&s.managed, argv[1], err, DRV_ERRMSG_MAX) != 0)
        return usage();
    int i = parse_opts(argc, argv, 2, &o);
    if (i < 0 || argc - i > MAX_ITEMS)
        return usage();
    s.index = o.index;
    s.complete = !o.incomplete;
    for (; i < argc; i++, s.nvlans++) {
        struct drv_switch_vlan *x = &v[s.nvlans];
        int n = split(argv[i], ':', parts, 3);
        if (n < 2)
            return usage();
        x->vid = (uint16_t)atoi(parts[0]);
        x->nhosts = (uint32_t)split(parts[1], ',', hosts[s.nvlans], 256);
        x->hosts = (const char *const *)hosts[s.nvlans];
        x->uplink = n == 3 && strcmp(parts[2], "up") == 0;
    }
    drv_log_enable(d, true);
    int rc = drv_switch_apply(d, &s, &res, err, DRV_ERRMSG_MAX);
    return report(d, rc, &res, err, o.log);
}

static int cmp_vlan(const void *a, const void *b)
{
    const struct drv_host_vlan *x = a, *y = b;
    return (int)x->vid - (int)y->vid;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmd_host_read(struct drv *d, const char *trunk)
{
    struct drv_host_state *s;
    char *err = errmsg_buf();
    int rc = drv_host_read(d, trunk, &s, err, DRV_ERRMSG_MAX);
    if (rc) {
        fprintf(stderr, "error=%d: %s\n", rc, err);
        return 1;
    }
    struct drv_host_vlan *v = (struct drv_host_vlan *)s->vlans;
    qsort(v, s->nvlans, sizeof *v, cmp_vlan);
    for (uint32_t i = 0; i < s->nvlans; i++) {
        qsort((void *)v[i].ifaces, v[i].nifaces, sizeof(char *), cmp_str);
        printf("%u %s ", (unsigned)v[i].vid, v[i].cluster);
        for (uint32_t j = 0; j < v[i].nifaces; j++)
            printf("%s%s", j ? "," : "", v[i].ifaces[j]);
        printf("%s\n", v[i].nifaces ? "" : "-");
    }
    drv_host_state_free(s);
    return 0;
}

static int cmd_switch_read(struct drv *d, const char *managed)
{
    struct drv_switch_state *s;
    struct vlanset m;
    char *err = errmsg_buf();
    if (vlanset_parse(&m, managed, err, DRV_ERRMSG_MAX) != 0)
        return usage();
    int rc = drv_switch_read(d, &m, &s, err, DRV_ERRMSG_MAX);
    if (rc) {
        fprintf(stderr, "error=%d: %s\n", rc, err);
        return 1;
    }
    printf("uplink=%s svlan=%u\n", proto_uplink_name(s->uplink),
           (unsigned)s->svlan);
    for (uint32_t i = 0; i < s->nvlans; i++) {
        const struct drv_switch_vlan *v = &s->vlans[i];
        qsort((void *)v->hosts, v->nhosts, sizeof(char *), cmp_str);
        printf("%u ", (unsigned)v->vid);
        for (uint32_t j = 0; j < v->nhosts; j++)
            printf("%s%s", j ? "," : "", v->hosts[j]);
        printf("%s%s\n", v->nhosts ? "" : "-", v->uplink ? " up" : "");
    }
    drv_switch_state_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct drv *d;
    char *err = errmsg_buf();
    if (argc < 4)
        return usage();
    int rc = drv_open(argv[1], &d, err, DRV_ERRMSG_MAX);
    if (rc) {
        fprintf(stderr, "error=%d: %s\n", rc, err);
        return 1;
    }
    if (strcmp(argv[2], "host") == 0)
        rc = cmd_host(d, argc - 3, argv + 3);
    else if (strcmp(argv[2], "switch") == 0)
        rc = cmd_switch(d, argc - 3, argv + 3);
    else if (strcmp(argv[2], "host-read") == 0)
        rc = cmd_host_read(d, argv[3]);
    else if (strcmp(argv[2], "switch-read") == 0)
        rc = cmd_switch_read(d, argv[3]);
    else
        rc = usage();
    drv_close(d);
    return rc;
}
