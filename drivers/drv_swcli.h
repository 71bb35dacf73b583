/* Vendor switch model of the ssh driver: what a switch's CLI shows, read
 * into a view, and the operations that bring the view to a desired state.
 *
 * Pure: no I/O. drv_ssh.c feeds it the output of the vendor's SHOW_VLANS
 * and SHOW_PORT commands and executes the plan through templates
 * (drv_tmpl.h); the unit tests feed it recorded output.
 *
 * Ownership. A switch VLAN cannot carry a kernel alias, so its *name* is
 * the mark: the driver names every VLAN it creates MARK + cluster ("vc-"
 * + "tenant-a", cut to 32 bytes; MARK + VID without a cluster), and only
 * VLANs whose name starts with MARK are ours. The plan
 *   - creates a desired VLAN that does not exist (ADD_NETWORK), and
 *     refuses (-EEXIST) one that exists under another name;
 *   - adds a desired VLAN to each managed port that lacks it
 *     (ADD_NETWORK_TO_TRUNK);
 *   - for complete states only, removes from the managed ports the VLANs
 *     that are ours, in the managed set and not desired there
 *     (REMOVE_NETWORK_FROM_TRUNK), then deletes those VLANs
 *     (DELETE_NETWORK).
 * A VLAN that is not ours is never changed, removed from a port or
 * deleted; ports not in the config are never touched.
 */
#ifndef VC_DRIVERS_DRV_SWCLI_H
#define VC_DRIVERS_DRV_SWCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv.h"
#include "drv_tmpl.h"

#define DRV_SWCLI_NAME_MAX 63 /* longest VLAN name kept from the output */
#define DRV_SWCLI_MARK_MAX 15

/* The switch's cabling, from the driver config. Port 0 is the uplink;
 * ports 1.. serve hosts[1..]. All borrowed. */
struct drv_swcfg {
    const char *mark;         /* VLAN name prefix: drv_tmpl_name_ok */
    const char *const *ports; /* nports names, distinct */
    const char *const *hosts; /* hosts[0] is NULL (the uplink) */
    size_t nports;
};

/* What the switch shows. */
struct drv_swview {
    struct vlanset exists;                 /* VLANs defined */
    char (*names)[DRV_SWCLI_NAME_MAX + 1]; /* owned, [4096]; "" unnamed */
    struct vlanset *ports;                 /* owned, [nports]: VIDs each
                                              port carries tagged */
    size_t nports;
};

/* Allocates an empty view for nports ports. 0 or -ENOMEM. */
int drv_swview_init(struct drv_swview *v, size_t nports);
/* Empties v, keeping its memory. */
void drv_swview_reset(struct drv_swview *v);
void drv_swview_close(struct drv_swview *v);

/* Reads the output of SHOW_VLANS (dialect: enum drv_tmpl_dialect) into
 * v; procurve and ftos list port members there too (ports as in c).
 * Unrecognised lines are skipped. Returns 0. */
int drv_swcli_parse_vlans(int dialect, const char *text,
                          const struct drv_swcfg *c, struct drv_swview *v);
/* Reads the output of SHOW_PORT for c->ports[i] (ios, junos) into v;
 * junos resolves member names through the VLANs parsed before. */
int drv_swcli_parse_port(int dialect, const char *text, size_t i,
                         const struct drv_swcfg *c, struct drv_swview *v);

/* True if a list such as "A1-A4,B2", "0/1-3,0/5" or "1,3-5" names port
 * (prefix + trailing number, ranges over the number). */
bool drv_swcli_portlist_has(const char *list, const char *port);

/* The name the driver gives vid's VLAN: mark + cluster, cut to 32, or
 * mark + vid without a cluster. out has DRV_TMPL_NAME_MAX + 1 bytes. */
void drv_swcli_vlan_name(const char *mark, const char *cluster, unsigned vid,
                         char *out);

/* One step of a plan: a template operation and its values. */
struct drv_swop {
    uint8_t op; /* DRV_TMPL_ADD_NETWORK ... */
    uint16_t vid;
    int port; /* index into c->ports, -1 for VLAN operations */
    char name[DRV_TMPL_NAME_MAX + 1];
};

struct drv_swplan {
    struct drv_swop *v; /* owned */
    size_t n, cap;
};

void drv_swplan_close(struct drv_swplan *p);

/* Replaces p by the operations that bring have to want, in execution
 * order (create VLANs, add to ports, remove from ports, delete VLANs;
 * VIDs ascending, ports in config order). Returns 0, -EINVAL (bad
 * state: unknown host, VID outside managed, QinQ uplink), -EOPNOTSUPP
 * (qinq), -EEXIST (a desired VLAN exists and is not ours) or -ENOMEM,
 * with errmsg. */
int drv_swplan_make(const struct drv_swcfg *c,
                    const struct drv_switch_state *want,
                    const struct drv_swview *have, struct drv_swplan *p,
                    char *errmsg, size_t errlen);

/* The read-back of drv.h: our VLANs in managed found on managed ports.
 * *out is malloc'd (drv_switch_state_free). 0 or -ENOMEM. */
int drv_swcli_read(const struct drv_swcfg *c, const struct vlanset *managed,
                   const struct drv_swview *have,
                   struct drv_switch_state **out);

#endif
