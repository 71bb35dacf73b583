/* proto/raftmsg: raft messages as channel records. Round trips of every
 * message type and field, the record prefix, the encoder's limits, and the
 * decoder's refusals: every truncation, trailing bytes, unknown types,
 * flags, entry types and roles, inconsistent lengths and counts, bad
 * servers. Allocations go through a counting raft heap, so a refusal that
 * leaves something allocated, or allocates before it refuses, fails here
 * and not only under ASan; the heap also fails chosen allocations to drive
 * the VC_ENOMEM paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <raft.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "proto/raftmsg.h"

/* --- a counting raft heap -------------------------------------------------- */

struct heap {
    long live;       /* allocations not freed */
    long count;      /* allocations made */
    size_t largest;  /* largest single request, bytes */
    long fail_at;    /* the count'th allocation fails (0: none does) */
};

static struct heap heap;

static bool heap_take(size_t size)
{
    heap.count++;
    if (size > heap.largest)
        heap.largest = size;
    return heap.fail_at == 0 || heap.count != heap.fail_at;
}

static void *h_malloc(void *data, size_t size)
{
    (void)data;
    void *p = heap_take(size) ? malloc(size) : NULL;
    heap.live += p != NULL;
    return p;
}

static void h_free(void *data, void *ptr)
{
    (void)data;
    heap.live -= ptr != NULL;
    free(ptr);
}

static void *h_calloc(void *data, size_t nmemb, size_t size)
{
    (void)data;
    /* nmemb * size cannot overflow for the counts the decoder allows; the
     * largest request is what the test looks at. */
    void *p = heap_take(nmemb * size) ? calloc(nmemb, size) : NULL;
    heap.live += p != NULL;
    return p;
}

static void *h_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    if (!heap_take(size))
        return NULL;
    void *p = realloc(ptr, size);
    heap.live += p != NULL && ptr == NULL;
    return p;
}

static void *h_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    void *p = heap_take(size) ? aligned_alloc(alignment, size) : NULL;
    heap.live += p != NULL;
    return p;
}

static void h_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)alignment;
    h_free(data, ptr);
}

static struct raft_heap counting = {NULL,      h_malloc,        h_free,
                                    h_calloc,  h_realloc,       h_aligned_alloc,
                                    h_aligned_free};

static int setup(void **state)
{
    (void)state;
    memset(&heap, 0, sizeof heap);
    raft_heap_set(&counting);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    raft_heap_set_default();
    if (heap.live != 0) {
        fprintf(stderr, "%ld raft allocations left\n", heap.live);
        return -1;
    }
    return 0;
}

/* --- helpers --------------------------------------------------------------- */

/* Encodes m into a malloc'd record of exactly its size (ASan catches a
 * write past it); checks the prefix announces the rest. */
static uint8_t *encode(const struct raft_message *m, size_t *len)
{
    size_t n = proto_raftmsg_size(m);
    uint32_t body;
    assert_true(n > PROTO_RAFTMSG_HEAD);
    uint8_t *rec = malloc(n);
    assert_non_null(rec);
    proto_raftmsg_write(m, rec);
    assert_int_equal(proto_raftmsg_peek(rec, &body), 0);
    assert_int_equal(body, n - PROTO_RAFTMSG_HEAD);
    *len = n;
    return rec;
}

/* Decodes len bytes at body (copied to a buffer of exactly len bytes)
 * into *out; returns the result, with the message in err. */
static int decode(const uint8_t *body, size_t len, struct raft_message *out,
                  char *err, size_t errlen)
{
    uint8_t *copy = dup_exact(body, len);
    err[0] = '\0';
    int rv = proto_raftmsg_decode(copy, len, out, err, errlen);
    free(copy);
    return rv;
}

/* Encodes m, decodes the record's body into *out and asserts it decoded;
 * the sender fields are left unset. */
static void round_trip(const struct raft_message *m, struct raft_message *out)
{
    size_t n;
    char err[256];
    uint8_t *rec = encode(m, &n);
    int rv = decode(rec + PROTO_RAFTMSG_HEAD, n - PROTO_RAFTMSG_HEAD, out,
                    err, sizeof err);
    if (rv != 0)
        fail_msg("decode: %d %s", rv, err);
    free(rec);
    assert_int_equal(out->type, m->type);
    assert_int_equal(out->server_id, 0);
    assert_null(out->server_address);
}

static bool all_zero(const void *p, size_t n)
{
    return sodium_is_zero(p, n);
}

/* Asserts body[0..len) is refused as malformed with a message, leaving
 * *m zeroed and nothing allocated. */
