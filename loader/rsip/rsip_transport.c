// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * RSIP server, the TCP transport: see rsip_server.h and rsip_server_int.h.
 *
 * Hostile clients (docs/CONTROL-PLANE.md, "Hostile clients"): the slots grow
 * on demand up to a global cap kept below the open-files limit; each source
 * address holds at most per_addr_max of them; a connection must complete its
 * authenticated hello within preauth_s and send a complete message every
 * idle_timeout_s (bytes alone do not count); when the cap is reached the
 * oldest connection without a session makes room, so an enrolled host
 * always gets back in.  Writes never block: replies queue per connection
 * and a peer that lets RSIP_OUTQ_MAX pile up is cut off.  EMFILE/ENFILE on
 * accept pause the listener instead of spinning on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include "rsip_server_int.h"

#define RL_PERIOD_MS     10000
#define PAUSE_MS         200     /* the listener's rest after EMFILE/ENFILE */
#define SEEN_NONCES      8192
#define FD_SPARE         128     /* files kept for everything else xdnatd holds */
/* Operations one message adds to a store transaction, assumed until a
 * larger one is seen (group commit under etcd's --max-txn-ops): a claim
 * with its certificate writes about a dozen keys and guards as many. */
#define RS_MSG_OPS_GUESS 24

void rs_conn_close(struct rsip_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->oq);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

void rs_warn_rl(struct rsip_server *s, int cls, const char *fmt, ...)
{
	struct rsip_ratelog *rl = &s->rl[cls];
	uint64_t now = s->now_ms ? s->now_ms() : rsip_now_ms();
	char line[512];
	va_list ap;

	if (now < rl->next_ms) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (rl->suppressed)
		xd_warn("%s (and %lu more like it in the last %u s)", line, rl->suppressed,
			RL_PERIOD_MS / 1000);
	else
		xd_warn("%s", line);
	rl->suppressed = 0;
	rl->next_ms = now + RL_PERIOD_MS;
}

bool rs_nonce_seen(struct rsip_server *s, const uint8_t cn[RSIP_NONCE_LEN])
{
	for (unsigned i = 0; i < s->n_seen; i++)
		if (!CRYPTO_memcmp(s->seen_cn[i], cn, RSIP_NONCE_LEN))
			return true;
	if (!s->seen_cn) {
		s->seen_cn = calloc(SEEN_NONCES, RSIP_NONCE_LEN);
		if (!s->seen_cn)
			return false;
	}
	memcpy(s->seen_cn[s->seen_next], cn, RSIP_NONCE_LEN);
	s->seen_next = (s->seen_next + 1) % SEEN_NONCES;
	if (s->n_seen < SEEN_NONCES)
		s->n_seen++;
	return false;
}

/* ---------------------------------------------------------------- transport */

/* The global cap, below the open-files limit. */
static unsigned fd_cap(unsigned want)
{
	struct rlimit rl;
	unsigned cap;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)want + 2 * FD_SPARE)
		return want;
	cap = rl.rlim_cur > 4 * FD_SPARE ? (unsigned)(rl.rlim_cur - 2 * FD_SPARE) : (unsigned)rl.rlim_cur / 4;
	if (!cap)
		cap = 1;
	xd_warn("RSIP: at most %u connections (not %u) under the open-files limit %llu", cap, want,
		(unsigned long long)rl.rlim_cur);
	return cap;
}

int rsip_server_listen(struct rsip_server *s, uint32_t addr_be, uint16_t port, const char *ifname,
		       unsigned max_conns, unsigned idle_timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = addr_be };
	char a[INET_ADDRSTRLEN];
	int one = 1, fd, rc;

	s->conns = NULL;
	s->n_slots = 0;
	s->max_conns = fd_cap(max_conns ? max_conns : 1);
	s->idle_timeout_s = idle_timeout_s;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1)) ||
	    xd_bind_maybe_virtual(fd, &sa, "RSIP") || listen(fd, 128)) {
		rc = -errno;
		xd_err("RSIP: cannot listen on %s:%u%s%s: %s", xd_ipstr(addr_be, a), port,
		       ifname ? " dev " : "", ifname ? ifname : "", strerror(-rc));
		close(fd);
		return rc;
	}
	s->listen_fd = fd;
	return 0;
}

