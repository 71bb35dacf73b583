/* Vendor switch model: CLI output parsers per dialect, the plan and the
 * read-back (see drv_swcli.h for the ownership rules).
 *
 * The parsers are line-oriented and forgiving: a line they do not
 * recognise is skipped, because switches print banners, headers and
 * warnings freely. What they must never do is invent membership, so each
 * one only accepts the exact statement forms listed above it.
 */
#include "drv_swcli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 1024

/* --- views -----------------------------------------------------------------
 */

int drv_swview_init(struct drv_swview *v, size_t nports)
{
    memset(v, 0, sizeof *v);
    v->names = calloc(4096, sizeof *v->names);
    v->ports = calloc(nports ? nports : 1, sizeof *v->ports);
    v->nports = nports;
    if (!v->names || !v->ports) {
        drv_swview_close(v);
        return -ENOMEM;
    }
    return 0;
}

void drv_swview_reset(struct drv_swview *v)
{
    vlanset_clear(&v->exists);
    memset(v->names, 0, 4096 * sizeof *v->names);
    memset(v->ports, 0, (v->nports ? v->nports : 1) * sizeof *v->ports);
}

void drv_swview_close(struct drv_swview *v)
{
    free(v->names);
    free(v->ports);
    memset(v, 0, sizeof *v);
}

/* --- small parsing helpers
 * ----------------------------------------------------- */

/* Calls fn on each line of text ('\r' and trailing blanks removed). */
static void each_line(const char *text, void (*fn)(char *line, void *arg),
                      void *arg)
{
    char line[LINE_MAX_LEN];
    while (text && *text) {
        size_t n = strcspn(text, "\n");
        size_t m = n < sizeof line - 1 ? n : sizeof line - 1;
        memcpy(line, text, m);
        line[m] = '\0';
        while (m && (line[m - 1] == '\r' || line[m - 1] == ' ' ||
                     line[m - 1] == '\t'))
            line[--m] = '\0';
        fn(line, arg);
        text += n + (text[n] == '\n');
    }
}

static char *skip_ws(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* s starts with word w followed by a blank or the end: returns what
 * follows (blanks skipped), else NULL. Case-insensitive. */
static char *word(char *s, const char *w)
{
    size_t n = strlen(w);
    if (strncasecmp(s, w, n) != 0 || (s[n] && s[n] != ' ' && s[n] != '\t'))
        return NULL;
    return skip_ws(s + n);
}

/* A whole string of 1..4 digits in 1..4094, else 0. */
static unsigned vid_of(const char *s, size_t n)
{
    unsigned v = 0;
    if (n < 1 || n > 4)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v >= 1 && v <= 4094 ? v : 0;
}

/* Adds "1,42,100-105" (blanks allowed after commas) to out. Returns 0,
 * or -1 at the first item that is not a VID or range (out then holds
 * the items before it). */
static int vid_list(const char *s, struct vlanset *out)
{
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s)
            break;
        size_t n = strcspn(s, ",- ");
        unsigned lo = vid_of(s, n), hi = lo;
        s += n;
        if (*s == '-') {
            n = strcspn(++s, ", ");
            hi = vid_of(s, n);
            s += n;
        }
        if (!lo || !hi || hi < lo)
            return -1;
        vlanset_add_range(out, lo, hi);
    }
    return 0;
}

static void set_name(struct drv_swview *v, unsigned vid, const char *name)
{
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"') { /* ProCurve */
        name++;
        n -= 2;
    }
    if (n > DRV_SWCLI_NAME_MAX)
        n = DRV_SWCLI_NAME_MAX;
    memcpy(v->names[vid], name, n);
    v->names[vid][n] = '\0';
}

/* --- port lists (procurve, ftos)
 * ---------------------------------------------- */

/* Splits s[0..n) ("A12", "0/5", "Trk1") into a prefix and a trailing
 * number; false if there is no number. */
static bool split_port(const char *s, size_t n, size_t *plen, unsigned *num)
{
    size_t i = n;
    while (i && isdigit((unsigned char)s[i - 1]))
        i--;
    if (i == n || n - i > 6)
        return false;
    *plen = i;
    *num = 0;
    for (size_t k = i; k < n; k++)
        *num = *num * 10 + (unsigned)(s[k] - '0');
    return true;
}