#define refuse(body, len) refuse_at((body), (len), __FILE__, __LINE__)
static void refuse_at(const uint8_t *body, size_t len, const char *file,
                      int line)
{
    struct raft_message m;
    char err[256];
    long live = heap.live;
    int rv = decode(body, len, &m, err, sizeof err);
    if (rv == 0)
        proto_raftmsg_free(&m);
    if (rv != VC_EMALFORMED) {
        print_error("%zu bytes: decode returned %d, not VC_EMALFORMED\n",
                    len, rv);
        _fail(file, line);
    }
    if (err[0] == '\0' || strchr(err, '\n')) {
        print_error("%zu bytes: refused without a one-line message\n", len);
        _fail(file, line);
    }
    if (!all_zero(&m, sizeof m) || heap.live != live) {
        print_error("%zu bytes: refused, message or allocations left\n",
                    len);
        _fail(file, line);
    }
}

/* Little-endian patches of an encoded body. */
static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
    le16(p, (uint16_t)v);
    le16(p + 2, (uint16_t)(v >> 16));
}

static void le64(uint8_t *p, uint64_t v)
{
    le32(p, (uint32_t)v);
    le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Offsets in a body (type, version, then the fields). */
#define OFF_RV_FLAGS (2 + 4 * 8)
#define OFF_RVR_FLAGS (2 + 8)
#define OFF_N (2 + 4 * 8) /* append entries and install snapshot */
#define OFF_LIST (OFF_N + 4)
#define ENTRY_HEAD 13
#define SERVER_HEAD 11

/* --- sample messages ------------------------------------------------------- */

static struct raft_message request_vote(unsigned char version, bool disrupt,
                                        bool pre)
{
    struct raft_message m = {.type = RAFT_REQUEST_VOTE};
    m.server_id = 9; /* not encoded */
    m.server_address = "10.0.0.9:7000";
    m.request_vote = (struct raft_request_vote){
        version, 0x0102030405060708ull, 3, UINT64_MAX, 0x8000000000000001ull,
        disrupt, pre};
    return m;
}

static struct raft_message vote_result(unsigned char version, bool granted,
                                       bool pre, unsigned short features,
                                       unsigned short capacity)
{
    struct raft_message m = {.type = RAFT_REQUEST_VOTE_RESULT};
    m.request_vote_result = (struct raft_request_vote_result){
        version, 0xfedcba9876543210ull, granted, pre, features, capacity};
    return m;
}

static struct raft_message entries_result(unsigned char version,
                                          unsigned short features,
                                          unsigned short capacity)
{
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES_RESULT};
    m.append_entries_result = (struct raft_append_entries_result){
        version, 77, 0x1122334455667788ull, UINT64_MAX - 1, features,
        capacity};
    return m;
}

static struct raft_message timeout_now(unsigned char version)
{
    struct raft_message m = {.type = RAFT_TIMEOUT_NOW};
    m.timeout_now = (struct raft_timeout_now){version, 5, UINT64_MAX,
                                              0x0100000000000000ull};
    return m;
}

/* Up to 8 entries whose data is filled from a pattern. */
static uint8_t entry_data[8][600];

static struct raft_message append_entries(struct raft_entry *e, unsigned n,
                                          const size_t *lens,
                                          const enum raft_entry_type *types)
{
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES};
    for (unsigned i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof entry_data[i]; k++)
            entry_data[i][k] = (uint8_t)(i * 31 + k * 7 + 1);
        e[i] = (struct raft_entry){.term = 1000 + i, .type = types[i]};
        e[i].buf.base = entry_data[i];
        e[i].buf.len = lens[i];
    }
    m.append_entries = (struct raft_append_entries){
        2, 0xaabbccddeeff0011ull, 41, 40, 39, n ? e : NULL, n};
    return m;
}

static char addr255[PROTO_RAFTMSG_ADDR_MAX + 1];
static char addr256[PROTO_RAFTMSG_ADDR_MAX + 2];

static void fill_addrs(void)
{
    memset(addr255, 'a', PROTO_RAFTMSG_ADDR_MAX);
    addr255[PROTO_RAFTMSG_ADDR_MAX] = '\0';
    memset(addr256, 'b', PROTO_RAFTMSG_ADDR_MAX + 1);
    addr256[PROTO_RAFTMSG_ADDR_MAX + 1] = '\0';
}

/* Three servers of mixed roles: a voter, a standby with the longest
 * address, a spare with a short one. */
static struct raft_server three[3];

