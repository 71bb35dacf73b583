/* Vendor command templates: built-ins, INI loader, checks and renderer
 * (see drv_tmpl.h). The built-ins are written for this project with the
 * operation names of networking-generic-switch, so that a ported NGS
 * profile and a built-in read alike.
 */
#include "drv_tmpl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_MAX (256 * 1024) /* a template file larger than this is a typo */

/* clang-format off */
const char drv_tmpl_builtin[] =
"[cisco_ios]\n"
"dialect = ios\n"
"prompt = ^[A-Za-z0-9._/-]+(\\([A-Za-z0-9-]+\\))?[>#] ?$\n"
"more = --More--\n"
"error = ^% ?Invalid input\n"
"        ^% ?Incomplete command\n"
"        ^% ?Ambiguous command\n"
"        ^% ?Unknown command\n"
"        ^% ?(Error|Bad|Cannot)\n"
"SESSION_SETUP = terminal length 0\n"
"                terminal width 511\n"
"ENABLE_MODE = enable\n"
"CONFIG_MODE = configure terminal\n"
"EXIT_CONFIG_MODE = end\n"
"ADD_NETWORK = vlan {segmentation_id}\n"
"              name {network_name}\n"
"              exit\n"
"DELETE_NETWORK = no vlan {segmentation_id}\n"
"ADD_NETWORK_TO_TRUNK = interface {port}\n"
"                       switchport mode trunk\n"
"                       switchport trunk allowed vlan add {segmentation_id}\n"
"                       exit\n"
"REMOVE_NETWORK_FROM_TRUNK = interface {port}\n"
"                            switchport trunk allowed vlan remove {segmentation_id}\n"
"                            exit\n"
"PLUG_PORT_TO_NETWORK = interface {port}\n"
"                       switchport mode access\n"
"                       switchport access vlan {segmentation_id}\n"
"                       exit\n"
"DELETE_PORT = interface {port}\n"
"              no switchport access vlan\n"
"              exit\n"
"SAVE_CONFIGURATION = write memory\n"
"SHOW_VLANS = show vlan brief\n"
"SHOW_PORT = show running-config interface {port}\n"
"\n"
"[hp_procurve]\n"
"dialect = procurve\n"
"prompt = ^[A-Za-z0-9._-]+(\\([A-Za-z0-9-]+\\))?[>#] ?$\n"
"more = -- MORE --|Press any key to continue\n"
"error = Invalid input\n"
"        Ambiguous input\n"
"        Incomplete input\n"
"        Unknown command\n"
"        ^(Error|Cannot|Value .* out of range)\n"
"SESSION_SETUP = no page\n"
"                terminal width 511\n"
"ENABLE_MODE = enable\n"
"CONFIG_MODE = configure terminal\n"
"EXIT_CONFIG_MODE = end\n"
"ADD_NETWORK = vlan {segmentation_id}\n"
"              name {network_name}\n"
"              exit\n"
"DELETE_NETWORK = no vlan {segmentation_id}\n"
"ADD_NETWORK_TO_TRUNK = vlan {segmentation_id}\n"
"                       tagged {port}\n"
"                       exit\n"
"REMOVE_NETWORK_FROM_TRUNK = vlan {segmentation_id}\n"
"                            no tagged {port}\n"
"                            exit\n"
"PLUG_PORT_TO_NETWORK = vlan {segmentation_id}\n"
"                       untagged {port}\n"
"                       exit\n"
"DELETE_PORT = vlan {segmentation_id}\n"
"              no untagged {port}\n"
"              exit\n"
"SAVE_CONFIGURATION = write memory\n"
"SHOW_VLANS = show running-config\n"
"\n"
"[dell_force10]\n"
"dialect = ftos\n"
"prompt = ^[A-Za-z0-9._/-]+(\\([A-Za-z0-9-]+\\))?[>#] ?$\n"
"more = --More--\n"
"error = ^% ?Error\n"
"        ^% ?Invalid\n"
"        ^% ?Incomplete\n"
"        ^% ?Ambiguous\n"
"SESSION_SETUP = terminal length 0\n"
"ENABLE_MODE = enable\n"
"CONFIG_MODE = configure\n"
"EXIT_CONFIG_MODE = end\n"
"ADD_NETWORK = interface vlan {segmentation_id}\n"
"              name {network_name}\n"
"              no shutdown\n"
"              exit\n"
"DELETE_NETWORK = no interface vlan {segmentation_id}\n"
"ADD_NETWORK_TO_TRUNK = interface vlan {segmentation_id}\n"
"                       tagged {port}\n"
"                       exit\n"
"REMOVE_NETWORK_FROM_TRUNK = interface vlan {segmentation_id}\n"
"                            no tagged {port}\n"
"                            exit\n"
"PLUG_PORT_TO_NETWORK = interface vlan {segmentation_id}\n"
"                       untagged {port}\n"
"                       exit\n"
"DELETE_PORT = interface vlan {segmentation_id}\n"
"              no untagged {port}\n"
"              exit\n"
"SAVE_CONFIGURATION = write memory\n"
"SHOW_VLANS = show running-config interface vlan\n"
"\n"
"[juniper_junos]\n"
"dialect = junos\n"
"prompt = ^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+[>#] ?$\n"
"more = ---\\(more( [0-9]+%)?\\)---\n"
"error = ^error:\n"
"        syntax error\n"
"        unknown command\n"
"        missing argument\n"
"        ^commit failed\n"
"save_in_config_mode = yes\n"
"SESSION_SETUP = set cli screen-length 0\n"
"                set cli screen-width 511\n"
"CONFIG_MODE = configure private\n"
"EXIT_CONFIG_MODE = exit\n"
"ADD_NETWORK = set vlans {network_name} vlan-id {segmentation_id}\n"
"DELETE_NETWORK = delete vlans {network_name}\n"
"ADD_NETWORK_TO_TRUNK = set interfaces {port} unit 0 family ethernet-switching vlan members {segmentation_id}\n"
"REMOVE_NETWORK_FROM_TRUNK = delete interfaces {port} unit 0 family ethernet-switching vlan members {segmentation_id}\n"
"PLUG_PORT_TO_NETWORK = delete interfaces {port} unit 0 family ethernet-switching vlan members\n"
"                       set interfaces {port} unit 0 family ethernet-switching vlan members {segmentation_id}\n"
"DELETE_PORT = delete interfaces {port} unit 0 family ethernet-switching vlan members\n"
"SAVE_CONFIGURATION = commit\n"
"SHOW_VLANS = show configuration vlans | display set\n"
"SHOW_PORT = show configuration interfaces {port} | display set\n";
/* clang-format on */

