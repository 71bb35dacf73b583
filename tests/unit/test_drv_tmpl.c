/* drivers/drv_tmpl and the ssh driver's rendering: golden files of every
 * built-in vendor's every operation (tests/unit/golden/ssh/VENDOR/OP.txt)
 * and of one whole batch per vendor (batch.txt), value validation against
 * command injection, bounded output, INI overrides and their checks, and
 * prompt/error classification per vendor.
 *
 *   test_drv_tmpl GOLDEN_DIR
 * With VC_GOLDEN_UPDATE=1 in the environment the golden files are
 * (re)written instead of compared: review the diff before committing.
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
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/drv.h"
#include "drivers/drv_ssh.h"
#include "drivers/drv_swcli.h"
#include "drivers/drv_tmpl.h"
#include "testlib.h"

static const char *golden_dir;

struct fx {
    struct drv_tmpl_set s;
    char err[DRV_ERRMSG_MAX];
    char out[8192];
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    if (drv_tmpl_set_load(&x->s, NULL, x->err, sizeof x->err) != 0) {
        fprintf(stderr, "built-ins refused: %s\n", x->err);
        drv_tmpl_set_close(&x->s);
        free(x);
        return -1;
    }
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    drv_tmpl_set_close(&x->s);
    free(x);
    return 0;
}

/* --- golden files ------------------------------------------------------ */

