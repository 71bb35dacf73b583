/* virtcloud-launch: a local multi-site VirtCloud on 127.0.0.1.
 *
 *   virtcloud-launch [--sites N] [--dir DIR] [--agent PATH] [-- AGENT-FLAGS]
 *   virtcloud-launch --stop DIR
 *
 * Starts N agents (default 3) in the background, each with free loopback
 * ports and its own data dir under DIR, waits until they elected a leader
 * and registered their sites, and prints how to talk to them and how to
 * stop them. They keep running after this command exits.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

static void default_agent(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        /* Build tree: tools/ next to agent/; installed: same directory. */
        snprintf(buf, len, "%s/../agent/virtcloud-agent", dirname(self));
        if (access(buf, X_OK) == 0)
            return;
        snprintf(buf, len, "%s/virtcloud-agent", self);
        if (access(buf, X_OK) == 0)
            return;
    }
    snprintf(buf, len, "/usr/sbin/virtcloud-agent");
}

int main(int argc, char **argv)
{
    static struct launch l;
    char agent[PATH_MAX + 64] = "", err[512], apis[1024];
    const char *dir = "/tmp/virtcloud-local";
    unsigned n = 3;
    int i;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sites") && i + 1 < argc)
            n = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--agent") && i + 1 < argc)
            snprintf(agent, sizeof agent, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--stop") && i + 1 < argc) {
            int rv = launch_stop_dir(argv[i + 1], 10000, err, sizeof err);
            if (rv < 0) {
                fprintf(stderr, "virtcloud-launch: %s\n", err);
                return 1;
            }
            printf("stopped %d agent(s) of %s\n", rv, argv[i + 1]);
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            fprintf(stderr, "usage: virtcloud-launch [--sites N] [--dir DIR] "
                            "[--agent PATH] [-- AGENT-FLAGS...]\n"
                            "       virtcloud-launch --stop DIR\n");
            return 2;
        }
    }
    if (!agent[0])
        default_agent(agent, sizeof agent);
    if (launch_plan(&l, dir, agent, n, err, sizeof err) != 0) {
        fprintf(stderr, "virtcloud-launch: %s\n", err);
        return 2;
    }
    for (size_t off = 0; i < argc; i++)
        off += (size_t)snprintf(l.extra + off, sizeof l.extra - off, "%s ",
                                argv[i]);
    if (launch_start(&l, 20000, err, sizeof err) != 0) {
        fprintf(stderr, "virtcloud-launch: %s\n", err);
        launch_stop(&l, 5000);
        return 1;
    }
    launch_api_list(&l, apis, sizeof apis);
    printf("VirtCloud is running: %u sites on 127.0.0.1, data and logs in %s\n",
           l.n, dir);
    for (unsigned k = 0; k < l.n; k++)
        printf("  %-10s api %-16s peer %-16s pid %d\n", l.sites[k].name,
               l.sites[k].api, l.sites[k].peer, (int)l.sites[k].pid);
    printf("talk to it:  export VIRTCLOUD_API=%s   (or: . %s/env)\n", apis,
           dir);
    printf("stop it:     virtcloud-launch --stop %s\n", dir);
    return 0;
}
