#include "vlanset.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void vlanset_clear(struct vlanset *s)
{
    memset(s, 0, sizeof *s);
}

void vlanset_add_range(struct vlanset *s, unsigned lo, unsigned hi)
{
    if (lo < VLAN_MIN)
        lo = VLAN_MIN;
    if (hi > VLAN_MAX)
        hi = VLAN_MAX;
    for (unsigned v = lo; v <= hi; v++)
        vlanset_add(s, v);
}

unsigned vlanset_count(const struct vlanset *s)
{
    unsigned n = 0;
    for (int i = 0; i < VLANSET_WORDS; i++)
        n += (unsigned)__builtin_popcountll(s->w[i]);
    return n;
}

bool vlanset_empty(const struct vlanset *s)
{
    for (int i = 0; i < VLANSET_WORDS; i++)
        if (s->w[i])
            return false;
    return true;
}

bool vlanset_equal(const struct vlanset *a, const struct vlanset *b)
{
    return memcmp(a->w, b->w, sizeof a->w) == 0;
}

unsigned vlanset_first(const struct vlanset *s)
{
    for (int i = 0; i < VLANSET_WORDS; i++)
        if (s->w[i])
            return (unsigned)(i * 64 + __builtin_ctzll(s->w[i]));
    return 0;
}

static int parse_id(const char **p, unsigned *out)
{
    char *end;
    if (!isdigit((unsigned char)**p))
        return -1;
    errno = 0;
    unsigned long v = strtoul(*p, &end, 10);
    if (errno || v < VLAN_MIN || v > VLAN_MAX)
        return -1;
    *p = end;
    *out = (unsigned)v;
    return 0;
}

static void skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* Copies the item starting at p (up to the next comma) for error messages. */
static void item_text(const char *p, char *buf, size_t len)
{
    size_t n = strcspn(p, ",");
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

int vlanset_parse(struct vlanset *s, const char *text, char *errmsg,
                  size_t errlen)
{
    const char *p = text;
    vlanset_clear(s);
    skip_space(&p);
    if (*p == '\0') {
        snprintf(errmsg, errlen, "empty VLAN list");
        return VC_EINVAL;
    }
    for (;;) {
        const char *item = p;
        unsigned lo, hi;
        skip_space(&p);
        if (parse_id(&p, &lo) != 0)
            goto bad;
        hi = lo;
        skip_space(&p);
        if (*p == '-') {
            p++;
            skip_space(&p);
            if (parse_id(&p, &hi) != 0 || hi < lo)
                goto bad;
            skip_space(&p);
        }
        vlanset_add_range(s, lo, hi);
        if (*p == '\0')
            return 0;
        if (*p != ',')
            goto bad;
        p++;
        continue;
    bad : {
        char buf[32];
        item_text(item, buf, sizeof buf);
        snprintf(errmsg, errlen,
                 "bad VLAN range \"%s\" (want N or N-M with 1 <= N <= M "
                 "<= 4094)",
                 buf);
        vlanset_clear(s);
        return VC_EINVAL;
    }
    }
}

int vlanset_ranges(const struct vlanset *s,
                   int (*fn)(unsigned lo, unsigned hi, void *arg), void *arg)
{
    unsigned v = VLAN_MIN;
    while (v <= VLAN_MAX) {
        if (!vlanset_has(s, v)) {
            /* Skip empty words quickly. */
            if ((v & 63) == 0 && s->w[v >> 6] == 0) {
                v += 64;
                continue;
            }
            v++;
            continue;
        }
        unsigned lo = v;
        while (v + 1 <= VLAN_MAX && vlanset_has(s, v + 1))
            v++;
        int rv = fn(lo, v, arg);
        if (rv != 0)
            return rv;
        v++;
    }
    return 0;
}

struct fmt_ctx {
    char *buf;
    size_t len;
    size_t used;
    bool full;
    size_t reserve; /* bytes kept free after each item: NUL, or "..." */
};

static int fmt_range(unsigned lo, unsigned hi, void *arg)
{
    struct fmt_ctx *c = arg;
    char item[16];
    int n = lo == hi ? snprintf(item, sizeof item, "%s%u", c->used ? "," : "", lo)
                     : snprintf(item, sizeof item, "%s%u-%u",
                                c->used ? "," : "", lo, hi);
    if (c->used + (size_t)n + c->reserve > c->len) {
        c->full = true;
        return 1;
    }
    memcpy(c->buf + c->used, item, (size_t)n + 1);
    c->used += (size_t)n;
    return 0;
}

char *vlanset_format(const struct vlanset *s, char *buf, size_t len)
{
    struct fmt_ctx c = {buf, len, 0, false, 1};
    if (len == 0)
        return buf;
    buf[0] = '\0';
    vlanset_ranges(s, fmt_range, &c);
    if (c.full) { /* redo leaving room for "..." */
        c = (struct fmt_ctx){buf, len, 0, false, 4};
        buf[0] = '\0';
        vlanset_ranges(s, fmt_range, &c);
    }
    if (c.full && len >= 4)
        memcpy(buf + (c.used + 4 <= len ? c.used : len - 4), "...", 4);
    return buf;
}
