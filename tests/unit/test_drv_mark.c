/* drivers/drv_mark and configs: bridge name patterns, subinterface names,
 * ownership marks, back-end config strings and drv_open's messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/drv.h"
#include "drivers/drv_int.h"
#include "drivers/drv_mark.h"
#include "drivers/drv_plan.h"
#include "testlib.h"

struct fx {
    char err[DRV_ERRMSG_MAX];
    struct drv_mark m;
    struct drv_switch_cfg sc;
    struct drv_host_cfg hc;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    drv_switch_cfg_close(&x->sc);
    free(x);
    return 0;
}

static void pattern_ok(struct fx *x, const char *p)
{
    x->err[0] = '\0';
    if (drv_pattern_check(p, x->err, sizeof x->err) != 0)
        fail_msg("pattern \"%s\" refused: %s", p, x->err);
}

static void pattern_bad(struct fx *x, const char *p, const char *why)
{
    x->err[0] = '\0';
    assert_int_equal(drv_pattern_check(p, x->err, sizeof x->err), -EINVAL);
    assert_contains(x->err, why);
}

static void patterns(void **state)
{
    struct fx *x = *state;
    char name[IFNAMSIZ];
    pattern_ok(x, "vc%u");
    pattern_ok(x, "abcdefghijk%u"); /* 11 + 4 digits = 15 */
    pattern_ok(x, "vc%%%u");
    pattern_ok(x, "%u-vc");
    pattern_bad(x, "abcdefghijkl%u", "not a valid interface name");
    pattern_bad(x, "vc", "exactly one %u");
    pattern_bad(x, "vc%u%u", "exactly one %u");
    pattern_bad(x, "vc%d", "exactly one %u");
    pattern_bad(x, "vc%s", "exactly one %u");
    pattern_bad(x, "vc%", "exactly one %u");
    pattern_bad(x, "vc %u", "not a valid interface name");
    pattern_bad(x, "vc/%u", "not a valid interface name");
    pattern_bad(x, "vc:%u", "not a valid interface name");
    pattern_bad(x, "a-very-long-pattern-%u", "longer than");
    pattern_bad(x, "", "exactly one %u");
    drv_pattern_name("vc%u", 42, name);
    assert_string_equal(name, "vc42");
    drv_pattern_name("vc%%%u", 4094, name);
    assert_string_equal(name, "vc%4094");
}

static void subif_names(void **state)
{
    (void)state;
    char name[IFNAMSIZ];
    assert_int_equal(drv_subif_name("eth1", 42, name), 0);
    assert_string_equal(name, "eth1.42");
    assert_int_equal(drv_subif_name("abcdefghij", 4094, name), 0);
    assert_string_equal(name, "abcdefghij.4094");
    assert_int_equal(drv_subif_name("abcdefghijk", 4094, name), -ENAMETOOLONG);
    assert_int_equal(drv_subif_name("abcdefghijk", 409, name), 0);
}

static void marks_parse(void **state)
{
    struct fx *x = *state;
    assert_int_equal(drv_mark_parse("virtcloud:cluster=web-1:vlan=42", &x->m),
                     DRV_MARK_CLUSTER);
    assert_string_equal(x->m.name, "web-1");
    assert_int_equal(x->m.vid, 42);
    assert_int_equal(x->m.idx, 0);
    assert_int_equal(
        drv_mark_parse("virtcloud:cluster=c:vlan=4094:idx=18446744073709551615",
                       &x->m),
        DRV_MARK_CLUSTER);
    assert_true(x->m.idx == UINT64_MAX);
    assert_int_equal(
        drv_mark_parse("virtcloud:qinq=br0:svlan=100:idx=7", &x->m),
        DRV_MARK_QINQ);
    assert_string_equal(x->m.name, "br0");
    assert_int_equal(x->m.vid, 100);
    assert_int_equal(x->m.idx, 7);
}

