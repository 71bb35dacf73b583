/* drivers/drv_plan*: desired-state diffing against hand-made link tables,
 * and whole applies against the dryrun back-end's simulated kernel
 * (convergence, idempotence, drift repair, fencing, failure injection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/drv.h"
#include "drivers/drv_dryrun.h"
#include "drivers/drv_mark.h"
#include "drivers/drv_plan.h"
#include "testlib.h"

struct fx {
    struct drv_links l;
    struct drv_plan p;
    struct drv_host_cfg hc;
    struct drv_switch_cfg sc;
    struct drv *d;
    char err[DRV_ERRMSG_MAX];
    char text[16384];
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    drv_links_init(&x->l);
    drv_plan_init(&x->p);
    drv_host_cfg_parse(&x->hc, "", x->err, sizeof x->err);
    x->hc.ipv6 = true;
    if (drv_switch_cfg_parse(&x->sc, "br0:uplink=up0:h1=swp1:h2=swp2", x->err,
                             sizeof x->err) != 0)
        return -1;
    x->sc.ipv6 = true;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    drv_links_close(&x->l);
    drv_plan_close(&x->p);
    drv_switch_cfg_close(&x->sc);
    drv_close(x->d);
    free(x);
    return 0;
}

/* --- link tables ---------------------------------------------------------- */

static struct drv_link *link_add(struct fx *x, int ifindex, const char *name,
                                 int kind, const char *alias)
{
    struct drv_link *k = drv_links_add(&x->l);
    assert_non_null(k);
    k->ifindex = ifindex;
    k->kind = (uint8_t)kind;
    k->flags = IFF_UP;
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->alias, sizeof k->alias, "%s", alias ? alias : "");
    return k;
}

static struct drv_link *vlan_add(struct fx *x, int ifindex, const char *name,
                                 int lower, unsigned vid, const char *alias)
{
    struct drv_link *k = link_add(x, ifindex, name, DRV_KIND_VLAN, alias);
    k->link = lower;
    k->vid = (uint16_t)vid;
    k->vproto = DRV_ETH_P_8021Q;
    return k;
}

static void port_vids(struct drv_link *k, int master, const char *tagged,
                      unsigned pvid)
{
    char err[128];
    k->master = master;
    k->pv = calloc(1, sizeof *k->pv);
    assert_non_null(k->pv);
    if (tagged[0])
        assert_int_equal(vlanset_parse(&k->pv->vids, tagged, err, sizeof err),
                         0);
    if (pvid) {
        vlanset_add(&k->pv->vids, pvid);
        vlanset_add(&k->pv->untagged, pvid);
        k->pv->pvid = (uint16_t)pvid;
    }
}

/* The plan as ip/bridge commands, one per line. */
static const char *plan_text(struct fx *x)
{
    size_t n = 0;
    x->text[0] = '\0';
    for (size_t i = 0; i < x->p.n && n < sizeof x->text - 400; i++) {
        drv_op_format(&x->p.v[i], x->text + n, sizeof x->text - n);
        n += strlen(x->text + n);
        x->text[n++] = '\n';
        x->text[n] = '\0';
    }
    return x->text;
}

static int plan_host(struct fx *x, const struct drv_host_state *w)
{
    assert_int_equal(drv_links_index(&x->l), 0);
    x->err[0] = '\0';
    return drv_plan_host(&x->hc, w, &x->l, &x->p, x->err, sizeof x->err);
}

static int plan_switch(struct fx *x, const struct drv_switch_state *w)
{
    assert_int_equal(drv_links_index(&x->l), 0);
    x->err[0] = '\0';
    return drv_plan_switch(&x->sc, w, &x->l, &x->p, x->err, sizeof x->err);
}

static const char *const vm1[] = {"vm1"};
static const char *const vm12[] = {"vm1", "vm2"};

/* --- host planning -------------------------------------------------------- */