static bool listen_paused(const struct rsip_server *s)
{
	return s->listen_paused_until && s->now_ms() < s->listen_paused_until;
}

unsigned rsip_server_npollfds(const struct rsip_server *s)
{
	return 1 + s->n_slots;
}

unsigned rsip_server_pollfds(struct rsip_server *s, struct pollfd *pfd, unsigned max)
{
	unsigned n = 0;

	if (s->listen_fd < 0 || max == 0)
		return 0;
	/* A paused listener is left out (fd -1: poll ignores it) so that the
	 * positions stay those of rsip_server_events. */
	pfd[n++] = (struct pollfd){ .fd = listen_paused(s) ? -1 : s->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < s->n_slots && n < max; i++) {
		const struct rsip_conn *c = &s->conns[i];

		if (c->fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = (short)(POLLIN | (c->oq_len > c->oq_off ? POLLOUT : 0)) };
	}
	return n;
}

static uint64_t conn_deadline(const struct rsip_server *s, const struct rsip_conn *c)
{
	uint64_t d = UINT64_MAX;

	if (s->idle_timeout_s)
		d = c->last_ms + (uint64_t)s->idle_timeout_s * 1000;
	if (s->preauth_s && !c->sess.authed && c->unauth_ms + (uint64_t)s->preauth_s * 1000 < d)
		d = c->unauth_ms + (uint64_t)s->preauth_s * 1000;
	return d;
}

int rsip_server_timeout(const struct rsip_server *s)
{
	uint64_t now = s->now_ms(), next = now + 1000;

	if (s->pending_work)
		return 0;
	if (s->listen_paused_until > now && s->listen_paused_until < next)
		next = s->listen_paused_until;
	for (unsigned i = 0; i < s->n_slots; i++)
		if (s->conns[i].fd >= 0) {
			uint64_t d = conn_deadline(s, &s->conns[i]);

			if (d < next)
				next = d;
		}
	return next > now ? (int)(next - now) : 0;
}

/* A free slot (growing the array), or NULL. */
static struct rsip_conn *slot_get(struct rsip_server *s)
{
	struct rsip_conn *nc;
	unsigned n;

	for (unsigned i = 0; i < s->n_slots; i++)
		if (s->conns[i].fd < 0)
			return &s->conns[i];
	n = s->n_slots ? 2 * s->n_slots : 16;
	if (n > s->max_conns)
		n = s->max_conns;
	if (n <= s->n_slots)
		return NULL;
	nc = realloc(s->conns, (size_t)n * sizeof(*nc));
	if (!nc)
		return NULL;
	for (unsigned i = s->n_slots; i < n; i++) {
		memset(&nc[i], 0, sizeof(nc[i]));
		nc[i].fd = -1;
	}
	s->conns = nc;
	nc = &s->conns[s->n_slots];
	s->n_slots = n;
	return nc;
}

/* Room for a connection from @peer: false if its address holds its share.
 * At the global cap, the oldest connection without a session goes. */
