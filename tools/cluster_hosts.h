/* cluster show's host rows: each host that carries the cluster, with its
 * host agent's status as its site agent reports it (cluster_hosts.c). */
#ifndef VC_TOOLS_CLUSTER_HOSTS_H
#define VC_TOOLS_CLUSTER_HOSTS_H

#include <msgpack.h>

#include "cli.h"

struct render_view;

/* Prints cluster (a CLUSTERS map, borrowed) through v with a "hosts"
 * table added: site, host, connected, ok, version, error. sites is the
 * SITES payload (borrowed), for the hosts of each site and the site
 * agents' addresses. Returns the exit status. */
int cluster_hosts_print(struct cli *c, const msgpack_object *cluster,
                        const msgpack_object *sites,
                        const struct render_view *v);

#endif
