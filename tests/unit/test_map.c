/* agent/map: the open-addressing name index, above all backward-shift
 * deletion in long probe runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "agent/map.h"

#define KEYS_MAX 20000
#define KEY_LEN 24

/* Keys live in the fixture; the map asks for them by index. */
struct fx {
    struct map m;
    char (*keys)[KEY_LEN];
    bool *in; /* keys[i] is in the map */
    uint32_t n;
    uint32_t *order;
    struct rng rng;
};

static const char *key_of(const void *owner, uint32_t idx, size_t *len)
{
    const struct fx *x = owner;
    assert_true(idx < x->n);
    *len = strlen(x->keys[idx]);
    return x->keys[idx];
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->keys = calloc(KEYS_MAX, sizeof *x->keys);
    x->in = calloc(KEYS_MAX, sizeof *x->in);
    x->order = calloc(KEYS_MAX, sizeof *x->order);
    if (!x->keys || !x->in || !x->order)
        return -1;
    x->rng.s = 0xa11ce;
    map_init(&x->m, key_of, x);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    map_close(&x->m);
    free(x->keys);
    free(x->in);
    free(x->order);
    free(x);
    return 0;
}

static int64_t find(struct fx *x, const char *k)
{
    return map_find(&x->m, k, strlen(k));
}

static void put(struct fx *x, uint32_t i)
{
    assert_int_equal(map_put(&x->m, x->keys[i], strlen(x->keys[i]), i), 0);
    x->in[i] = true;
}

static void del(struct fx *x, uint32_t i)
{
    map_del(&x->m, x->keys[i], strlen(x->keys[i]));
    x->in[i] = false;
}

/* Every key in the map is found at its index, every other key is not. */
static void check_all(struct fx *x)
{
    uint32_t len = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        int64_t got = find(x, x->keys[i]);
        if (x->in[i]) {
            len++;
            if (got != (int64_t)i)
                fail_msg("key %s (index %u) found at %lld", x->keys[i], i,
                         (long long)got);
        } else if (got != -1) {
            fail_msg("deleted key %s found at %lld", x->keys[i],
                     (long long)got);
        }
    }
    assert_int_equal(x->m.len, len);
}

static void shuffle(struct fx *x)
{
    for (uint32_t i = 0; i < x->n; i++)
        x->order[i] = i;
    for (uint32_t i = x->n; i > 1; i--) {
        uint32_t j = rng_below(&x->rng, i), t = x->order[i - 1];
        x->order[i - 1] = x->order[j];
        x->order[j] = t;
    }
}

/* Longest run of occupied slots, counting the wrap from the end of the
 * table to its start. */
