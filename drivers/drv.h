/* Device back-ends: make a site's edge switch or a hypervisor host carry
 * exactly the cluster VLANs the state machine says it should.
 *
 * A driver instance is opened from a config string and applies *desired
 * states*: it reads the device's actual state back, computes the difference
 * and changes only that. Applying the same state twice changes nothing the
 * second time (drv_result.changes == 0), so the reconciler may apply on
 * every commit, on a timer and after a restart alike.
 *
 * Back-ends (config strings):
 *   "host[:bridge=PATTERN][:group=N]"
 *        Hypervisor host through rtnetlink (drv_host.c). For every cluster
 *        VLAN: a subinterface <trunk>.<vid>, a bridge named by PATTERN
 *        (printf-style with one %u, default "vc%u" -> "vc42"), the
 *        subinterface and the VM interfaces enslaved to the bridge.
 *        N is the link group used to delete many links in one kernel
 *        batch (default DRV_TRASH_GROUP, 0 disables).
 *   "linuxbridge:BRIDGE:uplink=PORT[:HOST=PORT]..."
 *        Site edge switch simulated by a Linux bridge with VLAN filtering
 *        (drv_linuxbr.c); HOST=PORT maps each host name to its trunk port.
 *        Cluster VLANs are tagged on the host ports and, for xponder and
 *        vpls uplinks, on the uplink port. A qinq uplink is an 802.1ad
 *        VLAN device "vcq<svlan>" on the uplink port, enslaved to the
 *        bridge: the bridge tags the cluster VLAN (C-tag) on that port and
 *        the device adds the site's S-VLAN; the raw uplink port then
 *        carries no cluster VLAN. (A bridge with vlan_protocol 802.1ad
 *        would S-tag the host ports too.)
 *   "ssh:HOST:vendor=VENDOR:uplink=PORT[:HOST=PORT]...[:KEY=VALUE]..."
 *        Vendor switch over SSH (drv_ssh.c, docs/drivers.md): command
 *        templates per vendor (cisco_ios, hp_procurve, dell_force10,
 *        juniper_junos, or an operator's templates= file), one session
 *        and one saved batch per apply. Its VLANs are marked by name
 *        ("vc-<cluster>"), as switch VLANs carry no alias, so it has no
 *        idx to fence with (-ESTALE is never returned); xponder and vpls
 *        uplinks only.
 *   "dryrun[:LATENCY_MS[:FAIL_RATE[:SEED]]]"
 *        Simulated device in memory (drv_dryrun.c): does both roles, logs
 *        the commands it would run, sleeps LATENCY_MS per apply and fails
 *        each operation with probability FAIL_RATE (0..1, e.g. 0.05).
 *
 * Ownership mark. Every link a driver creates carries in its interface
 * alias (IFLA_IFALIAS) a mark starting with DRV_MARK_PREFIX:
 *   "virtcloud:cluster=NAME:vlan=42[:idx=N]"   host subinterface and bridge
 *   "virtcloud:qinq=BRIDGE:svlan=100[:idx=N]"  switch S-VLAN device
 * A driver changes or deletes only links carrying its kind of mark. The
 * one exception: the VM interfaces named by attachments are enslaved to
 * (and released from) our bridges, nothing else about them is touched.
 * Unmarked links that hold a name we need are reported (-EEXIST), never
 * replaced. The kernel cannot set an alias when it creates a link, so a
 * driver creates its links in link group DRV_NEW_GROUP (set atomically
 * with the creation) and moves them to group 0 in the request that
 * writes the mark: a crash in between leaves a link the driver still
 * recognizes as its own, and completes or removes, instead of an orphan
 * that would block the name forever.
 *
 * Switch VLAN membership cannot carry a mark, so the switch rule is: a
 * driver adds the desired VIDs and removes from the managed ports (mapped
 * host ports, uplink port, S-VLAN device) only the VIDs that are in
 * drv_switch_state.managed and not desired. VIDs outside `managed` are
 * never removed, and desired VIDs outside it are refused, so the driver
 * never adds what it would not later remove.
 *
 * Safety (docs: reliability notes 3 and 6):
 *  - A state with complete == false (the agent's view has not yet caught
 *    up with the commit index it saw at start-up) only adds and repairs:
 *    nothing is deleted, no VID removed, no VM interface released. (A
 *    link of ours that holds a desired name in the wrong shape, say a
 *    subinterface on another lower device, is still replaced.)
 *  - A state with index != 0 writes idx=index into the marks it creates
 *    or rewrites, and is refused with -ESTALE before any change if the
 *    device holds a mark with a higher idx: an older state never
 *    overwrites a newer one.
 *
 * IPv6 is switched off (net.ipv6.conf.NAME.disable_ipv6) on every link a
 * driver creates, before the link goes up, and again if someone turns it
 * on: the host must have no address, link-local or SLAAC, on a tenant's
 * VLAN.
 *
 * Scope: one host instance per network namespace (it regards every
 * cluster-marked link there as its own); a linuxbridge instance per
 * bridge.
 *
 * Blocking: an apply is synchronous. rtnetlink requests are executed by
 * the kernel inside sendmsg(), so no call waits for the network, but a
 * large apply takes CPU time (see tools/bench_host.c). The agent runs
 * applies on a libuv worker (uv_queue_work), one apply per instance at a
 * time; the desired state must stay valid until the apply returns. The
 * dryrun's injected latency sleeps on that worker.
 *
 * Errors: 0 or a negative errno (kernel errors pass through). errmsg gets
 * the context, outermost first, the failed operation in ip(8)/bridge(8)
 * syntax and the kernel's own text last: "linuxbridge br0: vlan 42: vlan
 * add dev swp1 vid 42: Operation not supported", "host: vlan 7: link add
 * eth1.7 link eth1 group 1986199554 type vlan id 7: Operation not
 * supported: Unknown device type". The caller prefixes its own ("switch
 * sw-a1: ...").
 */
