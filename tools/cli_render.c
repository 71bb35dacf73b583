#include "cli_render.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/err.h"
#include "proto/mp.h"

/* --- documents ---------------------------------------------------------- */

msgpack_object render_str(const char *s)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s ? s : "";
    o.via.str.size = (uint32_t)strlen(o.via.str.ptr);
    return o;
}

msgpack_object render_uint(uint64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}

msgpack_object render_int(int64_t v)
{
    if (v >= 0)
        return render_uint((uint64_t)v);
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}

msgpack_object render_bool(bool b)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BOOLEAN};
    o.via.boolean = b;
    return o;
}

msgpack_object render_array(msgpack_object *items, uint32_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};
    o.via.array.ptr = items;
    o.via.array.size = n;
    return o;
}

msgpack_object render_map(msgpack_object_kv *kv, uint32_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_MAP};
    o.via.map.ptr = kv;
    o.via.map.size = n;
    return o;
}

msgpack_object_kv render_kv(const char *key, msgpack_object val)
{
    msgpack_object_kv kv = {render_str(key), val};
    return kv;
}

static bool key_is(const msgpack_object *k, const char *key)
{
    if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0)
        return false; /* views have no empty keys */
    return mp_str_eq((struct mp_str){k->via.str.ptr, k->via.str.size}, key);
}

const msgpack_object *render_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), 0 if there is
 * none: no overlong forms, surrogates or code points past U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0], need, min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (n <= need)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

/* --- JSON --------------------------------------------------------------- */

static void json_string(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", f); /* not UTF-8: JSON cannot carry it */
            i++;
            continue;
        }
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fwrite(p + i, 1, len, f);
        i += len;
    }
    fputc('"', f);
}

static void json_scalar(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64))
            fprintf(f, "%.17g", o->via.f64);
        else
            fputs("null", f); /* JSON has no NaN or infinity */
        break;
    case MSGPACK_OBJECT_STR:
        json_string(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        json_string(f, o->via.bin.ptr, o->via.bin.size);
        break;
    default:
        fputs("null", f);
    }
}

/* Prints the name of a member; false (nothing printed) for a key JSON
 * cannot name. Integer keys become their decimal string. */
static bool json_name(FILE *f, const msgpack_object *k, bool *first)
{
    char num[24];
    const char *p = num;
    size_t n;
    if (k->type == MSGPACK_OBJECT_STR) {
        p = k->via.str.ptr;
        n = k->via.str.size;
    } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        n = (size_t)snprintf(num, sizeof num, "%llu",
                             (unsigned long long)k->via.u64);
    } else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        n = (size_t)snprintf(num, sizeof num, "%lld", (long long)k->via.i64);
    } else {
        return false;
    }
    if (!*first)
        fputc(',', f);
    *first = false;
    json_string(f, p, n);
    fputc(':', f);
    return true;
}

/* The members of o the view does not describe, in the order sent. */
static void json_other_members(FILE *f, const msgpack_object *o,
                               const struct render_view *v, bool *first)
{
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        bool known = false;
        for (size_t j = 0; v && j < v->n && !known; j++)
            known = key_is(&kv->key, v->fields[j].key);
        /* Known keys were printed through the view (first value wins). */
        if (!known && json_name(f, &kv->key, first))
            render_json(f, &kv->val, NULL);
    }
}

static bool field_is_list(const struct render_field *fd)
{
    return fd->kind == RENDER_LIST || fd->kind == RENDER_TABLE ||
           fd->kind == RENDER_COUNT;
}

static void json_object(FILE *f, const msgpack_object *o,
                        const struct render_view *v)
{
    bool first = true;
    fputc('{', f);
    for (size_t i = 0; v && i < v->n; i++) {
        const struct render_field *fd = &v->fields[i];
        if (fd->flags & RENDER_ALIAS)
            continue;
        const msgpack_object *val = render_get(o, fd->key);
        msgpack_object name = render_str(fd->key);
        json_name(f, &name, &first);
        /* sub describes the rows of a table: a map sent instead of the
         * array goes out as sent. */
        if (val)
            render_json(f, val,
                        fd->kind == RENDER_TABLE &&
                                val->type == MSGPACK_OBJECT_ARRAY
                            ? fd->sub
                            : NULL);
        else
            fputs(field_is_list(fd) ? "[]" : "null", f);
    }
    json_other_members(f, o, v, &first);
    fputc('}', f);
}

