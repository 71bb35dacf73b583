/* Sets of 802.1Q VLAN IDs (1..4094) as 4096-bit bitmaps.
 *
 * Bit v stands for VLAN v; bits 0 and 4095 are never set. Word operations
 * are what make allocation O(sites): intersecting two sets is 64 ANDs.
 */
#ifndef VC_PROTO_VLANSET_H
#define VC_PROTO_VLANSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VLAN_MIN 1
#define VLAN_MAX 4094
#define VLANSET_WORDS 64

struct vlanset {
    uint64_t w[VLANSET_WORDS];
};

static inline bool vlanset_has(const struct vlanset *s, unsigned v)
{
    return v < 4096 && (s->w[v >> 6] >> (v & 63)) & 1;
}

static inline void vlanset_add(struct vlanset *s, unsigned v)
{
    if (v >= VLAN_MIN && v <= VLAN_MAX)
        s->w[v >> 6] |= UINT64_C(1) << (v & 63);
}

static inline void vlanset_del(struct vlanset *s, unsigned v)
{
    if (v < 4096)
        s->w[v >> 6] &= ~(UINT64_C(1) << (v & 63));
}

void vlanset_clear(struct vlanset *s);

/* Adds lo..hi inclusive, clipped to 1..4094. */
void vlanset_add_range(struct vlanset *s, unsigned lo, unsigned hi);

unsigned vlanset_count(const struct vlanset *s);
bool vlanset_empty(const struct vlanset *s);
bool vlanset_equal(const struct vlanset *a, const struct vlanset *b);

/* Lowest member, or 0 if empty. */
unsigned vlanset_first(const struct vlanset *s);

/* Parses "100-999,2000-2999,42". Spaces around items are allowed; IDs must
 * be 1..4094 and ranges ascending. Returns 0 or VC_EINVAL with errmsg
 * quoting the offending item. */
int vlanset_parse(struct vlanset *s, const char *text, char *errmsg,
                  size_t errlen);

/* Writes the canonical range form ("100-999,2000") into buf, truncating
 * with "..." if it does not fit. Returns buf. */
char *vlanset_format(const struct vlanset *s, char *buf, size_t len);

/* Calls fn(lo, hi, arg) for each maximal range, ascending. Stops and returns
 * fn's value if it is non-zero. */
int vlanset_ranges(const struct vlanset *s,
                   int (*fn)(unsigned lo, unsigned hi, void *arg), void *arg);

#endif
