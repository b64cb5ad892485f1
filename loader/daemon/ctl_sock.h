/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnatd's control socket (docs/CONTROL-PLANE.md, "Control socket"):
 * /run/xdnat/INSTANCE.ctl, a UNIX stream socket for root only.  A client
 * connects, sends one request line, reads one JSON object and the daemon
 * closes.  Everything runs in xdnatd's single thread, between the RSIP
 * server's own events, so an eviction is serialised with allocations.
 *
 * The client side (xdnatctl) is here too: ctl_client_request() and the
 * small JSON reader for the daemon's responses.
 */
#ifndef XDNAT_CTL_SOCK_H
#define XDNAT_CTL_SOCK_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rsip_server.h"
#include "mip_server.h"
#include "xdnat.h"

#define CTL_RUN_DIR     "/run/xdnat"
#define CTL_MAX_REQ     512             /* request line, '\n' included */
#define CTL_MAX_ARGS    64              /* words in a request */
#define CTL_MAX_RESP    (16u << 20)     /* a larger response is an error */
#define CTL_MAX_CONNS   32              /* at once; more get EBUSY */
#define CTL_TIMEOUT_MS  5000            /* per connection, from accept (a
                                         * batch: since its last activity) */
#define CTL_BATCH_BUF   (64u << 10)     /* a batch connection's input buffer */

/*
 * One parsed request: [--text] [--batch] WORD...
 *
 * "--batch" alone (or "--text --batch") opens a batch, acknowledged with
 * {"ok":true,"batch":true}: the connection then carries any number of
 * request lines, each answered by one response line in order, until the
 * client shuts its side down.  After the first failed
 * request the following ones are not run: each is answered with errno
 * ECANCELED, so a client that pipelines lines gets ip -batch semantics.
 */
struct ctl_req {
	bool text;                   /* --text: {"ok":true,"text":"..."} */
	bool batch;                  /* --batch: the batch header */
	int argc;
	char *argv[CTL_MAX_ARGS];    /* into buf */
	char buf[CTL_MAX_REQ];
};

/*
 * Parse the request @line of @len bytes (a trailing "\n" or "\r\n" is
 * allowed, nothing after it).  Words are separated by spaces or tabs and
 * consist of printable ASCII.  0, or -E2BIG (too long, too many words) /
 * -EINVAL (empty, bad byte, unknown option) with a reason in *why.
 */
int ctl_parse_request(const char *line, size_t len, struct ctl_req *r, const char **why);

/* What the commands work on: the daemon's RSIP server and pinned maps.
 * Changes (host add, enroll, ...) go to the one writer (writer.h). */
struct ctl_ops {
	struct rsip_server *rsip;    /* NULL: xdnatd runs without --rsip */
	struct xd_maps *maps;        /* NULL: ctl_open opens them from pin_base */
	const char *instance;
	const char *pin_base;        /* for ctl_open when maps is NULL */
	const char *state_dir;       /* the store when rsip is NULL */
	struct mip_server *mip;      /* the Mobile IPv4 home agent; NULL: off */
	void *arg;
	/* After a change that revoked certificates (evict, cert revoke):
	 * xdnatd publishes the new CRL and sends the notices at once. */
	void (*changed)(void *arg);
};

struct ctl_counters {
	uint64_t requests, errors, refused;  /* refused: non-root peers, busy */
};

/* Run request @r and return the response (malloc'd JSON object ending in
 * "\n", *len bytes); NULL only when out of memory. */
char *ctl_execute(const struct ctl_ops *ops, const struct ctl_req *r, struct ctl_counters *cnt,
		  size_t *len);
/* The error response {"ok":false,"error":MSG,"errno":E} (malloc'd). */
char *ctl_error_response(int err, const char *msg, size_t *len);

/* The socket's path: CTL_RUN_DIR/INSTANCE.ctl.  -ENAMETOOLONG. */
int ctl_sock_path(const char *instance, char *buf, size_t len);

/* Daemon side.  ctl_open creates the socket (mode 0600, owner root),
 * replacing a stale one (the caller holds the instance lock). */
struct ctl_sock;
int ctl_open(const struct ctl_ops *ops, struct ctl_sock **out);
/* Close every connection and the socket, and remove its path. */
void ctl_close(struct ctl_sock *c);
/* Fill @pfd (at most @max) with the listening socket and the connections;
 * also closes connections past CTL_TIMEOUT_MS.  Returns the count. */
unsigned ctl_pollfds(struct ctl_sock *c, struct pollfd *pfd, unsigned max);
/* Process the events of the pollfds filled by ctl_pollfds. */
void ctl_events(struct ctl_sock *c, const struct pollfd *pfd, unsigned n);
const struct ctl_counters *ctl_counters(const struct ctl_sock *c);

/* Client side of a batch (see struct ctl_req): ctl_batch_open connects,
 * sends the header and reads its acknowledgement (-EBUSY: the daemon has
 * no room, try again); ctl_batch_send writes request lines (each ending
 * in "\n"); ctl_batch_recv reads the next response line (malloc'd, no
 * newline).  Errors as ctl_client_request's. */
struct ctl_batch {
	int fd;
	char *buf;
	size_t len, cap;
};
int ctl_batch_open(const char *instance, bool text, int timeout_ms, struct ctl_batch *b);
int ctl_batch_send(struct ctl_batch *b, const char *data, size_t len);
int ctl_batch_recv(struct ctl_batch *b, char **line);
void ctl_batch_close(struct ctl_batch *b);

/*
 * Client side: send @line (no newline) to the daemon of @instance and read
 * its whole response into *resp (malloc'd, NUL-terminated).  0 on success;
 * -ENOENT or -ECONNREFUSED when no daemon listens (the socket is missing or
 * stale), -EACCES when the caller may not connect, another -errno on
 * failure (-ETIMEDOUT after @timeout_ms).
 */
int ctl_client_request(const char *instance, const char *line, int timeout_ms, char **resp);

/* The value of top-level member @key of the JSON object @json, as the span
 * [*val, *val + *vlen) of @json.  0 or -ENOENT / -EINVAL (not an object). */
int ctl_json_member(const char *json, const char *key, const char **val, size_t *vlen);
/* Decode the JSON string literal @s (@len bytes, quotes included) into a
 * malloc'd NUL-terminated *out.  0 or -EINVAL / -ENOMEM. */
int ctl_json_string(const char *s, size_t len, char **out);

#endif
