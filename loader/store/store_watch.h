/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Following an etcd store (store_etcd_watch.c): a thread of its own reads
 * the instance prefix as a snapshot at revision R, then watches it from
 * R + 1 over the JSON gateway's streaming POST /v3/watch, and queues what
 * it learns as batches in revision order.  After a disconnect or a watch
 * cancelled for compaction it reads a fresh snapshot and watches on from
 * there.  The thread never touches anything but its queue: the owner of
 * the handle (xdnatd's event loop, loader/daemon/cluster_sync.c) polls
 * xd_watch_fd() and takes the batches with xd_watch_take().
 */
#ifndef XDNAT_STORE_WATCH_H
#define XDNAT_STORE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store.h"

/* One key under the instance prefix. */
struct xd_watch_ev {
	char *key;        /* below the prefix: "clients/0000002a" */
	char *val;        /* NULL: deleted */
};

struct xd_watch_batch {
	bool snapshot;     /* ev is every kept key at rev: replace, not apply */
	char why[64];      /* snapshot: "start", "disconnect: ...", "compacted at N" */
	int64_t rev;       /* the store's revision this batch brings the reader to */
	struct xd_watch_ev *ev;
	size_t n;
};

struct xd_watch;

/* Follow the keys of @st (an etcd store) that start with one of @subs
 * (NULL-terminated, e.g. "clients/", "bindings/").  0 or a negative errno
 * with a message in @err. */
int xd_watch_start(struct xd_store *st, const char *const *subs, struct xd_watch **out, char *err,
		   size_t errlen);
/* Readable (an eventfd) when batches wait. */
int xd_watch_fd(const struct xd_watch *w);
/* Every batch queued so far, oldest first (the caller frees them). */
int xd_watch_take(struct xd_watch *w, struct xd_watch_batch **b, size_t *n);
void xd_watch_batches_free(struct xd_watch_batch *b, size_t n);
/* Snapshots read and watch streams broken so far. */
void xd_watch_stats(struct xd_watch *w, uint64_t *snapshots, uint64_t *breaks);
void xd_watch_stop(struct xd_watch *w);

/* The revision of the last transaction this handle committed (0: none):
 * a reader that has not yet seen it is behind this process's own writes. */
int64_t xd_store_etcd_last_rev(struct xd_store *st);

#endif
