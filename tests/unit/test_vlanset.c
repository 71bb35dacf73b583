/* proto/vlanset: parsing, canonical formatting, counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "proto/vlanset.h"

/* Longest canonical text: every other ID, "1,3,5,...,4093" < 20000 bytes. */
#define TEXT_MAX 20000

struct fx {
    struct vlanset a, b;
    char err[256];
    char text[TEXT_MAX];
    char *scratch; /* exact-size buffer of the current check, or NULL */
    struct rng rng;
};

/* Replaces x->scratch by a fresh buffer of exactly len bytes, so ASan
 * catches any write past len; teardown frees the last one. */
static char *scratch(struct fx *x, size_t len)
{
    free(x->scratch);
    x->scratch = malloc(len ? len : 1);
    assert_non_null(x->scratch);
    return x->scratch;
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->rng.s = 0x5eed;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    free(x->scratch);
    free(x);
    return 0;
}

static void parse_ok(struct fx *x, const char *text)
{
    x->err[0] = '\0';
    if (vlanset_parse(&x->a, text, x->err, sizeof x->err) != 0)
        fail_msg("parse \"%s\": %s", text, x->err);
}

static void parse_ranges(void **state)
{
    struct fx *x = *state;
    parse_ok(x, "100-999,2000-2999");
    assert_int_equal(vlanset_count(&x->a), 900 + 1000);
    assert_int_equal(vlanset_first(&x->a), 100);
    assert_false(vlanset_has(&x->a, 99));
    assert_true(vlanset_has(&x->a, 100));
    assert_true(vlanset_has(&x->a, 999));
    assert_false(vlanset_has(&x->a, 1000));
    assert_false(vlanset_has(&x->a, 1999));
    assert_true(vlanset_has(&x->a, 2000));
    assert_true(vlanset_has(&x->a, 2999));
    assert_false(vlanset_has(&x->a, 3000));

    parse_ok(x, "1-4094");
    assert_int_equal(vlanset_count(&x->a), 4094);
    assert_false(vlanset_has(&x->a, 0));
    assert_false(vlanset_has(&x->a, 4095));
}

static void parse_spaces_and_single_ids(void **state)
{
    struct fx *x = *state;
    vlanset_clear(&x->b);
    vlanset_add_range(&x->b, 100, 200);
    vlanset_add(&x->b, 300);
    vlanset_add(&x->b, 42);
    parse_ok(x, "  100 - 200 ,\t300 , 42 ");
    assert_true(vlanset_equal(&x->a, &x->b));

    parse_ok(x, "4094,1,7");
    assert_int_equal(vlanset_count(&x->a), 3);
    assert_int_equal(vlanset_first(&x->a), 1);
    assert_true(vlanset_has(&x->a, 7));
    assert_true(vlanset_has(&x->a, 4094));

    /* Overlapping and repeated items are a union. */
    parse_ok(x, "10-20,15-25,25,10");
    assert_int_equal(vlanset_count(&x->a), 16);
    parse_ok(x, "5-5");
    assert_int_equal(vlanset_count(&x->a), 1);
    assert_int_equal(vlanset_first(&x->a), 5);
}

/* Each bad input must fail with VC_EINVAL, leave no VLAN in the set and
 * name the offending item in quotes. */