/* Placeholders, and which operations may use them. */
enum { P_VID = 1, P_NAME = 2, P_PORT = 4 };

static const struct {
    const char *name;
    unsigned allowed; /* P_* */
} op_info[DRV_TMPL_NOPS] = {
    [DRV_TMPL_SESSION_SETUP] = {"SESSION_SETUP", 0},
    [DRV_TMPL_ENABLE_MODE] = {"ENABLE_MODE", 0},
    [DRV_TMPL_CONFIG_MODE] = {"CONFIG_MODE", 0},
    [DRV_TMPL_EXIT_CONFIG_MODE] = {"EXIT_CONFIG_MODE", 0},
    [DRV_TMPL_ADD_NETWORK] = {"ADD_NETWORK", P_VID | P_NAME},
    [DRV_TMPL_DELETE_NETWORK] = {"DELETE_NETWORK", P_VID | P_NAME},
    [DRV_TMPL_ADD_NETWORK_TO_TRUNK] = {"ADD_NETWORK_TO_TRUNK",
                                       P_VID | P_NAME | P_PORT},
    [DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK] = {"REMOVE_NETWORK_FROM_TRUNK",
                                            P_VID | P_NAME | P_PORT},
    [DRV_TMPL_PLUG_PORT_TO_NETWORK] = {"PLUG_PORT_TO_NETWORK",
                                       P_VID | P_NAME | P_PORT},
    [DRV_TMPL_DELETE_PORT] = {"DELETE_PORT", P_VID | P_NAME | P_PORT},
    [DRV_TMPL_SAVE_CONFIGURATION] = {"SAVE_CONFIGURATION", 0},
    [DRV_TMPL_SHOW_VLANS] = {"SHOW_VLANS", 0},
    [DRV_TMPL_SHOW_PORT] = {"SHOW_PORT", P_PORT},
};

