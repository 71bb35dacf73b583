/* drivers/drv_swcli and the ssh driver's config: CLI output parsers per
 * dialect (recorded-style output), port lists, the plan's ownership rules
 * (only VLANs named with our mark are ever changed), idempotence, the
 * read-back, and drv_ssh_cfg_parse / drv_open messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/drv.h"
#include "drivers/drv_ssh.h"
#include "drivers/drv_swcli.h"
#include "testlib.h"

static const char *const ports[] = {"Gi0/24", "Gi0/1", "Gi0/2"};
static const char *const hosts[] = {NULL, "h1", "h2"};

struct fx {
    struct drv_swcfg c;
    struct drv_swview v;
    struct drv_swplan p;
    char err[DRV_ERRMSG_MAX];
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->c = (struct drv_swcfg){"vc-", ports, hosts, 3};
    if (drv_swview_init(&x->v, 3) != 0) {
        free(x);
        return -1;
    }
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    drv_swview_close(&x->v);
    drv_swplan_close(&x->p);
    free(x);
    return 0;
}

static void has(const struct vlanset *s, const char *want)
{
    char buf[256];
    vlanset_format(s, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* --- parsers -----------------------------------------------------------------
 */

static void parse_ios(void **state)
{
    struct fx *x = *state;
    drv_swcli_parse_vlans(
        DRV_DIALECT_IOS,
        "show vlan brief\r\n"
        "\r\n"
        "VLAN Name                             Status    Ports\r\n"
        "---- -------------------------------- --------- -------------\r\n"
        "1    default                          active    Gi0/3, Gi0/4\r\n"
        "42   vc-tenant-a                      active\r\n"
        "43   ops-mgmt                         act/lshut Gi0/5\r\n"
        "1002 fddi-default                     act/unsup\r\n"
        "99x  junk                             active\r\n"
        "sw1#",
        &x->c, &x->v);
    has(&x->v.exists, "1,42-43,1002");
    assert_string_equal(x->v.names[42], "vc-tenant-a");
    assert_string_equal(x->v.names[43], "ops-mgmt");
    drv_swcli_parse_port(DRV_DIALECT_IOS,
                         "show running-config interface Gi0/1\r\n"
                         "Building configuration...\r\n"
                         "interface GigabitEthernet0/1\r\n"
                         " switchport trunk allowed vlan 1,42,100-102\r\n"
                         " switchport trunk allowed vlan add 200,4000-4001\r\n"
                         " switchport mode trunk\r\n"
                         "end\r\n",
                         1, &x->c, &x->v);
    has(&x->v.ports[1], "1,42,100-102,200,4000-4001");
    drv_swcli_parse_port(DRV_DIALECT_IOS,
                         " switchport trunk allowed vlan none\r\n", 2, &x->c,
                         &x->v);
    has(&x->v.ports[2], "");
    assert_int_equal(drv_swcli_parse_port(DRV_DIALECT_IOS, "", 3, &x->c, &x->v),
                     -EINVAL);
}

static void parse_procurve(void **state)
{
    struct fx *x = *state;
    static const char *const hp_ports[] = {"B24", "A3", "Trk1"};
    x->c.ports = hp_ports;
    drv_swcli_parse_vlans(DRV_DIALECT_PROCURVE,
                          "hostname \"HP-2920\"\n"
                          "vlan 1\n"
                          "   name \"DEFAULT_VLAN\"\n"
                          "   untagged A1-A24\n"
                          "   exit\n"
                          "vlan 42\n"
                          "   name \"vc-tenant-a\"\n"
                          "   tagged A1-A4,B20-B24,Trk1\n"
                          "   exit\n"
                          "vlan 43\n"
                          "   name \"vc-b\"\n"
                          "   tagged A4-A9\n"
                          "   exit\n"
                          "interface A3\n"
                          "   tagged vlan 99\n",
                          &x->c, &x->v);
    has(&x->v.exists, "1,42-43");
    assert_string_equal(x->v.names[1], "DEFAULT_VLAN");
    assert_string_equal(x->v.names[42], "vc-tenant-a");
    has(&x->v.ports[0], "42");
    has(&x->v.ports[1], "42");
    has(&x->v.ports[2], "42");
}

