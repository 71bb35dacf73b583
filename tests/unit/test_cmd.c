/* proto/cmd: command validation, batch and result encodings, and the
 * decoders' behaviour on truncated, oversized, random and mutated input.
 * Inputs are copied into buffers of exactly their length so ASan sees any
 * read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "proto/cmd.h"

#define MAXCMDS 64

struct fx {
    struct proto_cmd *in;  /* MAXCMDS commands to encode */
    struct proto_cmd *out; /* MAXCMDS decoded */
    struct proto_cmd *again;
    struct proto_result res_in[MAXCMDS], res_out[MAXCMDS];
    size_t nin;
    struct mp_buf buf, buf2;
    msgpack_zone zone, zone2;
    void *copy;
    char err[256];
    struct rng rng;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->in = calloc(MAXCMDS, sizeof *x->in);
    x->out = calloc(MAXCMDS, sizeof *x->out);
    x->again = calloc(MAXCMDS, sizeof *x->again);
    if (!x->in || !x->out || !x->again || !msgpack_zone_init(&x->zone, 4096) ||
        !msgpack_zone_init(&x->zone2, 4096))
        return -1;
    mp_buf_init(&x->buf);
    mp_buf_init(&x->buf2);
    x->rng.s = 0xc0ffee;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    free(x->in);
    free(x->out);
    free(x->again);
    mp_buf_close(&x->buf);
    mp_buf_close(&x->buf2);
    msgpack_zone_destroy(&x->zone);
    msgpack_zone_destroy(&x->zone2);
    free(x->copy);
    free(x);
    return 0;
}

static const void *exact(struct fx *x, const void *data, size_t len)
{
    free(x->copy);
    x->copy = dup_exact(data, len);
    return x->copy;
}

static int batch_decode(struct fx *x, const void *data, size_t len,
                        size_t *n)
{
    msgpack_zone_clear(&x->zone);
    x->err[0] = '\0';
    int rv = proto_batch_decode(exact(x, data, len), len, &x->zone, x->out,
                                MAXCMDS, n, x->err, sizeof x->err);
    if (rv != 0) {
        assert_int_equal(*n, 0);
        assert_true(x->err[0] != '\0'); /* always says why */
    }
    return rv;
}

static int results_decode(struct fx *x, const void *data, size_t len,
                          size_t *n)
{
    msgpack_zone_clear(&x->zone);
    int rv = proto_results_decode(exact(x, data, len), len, &x->zone,
                                  x->res_out, MAXCMDS, n);
    if (rv != 0)
        assert_int_equal(*n, 0);
    return rv;
}

