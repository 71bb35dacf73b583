/* Log entry format: batches of state-machine commands and their results.
 *
 * A raft log entry holds one batch: msgpack [version, [cmd, ...]]. Each cmd
 * is [type, req_id, time_ms, origin, body], body an array whose fields
 * depend on type (see proto_cmd_fields() and docs/protocol.md). Results
 * travel the same way: [version, [[code, vlan, gen, msg], ...]].
 *
 * Decoded commands borrow their strings from the input buffer: keep it
 * alive while the command is used.
 */
#ifndef VC_PROTO_CMD_H
#define VC_PROTO_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"
#include "vlanset.h"

#define PROTO_LOG_VERSION 1

#define VC_NAME_MAX 63     /* site, host, cluster and owner names */
#define VC_REQID_MAX 128   /* client request id */
#define VC_IFNAME_MAX 15   /* Linux IFNAMSIZ - 1 */
#define VC_ADDR_MAX 127    /* host:port */
#define VC_MSG_MAX 255     /* result and apply-report text */
#define VC_SITES_MAX 128   /* sites in the system */
#define VC_BATCH_MAX 4096  /* commands in one log entry */
#define PROTO_ENTRY_MAX (1u << 20) /* bytes in one log entry */

enum proto_cmd_type {
    PROTO_CMD_SITE_ADD = 1,
    PROTO_CMD_SITE_UPDATE = 2,
    PROTO_CMD_SITE_REMOVE = 3,
    PROTO_CMD_POOL_SET = 4,
    PROTO_CMD_HOST_ADD = 5,
    PROTO_CMD_HOST_REMOVE = 6,
    PROTO_CMD_SERVICE_ADD = 7,
    PROTO_CMD_SERVICE_REMOVE = 8,
    PROTO_CMD_CLUSTER_CREATE = 9,
    PROTO_CMD_CLUSTER_EXTEND = 10,
    PROTO_CMD_CLUSTER_SHRINK = 11,
    PROTO_CMD_CLUSTER_RENEW = 12,
    PROTO_CMD_CLUSTER_RELEASE = 13,
    PROTO_CMD_LEASE_SWEEP = 14,
    PROTO_CMD_ATTACH = 15,
    PROTO_CMD_DETACH = 16,
    PROTO_CMD_APPLY_REPORT = 17,
    PROTO_CMD_CLUSTER_ROLLBACK = 18, /* leader: creation not applied in
                                        time (agent/rollback.c) */
    /* 19: reserved (host roles). Keys and roles (agent/fsm_auth.c): */
    PROTO_CMD_SITE_KEY = 20,      /* set a site's key (rotation) */
    PROTO_CMD_ROLE_ADD = 21,      /* bind a client key to a name + role */
    PROTO_CMD_ROLE_REMOVE = 22,
    PROTO_CMD_INVITE_ADD = 23,    /* one-time join token (its hash) */
    PROTO_CMD_INVITE_REMOVE = 24,
    PROTO_CMD_TYPE_MAX = 24
};

/* Client roles (docs/protocol.md, "Client authentication"). */
enum proto_role { ROLE_USER = 0, ROLE_SCHEDULER = 1, ROLE_ADMIN = 2 };
#define PROTO_KEY_BYTES 32 /* Ed25519 public key, token and token hash */

enum proto_uplink { UPLINK_XPONDER = 0, UPLINK_VPLS = 1, UPLINK_QINQ = 2 };
enum proto_image { IMAGE_CERTIFIED = 0, IMAGE_USER = 1 };

/* One command. Which fields are meaningful depends on type. */
struct proto_cmd {
    uint8_t type;
    struct mp_str req_id; /* "" = no de-duplication */
    uint64_t time_ms;     /* proposer's clock, ms since the epoch */
    struct mp_str origin; /* who proposed it (site or client identity) */

    struct mp_str name;  /* site, host or cluster the command is about */
    struct mp_str site;  /* second site argument */
    struct mp_str owner;
    struct mp_str host;
    struct mp_str iface; /* trunk or VM interface */
    struct mp_str addr;  /* site's peer address */
    struct mp_str text;  /* apply-report error text */
    struct vlanset pool;
    uint64_t lease_ms;
    uint64_t gen;
    uint16_t svlan;
    uint8_t uplink;
    uint8_t image;
    bool managed;
    bool force;
    bool ok;
    bool keep;          /* x: keep on failure (no rollback) */
    struct mp_str key;  /* K: Ed25519 public key: 32 bytes, or empty */
    struct mp_str hash; /* H: invite token hash: 32 bytes, or empty */
    uint8_t role;       /* r: enum proto_role */
    uint32_t nsites;
    struct mp_str sites[VC_SITES_MAX];
};