static void parse_ftos(void **state)
{
    struct fx *x = *state;
    static const char *const f10_ports[] = {"TenGigabitEthernet 0/48",
                                            "TenGigabitEthernet 0/2",
                                            "GigabitEthernet 1/5"};
    x->c.ports = f10_ports;
    drv_swcli_parse_vlans(DRV_DIALECT_FTOS,
                          "!\n"
                          "interface Vlan 42\n"
                          " name vc-tenant-a\n"
                          " tagged TenGigabitEthernet 0/1-3,48\n"
                          " tagged GigabitEthernet 1/5\n"
                          " no shutdown\n"
                          "!\n"
                          "interface Vlan 43\n"
                          " description x\n"
                          " tagged TenGigabitEthernet 0/4\n"
                          " untagged GigabitEthernet 1/5\n"
                          "!\n",
                          &x->c, &x->v);
    has(&x->v.exists, "42-43");
    assert_string_equal(x->v.names[43], "");
    has(&x->v.ports[0], "42");
    has(&x->v.ports[1], "42");
    has(&x->v.ports[2], "42");
}

static void parse_junos(void **state)
{
    struct fx *x = *state;
    static const char *const j_ports[] = {"xe-0/1/0", "ge-0/0/1", "ge-0/0/2"};
    x->c.ports = j_ports;
    drv_swcli_parse_vlans(DRV_DIALECT_JUNOS,
                          "show configuration vlans | display set\n"
                          "set vlans default vlan-id 1\n"
                          "set vlans vc-tenant-a vlan-id 42\n"
                          "set vlans ops vlan-id 43\n"
                          "set vlans ops description \"x\"\n",
                          &x->c, &x->v);
    has(&x->v.exists, "1,42-43");
    drv_swcli_parse_port(DRV_DIALECT_JUNOS,
                         "set interfaces ge-0/0/1 unit 0 family "
                         "ethernet-switching vlan members vc-tenant-a\n"
                         "set interfaces ge-0/0/1 unit 0 family "
                         "ethernet-switching vlan members 100-102\n"
                         "set interfaces ge-0/0/10 unit 0 family "
                         "ethernet-switching vlan members 7\n"
                         "set interfaces ge-0/0/1 unit 0 family "
                         "ethernet-switching vlan members unknown\n",
                         1, &x->c, &x->v);
    has(&x->v.ports[1], "42,100-102");
}

static void portlists(void **state)
{
    (void)state;
    assert_true(drv_swcli_portlist_has("A1-A4,B2", "A3"));
    assert_true(drv_swcli_portlist_has("A1-A4,B2", "B2"));
    assert_false(drv_swcli_portlist_has("A1-A4,B2", "A5"));
    assert_false(drv_swcli_portlist_has("A1-A4,B2", "B1"));
    assert_false(drv_swcli_portlist_has("A1-A4", "AA3"));
    assert_true(drv_swcli_portlist_has("1-4,7", "7"));
    assert_false(drv_swcli_portlist_has("1-4,7", "17"));
    assert_true(drv_swcli_portlist_has("0/1-3,0/48", "0/48"));
    assert_true(drv_swcli_portlist_has("0/1-3,5", "0/5"));
    assert_false(drv_swcli_portlist_has("0/1-3,5", "1/5"));
    assert_true(drv_swcli_portlist_has("Trk1-Trk2", "Trk2"));
    assert_false(drv_swcli_portlist_has("A1-B4", "A3"));
    assert_false(drv_swcli_portlist_has("", "A1"));
}

/* --- plans
 * ------------------------------------------------------------------------- */

struct st {
    struct drv_switch_vlan v[4];
    struct drv_switch_state s;
};

/* A state over managed 40-50: 42 on h1,h2 + uplink, 43 on h1. */
static void mkstate(struct st *t, bool complete)
{
    static const char *const h12[] = {"h1", "h2"}, *const h1[] = {"h1"};
    memset(t, 0, sizeof *t);
    t->v[0] = (struct drv_switch_vlan){42, "tenant-a", h12, 2, true};
    t->v[1] = (struct drv_switch_vlan){43, NULL, h1, 1, false};
    t->s.uplink = UPLINK_XPONDER;
    vlanset_add_range(&t->s.managed, 40, 50);
    t->s.vlans = t->v;
    t->s.nvlans = 2;
    t->s.complete = complete;
}

static void plan_ops(struct fx *x, const char *want)
{
    char buf[2048] = "", line[128];
    for (size_t i = 0; i < x->p.n; i++) {
        const struct drv_swop *o = &x->p.v[i];
        snprintf(line, sizeof line, "%s%s %u%s%s %s", i ? "; " : "",
                 drv_tmpl_op_name(o->op), (unsigned)o->vid,
                 o->port >= 0 ? " " : "", o->port >= 0 ? ports[o->port] : "",
                 o->name);
        strcat(buf, line);
    }
    assert_string_equal(buf, want);
}

