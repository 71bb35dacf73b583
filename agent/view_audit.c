#include "view_audit.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "../proto/mp.h"

static void kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_cstr(pk, k);
    mp_pack_cstr(pk, v);
}

static void kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    mp_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

/* Index of the first entry with seq > after (entries are by seq). */
static uint32_t first_after(const struct fsm_audit *a, uint64_t after)
{
    uint32_t lo = 0, hi = a->len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fsm_audit_at(a, mid)->seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool matches(const struct fsm_audit_entry *e,
                    const struct proto_audit_query *q)
{
    if (e->time_ms < q->since_ms)
        return false;
    return q->name.n == 0 ||
           mp_str_eq(q->name, fsm_audit_text(e, AUDIT_NAME));
}

static void pack_entry(msgpack_packer *pk, const struct fsm_audit_entry *e)
{
    msgpack_pack_map(pk, 10);
    kv_u64(pk, "seq", e->seq);
    kv_u64(pk, "time_ms", e->time_ms);
    kv_str(pk, "type", proto_cmd_name(e->type));
    kv_str(pk, "name", fsm_audit_text(e, AUDIT_NAME));
    kv_str(pk, "sites", fsm_audit_text(e, AUDIT_SITES));
    kv_str(pk, "origin", fsm_audit_text(e, AUDIT_ORIGIN));
    kv_str(pk, "request_id", fsm_audit_text(e, AUDIT_REQ_ID));
    mp_pack_cstr(pk, "code");
    msgpack_pack_int32(pk, e->code);
    kv_str(pk, "error", e->code ? vc_errname(e->code) : "");
    kv_str(pk, "message", fsm_audit_text(e, AUDIT_MSG));
}

int view_audit(msgpack_packer *pk, const struct fsm *f,
               const struct proto_audit_query *q)
{
    const struct fsm_audit *a = &f->audit;
    uint32_t limit = q->limit ? q->limit : 1;
    uint32_t *pick = malloc(limit * sizeof *pick), n = 0, i;
    for (i = first_after(a, q->after_seq); pick && i < a->len && n < limit;
         i++)
        if (matches(fsm_audit_at(a, i), q))
            pick[n++] = i;
    /* More only if a match remains past the page. */
    bool more = false;
    for (; pick && n == limit && i < a->len && !more; i++)
        more = matches(fsm_audit_at(a, i), q);
    msgpack_pack_map(pk, 5);
    mp_pack_cstr(pk, "entries");
    msgpack_pack_array(pk, pick ? n : 0);
    for (uint32_t k = 0; pick && k < n; k++)
        pack_entry(pk, fsm_audit_at(a, pick[k]));
    kv_u64(pk, "next", n ? fsm_audit_at(a, pick[n - 1])->seq : q->after_seq);
    mp_pack_cstr(pk, "more");
    more ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    kv_u64(pk, "oldest", a->len ? fsm_audit_at(a, 0)->seq : 0);
    kv_u64(pk, "held", a->len);
    bool ok = pick != NULL;
    free(pick);
    return ok ? 0 : VC_ENOMEM;
}