void render_json(FILE *f, const msgpack_object *o, const struct render_view *v)
{
    if (!o) {
        fputs("null", f);
        return;
    }
    if (o->type == MSGPACK_OBJECT_MAP) {
        json_object(f, o, v);
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputc(',', f);
            render_json(f, &o->via.array.ptr[i], v);
        }
        fputc(']', f);
    } else {
        json_scalar(f, o);
    }
}

/* --- humans ------------------------------------------------------------- */

/* Writes s with control characters and bytes that are not UTF-8 shown as
 * '?', so an agent cannot send escape sequences to the terminal. */
static void text(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len(p + i, n - i);
        if (len == 0 || p[i] < 0x20 || p[i] == 0x7f) {
            fputc('?', f);
            i++;
        } else {
            fwrite(p + i, 1, len, f);
            i += len;
        }
    }
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The two largest units: "2d3h", "5h12m", "4m10s", "9s". */
static void duration(FILE *f, uint64_t ms)
{
    unsigned long long s = ms / 1000, d = s / 86400, h = s / 3600 % 24,
                       m = s / 60 % 60;
    if (d)
        fprintf(f, "%llud%lluh", d, h);
    else if (h)
        fprintf(f, "%lluh%llum", h, m);
    else if (m)
        fprintf(f, "%llum%llus", m, s % 60);
    else
        fprintf(f, "%llus", s);
}

static void date(FILE *f, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[64];
    if (!localtime_r(&t, &tm) ||
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        fprintf(f, "%llu ms", (unsigned long long)ms);
    else
        fputs(buf, f);
}

static void generic(FILE *f, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "yes" : "no", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        fprintf(f, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        text(f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        text(f, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputc(',', f);
            generic(f, &o->via.array.ptr[i]);
        }
        break;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            fputs(i ? " " : "", f);
            generic(f, &o->via.map.ptr[i].key);
            fputc('=', f);
            generic(f, &o->via.map.ptr[i].val);
        }
        break;
    default: /* nil, ext: nothing to show */
        break;
    }
}

/* Shows o as kind asks when it has the expected type, else as sent. */
static void human(FILE *f, const msgpack_object *o, enum render_kind kind)
{
    bool is_uint = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    bool is_bool = o->type == MSGPACK_OBJECT_BOOLEAN;
    if (kind == RENDER_BOOL && is_bool) {
        fputs(o->via.boolean ? "yes" : "no", f);
    } else if (kind == RENDER_MARK && is_bool) {
        fputs(o->via.boolean ? "*" : "", f);
    } else if ((kind == RENDER_TIME || kind == RENDER_LEFT) && is_uint) {
        uint64_t now = wall_ms(), t = o->via.u64;
        if (t == 0)
            return; /* not set */
        if (kind == RENDER_TIME)
            date(f, t);
        else if (t > now)
            duration(f, t - now);
        else
            fputs("expired", f);
    } else if (kind == RENDER_COUNT && o->type == MSGPACK_OBJECT_ARRAY) {
        fprintf(f, "%u", o->via.array.size);
    } else {
        generic(f, o);
    }
}

/* One value as a malloc'd string ("" for NULL), or NULL on OOM. */
static char *cell(const msgpack_object *o, enum render_kind kind)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    if (o)
        human(m, o, kind);
    if (fclose(m) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Display width: code points (cells are valid UTF-8 by now). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* "lease left" -> "LEASE-LEFT", malloc'd. */
static char *heading(const char *title)
{
    char *h = strdup(title);
    for (char *p = h; p && *p; p++)
        *p = *p == ' ' ? '-' : (char)toupper((unsigned char)*p);
    return h;
}

struct table {
    size_t ncols, nrows; /* nrows counts the heading */
    const struct render_field **cols;
    char **cells; /* nrows x ncols */
    size_t *w;
};

static void table_free(struct table *t)
{
    for (size_t i = 0; t->cells && i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->cols);
    free(t->w);
}

/* Formats every cell of the list o (rows that are not maps come out
 * empty). Returns 0 or VC_ENOMEM. */
static int table_fill(struct table *t, const msgpack_object *o,
                      const struct render_view *v)
{
    const msgpack_object *rows = NULL;
    memset(t, 0, sizeof *t);
    if (o && o->type == MSGPACK_OBJECT_ARRAY) {
        rows = o->via.array.ptr;
        t->nrows = o->via.array.size;
    }
    t->nrows++;
    if (!(t->cols = calloc(v->n, sizeof *t->cols)))
        return VC_ENOMEM;
    for (size_t i = 0; i < v->n; i++)
        if (v->fields[i].flags & RENDER_COLUMN)
            t->cols[t->ncols++] = &v->fields[i];
    t->cells = calloc(t->nrows * t->ncols, sizeof *t->cells);
    t->w = calloc(t->ncols, sizeof *t->w);
    if (!t->cells || !t->w)
        return VC_ENOMEM;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const struct render_field *fd = t->cols[c];
            char **p = &t->cells[r * t->ncols + c];
            *p = r == 0 ? heading(fd->title)
                        : cell(render_get(&rows[r - 1], fd->key), fd->kind);
            if (!*p)
                return VC_ENOMEM;
            size_t w = width(*p);
            t->w[c] = w > t->w[c] ? w : t->w[c];
        }
    }
    return 0;
}

