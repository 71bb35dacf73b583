/* Ownership marks (interface aliases) and interface names: pure string
 * work, shared by the back-ends and unit-tested on its own.
 */
#ifndef VC_DRIVERS_DRV_MARK_H
#define VC_DRIVERS_DRV_MARK_H

#include <stddef.h>
#include <stdint.h>

#include "drv.h"

enum drv_mark_kind {
    DRV_MARK_NONE = 0,    /* not ours: no "virtcloud:" prefix */
    DRV_MARK_CLUSTER = 1, /* host subinterface or bridge of a cluster */
    DRV_MARK_QINQ = 2,    /* switch S-VLAN device */
    DRV_MARK_OTHER = 3,   /* our prefix, but a form we do not know (a newer
                             version's, or damaged): left alone */
};

struct drv_mark {
    uint8_t kind;               /* enum drv_mark_kind */
    uint16_t vid;               /* CLUSTER: vlan; QINQ: svlan */
    uint64_t idx;               /* log index; 0 if absent */
    char name[VC_NAME_MAX + 1]; /* CLUSTER: cluster; QINQ: bridge */
};

/* Parses alias (NULL or "" is DRV_MARK_NONE) into m and returns m->kind.
 * Accepted forms, fields in this order:
 *   virtcloud:cluster=NAME:vlan=VID[:idx=N]
 *   virtcloud:qinq=BRIDGE:svlan=VID[:idx=N]
 * NAME passes proto_name_ok(), BRIDGE is an interface name, VID 1..4094,
 * N a decimal u64 without sign or leading zero. Anything else after the
 * prefix is DRV_MARK_OTHER. */
int drv_mark_parse(const char *alias, struct drv_mark *m);

/* Writes m (kind CLUSTER or QINQ) in the form above into buf; idx is
 * left out when 0. Returns 0, or -ENAMETOOLONG if it does not fit len
 * (never with len > DRV_ALIAS_MAX and a valid name). */
int drv_mark_format(const struct drv_mark *m, char *buf, size_t len);

/* True if a and b mark the same object (kind, name, vid), whatever idx. */
int drv_mark_same(const struct drv_mark *a, const struct drv_mark *b);

/* True if s is a valid Linux interface name (proto_ifname_ok). */
int drv_ifname_ok(const char *s);

#endif