static struct raft_message install_snapshot(uint8_t *data, size_t len)
{
    struct raft_message m = {.type = RAFT_INSTALL_SNAPSHOT};
    fill_addrs();
    three[0] = (struct raft_server){1, "10.0.0.1:7000", RAFT_VOTER};
    three[1] = (struct raft_server){0x0123456789abcdefull, addr255,
                                    RAFT_STANDBY};
    three[2] = (struct raft_server){UINT64_MAX, "s2", RAFT_SPARE};
    m.install_snapshot.version = 1;
    m.install_snapshot.term = 12;
    m.install_snapshot.last_index = 0x7766554433221100ull;
    m.install_snapshot.last_term = 11;
    m.install_snapshot.conf.servers = three;
    m.install_snapshot.conf.n = 3;
    m.install_snapshot.conf_index = 0x7766554433221000ull;
    m.install_snapshot.data.base = data;
    m.install_snapshot.data.len = len;
    return m;
}

/* --- round trips ----------------------------------------------------------- */

static void request_vote_round_trip(void **state)
{
    (void)state;
    static const unsigned char versions[] = {1, 2, 255, 0};
    for (size_t v = 0; v < sizeof versions; v++)
        for (int flags = 0; flags < 4; flags++) {
            struct raft_message m =
                request_vote(versions[v], flags & 1, flags & 2);
            struct raft_message out;
            round_trip(&m, &out);
            const struct raft_request_vote *a = &m.request_vote,
                                           *b = &out.request_vote;
            assert_int_equal(b->version, a->version);
            assert_int_equal(b->term, a->term);
            assert_int_equal(b->candidate_id, a->candidate_id);
            assert_int_equal(b->last_log_index, a->last_log_index);
            assert_int_equal(b->last_log_term, a->last_log_term);
            assert_int_equal(b->disrupt_leader, a->disrupt_leader);
            assert_int_equal(b->pre_vote, a->pre_vote);
            proto_raftmsg_free(&out);
        }
    assert_int_equal(heap.count, 0); /* nothing to allocate */
}

static void vote_result_round_trip(void **state)
{
    (void)state;
    static const unsigned short shorts[][2] = {
        {0, 0}, {1, 0xffff}, {0xffff, 1}, {0x1234, 0xabcd}};
    for (size_t s = 0; s < 4; s++)
        for (int flags = 0; flags < 4; flags++) {
            struct raft_message m =
                vote_result((unsigned char)(s + 1), flags & 1, flags & 2,
                            shorts[s][0], shorts[s][1]);
            struct raft_message out;
            round_trip(&m, &out);
            const struct raft_request_vote_result *a = &m.request_vote_result,
                                                  *b = &out.request_vote_result;
            assert_int_equal(b->version, a->version);
            assert_int_equal(b->term, a->term);
            assert_int_equal(b->vote_granted, a->vote_granted);
            assert_int_equal(b->pre_vote, a->pre_vote);
            assert_int_equal(b->features, a->features);
            assert_int_equal(b->capacity, a->capacity);
            proto_raftmsg_free(&out);
        }
}

static void entries_result_and_timeout_round_trip(void **state)
{
    (void)state;
    static const unsigned short shorts[][2] = {
        {0, 0}, {1, 0xffff}, {0xffff, 1}, {0x1234, 0xabcd}};
    for (size_t s = 0; s < 4; s++) {
        struct raft_message m = entries_result((unsigned char)(s * 80),
                                               shorts[s][0], shorts[s][1]);
        struct raft_message out;
        round_trip(&m, &out);
        const struct raft_append_entries_result *a = &m.append_entries_result,
                                                *b = &out.append_entries_result;
        assert_int_equal(b->version, a->version);
        assert_int_equal(b->term, a->term);
        assert_int_equal(b->rejected, a->rejected);
        assert_int_equal(b->last_log_index, a->last_log_index);
        assert_int_equal(b->features, a->features);
        assert_int_equal(b->capacity, a->capacity);
        proto_raftmsg_free(&out);

        m = timeout_now((unsigned char)(s * 80 + 1));
        round_trip(&m, &out);
        assert_int_equal(out.timeout_now.version, m.timeout_now.version);
        assert_int_equal(out.timeout_now.term, m.timeout_now.term);
        assert_int_equal(out.timeout_now.last_log_index,
                         m.timeout_now.last_log_index);
        assert_int_equal(out.timeout_now.last_log_term,
                         m.timeout_now.last_log_term);
        proto_raftmsg_free(&out);
    }
    assert_int_equal(heap.count, 0);
}

/* Decodes m's record and checks every entry against m's, that all share
 * entries[0].batch and that each buf lies in it, back to back. */