static const struct {
    const char *vendor;
    const char *port, *port2; /* as an operator writes them for it */
} vendors[] = {
    {"cisco_ios", "GigabitEthernet1/0/7", "GigabitEthernet1/0/48"},
    {"hp_procurve", "A7", "B24"},
    {"dell_force10", "TenGigabitEthernet 0/7", "TenGigabitEthernet 0/48"},
    {"juniper_junos", "ge-0/0/7", "xe-0/1/0"},
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Compares text (+ "\n") with golden file VENDOR/NAME.txt, or writes it. */
static void golden(const char *vendor, const char *name, const char *text)
{
    char path[512], want[16384];
    snprintf(path, sizeof path, "%s/%s", golden_dir, vendor);
    snprintf(want, sizeof want, "%s%s", text,
             text[0] && text[strlen(text) - 1] != '\n' ? "\n" : "");
    if (getenv("VC_GOLDEN_UPDATE")) {
        mkdir(golden_dir, 0755);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/%s/%s.txt", golden_dir, vendor, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(want, f);
        fclose(f);
        return;
    }
    snprintf(path, sizeof path, "%s/%s/%s.txt", golden_dir, vendor, name);
    char *have = slurp(path);
    if (!have)
        fail_msg("golden file %s missing (VC_GOLDEN_UPDATE=1 writes it)", path);
    if (strcmp(have, want) != 0) {
        fprintf(stderr, "--- %s\n%s--- rendered\n%s", path, have, want);
        free(have);
        fail_msg("%s differs from the rendering", path);
    }
    free(have);
}

static void golden_ops(void **state)
{
    struct fx *x = *state;
    for (size_t i = 0; i < sizeof vendors / sizeof *vendors; i++) {
        const struct drv_tmpl_vendor *v =
            drv_tmpl_find(&x->s, vendors[i].vendor);
        assert_non_null(v);
        struct drv_tmpl_args a = {42, "vc-tenant-a", vendors[i].port};
        for (int op = 0; op < DRV_TMPL_NOPS; op++) {
            int rc = drv_tmpl_render(v, op, &a, x->out, sizeof x->out, x->err,
                                     sizeof x->err);
            if (rc < 0)
                fail_msg("%s %s: %s", v->name, drv_tmpl_op_name(op), x->err);
            golden(v->name, drv_tmpl_op_name(op), x->out);
        }
    }
}

/* One batch as the driver plans it: create 42 and trunk it on a host
 * port and the uplink, take 41 off the host port and delete it. */
static void golden_batch(void **state)
{
    struct fx *x = *state;
    for (size_t i = 0; i < sizeof vendors / sizeof *vendors; i++) {
        const struct drv_tmpl_vendor *v =
            drv_tmpl_find(&x->s, vendors[i].vendor);
        const char *ports[] = {vendors[i].port2, vendors[i].port};
        const char *hosts[] = {NULL, "h1"};
        struct drv_swcfg c = {"vc-", ports, hosts, 2};
        struct drv_swop ops[] = {
            {DRV_TMPL_ADD_NETWORK, 42, -1, "vc-tenant-a"},
            {DRV_TMPL_ADD_NETWORK_TO_TRUNK, 42, 0, "vc-tenant-a"},
            {DRV_TMPL_ADD_NETWORK_TO_TRUNK, 42, 1, "vc-tenant-a"},
            {DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK, 41, 1, "vc-old"},
            {DRV_TMPL_DELETE_NETWORK, 41, -1, "vc-old"},
        };
        struct drv_swplan p = {ops, 5, 5};
        int rc = drv_ssh_script(v, &c, &p, x->out, sizeof x->out, x->err,
                                sizeof x->err);
        if (rc < 0)
            fail_msg("%s batch: %s", v->name, x->err);
        golden(v->name, "batch", x->out);
        /* Configuration mode once, save once. */
        const char *save = v->ops[DRV_TMPL_SAVE_CONFIGURATION];
        const char *first = strstr(x->out, save);
        assert_non_null(first);
        assert_null(strstr(first + 1, save));
        p.n = 0;
        assert_int_equal(drv_ssh_script(v, &c, &p, x->out, sizeof x->out,
                                        x->err, sizeof x->err),
                         0);
        assert_string_equal(x->out, "");
    }
}

/* --- validation ----------------------------------------------------------- */

static int render(struct fx *x, const char *vendor, int op, unsigned vid,
                  const char *name, const char *port)
{
    struct drv_tmpl_args a = {vid, name, port};
    x->err[0] = '\0';
    return drv_tmpl_render(drv_tmpl_find(&x->s, vendor), op, &a, x->out,
                           sizeof x->out, x->err, sizeof x->err);
}

static void injection(void **state)
{
    struct fx *x = *state;
    int add = DRV_TMPL_ADD_NETWORK, trunk = DRV_TMPL_ADD_NETWORK_TO_TRUNK;
    assert_true(render(x, "cisco_ios", add, 42, "vc-a", NULL) > 0);
    assert_int_equal(render(x, "cisco_ios", add, 0, "vc-a", NULL), -EINVAL);
    assert_contains(x->err, "{segmentation_id} = 0");
    assert_int_equal(render(x, "cisco_ios", add, 4095, "vc-a", NULL), -EINVAL);
    assert_int_equal(render(x, "cisco_ios", add, 42, "vc-a\nreload", NULL),
                     -EINVAL);
    assert_contains(x->err, "{network_name}");
    assert_string_equal(x->out, "");
    assert_int_equal(render(x, "cisco_ios", add, 42, "vc a", NULL), -EINVAL);
    assert_int_equal(render(x, "cisco_ios", add, 42, "1abc", NULL), -EINVAL);
    assert_int_equal(render(x, "cisco_ios", add, 42,
                            "vc-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL),
                     -EINVAL); /* 33 bytes */
    assert_int_equal(render(x, "juniper_junos", add, 42, "vc-a;b", NULL),
                     -EINVAL);
    assert_int_equal(render(x, "cisco_ios", trunk, 42, "vc-a", "Gi0/1\nreload"),
                     -EINVAL);
    assert_contains(x->err, "{port}");
    assert_int_equal(render(x, "cisco_ios", trunk, 42, "vc-a", "Gi0/1 | x"),
                     -EINVAL);
    assert_int_equal(render(x, "cisco_ios", trunk, 42, "vc-a", " Gi0/1"),
                     -EINVAL);
    assert_int_equal(render(x, "cisco_ios", trunk, 42, "vc-a", "Te  0/1"),
                     -EINVAL);
    assert_int_equal(render(x, "cisco_ios", trunk, 42, "vc-a", NULL), -EINVAL);
    assert_true(render(x, "dell_force10", trunk, 42, "vc-a",
                       "TenGigabitEthernet 0/1") > 0);
    assert_contains(x->out, "tagged TenGigabitEthernet 0/1");
}

static void bounded(void **state)
{
    struct fx *x = *state;
    struct drv_tmpl_args a = {42, "vc-a", "Gi0/1"};
    char small[12];
    memset(small, 'z', sizeof small);
    int rc = drv_tmpl_render(drv_tmpl_find(&x->s, "cisco_ios"),
                             DRV_TMPL_ADD_NETWORK_TO_TRUNK, &a, small,
                             sizeof small, x->err, sizeof x->err);
    assert_int_equal(rc, -ENOSPC);
    assert_string_equal(small, "");
    assert_contains(x->err, "exceed 11 bytes");
    /* Exactly fitting output is fine: "no vlan 42" is 10 bytes. */
    rc = drv_tmpl_render(drv_tmpl_find(&x->s, "cisco_ios"),
                         DRV_TMPL_DELETE_NETWORK, &a, small, 11, x->err,
                         sizeof x->err);
    assert_int_equal(rc, 10);
    assert_string_equal(small, "no vlan 42");
    assert_int_equal(drv_tmpl_render(drv_tmpl_find(&x->s, "cisco_ios"), 99, &a,
                                     small, sizeof small, x->err,
                                     sizeof x->err),
                     -EINVAL);
}

/* --- INI overrides
 * ------------------------------------------------------------ */

/* Parses text over fresh built-ins (a failed parse spoils the set). */
static int parse(struct fx *x, const char *text)
{
    x->err[0] = '\0';
    drv_tmpl_set_close(&x->s);
    assert_int_equal(drv_tmpl_set_load(&x->s, NULL, x->err, sizeof x->err), 0);
    return drv_tmpl_set_parse(&x->s, text, "t.ini", x->err, sizeof x->err);
}

static void overrides(void **state)
{
    struct fx *x = *state;
    assert_int_equal(
        parse(x, "; ported from an NGS profile\n"
                 "[cisco_ios]\n"
                 "SAVE_CONFIGURATION = copy running-config startup-config\n"
                 "\n"
                 "[lab_ios]\n"
                 "inherit = cisco_ios\n"
                 "ADD_NETWORK = vlan {segmentation_id}\n"
                 "    name {network_id}\n"
                 "# a comment ends nothing\n"
                 "    state active\n"
                 "error = ^ERROR\n"
                 "        ^FAIL\n"),
        0);
    const struct drv_tmpl_vendor *ios = drv_tmpl_find(&x->s, "cisco_ios");
    const struct drv_tmpl_vendor *lab = drv_tmpl_find(&x->s, "lab_ios");
    assert_non_null(lab);
    assert_string_equal(ios->ops[DRV_TMPL_SAVE_CONFIGURATION],
                        "copy running-config startup-config");
    assert_string_equal(ios->ops[DRV_TMPL_DELETE_NETWORK],
                        "no vlan {segmentation_id}");
    assert_true(render(x, "lab_ios", DRV_TMPL_ADD_NETWORK, 7, "vc-x", NULL) >
                0);
    assert_string_equal(x->out, "vlan 7\nname vc-x\nstate active");
    assert_true(drv_tmpl_is_error(lab, "ERROR: no"));
    assert_false(drv_tmpl_is_error(lab, "% Invalid input")); /* replaced */
    assert_true(drv_tmpl_is_error(lab, "FAIL"));
    assert_true(drv_tmpl_is_prompt(lab, "lab1(config)#"));
    /* Literal braces. */
    assert_int_equal(parse(x, "[lab_ios]\ninherit = cisco_ios\n"
                              "SAVE_CONFIGURATION = echo {{x}}\n"),
                     0);
    assert_true(
        render(x, "lab_ios", DRV_TMPL_SAVE_CONFIGURATION, 0, NULL, NULL) > 0);
    assert_string_equal(x->out, "echo {x}");
}

static void override_errors(void **state)
{
    struct fx *x = *state;
    assert_int_equal(parse(x, "[cisco_ios]\nADD_NETWORK = vlan {vlan}\n"),
                     -EINVAL);
    assert_contains(x->err, "ADD_NETWORK: placeholder {vlan}: unknown");
    assert_int_equal(
        parse(x, "[cisco_ios]\nADD_NETWORK = vlan {segmentation_id}\n"), 0);
    assert_int_equal(parse(x, "[cisco_ios]\nDELETE_NETWORK = no {port}\n"),
                     -EINVAL);
    assert_contains(x->err, "{port}: this operation has no value for it");
    assert_int_equal(parse(x, "[cisco_ios]\nDELETE_NETWORK = no vlan 1\n"
                              "SHOW_VLANS = x {segmentation_id\n"),
                     -EINVAL);
    assert_contains(x->err, "unbalanced '{'");
    assert_int_equal(parse(x, "[cisco_ios]\n\nfoo = bar\n"), -EINVAL);
    assert_contains(x->err, "t.ini:3: key \"foo\": unknown");
    assert_int_equal(parse(x, "[x]\ndialect = ios\ninherit = cisco_ios\n"),
                     -EINVAL);
    assert_contains(x->err, "inherit must be the section's first key");
    assert_int_equal(parse(x, "[y]\ninherit = nope\n"), -EINVAL);
    assert_int_equal(parse(x, "[z]\ndialect = ios\nprompt = #\n"), -EINVAL);
    assert_contains(x->err, "[z]: no ADD_NETWORK");
    assert_int_equal(parse(x, "[w]\ninherit = cisco_ios\nprompt = ([\n"),
                     -EINVAL);
    assert_contains(x->err, "prompt");
    assert_int_equal(parse(x, "[Bad Name]\n"), -EINVAL);
    assert_int_equal(parse(x, "  indented = first\n"), -EINVAL);
    assert_int_equal(parse(x, "key = outside\n"), -EINVAL);
    assert_int_equal(parse(x, "[v]\ninherit = juniper_junos\nSHOW_PORT =\n"),
                     -EINVAL);
    assert_contains(x->err, "needs SHOW_PORT with {port}");
    assert_int_equal(parse(x, "[u]\ninherit = cisco_ios\ndialect = vms\n"),
                     -EINVAL);
}

static void load_file(void **state)
{
    struct fx *x = *state;
    drv_tmpl_set_close(&x->s);
    assert_int_equal(
        drv_tmpl_set_load(&x->s, "/nonexistent/t.ini", x->err, sizeof x->err),
        -ENOENT);
    assert_contains(x->err, "/nonexistent/t.ini");
    drv_tmpl_set_close(&x->s);
    char path[] = "/tmp/vc-tmpl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[juniper_junos]\nCONFIG_MODE = configure exclusive\n", f);
    fclose(f);
    assert_int_equal(drv_tmpl_set_load(&x->s, path, x->err, sizeof x->err), 0);
    unlink(path);
    assert_string_equal(
        drv_tmpl_find(&x->s, "juniper_junos")->ops[DRV_TMPL_CONFIG_MODE],
        "configure exclusive");
    assert_non_null(drv_tmpl_find(&x->s, "hp_procurve"));
}

/* --- prompts and errors per vendor
 * ------------------------------------------------ */

static void classify(void **state)
{
    struct fx *x = *state;
    const struct drv_tmpl_vendor *ios = drv_tmpl_find(&x->s, "cisco_ios");
    const struct drv_tmpl_vendor *hp = drv_tmpl_find(&x->s, "hp_procurve");
    const struct drv_tmpl_vendor *f10 = drv_tmpl_find(&x->s, "dell_force10");
    const struct drv_tmpl_vendor *jun = drv_tmpl_find(&x->s, "juniper_junos");
    assert_true(drv_tmpl_is_prompt(ios, "sw1#"));
    assert_true(drv_tmpl_is_prompt(ios, "sw1>"));
    assert_true(drv_tmpl_is_prompt(ios, "sw1(config-if)#"));
    assert_false(drv_tmpl_is_prompt(ios, "vlan 42"));
    assert_false(drv_tmpl_is_prompt(ios, "1    default   active    Gi0/1"));
    assert_true(drv_tmpl_is_error(ios, "% Invalid input detected at '^' "
                                       "marker."));
    assert_true(drv_tmpl_is_error(ios, "% Incomplete command."));
    assert_false(drv_tmpl_is_error(ios, "42   vc-a   active"));
    assert_true(drv_tmpl_is_more(ios, " --More-- "));
    assert_true(drv_tmpl_is_prompt(hp, "HP-2920-48G(vlan-42)# "));
    assert_true(drv_tmpl_is_error(hp, "Invalid input: tagd"));
    assert_true(drv_tmpl_is_more(hp, "Press any key to continue"));
    assert_true(drv_tmpl_is_prompt(f10, "Force10(conf-if-vl-42)#"));
    assert_true(drv_tmpl_is_error(f10, "% Error: Invalid input at \"^\" "
                                       "marker."));
    assert_true(drv_tmpl_is_prompt(jun, "admin@ex4300> "));
    assert_true(drv_tmpl_is_prompt(jun, "admin@ex4300# "));
    assert_false(drv_tmpl_is_prompt(jun, "[edit]"));
    assert_true(drv_tmpl_is_error(jun, "error: configuration check-out "
                                       "failed"));
    assert_true(drv_tmpl_is_error(jun, "syntax error."));
    assert_true(drv_tmpl_is_more(jun, "---(more 42%)---"));
    assert_false(drv_tmpl_is_error(jun, "commit complete"));
}

int main(int argc, char **argv)
{
    golden_dir = argc > 1 ? argv[1] : "tests/unit/golden/ssh";
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(golden_ops), T(golden_batch),    T(injection), T(bounded),
        T(overrides),  T(override_errors), T(load_file), T(classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
