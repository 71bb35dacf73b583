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

void map_close(struct map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

uint32_t map_hash(const char *key, size_t len)
{
    /* FNV-1a; keys are short names, collisions are resolved by compare. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 16777619u;
    return h;
}

static int key_eq(const struct map *m, uint32_t idx, const char *key,
                  size_t len)
{
    size_t n;
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
