/* Raft messages on the secure peer channel (agent/transport.c,
 * docs/protocol.md "Raft messages").
 *
 * The secure transport gives raft's messages to the channel itself instead
 * of letting raft_uv write them to a stream: it encodes each struct
 * raft_message into one record, seals it, and on the other side decodes the
 * record into a struct raft_message for raft's receive callback. Records
 * follow each other in the decrypted byte stream:
 *
 *   record = u32 BE n | body (n bytes, 1 <= n <= PROTO_RAFTMSG_MAX)
 *   body   = u8 type (enum raft_message_type) | u8 version | fields
 *
 * Integers in the fields are little-endian, fixed width:
 *   REQUEST_VOTE         term, candidate_id, last_log_index, last_log_term
 *                        (u64 each), u8 flags (1 disrupt_leader, 2 pre_vote)
 *   REQUEST_VOTE_RESULT  u64 term, u8 flags (1 vote_granted, 2 pre_vote),
 *                        u16 features, u16 capacity
 *   APPEND_ENTRIES       u64 term, prev_log_index, prev_log_term,
 *                        leader_commit, u32 n, n x (u64 term, u8 type,
 *                        u32 len), then the n entries' data back to back
 *   APPEND_ENTRIES_RESULT u64 term, rejected, last_log_index, u16 features,
 *                        u16 capacity
 *   INSTALL_SNAPSHOT     u64 term, last_index, last_term, conf_index, u32 n,
 *                        n x (u64 id, u8 role, u16 len, len address bytes),
 *                        then the snapshot data (the rest of the body)
 *   TIMEOUT_NOW          u64 term, last_log_index, last_log_term
 * A body must be exactly as long as its fields say (the snapshot data
 * being the rest of the body, only the record length delimits it);
 * unknown flag bits, an unknown type, entry type or role, an id of 0, a
 * duplicate server, more than PROTO_RAFTMSG_SERVERS_MAX servers or an
 * address over PROTO_RAFTMSG_ADDR_MAX bytes are malformed.
 *
 * The sender (server_id, server_address) is not in the record: the
 * receiver takes it from the authenticated channel, as raft_uv does from
 * its handshake.
 *
 * The decoder is bounded and total: it reads nothing past len and
 * allocates at most about 4 x len bytes (an entry head of 13 body bytes
 * becomes a 40-byte struct raft_entry) plus PROTO_RAFTMSG_SERVERS_MAX
 * configuration slots. Server count is capped because raft's
 * raft_configuration_add() checks duplicates against every server
 * already added: 80 000 servers (1.2 MB of body) took 13 s of CPU.
 */
#ifndef VC_PROTO_RAFTMSG_H
#define VC_PROTO_RAFTMSG_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_RAFTMSG_HEAD 4 /* the length prefix */
#define PROTO_RAFTMSG_MAX (256u << 20) /* body bytes: a snapshot fits */
#define PROTO_RAFTMSG_ADDR_MAX 255     /* bytes of one server address */
#define PROTO_RAFTMSG_SERVERS_MAX 256  /* in a snapshot's configuration */

/* Bytes of m's whole record (prefix included), or 0 if m cannot be
 * encoded (unknown type, an address, the server count or the body over
 * the limits). Does not validate what raft itself guarantees (roles, ids,
 * no duplicates). */
size_t proto_raftmsg_size(const struct raft_message *m);

/* Writes m's record into out, which holds proto_raftmsg_size(m) bytes
 * (non-zero). Reads m, takes nothing. */
void proto_raftmsg_write(const struct raft_message *m, uint8_t *out);

/* The body length announced by a record prefix (PROTO_RAFTMSG_HEAD bytes
 * at head). 0 and *n, or VC_EMALFORMED if it is 0 or over the limit. */
int proto_raftmsg_peek(const uint8_t *head, uint32_t *n);

/* Decodes one record body (borrowed) into *m. server_id and
 * server_address are set to 0 and NULL. What the message carries is
 * allocated with raft_malloc, as raft_uv allocates what it receives, and
 * owned by the caller until handed to raft's receive callback: for
 * APPEND_ENTRIES the entries array and one batch that holds every entry's
 * data (entries[i].batch, NULL and no allocation when n is 0); for
 * INSTALL_SNAPSHOT data.base and the configuration.
 * Returns 0, or VC_EMALFORMED / VC_ENOMEM with a one-line errmsg
 * (nothing is left allocated then). The version bytes are raft's own
 * (struct raft_message's version fields), carried as they are. */
int proto_raftmsg_decode(const uint8_t *body, size_t len,
                         struct raft_message *m, char *errmsg, size_t errlen);

/* Frees what proto_raftmsg_decode() allocated in m (a message that never
 * reached raft). */
void proto_raftmsg_free(struct raft_message *m);

#endif