static void check_entries(const struct raft_message *m)
{
    const struct raft_append_entries *a = &m->append_entries;
    struct raft_message out;
    long before = heap.count;
    round_trip(m, &out);
    const struct raft_append_entries *b = &out.append_entries;
    assert_int_equal(b->version, a->version);
    assert_int_equal(b->term, a->term);
    assert_int_equal(b->prev_log_index, a->prev_log_index);
    assert_int_equal(b->prev_log_term, a->prev_log_term);
    assert_int_equal(b->leader_commit, a->leader_commit);
    assert_int_equal(b->n_entries, a->n_entries);
    if (a->n_entries == 0) {
        assert_null(b->entries);
        assert_int_equal(heap.count, before); /* no allocation */
        proto_raftmsg_free(&out);
        return;
    }
    assert_non_null(b->entries);
    const uint8_t *batch = b->entries[0].batch, *next = batch;
    assert_non_null(batch);
    for (unsigned i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        assert_int_equal(y->term, x->term);
        assert_int_equal(y->type, x->type);
        assert_int_equal(y->buf.len, x->buf.len);
        assert_ptr_equal(y->batch, batch);
        assert_ptr_equal(y->buf.base, next); /* in the batch, in order */
        if (x->buf.len)
            assert_memory_equal(y->buf.base, x->buf.base, x->buf.len);
        next += y->buf.len;
    }
    /* Two allocations: the array and the batch. */
    assert_int_equal(heap.count, before + 2);
    proto_raftmsg_free(&out);
    assert_true(all_zero(&out, sizeof out));
}

static void append_entries_round_trip(void **state)
{
    (void)state;
    static const enum raft_entry_type types[] = {RAFT_COMMAND, RAFT_BARRIER,
                                                 RAFT_CHANGE};
    struct raft_entry e[8];
    struct raft_message m;

    /* A heartbeat: no entries. */
    m = append_entries(e, 0, NULL, NULL);
    check_entries(&m);

    /* One entry of each type, with data and with none. */
    for (int t = 0; t < 3; t++) {
        static const size_t lens[] = {0, 1, 600};
        for (int l = 0; l < 3; l++) {
            m = append_entries(e, 1, &lens[l], &types[t]);
            check_entries(&m);
        }
    }

    /* Several entries, every type, a 0-length one in the middle. */
    {
        static const size_t lens[] = {17, 0, 600, 1, 255, 0, 64, 3};
        static const enum raft_entry_type ts[] = {
            RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE, RAFT_COMMAND,
            RAFT_CHANGE,  RAFT_COMMAND, RAFT_BARRIER, RAFT_COMMAND};
        m = append_entries(e, 8, lens, ts);
        check_entries(&m);
    }

    /* Several entries all of 0 bytes: a batch is still allocated (raft
     * frees entries[0].batch). */
    {
        static const size_t lens[] = {0, 0, 0};
        m = append_entries(e, 3, lens, types);
        check_entries(&m);
    }
}

static void check_snapshot(const struct raft_message *m)
{
    const struct raft_install_snapshot *a = &m->install_snapshot;
    struct raft_message out;
    round_trip(m, &out);
    const struct raft_install_snapshot *b = &out.install_snapshot;
    assert_int_equal(b->version, a->version);
    assert_int_equal(b->term, a->term);
    assert_int_equal(b->last_index, a->last_index);
    assert_int_equal(b->last_term, a->last_term);
    assert_int_equal(b->conf_index, a->conf_index);
    assert_int_equal(b->conf.n, a->conf.n);
    for (unsigned i = 0; i < a->conf.n; i++) {
        assert_int_equal(b->conf.servers[i].id, a->conf.servers[i].id);
        assert_int_equal(b->conf.servers[i].role, a->conf.servers[i].role);
        assert_string_equal(b->conf.servers[i].address,
                            a->conf.servers[i].address);
    }
    assert_int_equal(b->data.len, a->data.len);
    assert_non_null(b->data.base); /* raft frees it, even when empty */
    if (a->data.len)
        assert_memory_equal(b->data.base, a->data.base, a->data.len);
    proto_raftmsg_free(&out);
    assert_true(all_zero(&out, sizeof out));
}

static void install_snapshot_round_trip(void **state)
{
    (void)state;
    static uint8_t data[5 * 1024 + 3];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + (i >> 8));
    struct raft_message m = install_snapshot(data, sizeof data);
    check_snapshot(&m);
    m = install_snapshot(NULL, 0);
    check_snapshot(&m);
    /* No servers at all, and one with an empty address. */
    m.install_snapshot.conf.n = 0;
    check_snapshot(&m);
    three[0].address = "";
    m.install_snapshot.conf.n = 1;
    check_snapshot(&m);
}