static const struct {
    const char *name;
    unsigned bit;
} placeholders[] = {
    {"segmentation_id", P_VID},
    {"network_name", P_NAME},
    {"network_id", P_NAME},
    {"port", P_PORT},
};

static const char *const dialects[] = {"", "ios", "procurve", "ftos", "junos"};

const char *drv_tmpl_op_name(int op)
{
    return op >= 0 && op < DRV_TMPL_NOPS ? op_info[op].name : NULL;
}

/* --- values --------------------------------------------------------------- */

bool drv_tmpl_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > DRV_TMPL_NAME_MAX || !isalpha((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
            return false;
    return true;
}

bool drv_tmpl_port_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > DRV_TMPL_PORT_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' && s[i + 1] == ' ')
            return false;
        if (!isalnum((unsigned char)s[i]) && !strchr("/._:- ", s[i]))
            return false;
    }
    return true;
}

/* --- set management --------------------------------------------------------
 */

static void vendor_uncompile(struct drv_tmpl_vendor *v)
{
    if (!v->compiled)
        return;
    regfree(&v->prompt_re);
    if (v->has_more)
        regfree(&v->more_re);
    for (size_t i = 0; i < v->nerr; i++)
        regfree(&v->err_re[i]);
    v->nerr = 0;
    v->has_more = false;
    v->compiled = false;
}

static void vendor_free(struct drv_tmpl_vendor *v)
{
    vendor_uncompile(v);
    for (int i = 0; i < DRV_TMPL_NOPS; i++)
        free(v->ops[i]);
    free(v->prompt);
    free(v->more);
    free(v->errors);
    memset(v, 0, sizeof *v);
}

void drv_tmpl_set_close(struct drv_tmpl_set *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        vendor_free(&s->v[i]);
    if (s) {
        free(s->v);
        s->v = NULL;
        s->n = 0;
    }
}

