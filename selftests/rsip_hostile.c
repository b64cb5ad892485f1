// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rsip-hostile: the clients of selftests/e2e_hostile_rsip.sh (issue 14), run
 * inside the test's network namespaces.  Not installed.
 *
 *   rsip-hostile flood SERVER PORT IDLE SLOW SECONDS
 *       hold IDLE silent connections and SLOW that send one byte a second
 *       (of a message that never completes) for SECONDS; print how many
 *       were accepted and how many were still open at the end.
 *   rsip-hostile register SERVER PORT NAME SECRET_FILE [COUNT [GAP_MS]]
 *       COUNT times (default 1), GAP_MS apart (default 0): connect,
 *       REGISTER, ASSIGN ports, close; print each time in ms and the
 *       median.  Exit 1 on any failure.
 *   rsip-hostile hello SERVER PORT NAME SECRET_FILE NONCE_HEX
 *       send one REGISTER whose hello carries client nonce NONCE_HEX (the
 *       same bytes every time: a replay when sent again); print the reply
 *       (REGISTER_RESPONSE or ERROR_RESPONSE N).
 *   rsip-hostile pipeline SERVER PORT NAME SECRET_FILE SECONDS
 *       register, then send QUERY requests back to back without ever
 *       reading a reply, for SECONDS (registering again when cut off);
 *   print the requests sent and the times it was cut off.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "rsip_client.h"
#include "rsip_wire.h"
#include "xdnat.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int usage(void)
{
	fprintf(stderr, "usage: rsip-hostile flood SERVER PORT IDLE SLOW SECONDS\n"
			"       rsip-hostile register SERVER PORT NAME SECRET_FILE [COUNT [GAP_MS]]\n"
			"       rsip-hostile hello SERVER PORT NAME SECRET_FILE NONCE_HEX\n"
			"       rsip-hostile pipeline SERVER PORT NAME SECRET_FILE SECONDS\n");
	return 2;
}