/* --- prefix and limits ----------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void peek(void **state)
{
    (void)state;
    uint8_t h[PROTO_RAFTMSG_HEAD];
    uint32_t n;
    be32(h, 0);
    assert_int_equal(proto_raftmsg_peek(h, &n), VC_EMALFORMED);
    be32(h, 1);
    assert_int_equal(proto_raftmsg_peek(h, &n), 0);
    assert_int_equal(n, 1);
    be32(h, 0x00010203);
    assert_int_equal(proto_raftmsg_peek(h, &n), 0);
    assert_int_equal(n, 0x00010203); /* big-endian */
    be32(h, PROTO_RAFTMSG_MAX);
    assert_int_equal(proto_raftmsg_peek(h, &n), 0);
    assert_int_equal(n, PROTO_RAFTMSG_MAX);
    be32(h, PROTO_RAFTMSG_MAX + 1);
    assert_int_equal(proto_raftmsg_peek(h, &n), VC_EMALFORMED);
    be32(h, UINT32_MAX);
    assert_int_equal(proto_raftmsg_peek(h, &n), VC_EMALFORMED);
}

static void size_limits(void **state)
{
    (void)state;
    struct raft_message m = timeout_now(1);
    assert_int_equal(proto_raftmsg_size(&m), PROTO_RAFTMSG_HEAD + 2 + 24);
    m.type = 0;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    m.type = RAFT_TIMEOUT_NOW + 1;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    m.type = (enum raft_message_type)255;
    assert_int_equal(proto_raftmsg_size(&m), 0);

    /* An address of PROTO_RAFTMSG_ADDR_MAX bytes is encoded, one more is
     * not. */
    m = install_snapshot(NULL, 0);
    size_t n = proto_raftmsg_size(&m);
    assert_int_equal(n, PROTO_RAFTMSG_HEAD + 2 + 4 * 8 + 4 + 3 * SERVER_HEAD +
                            strlen("10.0.0.1:7000") + PROTO_RAFTMSG_ADDR_MAX +
                            2);
    three[1].address = addr256;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    three[1].address = addr255;

    /* A body over PROTO_RAFTMSG_MAX (the data is not read). */
    m.install_snapshot.data.base = (void *)addr255;
    m.install_snapshot.data.len = PROTO_RAFTMSG_MAX;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    m.install_snapshot.data.len = SIZE_MAX;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    m.install_snapshot.data.len = PROTO_RAFTMSG_MAX - (n - PROTO_RAFTMSG_HEAD);
    assert_int_equal(proto_raftmsg_size(&m),
                     PROTO_RAFTMSG_HEAD + PROTO_RAFTMSG_MAX);

    struct raft_entry e[2];
    static const size_t lens[] = {1, 1};
    static const enum raft_entry_type ts[] = {RAFT_COMMAND, RAFT_COMMAND};
    m = append_entries(e, 2, lens, ts);
    e[1].buf.len = PROTO_RAFTMSG_MAX;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    e[1].buf.len = (size_t)UINT32_MAX + 2; /* would wrap a u32 length */
    assert_int_equal(proto_raftmsg_size(&m), 0);
    e[1].buf.len = 1;
    assert_int_equal(proto_raftmsg_size(&m),
                     PROTO_RAFTMSG_HEAD + 2 + 36 + 2 * (ENTRY_HEAD + 1));
}

/* --- refusals -------------------------------------------------------------- */

/* Every prefix of body shorter than len is refused. */
static void refuse_prefixes(const uint8_t *body, size_t len)
{
    for (size_t k = 0; k < len; k++)
        refuse(body, k);
}

/* A copy of rec's body with one more byte, refused. */
static void refuse_trailing(const uint8_t *rec, size_t n)
{
    size_t len = n - PROTO_RAFTMSG_HEAD;
    uint8_t *b = malloc(len + 1);
    assert_non_null(b);
    memcpy(b, rec + PROTO_RAFTMSG_HEAD, len);
    b[len] = 0;
    refuse(b, len + 1);
    b[len] = 0xff;
    refuse(b, len + 1);
    free(b);
}

static void truncated_and_trailing(void **state)
{
    (void)state;
    struct raft_entry e[8];
    static const size_t lens[] = {5, 0, 9};
    static const enum raft_entry_type ts[] = {RAFT_COMMAND, RAFT_BARRIER,
                                              RAFT_CHANGE};
    struct raft_message ms[] = {
        request_vote(1, true, true),
        vote_result(2, true, false, 1, 2),
        entries_result(1, 3, 4),
        timeout_now(1),
        append_entries(e, 0, NULL, NULL),
        append_entries(e, 3, lens, ts),
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        size_t n;
        uint8_t *rec = encode(&ms[i], &n);
        refuse_prefixes(rec + PROTO_RAFTMSG_HEAD, n - PROTO_RAFTMSG_HEAD);
        refuse_trailing(rec, n);
        free(rec);
    }
    assert_int_equal(heap.count, 0); /* every refusal before allocating */
}

/* The snapshot's data is the rest of the body, so the record's length is
 * all that delimits it: a prefix that cuts into the data is a snapshot
 * with less data, and a byte more is a snapshot with more. Every prefix
 * that cuts into the fixed fields or the servers is refused. */