static bool admit(struct rsip_server *s, uint32_t peer)
{
	struct rsip_conn *oldest = NULL;
	unsigned open = 0, same = 0;
	char a[INET_ADDRSTRLEN];

	for (unsigned i = 0; i < s->n_slots; i++) {
		struct rsip_conn *c = &s->conns[i];

		if (c->fd < 0)
			continue;
		open++;
		same += c->sess.peer_lan == peer;
		if (!c->sess.authed && (!oldest || c->accept_ms < oldest->accept_ms))
			oldest = c;
	}
	if (s->per_addr_max && same >= s->per_addr_max) {
		rs_warn_rl(s, RS_RL_ADDR, "RSIP: %s holds %u connections: refusing another",
			   xd_ipstr(peer, a), same);
		return false;
	}
	if (open < s->max_conns)
		return true;
	if (!oldest) {
		rs_warn_rl(s, RS_RL_CAP, "RSIP: too many connections (%u), all with sessions: "
			   "refusing one", s->max_conns);
		return false;
	}
	rs_warn_rl(s, RS_RL_CAP, "RSIP: too many connections (%u): closing the oldest without "
		   "a session (from %s)", s->max_conns, xd_ipstr(oldest->sess.peer_lan, a));
	rs_conn_close(oldest);
	return true;
}

/* accept failed with @err (out of files): lower the cap to what is open and
 * close the oldest connection without a session.  false: none to close. */
static bool shed_for_files(struct rsip_server *s, int err)
{
	struct rsip_conn *oldest = NULL;
	unsigned open = 0;

	for (unsigned i = 0; i < s->n_slots; i++) {
		struct rsip_conn *c = &s->conns[i];

		if (c->fd < 0)
			continue;
		open++;
		if (!c->sess.authed && (!oldest || c->accept_ms < oldest->accept_ms))
			oldest = c;
	}
	if (!oldest)
		return false;
	if (err == EMFILE && open < s->max_conns) {
		s->max_conns = open;
		rs_warn_rl(s, RS_RL_ACCEPT, "RSIP: accept: %s: at most %u connections from now on",
			   strerror(err), open);
	}
	rs_conn_close(oldest);
	return true;
}

static void conn_accept(struct rsip_server *s)
{
	/* A bounded number per call: the rest of the loop gets its turn. */
	for (unsigned k = 0; k < 256; k++) {
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct rsip_conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				int e = errno;

				/* The file limit is the cap from now on; the oldest
				 * connection without a session makes room.  With none,
				 * the listener (still readable) rests instead of
				 * spinning. */
				if (shed_for_files(s, e))
					continue;
				s->listen_paused_until = s->now_ms() + PAUSE_MS;
				rs_warn_rl(s, RS_RL_ACCEPT, "RSIP: accept: %s: listener paused",
					   strerror(e));
			}
			return;
		}
		if (peer.sin_family != AF_INET || !admit(s, peer.sin_addr.s_addr) || !(c = slot_get(s))) {
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->sess.peer_lan = peer.sin_addr.s_addr;
		c->last_ms = c->unauth_ms = c->accept_ms = s->now_ms();
	}
}

