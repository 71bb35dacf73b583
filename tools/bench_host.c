/* virtcloud-bench-host: how long the host back-end takes to configure and
 * to remove N clusters (default 4,000: a subinterface and a bridge each)
 * on a trunk, from empty, in a network namespace of its own.
 *
 *   virtcloud-bench-host [-n CLUSTERS] [--group=N] [--ifaces]
 *
 * Prints one line: "clusters=N apply_s=... changes=... noop_s=...
 * remove_s=...". --group=0 deletes links one by one instead of through
 * the trash group; --ifaces also enslaves one veth "VM interface" per
 * cluster. Needs root; exits 77 (skip) if it cannot make a namespace or
 * the kernel has no 802.1Q VLAN devices. The namespace is unshared by this
 * process only: it disappears with it.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drivers/drv.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench-host: \"%s\" failed\n", cmd);
    return rc;
}

struct bench {
    unsigned n;
    unsigned group;
    int ifaces;
    int no_ipv6;
    struct drv_host_vlan *vlans;
    char (*names)[16];
    char (*ifnames)[16];
    const char **ifptr;
};

static int setup(struct bench *b)
{
    b->vlans = calloc(b->n, sizeof *b->vlans);
    b->names = calloc(b->n, sizeof *b->names);
    b->ifnames = calloc(b->n, sizeof *b->ifnames);
    b->ifptr = calloc(b->n, sizeof *b->ifptr);
    if (!b->vlans || !b->names || !b->ifnames || !b->ifptr)
        return -ENOMEM;
    for (unsigned i = 0; i < b->n; i++) {
        snprintf(b->names[i], sizeof b->names[i], "c%u", i + 1);
        snprintf(b->ifnames[i], sizeof b->ifnames[i], "vm%u", i + 1);
        b->ifptr[i] = b->ifnames[i];
        b->vlans[i].vid = (uint16_t)(i + 1);
        b->vlans[i].cluster = b->names[i];
        b->vlans[i].ifaces = b->ifaces ? &b->ifptr[i] : NULL;
        b->vlans[i].nifaces = b->ifaces ? 1 : 0;
    }
    return 0;
}

static int make_ifaces(const struct bench *b)
{
    FILE *f = fopen("/tmp/vc-bench-host.ip", "w");
    if (!f)
        return -errno;
    for (unsigned i = 0; i < b->n; i++)
        fprintf(f, "link add vm%u type veth peer name vm%up\n", i + 1, i + 1);
    fclose(f);
    int rc = sh("ip -batch /tmp/vc-bench-host.ip");
    remove("/tmp/vc-bench-host.ip");
    return rc;
}

static int apply(struct drv *d, struct drv_host_state *s, unsigned n,
                 double *secs, unsigned *changes)
{
    char err[DRV_ERRMSG_MAX];
    struct drv_result res;
    s->nvlans = n;
    double t0 = now_s();
    int rc = drv_host_apply(d, s, &res, err, sizeof err);
    *secs = now_s() - t0;
    *changes = res.changes;
    if (rc)
        fprintf(stderr, "bench-host: apply of %u clusters: %s\n", n, err);
    return rc;
}

static int parse(struct bench *b, int argc, char **argv)
{
    b->n = 4000;
    b->group = DRV_TRASH_GROUP;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            b->n = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strncmp(argv[i], "--group=", 8) == 0)
            b->group = (unsigned)strtoul(argv[i] + 8, NULL, 0);
        else if (strcmp(argv[i], "--ifaces") == 0)
            b->ifaces = 1;
        else if (strcmp(argv[i], "--no-ipv6") == 0)
            b->no_ipv6 = 1;
        else
            return -1;
    }
    return b->n >= 1 && b->n <= 4094 ? 0 : -1;
}

static int run(struct bench *b)
{
    char cfg[64], err[DRV_ERRMSG_MAX];
    struct drv *d;
    double ta, tn, tr;
    unsigned ca, cn, cr;
    snprintf(cfg, sizeof cfg, "host:group=%u", b->group);
    if (drv_open(cfg, &d, err, sizeof err) != 0) {
        fprintf(stderr, "bench-host: %s\n", err);
        return 1;
    }
    struct drv_host_state s = {
        .trunk = "trunk0", .vlans = b->vlans, .complete = true};
    int rc = apply(d, &s, b->n, &ta, &ca);
    if (rc == -EOPNOTSUPP || rc == -ENOENT) {
        printf("SKIP: this kernel cannot make 802.1Q VLAN devices\n");
        drv_close(d);
        return 77;
    }
    if (rc == 0)
        rc = apply(d, &s, b->n, &tn, &cn);
    if (rc == 0)
        rc = apply(d, &s, 0, &tr, &cr);
    if (rc == 0)
        printf("clusters=%u apply_s=%.3f changes=%u noop_s=%.3f "
               "noop_changes=%u remove_s=%.3f remove_changes=%u\n",
               b->n, ta, ca, tn, cn, tr, cr);
    drv_close(d);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    if (parse(&b, argc, argv) != 0) {
        fprintf(stderr, "usage: virtcloud-bench-host [-n 1..4094] "
                        "[--group=N] [--ifaces]\n");
        return 2;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        printf("SKIP: cannot make a network namespace (%s): needs root\n",
               strerror(errno));
        return 77;
    }
    if (b.no_ipv6 && sh("echo 1 > /proc/sys/net/ipv6/conf/default/"
                        "disable_ipv6") != 0)
        return 1;
    if (setup(&b) != 0 ||
        sh("ip link add trunk0 type veth peer name trunk0p && "
           "ip link set trunk0 up && ip link set trunk0p up") != 0 ||
        (b.ifaces && make_ifaces(&b) != 0))
        return 1;
    int rc = run(&b);
    free(b.vlans);
    free(b.names);
    free(b.ifnames);
    free(b.ifptr);
    return rc;
}