static void snapshot_truncated(void **state)
{
    (void)state;
    static uint8_t data[40];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(0xa0 + i);
    struct raft_message m = install_snapshot(data, sizeof data), out;
    size_t n;
    char err[256];
    uint8_t *rec = encode(&m, &n);
    const uint8_t *body = rec + PROTO_RAFTMSG_HEAD;
    size_t len = n - PROTO_RAFTMSG_HEAD, head = len - sizeof data;
    refuse_prefixes(body, head);
    assert_int_equal(heap.live, 0);
    for (size_t k = head; k <= len; k++) {
        assert_int_equal(decode(body, k, &out, err, sizeof err), 0);
        assert_int_equal(out.install_snapshot.conf.n, 3);
        assert_int_equal(out.install_snapshot.data.len, k - head);
        assert_memory_equal(out.install_snapshot.data.base, data, k - head);
        proto_raftmsg_free(&out);
    }
    free(rec);
}

static void unknown_type_and_flags(void **state)
{
    (void)state;
    size_t n;
    struct raft_message m = request_vote(1, false, false);
    uint8_t *rec = encode(&m, &n), *b = rec + PROTO_RAFTMSG_HEAD;
    size_t len = n - PROTO_RAFTMSG_HEAD;
    static const uint8_t types[] = {0, RAFT_TIMEOUT_NOW + 1, 0x80, 0xff};
    for (size_t i = 0; i < sizeof types; i++) {
        b[0] = types[i];
        refuse(b, len);
    }
    b[0] = RAFT_REQUEST_VOTE;
    for (int bit = 2; bit < 8; bit++) {
        b[OFF_RV_FLAGS] = (uint8_t)(1u << bit);
        refuse(b, len);
        b[OFF_RV_FLAGS] = (uint8_t)(3u | 1u << bit);
        refuse(b, len);
    }
    free(rec);

    m = vote_result(1, true, true, 0, 0);
    rec = encode(&m, &n);
    b = rec + PROTO_RAFTMSG_HEAD;
    len = n - PROTO_RAFTMSG_HEAD;
    for (int bit = 2; bit < 8; bit++) {
        b[OFF_RVR_FLAGS] = (uint8_t)(3u | 1u << bit);
        refuse(b, len);
    }
    free(rec);
    /* A bare type byte of each kind, and nothing at all. */
    for (uint8_t t = 0; t <= RAFT_TIMEOUT_NOW + 1; t++) {
        refuse(&t, 1);
        uint8_t two[2] = {t, 1};
        refuse(two, 2);
    }
    refuse((const uint8_t *)"", 0);
    assert_int_equal(heap.count, 0);
}

static void bad_entries(void **state)
{
    (void)state;
    struct raft_entry e[8];
    static const size_t lens[] = {5, 0, 9};
    static const enum raft_entry_type ts[] = {RAFT_COMMAND, RAFT_BARRIER,
                                              RAFT_CHANGE};
    struct raft_message m = append_entries(e, 3, lens, ts);
    size_t n;
    uint8_t *rec = encode(&m, &n), *b = rec + PROTO_RAFTMSG_HEAD;
    size_t len = n - PROTO_RAFTMSG_HEAD;
    for (unsigned i = 0; i < 3; i++) {
        uint8_t *type = b + OFF_LIST + i * ENTRY_HEAD + 8;
        uint8_t *elen = type + 1;
        static const uint8_t bad_types[] = {0, RAFT_CHANGE + 1, 0xff};
        for (size_t t = 0; t < sizeof bad_types; t++) {
            *type = bad_types[t];
            refuse(b, len);
        }
        *type = (uint8_t)ts[i];
        /* Lengths that do not sum to what follows. */
        uint32_t l = rd32(elen);
        le32(elen, l + 1);
        refuse(b, len);
        if (l) {
            le32(elen, l - 1);
            refuse(b, len);
        }
        le32(elen, UINT32_MAX);
        refuse(b, len);
        le32(elen, l);
    }
    /* Counts that do not match the heads: one more, one less, huge. */
    static const uint32_t counts[] = {4, 2, 1, 0, UINT32_MAX,
                                      UINT32_MAX / ENTRY_HEAD};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        le32(b + OFF_N, counts[c]);
        refuse(b, len);
    }
    le32(b + OFF_N, 3);
    struct raft_message out;
    char err[256];
    assert_int_equal(decode(b, len, &out, err, sizeof err), 0);
    proto_raftmsg_free(&out);
    free(rec);
    heap.count = 0;
    heap.largest = 0;

    /* A huge count in a short body is refused before anything is
     * allocated: a 36-byte body claiming 2^32 - 1 entries, and the same
     * with a few KiB of bytes that cannot hold that many heads. */
    static uint8_t big[2 + OFF_LIST + 4096];
    memset(big, 0, sizeof big);
    big[0] = RAFT_APPEND_ENTRIES;
    big[1] = 1;
    le32(big + OFF_N, UINT32_MAX);
    refuse(big, OFF_LIST);
    refuse(big, sizeof big);
    le32(big + OFF_N, (uint32_t)((sizeof big - OFF_LIST) / ENTRY_HEAD + 1));
    refuse(big, sizeof big);
    assert_int_equal(heap.count, 0);
}