static bool str_same(struct mp_str a, struct mp_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Compares every field of two commands; names the first difference. */
static void assert_cmd_same(const struct proto_cmd *a,
                            const struct proto_cmd *b)
{
#define SAME_STR(f) \
    if (!str_same(a->f, b->f)) \
        fail_msg("%s: field " #f " differs: \"%.*s\" vs \"%.*s\"", \
                 proto_cmd_name(a->type), (int)a->f.n, a->f.p, (int)b->f.n, \
                 b->f.p)
#define SAME_NUM(f) \
    if (a->f != b->f) \
        fail_msg("%s: field " #f " differs: %llu vs %llu", \
                 proto_cmd_name(a->type), (unsigned long long)a->f, \
                 (unsigned long long)b->f)
    SAME_NUM(type);
    SAME_STR(req_id);
    SAME_NUM(time_ms);
    SAME_STR(origin);
    SAME_STR(name);
    SAME_STR(site);
    SAME_STR(owner);
    SAME_STR(host);
    SAME_STR(iface);
    SAME_STR(addr);
    SAME_STR(text);
    SAME_NUM(lease_ms);
    SAME_NUM(gen);
    SAME_NUM(svlan);
    SAME_NUM(uplink);
    SAME_NUM(image);
    SAME_NUM(managed);
    SAME_NUM(force);
    SAME_NUM(ok);
    SAME_STR(key);
    SAME_STR(hash);
    SAME_NUM(role);
    SAME_NUM(nsites);
    if (!vlanset_equal(&a->pool, &b->pool))
        fail_msg("%s: pools differ", proto_cmd_name(a->type));
    for (uint32_t i = 0; i < a->nsites; i++)
        SAME_STR(sites[i]);
#undef SAME_STR
#undef SAME_NUM
}

/* One valid command of type with every body field set to a non-default
 * value. */
static void full_cmd(struct proto_cmd *c, int type, unsigned k)
{
    static const char *const sites[] = {"brno", "praha", "plzen"};
    const char *f = proto_cmd_fields(type);
    proto_cmd_init(c, type);
    c->req_id = mp_cstr(k % 2 ? "slurm:1001" : "");
    c->time_ms = 1764115200000ull + k;
    c->origin = mp_cstr("brno");
    for (; *f; f++)
        switch (*f) {
        case 'n': c->name = mp_cstr("physics-1"); break;
        case 's': c->site = mp_cstr("praha"); break;
        case 'o': c->owner = mp_cstr("alice@example.org"); break;
        case 'h': c->host = mp_cstr("skirit1"); break;
        case 'i': c->iface = mp_cstr("vnet0"); break;
        case 'a': c->addr = mp_cstr("[2001:db8::1]:7000"); break;
        case 't': c->text = mp_cstr("switch sw-a1: vlan 42: % Invalid input"); break;
        case 'p':
            vlanset_add_range(&c->pool, 100, 999);
            vlanset_add(&c->pool, 4094);
            vlanset_add(&c->pool, 1);
            break;
        case 'u': c->uplink = UPLINK_QINQ; break;
        case 'v': c->svlan = 3001; break;
        case 'm': c->managed = true; break;
        case 'k': c->image = IMAGE_USER; break;
        case 'l': c->lease_ms = 8 * 3600 * 1000ull; break;
        case 'g': c->gen = 1ull << 40; break;
        case 'f': c->force = true; break;
        case 'b': c->ok = k % 2; break;
        case 'K': c->key = mp_cstr("0123456789abcdef0123456789ABCDEF"); break;
        case 'H': c->hash = mp_cstr("fedcba9876543210fedcba9876543210"); break;
        case 'r': c->role = ROLE_SCHEDULER; break;
        case 'S':
            c->nsites = 3;
            for (int i = 0; i < 3; i++)
                c->sites[i] = mp_cstr(sites[i]);
            break;
        }
}

/* Encodes a batch with one command of every type into x->buf. */
static void every_type(struct fx *x)
{
    x->nin = 0;
    for (int t = 1; t <= PROTO_CMD_TYPE_MAX; t++)
        if (proto_cmd_fields(t)) /* gaps: numbers reserved for others */
            full_cmd(&x->in[x->nin++], t, (unsigned)t);
    mp_buf_reset(&x->buf);
    if (proto_batch_encode(x->in, x->nin, &x->buf, x->err, sizeof x->err))
        fail_msg("encode: %s", x->err);
}

static void round_trip_every_type(void **state)
{
    struct fx *x = *state;
    size_t n;
    every_type(x);
    assert_int_equal(batch_decode(x, x->buf.data, x->buf.len, &n), 0);
    assert_int_equal(n, x->nin);
    for (size_t i = 0; i < n; i++)
        assert_cmd_same(&x->in[i], &x->out[i]);
    for (int t = 1; t <= PROTO_CMD_TYPE_MAX; t++)
        assert_true(!proto_cmd_name(t) == !proto_cmd_fields(t));
    assert_non_null(proto_cmd_fields(PROTO_CMD_SITE_KEY));
    assert_null(proto_cmd_name(0));
    assert_null(proto_cmd_name(PROTO_CMD_TYPE_MAX + 1));
    assert_null(proto_cmd_fields(0));
}

/* Each invalid command is refused, naming the field. */
static void validate_names_the_field(void **state)
{
    struct fx *x = *state;
    struct proto_cmd *c = &x->in[0];
    struct {
        int type;
        const char *field;
    } cases[] = {
        {PROTO_CMD_SITE_ADD, "name"},     {PROTO_CMD_HOST_ADD, "site"},
        {PROTO_CMD_ATTACH, "host"},       {PROTO_CMD_ATTACH, "iface"},
        {PROTO_CMD_CLUSTER_CREATE, "owner"}, {PROTO_CMD_SITE_ADD, "addr"},
        {PROTO_CMD_APPLY_REPORT, "text"}, {PROTO_CMD_SITE_ADD, "uplink"},
        {PROTO_CMD_SITE_ADD, "svlan"},    {PROTO_CMD_SITE_ADD, "pool"},
        {PROTO_CMD_CLUSTER_CREATE, "image"},
        {PROTO_CMD_CLUSTER_CREATE, "lease"},
        {PROTO_CMD_CLUSTER_RENEW, "lease"},
        {PROTO_CMD_CLUSTER_CREATE, "sites"},
        {PROTO_CMD_SITE_ADD, "request id"}, {PROTO_CMD_SITE_ADD, "origin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *f = cases[i].field;
        full_cmd(c, cases[i].type, 0);
        if (!strcmp(f, "name"))
            c->name = mp_cstr("-bad");
        else if (!strcmp(f, "site"))
            c->site = mp_cstr("a b");
        else if (!strcmp(f, "host"))
            c->host = mp_cstr("");
        else if (!strcmp(f, "iface"))
            c->iface = mp_cstr("eth0:1");
        else if (!strcmp(f, "owner"))
            c->owner = mp_cstr("alice smith");
        else if (!strcmp(f, "addr"))
            c->addr = mp_cstr("10.0.0.1:\n");
        else if (!strcmp(f, "text"))
            c->text = mp_cstr("bell\a");
        else if (!strcmp(f, "uplink"))
            c->uplink = 3;
        else if (!strcmp(f, "svlan"))
            c->uplink = UPLINK_VPLS;
        else if (!strcmp(f, "pool"))
            c->pool.w[63] |= 1ull << 63; /* VLAN 4095 */
        else if (!strcmp(f, "image"))
            c->image = 2;
        else if (!strcmp(f, "lease"))
            c->lease_ms = 999;
        else if (!strcmp(f, "sites"))
            c->sites[2] = c->sites[0];
        else if (!strcmp(f, "request id"))
            c->req_id = mp_cstr("two words");
        else if (!strcmp(f, "origin"))
            c->origin = mp_cstr("tab\there");
        x->err[0] = '\0';
        int rv = proto_cmd_validate(c, x->err, sizeof x->err);
        if (rv != VC_EINVAL)
            fail_msg("%s with a bad %s validated", proto_cmd_name(c->type),
                     f);
        assert_contains(x->err, f);
        /* The encoder refuses it too and writes nothing. */
        mp_buf_reset(&x->buf);
        assert_int_equal(proto_batch_encode(c, 1, &x->buf, x->err,
                                            sizeof x->err),
                         VC_EINVAL);
        assert_int_equal(x->buf.len, 0);
    }
    /* DEL is a control character in every text field. */
    struct {
        int type;
        struct mp_str *f;
    } del[] = {
        {PROTO_CMD_APPLY_REPORT, &c->text}, {PROTO_CMD_CLUSTER_CREATE, &c->owner},
        {PROTO_CMD_SITE_ADD, &c->addr},     {PROTO_CMD_SITE_ADD, &c->req_id},
        {PROTO_CMD_SITE_ADD, &c->origin},
    };
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        full_cmd(c, del[i].type, 0);
        *del[i].f = mp_cstr("del\x7f");
        assert_int_equal(proto_cmd_validate(c, x->err, sizeof x->err),
                         VC_EINVAL);
        *del[i].f = mp_cstr("del");
        assert_int_equal(proto_cmd_validate(c, x->err, sizeof x->err), 0);
    }
    /* Messages quote the bad value. */
    full_cmd(c, PROTO_CMD_SITE_ADD, 0);
    c->name = mp_cstr("bad/name");
    proto_cmd_validate(c, x->err, sizeof x->err);
    assert_contains(x->err, "\"bad/name\"");
    /* Limits of the name syntax. */
    char longname[VC_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[VC_NAME_MAX + 1] = '\0';
    assert_false(proto_name_ok(mp_cstr(longname)));
    longname[VC_NAME_MAX] = '\0';
    assert_true(proto_name_ok(mp_cstr(longname)));
    assert_true(proto_name_ok(mp_cstr("0a.b_c-d")));
    assert_false(proto_name_ok(mp_cstr(".a")));
    assert_false(proto_name_ok(mp_cstr("a\xc3\xa9")));
    assert_true(proto_ifname_ok(mp_cstr("vnet0.100")));
    assert_false(proto_ifname_ok(mp_cstr("..")));
    assert_false(proto_ifname_ok(mp_cstr("a/b")));
    assert_false(proto_ifname_ok(mp_cstr("0123456789abcdef")));
    /* Batch sizes. */
    full_cmd(c, PROTO_CMD_LEASE_SWEEP, 0);
    assert_int_equal(proto_batch_encode(c, 0, &x->buf, x->err, sizeof x->err),
                     VC_EINVAL);
    c->type = 0;
    assert_int_equal(proto_cmd_validate(c, x->err, sizeof x->err), VC_EINVAL);
    c->type = PROTO_CMD_TYPE_MAX + 1;
    assert_int_equal(proto_cmd_validate(c, x->err, sizeof x->err), VC_EINVAL);
}

static void names_parse_both_ways(void **state)
{
    (void)state;
    for (int u = 0; u <= UPLINK_QINQ; u++)
        assert_int_equal(proto_uplink_parse(proto_uplink_name(u)), u);
    for (int k = 0; k <= IMAGE_USER; k++)
        assert_int_equal(proto_image_parse(proto_image_name(k)), k);
    assert_int_equal(proto_uplink_parse("ethernet"), VC_EINVAL);
    assert_int_equal(proto_image_parse(""), VC_EINVAL);
    assert_string_equal(proto_uplink_name(9), "?");
    assert_string_equal(vc_errname(VC_ENOVLAN), "NOVLAN");
    assert_string_equal(vc_strerror(VC_ENOVLAN), "no common VLAN");
    assert_string_equal(vc_errname(0), "OK");
    assert_string_equal(vc_errname(-5), "SYSTEM");
    assert_string_equal(vc_errname(VC_ERR_BASE - 999), "UNKNOWN");
}

/* A log entry is one msgpack value and 0-7 zero bytes of padding (raft
 * takes only entries of a multiple of 8 bytes). Every prefix that cuts
 * into the value is refused; one that only drops padding still holds the
 * whole value and decodes to the same commands. */
static void batch_rejects_every_prefix(void **state)
{
    struct fx *x = *state;
    size_t n;
    every_type(x);
    size_t len = x->buf.len, vlen = proto_entry_unpad(x->buf.data, len);
    assert_int_equal(len % 8, 0);
    assert_true(len - vlen < 8);
    assert_int_equal(mp_check(x->buf.data, vlen), 0);
    for (size_t i = vlen; i < len; i++)
        assert_int_equal(x->buf.data[i], 0);
    for (size_t p = 0; p < vlen; p++)
        if (batch_decode(x, x->buf.data, p, &n) == 0)
            fail_msg("prefix of %zu of %zu bytes decoded (value is %zu)", p,
                     len, vlen);
    for (size_t p = vlen; p <= len; p++) {
        assert_int_equal(batch_decode(x, x->buf.data, p, &n), 0);
        assert_int_equal(n, x->nin);
        for (size_t i = 0; i < n; i++)
            assert_cmd_same(&x->in[i], &x->out[i]);
    }
}

/* Only up to 7 zero bytes pass as padding. */
static void batch_padding_is_only_zeros(void **state)
{
    struct fx *x = *state;
    size_t n;
    every_type(x);
    size_t vlen = proto_entry_unpad(x->buf.data, x->buf.len);
    char *b = calloc(1, vlen + 16);
    assert_non_null(b);
    memcpy(b, x->buf.data, vlen);
    int eight_zeros = batch_decode(x, b, vlen + 8, &n);
    b[vlen + 3] = 1;
    int nonzero = batch_decode(x, b, vlen + 4, &n);
    int zeros = batch_decode(x, b, vlen + 3, &n);
    free(b);
    assert_int_equal(eight_zeros, VC_EMALFORMED);
    assert_int_equal(nonzero, VC_EMALFORMED);
    assert_int_equal(zeros, 0);
    /* Fresh encodings of every size are padded to a multiple of 8. */
    for (size_t k = 1; k <= 40; k++) {
        mp_buf_reset(&x->buf);
        assert_int_equal(proto_batch_encode(x->in, k % x->nin + 1, &x->buf,
                                            x->err, sizeof x->err),
                         0);
        assert_int_equal(x->buf.len % 8, 0);
        x->in[0].req_id.n = (uint32_t)(k % 11); /* vary the length */
    }
}

static void fill_results(struct fx *x)
{
    x->nin = 5;
    memset(x->res_in, 0, sizeof x->res_in);
    x->res_in[0] = (struct proto_result){0, 100, 3, "cluster x created"};
    x->res_in[1] = (struct proto_result){VC_ENOVLAN, 0, 0, "no common VLAN"};
    x->res_in[2] = (struct proto_result){-5, 4094, UINT64_MAX, ""};
    x->res_in[3] = (struct proto_result){VC_EEXISTS, 1, 1, ""};
    memset(x->res_in[4].msg, 'm', VC_MSG_MAX);
    x->res_in[4].code = -100000;
    mp_buf_reset(&x->buf);
    assert_int_equal(proto_results_encode(x->res_in, x->nin, &x->buf), 0);
}

static void results_round_trip_and_prefixes(void **state)
{
    struct fx *x = *state;
    size_t n;
    fill_results(x);
    assert_int_equal(results_decode(x, x->buf.data, x->buf.len, &n), 0);
    assert_int_equal(n, x->nin);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(x->res_out[i].code, x->res_in[i].code);
        assert_int_equal(x->res_out[i].vlan, x->res_in[i].vlan);
        assert_true(x->res_out[i].gen == x->res_in[i].gen);
        assert_string_equal(x->res_out[i].msg, x->res_in[i].msg);
    }
    for (size_t len = 0; len < x->buf.len; len++)
        if (results_decode(x, x->buf.data, len, &n) == 0)
            fail_msg("prefix of %zu of %zu bytes decoded", len, x->buf.len);
    /* An empty result list is valid; more results than room is not. */
    mp_buf_reset(&x->buf);
    assert_int_equal(proto_results_encode(x->res_in, 0, &x->buf), 0);
    assert_int_equal(results_decode(x, x->buf.data, x->buf.len, &n), 0);
    assert_int_equal(n, 0);
    mp_buf_reset(&x->buf);
    assert_int_equal(proto_results_encode(x->res_in, 3, &x->buf), 0);
    msgpack_zone_clear(&x->zone);
    assert_int_equal(proto_results_decode(x->buf.data, x->buf.len, &x->zone,
                                          x->res_out, 2, &n),
                     VC_ETOOBIG);
}

/* Packs [version, [...]] with body() writing the inner list. */
static void pack_entry(struct fx *x, unsigned version,
                       void (*body)(msgpack_packer *pk))
{
    msgpack_packer pk;
    mp_buf_reset(&x->buf);
    mp_packer_init(&pk, &x->buf);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, version);
    body(&pk);
}