/* Applies the plan to the view, as a switch would. */
static void execute(struct fx *x)
{
    for (size_t i = 0; i < x->p.n; i++) {
        const struct drv_swop *o = &x->p.v[i];
        switch (o->op) {
        case DRV_TMPL_ADD_NETWORK:
            vlanset_add(&x->v.exists, o->vid);
            snprintf(x->v.names[o->vid], sizeof x->v.names[0], "%s", o->name);
            break;
        case DRV_TMPL_DELETE_NETWORK:
            vlanset_del(&x->v.exists, o->vid);
            break;
        case DRV_TMPL_ADD_NETWORK_TO_TRUNK:
            vlanset_add(&x->v.ports[o->port], o->vid);
            break;
        case DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK:
            vlanset_del(&x->v.ports[o->port], o->vid);
            break;
        }
    }
}

static int plan(struct fx *x, const struct drv_switch_state *s)
{
    x->err[0] = '\0';
    return drv_swplan_make(&x->c, s, &x->v, &x->p, x->err, sizeof x->err);
}

static void plan_from_empty(void **state)
{
    struct fx *x = *state;
    struct st t;
    mkstate(&t, true);
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "ADD_NETWORK 42 vc-tenant-a; ADD_NETWORK 43 vc-43; "
                "ADD_NETWORK_TO_TRUNK 42 Gi0/24 vc-tenant-a; "
                "ADD_NETWORK_TO_TRUNK 42 Gi0/1 vc-tenant-a; "
                "ADD_NETWORK_TO_TRUNK 43 Gi0/1 vc-43; "
                "ADD_NETWORK_TO_TRUNK 42 Gi0/2 vc-tenant-a");
    execute(x);
    assert_int_equal(plan(x, &t.s), 0);
    assert_int_equal(x->p.n, 0); /* idempotent */
}

static void plan_ownership(void **state)
{
    struct fx *x = *state;
    struct st t;
    mkstate(&t, true);
    assert_int_equal(plan(x, &t.s), 0);
    execute(x);
    /* Someone else's VLAN 44 (in our pool) on Gi0/1, a VLAN 45 of ours
     * no longer wanted, an unmanaged 60 of ours, VLAN 1 on the uplink. */
    vlanset_add(&x->v.exists, 44);
    strcpy(x->v.names[44], "ops-mgmt");
    vlanset_add(&x->v.ports[1], 44);
    vlanset_add(&x->v.exists, 45);
    strcpy(x->v.names[45], "vc-gone");
    vlanset_add(&x->v.ports[2], 45);
    vlanset_add(&x->v.exists, 60);
    strcpy(x->v.names[60], "vc-elsewhere");
    vlanset_add(&x->v.ports[2], 60);
    vlanset_add(&x->v.ports[0], 1);
    /* Incomplete view: add and repair only. */
    t.s.complete = false;
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "");
    t.s.complete = true;
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "REMOVE_NETWORK_FROM_TRUNK 45 Gi0/2 vc-gone; "
                "DELETE_NETWORK 45 vc-gone");
    execute(x);
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "");
    /* Wanting a VLAN that exists under a foreign name is refused. */
    t.v[2] = (struct drv_switch_vlan){44, "c", NULL, 0, true};
    t.s.nvlans = 3;
    assert_int_equal(plan(x, &t.s), -EEXIST);
    assert_contains(x->err, "vlan 44: exists on the switch as \"ops-mgmt\"");
    assert_int_equal(x->p.n, 0);
    /* Releasing everything removes only ours. */
    t.s.nvlans = 0;
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "REMOVE_NETWORK_FROM_TRUNK 42 Gi0/24 vc-tenant-a; "
                "REMOVE_NETWORK_FROM_TRUNK 42 Gi0/1 vc-tenant-a; "
                "REMOVE_NETWORK_FROM_TRUNK 43 Gi0/1 vc-43; "
                "REMOVE_NETWORK_FROM_TRUNK 42 Gi0/2 vc-tenant-a; "
                "DELETE_NETWORK 42 vc-tenant-a; DELETE_NETWORK 43 vc-43");
    execute(x);
    has(&x->v.exists, "44,60");
    has(&x->v.ports[1], "44");
    has(&x->v.ports[2], "60");
}