#ifndef VC_DRIVERS_DRV_H
#define VC_DRIVERS_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/cmd.h"
#include "../proto/vlanset.h"

#define DRV_MARK_PREFIX "virtcloud:"
#define DRV_ALIAS_MAX 127  /* longest mark we write */
#define DRV_ERRMSG_MAX 512 /* a comfortable errmsg buffer */
#define DRV_PATTERN_DEFAULT "vc%u"
#define DRV_PATTERN_MAX 15          /* a pattern is itself at most IFNAMSIZ-1 */
#define DRV_TRASH_GROUP 0x76630001u /* link group: staging for bulk delete */
#define DRV_NEW_GROUP 0x76630002u   /* link group: created, not yet marked */

enum drv_role { DRV_ROLE_HOST = 1, DRV_ROLE_SWITCH = 2 };

/* --- desired states ------------------------------------------------------
 * All pointers inside are borrowed: the caller keeps them valid until the
 * apply returns, and the driver keeps none of them afterwards. Order of
 * arrays does not matter. */

/* One cluster VLAN on a hypervisor host. */
struct drv_host_vlan {
    uint16_t vid;              /* 1..4094, unique within the state */
    const char *cluster;       /* written in the mark; proto_name_ok() */
    const char *const *ifaces; /* VM interfaces to enslave to the bridge;
                                  NULL iff nifaces == 0 */
    uint32_t nifaces;
};

struct drv_host_state {
    const char *trunk; /* the host's trunk interface; never NULL.
                          May be missing on the host only if nvlans
                          is 0 */
    const struct drv_host_vlan *vlans; /* NULL iff nvlans == 0 */
    uint32_t nvlans;
    uint64_t index; /* log index that produced the state; 0: none */
    bool complete;  /* false: add and repair only, never delete */
};

/* One cluster VLAN on a site's edge switch. */
struct drv_switch_vlan {
    uint16_t vid;             /* 1..4094, in the state's managed set */
    const char *cluster;      /* for messages only; may be NULL */
    const char *const *hosts; /* hosts whose trunk port carries the VLAN
                                 (service nodes included by the caller);
                                 NULL iff nhosts == 0 */
    uint32_t nhosts;
    bool uplink; /* also carried to the other sites */
};

struct drv_switch_state {
    uint8_t uplink;         /* enum proto_uplink */
    uint16_t svlan;         /* outer S-VLAN for UPLINK_QINQ (1..4094);
                               ignored otherwise */
    struct vlanset managed; /* VIDs the driver may remove: the site's pool
                               and every VLAN its clusters hold (fsm_site
                               pool | used) */
    const struct drv_switch_vlan *vlans; /* NULL iff nvlans == 0 */
    uint32_t nvlans;
    uint64_t index; /* as in drv_host_state */
    bool complete;  /* as in drv_host_state */
};

/* What an apply did. */
struct drv_result {
    unsigned changes; /* write operations performed; 0: in sync */
    unsigned missing; /* VM interfaces named by the state that do not
                         exist (yet): not an error, retried on the
                         next apply */
    char note[128];   /* first missing interface, "" if none */
};

/* --- the vtable ---------------------------------------------------------
 * One per back-end (drv_host.c, drv_linuxbr.c, drv_dryrun.c). Callers use
 * the drv_* functions below, which pick the class, check the role and
 * wrap errmsg with the instance's name. */

struct drv;

struct drv_class {
    const char *name;  /* config prefix: "host", "linuxbridge", ... */
    const char *usage; /* config syntax, one line */
    unsigned roles;    /* DRV_ROLE_* bits */

    /* Creates an instance from args (the config after "name:", "" if
     * none). Never NULL. On success *out is owned by the caller and freed
     * with close. */
    int (*open)(const char *args, struct drv **out, char *errmsg,
                size_t errlen);
    /* Frees the instance and its sockets. Never NULL. */
    void (*close)(struct drv *d);