static void body_empty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}

static void body_array32_claims_more(msgpack_packer *pk)
{
    static const char hdr[] = {(char)0xdd, 0x7f, (char)0xff, (char)0xff,
                               (char)0xff};
    pk->callback(pk->data, hdr, sizeof hdr);
    msgpack_pack_nil(pk);
}

static void body_str32_claims_more(msgpack_packer *pk)
{
    static const char hdr[] = {(char)0x91, (char)0x95, 0x09, (char)0xdb,
                               0x00, 0x10, 0x00, 0x00, 'a'};
    pk->callback(pk->data, hdr, sizeof hdr);
}

static void body_bin32_claims_more(msgpack_packer *pk)
{
    static const char hdr[] = {(char)0xc6, (char)0xff, (char)0xff,
                               (char)0xff, (char)0xf0, 'a', 'b'};
    pk->callback(pk->data, hdr, sizeof hdr);
}

static void body_map32_claims_more(msgpack_packer *pk)
{
    static const char hdr[] = {(char)0xdf, 0x01, 0x00, 0x00, 0x00, 0x01, 0x02};
    pk->callback(pk->data, hdr, sizeof hdr);
}

static void body_ext(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_ext(pk, 1, 5);
    msgpack_pack_ext_body(pk, "\0", 1);
}