static void plan_repairs(void **state)
{
    struct fx *x = *state;
    struct st t;
    mkstate(&t, true);
    assert_int_equal(plan(x, &t.s), 0);
    execute(x);
    vlanset_del(&x->v.ports[2], 42);      /* removed by hand */
    strcpy(x->v.names[43], "vc-renamed"); /* still ours: left as is */
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "ADD_NETWORK_TO_TRUNK 42 Gi0/2 vc-tenant-a");
    vlanset_del(&x->v.exists, 42); /* deleted by hand */
    assert_int_equal(plan(x, &t.s), 0);
    plan_ops(x, "ADD_NETWORK 42 vc-tenant-a; "
                "ADD_NETWORK_TO_TRUNK 42 Gi0/2 vc-tenant-a");
}

static void plan_refusals(void **state)
{
    struct fx *x = *state;
    struct st t;
    static const char *const h9[] = {"h9"};
    mkstate(&t, true);
    t.s.uplink = UPLINK_QINQ;
    t.s.svlan = 100;
    assert_int_equal(plan(x, &t.s), -EOPNOTSUPP);
    assert_contains(x->err, "qinq");
    mkstate(&t, true);
    t.v[1].hosts = h9;
    assert_int_equal(plan(x, &t.s), -EINVAL);
    assert_contains(x->err, "vlan 43: host h9: no port for it");
    mkstate(&t, true);
    t.v[1].vid = 51;
    assert_int_equal(plan(x, &t.s), -EINVAL);
    assert_contains(x->err, "vlan 51: not in the managed set");
    mkstate(&t, true);
    t.v[1].vid = 42;
    assert_int_equal(plan(x, &t.s), -EINVAL);
    assert_contains(x->err, "listed twice");
}

static void names(void **state)
{
    (void)state;
    char n[DRV_TMPL_NAME_MAX + 1];
    drv_swcli_vlan_name("vc-", "tenant-a", 42, n);
    assert_string_equal(n, "vc-tenant-a");
    drv_swcli_vlan_name("vc-", NULL, 42, n);
    assert_string_equal(n, "vc-42");
    drv_swcli_vlan_name("vc-", "a-very-long-cluster-name-of-63-bytes", 42, n);
    assert_int_equal(strlen(n), 32);
    assert_true(drv_tmpl_name_ok(n));
}

static void read_back(void **state)
{
    struct fx *x = *state;
    struct st t;
    struct drv_switch_state *r;
    mkstate(&t, true);
    assert_int_equal(plan(x, &t.s), 0);
    execute(x);
    vlanset_add(&x->v.exists, 44);
    strcpy(x->v.names[44], "ops");
    vlanset_add(&x->v.ports[1], 44);
    assert_int_equal(drv_swcli_read(&x->c, &t.s.managed, &x->v, &r), 0);
    assert_int_equal(r->nvlans, 2);
    assert_int_equal(r->vlans[0].vid, 42);
    assert_true(r->vlans[0].uplink);
    assert_int_equal(r->vlans[0].nhosts, 2);
    assert_string_equal(r->vlans[0].hosts[1], "h2");
    assert_int_equal(r->vlans[1].vid, 43);
    assert_false(r->vlans[1].uplink);
    assert_int_equal(r->vlans[1].nhosts, 1);
    drv_switch_state_free(r);
}

/* --- config
 * ------------------------------------------------------------------------- */