    /* NULL if the class lacks DRV_ROLE_HOST. want is borrowed. */
    int (*host_apply)(struct drv *d, const struct drv_host_state *want,
                      struct drv_result *res, char *errmsg, size_t errlen);
    /* Reads back what the host implements for trunk (borrowed): one
     * vlan per marked bridge whose subinterface is in place, with the
     * unmarked interfaces enslaved to it. *out is owned by the caller
     * (drv_host_state_free). NULL iff host_apply is NULL. */
    int (*host_read)(struct drv *d, const char *trunk,
                     struct drv_host_state **out, char *errmsg, size_t errlen);

    /* NULL if the class lacks DRV_ROLE_SWITCH. want is borrowed. */
    int (*switch_apply)(struct drv *d, const struct drv_switch_state *want,
                        struct drv_result *res, char *errmsg, size_t errlen);
    /* Reads back the VIDs in managed (borrowed) found on the switch's
     * managed ports; cluster names are NULL (a switch cannot know them).
     * *out is owned by the caller (drv_switch_state_free). NULL iff
     * switch_apply is NULL. */
    int (*switch_read)(struct drv *d, const struct vlanset *managed,
                       struct drv_switch_state **out, char *errmsg,
                       size_t errlen);
};

/* The registered classes, NULL-terminated. */
extern const struct drv_class *const drv_classes[];

/* --- instances ---------------------------------------------------------- */

/* Opens config (e.g. "linuxbridge:br0:uplink=eth0:h1=swp1"). Returns 0
 * with *out owned by the caller (drv_close), or -EINVAL for an unknown
 * class or bad arguments, or the back-end's error; errmsg says why. */
int drv_open(const char *config, struct drv **out, char *errmsg, size_t errlen);

/* Frees d. drv_close(NULL) is a no-op. */
void drv_close(struct drv *d);

const struct drv_class *drv_class_of(const struct drv *d);

/* "host", "linuxbridge br0", ...: borrowed, valid until drv_close. */
const char *drv_label(const struct drv *d);

/* Applies want. Fills res (may be NULL). Returns 0, -EOPNOTSUPP if the
 * back-end lacks the role, -EINVAL for a malformed state, -ESTALE for a
 * fenced one, -EEXIST if an unmarked link holds a name we need, or the
 * kernel's error; errmsg then names the instance, the VLAN, the object
 * and the operation. After an error the device may be partly changed:
 * the next apply continues from there. */
int drv_host_apply(struct drv *d, const struct drv_host_state *want,
                   struct drv_result *res, char *errmsg, size_t errlen);
int drv_switch_apply(struct drv *d, const struct drv_switch_state *want,
                     struct drv_result *res, char *errmsg, size_t errlen);

/* Read-backs, see struct drv_class. *out is NULL on error. */
int drv_host_read(struct drv *d, const char *trunk, struct drv_host_state **out,
                  char *errmsg, size_t errlen);
int drv_switch_read(struct drv *d, const struct vlanset *managed,
                    struct drv_switch_state **out, char *errmsg, size_t errlen);

/* Free a read-back state and everything it points to. NULL is a no-op.
 * Never pass a caller-built desired state. */
void drv_host_state_free(struct drv_host_state *s);
void drv_switch_state_free(struct drv_switch_state *s);

/* For drivers building a read-back: appends a copy of host to v's hosts
 * (freed by drv_switch_state_free()). 0 or -ENOMEM (v unchanged but for
 * a possibly larger array). */
int drv_switch_vlan_add_host(struct drv_switch_vlan *v, const char *host);

/* Operation log: when on, every write operation performed is appended as
 * one line in ip(8)/bridge(8) syntax ("link add vc42 type bridge"). Off
 * by default except for dryrun. */
void drv_log_enable(struct drv *d, bool on);
/* Returns the lines logged since the last call (malloc'd, caller frees)
 * or NULL if none; clears the log. */
char *drv_log_take(struct drv *d);

/* --- pure helpers (also used by the back-ends) ---------------------------
 */

/* Checks a bridge name pattern: printable, no '/', ':' or spaces, exactly
 * one "%u" (other '%' only as "%%"), and "vc4094"-style expansion of the
 * largest VID fits IFNAMSIZ-1. Returns 0 or -EINVAL with errmsg. */
int drv_pattern_check(const char *pattern, char *errmsg, size_t errlen);

/* Expands a checked pattern for vid into name (IFNAMSIZ bytes). */
void drv_pattern_name(const char *pattern, unsigned vid, char *name);

/* "<trunk>.<vid>" into name (IFNAMSIZ bytes). Returns 0, or -ENAMETOOLONG
 * if it does not fit IFNAMSIZ-1. */
int drv_subif_name(const char *trunk, unsigned vid, char *name);

#endif