static void body_deep(msgpack_packer *pk)
{
    for (int i = 0; i < 40; i++)
        msgpack_pack_array(pk, 1);
    msgpack_pack_nil(pk);
}

static void body_one_sweep(msgpack_packer *pk)
{
    struct proto_cmd c;
    proto_cmd_init(&c, PROTO_CMD_LEASE_SWEEP);
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++)
        proto_cmd_pack(pk, &c);
}

static void body_unknown_type(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 5);
    msgpack_pack_uint8(pk, PROTO_CMD_TYPE_MAX + 1);
    mp_pack_cstr(pk, "");
    msgpack_pack_uint8(pk, 0);
    mp_pack_cstr(pk, "");
    msgpack_pack_array(pk, 0);
}

/* Oversized declared sizes, ext types, deep nesting and schema errors:
 * both decoders refuse them with the documented codes. */
static void decoders_reject_bad_entries(void **state)
{
    struct fx *x = *state;
    static const uint8_t dd[] = {0xdd, 0xff, 0x00, 0x00, 0x00};
    size_t n;
    assert_int_equal(batch_decode(x, dd, sizeof dd, &n), VC_EMALFORMED);
    assert_int_equal(results_decode(x, dd, sizeof dd, &n), VC_EMALFORMED);

    static const struct {
        void (*body)(msgpack_packer *);
        unsigned version;
        int batch, results;
    } cases[] = {
        {body_empty, 1, VC_EMALFORMED, 0},
        {body_array32_claims_more, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_str32_claims_more, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_bin32_claims_more, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_map32_claims_more, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_ext, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_deep, 1, VC_EMALFORMED, VC_EMALFORMED},
        {body_one_sweep, 2, VC_EVERSION, VC_EVERSION},
        {body_one_sweep, 0, VC_EVERSION, VC_EVERSION},
        {body_one_sweep, 1, 0, VC_EMALFORMED},
        {body_unknown_type, 1, VC_EMALFORMED, VC_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pack_entry(x, cases[i].version, cases[i].body);
        int b = batch_decode(x, x->buf.data, x->buf.len, &n);
        int r = results_decode(x, x->buf.data, x->buf.len, &n);
        if (b != cases[i].batch || r != cases[i].results)
            fail_msg("case %zu: batch %d (want %d), results %d (want %d)", i,
                     b, cases[i].batch, r, cases[i].results);
    }
    /* More commands than room. */
    pack_entry(x, 1, body_one_sweep);
    msgpack_zone_clear(&x->zone);
    assert_int_equal(proto_batch_decode(x->buf.data, x->buf.len, &x->zone,
                                        x->out, 2, &n, x->err, sizeof x->err),
                     VC_ETOOBIG);
    /* An entry over PROTO_ENTRY_MAX is refused before it is parsed. */
    size_t big = PROTO_ENTRY_MAX + 1;
    char *huge = calloc(1, big);
    assert_non_null(huge);
    msgpack_zone_clear(&x->zone);
    int rv = proto_batch_decode(huge, big, &x->zone, x->out, MAXCMDS, &n,
                                x->err, sizeof x->err);
    free(huge);
    assert_int_equal(rv, VC_ETOOBIG);
}

/* The encoder refuses a batch whose encoding exceeds PROTO_ENTRY_MAX. */
static void encoder_refuses_oversized_batch(void **state)
{
    struct fx *x = *state;
    struct proto_cmd *many = calloc(VC_BATCH_MAX, sizeof *many);
    char reason[VC_MSG_MAX + 1];
    assert_non_null(many);
    memset(reason, 'x', VC_MSG_MAX);
    reason[VC_MSG_MAX] = '\0';
    for (int i = 0; i < VC_BATCH_MAX; i++) {
        full_cmd(&many[i], PROTO_CMD_APPLY_REPORT, 0);
        many[i].text = mp_cstr(reason);
    }
    mp_buf_reset(&x->buf);
    int rv = proto_batch_encode(many, VC_BATCH_MAX, &x->buf, x->err,
                                sizeof x->err);
    int rv2 = proto_batch_encode(many, VC_BATCH_MAX + 1, &x->buf, x->err,
                                 sizeof x->err);
    free(many);
    assert_int_equal(rv, VC_ETOOBIG);
    assert_int_equal(x->buf.len, 0);
    assert_int_equal(rv2, VC_EINVAL);
}

/* A successfully decoded batch only holds valid commands, and encodes
 * back to something that decodes to the same commands. */
static void assert_decoded_sane(struct fx *x, size_t n)
{
    size_t n2;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        if (proto_cmd_validate(&x->out[i], err, sizeof err) != 0)
            fail_msg("decoded command %zu is invalid: %s", i, err);
        assert_false(vlanset_has(&x->out[i].pool, 0));
        assert_false(vlanset_has(&x->out[i].pool, 4095));
    }
    mp_buf_reset(&x->buf2);
    if (proto_batch_encode(x->out, n, &x->buf2, err, sizeof err) != 0)
        fail_msg("decoded batch does not encode: %s", err);
    msgpack_zone_clear(&x->zone2);
    assert_int_equal(proto_batch_decode(x->buf2.data, x->buf2.len, &x->zone2,
                                        x->again, MAXCMDS, &n2, err,
                                        sizeof err),
                     0);
    assert_int_equal(n2, n);
    for (size_t i = 0; i < n; i++)
        assert_cmd_same(&x->out[i], &x->again[i]);
}

