/* Hooks of the dryrun back-end for tests and demos: its simulated links
 * can be inspected and tampered with, as a person would with ip(8).
 */
#ifndef VC_DRIVERS_DRV_DRYRUN_H
#define VC_DRIVERS_DRV_DRYRUN_H

#include <stdbool.h>

#include "drv.h"
#include "drv_plan.h"

/* The simulated namespace's links (borrowed, indexed, valid until the
 * next call on d). NULL if d is not a dryrun instance. */
const struct drv_links *drv_dryrun_links(struct drv *d);

/* Adds an unmarked link of kind DRV_KIND_* (up, enslaved to master if
 * not NULL, with alias if not NULL). 0, -EEXIST, -ENODEV or -EINVAL. */
int drv_dryrun_link_add(struct drv *d, const char *name, int kind,
                        const char *master, const char *alias);

/* Deletes a link as "ip link del" would (a bridge releases its ports, a
 * lower device takes its VLAN devices along). 0 or -ENODEV. */
int drv_dryrun_link_del(struct drv *d, const char *name);

/* Sets a link's admin state. 0 or -ENODEV. */
int drv_dryrun_link_up(struct drv *d, const char *name, bool up);

#endif
