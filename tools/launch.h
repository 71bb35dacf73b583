/* Starts and stops a local multi-site VirtCloud: N virtcloud-agent
 * processes on 127.0.0.1 with free ports and their own data dirs under one
 * directory. Used by virtcloud-launch and by the benchmarks.
 *
 * Layout of dir: <site>/ (data dir), <site>.log, <site>.pid, env (shell
 * lines exporting VIRTCLOUD_API).
 */
#ifndef VC_TOOLS_LAUNCH_H
#define VC_TOOLS_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LAUNCH_SITES_MAX 16

struct launch_site {
    char name[32];
    char peer[32];
    char api[32];
    pid_t pid; /* 0 when not running */
    char join[32]; /* if set: join through this API instead of bootstrap */
    char key[600]; /* if set: the site's private key file (--key) */
};

struct launch {
    char dir[512];
    char agent[512]; /* path of virtcloud-agent */
    unsigned n;
    struct launch_site sites[LAUNCH_SITES_MAX];
    char extra[2048]; /* extra agent flags, space separated */
};

/* Fills l for n sites named from a list of Czech research sites, with
 * free loopback ports. Returns 0 or a negative errno with errmsg. */
int launch_plan(struct launch *l, const char *dir, const char *agent,
                unsigned n, char *errmsg, size_t errlen);

/* Starts site i (again, after a kill: same ports and data dir). */
int launch_start_site(struct launch *l, unsigned i, char *errmsg,
                      size_t errlen);

/* Starts every site and waits until a leader is elected and every site
 * has registered its record (or timeout_ms passes). */
int launch_start(struct launch *l, unsigned timeout_ms, char *errmsg,
                 size_t errlen);

/* Sends sig to site i and, for SIGKILL/SIGTERM, reaps it. */
int launch_signal(struct launch *l, unsigned i, int sig);

/* SIGTERM to every site, SIGKILL after grace_ms, reaped. */
void launch_stop(struct launch *l, unsigned grace_ms);

/* "127.0.0.1:P1,127.0.0.1:P2,..." of every site's API. */
void launch_api_list(const struct launch *l, char *buf, size_t len);

/* Stops the sites recorded in dir's pid files (for a later command). */
int launch_stop_dir(const char *dir, unsigned grace_ms, char *errmsg,
                    size_t errlen);

#endif