const struct drv_tmpl_vendor *drv_tmpl_find(const struct drv_tmpl_set *s,
                                            const char *name)
{
    for (size_t i = 0; name && i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static struct drv_tmpl_vendor *vendor_get(struct drv_tmpl_set *s,
                                          const char *name)
{
    struct drv_tmpl_vendor *v =
        (struct drv_tmpl_vendor *)drv_tmpl_find(s, name);
    if (v)
        return v;
    v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return NULL;
    s->v = v;
    v += s->n++;
    memset(v, 0, sizeof *v);
    memcpy(v->name, name, strnlen(name, DRV_TMPL_VENDOR_MAX));
    return v;
}

static int dup_into(char **dst, const char *src)
{
    char *p = src ? strdup(src) : NULL;
    if (src && !p)
        return -ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* Copies the text fields of from into to (inherit). */
static int vendor_copy(struct drv_tmpl_vendor *to,
                       const struct drv_tmpl_vendor *from)
{
    int rc = 0;
    to->dialect = from->dialect;
    to->save_in_config_mode = from->save_in_config_mode;
    for (int i = 0; rc == 0 && i < DRV_TMPL_NOPS; i++)
        rc = dup_into(&to->ops[i], from->ops[i]);
    if (rc == 0)
        rc = dup_into(&to->prompt, from->prompt);
    if (rc == 0)
        rc = dup_into(&to->more, from->more);
    if (rc == 0)
        rc = dup_into(&to->errors, from->errors);
    return rc;
}

/* --- template text checks ---------------------------------------------------
 * One scanner serves the load-time check and the renderer: it walks the
 * text, calls emit for literal runs and placeholders, and fails on an
 * unknown or disallowed placeholder or an unbalanced brace. */

struct scan {
    unsigned allowed;
    const struct drv_tmpl_args *args; /* NULL: check only */
    char *out;
    size_t len, cap;
    bool overflow;
    char *errmsg;
    size_t errlen;
};

static void put(struct scan *sc, const char *p, size_t n)
{
    if (!sc->out)
        return;
    if (sc->len + n >= sc->cap) {
        sc->overflow = true;
        return;
    }
    memcpy(sc->out + sc->len, p, n);
    sc->len += n;
    sc->out[sc->len] = '\0';
}

static int put_value(struct scan *sc, unsigned bit, const char *ph)
{
    const struct drv_tmpl_args *a = sc->args;
    char num[8];
    if (!a)
        return 0;
    if (bit == P_VID) {
        if (a->vid < 1 || a->vid > 4094) {
            snprintf(sc->errmsg, sc->errlen, "{%s} = %u: not a VLAN ID 1..4094",
                     ph, a->vid);
            return -EINVAL;
        }
        snprintf(num, sizeof num, "%u", a->vid);
        put(sc, num, strlen(num));
        return 0;
    }
    const char *v = bit == P_NAME ? a->name : a->port;
    bool ok = bit == P_NAME ? drv_tmpl_name_ok(v) : drv_tmpl_port_ok(v);
    if (!ok) {
        snprintf(sc->errmsg, sc->errlen, "{%s} = \"%.64s\": refused (%s)", ph,
                 v ? v : "(none)",
                 bit == P_NAME ? "a letter, then up to 31 of A-Za-z0-9_.-"
                               : "1..64 of A-Za-z0-9/._:- and single spaces");
        return -EINVAL;
    }
    put(sc, v, strlen(v));
    return 0;
}

static int placeholder(struct scan *sc, const char *p, size_t n)
{
    char ph[32];
    snprintf(ph, sizeof ph, "%.*s", (int)(n < 31 ? n : 31), p);
    for (size_t i = 0; i < sizeof placeholders / sizeof *placeholders; i++) {
        if (strlen(placeholders[i].name) != n ||
            strncmp(placeholders[i].name, p, n) != 0)
            continue;
        if (!(sc->allowed & placeholders[i].bit)) {
            snprintf(sc->errmsg, sc->errlen,
                     "placeholder {%s}: this operation has no value for it",
                     ph);
            return -EINVAL;
        }
        return put_value(sc, placeholders[i].bit, ph);
    }
    snprintf(sc->errmsg, sc->errlen,
             "placeholder {%s}: unknown (segmentation_id, network_name, "
             "network_id, port)",
             ph);
    return -EINVAL;
}

static int scan_text(struct scan *sc, const char *t)
{
    while (*t) {
        size_t lit = strcspn(t, "{}");
        put(sc, t, lit);
        t += lit;
        if (!*t)
            break;
        if (t[0] == t[1]) { /* "{{" or "}}" */
            put(sc, t, 1);
            t += 2;
            continue;
        }
        const char *end = t[0] == '{' ? strchr(t, '}') : NULL;
        if (!end || memchr(t, '\n', (size_t)(end - t))) {
            snprintf(sc->errmsg, sc->errlen,
                     "unbalanced '%c' (write \"%c%c\" for a literal one)", t[0],
                     t[0], t[0]);
            return -EINVAL;
        }
        int rc = placeholder(sc, t + 1, (size_t)(end - t - 1));
        if (rc)
            return rc;
        t = end + 1;
    }
    return 0;
}

int drv_tmpl_render(const struct drv_tmpl_vendor *v, int op,
                    const struct drv_tmpl_args *a, char *out, size_t outlen,
                    char *errmsg, size_t errlen)
{
    static const struct drv_tmpl_args none;
    if (!out || !outlen)
        return -ENOSPC;
    out[0] = '\0';
    if (op < 0 || op >= DRV_TMPL_NOPS) {
        snprintf(errmsg, errlen, "operation %d: unknown", op);
        return -EINVAL;
    }
    struct scan sc = {op_info[op].allowed,
                      a ? a : &none,
                      out,
                      0,
                      outlen,
                      false,
                      errmsg,
                      errlen};
    int rc = scan_text(&sc, v->ops[op] ? v->ops[op] : "");
    if (rc == 0 && sc.overflow) {
        snprintf(errmsg, errlen, "%s: rendered commands exceed %zu bytes",
                 op_info[op].name, outlen - 1);
        rc = -ENOSPC;
    }
    if (rc) {
        out[0] = '\0';
        return rc;
    }
    return (int)sc.len;
}

/* --- INI parsing -------------------------------------------------------------
 */

struct ini {
    struct drv_tmpl_set *s;
    const char *file;
    int line;
    struct drv_tmpl_vendor *v; /* current section */
    int nkeys;                 /* keys seen in the current section */
    char **cont;               /* value a continuation line extends */
    char *errmsg;
    size_t errlen;
};

static int ini_err(struct ini *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ini_err(struct ini *p, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->line)
        snprintf(p->errmsg, p->errlen, "%s:%d: %s", p->file, p->line, msg);
    else
        snprintf(p->errmsg, p->errlen, "%s: %s", p->file, msg);
    return code;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool section_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > DRV_TMPL_VENDOR_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
            s[i] != '_')
            return false;
    return true;
}

static int ini_section(struct ini *p, char *line)
{
    char *end = strchr(line, ']');
    if (!end || end[1])
        return ini_err(p, -EINVAL, "\"%.64s\": expected [vendor]", line);
    *end = '\0';
    char *name = trim(line + 1);
    if (!section_name_ok(name))
        return ini_err(p, -EINVAL,
                       "section [%.40s]: vendor names are 1..31 of a-z0-9_",
                       name);
    if (!(p->v = vendor_get(p->s, name)))
        return ini_err(p, -ENOMEM, "out of memory");
    vendor_uncompile(p->v);
    p->nkeys = 0;
    p->cont = NULL;
    return 0;
}

static int set_bool(struct ini *p, const char *val, bool *out)
{
    if (!strcasecmp(val, "yes") || !strcasecmp(val, "true") ||
        !strcmp(val, "1"))
        *out = true;
    else if (!strcasecmp(val, "no") || !strcasecmp(val, "false") ||
             !strcmp(val, "0"))
        *out = false;
    else
        return ini_err(p, -EINVAL, "\"%.40s\": expected yes or no", val);
    return 0;
}

static int set_inherit(struct ini *p, const char *val)
{
    const struct drv_tmpl_vendor *from = drv_tmpl_find(p->s, val);
    if (p->nkeys != 0)
        return ini_err(p, -EINVAL, "inherit must be the section's first key");
    if (!from || from == p->v)
        return ini_err(p, -EINVAL, "inherit = %.40s: no such vendor (yet)",
                       val);
    if (vendor_copy(p->v, from) != 0)
        return ini_err(p, -ENOMEM, "out of memory");
    return 0;
}

static int set_dialect(struct ini *p, const char *val)
{
    for (size_t i = 1; i < sizeof dialects / sizeof *dialects; i++)
        if (strcmp(val, dialects[i]) == 0) {
            p->v->dialect = (uint8_t)i;
            return 0;
        }
    return ini_err(p, -EINVAL,
                   "dialect \"%.40s\": unknown (ios, procurve, ftos, junos)",
                   val);
}

/* The string field a key names, or NULL. */
static char **text_field(struct drv_tmpl_vendor *v, const char *key)
{
    for (int i = 0; i < DRV_TMPL_NOPS; i++)
        if (strcasecmp(key, op_info[i].name) == 0)
            return &v->ops[i];
    if (!strcasecmp(key, "prompt"))
        return &v->prompt;
    if (!strcasecmp(key, "more"))
        return &v->more;
    if (!strcasecmp(key, "error") || !strcasecmp(key, "errors"))
        return &v->errors;
    return NULL;
}

static int ini_key(struct ini *p, char *line)
{
    char *eq = strchr(line, '=');
    p->cont = NULL;
    if (!eq)
        return ini_err(p, -EINVAL, "\"%.64s\": expected key = value", line);
    *eq = '\0';
    char *key = trim(line), *val = trim(eq + 1);
    if (!p->v)
        return ini_err(p, -EINVAL, "%.40s: outside a [vendor] section", key);
    int rc = 0;
    char **field = text_field(p->v, key);
    if (!strcasecmp(key, "inherit"))
        rc = set_inherit(p, val);
    else if (!strcasecmp(key, "dialect"))
        rc = set_dialect(p, val);
    else if (!strcasecmp(key, "save_in_config_mode"))
        rc = set_bool(p, val, &p->v->save_in_config_mode);
    else if (!field)
        rc = ini_err(p, -EINVAL, "key \"%.40s\": unknown", key);
    else if (dup_into(field, val) != 0)
        rc = ini_err(p, -ENOMEM, "out of memory");
    else
        p->cont = field;
    p->nkeys++;
    return rc;
}

static int ini_continue(struct ini *p, const char *val)
{
    if (!p->cont)
        return ini_err(p, -EINVAL, "indented line \"%.40s\" continues no value",
                       val);
    size_t n = strlen(*p->cont), m = strlen(val);
    if (n + m + 2 > DRV_TMPL_TEXT_MAX)
        return ini_err(p, -EINVAL, "value longer than %d bytes",
                       DRV_TMPL_TEXT_MAX);
    char *t = realloc(*p->cont, n + m + 2);
    if (!t)
        return ini_err(p, -ENOMEM, "out of memory");
    if (n)
        t[n++] = '\n';
    memcpy(t + n, val, m + 1);
    *p->cont = t;
    return 0;
}

static int ini_line(struct ini *p, char *raw)
{
    bool indented = raw[0] == ' ' || raw[0] == '\t';
    char *line = trim(raw);
    if (!line[0] || line[0] == ';' || line[0] == '#')
        return 0; /* blank lines and comments end no value */
    if (indented && p->cont)
        return ini_continue(p, line);
    if (line[0] == '[')
        return ini_section(p, line);
    return ini_key(p, line);
}

/* --- per-vendor checks
 * --------------------------------------------------------- */

static int check_required(struct ini *p, const struct drv_tmpl_vendor *v)
{
    static const int req[] = {DRV_TMPL_ADD_NETWORK, DRV_TMPL_DELETE_NETWORK,
                              DRV_TMPL_ADD_NETWORK_TO_TRUNK,
                              DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK,
                              DRV_TMPL_SHOW_VLANS};
    if (!v->dialect)
        return ini_err(p, -EINVAL, "[%s]: no dialect", v->name);
    if (!v->prompt || !v->prompt[0])
        return ini_err(p, -EINVAL, "[%s]: no prompt", v->name);
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (!v->ops[req[i]] || !v->ops[req[i]][0])
            return ini_err(p, -EINVAL, "[%s]: no %s", v->name,
                           op_info[req[i]].name);
    bool per_port =
        v->dialect == DRV_DIALECT_IOS || v->dialect == DRV_DIALECT_JUNOS;
    if (per_port && (!v->ops[DRV_TMPL_SHOW_PORT] ||
                     !strstr(v->ops[DRV_TMPL_SHOW_PORT], "{port}")))
        return ini_err(p, -EINVAL,
                       "[%s]: dialect %s needs SHOW_PORT with {port}", v->name,
                       dialects[v->dialect]);
    return 0;
}

static int check_templates(struct ini *p, const struct drv_tmpl_vendor *v)
{
    char msg[200];
    for (int i = 0; i < DRV_TMPL_NOPS; i++) {
        struct scan sc = {op_info[i].allowed, NULL, NULL, 0, 0, false, msg,
                          sizeof msg};
        if (v->ops[i] && scan_text(&sc, v->ops[i]) != 0)
            return ini_err(p, -EINVAL, "[%s] %s: %s", v->name, op_info[i].name,
                           msg);
    }
    return 0;
}

static int compile_one(struct ini *p, const struct drv_tmpl_vendor *v,
                       regex_t *re, const char *pat, const char *what)
{
    int rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB);
    if (rc == 0)
        return 0;
    char why[128];
    regerror(rc, re, why, sizeof why);
    return ini_err(p, -EINVAL, "[%s] %s \"%.60s\": %s", v->name, what, pat,
                   why);
}

static int compile_errors(struct ini *p, struct drv_tmpl_vendor *v)
{
    char pat[512];
    const char *t = v->errors ? v->errors : "";
    while (*t) {
        size_t n = strcspn(t, "\n");
        if (n && v->nerr == DRV_TMPL_MAX_RE)
            return ini_err(p, -EINVAL, "[%s]: more than %d error patterns",
                           v->name, DRV_TMPL_MAX_RE);
        if (n >= sizeof pat)
            return ini_err(p, -EINVAL, "[%s]: error pattern too long", v->name);
        snprintf(pat, sizeof pat, "%.*s", (int)n, t);
        if (n && compile_one(p, v, &v->err_re[v->nerr], pat, "error") != 0)
            return -EINVAL;
        v->nerr += n != 0;
        t += n + (t[n] == '\n');
    }
    return 0;
}

static int compile(struct ini *p, struct drv_tmpl_vendor *v)
{
    if (compile_one(p, v, &v->prompt_re, v->prompt, "prompt") != 0)
        return -EINVAL;
    v->compiled = true; /* from here vendor_uncompile frees what exists */
    if (v->more && v->more[0]) {
        if (compile_one(p, v, &v->more_re, v->more, "more") != 0)
            return -EINVAL;
        v->has_more = true;
    }
    return compile_errors(p, v);
}

static int finish(struct ini *p)
{
    for (size_t i = 0; i < p->s->n; i++) {
        struct drv_tmpl_vendor *v = &p->s->v[i];
        if (v->compiled)
            continue;
        int rc = check_required(p, v);
        if (rc == 0)
            rc = check_templates(p, v);
        if (rc == 0)
            rc = compile(p, v);
        if (rc)
            return rc;
    }
    return 0;
}

int drv_tmpl_set_parse(struct drv_tmpl_set *s, const char *text,
                       const char *name, char *errmsg, size_t errlen)
{
    struct ini p = {.s = s, .file = name, .errmsg = errmsg, .errlen = errlen};
    char *copy = strdup(text);
    if (!copy) {
        snprintf(errmsg, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    char *line = copy;
    while (rc == 0 && line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        p.line++;
        rc = ini_line(&p, line);
        line = nl ? nl + 1 : NULL;
    }
    free(copy);
    p.line = 0; /* checks name the vendor, not a line */
    return rc ? rc : finish(&p);
}

static int read_file(const char *path, char **out, char *errmsg, size_t errlen)
{
    FILE *f = fopen(path, "r");
    *out = NULL;
    if (!f) {
        int e = errno;
        snprintf(errmsg, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > FILE_MAX || memchr(buf, '\0', n)) {
        snprintf(errmsg, errlen, "%s: %s", path,
                 !buf           ? "out of memory"
                 : bad          ? "read error"
                 : n > FILE_MAX ? "larger than 256 KiB"
                                : "contains a NUL byte");
        free(buf);
        return !buf ? -ENOMEM : -EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int drv_tmpl_set_load(struct drv_tmpl_set *s, const char *path, char *errmsg,
                      size_t errlen)
{
    memset(s, 0, sizeof *s);
    int rc =
        drv_tmpl_set_parse(s, drv_tmpl_builtin, "(built-in)", errmsg, errlen);
    if (rc || !path || !path[0])
        return rc;
    char *text;
    if ((rc = read_file(path, &text, errmsg, errlen)) != 0)
        return rc;
    rc = drv_tmpl_set_parse(s, text, path, errmsg, errlen);
    free(text);
    return rc;
}

/* --- output classification
 * ----------------------------------------------------- */

static bool match(const regex_t *re, const char *line)
{
    return regexec(re, line, 0, NULL, 0) == 0;
}

bool drv_tmpl_is_prompt(const struct drv_tmpl_vendor *v, const char *line)
{
    return v->compiled && match(&v->prompt_re, line);
}

bool drv_tmpl_is_more(const struct drv_tmpl_vendor *v, const char *line)
{
    return v->compiled && v->has_more && match(&v->more_re, line);
}

bool drv_tmpl_is_error(const struct drv_tmpl_vendor *v, const char *line)
{
    for (size_t i = 0; v->compiled && i < v->nerr; i++)
        if (match(&v->err_re[i], line))
            return true;
    return false;
}
