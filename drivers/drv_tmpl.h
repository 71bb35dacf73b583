/* Vendor command templates of the ssh switch driver (drv_ssh.c): what to
 * type on a switch's CLI for each operation, how its prompt looks and
 * which output means the command failed.
 *
 * Operation names and placeholders are those of OpenStack
 * networking-generic-switch (NGS) device profiles, so an operator can port
 * an existing definition line by line:
 *   ADD_NETWORK, DELETE_NETWORK, ADD_NETWORK_TO_TRUNK,
 *   REMOVE_NETWORK_FROM_TRUNK, PLUG_PORT_TO_NETWORK, DELETE_PORT,
 *   SAVE_CONFIGURATION
 *   {segmentation_id}  the VLAN ID, always 1..4094
 *   {network_name}     the VLAN's name on the switch: our ownership mark
 *   {network_id}       the same (NGS passes the network UUID; we have none)
 *   {port}             a switch port, as written in the driver config
 * plus our own session steps (SESSION_SETUP, ENABLE_MODE, CONFIG_MODE,
 * EXIT_CONFIG_MODE) and read-back commands (SHOW_VLANS, SHOW_PORT {port}).
 *
 * Template sets are INI text (the built-ins are compiled-in INI, parsed by
 * the same code as an operator's file):
 *
 *   ; comment lines start with ';' or '#'
 *   [my_ios]                one section per vendor
 *   inherit = cisco_ios     start from another vendor (first key only)
 *   dialect = ios           read-back parser: ios procurve ftos junos
 *   prompt  = ^[^ ]+[>#] ?$ POSIX ERE matched on the output's last line
 *   error   = % Invalid input
 *             % Incomplete  EREs, one per line: output meaning failure
 *   more    = --More--      ERE: a pager waiting for a key (optional)
 *   save_in_config_mode = no    yes: SAVE before EXIT_CONFIG_MODE (Junos)
 *   ADD_NETWORK = vlan {segmentation_id}
 *                 name {network_name}
 * Indented lines continue a value (one command per line); "{{" and "}}"
 * are literal braces, as in Python's str.format that NGS uses.
 *
 * A section named like a built-in vendor overrides only the keys it sets;
 * a new name needs inherit or a complete definition. Values are checked
 * when loaded: unknown keys, unknown placeholders (or ones an operation
 * cannot fill), bad regular expressions and missing required operations
 * are refused with the file, line and key in errmsg.
 *
 * Injection: rendering checks every value it substitutes (VLAN IDs are
 * numbers, names and ports have a restricted alphabet, no control
 * characters), so nothing from the replicated state can add a command.
 */
#ifndef VC_DRIVERS_DRV_TMPL_H
#define VC_DRIVERS_DRV_TMPL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_TMPL_NAME_MAX 32 /* VLAN name on the switch (IOS: 32) */
#define DRV_TMPL_PORT_MAX 64 /* switch port name */
#define DRV_TMPL_VENDOR_MAX 31
#define DRV_TMPL_TEXT_MAX 4096 /* one operation's template text */

enum drv_tmpl_op {
    DRV_TMPL_SESSION_SETUP, /* after login: paging off ... */
    DRV_TMPL_ENABLE_MODE,
    DRV_TMPL_CONFIG_MODE,
    DRV_TMPL_EXIT_CONFIG_MODE,
    DRV_TMPL_ADD_NETWORK,
    DRV_TMPL_DELETE_NETWORK,
    DRV_TMPL_ADD_NETWORK_TO_TRUNK,
    DRV_TMPL_REMOVE_NETWORK_FROM_TRUNK,
    DRV_TMPL_PLUG_PORT_TO_NETWORK, /* NGS access ports: checked, unused */
    DRV_TMPL_DELETE_PORT,          /* NGS access ports: checked, unused */
    DRV_TMPL_SAVE_CONFIGURATION,
    DRV_TMPL_SHOW_VLANS, /* read-back: VLANs (and members, by dialect) */
    DRV_TMPL_SHOW_PORT,  /* read-back: one port's VLANs (ios, junos) */
    DRV_TMPL_NOPS
};