struct pfx {
    char s[64]; /* the prefix items without one inherit ("0/1-3,5") */
};

/* Resolves item part s[0..n) to prefix + number; false without a
 * number. A bare number takes prev's prefix. */
static bool resolve(const char *s, size_t n, const struct pfx *prev,
                    struct pfx *out, unsigned *num)
{
    size_t pl;
    if (!split_port(s, n, &pl, num) || pl >= sizeof out->s)
        return false;
    if (pl == 0)
        *out = *prev;
    else
        snprintf(out->s, sizeof out->s, "%.*s", (int)pl, s);
    return true;
}

bool drv_swcli_portlist_has(const char *list, const char *port)
{
    struct pfx prev = {""}, lp, rp, pp;
    unsigned lo, hi, num;
    bool numbered = resolve(port, strlen(port), &prev, &pp, &num);
    while (list && *list) {
        while (*list == ',' || *list == ' ')
            list++;
        size_t n = strcspn(list, ", ");
        if (!n)
            break;
        size_t dash = strcspn(list, "-");
        if (dash >= n) { /* a single port */
            if (resolve(list, n, &prev, &lp, &lo)) {
                if (numbered && lo == num && !strcmp(lp.s, pp.s))
                    return true;
                prev = lp;
            } else if (strlen(port) == n && !strncmp(list, port, n)) {
                return true;
            }
        } else if (resolve(list, dash, &prev, &lp, &lo) &&
                   resolve(list + dash + 1, n - dash - 1, &lp, &rp, &hi)) {
            if (numbered && !strcmp(lp.s, rp.s) && !strcmp(lp.s, pp.s) &&
                num >= lo && num <= hi)
                return true;
            prev = lp;
        }
        list += n;
    }
    return false;
}

/* --- IOS: "show vlan brief" and "show running-config interface P" -----------
 */

struct pctx {
    const struct drv_swcfg *c;
    struct drv_swview *v;
    size_t port;       /* parse_port: the port's index */
    unsigned cur;      /* block parsers: the VLAN being read, 0 if none */
    bool seen_allowed; /* ios: an "allowed vlan" line replaced the set */
};

static void ios_vlan_line(char *line, void *arg)
{
    struct pctx *p = arg;
    char id[8], name[DRV_SWCLI_NAME_MAX + 1], status[16];
    if (sscanf(line, "%7s %63s %15s", id, name, status) != 3)
        return;
    unsigned vid = vid_of(id, strlen(id));
    if (!vid || (strncmp(status, "act", 3) && strncmp(status, "sus", 3)))
        return;
    vlanset_add(&p->v->exists, vid);
    set_name(p->v, vid, name);
}

static void ios_port_line(char *line, void *arg)
{
    struct pctx *p = arg;
    struct vlanset *s = &p->v->ports[p->port];
    char *r = skip_ws(line), *t;
    if (!(r = word(r, "switchport")) || !(r = word(r, "trunk")) ||
        !(r = word(r, "allowed")) || !(r = word(r, "vlan")))
        return;
    if ((t = word(r, "add"))) {
        vid_list(t, s);
        return;
    }
    vlanset_clear(s); /* the absolute form replaces */
    if (!word(r, "none") && !word(r, "all"))
        vid_list(r, s);
}

/* --- ProCurve: "vlan N" blocks of show running-config
 * ------------------------- */

static void members(struct pctx *p, const char *list, const char *type)
{
    for (size_t i = 0; p->cur && i < p->c->nports; i++) {
        const char *port = p->c->ports[i];
        if (type) { /* ftos: "TenGigabitEthernet 0/1" */
            size_t tl = strcspn(port, " ");
            if (!port[tl] || strlen(type) != tl ||
                strncasecmp(port, type, tl) != 0)
                continue;
            port += tl + 1;
        }
        if (drv_swcli_portlist_has(list, port))
            vlanset_add(&p->v->ports[i], p->cur);
    }
}

static void procurve_line(char *line, void *arg)
{
    struct pctx *p = arg;
    char *r;
    if (line[0] != ' ' && line[0] != '\t') {
        p->cur = 0;
        if ((r = word(line, "vlan")) && (p->cur = vid_of(r, strlen(r))))
            vlanset_add(&p->v->exists, p->cur);
        return;
    }
    r = skip_ws(line);
    char *t;
    if (!p->cur)
        return;
    if ((t = word(r, "name")))
        set_name(p->v, p->cur, t);
    else if ((t = word(r, "tagged")))
        members(p, t, NULL);
    else if (word(r, "exit"))
        p->cur = 0;
}

