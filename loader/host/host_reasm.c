// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host's slow path for tunnel packets the router's stack had to
 * fragment (an inbound datagram without DF too big for the LAN once
 * wrapped).  The tc ingress program lets outer fragments through to the
 * stack, which reassembles them; having no IP-in-IP handler, the kernel
 * gives the whole tunnel packet only to raw IPPROTO_IPIP sockets -- this
 * one.  We check it came from the router to us and carries a datagram for
 * the global address, and hand the inner datagram back to the stack with a
 * raw IPPROTO_RAW socket: routed to the local global address, it is
 * received as if it had arrived unwrapped (inner fragments are reassembled
 * there in turn).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include "xdnat.h"
#include "host_reasm.h"

static struct {
	pthread_t thread;
	bool running;
	volatile bool stop;
	int in_fd, out_fd;
	uint32_t gaddr, router, lan;
	struct xd_reasm_stats st;
} r;

static void *loop(void *arg)
{
	static uint8_t buf[65536];

	(void)arg;
	while (!r.stop) {
		struct pollfd p = { .fd = r.in_fd, .events = POLLIN };
		struct sockaddr_in to = { .sin_family = AF_INET };
		const struct iphdr *o, *i;
		size_t ohl, ilen;
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(r.in_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			continue;
		o = (const void *)buf;
		if ((size_t)n < sizeof(*o) || o->protocol != IPPROTO_IPIP ||
		    o->saddr != r.router || o->daddr != r.lan)
			continue; /* not from our router: not ours to unwrap */
		ohl = (size_t)o->ihl * 4;
		i = (const void *)(buf + ohl);
		if ((size_t)n < ohl + sizeof(*i) || i->version != 4 || i->ihl < 5 ||
		    i->daddr != r.gaddr || (ilen = ntohs(i->tot_len)) != (size_t)n - ohl) {
			r.st.malformed++;
			continue;
		}
		to.sin_addr.s_addr = i->daddr;
		if (sendto(r.out_fd, i, ilen, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			r.st.failed++;
		else
			r.st.unwrapped++;
	}
	return NULL;
}

int xd_reasm_start(uint32_t gaddr_be, uint32_t router_be, uint32_t lan_be)
{
	int err;

	memset(&r, 0, sizeof(r));
	r.gaddr = gaddr_be;
	r.router = router_be;
	r.lan = lan_be;
	r.in_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPIP);
	if (r.in_fd < 0)
		return -errno;
	r.out_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (r.out_fd < 0) {
		err = -errno;
		close(r.in_fd);
		return err;
	}
	err = pthread_create(&r.thread, NULL, loop, NULL);
	if (err) {
		close(r.in_fd);
		close(r.out_fd);
		return -err;
	}
	r.running = true;
	return 0;
}

void xd_reasm_stop(struct xd_reasm_stats *st)
{
	if (!r.running)
		return;
	r.stop = true;
	pthread_join(r.thread, NULL);
	close(r.in_fd);
	close(r.out_fd);
	r.running = false;
	if (st)
		*st = r.st;
}
