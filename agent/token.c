#include "token.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define RAW_MAX 3072

struct wr {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct wr *w, const void *p, size_t n)
{
    if (w->len + n <= w->cap)
        memcpy(w->p + w->len, p, n);
    w->len += n;
}

static void put_str(struct wr *w, const char *s)
{
    uint8_t n = (uint8_t)strnlen(s, 255);
    put(w, &n, 1);
    put(w, s, n);
}

int token_format(const struct token *t, char *out, size_t cap)
{
    uint8_t raw[RAW_MAX], one = 1, n = (uint8_t)t->nmembers;
    struct wr w = {raw, 0, sizeof raw};
    size_t plen = strlen(TOKEN_PREFIX);
    if (t->nmembers > TOKEN_MEMBERS_MAX)
        return -EINVAL;
    put(&w, &one, 1);
    put(&w, t->secret, 32);
    put_str(&w, t->cluster_id);
    put_str(&w, t->site);
    put(&w, &n, 1);
    for (unsigned i = 0; i < t->nmembers; i++) {
        put_str(&w, t->members[i].site);
        put_str(&w, t->members[i].addr);
        put(&w, t->members[i].pk, 32);
    }
    if (w.len > w.cap ||
        cap < plen + sodium_base64_ENCODED_LEN(
                         w.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
        sodium_memzero(raw, sizeof raw);
        return -ENOSPC;
    }
    memcpy(out, TOKEN_PREFIX, plen);
    sodium_bin2base64(out + plen, cap - plen, raw, w.len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

struct rd {
    const uint8_t *p;
    size_t left;
    int bad;
};

static void get(struct rd *r, void *out, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

/* A length-prefixed string into out (cap bytes with its NUL), printable
 * and non-empty. */
static void get_str(struct rd *r, char *out, size_t cap)
{
    uint8_t n = 0;
    get(r, &n, 1);
    if (r->bad || n == 0 || n >= cap || r->left < n) {
        r->bad = 1;
        out[0] = '\0';
        return;
    }
    get(r, out, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] <= ' ' || (unsigned char)out[i] >= 0x7f)
            r->bad = 1;
}

int token_parse(const char *text, struct token *t, char *errmsg,
                size_t errlen)
{
    uint8_t raw[RAW_MAX], version = 0, n = 0;
    size_t len = 0, plen = strlen(TOKEN_PREFIX);
    const char *end;
    memset(t, 0, sizeof *t);
    if (strncmp(text, TOKEN_PREFIX, plen) != 0 || sodium_init() < 0 ||
        sodium_base642bin(raw, sizeof raw, text + plen, strlen(text + plen),
                          " \n", &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        *end) {
        snprintf(errmsg, errlen, "not a join token (%s + base64url)",
                 TOKEN_PREFIX);
        return -EINVAL;
    }
    struct rd r = {raw, len, 0};
    get(&r, &version, 1);
    if (!r.bad && version != 1) {
        snprintf(errmsg, errlen, "join token version %u (this build reads 1)",
                 version);
        return -EINVAL;
    }
    get(&r, t->secret, 32);
    get_str(&r, t->cluster_id, sizeof t->cluster_id);
    get_str(&r, t->site, sizeof t->site);
    get(&r, &n, 1);
    if (n > TOKEN_MEMBERS_MAX)
        r.bad = 1;
    for (unsigned i = 0; i < n && !r.bad; i++) {
        get_str(&r, t->members[i].site, sizeof t->members[i].site);
        get_str(&r, t->members[i].addr, sizeof t->members[i].addr);
        get(&r, t->members[i].pk, 32);
    }
    t->nmembers = n;
    sodium_memzero(raw, sizeof raw);
    if (r.bad || r.left != 0) {
        sodium_memzero(t, sizeof *t);
        snprintf(errmsg, errlen, "join token is truncated or malformed");
        return -EINVAL;
    }
    return 0;
}