/* --- FTOS: "interface Vlan N" blocks
 * ------------------------------------------ */

static void ftos_line(char *line, void *arg)
{
    struct pctx *p = arg;
    char *r, *t;
    if (line[0] != ' ' && line[0] != '\t') {
        p->cur = 0;
        if ((r = word(line, "interface")) && (r = word(r, "vlan")) &&
            (p->cur = vid_of(r, strlen(r))))
            vlanset_add(&p->v->exists, p->cur);
        return;
    }
    r = skip_ws(line);
    if (!p->cur)
        return;
    if ((t = word(r, "name"))) {
        set_name(p->v, p->cur, t);
    } else if ((t = word(r, "tagged"))) {
        char type[48];
        size_t n = strcspn(t, " ");
        if (n >= sizeof type || !t[n])
            return;
        snprintf(type, sizeof type, "%.*s", (int)n, t);
        members(p, skip_ws(t + n), type);
    }
}

/* --- Junos: "| display set"
 * ---------------------------------------------------- */

static void junos_vlan_line(char *line, void *arg)
{
    struct pctx *p = arg;
    char name[DRV_SWCLI_NAME_MAX + 1], id[8], extra;
    if (sscanf(line, "set vlans %63s vlan-id %7s %c", name, id, &extra) != 2)
        return;
    unsigned vid = vid_of(id, strlen(id));
    if (!vid)
        return;
    vlanset_add(&p->v->exists, vid);
    set_name(p->v, vid, name);
}

static unsigned junos_vid_by_name(const struct drv_swview *v, const char *n)
{
    for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++)
        if (vlanset_has(&v->exists, vid) && strcmp(v->names[vid], n) == 0)
            return vid;
    return 0;
}

static void junos_port_line(char *line, void *arg)
{
    struct pctx *p = arg;
    char *r = word(line, "set");
    const char *port = p->c->ports[p->port];
    size_t pl = strlen(port);
    if (!r || !(r = word(r, "interfaces")) || strncmp(r, port, pl) != 0 ||
        (r[pl] != ' '))
        return;
    r = skip_ws(r + pl);
    if (!(r = word(r, "unit")) || !(r = word(r, "0")) ||
        !(r = word(r, "family")) || !(r = word(r, "ethernet-switching")) ||
        !(r = word(r, "vlan")) || !(r = word(r, "members")))
        return;
    struct vlanset *s = &p->v->ports[p->port];
    unsigned vid;
    if (vid_list(r, s) == 0)
        return;
    if ((vid = junos_vid_by_name(p->v, r)))
        vlanset_add(s, vid);
}

/* --- entry points
 * --------------------------------------------------------------- */

int drv_swcli_parse_vlans(int dialect, const char *text,
                          const struct drv_swcfg *c, struct drv_swview *v)
{
    struct pctx p = {.c = c, .v = v};
    switch (dialect) {
    case DRV_DIALECT_IOS:
        each_line(text, ios_vlan_line, &p);
        break;
    case DRV_DIALECT_PROCURVE:
        each_line(text, procurve_line, &p);
        break;
    case DRV_DIALECT_FTOS:
        each_line(text, ftos_line, &p);
        break;
    case DRV_DIALECT_JUNOS:
        each_line(text, junos_vlan_line, &p);
        break;
    }
    return 0;
}

int drv_swcli_parse_port(int dialect, const char *text, size_t i,
                         const struct drv_swcfg *c, struct drv_swview *v)
{
    struct pctx p = {.c = c, .v = v, .port = i};
    if (i >= v->nports)
        return -EINVAL;
    if (dialect == DRV_DIALECT_IOS)
        each_line(text, ios_port_line, &p);
    else if (dialect == DRV_DIALECT_JUNOS)
        each_line(text, junos_port_line, &p);
    return 0;
}

/* --- names
 * ------------------------------------------------------------------------ */

void drv_swcli_vlan_name(const char *mark, const char *cluster, unsigned vid,
                         char *out)
{
    if (cluster && cluster[0])
        snprintf(out, DRV_TMPL_NAME_MAX + 1, "%s%s", mark, cluster);
    else
        snprintf(out, DRV_TMPL_NAME_MAX + 1, "%s%u", mark, vid);
}

