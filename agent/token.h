/* Join tokens (virtcloud site invite -> join-token): one line of text,
 *   "vc1-join:" + base64url (no padding) of
 *   1 | secret[32] | str cluster_id | str site | n | n x (str site |
 *   str api_addr | pk[32])
 * where str is a length byte and that many bytes. The secret authorises
 * one join of `site` (the state holds only its BLAKE2b-256 hash); the
 * members' keys are what the joining site pins before it has the state.
 * Bounded parse: every length is checked against the bytes left and the
 * field's limit. The text carries a secret: callers wipe their copies.
 */
#ifndef VC_AGENT_TOKEN_H
#define VC_AGENT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_PREFIX "vc1-join:"
#define TOKEN_MEMBERS_MAX 16
#define TOKEN_TEXT_MAX 4096

struct token_member {
    char site[64];
    char addr[128]; /* client API address */
    uint8_t pk[32];
};

struct token {
    uint8_t secret[32];
    char cluster_id[64];
    char site[64];
    unsigned nmembers;
    struct token_member members[TOKEN_MEMBERS_MAX];
};

/* Writes the text form into out (cap bytes). 0 or -ENOSPC / -EINVAL. */
int token_format(const struct token *t, char *out, size_t cap);

/* Parses text into t. 0 or -EINVAL with errmsg. */
int token_parse(const char *text, struct token *t, char *errmsg,
                size_t errlen);

#endif