/* Send what the socket takes; false: the connection is broken. */
static bool conn_flush(struct rsip_conn *c)
{
	while (c->oq_off < c->oq_len) {
		ssize_t w = send(c->fd, c->oq + c->oq_off, c->oq_len - c->oq_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (w <= 0)
			return false;
		c->oq_off += (size_t)w;
	}
	c->oq_off = c->oq_len = 0;
	return true;
}

/* Queue a reply and send what can be sent; false: cut off (or broken). */
static bool conn_send(struct rsip_server *s, struct rsip_conn *c, const uint8_t *buf, size_t len)
{
	size_t held = c->oq_len - c->oq_off;

	if (held + len > RSIP_OUTQ_MAX) {
		char a[INET_ADDRSTRLEN];

		rs_warn_rl(s, RS_RL_OUTQ, "RSIP: %s does not read its replies (%zu bytes held): "
			   "closing", xd_ipstr(c->sess.peer_lan, a), held);
		return false;
	}
	if (c->oq_off) {
		memmove(c->oq, c->oq + c->oq_off, held);
		c->oq_off = 0;
		c->oq_len = held;
	}
	if (c->oq_len + len > c->oq_cap) {
		size_t cap = c->oq_cap ? c->oq_cap : 1024;
		uint8_t *q;

		while (cap < c->oq_len + len)
			cap *= 2;
		q = realloc(c->oq, cap);
		if (!q)
			return false;
		c->oq = q;
		c->oq_cap = cap;
	}
	memcpy(c->oq + c->oq_len, buf, len);
	c->oq_len += len;
	return conn_flush(c);
}

/* Read what the peer sent (handled later, in batches); false: closed. */
static bool conn_fill(struct rsip_conn *c)
{
	ssize_t r;

	if (c->in_len == sizeof(c->in))
		return true;    /* a full message waits for its batch */
	r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		rs_conn_close(c);
		return false;
	}
	if (r > 0)
		c->in_len += (size_t)r;
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
	bool cl = false, was, had_ctr;
	uint32_t ctr;

	if (!conn_ready(c, &need, &err))
		return false;
	c->pending = true;
	c->retry_ok = false;
	c->last_ms = s->now_ms();   /* a complete message: not idle */
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
	was = c->sess.authed;
	had_ctr = c->sess.have_counter;
	ctr = c->sess.last_counter;
	s->cur_conn = c;
	c->out_len = rsip_server_handle(s, &c->sess, c->in, need, c->out, &cl);
	s->cur_conn = NULL;
	/* the session's counter moved: it is this request's */
	c->retry_ok = was && c->sess.authed && !cl && c->out_len && c->sess.have_counter &&
		      (!had_ctr || c->sess.last_counter != ctr);
	if (was && !c->sess.authed)
		c->unauth_ms = c->last_ms;  /* session over: the pre-auth deadline again */
	c->close_after = cl;
	memmove(c->in, c->in + need, c->in_len - need);
	c->in_len -= need;
	return true;
}

/* Queue the held replies of the batch (or drop the connections whose
 * binding could not be installed or whose batch did not commit). */
static void batch_flush(struct rsip_server *s)
{
	for (unsigned k = 0; k < s->n_slots; k++) {
		struct rsip_conn *c = &s->conns[k];

		if (!c->pending)
			continue;
		c->pending = false;
		if (c->failed || (c->out_len && !conn_send(s, c, c->out, c->out_len))) {
			rs_conn_close(c);
			continue;
		}
		if (c->close_after) {
			/* The last reply, as far as the socket takes it. */
			(void)conn_flush(c);
			rs_conn_close(c);
			continue;
		}
		c->out_len = 0;
	}
}

/* Operations in the open unit, and the store's limit (0: none). */
static unsigned unit_ops(struct rsip_server *s, unsigned *limit)
{
	unsigned ops = 0;

	*limit = 0;
	if (OPS(s)->unit_size)
		OPS(s)->unit_size(s->st, &ops, limit);
	return ops;
}

/*
 * Group commit: one message of every connection that has one, handled in
 * one transaction; then the commit (one fsync for all), the map installs
 * of the bindings it holds, and only then the replies.  A reply never
 * confirms a binding that is not durable and in the maps.  Returns the
 * number of messages handled.
 *
 * A store with a limit on one transaction (etcd): the batch takes no
 * further message once the largest one seen so far might not fit; the
 * rest wait for the next batch, which starts where this one stopped (no
 * connection is always last).  The first message is always taken: one
 * that alone exceeds the limit fails by itself (its unit's commit), with
 * an error reply.
 */
