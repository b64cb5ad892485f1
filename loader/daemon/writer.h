/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one writer of an instance (docs/ARCHITECTURE.md, "Who writes what"):
 * every change an operator makes to a router instance (hosts and blocks in
 * the pinned maps, the IKE default host, enrolments in the state store) is
 * applied here, by one process at a time:
 *   - xdnatd, for the requests of its control socket (ctl_sock.c), in its
 *     single-threaded event loop, between the RSIP server's own changes;
 *   - xdnatctl, only when no xdnatd runs, holding the instance lock that
 *     xdnatd holds while it runs (xd_instance_lock), so the two exclude
 *     each other.
 * Because of that, a check followed by a write (claim() in pins.c) cannot
 * interleave with another writer's.
 *
 * A change is a command in xdnatctl's words ("host add 3 lan 10.0.0.3
 * ports 2000-2999"), so the control socket and the offline path share one
 * parser and one set of messages.
 */
#ifndef XDNAT_WRITER_H
#define XDNAT_WRITER_H

#include <stdbool.h>
#include <stdio.h>
#include "xdnat.h"

struct rsip_server;
struct xd_store;

struct xd_writer {
	struct xd_maps *maps;       /* the instance's pinned maps; NULL: none */
	struct rsip_server *rsip;   /* xdnatd's RSIP server; NULL: none */
	const char *state_dir;      /* the store when there is no RSIP server */
	const char *instance;
	struct xd_store *db;        /* opened on first use (no RSIP server) */
};

/* What a command changes: */
enum {
	XD_CHANGE_NONE = 0,   /* nothing: not a writer command */
	XD_CHANGE_MAPS,       /* host add|del, ports/spi add|del, ike default */
	XD_CHANGE_STORE,      /* enroll, unenroll */
};
int xd_change_kind(int argc, char *const *argv);

/* Check the syntax of change @argv without any state: 0, or -EINVAL with
 * the reason in @err (xdnatctl exits 2 for it). */
int xd_change_check(int argc, char *const *argv, char *err, size_t errlen);

/*
 * Apply change @argv.  Writes its result to @out (a JSON object, or text
 * with @text; most changes have none) and returns 0, or a negative errno
 * with the reason in @err; a refused change changes nothing.
 */
int xd_writer_apply(struct xd_writer *w, int argc, char *const *argv, bool text, FILE *out,
		    char *err, size_t errlen);

/* The state store: the RSIP server's, or w->state_dir's opened now.
 * NULL with a message in @err. */
struct xd_store *xd_writer_db(struct xd_writer *w, char *err, size_t errlen);
void xd_writer_close(struct xd_writer *w);

/*
 * The instance lock (RUN_DIR/INSTANCE.lock, flock): xdnatd holds it while
 * it runs; xdnatctl's offline changes take it too.  Returns the locked fd,
 * -EBUSY when another process holds it (*holder: the pid recorded in the
 * file, 0 if none), or another -errno.
 */
#define XD_RUN_DIR "/run/xdnat"
int xd_instance_lock(const char *instance, long *holder);
/* Is process @pid an xdnatd?  (The lock is free for a moment while xdnatd
 * re-executes itself: its recorded pid is then still an xdnatd.) */
bool xd_is_xdnatd(long pid);

#endif
