// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP server, the TCP transport: see rsip_server.h and rsip_server_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include "rsip_server_int.h"

void rs_conn_close(struct rsip_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* ---------------------------------------------------------------- transport */

int rsip_server_listen(struct rsip_server *s, uint32_t addr_be, uint16_t port, const char *ifname,
		       unsigned max_conns, unsigned idle_timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr_be };
	char a[INET_ADDRSTRLEN];
	int one = 1, fd, rc;

	s->conns = calloc(max_conns, sizeof(*s->conns));
	if (!s->conns)
		return -ENOMEM;
	s->max_conns = max_conns;
	s->idle_timeout_s = idle_timeout_s;
	for (unsigned i = 0; i < max_conns; i++)
		s->conns[i].fd = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		rc = -errno;
		xd_err("RSIP: cannot listen on %s:%u%s%s: %s", xd_ipstr(addr_be, a), port,
		       ifname ? " dev " : "", ifname ? ifname : "", strerror(-rc));
		close(fd);
		return rc;
	}
	s->listen_fd = fd;
	return 0;
}

unsigned rsip_server_pollfds(struct rsip_server *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (s->listen_fd < 0 || max == 0)
		return 0;
	pfd[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < s->max_conns && n < max; i++)
		if (s->conns[i].fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
	return n;
}

static void conn_accept(struct rsip_server *s)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < s->max_conns && s->conns[i].fd >= 0; i++)
			;
		if (i == s->max_conns || peer.sin_family != AF_INET) {
			xd_warn("RSIP: too many connections (%u): refusing one", s->max_conns);
			close(fd);
			continue;
		}
		memset(&s->conns[i], 0, sizeof(s->conns[i]));
		s->conns[i].fd = fd;
		s->conns[i].sess.peer_lan = peer.sin_addr.s_addr;
		s->conns[i].last_ms = s->now_ms();
	}
}

static bool send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			/* Responses are small; a peer that does not read within
			 * a second is dropped. */
			if (poll(&p, 1, 1000) <= 0)
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/* Read what the peer sent (handled later, in batches); false: closed. */
static bool conn_fill(struct rsip_server *s, struct rsip_conn *c)
{
	ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		rs_conn_close(c);
		return false;
	}
	if (r > 0) {
		c->in_len += (size_t)r;
		c->last_ms = s->now_ms();
	}
	return true;
}

/* Has @c a complete message (or an unframeable one) to handle? */
static bool conn_ready(const struct rsip_conn *c, size_t *need, uint16_t *err)
{
	if (c->fd < 0 || c->in_len < RSIP_HDR_LEN)
		return false;
	*need = rsip_frame_len(c->in, c->in_len, err);
	return !*need || c->in_len >= *need;
}

/* Handle the first complete message of @c, if any, into its reply buffer.
 * Returns whether there was one. */
static bool conn_handle_one(struct rsip_server *s, struct rsip_conn *c)
{
	uint16_t err;
	size_t need;
	bool cl = false;

	if (!conn_ready(c, &need, &err))
		return false;
	c->pending = true;
	if (!need) {
		/* Unframeable: answer and hang up (we cannot resync). */
		struct rsip_builder *b = malloc(sizeof(*b));

		c->out_len = b ? rsip_build_error(b, err, false, 0, 0, 0) : 0;
		if (c->out_len)
			memcpy(c->out, b->buf, c->out_len);
		free(b);
		c->close_after = true;
		c->in_len = 0;
		return true;
	}
	s->cur_conn = c;
	c->out_len = rsip_server_handle(s, &c->sess, c->in, need, c->out, &cl);
	s->cur_conn = NULL;
	c->close_after = cl;
	memmove(c->in, c->in + need, c->in_len - need);
	c->in_len -= need;
	return true;
}

/* Send the held replies of the batch (or drop the connections whose
 * binding could not be installed or whose batch did not commit). */
static void batch_flush(struct rsip_server *s)
{
	for (unsigned k = 0; k < s->max_conns; k++) {
		struct rsip_conn *c = &s->conns[k];

		if (!c->pending)
			continue;
		c->pending = false;
		if (c->failed || (c->out_len && !send_all(c->fd, c->out, c->out_len)) || c->close_after) {
			rs_conn_close(c);
			continue;
		}
		c->out_len = 0;
	}
}

/*
 * Group commit: one message of every connection that has one, handled in
 * one transaction; then the commit (one fsync for all), the map installs
 * of the bindings it holds, and only then the replies.  A reply never
 * confirms a binding that is not durable and in the maps.  Returns the
 * number of messages handled.
 */
static unsigned batch_run(struct rsip_server *s)
{
	unsigned n = 0, k;
	uint16_t err;
	size_t need;
	bool outer;

	for (k = 0; k < s->max_conns && !conn_ready(&s->conns[k], &need, &err); k++)
		;
	if (k == s->max_conns)
		return 0;       /* no transaction (and no write lock) for nothing */
	outer = !s->no_group_commit && OPS(s)->begin(s->st) == 0;

	s->batching = outer;
	s->n_defer = 0;
	for (k = 0; k < s->max_conns; k++)
		n += conn_handle_one(s, &s->conns[k]);
	s->batching = false;
	if (outer && OPS(s)->commit(s->st)) {
		xd_err("RSIP: cannot commit %u requests: %s; closing their connections", n,
		       xd_store_error(s->st));
		OPS(s)->rollback(s->st);
		s->idx.valid = false;   /* it holds what was rolled back */
		for (unsigned k = 0; k < s->max_conns; k++)
			s->conns[k].failed = s->conns[k].pending;
		s->n_defer = 0;
	}
	for (size_t i = 0; i < s->n_defer; i++)
		if (rs_install_binding(s, &s->defer[i]) && s->defer[i].conn)
			s->defer[i].conn->failed = true;
	s->n_defer = 0;
	if (n) {
		s->batches++;
		s->batched += n;
	}
	batch_flush(s);
	return n;
}

void rsip_server_events(struct rsip_server *s, const struct pollfd *pfd, unsigned n)
{
	uint64_t now = s->now_ms();

	for (unsigned i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == s->listen_fd) {
			conn_accept(s);
			continue;
		}
		for (unsigned k = 0; k < s->max_conns; k++) {
			if (s->conns[k].fd == pfd[i].fd) {
				if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
					conn_fill(s, &s->conns[k]);
				break;
			}
		}
	}
	/* Batches until no connection has a complete message left. */
	while (batch_run(s))
		;
	/* Idle connections hold a slot: drop them. */
	for (unsigned k = 0; k < s->max_conns; k++)
		/* last_ms may be later than now (accepted or read above): not idle. */
		if (s->conns[k].fd >= 0 && s->idle_timeout_s && now > s->conns[k].last_ms &&
		    now - s->conns[k].last_ms > (uint64_t)s->idle_timeout_s * 1000)
			rs_conn_close(&s->conns[k]);
}
