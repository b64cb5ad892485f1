// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's control socket (ctl_sock.h, docs/CONTROL-PLANE.md "Control
 * socket"): connections, requests and batches in the daemon's event loop.
 * The commands are in ctl_exec.c, the client side in ctl_client.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "ctl_sock.h"

/* -------------------------------------------------------------- daemon */

struct ctl_conn {
	int fd;                 /* -1: free slot */
	char *in;               /* CTL_BATCH_BUF bytes */
	size_t in_len;
	char *out;              /* the response(s) being written */
	size_t out_len, out_off, out_cap;
	uint64_t start_ms;
	bool batch, text;       /* a batch (--batch [--text]) */
	bool eof;               /* the client shut its side down */
	bool failed;            /* a batch request failed: the rest is not run */
};

/* A batch may pause this long between lines (a pipe fed by a program). */
#define CTL_BATCH_IDLE_MS 60000
/* A batch stops reading while this much output waits for the client. */
#define CTL_BATCH_OUT_MAX (1u << 20)

struct ctl_sock {
	struct ctl_ops ops;
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_conn conns[CTL_MAX_CONNS];
	struct ctl_counters cnt;
	struct xd_maps own_maps;   /* when ops->maps was NULL */
	bool own_maps_open;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ctl_sock_path(const char *instance, char *buf, size_t len)
{
	int n = snprintf(buf, len, CTL_RUN_DIR "/%s.ctl", instance);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int open_socket(const struct ctl_ops *ops, struct ctl_sock **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_sock *c = calloc(1, sizeof(*c));
	struct stat st;
	mode_t old;
	int rc;

	if (!c)
		return -ENOMEM;
	c->ops = *ops;
	for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
		c->conns[i].fd = -1;
	if (ctl_sock_path(ops->instance, c->path, sizeof(c->path))) {
		xd_err("control socket: path for instance '%s' too long", ops->instance);
		free(c);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, c->path, sizeof(c->path));
	if (mkdir(CTL_RUN_DIR, 0755) && errno != EEXIST) {
		rc = -errno;
		xd_err("cannot create %s: %s", CTL_RUN_DIR, strerror(errno));
		free(c);
		return rc;
	}
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0) {
		rc = -errno;
		xd_err("control socket: %s", strerror(errno));
		free(c);
		return rc;
	}
	/* We hold the instance lock: a socket left here is a dead run's. */
	if (unlink(c->path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", c->path, strerror(errno));
	old = umask(0177);  /* created 0600: no window with a wider mode */
	rc = bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc || chown(c->path, 0, 0) || chmod(c->path, 0600) || listen(c->lfd, 16) ||
	    stat(c->path, &st)) {
		rc = -errno;
		xd_err("control socket %s: %s", c->path, strerror(errno));
		close(c->lfd);
		unlink(c->path);
		free(c);
		return rc;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	*out = c;
	return 0;
}

int ctl_open(const struct ctl_ops *ops, struct ctl_sock **out)
{
	struct ctl_sock *c;
	int rc = open_socket(ops, &c);

	if (rc)
		return rc;
	/* Without RSIP the daemon has no maps open: the writer's own. */
	if (!c->ops.maps && c->ops.pin_base) {
		if (xd_maps_open(c->ops.pin_base, c->ops.instance, &c->own_maps)) {
			ctl_close(c);
			return -EIO;
		}
		c->own_maps_open = true;
		c->ops.maps = &c->own_maps;
	}
	*out = c;
	return 0;
}

static void conn_close(struct ctl_sock *c, struct ctl_conn *k)
{
	char scratch[CTL_MAX_REQ];

	(void)c;
	if (k->fd < 0)
		return;
	/* Read what the peer sent beyond its request, so that closing does not
	 * turn into a reset before it has read the response. */
	for (int i = 0; i < 8 && recv(k->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
		;
	close(k->fd);
	free(k->out);
	free(k->in);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

void ctl_close(struct ctl_sock *c)
{
	struct stat st;

	if (!c)
		return;
	for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
		conn_close(c, &c->conns[i]);
	close(c->lfd);
	/* Only our own socket: never one a newer daemon made. */
	if (!stat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	if (c->own_maps_open)
		xd_maps_close(&c->own_maps);
	free(c);
}

const struct ctl_counters *ctl_counters(const struct ctl_sock *c)
{
	return &c->cnt;
}

/* Write what the socket takes; close when the response is out (a batch:
 * when the client has shut its side down and every response is out). */
static void conn_write(struct ctl_sock *c, struct ctl_conn *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c, k);
			return;
		}
		k->out_off += (size_t)n;
		k->start_ms = mono_ms();
	}
	k->out_off = k->out_len = 0;
	if (!k->batch || k->eof)
		conn_close(c, k);
}

/* Queue @resp (consumed) for the client; false when out of memory. */
static bool conn_queue(struct ctl_conn *k, char *resp, size_t len)
{
	if (!resp)
		return false;
	if (k->out_len + len > k->out_cap) {
		size_t cap = k->out_cap ? k->out_cap : 4096;
		char *nb;

		while (cap < k->out_len + len)
			cap *= 2;
		nb = realloc(k->out, cap);
		if (!nb) {
			free(resp);
			return false;
		}
		k->out = nb;
		k->out_cap = cap;
	}
	memcpy(k->out + k->out_len, resp, len);
	k->out_len += len;
	free(resp);
	return true;
}

static void conn_respond(struct ctl_sock *c, struct ctl_conn *k, char *resp, size_t len)
{
	if (!conn_queue(k, resp, len)) {
		conn_close(c, k);
		return;
	}
	conn_write(c, k);
}

static void conn_error(struct ctl_sock *c, struct ctl_conn *k, int err, const char *msg)
{
	size_t len = 0;
	char *resp = ctl_error_response(err, msg, &len);

	c->cnt.errors++;
	conn_respond(c, k, resp, len);
}

/* One line of a batch: run it (or not, after a failure) and queue its
 * response.  false when out of memory. */
static bool batch_line(struct ctl_sock *c, struct ctl_conn *k, const char *line, size_t len)
{
	static const char okp[] = "{\"ok\":true";
	struct ctl_req r;
	const char *why = NULL;
	size_t rlen = 0;
	char *resp;
	int rc;

	if (k->failed) {
		c->cnt.requests++;
		c->cnt.errors++;
		resp = ctl_error_response(-ECANCELED, "not run: an earlier request of the batch failed",
					  &rlen);
		return conn_queue(k, resp, rlen);
	}
	rc = ctl_parse_request(line, len, &r, &why);
	if (!rc && r.batch) {
		rc = -EINVAL;
		why = "already in a batch";
	}
	if (rc) {
		c->cnt.requests++;
		c->cnt.errors++;
		resp = ctl_error_response(rc, why, &rlen);
	} else {
		r.text = k->text;
		resp = ctl_execute(&c->ops, &r, &c->cnt, &rlen);
	}
	k->failed = !resp || strncmp(resp, okp, sizeof(okp) - 1);
	return conn_queue(k, resp, rlen);
}

/* Run the complete lines of a batch's input; keep a partial one. */
static void batch_run(struct ctl_sock *c, struct ctl_conn *k)
{
	size_t off = 0;
	char *nl;

	while ((nl = memchr(k->in + off, '\n', k->in_len - off))) {
		size_t ll = (size_t)(nl - (k->in + off)) + 1;

		if (!batch_line(c, k, k->in + off, ll)) {
			conn_close(c, k);
			return;
		}
		off += ll;
	}
	if (k->eof && off < k->in_len) {  /* the last line needs no newline */
		if (!batch_line(c, k, k->in + off, k->in_len - off)) {
			conn_close(c, k);
			return;
		}
		off = k->in_len;
	}
	memmove(k->in, k->in + off, k->in_len - off);
	k->in_len -= off;
	if (k->in_len >= CTL_MAX_REQ && !k->failed) {
		/* A line this long is no request: answer it once, stop the batch. */
		k->failed = true;
		c->cnt.requests++;
		c->cnt.errors++;
		k->in_len = 0;
		{
			size_t rlen = 0;
			char *resp = ctl_error_response(-E2BIG, "request too long", &rlen);

			if (!conn_queue(k, resp, rlen)) {
				conn_close(c, k);
				return;
			}
		}
	} else if (k->in_len >= CTL_MAX_REQ) {
		k->in_len = 0;
	}
	conn_write(c, k);
}

/* The first line of a connection: one request, or a batch header. */
static void conn_request(struct ctl_sock *c, struct ctl_conn *k, size_t len)
{
	struct ctl_req r;
	const char *why = NULL;
	size_t rlen = 0;
	char *resp;
	int rc = ctl_parse_request(k->in, len, &r, &why);

	if (rc) {
		c->cnt.requests++;
		conn_error(c, k, rc, why);
		return;
	}
	if (r.batch) {
		static const char ack[] = "{\"ok\":true,\"batch\":true}\n";
		char *a = strdup(ack);

		k->batch = true;
		k->text = r.text;
		memmove(k->in, k->in + len, k->in_len - len);
		k->in_len -= len;
		if (!conn_queue(k, a, sizeof(ack) - 1)) {
			conn_close(c, k);
			return;
		}
		batch_run(c, k);
		return;
	}
	resp = ctl_execute(&c->ops, &r, &c->cnt, &rlen);
	conn_respond(c, k, resp, rlen);
}

static void conn_read(struct ctl_sock *c, struct ctl_conn *k)
{
	for (;;) {
		/* Before the first line: no more than one request's worth. */
		size_t room = (k->batch ? CTL_BATCH_BUF : CTL_MAX_REQ) - k->in_len;
		ssize_t n = recv(k->fd, k->in + k->in_len, room, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_close(c, k);
			return;
		}
		k->start_ms = mono_ms();
		if (n == 0) {
			/* End of input ends the line too. */
			k->eof = true;
			if (k->batch)
				batch_run(c, k);
			else if (k->in_len)
				conn_request(c, k, k->in_len);
			else
				conn_close(c, k);
			return;
		}
		if (k->batch) {
			k->in_len += (size_t)n;
			batch_run(c, k);
			/* Fairness: the RSIP server's events come between batches of
			 * lines; poll() reports the rest of the input again. */
			return;
		}
		nl = memchr(k->in + k->in_len, '\n', (size_t)n);
		k->in_len += (size_t)n;
		if (nl) {
			conn_request(c, k, (size_t)(nl - k->in) + 1);
			return;
		}
		if (k->in_len == CTL_MAX_REQ) {
			c->cnt.requests++;
			conn_error(c, k, -E2BIG, "request too long");
			return;
		}
	}
}

/* Refuse a connection at once: a short error, best effort, then close. */
static void refuse(struct ctl_sock *c, int fd, int err, const char *msg)
{
	size_t len = 0;
	char *resp = ctl_error_response(err, msg, &len);

	c->cnt.refused++;
	if (resp && send(fd, resp, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		xd_warn("control socket: cannot send a refusal: %s", strerror(errno));
	free(resp);
	{
		char scratch[CTL_MAX_REQ];

		(void)!recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
	}
	close(fd);
}

static void accept_all(struct ctl_sock *c)
{
	for (int tries = 0; tries < 16; tries++) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct ctl_conn *k = NULL;
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				xd_warn("control socket: accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl))
			cr = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		if (cr.uid != 0) {
			xd_warn("control socket: refused a peer with uid %d (pid %d): root only",
				(int)cr.uid, (int)cr.pid);
			refuse(c, fd, -EPERM, "permission denied: the control socket is for root only");
			continue;
		}
		for (unsigned i = 0; i < CTL_MAX_CONNS && !k; i++)
			if (c->conns[i].fd < 0)
				k = &c->conns[i];
		if (!k) {
			refuse(c, fd, -EBUSY, "busy: too many control connections, try again");
			continue;
		}
		memset(k, 0, sizeof(*k));
		k->in = malloc(CTL_BATCH_BUF);
		if (!k->in) {
			k->fd = -1;
			refuse(c, fd, -ENOMEM, "out of memory");
			continue;
		}
		k->fd = fd;
		k->start_ms = mono_ms();
	}
}

/* Input while the output is small (a batch), output while there is some. */
static short conn_events(const struct ctl_conn *k)
{
	short ev = 0;

	if (k->out_len > k->out_off)
		ev |= POLLOUT;
	if (!k->eof && (k->batch ? k->out_len - k->out_off < CTL_BATCH_OUT_MAX : !ev))
		ev |= POLLIN;
	return ev;
}

unsigned ctl_pollfds(struct ctl_sock *c, struct pollfd *pfd, unsigned max)
{
	uint64_t now = mono_ms();
	unsigned n = 0;

	if (!c || !max)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
	for (unsigned i = 0; i < CTL_MAX_CONNS && n < max; i++) {
		struct ctl_conn *k = &c->conns[i];

		if (k->fd < 0)
			continue;
		if (now - k->start_ms > (k->batch ? CTL_BATCH_IDLE_MS : CTL_TIMEOUT_MS)) {
			c->cnt.errors++;
			conn_close(c, k);
			continue;
		}
		pfd[n++] = (struct pollfd){ .fd = k->fd, .events = conn_events(k) };
	}
	return n;
}

void ctl_events(struct ctl_sock *c, const struct pollfd *pfd, unsigned n)
{
	if (!c)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == c->lfd) {
			accept_all(c);
			continue;
		}
		for (unsigned k = 0; k < CTL_MAX_CONNS; k++) {
			struct ctl_conn *cn = &c->conns[k];

			if (cn->fd != pfd[i].fd)
				continue;
			/* One request: read it, then only write its answer (a
			 * hang-up then must not run it again).  A batch: both. */
			if (cn->out_len > cn->out_off)
				conn_write(c, cn);
			if (cn->fd == pfd[i].fd && cn->batch && (pfd[i].revents & ~POLLOUT))
				conn_read(c, cn);
			else if (cn->fd == pfd[i].fd && !cn->batch && cn->out_len == cn->out_off)
				conn_read(c, cn);
			break;
		}
	}
}