static void host_from_empty(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 3, "vm1", DRV_KIND_OTHER, NULL);
    struct drv_host_vlan v[] = {{42, "c1", vm1, 1}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x),
        "link add vc42 group 1986199554 type bridge\n"
        "link add eth1.42 link eth1 group 1986199554 type vlan id 42\n"
        "link set vc42 alias \"virtcloud:cluster=c1:vlan=42\" group 0\n"
        "link set eth1.42 alias \"virtcloud:cluster=c1:vlan=42\" group 0\n"
        "sysctl -w net/ipv6/conf/vc42/disable_ipv6=1\n"
        "sysctl -w net/ipv6/conf/eth1.42/disable_ipv6=1\n"
        "link set vc42 up\n"
        "link set eth1.42 up\n");
    assert_int_equal(x->p.missing, 0);
}

/* The state after round 1: the next plan enslaves, the one after is empty. */
static void host_second_round(void **state)
{
    struct fx *x = *state;
    const char *mk = "virtcloud:cluster=c1:vlan=42";
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 3, "vm1", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc42", DRV_KIND_BRIDGE, mk);
    struct drv_link *s = vlan_add(x, 11, "eth1.42", 2, 42, mk);
    struct drv_host_vlan v[] = {{42, "c1", vm1, 1}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(plan_text(x), "link set eth1.42 master vc42\n"
                                      "link set vm1 master vc42\n");
    s = (struct drv_link *)drv_links_find(&x->l, "eth1.42");
    s->master = 10;
    ((struct drv_link *)drv_links_find(&x->l, "vm1"))->master = 10;
    assert_int_equal(plan_host(x, &w), 0);
    assert_int_equal(x->p.n, 0);
}

static void host_refuses_unmarked(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    vlan_add(x, 5, "eth1.42", 2, 42, NULL);
    link_add(x, 6, "vc43", DRV_KIND_BRIDGE, "virtcloud:future=1");
    struct drv_host_vlan v[] = {{42, "c1", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(plan_host(x, &w), -EEXIST);
    assert_string_equal(x->err, "vlan 42: eth1.42 exists without our mark: "
                                "not ours, left alone");
    assert_int_equal(x->p.n, 0);
    v[0].vid = 43;
    assert_int_equal(plan_host(x, &w), -EEXIST);
    assert_contains(x->err, "with a mark we do not know");
    /* Not wanted: left alone, not deleted. */
    struct drv_host_state none = {"eth1", NULL, 0, 0, true};
    assert_int_equal(plan_host(x, &none), 0);
    assert_int_equal(x->p.n, 0);
}

static void host_deletes(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc42", DRV_KIND_BRIDGE, "virtcloud:cluster=a:vlan=42");
    vlan_add(x, 11, "eth1.42", 2, 42, "virtcloud:cluster=a:vlan=42")->master =
        10;
    link_add(x, 12, "vc43", DRV_KIND_BRIDGE, "virtcloud:cluster=b:vlan=43");
    struct drv_host_vlan v[] = {{43, "b", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, false};
    /* Incomplete view: 42 stays, 43 is completed. */
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x), "link add eth1.43 link eth1 master vc43 group 1986199554 "
                      "type vlan id 43\n"
                      "link set eth1.43 alias \"virtcloud:cluster=b:vlan=43\" "
                      "group 0\n"
                      "sysctl -w net/ipv6/conf/eth1.43/disable_ipv6=1\n"
                      "link set eth1.43 up\n");
    /* Complete: both of 42 go through the trash group. */
    w.complete = true;
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x), "link set vc42 group 1986199553\n"
                      "link set eth1.42 group 1986199553\n"
                      "link del group 1986199553\n"
                      "link add eth1.43 link eth1 master vc43 group 1986199554 "
                      "type vlan id 43\n"
                      "link set eth1.43 alias \"virtcloud:cluster=b:vlan=43\" "
                      "group 0\n"
                      "sysctl -w net/ipv6/conf/eth1.43/disable_ipv6=1\n"
                      "link set eth1.43 up\n");
    /* Without a trash group, one by one. */
    x->hc.trash_group = 0;
    assert_int_equal(plan_host(x, &w), 0);
    assert_true(
        strncmp(plan_text(x), "link del vc42\nlink del eth1.42\n", 31) == 0);
}