static bool ours(const struct drv_swcfg *c, const struct drv_swview *v,
                 unsigned vid)
{
    const char *n = v->names[vid];
    return vlanset_has(&v->exists, vid) &&
           strncmp(n, c->mark, strlen(c->mark)) == 0 && drv_tmpl_name_ok(n);
}

/* --- plan
 * ------------------------------------------------------------------------- */

void drv_swplan_close(struct drv_swplan *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}

static int add_op(struct drv_swplan *p, uint8_t op, unsigned vid, int port,
                  const char *name)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        struct drv_swop *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    struct drv_swop *o = &p->v[p->n++];
    memset(o, 0, sizeof *o);
    o->op = op;
    o->vid = (uint16_t)vid;
    o->port = port;
    snprintf(o->name, sizeof o->name, "%s", name);
    return 0;
}

#define ERR(code, ...)                                                         \
    do {                                                                       \
        snprintf(errmsg, errlen, __VA_ARGS__);                                 \
        return (code);                                                         \
    } while (0)

static int host_port(const struct drv_swcfg *c, const char *host)
{
    for (size_t i = 1; host && i < c->nports; i++)
        if (c->hosts[i] && strcmp(c->hosts[i], host) == 0)
            return (int)i;
    return -1;
}

/* Checks want and fills what each port should carry. */
static int wanted(const struct drv_swcfg *c, const struct drv_switch_state *w,
                  struct vlanset *all, struct vlanset *per_port, char *errmsg,
                  size_t errlen)
{
    if (w->uplink == UPLINK_QINQ)
        ERR(-EOPNOTSUPP, "qinq uplink: not supported by the ssh driver "
                         "(use xponder or vpls)");
    if (w->uplink > UPLINK_QINQ)
        ERR(-EINVAL, "uplink mechanism %u: unknown", (unsigned)w->uplink);
    if (w->nvlans && !w->vlans)
        ERR(-EINVAL, "vlans is NULL");
    for (uint32_t i = 0; i < w->nvlans; i++) {
        const struct drv_switch_vlan *x = &w->vlans[i];
        if (x->vid < VLAN_MIN || x->vid > VLAN_MAX)
            ERR(-EINVAL, "vlan %u: not in 1..4094", (unsigned)x->vid);
        if (!vlanset_has(&w->managed, x->vid))
            ERR(-EINVAL,
                "vlan %u: not in the managed set (the site's pool): "
                "it could never be removed",
                (unsigned)x->vid);
        if (vlanset_has(all, x->vid))
            ERR(-EINVAL, "vlan %u: listed twice", (unsigned)x->vid);
        if (x->nhosts && !x->hosts)
            ERR(-EINVAL, "vlan %u: hosts is NULL", (unsigned)x->vid);
        vlanset_add(all, x->vid);
        for (uint32_t j = 0; j < x->nhosts; j++) {
            int pi = host_port(c, x->hosts[j]);
            if (pi < 0)
                ERR(-EINVAL,
                    "vlan %u: host %.64s: no port for it in the "
                    "switch config",
                    (unsigned)x->vid, x->hosts[j] ? x->hosts[j] : "(null)");
            vlanset_add(&per_port[pi], x->vid);
        }
        if (x->uplink)
            vlanset_add(&per_port[0], x->vid);
    }
    return 0;
}

static const char *cluster_of(const struct drv_switch_state *w, unsigned vid)
{
    for (uint32_t i = 0; i < w->nvlans; i++)
        if (w->vlans[i].vid == vid)
            return w->vlans[i].cluster;
    return NULL;
}

static int plan_create(const struct drv_swcfg *c,
                       const struct drv_switch_state *w,
                       const struct drv_swview *h, const struct vlanset *all,
                       struct drv_swplan *p, char *errmsg, size_t errlen)
{
    char name[DRV_TMPL_NAME_MAX + 1];
    for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++) {
        if (!vlanset_has(all, vid))
            continue;
        if (!vlanset_has(&h->exists, vid)) {
            drv_swcli_vlan_name(c->mark, cluster_of(w, vid), vid, name);
            if (add_op(p, DRV_TMPL_ADD_NETWORK, vid, -1, name))
                ERR(-ENOMEM, "out of memory");
        } else if (!ours(c, h, vid)) {
            ERR(-EEXIST,
                "vlan %u: exists on the switch as \"%s\" without "
                "our mark \"%s\": not ours, left alone",
                vid, h->names[vid], c->mark);
        }
    }
    return 0;
}