static uint32_t longest_run(const struct map *m)
{
    uint32_t best = 0, run = 0;
    for (uint32_t i = 0; i < 2 * m->cap; i++) {
        run = m->slots[i % m->cap].idx1 ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best > m->cap ? m->cap : best;
}

static void natural_keys(struct fx *x, uint32_t n)
{
    x->n = n;
    for (uint32_t i = 0; i < n; i++)
        snprintf(x->keys[i], KEY_LEN, "cluster-%u", i);
}

/* Writes "k" and c in hex into k; returns the length. */
static size_t hex_key(char *k, uint64_t c)
{
    size_t n = 1;
    k[0] = 'k';
    do {
        k[n++] = "0123456789abcdef"[c & 15];
        c >>= 4;
    } while (c);
    k[n] = '\0';
    return n;
}

/* n keys whose hashes, masked with mask, equal one of homes[], so that in
 * every table of up to mask + 1 slots they share a few home slots. */
static void colliding_keys(struct fx *x, uint32_t n, uint32_t mask,
                           const uint32_t *homes, size_t nhomes)
{
    uint64_t c = 0;
    x->n = 0;
    while (x->n < n) {
        char k[KEY_LEN];
        size_t len = hex_key(k, c++);
        uint32_t low = map_hash(k, len) & mask;
        for (size_t h = 0; h < nhomes; h++)
            if (low == homes[h]) {
                memcpy(x->keys[x->n++], k, sizeof k);
                break;
            }
    }
}

static void empty_map(void **state)
{
    struct fx *x = *state;
    natural_keys(x, 3);
    assert_int_equal(find(x, "nothing"), -1);
    assert_int_equal(map_find(&x->m, "", 0), -1);
    /* The hashed calls on a map that never held anything. */
    assert_int_equal(map_find_hashed(&x->m, 12345, "nothing", 7), -1);
    map_del_idx(&x->m, 12345, 0);
    map_del(&x->m, "nothing", 7); /* absent: no effect */
    assert_int_equal(x->m.len, 0);
    put(x, 0);
    del(x, 0);
    assert_int_equal(x->m.len, 0);
    assert_int_equal(find(x, x->keys[0]), -1);
    map_del(&x->m, x->keys[0], strlen(x->keys[0])); /* twice: no effect */
    assert_int_equal(x->m.len, 0);
}

static void put_find_del(void **state)
{
    struct fx *x = *state;
    natural_keys(x, 3);
    put(x, 0);
    put(x, 2);
    assert_int_equal(find(x, "cluster-0"), 0);
    assert_int_equal(find(x, "cluster-2"), 2);
    assert_int_equal(find(x, "cluster-1"), -1);
    assert_int_equal(find(x, "cluster-"), -1);  /* prefix */
    assert_int_equal(find(x, "cluster-00"), -1); /* extension */
    assert_int_equal(map_find(&x->m, "cluster-0x", 9), 0); /* by length */
    del(x, 0);
    assert_int_equal(find(x, "cluster-0"), -1);
    assert_int_equal(find(x, "cluster-2"), 2);
    put(x, 1);
    put(x, 0);
    check_all(x);
    assert_int_equal(map_hash("abc", 3), map_hash("abc", 3));
}

static void grows_and_keeps_every_key(void **state)
{
    struct fx *x = *state;
    natural_keys(x, KEYS_MAX);
    for (uint32_t i = 0; i < x->n; i++) {
        put(x, i);
        if ((i & (i + 1)) == 0) /* after each power of two */
            check_all(x);
    }
    check_all(x);
    assert_true(x->m.len * 2 <= x->m.cap);
}

/* Thousands of keys, deleted in random order; after every few deletes
 * everything left is still found and nothing deleted is. */
static void delete_random_order(void **state)
{
    struct fx *x = *state;
    natural_keys(x, 5000);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++)
        put(x, x->order[i]);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++) {
        del(x, x->order[i]);
        assert_int_equal(find(x, x->keys[x->order[i]]), -1);
        if (i % 25 == 0)
            check_all(x);
    }
    check_all(x);
    assert_int_equal(x->m.len, 0);
}

static void check_some(struct fx *x, uint32_t deleted)
{
    assert_int_equal(find(x, x->keys[deleted]), -1);
    for (int k = 0; k < 8; k++) {
        uint32_t i = rng_below(&x->rng, x->n);
        assert_int_equal(find(x, x->keys[i]), x->in[i] ? (int64_t)i : -1);
    }
}

/* All keys hash to eight home slots around the end of the table, so they
 * form one probe run that wraps to the start: every delete shifts
 * members across the wrap. */
static void delete_under_heavy_collisions(void **state)
{
    struct fx *x = *state;
    static const uint32_t homes[] = {0xfffc, 0xfffd, 0xfffe, 0xffff,
                                     0x0000, 0x0001, 0x0002, 0x0003};
    colliding_keys(x, 2000, 0xffff, homes, 8);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++)
        put(x, x->order[i]);
    check_all(x);
    /* The test only means something if the run really formed. */
    assert_true(longest_run(&x->m) >= x->n);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++) {
        del(x, x->order[i]);
        check_some(x, x->order[i]);
        if (i % 40 == 0)
            check_all(x);
        if (i == x->n / 2) { /* refill half way: holes get reused */
            for (uint32_t j = 0; j < x->n; j += 3)
                if (!x->in[j])
                    put(x, j);
            check_all(x);
        }
    }
    check_all(x);
}

/* Collisions on a single home slot, interleaved puts and deletes. */
static void churn_on_one_home(void **state)
{
    struct fx *x = *state;
    static const uint32_t homes[] = {0x777};
    colliding_keys(x, 600, 0xfff, homes, 1); /* tables up to 4096 slots */
    for (int round = 0; round < 20000; round++) {
        uint32_t i = rng_below(&x->rng, x->n);
        if (x->in[i])
            del(x, i);
        else
            put(x, i);
        if (round % 2000 == 0)
            check_all(x);
    }
    check_all(x);
}

struct pair {
    uint32_t hash, idx;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *p = a, *q = b;
    return p->hash < q->hash ? -1 : p->hash > q->hash;
}

/* Distinct keys with the same full 32-bit hash: the map must tell them
 * apart by comparing the keys. */