static void mutate(struct fx *x, uint8_t *b, size_t len)
{
    for (int m = 0, nm = 1 + (int)rng_below(&x->rng, 4); m < nm; m++) {
        size_t at = rng_below(&x->rng, (uint32_t)len);
        switch (rng_below(&x->rng, 3)) {
        case 0: b[at] ^= (uint8_t)(1u << rng_below(&x->rng, 8)); break;
        case 1: b[at] = (uint8_t)rng_next(&x->rng); break;
        default: b[at] = (uint8_t)(b[at] + 1); break;
        }
    }
}

static void batch_survives_mutations(void **state)
{
    struct fx *x = *state;
    size_t n, ok = 0;
    every_type(x);
    uint8_t *orig = dup_exact(x->buf.data, x->buf.len);
    size_t len = x->buf.len;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (int i = 0; i < 20000; i++) {
        memcpy(b, orig, len);
        mutate(x, b, len);
        if (batch_decode(x, b, len, &n) == 0) {
            ok++;
            assert_decoded_sane(x, n);
        }
    }
    free(b);
    free(orig);
    /* Some mutations only touch string bytes or numbers: those decode. */
    assert_true(ok > 100);
}

static void results_survive_mutations(void **state)
{
    struct fx *x = *state;
    size_t n;
    fill_results(x);
    uint8_t *orig = dup_exact(x->buf.data, x->buf.len);
    size_t len = x->buf.len;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (int i = 0; i < 20000; i++) {
        memcpy(b, orig, len);
        mutate(x, b, len);
        if (results_decode(x, b, len, &n) == 0)
            for (size_t j = 0; j < n; j++) {
                assert_true(x->res_out[j].vlan <= VLAN_MAX);
                assert_true(x->res_out[j].code <= 0);
                assert_true(strlen(x->res_out[j].msg) <= VC_MSG_MAX);
            }
    }
    free(b);
    free(orig);
}