static void host_trash_guard(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc42", DRV_KIND_BRIDGE, "virtcloud:cluster=a:vlan=42");
    link_add(x, 11, "vc44", DRV_KIND_BRIDGE, "virtcloud:cluster=a:vlan=44");
    link_add(x, 12, "vc43", DRV_KIND_BRIDGE, "virtcloud:cluster=b:vlan=43")
        ->group = DRV_TRASH_GROUP;
    struct drv_host_vlan v[] = {{43, "b", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    /* A kept link found in the trash group (a crash mid-delete) is rescued
     * before the group goes. */
    assert_int_equal(plan_host(x, &w), 0);
    assert_contains(plan_text(x), "link set vc43 group 0\n");
    assert_contains(x->text, "link del group 1986199553\n");
    assert_true(strstr(x->text, "group 0\n") < strstr(x->text, "del group"));
    /* An unmarked link in the group: no group delete at all. */
    link_add(x, 13, "other", DRV_KIND_OTHER, NULL)->group = DRV_TRASH_GROUP;
    assert_int_equal(plan_host(x, &w), 0);
    assert_not_contains(plan_text(x), "del group");
    assert_contains(x->text, "link del vc42\n");
}

static void host_replaces_wrong_shape(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 3, "eth2", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc42", DRV_KIND_BRIDGE, "virtcloud:cluster=a:vlan=42");
    /* Ours, on the wrong lower device: replaced even in an incomplete
     * view, since the name is wanted. */
    vlan_add(x, 11, "eth1.42", 3, 42, "virtcloud:cluster=a:vlan=42");
    struct drv_host_vlan v[] = {{42, "a", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, false};
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x), "link del eth1.42\n"
                      "link add eth1.42 link eth1 master vc42 group 1986199554 "
                      "type vlan id 42\n"
                      "link set eth1.42 alias \"virtcloud:cluster=a:vlan=42\" "
                      "group 0\n"
                      "sysctl -w net/ipv6/conf/eth1.42/disable_ipv6=1\n"
                      "link set eth1.42 up\n");
}

static void host_repairs(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    struct drv_link *b = link_add(x, 10, "vc42", DRV_KIND_BRIDGE,
                                  "virtcloud:cluster=old:vlan=42:idx=3");
    b->flags = 0;
    vlan_add(x, 11, "eth1.42", 2, 42, "virtcloud:cluster=c1:vlan=42")->master =
        10;
    link_add(x, 12, "vm1", DRV_KIND_OTHER, NULL)->master = 10;
    link_add(x, 13, "stray", DRV_KIND_OTHER, NULL)->master = 10;
    link_add(x, 14, "vm2", DRV_KIND_OTHER, NULL);
    struct drv_host_vlan v[] = {{42, "c1", vm12, 2}};
    struct drv_host_state w = {"eth1", v, 1, 7, true};
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x),
        "link set vc42 alias \"virtcloud:cluster=c1:vlan=42:idx=7\" up\n"
        "link set vm2 master vc42\n"
        "link set stray nomaster\n");
    /* Incomplete: no release. */
    w.complete = false;
    assert_int_equal(plan_host(x, &w), 0);
    assert_not_contains(plan_text(x), "nomaster");
}

/* A crash between creating a link and marking it leaves it in
 * DRV_NEW_GROUP without an alias: still ours, completed, not refused. */
