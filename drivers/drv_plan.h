/* Desired-state diffing: from a snapshot of the device's links and a
 * desired state to the list of operations that makes one into the other.
 *
 * Pure: no I/O. The same planner runs against the kernel (drv_host.c,
 * drv_linuxbr.c, through drv_nl.c) and against the in-memory model of
 * drv_dryrun.c, and the unit tests run it against hand-made link tables.
 *
 * Planning is repeated until it yields nothing (drv_converge in drv.c):
 * a first round deletes what must go and creates what is missing, a
 * second one enslaves the new subinterfaces to the new bridges (whose
 * ifindex the first round could not know), a last one confirms.
 */
#ifndef VC_DRIVERS_DRV_PLAN_H
#define VC_DRIVERS_DRV_PLAN_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drv.h"

enum drv_kind { DRV_KIND_OTHER = 0, DRV_KIND_BRIDGE = 1, DRV_KIND_VLAN = 2 };

#define DRV_ETH_P_8021Q 0x8100
#define DRV_ETH_P_8021AD 0x88A8

/* VLANs of one bridge port, as read with RTEXT_FILTER_BRVLAN. */
struct drv_portvlans {
    struct vlanset vids;     /* every VID the port is a member of */
    struct vlanset untagged; /* those sent untagged */
    uint16_t pvid;           /* 0 if none */
};

/* One network interface as the kernel reports it. */
struct drv_link {
    int ifindex;
    int master;          /* IFLA_MASTER, 0 if none */
    int link;            /* IFLA_LINK of a VLAN device, 0 if none */
    unsigned flags;      /* IFF_* */
    uint32_t group;      /* IFLA_GROUP */
    uint8_t kind;        /* enum drv_kind */
    bool vlan_filtering; /* bridges: IFLA_BR_VLAN_FILTERING */
    bool ipv6_on;        /* IPv6 enabled on it (IFLA_INET6_CONF) */
    uint16_t vid;        /* VLAN devices: IFLA_VLAN_ID */
    uint16_t vproto;     /* VLAN devices: host order, DRV_ETH_P_* */
    char name[IFNAMSIZ];
    char alias[256];          /* IFLA_IFALIAS, "" if none */
    struct drv_portvlans *pv; /* owned; NULL unless read or not a port */
};

/* A snapshot of the links of one network namespace. */
struct drv_links {
    struct drv_link *v; /* sorted by ifindex after drv_links_index() */
    size_t n, cap;
    uint32_t *by_name; /* positions in v sorted by name */
};

void drv_links_init(struct drv_links *l);
void drv_links_close(struct drv_links *l); /* frees pv of each link too */
void drv_links_reset(struct drv_links *l); /* empties, keeps capacity */
/* Appends a zeroed link; NULL if out of memory. Invalidates the index
 * and pointers to other links. */
struct drv_link *drv_links_add(struct drv_links *l);
/* Sorts and indexes; call after adding. 0 or -ENOMEM. */
int drv_links_index(struct drv_links *l);
/* Lookups on an indexed table: the link or NULL. */
const struct drv_link *drv_links_find(const struct drv_links *l,
                                      const char *name);
const struct drv_link *drv_links_get(const struct drv_links *l, int ifindex);

/* --- operations ---------------------------------------------------------
 * Names are carried along for the log and for messages: an operation
 * reads as an ip(8)/bridge(8) command (drv_op_format). */

enum drv_op_type {
    DRV_OP_ADD_BRIDGE,    /* link add NAME type bridge */
    DRV_OP_ADD_VLAN,      /* link add NAME link LOWER type vlan id VID */
    DRV_OP_SET,           /* link set: alias, master, up, group */
    DRV_OP_DEL,           /* link del IFINDEX */
    DRV_OP_DEL_GROUP,     /* link del group GROUP (one kernel batch) */
    DRV_OP_PORT_VLAN_ADD, /* bridge vlan add dev PORT vid VID (tagged) */
    DRV_OP_PORT_VLAN_DEL, /* bridge vlan del dev PORT vid VID */
    DRV_OP_BR_FILTER,     /* link set BRIDGE type bridge vlan_filtering 1 */
    DRV_OP_NO_IPV6,       /* sysctl net/ipv6/conf/NAME/disable_ipv6=1 */
};