/* A snapshot body whose servers are patched by f, refused. */
static void bad_servers(void **state)
{
    (void)state;
    struct raft_message m = install_snapshot(NULL, 0);
    three[1].address = "10.0.0.2:7000"; /* short addresses: known offsets */
    three[2].address = "10.0.0.3:7000";
    size_t n;
    uint8_t *rec = encode(&m, &n), *b = rec + PROTO_RAFTMSG_HEAD;
    size_t len = n - PROTO_RAFTMSG_HEAD;
    const size_t alen = strlen("10.0.0.1:7000"), step = SERVER_HEAD + alen;
    uint8_t *s1 = b + OFF_LIST + step; /* the second server */
    uint8_t *copy = malloc(len + 300);
    assert_non_null(copy);

    /* Server id 0. */
    memcpy(copy, b, len);
    memset(copy + OFF_LIST + step, 0, 8);
    refuse(copy, len);
    /* Roles 3, 7, 0xff. */
    static const uint8_t roles[] = {3, 7, 0xff};
    for (size_t r = 0; r < sizeof roles; r++) {
        memcpy(copy, b, len);
        copy[OFF_LIST + step + 8] = roles[r];
        refuse(copy, len);
    }
    /* Duplicate id: the third server takes the first one's. */
    memcpy(copy, b, len);
    memcpy(copy + OFF_LIST + 2 * step, b + OFF_LIST, 8);
    refuse(copy, len);
    /* Duplicate address: the second takes the first one's. */
    memcpy(copy, b, len);
    memcpy(copy + OFF_LIST + step + SERVER_HEAD, b + OFF_LIST + SERVER_HEAD,
           alen);
    refuse(copy, len);
    /* An address with an embedded NUL, first and last byte too. */
    static const size_t at[] = {0, 4, alen - 1};
    for (size_t i = 0; i < 3; i++) {
        memcpy(copy, b, len);
        copy[OFF_LIST + step + SERVER_HEAD + at[i]] = '\0';
        refuse(copy, len);
    }
    /* Address lengths: one byte more or less than written (the rest no
     * longer parses), 256 and 0xffff with the bytes there. */
    memcpy(copy, b, len);
    le16(copy + OFF_LIST + step + 9, (uint16_t)(alen + 1));
    refuse(copy, len);
    le16(copy + OFF_LIST + step + 9, (uint16_t)(alen - 1));
    refuse(copy, len);
    {
        /* One server whose address is 256 'x's: bytes all present. */
        size_t blen = OFF_LIST + SERVER_HEAD + 256;
        memcpy(copy, b, OFF_LIST);
        le32(copy + OFF_N, 1);
        memcpy(copy + OFF_LIST, s1, SERVER_HEAD);
        le16(copy + OFF_LIST + 9, 256);
        memset(copy + OFF_LIST + SERVER_HEAD, 'x', 256);
        refuse(copy, blen);
        le16(copy + OFF_LIST + 9, 0xffff);
        refuse(copy, blen);
        le16(copy + OFF_LIST + 9, 255); /* 255 is fine: one byte of data */
        struct raft_message out;
        char err[256];
        assert_int_equal(decode(copy, blen, &out, err, sizeof err), 0);
        assert_int_equal(strlen(out.install_snapshot.conf.servers[0].address),
                         255);
        assert_int_equal(out.install_snapshot.data.len, 1);
        proto_raftmsg_free(&out);
    }
    /* Server counts: one more than there are (the data is empty, so the
     * fourth is cut short), huge. */
    memcpy(copy, b, len);
    le32(copy + OFF_N, 4);
    refuse(copy, len);
    le32(copy + OFF_N, UINT32_MAX);
    long before = heap.count;
    refuse(copy, len);
    assert_int_equal(heap.count, before); /* refused before allocating */
    assert_int_equal(heap.live, 0);
    free(copy);
    free(rec);
}

/* PROTO_RAFTMSG_SERVERS_MAX servers decode; one more is refused before
 * any is added (raft's duplicate check makes each add cost the count so
 * far), and the encoder will not write it either. */
