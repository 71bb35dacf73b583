#include "map.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"

void map_init(struct map *m, map_key_fn key, const void *owner)
{
    memset(m, 0, sizeof *m);
    m->key = key;
    m->owner = owner;
}

void map_init_eq(struct map *m, map_eq_fn eq, const void *owner)
{
    memset(m, 0, sizeof *m);
    m->eq = eq;
    m->owner = owner;
}

void map_close(struct map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

static uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

uint32_t map_hash(const char *key, size_t len)
{
    /* Eight bytes per multiply: every command hashes a few names and its
     * request id, and FNV-1a's byte loop was a visible cost. Collisions
     * are resolved by compare; hashes never leave the process, so they
     * need not be stable across builds or hosts. */
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    size_t n = len;
    for (; n > 8; n -= 8, key += 8)
        h = mix(h, load64(key));
    if (n >= 4) /* 4..8 bytes: two overlapping loads */
        h = mix(h, load32(key) << 32 | load32(key + n - 4));
    else if (n) /* 1..3 bytes: first, middle and last */
        h = mix(h, (uint64_t)(uint8_t)key[0] << 16 |
                       (uint64_t)(uint8_t)key[n / 2] << 8 |
                       (uint8_t)key[n - 1]);
    h = (h ^ (h >> 32)) * 0x94d049bb133111ebull;
    return (uint32_t)(h ^ (h >> 29));
}

static int key_eq(const struct map *m, uint32_t idx, const char *key,
                  size_t len)
{
    size_t n;
    if (m->eq)
        return m->eq(m->owner, idx, key, len);
    const char *k = m->key(m->owner, idx, &n);
    return n == len && memcmp(k, key, len) == 0;
}

int64_t map_find(const struct map *m, const char *key, size_t len)
{
    if (m->len == 0)
        return -1;
    return map_find_hashed(m, map_hash(key, len), key, len);
}

int64_t map_find_hashed(const struct map *m, uint32_t h, const char *key,
                        size_t len)
{
    if (m->len == 0)
        return -1;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        const struct map_slot *s = &m->slots[i];
        if (s->idx1 == 0)
            return -1;
        if (s->hash == h && key_eq(m, s->idx1 - 1, key, len))
            return s->idx1 - 1;
    }
}

static void insert(struct map_slot *slots, uint32_t cap, uint32_t h,
                   uint32_t idx1)
{
    uint32_t mask = cap - 1, i = h & mask;
    while (slots[i].idx1)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].idx1 = idx1;
}

static int grow(struct map *m)
{
    uint32_t cap = m->cap ? m->cap * 2 : 16;
    struct map_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->slots[i].idx1)
            insert(s, cap, m->slots[i].hash, m->slots[i].idx1);
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

int map_put(struct map *m, const char *key, size_t len, uint32_t idx)
{
    return map_put_hashed(m, map_hash(key, len), idx);
}

int map_put_hashed(struct map *m, uint32_t hash, uint32_t idx)
{
    /* Keep the load factor under 1/2 so probes stay short. */
    if ((m->len + 1) * 2 > m->cap && grow(m) != 0)
        return VC_ENOMEM;
    insert(m->slots, m->cap, hash, idx + 1);
    m->len++;
    return 0;
}

/* Empties slot i, keeping every probe run unbroken. */
static void del_slot(struct map *m, uint32_t i)
{
    uint32_t mask = m->cap - 1;
    /* Backward shift: move later members of the probe run into the hole. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; m->slots[j].idx1; j = (j + 1) & mask) {
        uint32_t home = m->slots[j].hash & mask;
        /* j may move to hole if home is not cyclically in (hole, j]. */
        int in_range = hole <= j ? (home > hole && home <= j)
                                 : (home > hole || home <= j);
        if (!in_range) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].idx1 = 0;
    m->len--;
}

void map_del(struct map *m, const char *key, size_t len)
{
    if (m->len == 0)
        return;
    uint32_t h = map_hash(key, len), mask = m->cap - 1, i;
    for (i = h & mask;; i = (i + 1) & mask) {
        if (m->slots[i].idx1 == 0)
            return;
        if (m->slots[i].hash == h && key_eq(m, m->slots[i].idx1 - 1, key, len))
            break;
    }
    del_slot(m, i);
}

void map_del_idx(struct map *m, uint32_t hash, uint32_t idx)
{
    if (m->len == 0)
        return;
    uint32_t mask = m->cap - 1, i;
    for (i = hash & mask; m->slots[i].idx1 != idx + 1; i = (i + 1) & mask)
        if (m->slots[i].idx1 == 0)
            return;
    del_slot(m, i);
}
