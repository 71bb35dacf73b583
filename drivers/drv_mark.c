/* Ownership marks and interface names. */
#include "drv_mark.h"

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "../proto/mp.h"

int drv_ifname_ok(const char *s)
{
    return s && proto_ifname_ok(mp_cstr(s));
}

/* Parses "key=value" at *p up to the next ':' or the end; value into
 * out (outlen bytes). Advances *p past the separator. */
static int field(const char **p, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    if (strncmp(*p, key, klen) != 0 || (*p)[klen] != '=')
        return -1;
    const char *v = *p + klen + 1;
    size_t n = strcspn(v, ":");
    if (n == 0 || n >= outlen || (v[n] == ':' && !v[n + 1]))
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    *p = v[n] == ':' ? v + n + 1 : v + n;
    return 0;
}

/* Strict decimal: no sign, no leading zero, no overflow. */
static int decimal(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s[0] < '1' || s[0] > '9')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

static int parse_body(const char *p, struct drv_mark *m)
{
    char name[VC_NAME_MAX + 1], num[24];
    uint64_t vid;
    const char *vkey;
    if (field(&p, "cluster", name, sizeof name) == 0) {
        if (!proto_name_ok(mp_cstr(name)))
            return -1;
        m->kind = DRV_MARK_CLUSTER;
        vkey = "vlan";
    } else if (field(&p, "qinq", name, sizeof name) == 0) {
        if (!drv_ifname_ok(name))
            return -1;
        m->kind = DRV_MARK_QINQ;
        vkey = "svlan";
    } else {
        return -1;
    }
    if (field(&p, vkey, num, sizeof num) != 0 ||
        decimal(num, VLAN_MAX, &vid) != 0)
        return -1;
    if (*p && (field(&p, "idx", num, sizeof num) != 0 ||
               decimal(num, UINT64_MAX, &m->idx) != 0))
        return -1;
    if (*p)
        return -1;
    m->vid = (uint16_t)vid;
    memcpy(m->name, name, sizeof name);
    return 0;
}

int drv_mark_parse(const char *alias, struct drv_mark *m)
{
    memset(m, 0, sizeof *m);
    size_t plen = strlen(DRV_MARK_PREFIX);
    if (!alias || strncmp(alias, DRV_MARK_PREFIX, plen) != 0)
        return m->kind = DRV_MARK_NONE;
    if (parse_body(alias + plen, m) != 0) {
        memset(m, 0, sizeof *m);
        m->kind = DRV_MARK_OTHER;
    }
    return m->kind;
}

int drv_mark_format(const struct drv_mark *m, char *buf, size_t len)
{
    const char *k = m->kind == DRV_MARK_QINQ ? "qinq" : "cluster";
    const char *v = m->kind == DRV_MARK_QINQ ? "svlan" : "vlan";
    int n;
    if (m->idx)
        n = snprintf(buf, len, DRV_MARK_PREFIX "%s=%s:%s=%u:idx=%" PRIu64, k,
                     m->name, v, (unsigned)m->vid, m->idx);
    else
        n = snprintf(buf, len, DRV_MARK_PREFIX "%s=%s:%s=%u", k, m->name, v,
                     (unsigned)m->vid);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int drv_mark_same(const struct drv_mark *a, const struct drv_mark *b)
{
    return a->kind == b->kind && a->vid == b->vid &&
           strcmp(a->name, b->name) == 0;
}

/* --- names ------------------------------------------------------------- */

/* Counts "%u" conversions; -1 if any other '%' sequence appears. */
static int conversions(const char *pat)
{
    int n = 0;
    for (const char *p = pat; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == '%')
            p++;
        else if (p[1] == 'u')
            n++, p++;
        else
            return -1;
    }
    return n;
}

int drv_pattern_check(const char *pattern, char *errmsg, size_t errlen)
{
    char name[IFNAMSIZ * 2];
    if (!pattern || strlen(pattern) > DRV_PATTERN_MAX) {
        snprintf(errmsg, errlen, "bridge pattern \"%.32s\": longer than %d",
                 pattern ? pattern : "", DRV_PATTERN_MAX);
        return -EINVAL;
    }
    if (conversions(pattern) != 1) {
        snprintf(errmsg, errlen,
                 "bridge pattern \"%s\": needs exactly one %%u (and no other "
                 "%% but %%%%)",
                 pattern);
        return -EINVAL;
    }
    /* The widest expansion is the 4-digit one; check what it expands to. */
    int n = snprintf(name, sizeof name, pattern, 4094u);
    if (n < 0 || n >= IFNAMSIZ || !drv_ifname_ok(name)) {
        snprintf(errmsg, errlen,
                 "bridge pattern \"%s\": \"%s\" is not a valid interface "
                 "name (at most %d characters, no '/', ':' or spaces)",
                 pattern, name, IFNAMSIZ - 1);
        return -EINVAL;
    }
    return 0;
}

void drv_pattern_name(const char *pattern, unsigned vid, char *name)
{
    snprintf(name, IFNAMSIZ, pattern, vid);
}

int drv_subif_name(const char *trunk, unsigned vid, char *name)
{
    int n = snprintf(name, IFNAMSIZ, "%s.%u", trunk, vid);
    return n < 0 || n >= IFNAMSIZ ? -ENAMETOOLONG : 0;
}
