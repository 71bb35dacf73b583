#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define B64 sodium_base64_VARIANT_ORIGINAL

int keys_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

int keys_generate(struct keys_pair *kp)
{
    if (keys_init() != 0)
        return -EIO;
    crypto_sign_keypair(kp->pk, kp->sk);
    return 0;
}

void keys_wipe(struct keys_pair *kp)
{
    if (kp)
        sodium_memzero(kp, sizeof *kp);
}

void keys_format_public(const uint8_t pk[KEYS_PUBLIC_BYTES], char *out,
                        size_t cap)
{
    char b64[sodium_base64_ENCODED_LEN(KEYS_PUBLIC_BYTES, B64)];
    sodium_bin2base64(b64, sizeof b64, pk, KEYS_PUBLIC_BYTES, B64);
    snprintf(out, cap, "%s%s", KEYS_PUBLIC_PREFIX, b64);
}

/* Decodes exactly n bytes of base64 from text (which must end there). */
static int b64_exact(const char *text, size_t len, uint8_t *out, size_t n)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, n, text, len, NULL, &got, &end, B64) != 0)
        return -EINVAL;
    return got == n && end == text + len ? 0 : -EINVAL;
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && strchr(" \t\r\n", (*s)[*len - 1]))
        (*len)--;
}

int keys_parse_public(const char *text, uint8_t pk[KEYS_PUBLIC_BYTES],
                      char *errmsg, size_t errlen)
{
    const char *s = text;
    size_t len = strlen(text), plen = strlen(KEYS_PUBLIC_PREFIX);
    trim(&s, &len);
    if (len < plen || memcmp(s, KEYS_PUBLIC_PREFIX, plen) != 0 ||
        b64_exact(s + plen, len - plen, pk, KEYS_PUBLIC_BYTES) != 0) {
        snprintf(errmsg, errlen, "\"%.*s\" is not a public key (vc1:BASE64 "
                 "of 32 bytes, as printed by virtcloud keygen)",
                 (int)(len > 60 ? 60 : len), s);
        return -EINVAL;
    }
    if (keys_init() != 0 || !crypto_core_ed25519_is_valid_point(pk)) {
        snprintf(errmsg, errlen, "\"%.*s\" is not a valid Ed25519 point",
                 (int)len, s);
        return -EINVAL;
    }
    return 0;
}

/* Creates path with O_EXCL and writes text; removes it again on failure. */
static int write_new(const char *path, mode_t mode, const char *text,
                     char *errmsg, size_t errlen)
{
    size_t len = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(errmsg, errlen, "%s: %s%s", path, strerror(e),
                 e == EEXIST ? " (refusing to overwrite a key)" : "");
        return -e;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    /* The umask may have cleared bits of mode, never added: re-assert. */
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:;
    int e = errno ? errno : EIO;
    snprintf(errmsg, errlen, "%s: %s", path, strerror(e));
    if (fd >= 0)
        close(fd);
    unlink(path);
    return -e;
}

int keys_write(const char *path, const struct keys_pair *kp, char *errmsg,
               size_t errlen)
{
    char pub_path[4096], pub[KEYS_PUBLIC_TEXT_MAX + 1];
    char b64[sodium_base64_ENCODED_LEN(KEYS_SEED_BYTES, B64)];
    char priv[sizeof b64 + sizeof KEYS_PRIVATE_PREFIX + 1];
    struct stat st;
    int rv;
    if (snprintf(pub_path, sizeof pub_path, "%s.pub", path) >=
        (int)sizeof pub_path) {
        snprintf(errmsg, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    /* Check the .pub first so that a refusal leaves nothing behind. */
    if (lstat(pub_path, &st) == 0) {
        snprintf(errmsg, errlen, "%s: %s (refusing to overwrite a key)",
                 pub_path, strerror(EEXIST));
        return -EEXIST;
    }
    /* The first 32 bytes of a libsodium Ed25519 secret key are its seed. */
    sodium_bin2base64(b64, sizeof b64, kp->sk, KEYS_SEED_BYTES, B64);
    snprintf(priv, sizeof priv, "%s%s\n", KEYS_PRIVATE_PREFIX, b64);
    rv = write_new(path, 0600, priv, errmsg, errlen);
    sodium_memzero(b64, sizeof b64);
    sodium_memzero(priv, sizeof priv);
    if (rv != 0)
        return rv;
    keys_format_public(kp->pk, pub, sizeof pub - 1);
    strcat(pub, "\n");
    if ((rv = write_new(pub_path, 0644, pub, errmsg, errlen)) != 0)
        unlink(path);
    return rv;
}

static int read_small(const char *path, char *buf, size_t cap, char *errmsg,
                      size_t errlen)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(errmsg, errlen, "%s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        close(fd);
        snprintf(errmsg, errlen, "%s: %s (mode %03o): a private key must be "
                 "a regular file readable by its owner only (chmod 600)",
                 path, S_ISREG(st.st_mode) ? "readable by others" :
                 "not a regular file", (unsigned)(st.st_mode & 0777));
        return -EACCES;
    }
    n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(errmsg, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    buf[n] = '\0';
    return 0;
}

int keys_load_private(const char *path, struct keys_pair *kp, char *errmsg,
                      size_t errlen)
{
    char buf[256];
    uint8_t seed[KEYS_SEED_BYTES];
    size_t plen = strlen(KEYS_PRIVATE_PREFIX), len;
    const char *s = buf;
    int rv;
    if (keys_init() != 0) {
        snprintf(errmsg, errlen, "libsodium failed to initialise");
        return -EIO;
    }
    if ((rv = read_small(path, buf, sizeof buf, errmsg, errlen)) != 0)
        return rv;
    len = strlen(buf);
    trim(&s, &len);
    rv = len < plen || memcmp(s, KEYS_PRIVATE_PREFIX, plen) != 0 ||
         b64_exact(s + plen, len - plen, seed, sizeof seed) != 0;
    sodium_memzero(buf, sizeof buf);
    if (rv) {
        snprintf(errmsg, errlen, "%s: not a private key (want one line "
                 "%sBASE64, as written by virtcloud keygen)", path,
                 KEYS_PRIVATE_PREFIX);
        return -EINVAL;
    }
    crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
    sodium_memzero(seed, sizeof seed);
    return 0;
}
