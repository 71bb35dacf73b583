#include "view_health.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/err.h"
#include "../proto/mp.h"

static int by_name(const void *x, const void *y)
{
    const struct fsm_cluster *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

/* Slots of c in one condition: 0 pending, 1 failed, 2 removing. */
static bool slot_is(const struct fsm_slot *s, int which)
{
    switch (which) {
    case 0: return !s->removing && !s->failed && s->applied < s->gen;
    case 1: return !s->removing && s->failed;
    default: return s->removing;
    }
}

static void pack_sites(msgpack_packer *pk, const struct fsm *f,
                       const struct fsm_cluster *c, int which)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nslots; i++)
        n += slot_is(&c->slots[i], which);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < c->nslots; i++) {
        const struct fsm_slot *s = &c->slots[i];
        char buf[VC_NAME_MAX + 2 + 200];
        if (!slot_is(s, which))
            continue;
        /* "site: error", the error cut to fit a status line. */
        snprintf(buf, sizeof buf, "%s%s%.200s", f->sites[s->site].name,
                 which == 1 ? ": " : "", which == 1 && s->err ? s->err : "");
        mp_pack_cstr(pk, buf);
    }
}

static void pack_problem(msgpack_packer *pk, const struct fsm *f,
                         const struct fsm_cluster *c)
{
    msgpack_pack_map(pk, 6);
    mp_pack_cstr(pk, "name");
    mp_pack_cstr(pk, c->name);
    mp_pack_cstr(pk, "vlan");
    msgpack_pack_uint16(pk, c->vlan);
    mp_pack_cstr(pk, "state");
    mp_pack_cstr(pk, fsm_state_name(c->state));
    static const char *const keys[] = {"pending", "failed", "removing"};
    for (int k = 0; k < 3; k++) {
        mp_pack_cstr(pk, keys[k]);
        pack_sites(pk, f, c, k);
    }
}

int view_health(msgpack_packer *pk, const struct fsm *f)
{
    const struct fsm_cluster **v = malloc((f->nclusters + 1) * sizeof *v);
    uint32_t live = 0, n = 0;
    for (uint32_t i = 0; i < f->nclusters; i++) {
        const struct fsm_cluster *c = &f->clusters[i];
        live += c->live;
        if (v && c->live && c->state != FSM_READY)
            v[n++] = c;
    }
    if (v)
        qsort(v, n, sizeof *v, by_name);
    mp_pack_cstr(pk, "clusters");
    msgpack_pack_uint32(pk, live);
    mp_pack_cstr(pk, "not_ready_total");
    msgpack_pack_uint32(pk, n);
    mp_pack_cstr(pk, "not_ready");
    uint32_t shown = n < VIEW_HEALTH_MAX ? n : VIEW_HEALTH_MAX;
    msgpack_pack_array(pk, shown);
    for (uint32_t i = 0; i < shown; i++)
        pack_problem(pk, f, v[i]);
    bool ok = v != NULL;
    free(v);
    return ok ? 0 : VC_ENOMEM;
}
