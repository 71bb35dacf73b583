#include "status_sites.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli_render.h"
#include "client.h"
#include "proto/err.h"
#include "proto/mp.h"

struct probe {
    char site[VC_NAME_MAX + 1];
    char api[VC_ADDR_MAX + 1];
    uint32_t budget_ms;
    pthread_t thread;
    bool started;
    /* The answer: */
    bool answers;
    char role[16], leader[VC_NAME_MAX + 1], error[256];
    uint64_t applied, commit;
};

static void copy(const msgpack_object *o, char *buf, size_t len)
{
    struct mp_str s = {"", 0};
    if (o)
        mp_get_str(o, 4096, &s);
    mp_str_copy(s, buf, len);
}

static uint64_t num(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void *probe_run(void *arg)
{
    struct probe *p = arg;
    struct proto_request req = {.op = PROTO_OP_STATUS,
                                .flags = PROTO_FLAG_STALE};
    struct client_response r;
    if (!p->api[0])
        return NULL;
    req.name = mp_cstr("");
    req.timeout_ms = p->budget_ms;
    int rv = client_request(p->api, &req, p->budget_ms, &r, p->error,
                            sizeof p->error);
    if (rv == 0 && r.resp.code != 0) {
        rv = r.resp.code;
        mp_str_copy(r.resp.msg, p->error, sizeof p->error);
        if (!p->error[0])
            snprintf(p->error, sizeof p->error, "%s", vc_strerror(rv));
    }
    if (rv == 0) {
        const msgpack_object *o = &r.resp.payload;
        p->answers = true;
        p->error[0] = '\0';
        copy(render_get(o, "role"), p->role, sizeof p->role);
        copy(render_get(o, "leader"), p->leader, sizeof p->leader);
        p->applied = num(render_get(o, "applied"));
        p->commit = num(render_get(o, "commit"));
    }
    client_response_close(&r);
    return NULL;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_cstr(pk, k);
    mp_pack_cstr(pk, v);
}

/* Packs the rows; "behind" counts from the highest commit index seen. */
static void pack_rows(msgpack_packer *pk, const struct probe *p, uint32_t n,
                      uint64_t top)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 8);
        pack_kv_str(pk, "site", p[i].site);
        mp_pack_cstr(pk, "answers");
        p[i].answers ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pack_kv_str(pk, "role", p[i].answers ? p[i].role : "");
        pack_kv_str(pk, "leader", p[i].answers ? p[i].leader : "");
        mp_pack_cstr(pk, "applied");
        p[i].answers ? msgpack_pack_uint64(pk, p[i].applied)
                     : msgpack_pack_nil(pk);
        mp_pack_cstr(pk, "commit");
        p[i].answers ? msgpack_pack_uint64(pk, p[i].commit)
                     : msgpack_pack_nil(pk);
        mp_pack_cstr(pk, "behind");
        p[i].answers ? msgpack_pack_uint64(pk, top > p[i].applied
                                                   ? top - p[i].applied
                                                   : 0)
                     : msgpack_pack_nil(pk);
        pack_kv_str(pk, "error", p[i].error);
    }
}

/* Runs the probes of members (one thread each; inline if none starts). */
static void run_all(struct probe *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        p[i].started = pthread_create(&p[i].thread, NULL, probe_run,
                                      &p[i]) == 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i].started)
            pthread_join(p[i].thread, NULL);
        else
            probe_run(&p[i]);
    }
}

int status_sites_probe(const msgpack_object *status, uint32_t budget_ms,
                       struct status_sites *out)
{
    const msgpack_object *m = render_get(status, "members");
    uint32_t n = m && m->type == MSGPACK_OBJECT_ARRAY ? m->via.array.size : 0;
    uint64_t top = num(render_get(status, "commit"));
    struct probe *p = calloc(n ? n : 1, sizeof *p);
    msgpack_sbuffer *sb = &out->sb;
    msgpack_packer pk;
    int rv = VC_ENOMEM;
    memset(out, 0, sizeof *out);
    msgpack_sbuffer_init(&out->sb);
    if (!p)
        return VC_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        copy(render_get(&m->via.array.ptr[i], "site"), p[i].site,
             sizeof p[i].site);
        copy(render_get(&m->via.array.ptr[i], "api"), p[i].api,
             sizeof p[i].api);
        p[i].budget_ms = budget_ms;
        if (!p[i].api[0])
            snprintf(p[i].error, sizeof p[i].error, "no API address known");
    }
    run_all(p, n);
    for (uint32_t i = 0; i < n; i++)
        if (p[i].answers && p[i].commit > top)
            top = p[i].commit;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_rows(&pk, p, n, top);
    free(p);
    if (msgpack_zone_init(&out->zone, 2048)) {
        out->zone_live = true;
        size_t off = 0;
        if (msgpack_unpack(sb->data, sb->size, &off, &out->zone, &out->doc) ==
            MSGPACK_UNPACK_SUCCESS)
            rv = 0;
    }
    return rv;
}

void status_sites_close(struct status_sites *s)
{
    if (s->zone_live)
        msgpack_zone_destroy(&s->zone);
    s->zone_live = false;
    msgpack_sbuffer_destroy(&s->sb);
    msgpack_sbuffer_init(&s->sb);
}