struct proto_result {
    int code;       /* 0 or negative VC_E* */
    uint16_t vlan;  /* chosen or affected VLAN, 0 if none */
    uint64_t gen;   /* cluster generation after the command, 0 if none */
    char msg[VC_MSG_MAX + 1];
};

/* Command type name ("cluster-create"), NULL for an unknown type. */
const char *proto_cmd_name(int type);

/* Field letters of the body of type, NULL for an unknown type. */
const char *proto_cmd_fields(int type);

/* How many leading fields a body of type must have: the rest are optional
 * trailing fields added later (site-add's key and token hash), written
 * only when set so that older readers keep reading older commands. */
unsigned proto_cmd_min_fields(int type);

/* Resets every field of cmd (strings to "", numbers to 0). */
void proto_cmd_init(struct proto_cmd *cmd, int type);

/* Checks every field against the schema (name syntax, ranges). Returns 0 or
 * VC_EINVAL with a message naming the field. */
int proto_cmd_validate(const struct proto_cmd *cmd, char *errmsg,
                       size_t errlen);

/* Appends the batch [version, [cmds...]] to out. Returns 0 or VC_EINVAL
 * (a command fails validation) / VC_ENOMEM / VC_ETOOBIG. */
int proto_batch_encode(const struct proto_cmd *cmds, size_t n,
                       struct mp_buf *out, char *errmsg, size_t errlen);

/* raft 0.22.1 takes only entries whose size is a multiple of 8 bytes:
 * proto_entry_pad() appends 0-7 zero bytes after the encoded batch, and
 * proto_entry_unpad() returns the length without them (len itself if the
 * bytes after the first value are not such padding). */
void proto_entry_pad(struct mp_buf *out);
size_t proto_entry_unpad(const void *data, size_t len);

/* Decodes a batch. cmds must have room for max entries; *n receives the
 * count. Strings borrow from data and zone (cleared by the caller between
 * uses). Returns 0, VC_EMALFORMED, VC_EVERSION, VC_ETOOBIG or VC_EINVAL. */
int proto_batch_decode(const void *data, size_t len, msgpack_zone *zone,
                       struct proto_cmd *cmds, size_t max, size_t *n,
                       char *errmsg, size_t errlen);

/* Encodes one command / result as a standalone msgpack value (used inside
 * client frames). */
void proto_cmd_pack(msgpack_packer *pk, const struct proto_cmd *cmd);
int proto_cmd_unpack(const msgpack_object *o, struct proto_cmd *cmd,
                     char *errmsg, size_t errlen);
void proto_result_pack(msgpack_packer *pk, const struct proto_result *r);
int proto_result_unpack(const msgpack_object *o, struct proto_result *r);

/* Result batch [version, [results...]]. */
int proto_results_encode(const struct proto_result *r, size_t n,
                         struct mp_buf *out);
int proto_results_decode(const void *data, size_t len, msgpack_zone *zone,
                         struct proto_result *r, size_t max, size_t *n);

/* A VLAN pool on the wire: an array of [lo, hi] ranges, ascending and
 * disjoint (log entries and snapshots alike). unpack returns 0 or
 * VC_EMALFORMED. */
void proto_pool_put(struct mp_buf *b, const struct vlanset *s);
int proto_pool_unpack(const msgpack_object *o, struct vlanset *s);

/* Name syntax shared by all entities: 1..63 of [A-Za-z0-9._-], starting
 * with a letter or digit. */
bool proto_name_ok(struct mp_str s);
/* Linux interface name: 1..15 bytes, no '/', ':' or whitespace, not "."
 * or "..". */
bool proto_ifname_ok(struct mp_str s);

const char *proto_uplink_name(int uplink);
int proto_uplink_parse(const char *s);
const char *proto_image_name(int image);
int proto_image_parse(const char *s);
const char *proto_role_name(int role);
int proto_role_parse(const char *s);

#endif
