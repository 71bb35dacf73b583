/* agent/config.c: drop-in order and precedence, the one-file duplicate
 * rule, and config_apply_live() (what a SIGHUP reload may change).
 * Files live in a fresh temporary directory per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/log.h"
#include "testlib.h"

struct fx {
    char dir[64];
    char main[128];
    char err[512];
    struct config c;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/vc-unit-config-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->main, sizeof f->main, "%s/agent.conf", f->dir);
    *state = f;
    return 0;
}

static void put(struct fx *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/conf.d", f->dir);
    mkdir(path, 0700); /* EEXIST is fine */
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Loads the main file plus the flags every configuration needs. */
static int load(struct fx *f, struct config *c)
{
    char *argv[] = {"virtcloud-agent", "--config", f->main, "--site", "brno",
                    "--data-dir", "/nonexistent", "--peer",
                    "127.0.0.1:7801", "--vlans", "100-199", NULL};
    f->err[0] = '\0';
    return config_load(c, 11, argv, f->err, sizeof f->err);
}

static void dropins_in_lexical_order(void **state)
{
    struct fx *f = *state;
    put(f, "agent.conf", "log-level = error\ndrift = off\n"
                         "election-timeout = 300\n");
    put(f, "conf.d/20-b.conf", "log-level = debug\n");
    put(f, "conf.d/10-a.conf", "log-level = warn\ndrift = report\n");
    put(f, "conf.d/09-z.conf.off", "colour = blue\n");
    put(f, "conf.d/.hidden.conf", "colour = blue\n");
    assert_int_equal(load(f, &f->c), 0);
    assert_int_equal(f->c.log_level, LOG_DEBUG); /* 20-b after 10-a */
    assert_int_equal(f->c.drift, 1);             /* report, from 10-a */
    assert_int_equal(f->c.election_timeout_ms, 300);
    assert_contains(f->c.sources, "agent.conf, ");
    assert_non_null(strstr(f->c.sources, "10-a.conf"));
    assert_true(strstr(f->c.sources, "10-a.conf") <
                strstr(f->c.sources, "20-b.conf"));
    assert_null(strstr(f->c.sources, "09-z"));
}

/* Many drop-ins created out of order: read in byte order whatever order
 * the directory lists them in, and the last one wins. */
static void many_dropins_sorted(void **state)
{
    struct fx *f = *state;
    static const char *names[] = {"50-m.conf", "05-b.conf", "99-z.conf",
                                  "10-c.conf", "A.conf",    "a.conf",
                                  "07-x.conf", "70-q.conf", "1.conf"};
    char name[64], text[64], want[2048];
    put(f, "agent.conf", "reconcile-interval = 100\n");
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(name, sizeof name, "conf.d/%s", names[i]);
        snprintf(text, sizeof text, "reconcile-interval = %u\n", 1000 + i);
        put(f, name, text);
    }
    assert_int_equal(load(f, &f->c), 0);
    /* Byte order: digits < upper case < lower case; "a.conf" is last. */
    assert_int_equal(f->c.reconcile_interval_ms, 1005);
    snprintf(want, sizeof want, "%s/agent.conf", f->dir);
    static const char *sorted[] = {"05-b.conf", "07-x.conf", "1.conf",
                                   "10-c.conf", "50-m.conf", "70-q.conf",
                                   "99-z.conf", "A.conf",    "a.conf"};
    for (unsigned i = 0; i < sizeof sorted / sizeof sorted[0]; i++) {
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, ", %s/conf.d/%s", f->dir,
                 sorted[i]);
    }
    assert_string_equal(f->c.sources, want);
}

static void duplicate_in_one_file(void **state)
{
    struct fx *f = *state;
    put(f, "agent.conf", "drift = off\n\ndrift = report\n");
    assert_int_equal(load(f, &f->c), VC_EINVAL);
    assert_contains(f->err, "agent.conf:3: duplicate key \"drift\"");
    assert_contains(f->err, "line 1");
}

static void duplicate_in_a_dropin(void **state)
{
    struct fx *f = *state;
    put(f, "agent.conf", "drift = off\n");
    put(f, "conf.d/10-x.conf", "drift = report\nlog-level = info\n"
                               "drift = repair\n");
    assert_int_equal(load(f, &f->c), VC_EINVAL);
    assert_contains(f->err, "conf.d/10-x.conf:3: duplicate key \"drift\"");
}

static void flags_win_over_dropins(void **state)
{
    struct fx *f = *state;
    char *argv[] = {"virtcloud-agent", "--config", f->main, "--site", "brno",
                    "--data-dir", "/nonexistent", "--peer",
                    "127.0.0.1:7801", "--vlans", "100-199", "--log-level",
                    "info", NULL};
    put(f, "agent.conf", "log-level = error\n");
    put(f, "conf.d/10-a.conf", "log-level = debug\n");
    assert_int_equal(config_load(&f->c, 13, argv, f->err, sizeof f->err), 0);
    assert_int_equal(f->c.log_level, LOG_INFO);
}

struct change {
    char key[32], old[64], new[64];
    bool live;
};

struct changes {
    struct change c[8];
    unsigned n;
};

static void record(void *data, const char *key, const char *old,
                   const char *new, bool live)
{
    struct changes *ch = data;
    assert_true(ch->n < 8);
    struct change *c = &ch->c[ch->n++];
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->old, sizeof c->old, "%s", old);
    snprintf(c->new, sizeof c->new, "%s", new);
    c->live = live;
}

static void reload_applies_live_keys_only(void **state)
{
    struct fx *f = *state;
    struct config *next = malloc(sizeof *next);
    struct changes ch = {0};
    assert_non_null(next);
    put(f, "agent.conf", "log-level = info\ndrift = repair\n"
                         "election-timeout = 200\n");
    assert_int_equal(load(f, &f->c), 0);
    put(f, "agent.conf", "log-level = debug\ndrift = report\n"
                         "election-timeout = 400\nmax-batch = 7\n");
    assert_int_equal(load(f, next), 0);
    assert_int_equal(config_apply_live(&f->c, next, record, &ch), 1);
    assert_int_equal(f->c.log_level, LOG_DEBUG);
    assert_int_equal(f->c.drift, 1);
    assert_int_equal(f->c.max_batch, 7);
    assert_int_equal(f->c.election_timeout_ms, 200); /* needs a restart */
    assert_int_equal(ch.n, 4);
    for (unsigned i = 0; i < ch.n; i++) {
        bool restart = !strcmp(ch.c[i].key, "election-timeout");
        assert_int_equal(ch.c[i].live, !restart);
        if (restart) {
            assert_string_equal(ch.c[i].old, "200");
            assert_string_equal(ch.c[i].new, "400");
        }
    }
    /* Nothing differs any more but the refused key. */
    ch.n = 0;
    assert_int_equal(config_apply_live(&f->c, next, record, &ch), 1);
    assert_int_equal(ch.n, 1);
    free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(dropins_in_lexical_order),
        T(many_dropins_sorted),
        T(duplicate_in_one_file),
        T(duplicate_in_a_dropin),
        T(flags_win_over_dropins),
        T(reload_applies_live_keys_only),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
