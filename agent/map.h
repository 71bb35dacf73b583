/* Open-addressing hash index from string keys to entity indexes.
 *
 * The map does not store keys: it asks key_fn(owner, idx) for the key of a
 * stored index, so entities may move (realloc) without rehashing. Linear
 * probing with backward-shift deletion: no tombstones, lookups stay short.
 */
#ifndef VC_AGENT_MAP_H
#define VC_AGENT_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_slot {
    uint32_t hash;
    uint32_t idx1; /* index + 1; 0 = empty */
};

typedef const char *(*map_key_fn)(const void *owner, uint32_t idx,
                                  size_t *len);

struct map {
    struct map_slot *slots;
    uint32_t cap; /* power of two */
    uint32_t len;
    map_key_fn key;
    const void *owner;
};

void map_init(struct map *m, map_key_fn key, const void *owner);
void map_close(struct map *m);

/* Index stored under key, or -1. */
int64_t map_find(const struct map *m, const char *key, size_t len);

/* Stores idx under key, which must not be present. 0 or VC_ENOMEM. */
int map_put(struct map *m, const char *key, size_t len, uint32_t idx);

/* Removes key if present. */
void map_del(struct map *m, const char *key, size_t len);

uint32_t map_hash(const char *key, size_t len);

#endif
