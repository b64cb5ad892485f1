// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Delivery of revocation notices: see ca_notify.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include "ca_notify.h"
#include "xdnat.h"

#define ACK_TAG "xdnat-notice-ack"

struct pending {
	struct pending *next;
	uint32_t remote;
	uint8_t *der;
	size_t len;
	uint8_t hash[SHA256_DIGEST_LENGTH];
	unsigned tries;
	uint64_t due_ms;
	char what[96];
};

struct xd_notifier {
	int fd;
	uint16_t port;
	struct pending *q;
	unsigned n;
	uint64_t acked, failed;
};

int xd_notifier_open(uint32_t src_be, uint16_t port, struct xd_notifier **out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = src_be };
	struct xd_notifier *n = calloc(1, sizeof(*n));
	char a[INET_ADDRSTRLEN];

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->port = port;
	n->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->fd < 0 || xd_bind_maybe_virtual(n->fd, &sa, "revocation notices")) {
		int rc = -errno;

		xd_err("revocation notices: cannot bind UDP %s:%u: %s", xd_ipstr(src_be, a), port,
		       strerror(errno));
		if (n->fd >= 0)
			close(n->fd);
		free(n);
		return rc;
	}
	*out = n;
	return 0;
}

static void drop(struct pending *p)
{
	free(p->der);
	free(p);
}

void xd_notifier_close(struct xd_notifier *n)
{
	if (!n)
		return;
	while (n->q) {
		struct pending *p = n->q;

		n->q = p->next;
		drop(p);
	}
	close(n->fd);
	free(n);
}

int xd_notifier_fd(const struct xd_notifier *n) { return n->fd; }

void xd_notifier_counts(const struct xd_notifier *n, uint64_t *acked, uint64_t *failed)
{
	*acked = n->acked;
	*failed = n->failed;
}

int xd_notifier_queue(struct xd_notifier *n, uint32_t remote_be, const uint8_t *der, size_t len,
		      const char *what)
{
	struct pending *p, **tail;
	char a[INET_ADDRSTRLEN];

	if (n->n >= XD_NOTIFY_QUEUE_MAX) {
		xd_warn("revocation notice to %s not queued: %u notices pending", xd_ipstr(remote_be, a),
			n->n);
		return -ENOSPC;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->der = malloc(len))) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->der, der, len);
	p->len = len;
	p->remote = remote_be;
	SHA256(der, len, p->hash);
	snprintf(p->what, sizeof(p->what), "%s", what);
	for (tail = &n->q; *tail; tail = &(*tail)->next)
		;
	*tail = p;
	n->n++;
	return 0;
}

static void read_acks(struct xd_notifier *n)
{
	for (;;) {
		uint8_t buf[128];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(n->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (r < 0)
			return;
		if (r != 16 + SHA256_DIGEST_LENGTH || memcmp(buf, ACK_TAG, 16))
			continue;
		for (struct pending **pp = &n->q; *pp; pp = &(*pp)->next) {
			struct pending *p = *pp;
			char a[INET_ADDRSTRLEN];

			if (p->remote != from.sin_addr.s_addr || memcmp(p->hash, buf + 16, sizeof(p->hash)))
				continue;
			printf("xdnatd: revocation notice (%s) acknowledged by %s\n", p->what,
			       xd_ipstr(p->remote, a));
			fflush(stdout);
			*pp = p->next;
			drop(p);
			n->n--;
			n->acked++;
			break;
		}
	}
}

int xd_notifier_run(struct xd_notifier *n, uint64_t now_ms)
{
	uint64_t next = now_ms + 1000;

	read_acks(n);
	for (struct pending **pp = &n->q; *pp;) {
		struct pending *p = *pp;
		char a[INET_ADDRSTRLEN];

		if (p->due_ms > now_ms) {
			if (p->due_ms < next)
				next = p->due_ms;
			pp = &p->next;
			continue;
		}
		if (p->tries == XD_NOTIFY_TRIES) {
			xd_warn("peer %s never acknowledged the revocation notice (%s): giving up",
				xd_ipstr(p->remote, a), p->what);
			*pp = p->next;
			drop(p);
			n->n--;
			n->failed++;
			continue;
		}
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(n->port),
					  .sin_addr.s_addr = p->remote };

		if (sendto(n->fd, p->der, p->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0 &&
		    errno != EAGAIN)
			xd_warn("revocation notice to %s: %s", xd_ipstr(p->remote, a), strerror(errno));
		p->due_ms = now_ms + (1000ull << p->tries);
		p->tries++;
		if (p->due_ms < next)
			next = p->due_ms;
		pp = &p->next;
	}
	return (int)(next - now_ms);
}
