/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cluster sync (docs/CLUSTER.md, "Keeping routers' maps in step"): with an
 * etcd store, this router's maps and its RSIP server's free-range index
 * follow every router's writes.  A watch thread (store_watch.h) queues the
 * store's changes in revision order; xdnatd's event loop, the maps' one
 * writer, applies them here (xd_csync_run when xd_csync_fd is readable).
 */
#ifndef XDNAT_CLUSTER_SYNC_H
#define XDNAT_CLUSTER_SYNC_H

#include <stdint.h>
#include "rsip_server.h"

struct xd_csync;
struct xd_maps;

/* Follow @s's store (etcd only) into @m.  0, or a negative errno (printed). */
int xd_csync_start(struct rsip_server *s, struct xd_maps *m, struct xd_csync **out);
int xd_csync_fd(const struct xd_csync *cs);
/* Take the queued changes and apply what this router has not applied. */
void xd_csync_run(struct xd_csync *cs);
/* ms until a lease in the maps lapses (at most 1000); call xd_csync_run then. */
int xd_csync_timeout(const struct xd_csync *cs);
void xd_csync_stop(struct xd_csync *cs);

#endif