static void config(void **state)
{
    struct fx *x = *state;
    struct drv_ssh_cfg c;
    assert_int_equal(drv_ssh_cfg_parse(&c,
                                       "sw1.example:vendor=hp_procurve:h1=A1:"
                                       "uplink=B24:h2=A2:user=netops:port=2222:"
                                       "identity=/etc/vc/id:mark=vcx-:"
                                       "timeout=5",
                                       x->err, sizeof x->err),
                     0);
    assert_string_equal(c.host, "sw1.example");
    assert_string_equal(c.vendor, "hp_procurve");
    assert_int_equal(c.nports, 3);
    assert_string_equal(c.ports[0], "B24");
    assert_null(c.hosts[0]);
    assert_string_equal(c.ports[1], "A1");
    assert_string_equal(c.hosts[2], "h2");
    assert_int_equal(c.port, 2222);
    assert_string_equal(c.mark, "vcx-");
    assert_int_equal(c.timeout_s, 5);
    drv_ssh_cfg_close(&c);
    static const struct {
        const char *args, *msg;
    } bad[] = {
        {"", "expected ssh:HOST"},
        {"sw1:uplink=Gi0/1", "vendor=: missing"},
        {"sw1:vendor=cisco_ios", "uplink=PORT: missing"},
        {"sw1:vendor=cisco_ios:uplink=Gi0/1:h1=Gi0/1", "port Gi0/1: listed"},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:h1=Gi0/1:h1=Gi0/2",
         "host h1: listed twice"},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:port=0", "port \"0\": not"},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:h1=Gi0/1;reload", "port \""},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:mark=1x", "mark \"1x\""},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:h 1=Gi0/1", "host \"h 1\""},
        {"sw1:vendor=cisco_ios:uplink=Gi0/9:junk", "expected key=value"},
        {"-oProxyCommand=x:vendor=cisco_ios:uplink=Gi0/9", "expected ssh"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        x->err[0] = '\0';
        int rc = drv_ssh_cfg_parse(&c, bad[i].args, x->err, sizeof x->err);
        drv_ssh_cfg_close(&c);
        if (rc != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i].args);
        assert_contains(x->err, bad[i].msg);
    }
}

static void ports_file(void **state)
{
    struct fx *x = *state;
    struct drv_ssh_cfg c;
    char path[] = "/tmp/vc-ports-XXXXXX", args[128];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# cabling of site a\n"
          "h1 = TenGigabitEthernet 0/1\n"
          "\n"
          "  uplink=TenGigabitEthernet 0/48  \n",
          f);
    fclose(f);
    snprintf(args, sizeof args, "sw1:vendor=dell_force10:ports=%s", path);
    assert_int_equal(drv_ssh_cfg_parse(&c, args, x->err, sizeof x->err), 0);
    assert_int_equal(c.nports, 2);
    assert_string_equal(c.ports[0], "TenGigabitEthernet 0/48");
    assert_string_equal(c.ports[1], "TenGigabitEthernet 0/1");
    assert_string_equal(c.hosts[1], "h1");
    drv_ssh_cfg_close(&c);
    f = fopen(path, "a");
    fputs("h2 = Te 0/2; reload\n", f);
    fclose(f);
    assert_int_equal(drv_ssh_cfg_parse(&c, args, x->err, sizeof x->err),
                     -EINVAL);
    drv_ssh_cfg_close(&c);
    assert_contains(x->err, ":5: port \"Te 0/2; reload\"");
    unlink(path);
    snprintf(args, sizeof args, "sw1:vendor=dell_force10:ports=%s", path);
    assert_int_equal(drv_ssh_cfg_parse(&c, args, x->err, sizeof x->err),
                     -ENOENT);
    drv_ssh_cfg_close(&c);
}

static void open_errors(void **state)
{
    struct fx *x = *state;
    struct drv *d = NULL;
    assert_int_equal(
        drv_open("ssh:sw1:vendor=nope:uplink=Gi0/1", &d, x->err, sizeof x->err),
        -EINVAL);
    assert_contains(x->err, "ssh: vendor \"nope\": unknown (cisco_ios, "
                            "hp_procurve, dell_force10, juniper_junos)");
    assert_int_equal(drv_open("ssh:sw1:vendor=cisco_ios:uplink=Gi0/1:"
                              "templates=/nonexistent.ini",
                              &d, x->err, sizeof x->err),
                     -ENOENT);
    assert_int_equal(drv_open("ssh:sw1:vendor=cisco_ios:uplink=Gi0/1", &d,
                              x->err, sizeof x->err),
                     0);
    assert_string_equal(drv_label(d), "ssh sw1");
    struct drv_host_state h = {.trunk = "eth0"};
    assert_int_equal(drv_host_apply(d, &h, NULL, x->err, sizeof x->err),
                     -EOPNOTSUPP);
    /* A bad state is refused before any connection is tried. */
    struct st t;
    mkstate(&t, true);
    assert_int_equal(drv_switch_apply(d, &t.s, NULL, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, "ssh sw1: vlan 42: host h1: no port for it");
    drv_close(d);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(parse_ios),      T(parse_procurve), T(parse_ftos),
        T(parse_junos),    T(portlists),      T(plan_from_empty),
        T(plan_ownership), T(plan_repairs),   T(plan_refusals),
        T(names),          T(read_back),      T(config),
        T(ports_file),     T(open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