static void host_half_made(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    struct drv_link *b = link_add(x, 10, "vc42", DRV_KIND_BRIDGE, NULL);
    b->group = DRV_NEW_GROUP;
    b->flags = 0;
    link_add(x, 11, "vc43", DRV_KIND_BRIDGE, NULL)->group = DRV_NEW_GROUP;
    struct drv_host_vlan v[] = {{42, "c1", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(
        plan_text(x),
        "link del vc43\n"
        "link set vc42 alias \"virtcloud:cluster=c1:vlan=42\" group 0 up\n"
        "link add eth1.42 link eth1 master vc42 group 1986199554 type vlan id "
        "42\n"
        "link set eth1.42 alias \"virtcloud:cluster=c1:vlan=42\" group 0\n"
        "sysctl -w net/ipv6/conf/eth1.42/disable_ipv6=1\n"
        "link set eth1.42 up\n");
}

static void host_fence(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc9", DRV_KIND_BRIDGE,
             "virtcloud:cluster=z:vlan=9:idx=20");
    struct drv_host_state w = {"eth1", NULL, 0, 10, true};
    assert_int_equal(plan_host(x, &w), -ESTALE);
    assert_string_equal(x->err, "vc9: written by log index 20, newer than "
                                "this state's 10");
    w.index = 20;
    assert_int_equal(plan_host(x, &w), 0);
    assert_string_equal(plan_text(x), "link del vc9\n");
    w.index = 0; /* unfenced */
    assert_int_equal(plan_host(x, &w), 0);
}

static void host_missing(void **state)
{
    struct fx *x = *state;
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    link_add(x, 10, "vc42", DRV_KIND_BRIDGE, "virtcloud:cluster=a:vlan=42");
    vlan_add(x, 11, "eth1.42", 2, 42, "virtcloud:cluster=a:vlan=42")->master =
        10;
    struct drv_host_vlan v[] = {{42, "a", vm12, 2}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(plan_host(x, &w), 0);
    assert_int_equal(x->p.n, 0);
    assert_int_equal(x->p.missing, 2);
    assert_string_equal(x->p.note, "vlan 42: iface vm1: not found");
    /* No trunk: fine for an empty state, an error otherwise. */
    struct drv_host_state none = {"eth9", NULL, 0, 0, true};
    assert_int_equal(plan_host(x, &none), 0);
    w.trunk = "eth9";
    assert_int_equal(plan_host(x, &w), -ENODEV);
    assert_string_equal(x->err, "trunk eth9: no such interface");
}

static void host_bad(struct fx *x, struct drv_host_state *w, const char *why)
{
    assert_int_equal(plan_host(x, w), -EINVAL);
    assert_contains(x->err, why);
    assert_int_equal(x->p.n, 0);
}

static void host_invalid(void **state)
{
    struct fx *x = *state;
    static const char *const twice[] = {"vm1", "vm1"};
    static const char *const bad_if[] = {"vm 1"};
    static const char *const trunk[] = {"eth1"};
    link_add(x, 2, "eth1", DRV_KIND_OTHER, NULL);
    struct drv_host_vlan v[2] = {{42, "c1", NULL, 0}, {43, "c2", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 2, 0, true};
    v[1].vid = 42;
    host_bad(x, &w, "vlan 42: listed twice");
    v[1].vid = 0;
    host_bad(x, &w, "vlan 0: not in 1..4094");
    v[1].vid = 4095;
    host_bad(x, &w, "vlan 4095: not in 1..4094");
    v[1].vid = 43;
    v[1].cluster = "no good";
    host_bad(x, &w, "cluster \"no good\"");
    v[1].cluster = NULL;
    host_bad(x, &w, "cluster \"(null)\"");
    v[1].cluster = "c2";
    v[1].ifaces = twice;
    v[1].nifaces = 2;
    host_bad(x, &w, "iface vm1: listed in two VLANs");
    v[1].ifaces = vm1;
    v[1].nifaces = 1;
    v[0].ifaces = vm1;
    v[0].nifaces = 1;
    host_bad(x, &w, "iface vm1: listed in two VLANs");
    v[0].ifaces = bad_if;
    host_bad(x, &w, "iface \"vm 1\"");
    v[0].ifaces = trunk;
    host_bad(x, &w, "iface eth1: is the trunk");
    v[0].nifaces = 0;
    w.trunk = "abcdefghijk";
    v[1].vid = 4094;
    host_bad(x, &w, "\"abcdefghijk.4094\" is longer than 15");
    w.trunk = NULL;
    host_bad(x, &w, "trunk \"(null)\"");
}

/* --- switch planning ------------------------------------------------------ */

static void switch_base(struct fx *x)
{
    struct drv_link *br = link_add(x, 2, "br0", DRV_KIND_BRIDGE, NULL);
    br->vlan_filtering = true;
    port_vids(link_add(x, 3, "swp1", DRV_KIND_OTHER, NULL), 2, "", 1);
    port_vids(link_add(x, 4, "swp2", DRV_KIND_OTHER, NULL), 2, "", 1);
    port_vids(link_add(x, 5, "up0", DRV_KIND_OTHER, NULL), 2, "", 1);
}

static const char *const h1[] = {"h1"};
static const char *const h12[] = {"h1", "h2"};

static void switch_from_empty(void **state)
{
    struct fx *x = *state;
    char err[64];
    switch_base(x);
    ((struct drv_link *)&x->l.v[0])->vlan_filtering = false;
    struct drv_switch_vlan v[] = {{42, "c1", h12, 2, true},
                                  {44, "c2", h1, 1, false}};
    struct drv_switch_state w = {
        .uplink = UPLINK_XPONDER, .vlans = v, .nvlans = 2, .complete = true};
    vlanset_parse(&w.managed, "40-50", err, sizeof err);
    assert_int_equal(plan_switch(x, &w), 0);
    assert_string_equal(plan_text(x),
                        "link set br0 type bridge vlan_filtering 1\n"
                        "vlan add dev swp1 vid 42\n"
                        "vlan add dev swp1 vid 44\n"
                        "vlan add dev swp2 vid 42\n"
                        "vlan add dev up0 vid 42\n");
}

static void switch_managed_rule(void **state)
{
    struct fx *x = *state;
    char err[64];
    switch_base(x);
    drv_links_index(&x->l);
    /* swp1: 42 wanted but PVID; 45 managed, unwanted; 300 not managed. */
    struct drv_link *p1 = (struct drv_link *)drv_links_find(&x->l, "swp1");
    vlanset_add(&p1->pv->vids, 45);
    vlanset_add(&p1->pv->vids, 300);
    vlanset_add(&p1->pv->vids, 42);
    p1->pv->pvid = 42;
    struct drv_switch_vlan v[] = {{42, NULL, h1, 1, false}};
    struct drv_switch_state w = {
        .uplink = UPLINK_VPLS, .vlans = v, .nvlans = 1, .complete = false};
    vlanset_parse(&w.managed, "40-50", err, sizeof err);
    assert_int_equal(plan_switch(x, &w), 0);
    assert_string_equal(plan_text(x), "vlan add dev swp1 vid 42\n");
    w.complete = true;
    assert_int_equal(plan_switch(x, &w), 0);
    assert_string_equal(plan_text(x), "vlan add dev swp1 vid 42\n"
                                      "vlan del dev swp1 vid 45\n");
}

static void switch_qinq(void **state)
{
    struct fx *x = *state;
    char err[64];
    switch_base(x);
    drv_links_index(&x->l);
    vlanset_add(&((struct drv_link *)drv_links_find(&x->l, "up0"))->pv->vids,
                42);
    struct drv_switch_vlan v[] = {{42, NULL, h1, 1, true}};
    struct drv_switch_state w = {.uplink = UPLINK_QINQ,
                                 .svlan = 100,
                                 .vlans = v,
                                 .nvlans = 1,
                                 .complete = true};
    vlanset_parse(&w.managed, "40-50", err, sizeof err);
    assert_int_equal(plan_switch(x, &w), 0);
    assert_string_equal(
        plan_text(x), "link add vcq100 link up0 master br0 group 1986199554 "
                      "type vlan proto 802.1ad id 100\n"
                      "link set vcq100 alias \"virtcloud:qinq=br0:svlan=100\" "
                      "group 0\n"
                      "sysctl -w net/ipv6/conf/vcq100/disable_ipv6=1\n"
                      "link set vcq100 up\n"
                      "vlan add dev swp1 vid 42\n"
                      "vlan del dev up0 vid 42\n");
    /* Once there: the S-VLAN device carries the uplink VIDs. */
    struct drv_link *q =
        vlan_add(x, 9, "vcq100", 5, 100, "virtcloud:qinq=br0:svlan=100");
    q->vproto = DRV_ETH_P_8021AD;
    port_vids(q, 2, "", 1);
    assert_int_equal(plan_switch(x, &w), 0);
    assert_contains(plan_text(x), "vlan add dev vcq100 vid 42\n");
    assert_not_contains(x->text, "link add");
    /* Another S-VLAN: the old device goes. */
    w.svlan = 200;
    assert_int_equal(plan_switch(x, &w), 0);
    assert_true(
        strncmp(plan_text(x), "link del vcq100\nlink add vcq200 ", 32) == 0);
}

static void switch_invalid(void **state)
{
    struct fx *x = *state;
    char err[64];
    static const char *const h9[] = {"h9"};
    switch_base(x);
    struct drv_switch_vlan v[] = {{42, NULL, h9, 1, false}};
    struct drv_switch_state w = {
        .uplink = UPLINK_XPONDER, .vlans = v, .nvlans = 1, .complete = true};
    vlanset_parse(&w.managed, "40-50", err, sizeof err);
    assert_int_equal(plan_switch(x, &w), -EINVAL);
    assert_string_equal(x->err, "vlan 42: host h9: no port for it in the "
                                "switch config");
    v[0].hosts = h1;
    v[0].vid = 60;
    assert_int_equal(plan_switch(x, &w), -EINVAL);
    assert_contains(x->err, "vlan 60: not in the managed set");
    v[0].vid = 42;
    w.uplink = UPLINK_QINQ;
    assert_int_equal(plan_switch(x, &w), -EINVAL);
    assert_contains(x->err, "qinq: svlan 0");
    w.uplink = 7;
    assert_int_equal(plan_switch(x, &w), -EINVAL);
    w.uplink = UPLINK_XPONDER;
    /* A configured port that is not on the bridge. */
    ((struct drv_link *)drv_links_find(&x->l, "swp2"))->master = 0;
    assert_int_equal(plan_switch(x, &w), -ENODEV);
    assert_string_equal(x->err, "host h2: port swp2: not a port of bridge br0");
}

/* --- whole applies on the dryrun model ---------------------------------------
 */

static void dry_open(struct fx *x, const char *cfg)
{
    drv_close(x->d);
    if (drv_open(cfg, &x->d, x->err, sizeof x->err) != 0)
        fail_msg("open %s: %s", cfg, x->err);
}

static unsigned host_apply(struct fx *x, const struct drv_host_state *w)
{
    struct drv_result r;
    if (drv_host_apply(x->d, w, &r, x->err, sizeof x->err) != 0)
        fail_msg("apply: %s", x->err);
    return r.changes;
}

/* n clusters 1..n, each with VM interface "vmN" */
struct many {
    struct drv_host_vlan v[600];
    char names[600][16], ifn[600][16];
    const char *ifp[600];
};

static void many_init(struct many *m, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        snprintf(m->names[i], 16, "c%u", i + 1);
        snprintf(m->ifn[i], 16, "vm%u", i + 1);
        m->ifp[i] = m->ifn[i];
        m->v[i] = (struct drv_host_vlan){(uint16_t)(i + 1), m->names[i],
                                         &m->ifp[i], 1};
    }
}

static size_t count_marked(struct drv *d)
{
    const struct drv_links *l = drv_dryrun_links(d);
    struct drv_mark m;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += drv_mark_parse(l->v[i].alias, &m) != DRV_MARK_NONE;
    return n;
}

static void dry_host_cycle(void **state)
{
    struct fx *x = *state;
    struct many *m = calloc(1, sizeof *m);
    struct drv_host_state *rb;
    assert_non_null(m);
    many_init(m, 500);
    dry_open(x, "dryrun");
    assert_int_equal(
        drv_dryrun_link_add(x->d, "keep0", DRV_KIND_BRIDGE, NULL, "not ours"),
        0);
    struct drv_host_state w = {"eth1", m->v, 500, 0, true};
    /* Per cluster: bridge and subinterface made, marked, without IPv6,
     * up (4 each); 2 masters. */
    assert_int_equal(host_apply(x, &w), 500 * 10);
    assert_int_equal(host_apply(x, &w), 0);
    assert_int_equal(count_marked(x->d), 1000);
    assert_int_equal(drv_host_read(x->d, "eth1", &rb, x->err, sizeof x->err),
                     0);
    assert_int_equal(rb->nvlans, 500);
    drv_host_state_free(rb);
    /* Drift: a hand-deleted subinterface, a bridge set down. */
    assert_int_equal(drv_dryrun_link_del(x->d, "eth1.7"), 0);
    assert_int_equal(drv_dryrun_link_up(x->d, "vc9", false), 0);
    /* The subinterface comes back enslaved at creation (its bridge is
     * there): add, alias, sysctl, up; and the bridge's up. */
    assert_int_equal(host_apply(x, &w), 4 + 1);
    assert_int_equal(host_apply(x, &w), 0);
    /* Remove all: 1000 moves to the trash group and one group delete. */
    w.nvlans = 0;
    assert_int_equal(host_apply(x, &w), 1001);
    assert_int_equal(count_marked(x->d), 0);
    assert_non_null(drv_links_find(drv_dryrun_links(x->d), "keep0"));
    assert_non_null(drv_links_find(drv_dryrun_links(x->d), "vm1"));
    free(m);
}

static void dry_log_and_read(void **state)
{
    struct fx *x = *state;
    struct drv_host_state *rb;
    dry_open(x, "dryrun");
    struct drv_host_vlan v[] = {{42, "c1", vm12, 2}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    host_apply(x, &w);
    char *log = drv_log_take(x->d);
    assert_non_null(log);
    assert_string_equal(
        log, "link add vc42 group 1986199554 type bridge\n"
             "link add eth1.42 link eth1 group 1986199554 type vlan id 42\n"
             "link set vc42 alias \"virtcloud:cluster=c1:vlan=42\" group 0\n"
             "link set eth1.42 alias \"virtcloud:cluster=c1:vlan=42\" group 0\n"
             "sysctl -w net/ipv6/conf/vc42/disable_ipv6=1\n"
             "sysctl -w net/ipv6/conf/eth1.42/disable_ipv6=1\n"
             "link set vc42 up\n"
             "link set eth1.42 up\n"
             "link set eth1.42 master vc42\n"
             "link set vm1 master vc42\n"
             "link set vm2 master vc42\n");
    free(log);
    assert_null(drv_log_take(x->d));
    assert_int_equal(drv_host_read(x->d, "eth1", &rb, x->err, sizeof x->err),
                     0);
    assert_int_equal(rb->nvlans, 1);
    assert_int_equal(rb->vlans[0].vid, 42);
    assert_string_equal(rb->vlans[0].cluster, "c1");
    assert_int_equal(rb->vlans[0].nifaces, 2);
    drv_host_state_free(rb);
    drv_host_state_free(NULL);
}

static void dry_fail_injection(void **state)
{
    struct fx *x = *state;
    struct drv_result r;
    dry_open(x, "dryrun:0:1");
    struct drv_host_vlan v[] = {{42, "c1", NULL, 0}};
    struct drv_host_state w = {"eth1", v, 1, 0, true};
    assert_int_equal(drv_host_apply(x->d, &w, &r, x->err, sizeof x->err), -EIO);
    assert_string_equal(
        x->err, "dryrun: vlan 42: link add vc42 group 1986199554 type bridge: "
                "Input/output error (injected failure)");
    assert_int_equal(r.changes, 0);
    /* A 30% failure rate still converges over a few applies. */
    dry_open(x, "dryrun:0:0.3:5");
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++)
        ok = drv_host_apply(x->d, &w, &r, x->err, sizeof x->err) == 0 &&
             r.changes == 0;
    assert_true(ok);
}

static void dry_switch_cycle(void **state)
{
    struct fx *x = *state;
    struct drv_result r;
    struct drv_switch_state *rb;
    char err[64];
    dry_open(x, "dryrun");
    struct drv_switch_vlan v[] = {{42, "c1", h12, 2, true},
                                  {43, "c2", h1, 1, false}};
    struct drv_switch_state w = {
        .uplink = UPLINK_XPONDER, .vlans = v, .nvlans = 2, .complete = true};
    vlanset_parse(&w.managed, "40-50", err, sizeof err);
#define SW_APPLY()                                                             \
    assert_int_equal(drv_switch_apply(x->d, &w, &r, x->err, sizeof x->err), 0)
    SW_APPLY();
    assert_int_equal(r.changes, 1 + 4); /* vlan_filtering, 4 memberships */
    SW_APPLY();
    assert_int_equal(r.changes, 0);
    assert_int_equal(
        drv_switch_read(x->d, &w.managed, &rb, x->err, sizeof x->err), 0);
    assert_int_equal(rb->nvlans, 2);
    assert_int_equal(rb->vlans[0].vid, 42);
    assert_int_equal(rb->vlans[0].nhosts, 2);
    assert_true(rb->vlans[0].uplink);
    assert_false(rb->vlans[1].uplink);
    drv_switch_state_free(rb);
    w.uplink = UPLINK_QINQ;
    w.svlan = 100;
    SW_APPLY();
    assert_true(r.changes > 0);
    SW_APPLY();
    assert_int_equal(r.changes, 0);
    assert_int_equal(
        drv_switch_read(x->d, &w.managed, &rb, x->err, sizeof x->err), 0);
    assert_int_equal(rb->uplink, UPLINK_QINQ);
    assert_int_equal(rb->svlan, 100);
    assert_true(rb->vlans[0].uplink);
    drv_switch_state_free(rb);
    w.nvlans = 0;
    w.uplink = UPLINK_XPONDER;
    SW_APPLY();
    SW_APPLY();
    assert_int_equal(r.changes, 0);
    assert_int_equal(count_marked(x->d), 0);
    assert_int_equal(
        drv_switch_read(x->d, &w.managed, &rb, x->err, sizeof x->err), 0);
    assert_int_equal(rb->nvlans, 0);
    drv_switch_state_free(rb);
#undef SW_APPLY
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(host_from_empty),
        T(host_second_round),
        T(host_refuses_unmarked),
        T(host_deletes),
        T(host_trash_guard),
        T(host_replaces_wrong_shape),
        T(host_repairs),
        T(host_half_made),
        T(host_fence),
        T(host_missing),
        T(host_invalid),
        T(switch_from_empty),
        T(switch_managed_rule),
        T(switch_qinq),
        T(switch_invalid),
        T(dry_host_cycle),
        T(dry_log_and_read),
        T(dry_fail_injection),
        T(dry_switch_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
