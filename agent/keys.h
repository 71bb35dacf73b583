/* Site keys: one Ed25519 key pair per site, WireGuard-style pinning.
 *
 * Text forms (one line each, copy-pasteable):
 *   public  "vc1:" + base64(32-byte Ed25519 public key)          (48 chars)
 *   private "vc1-private:" + base64(32-byte Ed25519 seed) + "\n" (a file)
 *
 * The private file is created 0600 with O_EXCL (never overwritten) and is
 * refused when group or others may read it, like ssh does. Functions
 * return 0 or a negative errno and fill errmsg with a one-line reason that
 * quotes the bad value. Secret bytes are wiped from our own buffers.
 */
#ifndef VC_AGENT_KEYS_H
#define VC_AGENT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_PUBLIC_BYTES 32 /* crypto_sign_PUBLICKEYBYTES */
#define KEYS_SECRET_BYTES 64 /* crypto_sign_SECRETKEYBYTES: seed || pk */
#define KEYS_SEED_BYTES 32
#define KEYS_PUBLIC_PREFIX "vc1:"
#define KEYS_PRIVATE_PREFIX "vc1-private:"
/* Length of the public text form including its NUL. */
#define KEYS_PUBLIC_TEXT_MAX 64

struct keys_pair {
    uint8_t pk[KEYS_PUBLIC_BYTES];
    uint8_t sk[KEYS_SECRET_BYTES];
};

/* Initialises libsodium (idempotent). 0 or -EIO. */
int keys_init(void);

/* Fills kp with a fresh key pair. 0 or negative errno. */
int keys_generate(struct keys_pair *kp);

/* Writes "vc1:<base64>" into out (cap >= KEYS_PUBLIC_TEXT_MAX). */
void keys_format_public(const uint8_t pk[KEYS_PUBLIC_BYTES], char *out,
                        size_t cap);

/* Parses the public text form (surrounding blanks ignored) into pk.
 * 0 or -EINVAL with errmsg. */
int keys_parse_public(const char *text, uint8_t pk[KEYS_PUBLIC_BYTES],
                      char *errmsg, size_t errlen);

/* Writes kp to path (0600, O_EXCL) and its public form to path.pub
 * (0644, O_EXCL). Refuses (-EEXIST) if either exists; on failure nothing
 * is left behind. 0 or negative errno with errmsg. */
int keys_write(const char *path, const struct keys_pair *kp, char *errmsg,
               size_t errlen);

/* Reads a private key file into kp (pk derived from the seed). Refuses a
 * file readable by group or others (-EACCES). 0 or negative errno with
 * errmsg. The caller wipes kp with keys_wipe() when done. */
int keys_load_private(const char *path, struct keys_pair *kp, char *errmsg,
                      size_t errlen);

/* Overwrites kp with zeros (sodium_memzero). NULL is a no-op. */
void keys_wipe(struct keys_pair *kp);

#endif