static void random_buffers(void **state)
{
    struct fx *x = *state;
    uint8_t b[96];
    size_t n;
    for (int i = 0; i < 20000; i++) {
        size_t len = rng_below(&x->rng, sizeof b);
        for (size_t j = 0; j < len; j++)
            b[j] = (uint8_t)rng_next(&x->rng);
        if (len >= 2 && rng_pct(&x->rng, 50)) { /* start like an entry */
            b[0] = 0x92;
            b[1] = 0x01;
        }
        if (batch_decode(x, b, len, &n) == 0)
            assert_decoded_sane(x, n);
        results_decode(x, b, len, &n);
    }
}

/* Random values in the right places: [1, [[type, id, time, origin,
 * [random fields]]]]. Exercises every field decoder with wrong types,
 * out-of-range numbers and malformed pools and site lists. */
static void pack_random_field(struct fx *x, msgpack_packer *pk)
{
    static const char *const strs[] = {
        "", "a", "brno", "-x", "vnet0", "eth0:1", "two words",
        "0123456789012345678901234567890123456789012345678901234567890123",
        "bell\a", "\xff\xfe"};
    switch (rng_below(&x->rng, 9)) {
    case 0: mp_pack_cstr(pk, strs[rng_below(&x->rng, 10)]); break;
    case 1: msgpack_pack_uint64(pk, rng_next(&x->rng) >> rng_below(&x->rng, 64)); break;
    case 2: msgpack_pack_int64(pk, -1 - (int64_t)rng_below(&x->rng, 5000)); break;
    case 3: rng_pct(&x->rng, 50) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 4: msgpack_pack_nil(pk); break;
    case 5:
    case 6: { /* a pool-like list of pairs */
        uint32_t n = rng_below(&x->rng, 4);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = rng_pct(&x->rng, 90) ? 2 : rng_below(&x->rng, 4);
            msgpack_pack_array(pk, k);
            for (uint32_t j = 0; j < k; j++)
                msgpack_pack_uint32(pk, rng_below(&x->rng, 4200));
        }
        break;
    }
    case 7: { /* a site-list-like array of strings */
        uint32_t n = rng_below(&x->rng, 4);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            mp_pack_cstr(pk, strs[rng_below(&x->rng, 4)]);
        break;
    }
    default: msgpack_pack_double(pk, 1.5); break;
    }
}

