/* ssh back-end: a vendor switch configured over SSH (libssh) with command
 * templates per vendor (drv_tmpl.h) and read-back parsers (drv_swcli.h).
 *
 * Config string (see docs/drivers.md):
 *   ssh:HOST:vendor=VENDOR:uplink=PORT[:HOSTNAME=PORT]...[:user=USER]
 *       [:port=N][:identity=FILE][:known_hosts=FILE][:ssh_config=FILE]
 *       [:templates=FILE][:ports=FILE][:mark=PREFIX][:timeout=SECONDS]
 * HOST is a name or address, or a Host alias of the ssh config; the
 * operator's ssh config (~/.ssh/config and /etc/ssh/ssh_config, or
 * ssh_config=FILE instead) is applied first and explicit keys override it.
 * ports=FILE reads more "HOSTNAME = PORT" (and "uplink = PORT") lines,
 * one per line, '#' comments: a big site's cabling in its own file.
 *
 * One apply is one SSH session and one interactive shell: log in, read
 * the switch back (SHOW_VLANS, SHOW_PORT per managed port), plan, and if
 * anything differs enter configuration mode, send the whole batch, leave
 * it and save once (SAVE_CONFIGURATION), then read back again to confirm.
 * Host keys are checked strictly against known_hosts: an unknown or
 * changed key fails the apply with the key's fingerprint in errmsg and
 * nothing sent. Authentication is by public key only (ssh-agent, then
 * identity files: identity=, the ssh config's IdentityFile, ~/.ssh/id_*).
 *
 * Threads: an apply blocks on the network (seconds), so the agent runs it
 * on a libuv worker (agent/reconcile.c: uv_queue_work, one pass per
 * switch at a time, results back on the loop in the after-work callback).
 * The instance also holds a mutex over the whole session, so even callers
 * that overlap an apply and a read never open two connections to one
 * switch.
 */
#ifndef VC_DRIVERS_DRV_SSH_H
#define VC_DRIVERS_DRV_SSH_H

#include <stddef.h>

#include "drv_swcli.h"
#include "drv_tmpl.h"

#define DRV_SSH_PATH_MAX 256
#define DRV_SSH_MARK_DEFAULT "vc-"
#define DRV_SSH_TIMEOUT_DEFAULT 30 /* seconds per command and to connect */

struct drv_ssh_cfg {
    char host[256];
    char user[64]; /* "" from the ssh config or the login name */
    unsigned port; /* 0 from the ssh config or 22 */
    char identity[DRV_SSH_PATH_MAX];    /* "" none */
    char known_hosts[DRV_SSH_PATH_MAX]; /* "" libssh's default */
    char ssh_config[DRV_SSH_PATH_MAX];  /* "" the default files */
    char templates[DRV_SSH_PATH_MAX];   /* "" built-ins only */
    char vendor[DRV_TMPL_VENDOR_MAX + 1];
    char mark[DRV_SWCLI_MARK_MAX + 1];
    unsigned timeout_s;
    /* Port 0 is the uplink, ports 1.. serve hosts 1.. (hosts[0] NULL);
     * all owned. */
    char **ports, **hosts;
    size_t nports;
};

/* Parses args (the config after "ssh:") into c (zeroed first; free with
 * drv_ssh_cfg_close even on error). 0 or -EINVAL/-ENOMEM with errmsg. */
int drv_ssh_cfg_parse(struct drv_ssh_cfg *c, const char *args, char *errmsg,
                      size_t errlen);
void drv_ssh_cfg_close(struct drv_ssh_cfg *c);

/* The cabling view of c for drv_swcli (borrows c's arrays). */
void drv_ssh_swcfg(const struct drv_ssh_cfg *c, struct drv_swcfg *out);

/* Renders one planned operation (lines separated by '\n'). Returns the
 * length, or -EINVAL/-ENOSPC with errmsg (drv_tmpl_render). */
int drv_ssh_render_op(const struct drv_tmpl_vendor *v,
                      const struct drv_swcfg *c, const struct drv_swop *op,
                      char *out, size_t outlen, char *errmsg, size_t errlen);

/* Renders the whole configuration batch of plan p as one session types
 * it: CONFIG_MODE, the operations, then EXIT_CONFIG_MODE and
 * SAVE_CONFIGURATION in the vendor's order; "" for an empty plan.
 * Returns the length or -EINVAL/-ENOSPC with errmsg. */
int drv_ssh_script(const struct drv_tmpl_vendor *v, const struct drv_swcfg *c,
                   const struct drv_swplan *p, char *out, size_t outlen,
                   char *errmsg, size_t errlen);

#endif