static void server_cap(void **state)
{
    (void)state;
    static struct raft_server many[PROTO_RAFTMSG_SERVERS_MAX + 1];
    static char addrs[PROTO_RAFTMSG_SERVERS_MAX + 1][16];
    for (unsigned i = 0; i <= PROTO_RAFTMSG_SERVERS_MAX; i++) {
        snprintf(addrs[i], sizeof addrs[i], "s%u", i);
        many[i] = (struct raft_server){i + 1, addrs[i], RAFT_VOTER};
    }
    struct raft_message m = install_snapshot(NULL, 0);
    m.install_snapshot.conf.servers = many;
    m.install_snapshot.conf.n = PROTO_RAFTMSG_SERVERS_MAX;
    size_t n;
    uint8_t *rec = encode(&m, &n);
    struct raft_message out;
    char err[256];
    assert_int_equal(decode(rec + PROTO_RAFTMSG_HEAD, n - PROTO_RAFTMSG_HEAD,
                            &out, err, sizeof err), 0);
    assert_int_equal(out.install_snapshot.conf.n, PROTO_RAFTMSG_SERVERS_MAX);
    proto_raftmsg_free(&out);

    /* One more server appended by hand: count + 1, its bytes present. */
    const char *extra = addrs[PROTO_RAFTMSG_SERVERS_MAX];
    size_t blen = n - PROTO_RAFTMSG_HEAD, xlen = SERVER_HEAD + strlen(extra);
    uint8_t *big = malloc(blen + xlen);
    assert_non_null(big);
    memcpy(big, rec + PROTO_RAFTMSG_HEAD, blen);
    le64(big + blen, PROTO_RAFTMSG_SERVERS_MAX + 1);
    big[blen + 8] = RAFT_VOTER;
    le16(big + blen + 9, (uint16_t)strlen(extra));
    memcpy(big + blen + SERVER_HEAD, extra, strlen(extra));
    le32(big + OFF_N, PROTO_RAFTMSG_SERVERS_MAX + 1);
    long before = heap.count;
    refuse(big, blen + xlen);
    assert_int_equal(heap.count, before); /* refused before allocating */
    m.install_snapshot.conf.n = PROTO_RAFTMSG_SERVERS_MAX + 1;
    assert_int_equal(proto_raftmsg_size(&m), 0);
    free(big);
    free(rec);
}

/* Every allocation of a decode, failed in turn: VC_ENOMEM, a message,
 * nothing left allocated. */
static void out_of_memory(void **state)
{
    (void)state;
    struct raft_entry e[8];
    static const size_t lens[] = {5, 0, 9};
    static const enum raft_entry_type ts[] = {RAFT_COMMAND, RAFT_BARRIER,
                                              RAFT_CHANGE};
    static uint8_t data[100];
    struct raft_message ms[] = {append_entries(e, 3, lens, ts),
                                install_snapshot(data, sizeof data)};
    for (size_t i = 0; i < 2; i++) {
        size_t n;
        uint8_t *rec = encode(&ms[i], &n);
        struct raft_message out;
        char err[256];
        /* How many allocations a successful decode makes. */
        heap.count = 0;
        heap.fail_at = 0;
        assert_int_equal(decode(rec + PROTO_RAFTMSG_HEAD,
                                n - PROTO_RAFTMSG_HEAD, &out, err, sizeof err),
                         0);
        long allocs = heap.count;
        proto_raftmsg_free(&out);
        assert_true(allocs >= 2);
        for (long k = 1; k <= allocs; k++) {
            heap.count = 0;
            heap.fail_at = k;
            int rv = decode(rec + PROTO_RAFTMSG_HEAD, n - PROTO_RAFTMSG_HEAD,
                            &out, err, sizeof err);
            assert_int_equal(rv, VC_ENOMEM);
            assert_true(err[0] != '\0');
            assert_true(all_zero(&out, sizeof out));
            assert_int_equal(heap.live, 0);
        }
        heap.fail_at = 0;
        free(rec);
    }
}

/* errlen 0 is allowed: nothing is written. */
static void no_errmsg(void **state)
{
    (void)state;
    struct raft_message out;
    char err[4] = "abc";
    const uint8_t body[] = {0};
    assert_int_equal(proto_raftmsg_decode(body, 1, &out, err, 0),
                     VC_EMALFORMED);
    assert_string_equal(err, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(request_vote_round_trip),
        T(vote_result_round_trip),
        T(entries_result_and_timeout_round_trip),
        T(append_entries_round_trip),
        T(install_snapshot_round_trip),
        T(peek),
        T(size_limits),
        T(truncated_and_trailing),
        T(snapshot_truncated),
        T(unknown_type_and_flags),
        T(bad_entries),
        T(bad_servers),
        T(server_cap),
        T(out_of_memory),
        T(no_errmsg),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