static void pack_valid_field(struct fx *x, msgpack_packer *pk, char f)
{
    switch (f) {
    case 'i': mp_pack_cstr(pk, "vnet0"); return;
    case 'o': case 'a': case 't': mp_pack_cstr(pk, "x@y"); return;
    case 'u': msgpack_pack_uint8(pk, (uint8_t)rng_below(&x->rng, 4)); return;
    case 'v': msgpack_pack_uint16(pk, (uint16_t)rng_below(&x->rng, 4096)); return;
    case 'k': msgpack_pack_uint8(pk, (uint8_t)rng_below(&x->rng, 3)); return;
    case 'l': msgpack_pack_uint64(pk, 500 + rng_below(&x->rng, 100000)); return;
    case 'g': msgpack_pack_uint64(pk, rng_next(&x->rng)); return;
    case 'm': case 'f': case 'b': msgpack_pack_true(pk); return;
    case 'r': msgpack_pack_uint8(pk, (uint8_t)rng_below(&x->rng, 4)); return;
    case 'K': case 'H': {
        static const char key[32] = "0123456789abcdef0123456789abcdef";
        uint32_t n = rng_pct(&x->rng, 80) ? 32 : rng_below(&x->rng, 33);
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, key, n);
        return;
    }
    case 'p':
        msgpack_pack_array(pk, 2);
        for (int i = 0; i < 2; i++) {
            unsigned lo = rng_below(&x->rng, 4096);
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint16(pk, (uint16_t)lo);
            msgpack_pack_uint16(pk, (uint16_t)(lo + rng_below(&x->rng, 50)));
        }
        return;
    case 'S':
        msgpack_pack_array(pk, 2);
        mp_pack_cstr(pk, "a");
        mp_pack_cstr(pk, rng_pct(&x->rng, 80) ? "b" : "a");
        return;
    default: /* n s h */
        mp_pack_cstr(pk, rng_pct(&x->rng, 90) ? "brno" : "");
        return;
    }
}