static void full_hash_collisions(void **state)
{
    struct fx *x = *state;
    enum { CANDIDATES = 400000 };
    struct pair *p = malloc(CANDIDATES * sizeof *p);
    assert_non_null(p);
    for (uint32_t i = 0; i < CANDIDATES; i++) {
        char k[KEY_LEN];
        snprintf(k, sizeof k, "host-%u", i);
        p[i].hash = map_hash(k, strlen(k));
        p[i].idx = i;
    }
    qsort(p, CANDIDATES, sizeof *p, cmp_pair);
    x->n = 0;
    for (uint32_t i = 1; i < CANDIDATES && x->n + 2 <= KEYS_MAX; i++)
        if (p[i].hash == p[i - 1].hash) {
            snprintf(x->keys[x->n++], KEY_LEN, "host-%u", p[i - 1].idx);
            snprintf(x->keys[x->n++], KEY_LEN, "host-%u", p[i].idx);
        }
    free(p);
    assert_true(x->n >= 8); /* birthday bound: ~18 pairs expected */
    for (uint32_t i = 0; i < x->n; i++)
        put(x, i);
    check_all(x);
    for (uint32_t i = 0; i < x->n; i += 2) { /* first of each pair */
        assert_int_equal(map_hash(x->keys[i], strlen(x->keys[i])),
                         map_hash(x->keys[i + 1], strlen(x->keys[i + 1])));
        del(x, i);
        check_all(x);
    }
    for (uint32_t i = 0; i < x->n; i += 2)
        put(x, i);
    for (uint32_t i = 1; i < x->n; i += 2)
        del(x, i);
    check_all(x);
}

/* The hashed calls with hashes chosen by the test: thousands of keys on
 * four full 32-bit hashes whose home slots straddle the end of the table,
 * told apart only by their keys; entries leave by (hash, index) as the
 * request-id window evicts them. */
static uint32_t forced_hash(uint32_t i)
{
    static const uint32_t h[] = {0xfffffffeu, 0xffffffffu, 0, 1};
    return h[i % 4];
}

static void check_all_forced(struct fx *x)
{
    uint32_t len = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        int64_t got = map_find_hashed(&x->m, forced_hash(i), x->keys[i],
                                      strlen(x->keys[i]));
        if (got != (x->in[i] ? (int64_t)i : -1))
            fail_msg("key %s (%s) found at %lld", x->keys[i],
                     x->in[i] ? "present" : "deleted", (long long)got);
        len += x->in[i];
    }
    assert_int_equal(x->m.len, len);
}

static void hashed_calls_with_forced_collisions(void **state)
{
    struct fx *x = *state;
    natural_keys(x, 2000);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++) {
        uint32_t k = x->order[i];
        assert_int_equal(map_put_hashed(&x->m, forced_hash(k), k), 0);
        x->in[k] = true;
    }
    check_all_forced(x);
    assert_true(longest_run(&x->m) >= x->n);
    /* The same key under its real hash is another entry: not found. */
    assert_int_equal(find(x, x->keys[5]), -1);
    /* Deleting an index that is not stored changes nothing. */
    map_del_idx(&x->m, forced_hash(0), x->n + 7);
    map_del_idx(&x->m, forced_hash(3), x->n);
    assert_int_equal(x->m.len, x->n);
    shuffle(x);
    for (uint32_t i = 0; i < x->n; i++) {
        uint32_t k = x->order[i];
        map_del_idx(&x->m, forced_hash(k), k);
        x->in[k] = false;
        assert_int_equal(map_find_hashed(&x->m, forced_hash(k), x->keys[k],
                                         strlen(x->keys[k])),
                         -1);
        if (i % 100 == 0)
            check_all_forced(x);
        if (i == x->n / 3) /* some come back */
            for (uint32_t j = 0; j < x->n; j += 5)
                if (!x->in[j]) {
                    assert_int_equal(
                        map_put_hashed(&x->m, forced_hash(j), j), 0);
                    x->in[j] = true;
                }
    }
    check_all_forced(x);
    /* map_put and map_find are the hashed calls with map_hash. */
    map_close(&x->m);
    map_init(&x->m, key_of, x);
    memset(x->in, 0, x->n * sizeof *x->in);
    put(x, 3);
    assert_int_equal(map_find_hashed(&x->m, map_hash(x->keys[3],
                                                     strlen(x->keys[3])),
                                     x->keys[3], strlen(x->keys[3])),
                     3);
    map_del_idx(&x->m, map_hash(x->keys[3], strlen(x->keys[3])), 3);
    assert_int_equal(find(x, x->keys[3]), -1);
    assert_int_equal(x->m.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(empty_map),
        T(put_find_del),
        T(grows_and_keeps_every_key),
        T(delete_random_order),
        T(delete_under_heavy_collisions),
        T(churn_on_one_home),
        T(full_hash_collisions),
        T(hashed_calls_with_forced_collisions),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