/* Columns two spaces apart; no padding after a row's last value. */
static void table_print(FILE *f, const struct table *t, const char *indent)
{
    for (size_t r = 0; r < t->nrows; r++) {
        char **row = &t->cells[r * t->ncols];
        size_t last = t->ncols;
        while (last > 0 && row[last - 1][0] == '\0')
            last--;
        fputs(indent, f);
        for (size_t c = 0; c < last; c++) {
            fputs(row[c], f);
            if (c + 1 < last)
                fprintf(f, "%*s", (int)(t->w[c] - width(row[c]) + 2), "");
        }
        fputc('\n', f);
    }
}

static int table(FILE *f, const msgpack_object *o, const struct render_view *v,
                 const char *indent)
{
    struct table t;
    int rv = table_fill(&t, o, v);
    if (rv == 0)
        table_print(f, &t, indent);
    table_free(&t);
    return rv;
}

/* Sub-tables of one object: a heading, then the rows indented. */
static int block_tables(FILE *f, const msgpack_object *o,
                        const struct render_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct render_field *fd = &v->fields[i];
        if (!(fd->flags & RENDER_LINE) || fd->kind != RENDER_TABLE)
            continue;
        const msgpack_object *val = render_get(o, fd->key);
        if (!val || val->type != MSGPACK_OBJECT_ARRAY ||
            val->via.array.size == 0) {
            fprintf(f, "\n%s: none\n", fd->title);
            continue;
        }
        fprintf(f, "\n%s:\n", fd->title);
        int rv = table(f, val, fd->sub, "  ");
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* "label:  value" lines for the scalar fields, labels aligned. */
static int block(FILE *f, const msgpack_object *o, const struct render_view *v)
{
    size_t w = 0;
    for (size_t i = 0; i < v->n; i++)
        if ((v->fields[i].flags & RENDER_LINE) &&
            v->fields[i].kind != RENDER_TABLE && strlen(v->fields[i].title) > w)
            w = strlen(v->fields[i].title);
    for (size_t i = 0; i < v->n; i++) {
        const struct render_field *fd = &v->fields[i];
        if (!(fd->flags & RENDER_LINE) || fd->kind == RENDER_TABLE)
            continue;
        char *val = cell(render_get(o, fd->key), fd->kind);
        if (!val)
            return VC_ENOMEM;
        fprintf(f, "%s:", fd->title);
        if (val[0])
            fprintf(f, "%*s%s", (int)(w - strlen(fd->title) + 2), "", val);
        fputc('\n', f);
        free(val);
    }
    return block_tables(f, o, v);
}

int render_list(FILE *f, bool json, const msgpack_object *o,
                const struct render_view *v)
{
    static const msgpack_object empty = {.type = MSGPACK_OBJECT_ARRAY};
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        o = &empty;
    if (!json)
        return table(f, o, v, "");
    render_json(f, o, v);
    fputc('\n', f);
    return 0;
}

int render_object(FILE *f, bool json, const msgpack_object *o,
                  const struct render_view *v)
{
    static const msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        o = &empty;
    if (!json)
        return block(f, o, v);
    render_json(f, o, v);
    fputc('\n', f);
    return 0;
}