static void structured_random_commands(void **state)
{
    struct fx *x = *state;
    size_t n, ok = 0;
    for (int i = 0; i < 20000; i++) {
        msgpack_packer pk;
        int type = 1 + (int)rng_below(&x->rng, PROTO_CMD_TYPE_MAX);
        while (!proto_cmd_fields(type))
            type = 1 + (int)rng_below(&x->rng, PROTO_CMD_TYPE_MAX);
        size_t nf = strlen(proto_cmd_fields(type));
        mp_buf_reset(&x->buf);
        mp_packer_init(&pk, &x->buf);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint8(&pk, (uint8_t)type);
        mp_pack_cstr(&pk, rng_pct(&x->rng, 90) ? "id" : "i d");
        msgpack_pack_uint64(&pk, rng_next(&x->rng));
        mp_pack_cstr(&pk, "o");
        if (rng_pct(&x->rng, 5))
            nf = rng_below(&x->rng, 8);
        msgpack_pack_array(&pk, (uint32_t)nf);
        const char *fields = proto_cmd_fields(type);
        for (size_t f = 0; f < nf; f++) {
            /* Mostly a plausible value for the field, sometimes any. */
            if (f < strlen(fields) && rng_pct(&x->rng, 75))
                pack_valid_field(x, &pk, fields[f]);
            else
                pack_random_field(x, &pk);
        }
        if (batch_decode(x, x->buf.data, x->buf.len, &n) == 0) {
            ok++;
            assert_decoded_sane(x, n);
        }
    }
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(round_trip_every_type),
        T(validate_names_the_field),
        T(names_parse_both_ways),
        T(batch_rejects_every_prefix),
        T(batch_padding_is_only_zeros),
        T(results_round_trip_and_prefixes),
        T(decoders_reject_bad_entries),
        T(encoder_refuses_oversized_batch),
        T(batch_survives_mutations),
        T(results_survive_mutations),
        T(random_buffers),
        T(structured_random_commands),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