static unsigned batch_run(struct rsip_server *s)
{
	unsigned n = 0, k = 0, i, limit = 0, ops = 0;
	uint16_t err;
	size_t need;
	bool outer;

	for (k = 0; k < s->n_slots && !conn_ready(&s->conns[k], &need, &err); k++)
		;
	if (k == s->n_slots)
		return 0;       /* no transaction (and no write lock) for nothing */
	outer = !s->no_group_commit && OPS(s)->begin(s->st) == 0;
	if (outer)
		ops = unit_ops(s, &limit);
	if (!s->msg_ops_max)
		s->msg_ops_max = RS_MSG_OPS_GUESS;

	s->batching = outer;
	s->n_defer = 0;
	if (s->batch_from >= s->n_slots)
		s->batch_from = 0;
	for (i = 0; i < s->n_slots; i++) {
		k = (s->batch_from + i) % s->n_slots;
		if (limit && n && ops + s->msg_ops_max > limit && conn_ready(&s->conns[k], &need, &err)) {
			s->batches_full++;
			s->batch_from = k;  /* the first one left out */
			break;
		}
		if (conn_handle_one(s, &s->conns[k])) {
			n++;
			if (limit) {
				unsigned now = unit_ops(s, &limit);

				if (now > ops && now - ops > s->msg_ops_max)
					s->msg_ops_max = now - ops;
				ops = now;
			}
		}
	}
	s->batching = false;
	if (outer && OPS(s)->commit(s->st)) {
		unsigned again = 0;
		char why[sizeof(s->st->err)];

		/* Nothing of the batch was written (another router's write
		 * changed what it read, or the store did not answer): each
		 * request of an open session is answered "internal error", which
		 * the host asks again on the same connection; the others
		 * (registrations, deregistrations, ...) are closed. */
		snprintf(why, sizeof(why), "%s", xd_store_error(s->st));
		OPS(s)->rollback(s->st);
		s->idx.valid = false;   /* it holds what was rolled back */
		for (unsigned k = 0; k < s->n_slots; k++) {
			struct rsip_conn *c = &s->conns[k];

			if (!c->pending)
				continue;
			c->out_len = c->retry_ok ? rsip_server_retry_reply(&c->sess, c->out) : 0;
			c->failed = !c->out_len;
			again += !c->failed;
		}
		xd_err("RSIP: cannot commit %u requests: %s; %u answered \"try again\", %u "
		       "connections closed", n, why, again, n - again);
		s->batches_failed++;
		s->batch_retry_replies += again;
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

/* Is a complete message waiting (for the next call: poll must not sleep)? */
static bool any_ready(const struct rsip_server *s)
{
	uint16_t err;
	size_t need;

	for (unsigned k = 0; k < s->n_slots; k++)
		if (conn_ready(&s->conns[k], &need, &err))
			return true;
	return false;
}

void rsip_server_events(struct rsip_server *s, const struct pollfd *pfd, unsigned n)
{
	bool accept_now = false;
	unsigned j = 0;
	uint64_t now;

	/* pfd[] lists the connections in slot order (rsip_server_pollfds). */
	for (unsigned i = 0; i < n; i++) {
		unsigned k;

		if (!pfd[i].revents)
			continue;
		if (i == 0 && pfd[i].fd == s->listen_fd) {
			accept_now = true;
			continue;
		}
		for (k = j; k < s->n_slots && s->conns[k].fd != pfd[i].fd; k++)
			;
		if (k == s->n_slots)
			continue;   /* closed meanwhile */
		j = k + 1;
		if ((pfd[i].revents & POLLOUT) && !conn_flush(&s->conns[k])) {
			rs_conn_close(&s->conns[k]);
			continue;
		}
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			conn_fill(&s->conns[k]);
	}
	/* A few batches per call: a client that pipelines has the rest of its
	 * messages handled on the next turns, others' in between. */
	for (unsigned b = 0; b < 4 && batch_run(s); b++)
		;
	/* Deadlines: no authenticated hello in time, or no complete message. */
	now = s->now_ms();
	for (unsigned k = 0; k < s->n_slots; k++)
		if (s->conns[k].fd >= 0 && now >= conn_deadline(s, &s->conns[k]))
			rs_conn_close(&s->conns[k]);
	/* After the deadlines: they make room for what waits. */
	if (accept_now || (s->listen_paused_until && now >= s->listen_paused_until)) {
		s->listen_paused_until = 0;
		conn_accept(s);
	}
	s->pending_work = any_ready(s);
}