struct drv_op {
    uint8_t type;         /* enum drv_op_type */
    int8_t up;            /* SET: 1 set up, 0 unchanged */
    uint16_t vid;         /* ADD_VLAN, PORT_VLAN_* */
    uint16_t vproto;      /* ADD_VLAN: DRV_ETH_P_* */
    int ifindex;          /* target; 0: by name (links made this round) */
    int link;             /* ADD_VLAN: lower device */
    int master;           /* ADD_VLAN, SET: -1 unchanged, 0 release,
                             > 0 master's ifindex */
    int64_t group;        /* SET: -1 unchanged; ADD_*: the new link's
                             (DRV_NEW_GROUP); DEL_GROUP: the group */
    char name[IFNAMSIZ];  /* target's name */
    char lower[IFNAMSIZ]; /* ADD_VLAN: lower device's name */
    char mname[IFNAMSIZ]; /* ADD_VLAN, SET: master's name if master > 0 */
    char alias[DRV_ALIAS_MAX + 1]; /* SET: new alias, "" unchanged */
    uint16_t ctx_vid; /* cluster VLAN the op serves (messages), or 0 */
};

struct drv_plan {
    struct drv_op *v;
    size_t n, cap;
    unsigned missing; /* VM interfaces not found */
    char note[128];   /* first one, "" if none */
};

void drv_plan_init(struct drv_plan *p);
void drv_plan_close(struct drv_plan *p);
void drv_plan_reset(struct drv_plan *p);
/* Appends a zeroed op with master = group = -1; NULL if out of memory. */
struct drv_op *drv_plan_add(struct drv_plan *p, uint8_t type);

/* Stable-sorts p into execution phases: deletions (and moves into or out
 * of the trash group), creations, by-name SETs without "up" (the marks),
 * IPv6 switched off, by-name SETs with "up", everything else. An executor must
 * not send a by-name operation before the creations ahead of it are
 * acknowledged, and must stop at the first failure: otherwise a failed creation
 * (EEXIST: someone made a link of that name meanwhile) would let the
 * by-name SET mark someone else's link as ours. 0 or -ENOMEM. */
int drv_plan_order(struct drv_plan *p);

/* Writes op as one ip/bridge command line (no newline) into buf. */
void drv_op_format(const struct drv_op *op, char *buf, size_t len);

/* --- planners ------------------------------------------------------------ */

struct drv_host_cfg {
    char pattern[DRV_PATTERN_MAX + 1]; /* checked by drv_pattern_check */
    uint32_t trash_group;              /* 0: delete links one by one */
    bool ipv6; /* the kernel has IPv6: disable it on our links */
};

struct drv_port_map {
    char host[VC_NAME_MAX + 1];
    char port[IFNAMSIZ];
};

struct drv_switch_cfg {
    char bridge[IFNAMSIZ];
    char uplink[IFNAMSIZ];
    struct drv_port_map *ports; /* owned; nports entries */
    size_t nports;
    bool ipv6; /* the kernel has IPv6: disable it on our links */
};

/* Parses "BRIDGE:uplink=PORT[:HOST=PORT]..." into c (fields zeroed
 * first; free c->ports with drv_switch_cfg_close). 0 or -EINVAL/-ENOMEM
 * with errmsg. */
int drv_switch_cfg_parse(struct drv_switch_cfg *c, const char *args,
                         char *errmsg, size_t errlen);
void drv_switch_cfg_close(struct drv_switch_cfg *c);
/* Parses "[bridge=PATTERN][:group=N]" into c (defaults first). */
int drv_host_cfg_parse(struct drv_host_cfg *c, const char *args, char *errmsg,
                       size_t errlen);

/* S-VLAN device name of a QinQ uplink: "vcq<svlan>". */
void drv_qinq_name(unsigned svlan, char *name);

/* Appends to p (reset first) the operations that bring have towards
 * want. Returns 0, -EINVAL (bad state), -ENODEV (trunk, bridge or port
 * missing), -EEXIST (an unmarked link holds a name we need), -ESTALE
 * (fenced) or -ENOMEM, with errmsg. */
int drv_plan_host(const struct drv_host_cfg *cfg,
                  const struct drv_host_state *want,
                  const struct drv_links *have, struct drv_plan *p,
                  char *errmsg, size_t errlen);
int drv_plan_switch(const struct drv_switch_cfg *cfg,
                    const struct drv_switch_state *want,
                    const struct drv_links *have, struct drv_plan *p,
                    char *errmsg, size_t errlen);

/* Read-backs (see struct drv_class): *out is malloc'd, caller frees with
 * drv_host_state_free / drv_switch_state_free. 0 or -ENOMEM. */
int drv_read_host(const struct drv_host_cfg *cfg, const char *trunk,
                  const struct drv_links *have, struct drv_host_state **out);
int drv_read_switch(const struct drv_switch_cfg *cfg,
                    const struct vlanset *managed, const struct drv_links *have,
                    struct drv_switch_state **out);

#endif