/* Read-back parsers (drv_swcli.c). */
enum drv_tmpl_dialect {
    DRV_DIALECT_NONE = 0,
    DRV_DIALECT_IOS,      /* show vlan brief + running-config interface */
    DRV_DIALECT_PROCURVE, /* running-config "vlan N" blocks, tagged A1-A4 */
    DRV_DIALECT_FTOS,     /* running-config "interface Vlan N" blocks */
    DRV_DIALECT_JUNOS,    /* display set: vlans and interface members */
};

#define DRV_TMPL_MAX_RE 16

struct drv_tmpl_vendor {
    char name[DRV_TMPL_VENDOR_MAX + 1];
    uint8_t dialect;          /* enum drv_tmpl_dialect */
    bool save_in_config_mode; /* Junos: commit inside configuration mode */
    char *ops[DRV_TMPL_NOPS]; /* owned; lines separated by '\n'; NULL or
                                 "" if the vendor has no such step */
    char *prompt, *more;      /* owned EREs; more may be NULL */
    char *errors;             /* owned EREs, one per line */
    /* Compiled by drv_tmpl_set_load (valid iff compiled). */
    bool compiled;
    regex_t prompt_re, more_re;
    regex_t err_re[DRV_TMPL_MAX_RE];
    size_t nerr;
    bool has_more;
};

struct drv_tmpl_set {
    struct drv_tmpl_vendor *v; /* owned */
    size_t n;
};

/* Values for one rendering; NULL/0 for those the operation does not use. */
struct drv_tmpl_args {
    unsigned vid;     /* {segmentation_id} */
    const char *name; /* {network_name}, {network_id} */
    const char *port; /* {port} */
};

/* Loads the built-in vendors, then path (if not NULL) over them. s is
 * zeroed first; free with drv_tmpl_set_close even on error. Returns 0,
 * -EINVAL (bad file: errmsg "FILE:LINE: ...") or -ENOENT/-EACCES/-ENOMEM.
 */
int drv_tmpl_set_load(struct drv_tmpl_set *s, const char *path, char *errmsg,
                      size_t errlen);
/* Parses INI text (name is used in messages) over what s holds, then
 * checks and compiles every vendor. For tests and drv_tmpl_set_load.
 * After an error s is only good for drv_tmpl_set_close. */
int drv_tmpl_set_parse(struct drv_tmpl_set *s, const char *text,
                       const char *name, char *errmsg, size_t errlen);
void drv_tmpl_set_close(struct drv_tmpl_set *s);

/* The vendor called name (borrowed from s) or NULL. */
const struct drv_tmpl_vendor *drv_tmpl_find(const struct drv_tmpl_set *s,
                                            const char *name);

/* "ADD_NETWORK" ...; NULL if op is out of range. */
const char *drv_tmpl_op_name(int op);

/* Renders op for a into out (lines separated by '\n', no trailing
 * newline; "" if the vendor has no such step). Returns the length, or
 * -EINVAL (a value fails validation: errmsg quotes it) or -ENOSPC (out is
 * too small; out then holds "" ). Never writes past outlen. */
int drv_tmpl_render(const struct drv_tmpl_vendor *v, int op,
                    const struct drv_tmpl_args *a, char *out, size_t outlen,
                    char *errmsg, size_t errlen);

/* Value checks used by render (and by the driver's config parser). */
bool drv_tmpl_name_ok(const char *s); /* [A-Za-z][A-Za-z0-9_.-]{0,31} */
bool drv_tmpl_port_ok(const char *s); /* [A-Za-z0-9/._:-], single inner
                                         spaces, 1..64 bytes */

/* Output classification on one line (no newline; '\r' already removed). */
bool drv_tmpl_is_prompt(const struct drv_tmpl_vendor *v, const char *line);
bool drv_tmpl_is_more(const struct drv_tmpl_vendor *v, const char *line);
bool drv_tmpl_is_error(const struct drv_tmpl_vendor *v, const char *line);

/* The compiled-in INI text (for docs and tests). */
extern const char drv_tmpl_builtin[];

#endif
