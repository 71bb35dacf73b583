/* Watch stream: a hypervisor host's desired state, from its site agent to
 * the host agent, and the host's apply results back (docs/protocol.md,
 * "Watch stream").
 *
 * The messages ride in client frames of op PROTO_OP_WATCH: a host agent's
 * requests carry SUBSCRIBE and REPORT in their body; the site agent
 * answers a SUBSCRIBE with any number of responses on the subscribe's
 * sequence number, each carrying one SNAPSHOT, UPDATE or INSYNC as
 * payload. Every message is one msgpack array whose first element is its
 * kind:
 *
 *   SUBSCRIBE [1, host, version, digest]
 *   REPORT    [2, host, version, ok, text, changes, missing,
 *              [[cluster, gen], ...]]
 *   SNAPSHOT  [3, version, digest, trunk, complete, [entry, ...]]
 *   UPDATE    [4, version, base, digest, trunk, complete, [entry, ...],
 *              [removed vid, ...]]
 *   INSYNC    [5, version, digest]
 *   entry     [vid, cluster, gen, [iface, ...]]
 *
 * version is the site agent's applied log index when it computed the
 * state; digest is proto_watch_digest() of the state (trunk, complete and
 * the entries by VID), so a host that reconnects with the digest of what
 * it holds is told INSYNC instead of being sent everything again.
 *
 * Decoding is bounded and total: every count and length is checked
 * against the limits below before use, names against the shared name
 * syntax, and nothing is allocated outside the caller's msgpack zone.
 */
#ifndef VC_PROTO_WATCH_H
#define VC_PROTO_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "mp.h"

#define PROTO_WATCH_ENTRIES_MAX 4094 /* one per VLAN */
#define PROTO_WATCH_IFACES_MAX 16384 /* VM interfaces in one message */
#define PROTO_WATCH_BYTES_MAX (1u << 20) /* a full message fits */

enum proto_watch_kind {
    PROTO_WATCH_SUBSCRIBE = 1, /* host -> site */
    PROTO_WATCH_REPORT = 2,    /* host -> site */
    PROTO_WATCH_SNAPSHOT = 3,  /* site -> host: the whole state */
    PROTO_WATCH_UPDATE = 4,    /* site -> host: changes since base */
    PROTO_WATCH_INSYNC = 5,    /* site -> host: what you hold is current */
};

/* One cluster VLAN on the host. In a REPORT only cluster and gen are
 * used (vid 0, no ifaces). */
struct proto_watch_entry {
    uint16_t vid;
    uint64_t gen;              /* the cluster's generation at this site */
    struct mp_str cluster;
    const struct mp_str *ifaces; /* VM interfaces to enslave */
    uint32_t nifaces;
};

struct proto_watch {
    uint8_t kind;
    struct mp_str host;   /* SUBSCRIBE, REPORT */
    uint64_t version;     /* all kinds */
    uint64_t base;        /* UPDATE: the version it applies to */
    uint64_t digest;      /* SUBSCRIBE, SNAPSHOT, UPDATE (after), INSYNC */
    struct mp_str trunk;  /* SNAPSHOT, UPDATE */
    bool complete;        /* SNAPSHOT, UPDATE: deletions allowed */
    bool ok;              /* REPORT */
    struct mp_str text;   /* REPORT: error, or a note when ok */
    uint32_t changes;     /* REPORT */
    uint32_t missing;     /* REPORT: VM interfaces not there (yet) */
    const struct proto_watch_entry *entries; /* SNAPSHOT, UPDATE, REPORT */
    uint32_t nentries;
    const uint16_t *removed; /* UPDATE */
    uint32_t nremoved;
};

/* Resets w to an empty message of kind (strings "", arrays empty). */
void proto_watch_init(struct proto_watch *w, int kind);

/* Checks w against the schema: host and cluster names, VIDs 1..4094 and
 * unique (an UPDATE may not upsert and remove the same VID), interface
 * names, text, the limits above. 0 or VC_EINVAL with errmsg. */
int proto_watch_validate(const struct proto_watch *w, char *errmsg,
                         size_t errlen);

/* Packs w as one msgpack value. The caller validates first. */
void proto_watch_pack(msgpack_packer *pk, const struct proto_watch *w);

/* Decodes one message from a msgpack object. Strings borrow from the
 * object's buffer; entry, interface and VID arrays are allocated in zone
 * (cleared by the caller). Returns 0, VC_EMALFORMED, VC_EINVAL or
 * VC_ENOMEM with errmsg. */
int proto_watch_unpack(const msgpack_object *o, msgpack_zone *zone,
                       struct proto_watch *w, char *errmsg, size_t errlen);

/* The same from raw bytes holding exactly one msgpack value (the fuzz
 * target's entry point). */
int proto_watch_decode(const void *data, size_t len, msgpack_zone *zone,
                       struct proto_watch *w, char *errmsg, size_t errlen);

/* Digest of a host state: FNV-1a 64 over trunk, complete and the entries
 * in VID order (entries must be sorted by VID; ifaces in their order).
 * Both ends compute it the same way; 0 is never returned. */
uint64_t proto_watch_digest(struct mp_str trunk, bool complete,
                            const struct proto_watch_entry *entries,
                            uint32_t n);

/* "subscribe", "report", ...; "?" for an unknown kind. */
const char *proto_watch_kind_name(int kind);

/* An entry with its own copies of the strings: what a site agent last
 * sent a host (agent/watch.c), what a host agent holds
 * (agent/hostrole.c). */
struct proto_watch_vlan {
    uint16_t vid;
    uint64_t gen;
    char cluster[VC_NAME_MAX + 1];
    uint32_t nifaces;
    char (*ifaces)[VC_IFNAME_MAX + 1]; /* malloc'd */
};

/* Frees the ifaces of v[0..n) and v itself. NULL is a no-op. */
void proto_watch_vlans_free(struct proto_watch_vlan *v, uint32_t n);

/* src[0..n) as proto_watch entries that borrow their strings: *e (n
 * entries) and *ifs (every interface name) are malloc'd, and the caller
 * frees both, also on failure. Returns 0, VC_ELIMIT (more than max_ifaces
 * names in all) or VC_ENOMEM. */
int proto_watch_vlans_view(const struct proto_watch_vlan *const *src,
                           uint32_t n, uint32_t max_ifaces,
                           struct proto_watch_entry **e, struct mp_str **ifs);

#endif