static int tcp_connect(uint32_t srv, uint16_t port, bool block)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = srv };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (block ? 0 : SOCK_NONBLOCK), 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Is @fd still open at the server (no EOF, no reset)? */
static bool alive(int fd)
{
	char b[64];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);

	return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static int flood(uint32_t srv, uint16_t port, unsigned idle, unsigned slow, unsigned secs)
{
	unsigned n = idle + slow, accepted = 0, open_idle = 0, open_slow = 0;
	int *fd = calloc(n, sizeof(int));
	/* A header announcing 4,000 bytes that never all come. */
	const uint8_t hdr[4] = { RSIP_VERSION, RSIP_REGISTER_REQUEST, 0x0f, 0xa0 };
	uint64_t end;

	if (!fd)
		return 1;
	for (unsigned i = 0; i < n; i++)
		fd[i] = tcp_connect(srv, port, false);
	usleep(500 * 1000);
	for (unsigned i = 0; i < n; i++)
		if (fd[i] >= 0 && alive(fd[i]))
			accepted++;
	end = now_ms() + (uint64_t)secs * 1000;
	for (unsigned t = 0; now_ms() < end; t++) {
		for (unsigned i = idle; i < n; i++)
			if (fd[i] >= 0 && send(fd[i], t < 4 ? &hdr[t] : hdr + 3, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
			    errno != EAGAIN) {
				close(fd[i]);
				fd[i] = -1;
			}
		usleep(1000 * 1000);
	}
	for (unsigned i = 0; i < n; i++)
		if (fd[i] >= 0 && alive(fd[i])) {
			if (i < idle)
				open_idle++;
			else
				open_slow++;
		}
	printf("flood: %u connections tried, %u not refused, not reset at the end (client side): %u idle, %u slow\n", n,
	       accepted, open_idle, open_slow);
	for (unsigned i = 0; i < n; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	free(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int do_register(uint32_t srv, uint16_t port, const char *name, const uint8_t *secret,
		       unsigned count, unsigned gap_ms)
{
	uint64_t *t = calloc(count, sizeof(*t));
	int fails = 0;

	if (!t)
		return 1;
	for (unsigned i = 0; i < count; i++) {
		struct rsip_client c;
		struct rsip_grant g;
		uint64_t t0 = now_ms();
		int rc;

		rsip_client_init(&c, srv, port, name, secret, 5000);
		rc = rsip_client_register(&c);
		if (!rc)
			rc = rsip_client_assign_ports(&c, 0, 1, 60, &g);
		t[i] = now_ms() - t0;
		if (rc) {
			fprintf(stderr, "register: attempt %u failed (%d) after %llu ms\n", i + 1, rc,
				(unsigned long long)t[i]);
			fails++;
		} else if (!rsip_client_free(&c, g.bind_id)) {
			(void)rsip_client_deregister(&c);
		}
		rsip_client_close(&c);
		if (gap_ms && i + 1 < count)
			usleep(gap_ms * 1000);
		printf("register %u: %llu ms%s\n", i + 1, (unsigned long long)t[i], rc ? " (failed)" : "");
	}
	qsort(t, count, sizeof(*t), cmp_u64);
	printf("register: median %llu ms, max %llu ms, %d failed\n", (unsigned long long)t[count / 2],
	       (unsigned long long)t[count - 1], fails);
	free(t);
	return fails ? 1 : 0;
}

static int hello(uint32_t srv, uint16_t port, const char *name, const uint8_t *secret, const char *hex)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	uint8_t cn[RSIP_NONCE_LEN], resp[RSIP_MAX_MSG];
	struct pollfd p;
	size_t len, got = 0;
	int fd, rc = 1;

	if (!b || strlen(hex) != 2 * RSIP_NONCE_LEN)
		goto out;
	for (unsigned i = 0; i < RSIP_NONCE_LEN; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &cn[i]) != 1)
			goto out;
	rsip_begin(b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, 1);
	len = rsip_seal_hello(b, secret, name, cn);
	fd = tcp_connect(srv, port, true);
	if (!len || fd < 0 || send(fd, b->buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		printf("hello: cannot send\n");
		goto out;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got < 4 || got < ((size_t)resp[2] << 8 | resp[3])) {
		ssize_t r;

		if (poll(&p, 1, 3000) <= 0 || (r = recv(fd, resp + got, sizeof(resp) - got, 0)) <= 0)
			break;
		got += (size_t)r;
	}
	if (got < 4) {
		printf("hello: no reply\n");
	} else if (resp[1] == RSIP_REGISTER_RESPONSE) {
		printf("hello: REGISTER_RESPONSE\n");
		rc = 0;
	} else {
		struct rsip_msg m;
		struct rsip_fields f;
		uint16_t e = 0;

		if (!rsip_decode(resp, got, &m) && !rsip_validate(&m, &f) && f.slot[RSIP_S_ERR_ERROR] >= 0)
			e = rsip_param_u16(&m.params[f.slot[RSIP_S_ERR_ERROR]]);
		printf("hello: ERROR_RESPONSE %u\n", e);
		rc = 3;
	}
	close(fd);
out:
	free(b);
	return rc;
}

static int pipeline(uint32_t srv, uint16_t port, const char *name, const uint8_t *secret, unsigned secs)
{
	struct rsip_builder *b = malloc(sizeof(*b));
	uint64_t end = now_ms() + (uint64_t)secs * 1000, sent = 0;
	unsigned cut = 0;
	struct rsip_client c;

	if (!b)
		return 1;
	rsip_client_init(&c, srv, port, name, secret, 5000);
	while (now_ms() < end) {
		struct pollfd p;
		size_t len;

		if (!rsip_client_connected(&c)) {
			int small = 2048;

			if (rsip_client_register(&c)) {
				usleep(100 * 1000);
				continue;
			}
			/* Fill up soon: the replies have little room on our side. */
			(void)setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
			cut += sent > 0;
		}
		rsip_begin(b, RSIP_QUERY_REQUEST);
		rsip_put_u32(b, RSIP_P_CLIENT_ID, c.client_id);
		rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, ++c.counter);
		rsip_put_u16(b, RSIP_P_INDICATOR, 1);
		rsip_put_addr4(b, srv, false);
		len = rsip_seal_mac(b, c.keys.c2s);
		p = (struct pollfd){ .fd = c.fd, .events = POLLOUT };
		if (poll(&p, 1, 200) <= 0)
			continue;   /* the server does not read either: wait */
		if (send(c.fd, b->buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len) {
			if (errno != EAGAIN)
				rsip_client_close(&c);
			continue;
		}
		sent++;
	}
	printf("pipeline: %llu requests sent unread, cut off %u times\n", (unsigned long long)sent, cut);
	rsip_client_close(&c);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	uint8_t secret[RSIP_SECRET_LEN];
	struct in_addr a;
	unsigned long port;

	xd_progname = "rsip-hostile";
	if (argc < 6 || inet_pton(AF_INET, argv[2], &a) != 1 || !(port = strtoul(argv[3], NULL, 10)) ||
	    port > 65535)
		return usage();
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!strcmp(argv[1], "flood") && argc == 7)
		return flood(a.s_addr, (uint16_t)port, (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]),
			     (unsigned)atoi(argv[6]));
	if (argc < 6 || rsip_secret_load(argv[5], secret))
		return usage();
	if (!strcmp(argv[1], "register"))
		return do_register(a.s_addr, (uint16_t)port, argv[4], secret,
				   argc > 6 ? (unsigned)atoi(argv[6]) : 1,
				   argc > 7 ? (unsigned)atoi(argv[7]) : 0);
	if (!strcmp(argv[1], "hello") && argc == 7)
		return hello(a.s_addr, (uint16_t)port, argv[4], secret, argv[6]);
	if (!strcmp(argv[1], "pipeline") && argc == 7)
		return pipeline(a.s_addr, (uint16_t)port, argv[4], secret, (unsigned)atoi(argv[6]));
	return usage();
}