static void marks_foreign(void **state)
{
    struct fx *x = *state;
    assert_int_equal(drv_mark_parse(NULL, &x->m), DRV_MARK_NONE);
    assert_int_equal(drv_mark_parse("", &x->m), DRV_MARK_NONE);
    assert_int_equal(drv_mark_parse("uplink to core", &x->m), DRV_MARK_NONE);
    assert_int_equal(drv_mark_parse("VirtCloud:cluster=a:vlan=1", &x->m),
                     DRV_MARK_NONE);
    static const char *other[] = {
        "virtcloud:",
        "virtcloud:cluster=a",
        "virtcloud:cluster=a:vlan=",
        "virtcloud:cluster=a:vlan=0",
        "virtcloud:cluster=a:vlan=4095",
        "virtcloud:cluster=a:vlan=042",
        "virtcloud:cluster=a:vlan=+42",
        "virtcloud:cluster=a:vlan=42:",
        "virtcloud:cluster=a:vlan=42:idx=",
        "virtcloud:cluster=a:vlan=42:idx=0",
        "virtcloud:cluster=a:vlan=42:idx=18446744073709551616",
        "virtcloud:cluster=a:vlan=42:idx=1:x=y",
        "virtcloud:cluster=a:vlan=42:owner=bob",
        "virtcloud:cluster=-a:vlan=42",
        "virtcloud:cluster=a b:vlan=42",
        "virtcloud:vlan=42:cluster=a",
        "virtcloud:qinq=br0:vlan=5",
        "virtcloud:qinq=b/r:svlan=5",
        "virtcloud:site=x",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        if (drv_mark_parse(other[i], &x->m) != DRV_MARK_OTHER)
            fail_msg("\"%s\" should be a mark we do not know", other[i]);
}

static void marks_format(void **state)
{
    struct fx *x = *state;
    char buf[DRV_ALIAS_MAX + 1], small[16];
    struct drv_mark m = {.kind = DRV_MARK_CLUSTER, .vid = 42};
    strcpy(m.name, "c1");
    assert_int_equal(drv_mark_format(&m, buf, sizeof buf), 0);
    assert_string_equal(buf, "virtcloud:cluster=c1:vlan=42");
    m.idx = 99;
    assert_int_equal(drv_mark_format(&m, buf, sizeof buf), 0);
    assert_string_equal(buf, "virtcloud:cluster=c1:vlan=42:idx=99");
    assert_int_equal(drv_mark_format(&m, small, sizeof small), -ENAMETOOLONG);
    /* The longest mark fits DRV_ALIAS_MAX. */
    memset(m.name, 'n', VC_NAME_MAX);
    m.name[VC_NAME_MAX] = '\0';
    m.vid = 4094;
    m.idx = UINT64_MAX;
    assert_int_equal(drv_mark_format(&m, buf, sizeof buf), 0);
    /* Round trip, and sameness ignores idx. */
    assert_int_equal(drv_mark_parse(buf, &x->m), DRV_MARK_CLUSTER);
    assert_true(drv_mark_same(&m, &x->m));
    x->m.idx = 1;
    assert_true(drv_mark_same(&m, &x->m));
    x->m.vid = 4093;
    assert_false(drv_mark_same(&m, &x->m));
    struct drv_mark q = {.kind = DRV_MARK_QINQ, .vid = 100};
    strcpy(q.name, "br0");
    assert_int_equal(drv_mark_format(&q, buf, sizeof buf), 0);
    assert_string_equal(buf, "virtcloud:qinq=br0:svlan=100");
}

static void host_cfg(void **state)
{
    struct fx *x = *state;
    assert_int_equal(drv_host_cfg_parse(&x->hc, "", x->err, sizeof x->err), 0);
    assert_string_equal(x->hc.pattern, "vc%u");
    assert_int_equal(x->hc.trash_group, DRV_TRASH_GROUP);
    assert_int_equal(drv_host_cfg_parse(&x->hc, "bridge=br-%u:group=0x10",
                                        x->err, sizeof x->err),
                     0);
    assert_string_equal(x->hc.pattern, "br-%u");
    assert_int_equal(x->hc.trash_group, 16);
    assert_int_equal(
        drv_host_cfg_parse(&x->hc, "group=0", x->err, sizeof x->err), 0);
    assert_int_equal(x->hc.trash_group, 0);
    assert_int_equal(
        drv_host_cfg_parse(&x->hc, "group=-1", x->err, sizeof x->err), -EINVAL);
    assert_contains(x->err, "group \"-1\"");
    assert_int_equal(
        drv_host_cfg_parse(&x->hc, "group=4294967296", x->err, sizeof x->err),
        -EINVAL);
    assert_int_equal(
        drv_host_cfg_parse(&x->hc, "bridge=vc%d", x->err, sizeof x->err),
        -EINVAL);
    assert_contains(x->err, "bridge pattern \"vc%d\"");
    assert_int_equal(
        drv_host_cfg_parse(&x->hc, "speed=10", x->err, sizeof x->err), -EINVAL);
    assert_contains(x->err, "\"speed=10\": unknown option");
}

static void switch_bad(struct fx *x, const char *args, const char *why)
{
    x->err[0] = '\0';
    assert_int_equal(drv_switch_cfg_parse(&x->sc, args, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, why);
    assert_null(x->sc.ports);
}

static void switch_cfg(void **state)
{
    struct fx *x = *state;
    assert_int_equal(drv_switch_cfg_parse(&x->sc,
                                          "br0:uplink=up0:h2=swp2:h1=swp1",
                                          x->err, sizeof x->err),
                     0);
    assert_string_equal(x->sc.bridge, "br0");
    assert_string_equal(x->sc.uplink, "up0");
    assert_int_equal(x->sc.nports, 2);
    assert_string_equal(x->sc.ports[0].host, "h1"); /* sorted by host */
    assert_string_equal(x->sc.ports[0].port, "swp1");
    drv_switch_cfg_close(&x->sc);
    assert_int_equal(
        drv_switch_cfg_parse(&x->sc, "br0:uplink=up0", x->err, sizeof x->err),
        0);
    assert_int_equal(x->sc.nports, 0);
    drv_switch_cfg_close(&x->sc);
    switch_bad(x, "", "bridge \"\"");
    switch_bad(x, "br0", "uplink=PORT missing");
    switch_bad(x, "br0:h1=swp1", "uplink=PORT missing");
    switch_bad(x, "br0:uplink=a:uplink=b", "one uplink=PORT");
    switch_bad(x, "br0:uplink=up0:h1=swp1:h1=swp2", "host h1: listed twice");
    switch_bad(x, "br0:uplink=up0:h1=up0", "port up0 is the uplink");
    switch_bad(x, "br0:uplink=br0", "is the bridge");
    switch_bad(x, "br0:uplink=up0:-h=swp1", "host \"-h\"");
    switch_bad(x, "br0:uplink=up0:h1=a-very-long-portname",
               "port \"a-very-long-portname\"");
    switch_bad(x, "br0:uplink=up0:h1", "expected uplink=PORT or HOST=PORT");
}

static void open_errors(void **state)
{
    struct fx *x = *state;
    struct drv *d = (struct drv *)1;
    assert_int_equal(drv_open("nope:x", &d, x->err, sizeof x->err), -EINVAL);
    assert_null(d);
    assert_contains(x->err, "driver \"nope\": unknown");
    assert_int_equal(drv_open("dryrun:fast", &d, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, "dryrun: latency \"fast\"");
    assert_int_equal(drv_open("dryrun:0:2", &d, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, "fail rate \"2\"");
    assert_int_equal(drv_open("host:bridge=%u%u", &d, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, "host: bridge pattern");
    assert_int_equal(drv_open("linuxbridge:br0", &d, x->err, sizeof x->err),
                     -EINVAL);
    assert_contains(x->err, "linuxbridge: bridge br0: uplink=PORT missing");
    drv_close(NULL);
}

static void open_roles(void **state)
{
    struct fx *x = *state;
    struct drv *d;
    struct drv_switch_state s = {0};
    assert_int_equal(drv_open("dryrun:0:0.5:7", &d, x->err, sizeof x->err), 0);
    assert_string_equal(drv_label(d), "dryrun");
    assert_ptr_equal(drv_class_of(d), &drv_dryrun_class);
    drv_close(d);
    /* The host back-end has no switch role: refused before any I/O. */
    assert_int_equal(drv_open("host", &d, x->err, sizeof x->err), 0);
    assert_int_equal(drv_switch_apply(d, &s, NULL, x->err, sizeof x->err),
                     -EOPNOTSUPP);
    assert_contains(x->err, "host: cannot act as a switch");
    drv_close(d);
}

static void errwrap(void **state)
{
    (void)state;
    char buf[32] = "inner";
    drv_errwrap(buf, sizeof buf, "vlan %u", 42);
    drv_errwrap(buf, sizeof buf, "switch %s", "sw-a1");
    assert_string_equal(buf, "switch sw-a1: vlan 42: inner");
    /* Truncation keeps the outer context and a terminated string. */
    drv_errwrap(buf, sizeof buf, "a rather long outer prefix");
    assert_int_equal(strlen(buf), sizeof buf - 1);
    assert_true(strncmp(buf, "a rather long outer prefix: ", 28) == 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(patterns),     T(subif_names), T(marks_parse), T(marks_foreign),
        T(marks_format), T(host_cfg),    T(switch_cfg),  T(open_errors),
        T(open_roles),   T(errwrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
