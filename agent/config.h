/* Agent configuration: an INI file (--config FILE), its drop-ins
 * (conf.d/NAME.conf in FILE's directory, in byte-wise lexical order) and
 * the same keys as command-line flags (--key value or --key=value).
 *
 * Precedence: a drop-in overrides the main file and earlier drop-ins (that
 * is what drop-ins are for); flags override every file. Within one file a
 * key may appear once: a second occurrence is an error, as is an unknown
 * key, an unknown section or an unreadable file.
 *
 * Errors name the file:line and key (or the flag) and the reason; the
 * daemon prints that one line and exits with status 2.
 * docs/configuration.md documents every key.
 */
#ifndef VC_AGENT_CONFIG_H
#define VC_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../proto/cmd.h"
#include "../proto/vlanset.h"

#define CONFIG_MEMBERS_MAX 16
#define CONFIG_PEER_KEYS_MAX 16
#define CONFIG_CLUSTER_ID_MAX 64 /* NUL included */
#define CONFIG_SITE_AGENTS_MAX 8

enum config_role { CONFIG_ROLE_SITE = 0, CONFIG_ROLE_HOST = 1 };

/* A pinned site key (peer-keys): the Ed25519 public key of a site. */
struct config_peer_key {
    char site[VC_NAME_MAX + 1];
    uint8_t pk[32];
};

struct config_member {
    char site[VC_NAME_MAX + 1];
    char addr[VC_ADDR_MAX + 1];
};

struct config {
    char site[VC_NAME_MAX + 1];
    char data_dir[512];
    char peer[VC_ADDR_MAX + 1];      /* raft listen address */
    char api[VC_ADDR_MAX + 1];       /* client API listen address */
    char advertise[VC_ADDR_MAX + 1]; /* API address others use, default api */
    char unix_path[256];             /* local client socket */
    char join[VC_ADDR_MAX + 1]; /* client API of a member, to join via */
    unsigned voters;            /* target number of voters (odd) */
    unsigned demote_after_ms;   /* unreachable voter -> standby after */
    struct config_member bootstrap[CONFIG_MEMBERS_MAX];
    unsigned nbootstrap;
    /* Peer channel: with key set, raft traffic is authenticated and
     * encrypted and only sites pinned in peer_keys are accepted; without
     * it, plain TCP (a warning at start-up). */
    char key_path[512];                        /* this site's private key */
    char cluster_id[CONFIG_CLUSTER_ID_MAX];    /* default "virtcloud" */
    struct config_peer_key peer_keys[CONFIG_PEER_KEYS_MAX];
    unsigned npeer_keys;
    /* Client authentication and joining by token (config_auth.c). */
    int client_auth;       /* enum config_client_auth */
    char join_token[4096]; /* "vc1-join:..." from virtcloud site invite */
    struct vlanset vlans;
    bool have_vlans;
    uint8_t uplink;
    uint16_t svlan;
    bool managed;
    bool managed_set;            /* given explicitly */
    char switch_cfg[512];        /* edge switch driver, "" if none */
    int drift;                   /* enum reconcile_drift */
    unsigned reconcile_interval_ms;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned segment_kib;        /* raft log segment size, KiB */
    unsigned sweep_interval_ms;
    unsigned request_timeout_ms;
    unsigned max_batch;
    int log_level;
    char metrics[VC_ADDR_MAX + 1]; /* /metrics listen address, "off" */
    bool metrics_set;              /* given explicitly */
    char sources[2048]; /* files read, in order, ", "-separated */
    bool check_only; /* --check-config: validate, print, exit */
    /* Roles (config_role.c). A host-role agent runs no raft: it watches
     * its host's desired state at its site's agent and applies it. */
    int role;                        /* enum config_role */
    char host[VC_NAME_MAX + 1];      /* host role: this host's name */
    char site_agents[CONFIG_SITE_AGENTS_MAX][VC_ADDR_MAX + 1];
    unsigned nsite_agents;           /* host role: tried in turn */
    char host_driver[512];           /* host role: default "host" */
    bool host_agents;    /* site: hosts run agents; wait for their reports */
    unsigned apply_deadline_ms; /* roll back creations not applied in time;
                                   0: never */
};

/* Called by config_apply_live() for each key whose effective value
 * differs between two configurations; live says whether it was applied. */
typedef void (*config_change_fn)(void *data, const char *key,
                                 const char *old_value,
                                 const char *new_value, bool live);

/* Fills defaults, then reads --config FILE (if given) and the flags.
 * Returns 0, 1 when the caller should exit 0 (--help/--version printed), or
 * VC_EINVAL with a one-line errmsg. */
int config_load(struct config *c, int argc, char **argv, char *errmsg,
                size_t errlen);

/* Writes the effective configuration as INI to f (for --check-config). */
void config_print(const struct config *c, void *file);

/* Reload (SIGHUP): copies into cur the keys that may change while the
 * agent runs (log-level, drift, reconcile-interval, sweep-interval,
 * request-timeout, max-batch, demote-after) from next, a freshly loaded
 * configuration, and reports every differing key to fn. Returns how many
 * keys differed but cannot change live (they keep their old value), or
 * VC_ENOMEM. */
int config_apply_live(struct config *cur, const struct config *next,
                      config_change_fn fn, void *data);

/* Keys of config_role.c: role, host, site-agent, host-driver,
 * host-agents, apply-deadline. Each returns 0 or VC_EINVAL with errmsg. */
int config_k_role(struct config *c, const char *v, char *e, size_t l);
int config_k_host(struct config *c, const char *v, char *e, size_t l);
int config_k_site_agent(struct config *c, const char *v, char *e, size_t l);
int config_k_host_driver(struct config *c, const char *v, char *e, size_t l);
int config_k_host_agents(struct config *c, const char *v, char *e, size_t l);
int config_k_apply_deadline(struct config *c, const char *v, char *e,
                            size_t l);
/* Role-specific checks after loading: returns 1 if c is a host-role
 * configuration that is complete (the site checks do not apply), 0 for a
 * site role, VC_EINVAL with errmsg if a host role lacks a key. */
int config_role_check(struct config *c, char *errmsg, size_t errlen);
/* Writes the role keys as INI lines (config_print). */
void config_role_print(const struct config *c, void *file);

/* Parses "host:port" / "[v6]:port" into a sockaddr_storage. 0 or
 * VC_EINVAL. */
int config_parse_addr(const char *s, void *sockaddr_storage);

enum config_client_auth {
    CONFIG_CLIENT_AUTH_DEFAULT = 0, /* required with key, else off */
    CONFIG_CLIENT_AUTH_OFF = 1,
    CONFIG_CLIENT_AUTH_REQUIRED = 2,
};

/* Keys of config_auth.c: client-auth, join-token. 0 or VC_EINVAL. */
int config_k_client_auth(struct config *c, const char *v, char *e, size_t l);
int config_k_join_token(struct config *c, const char *v, char *e, size_t l);

#endif
