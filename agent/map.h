/* Open-addressing hash index from string keys to entity indexes.
 *
 * The map does not store keys: it asks key_fn(owner, idx) for the key of a
 * stored index, so entities may move (realloc) without rehashing. Linear
 * probing with backward-shift deletion: no tombstones, lookups stay short.
 */
#ifndef VC_AGENT_MAP_H
#define VC_AGENT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_slot {
    uint32_t hash;
    uint32_t idx1; /* index + 1; 0 = empty */
};

typedef const char *(*map_key_fn)(const void *owner, uint32_t idx,
                                  size_t *len);

/* Instead of a key_fn: whether the key of idx is key[0..len). Lets owners
 * whose keys are NUL-terminated compare without a strlen per probe. */
typedef bool (*map_eq_fn)(const void *owner, uint32_t idx, const char *key,
                          size_t len);

struct map {
    struct map_slot *slots;
    uint32_t cap; /* power of two */
    uint32_t len;
    map_key_fn key;
    const void *owner;
    map_eq_fn eq; /* if set, used instead of key */
};

void map_init(struct map *m, map_key_fn key, const void *owner);
void map_init_eq(struct map *m, map_eq_fn eq, const void *owner);
void map_close(struct map *m);

/* Index stored under key, or -1. */
int64_t map_find(const struct map *m, const char *key, size_t len);

/* Stores idx under key, which must not be present. 0 or VC_ENOMEM. */
int map_put(struct map *m, const char *key, size_t len, uint32_t idx);

/* Removes key if present. */
void map_del(struct map *m, const char *key, size_t len);

uint32_t map_hash(const char *key, size_t len);

/* The same with hash = map_hash(key, len) computed by the caller, for
 * callers that keep it (so a key is hashed once per command). */
int64_t map_find_hashed(const struct map *m, uint32_t hash, const char *key,
                        size_t len);
int map_put_hashed(struct map *m, uint32_t hash, uint32_t idx);

/* Removes the entry of idx, whose key hashes to hash, without reading the
 * key: eviction touches only the slot array. No-op if idx is not stored. */
void map_del_idx(struct map *m, uint32_t hash, uint32_t idx);

/* Starts loading the slot where the probe for hash begins. In a map larger
 * than the cache that is a miss: issued early, a later find, put or del
 * for hash no longer waits for it. */
static inline void map_prefetch(const struct map *m, uint32_t hash)
{
    if (m->cap)
        __builtin_prefetch(&m->slots[hash & (m->cap - 1)], 1);
}

#endif