static void parse_errors_quote_the_item(void **state)
{
    struct fx *x = *state;
    static const struct {
        const char *text, *quoted;
    } bad[] = {
        {"0", "\"0\""},
        {"4095", "\"4095\""},
        {"100-999,4095", "\"4095\""},
        {"0-10", "\"0-10\""},
        {"100-4095", "\"100-4095\""},
        {"200-100", "\"200-100\""},
        {"10,20-19,30", "\"20-19\""},
        {"abc", "\"abc\""},
        {"100,abc", "\"abc\""},
        {"10x", "\"10x\""},
        {"-5", "\"-5\""},
        {"1-2-3", "\"1-2-3\""},
        {"100-", "\"100-\""},
        {"+5", "\"+5\""},
        {"99999999999999999999", "\"99999999999999999999\""},
        {"4294967396", "\"4294967396\""}, /* 2^32 + 100 */
        {"100;200", "\"100;200\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vlanset_clear(&x->a);
        vlanset_add(&x->a, 7);
        x->err[0] = '\0';
        int rv = vlanset_parse(&x->a, bad[i].text, x->err, sizeof x->err);
        if (rv != VC_EINVAL)
            fail_msg("\"%s\" parsed (%d)", bad[i].text, rv);
        assert_contains(x->err, bad[i].quoted);
        assert_true(vlanset_empty(&x->a));
    }
}

static void parse_rejects_empty_lists(void **state)
{
    struct fx *x = *state;
    static const char *const bad[] = {"", "   ", "\t", "100,", ",100",
                                      "100,,200", " , "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x->err[0] = '\0';
        if (vlanset_parse(&x->a, bad[i], x->err, sizeof x->err) != VC_EINVAL)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_true(x->err[0] != '\0');
        assert_true(vlanset_empty(&x->a));
    }
    vlanset_parse(&x->a, "", x->err, sizeof x->err);
    assert_contains(x->err, "empty");
}

static void parse_error_fits_small_buffers(void **state)
{
    struct fx *x = *state;
    char small[8];
    memset(small, 'Z', sizeof small);
    assert_int_equal(vlanset_parse(&x->a, "garbage-garbage-garbage-garbage",
                                   small, sizeof small),
                     VC_EINVAL);
    assert_true(memchr(small, '\0', sizeof small) != NULL);
}

static void format_canonical(void **state)
{
    struct fx *x = *state;
    parse_ok(x, "2000-2999, 100-999,44,42,43, 7");
    vlanset_format(&x->a, x->text, sizeof x->text);
    assert_string_equal(x->text, "7,42-44,100-999,2000-2999");
    vlanset_clear(&x->a);
    assert_string_equal(vlanset_format(&x->a, x->text, sizeof x->text), "");
    vlanset_add_range(&x->a, 1, 4094);
    assert_string_equal(vlanset_format(&x->a, x->text, sizeof x->text),
                        "1-4094");
    vlanset_clear(&x->a);
    vlanset_add(&x->a, 4094);
    vlanset_add(&x->a, 1);
    vlanset_add(&x->a, 64);
    vlanset_add(&x->a, 63);
    assert_string_equal(vlanset_format(&x->a, x->text, sizeof x->text),
                        "1,63-64,4094");
}

static void random_set(struct fx *x, struct vlanset *s)
{
    vlanset_clear(s);
    switch (rng_below(&x->rng, 4)) {
    case 0: /* sparse bits */
        for (unsigned i = 0, n = rng_below(&x->rng, 200); i < n; i++)
            vlanset_add(s, 1 + rng_below(&x->rng, 4094));
        break;
    case 1: /* a few ranges */
        for (unsigned i = 0, n = 1 + rng_below(&x->rng, 8); i < n; i++) {
            unsigned lo = 1 + rng_below(&x->rng, 4094);
            vlanset_add_range(s, lo, lo + rng_below(&x->rng, 600));
        }
        break;
    case 2: /* dense random words */
        for (int w = 0; w < VLANSET_WORDS; w++)
            s->w[w] = rng_next(&x->rng);
        vlanset_del(s, 0);
        vlanset_del(s, 4095);
        break;
    default: /* everything, with holes at the edges of words */
        vlanset_add_range(s, 1, 4094);
        for (unsigned i = 0, n = rng_below(&x->rng, 10); i < n; i++)
            vlanset_del(s, 64 * rng_below(&x->rng, 64) +
                               (rng_pct(&x->rng, 50) ? 0 : 63));
        break;
    }
}

static void format_parse_round_trip(void **state)
{
    struct fx *x = *state;
    for (int i = 0; i < 2000; i++) {
        random_set(x, &x->a);
        if (i == 0) { /* the longest text there is */
            vlanset_clear(&x->a);
            for (unsigned v = 1; v <= VLAN_MAX; v += 2)
                vlanset_add(&x->a, v);
        }
        if (vlanset_empty(&x->a))
            continue;
        vlanset_format(&x->a, x->text, sizeof x->text);
        assert_null(strstr(x->text, "..."));
        if (vlanset_parse(&x->b, x->text, x->err, sizeof x->err) != 0)
            fail_msg("formatted \"%.60s...\" does not parse: %s", x->text,
                     x->err);
        assert_true(vlanset_equal(&x->a, &x->b));
        assert_int_equal(vlanset_count(&x->a), vlanset_count(&x->b));
    }
}

/* A text that fits is written whole; a short buffer gets a prefix of the
 * full text and "...", never more than len bytes. */
static void format_truncates(void **state)
{
    struct fx *x = *state;
    char full[TEXT_MAX];
    for (int i = 0; i < 500; i++) {
        random_set(x, &x->a);
        vlanset_format(&x->a, full, sizeof full);
        size_t flen = strlen(full);
        size_t len = rng_below(&x->rng, 64);
        char *buf = scratch(x, len);
        vlanset_format(&x->a, len ? buf : NULL, len);
        if (len == 0)
            continue;
        size_t blen = strnlen(buf, len);
        assert_true(blen < len); /* NUL-terminated within len */
        if (flen < len) {
            assert_string_equal(buf, full); /* it fits: no truncation */
        } else if (len >= 4) {
            assert_true(blen >= 3);
            assert_string_equal(buf + blen - 3, "...");
            assert_memory_equal(buf, full, blen - 3);
        }
    }
    /* Every buffer length around short texts. */
    static const char *const sets[] = {"5", "1-4094", "1,3", "100-199,300",
                                       "7,42-44,100-999,2000-2999"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        parse_ok(x, sets[i]);
        size_t flen = strlen(sets[i]);
        for (size_t len = 1; len <= flen + 2; len++) {
            char *buf = scratch(x, len);
            vlanset_format(&x->a, buf, len);
            assert_true(strnlen(buf, len) < len);
            if (flen < len)
                assert_string_equal(buf, sets[i]);
            else if (len >= 4)
                assert_non_null(strstr(buf, "..."));
        }
    }
}

static void count_first_has(void **state)
{
    struct fx *x = *state;
    vlanset_clear(&x->a);
    assert_true(vlanset_empty(&x->a));
    assert_int_equal(vlanset_count(&x->a), 0);
    assert_int_equal(vlanset_first(&x->a), 0);
    vlanset_add(&x->a, 0);    /* out of range: ignored */
    vlanset_add(&x->a, 4095); /* out of range: ignored */
    vlanset_add(&x->a, 9999);
    assert_true(vlanset_empty(&x->a));
    vlanset_add(&x->a, 4094);
    assert_int_equal(vlanset_first(&x->a), 4094);
    vlanset_add(&x->a, 64);
    assert_int_equal(vlanset_first(&x->a), 64);
    vlanset_add(&x->a, 63);
    assert_int_equal(vlanset_first(&x->a), 63);
    assert_int_equal(vlanset_count(&x->a), 3);
    vlanset_del(&x->a, 63);
    assert_int_equal(vlanset_first(&x->a), 64);
    assert_int_equal(vlanset_count(&x->a), 2);
    assert_false(vlanset_has(&x->a, 5000));
    vlanset_add_range(&x->a, 0, 100000); /* clipped to 1..4094 */
    assert_int_equal(vlanset_count(&x->a), 4094);
    assert_int_equal(vlanset_first(&x->a), 1);
    vlanset_clear(&x->b);
    vlanset_add_range(&x->b, 1, 4094);
    assert_true(vlanset_equal(&x->a, &x->b));

    /* Against a plain array on random sets. */
    for (int i = 0; i < 300; i++) {
        unsigned n = 0, first = 0;
        random_set(x, &x->a);
        for (unsigned v = 0; v < 4096; v++)
            if (vlanset_has(&x->a, v)) {
                if (!n)
                    first = v;
                n++;
            }
        assert_int_equal(vlanset_count(&x->a), n);
        assert_int_equal(vlanset_first(&x->a), first);
        assert_int_equal(vlanset_empty(&x->a), n == 0);
    }
}

static int collect(unsigned lo, unsigned hi, void *arg)
{
    struct vlanset *s = arg;
    vlanset_add_range(s, lo, hi);
    return hi >= 3000 ? 7 : 0;
}

static void ranges_visit_and_stop(void **state)
{
    struct fx *x = *state;
    parse_ok(x, "1-2,10,2990-3010,4000-4094");
    vlanset_clear(&x->b);
    /* Stops at the range reaching 3000 and returns the callback's value. */
    assert_int_equal(vlanset_ranges(&x->a, collect, &x->b), 7);
    assert_true(vlanset_has(&x->b, 3010));
    assert_false(vlanset_has(&x->b, 4000));
    assert_int_equal(vlanset_count(&x->b), 2 + 1 + 21);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(parse_ranges),
        T(parse_spaces_and_single_ids),
        T(parse_errors_quote_the_item),
        T(parse_rejects_empty_lists),
        T(parse_error_fits_small_buffers),
        T(format_canonical),
        T(format_parse_round_trip),
        T(format_truncates),
        T(count_first_has),
        T(ranges_visit_and_stop),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