static int plan_ports(const struct drv_swcfg *c,
                      const struct drv_switch_state *w,
                      const struct drv_swview *h,
                      const struct vlanset *per_port, bool add,
                      struct drv_swplan *p)
{
    char name[DRV_TMPL_NAME_MAX + 1];
    for (size_t i = 0; i < c->nports; i++)
        for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++) {
            bool want = vlanset_has(&per_port[i], vid);
            bool have = vlanset_has(&h->ports[i], vid);
            bool del = !add && have && !want && ours(c, h, vid) &&
                       vlanset_has(&w->managed, vid);
            if (!(add && want && !have) && !del)
                continue;
            if (ours(c, h, vid))
                snprintf(name, sizeof name, "%s", h->names[vid]);
            else
                drv_swcli_vlan_name(c->mark, cluster_of(w, vid), vid, name);
            if (add_op(p,
                       add ? DRV_TMPL_ADD_NETWORK_TO_TRUNK
                           : DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK,
                       vid, (int)i, name))
                return -ENOMEM;
        }
    return 0;
}

static int plan_delete(const struct drv_swcfg *c,
                       const struct drv_switch_state *w,
                       const struct drv_swview *h, const struct vlanset *all,
                       struct drv_swplan *p)
{
    for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++)
        if (ours(c, h, vid) && vlanset_has(&w->managed, vid) &&
            !vlanset_has(all, vid) &&
            add_op(p, DRV_TMPL_DELETE_NETWORK, vid, -1, h->names[vid]))
            return -ENOMEM;
    return 0;
}

int drv_swplan_make(const struct drv_swcfg *c,
                    const struct drv_switch_state *want,
                    const struct drv_swview *have, struct drv_swplan *p,
                    char *errmsg, size_t errlen)
{
    struct vlanset all;
    struct vlanset *per_port =
        calloc(c->nports ? c->nports : 1, sizeof *per_port);
    p->n = 0;
    if (!per_port)
        ERR(-ENOMEM, "out of memory");
    vlanset_clear(&all);
    int rc = wanted(c, want, &all, per_port, errmsg, errlen);
    if (rc == 0)
        rc = plan_create(c, want, have, &all, p, errmsg, errlen);
    if (rc == 0 && (rc = plan_ports(c, want, have, per_port, true, p)) != 0)
        snprintf(errmsg, errlen, "out of memory");
    if (rc == 0 && want->complete &&
        ((rc = plan_ports(c, want, have, per_port, false, p)) != 0 ||
         (rc = plan_delete(c, want, have, &all, p)) != 0))
        snprintf(errmsg, errlen, "out of memory");
    free(per_port);
    if (rc)
        p->n = 0;
    return rc;
}

/* --- read-back
 * ---------------------------------------------------------------------- */

int drv_swcli_read(const struct drv_swcfg *c, const struct vlanset *managed,
                   const struct drv_swview *have, struct drv_switch_state **out)
{
    struct drv_switch_state *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->managed = *managed;
    s->complete = true;
    s->uplink = UPLINK_XPONDER;
    s->vlans = calloc(vlanset_count(managed) + 1, sizeof *s->vlans);
    if (!s->vlans) {
        free(s);
        return -ENOMEM;
    }
    for (unsigned vid = VLAN_MIN; vid <= VLAN_MAX; vid++) {
        if (!vlanset_has(managed, vid) || !ours(c, have, vid))
            continue;
        struct drv_switch_vlan *v =
            (struct drv_switch_vlan *)&s->vlans[s->nvlans];
        v->vid = (uint16_t)vid;
        v->uplink = c->nports && vlanset_has(&have->ports[0], vid);
        for (size_t i = 1; i < c->nports; i++)
            if (vlanset_has(&have->ports[i], vid) &&
                drv_switch_vlan_add_host(v, c->hosts[i]) != 0) {
                s->nvlans++; /* so that free sees its hosts */
                drv_switch_state_free(s);
                return -ENOMEM;
            }
        if (v->nhosts || v->uplink)
            s->nvlans++;
    }
    *out = s;
    return 0;
}
