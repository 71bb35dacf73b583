/* Fuzz target: raft message record bodies (proto_raftmsg_decode), which
 * an agent decodes from every peer on the secure channel and hands to
 * raft.
 *
 * The input is one record body. A refusal says why, leaves the message
 * zeroed and nothing allocated (the fuzzer's leak check). What decodes is
 * what raft expects to receive (entries sharing one batch, back to back;
 * servers with ids, known roles, distinct ids and addresses; no sender)
 * and the encoding is canonical: proto_raftmsg_size()/write() give back a
 * record whose prefix announces the input's length and whose body is the
 * input, byte for byte. The first four bytes also go through
 * proto_raftmsg_peek(), which must agree with the limits.
 */
#include <raft.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include <sodium.h>

#include "proto/err.h"
#include "proto/raftmsg.h"

static bool all_zero(const void *p, size_t n)
{
    return sodium_is_zero(p, n);
}

static void check_peek(const uint8_t *data, size_t size)
{
    uint32_t n;
    if (size < PROTO_RAFTMSG_HEAD)
        return;
    uint32_t be = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                  (uint32_t)data[2] << 8 | data[3];
    int rv = proto_raftmsg_peek(data, &n);
    FUZZ_CHECK(n == be, "peek: %u for %u", n, be);
    FUZZ_CHECK((rv == 0) == (be >= 1 && be <= PROTO_RAFTMSG_MAX),
               "peek: %d for %u", rv, be);
    FUZZ_CHECK(rv == 0 || rv == VC_EMALFORMED, "peek: code %d", rv);
}

static void check_entries(const struct raft_append_entries *a, size_t size)
{
    if (a->n_entries == 0) {
        FUZZ_CHECK(a->entries == NULL, "entries without a count");
        return;
    }
    FUZZ_CHECK(a->entries != NULL, "no entries array");
    const uint8_t *batch = a->entries[0].batch, *next = batch;
    size_t total = 0;
    FUZZ_CHECK(batch != NULL, "no batch");
    for (unsigned i = 0; i < a->n_entries; i++) {
        const struct raft_entry *e = &a->entries[i];
        FUZZ_CHECK(e->batch == batch, "entry %u: another batch", i);
        FUZZ_CHECK(e->buf.base == next, "entry %u: not back to back", i);
        FUZZ_CHECK(e->type >= RAFT_COMMAND && e->type <= RAFT_CHANGE,
                   "entry %u: type %d", i, (int)e->type);
        total += e->buf.len;
        next += e->buf.len;
    }
    FUZZ_CHECK(total <= size, "entries hold %zu bytes of %zu", total, size);
}

static void check_snapshot(const struct raft_install_snapshot *s, size_t size)
{
    const struct raft_configuration *c = &s->conf;
    FUZZ_CHECK(s->data.base != NULL && s->data.len <= size, "data");
    FUZZ_CHECK(c->n == 0 || c->servers != NULL, "servers");
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_server *sv = &c->servers[i];
        FUZZ_CHECK(sv->id != 0, "server %u: id 0", i);
        FUZZ_CHECK(sv->role == RAFT_STANDBY || sv->role == RAFT_VOTER ||
                       sv->role == RAFT_SPARE,
                   "server %u: role %d", i, sv->role);
        FUZZ_CHECK(sv->address &&
                       strlen(sv->address) <= PROTO_RAFTMSG_ADDR_MAX,
                   "server %u: address", i);
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(c->servers[j].id != sv->id &&
                           strcmp(c->servers[j].address, sv->address) != 0,
                       "servers %u and %u: duplicates", j, i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct raft_message m;
    char err[256] = "";
    uint32_t n;
    check_peek(data, size);
    int rv = proto_raftmsg_decode(data, size, &m, err, sizeof err);
    if (rv != 0) {
        FUZZ_CHECK(rv == VC_EMALFORMED || rv == VC_ENOMEM,
                   "unexpected code %d", rv);
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(all_zero(&m, sizeof m), "refused, message not cleared");
        return 0;
    }
    FUZZ_CHECK(size >= 2 && m.type == data[0], "type %d", (int)m.type);
    FUZZ_CHECK(m.server_id == 0 && m.server_address == NULL, "sender set");
    if (m.type == RAFT_APPEND_ENTRIES)
        check_entries(&m.append_entries, size);
    else if (m.type == RAFT_INSTALL_SNAPSHOT)
        check_snapshot(&m.install_snapshot, size);

    /* Canonical: the encoder writes back exactly the input. */
    size_t len = proto_raftmsg_size(&m);
    FUZZ_CHECK(len == PROTO_RAFTMSG_HEAD + size,
               "type %d: %zu-byte body re-encodes to %zu bytes%s",
               (int)m.type, size, len ? len - PROTO_RAFTMSG_HEAD : 0,
               len ? "" : " (size 0: cannot be encoded)");
    uint8_t *out = malloc(len);
    FUZZ_CHECK(out != NULL, "oom");
    proto_raftmsg_write(&m, out);
    FUZZ_CHECK(proto_raftmsg_peek(out, &n) == 0 && n == size,
               "prefix announces %u of %zu", n, size);
    for (size_t i = 0; i < size; i++)
        FUZZ_CHECK(out[PROTO_RAFTMSG_HEAD + i] == data[i],
                   "type %d: byte %zu of %zu re-encodes as %#x, was %#x",
                   (int)m.type, i, size, out[PROTO_RAFTMSG_HEAD + i],
                   data[i]);
    free(out);
    proto_raftmsg_free(&m);
    FUZZ_CHECK(all_zero(&m, sizeof m), "free left the message set");
    return 0;
}
