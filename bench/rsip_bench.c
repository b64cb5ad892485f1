// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rsip-bench: control-plane allocation rate (issue 6, item 4).
 *
 * H hosts, one after the other, each on its own TCP connection to the real
 * RSIP server (loader/rsip/rsip_server.c, in a child process, loopback): REGISTER,
 * ASSIGN_REQUEST_RSAP-IP (P ports), ASSIGN_REQUEST_RSIPSEC (one SPI block),
 * all authenticated (HMAC), the state in SQLite (WAL, synchronous=FULL) on
 * --state-dir's filesystem.  Next to it, in the same run and interleaved:
 *   tcp     the same connections and request/response round trips with the
 *           same byte counts (measured on the real run with TCP_INFO), to a
 *           server that does nothing but answer;
 *   sqlite  one durable transaction per message of the same shape (insert a
 *           registration; insert a binding and update the registration).
 * The datapath backend is a no-op: BPF map updates are not included (the
 * datapath benchmark measures those).  Prints one table; figures are medians
 * of --rounds rounds.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "rsip_client.h"
#include "rsip_server.h"
#include "store.h"

#define NX 3   /* exchanges per host: REGISTER, ASSIGN ports, ASSIGN SPI */

#define MAX_CLIENTS 32
static unsigned n_hosts = 500, n_ports = 100, rounds = 3, n_clients = 16;
static const char *base_dir = "/var/tmp";
static volatile sig_atomic_t stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_term(int sig) { (void)sig; stop = 1; }

/* ------------------------------------------------ no-op datapath backend */

static int nb_ok(void *c, uint32_t id, uint32_t a, uint32_t b) { (void)c; (void)id; (void)a; (void)b; return 0; }
static int nb_host_del(void *c, uint32_t id) { (void)c; (void)id; return 0; }
static int nb_host_get(void *c, uint32_t id, uint32_t *l, uint32_t *g)
{
	(void)c; (void)id; (void)l; (void)g;
	return -ENOENT;
}
static int64_t nb_pbusy(void *c, uint32_t g, uint32_t a, uint32_t b) { (void)c; (void)g; (void)a; (void)b; return -1; }
static int64_t nb_sbusy(void *c, uint32_t a, uint32_t b) { (void)c; (void)a; (void)b; return -1; }
static int nb_runs(void *c, uint32_t id, int k, struct xd_run **r, size_t *n)
{
	(void)c; (void)id; (void)k;
	*r = NULL;
	*n = 0;
	return 0;
}

/* ------------------------------------------------------------- servers */

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &l)) {
		perror("rsip-bench: listen");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

#define PORTS_PER_GADDR 64000  /* of the default pool 1024-65535, less what is reserved */

static uint32_t n_gaddrs(void)
{
	return (uint32_t)(((uint64_t)n_hosts * n_ports + PORTS_PER_GADDR - 1) / PORTS_PER_GADDR);
}

/* The real server, until SIGTERM.  Returns the exit status. */
static int serve_rsip(const char *dir, uint16_t port, int ready_fd, bool group)
{
	struct rsip_backend be = { .host_add = nb_ok, .host_del = nb_host_del, .host_get = nb_host_get,
				   .ports_add = nb_ok, .ports_del = nb_ok, .spis_add = nb_ok,
				   .spis_del = nb_ok, .ports_busy = nb_pbusy, .spis_busy = nb_sbusy,
				   .runs = nb_runs };
	struct rsip_config cfg;
	struct rsip_server s;
	struct pollfd pfd[64];

	rsip_config_defaults(&cfg);
	cfg.state_dir = dir;
	cfg.instance = "bench";
	/* Enough global addresses for every host's ports ("any address":
	 * the server moves to the next one when one is full). */
	cfg.n_gaddrs = n_gaddrs();
	for (uint32_t g = 0; g < cfg.n_gaddrs; g++)
		cfg.gaddrs[g] = htonl(0xc0000201 + g);
	cfg.router_lan = htonl(INADDR_LOOPBACK);
	if (cfg.max_hosts < n_hosts + 2)
		cfg.max_hosts = n_hosts + 2;
	if (rsip_server_open(&s, &cfg, &be))
		return 1;
	s.no_group_commit = !group;
	if (rsip_server_listen(&s, htonl(INADDR_LOOPBACK), port, NULL, MAX_CLIENTS + 4, 60)) {
		rsip_server_close(&s);
		return 1;
	}
	if (write(ready_fd, "r", 1) != 1) {
		rsip_server_close(&s);
		return 1;
	}
	while (!stop) {
		int w = rsip_server_sweep(&s);
		unsigned n = rsip_server_pollfds(&s, pfd, 64);
		int r = poll(pfd, n, w);

		if (r > 0)
			rsip_server_events(&s, pfd, n);
	}
	rsip_server_close(&s);
	return 0;
}

/* Baseline: read a request (2-byte length, 2-byte response length, rest),
 * answer with that many bytes.  One connection at a time. */
static int serve_echo(int lfd, int ready_fd)
{
	uint8_t buf[RSIP_MAX_MSG];

	memset(buf, 0, sizeof(buf));
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	while (!stop) {
		int c = accept(lfd, NULL, NULL);

		if (c < 0)
			continue;
		for (;;) {
			size_t got = 0, need = 4, len, resp;
			ssize_t r = 0;

			while (got < need && (r = recv(c, buf + got, need - got, 0)) > 0) {
				got += (size_t)r;
				if (got == 4) {
					need = (size_t)buf[0] << 8 | buf[1];
					if (need < 4 || need > sizeof(buf))
						break;
				}
			}
			if (got < need || got < 4)
				break;
			len = got;
			resp = (size_t)buf[2] << 8 | buf[3];
			(void)len;
			if (resp > sizeof(buf) || send(c, buf, resp, MSG_NOSIGNAL) != (ssize_t)resp)
				break;
		}
		close(c);
	}
	return 0;
}

/* Fork a server; returns its pid once it is listening. */
static pid_t spawn(int kind, const char *dir, int lfd, uint16_t port, bool group)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_term };

		close(p[0]);
		sigaction(SIGTERM, &sa, NULL);
		if (kind == 0)
			close(lfd); /* the RSIP server listens itself */
		_exit(kind == 0 ? serve_rsip(dir, port, p[1], group) : serve_echo(lfd, p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	close(p[0]);
	return pid;
}

static int reap(pid_t pid)
{
	int st = 0;

	kill(pid, SIGTERM);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- rounds */

struct sizes { uint64_t req[NX], resp[NX]; };

static int tcp_bytes(int fd, uint64_t *sent, uint64_t *recvd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return -1;
	*sent = ti.tcpi_bytes_acked;
	*recvd = ti.tcpi_bytes_received;
	return 0;
}

static char *mkstate(void)
{
	char *d = malloc(256);

	if (!d)
		return NULL;
	snprintf(d, 256, "%s/rsip-bench-XXXXXX", base_dir);
	if (!mkdtemp(d)) {
		perror("rsip-bench: mkdtemp");
		free(d);
		return NULL;
	}
	return d;
}

static void rmstate(char *d)
{
	static const char *const sfx[] = { "bench.db", "bench.db-wal", "bench.db-shm", "raw.db",
					   "raw.db-wal", "raw.db-shm" };
	char p[300];

	for (unsigned i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d, sfx[i]);
		unlink(p);
	}
	rmdir(d);
	free(d);
}

/* Hosts k, k + step_hosts, ... one after the other (one client). */
static int run_hosts(unsigned k, unsigned step_hosts, uint16_t port,
		     uint8_t (*secrets)[RSIP_SECRET_LEN], struct sizes *sz)
{
	char name[32];

	for (unsigned i = k; i < n_hosts; i += step_hosts) {
		struct rsip_client c;
		struct rsip_grant g;
		uint64_t s0 = 0, r0 = 0, s1 = 0, r1 = 0;
		int rc, step = 0;

		snprintf(name, sizeof(name), "h%u", i);
		rsip_client_init(&c, htonl(INADDR_LOOPBACK), port, name, secrets[i], 5000);
		/* One LAN address per host (the server refuses to share one). */
		c.src_be = htonl(0x7f010000u + i + 1);
		if ((rc = rsip_client_register(&c)) || !++step ||
		    (i == 0 && tcp_bytes(c.fd, &s1, &r1) == 0 && ((sz->req[0] = s1), (sz->resp[0] = r1), 0)) ||
		    (rc = rsip_client_assign_ports(&c, 0, (uint8_t)n_ports, 0, &g)) || !++step ||
		    (i == 0 && tcp_bytes(c.fd, &s0, &r0) == 0 &&
		     ((sz->req[1] = s0 - s1), (sz->resp[1] = r0 - r1), 0)) ||
		    (rc = rsip_client_assign_spi(&c, 0, 0, 0, &g)) ||
		    (i == 0 && tcp_bytes(c.fd, &s1, &r1) == 0 &&
		     ((sz->req[2] = s1 - s0), (sz->resp[2] = r1 - r0), 0))) {
			fprintf(stderr, "rsip-bench: host %u, exchange %d: %s\n", i, step + 1,
				rc > 0 ? rsip_error_name((uint16_t)rc) : strerror(-rc));
			rsip_client_close(&c);
			return -1;
		}
		rsip_client_close(&c);
	}
	return 0;
}

/* @clients clients at once (processes), the hosts shared among them. */
static int run_clients(unsigned clients, uint16_t port, uint8_t (*secrets)[RSIP_SECRET_LEN],
		       struct sizes *sz)
{
	struct sizes *shared;
	pid_t pids[MAX_CLIENTS];
	int bad = 0;

	if (clients <= 1)
		return run_hosts(0, 1, port, secrets, sz);
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return -1;
	*shared = *sz;
	for (unsigned k = 0; k < clients; k++) {
		pids[k] = fork();
		if (pids[k] == 0)
			_exit(run_hosts(k, clients, port, secrets, shared) ? 1 : 0);
		if (pids[k] < 0)
			bad = 1;
	}
	for (unsigned k = 0; k < clients; k++) {
		int st = 0;

		if (pids[k] > 0 && (waitpid(pids[k], &st, 0) != pids[k] || !WIFEXITED(st) ||
				    WEXITSTATUS(st)))
			bad = 1;
	}
	*sz = *shared;
	munmap(shared, sizeof(*shared));
	return bad ? -1 : 0;
}

/* The real server: returns seconds for all hosts, or < 0.  Fills @sz from
 * the first host's connection. */
static double round_rsip(struct sizes *sz, unsigned clients, bool group)
{
	uint8_t (*secrets)[RSIP_SECRET_LEN] = calloc(n_hosts, RSIP_SECRET_LEN);
	char *dir = mkstate(), name[32];
	/* the clients' processes inherit it */
	double t0, t = -1;
	uint16_t port;
	struct xd_store *db;
	char err[256];
	pid_t pid;
	int lfd;

	if (!secrets || !dir)
		goto out;
	if (xd_store_open(dir, "bench", 0, &db, err, sizeof(err)))
		goto out;
	for (unsigned i = 0; i < n_hosts; i++) {
		snprintf(name, sizeof(name), "h%u", i);
		if (xd_store_enroll_new(db, name, 0, secrets[i])) {
			xd_store_close(db);
			goto out;
		}
	}
	xd_store_close(db);
	/* A free port for the server: bind, note, close, let it bind. */
	lfd = listen_any(&port);
	if (lfd < 0)
		goto out;
	close(lfd);
	pid = spawn(0, dir, -1, port, group);
	if (pid < 0)
		goto out;
	t0 = now_s();
	if (run_clients(clients, port, secrets, sz)) {
		reap(pid);
		goto out;
	}
	t = now_s() - t0;
	if (reap(pid)) {
		fprintf(stderr, "rsip-bench: the RSIP server failed\n");
		t = -1;
	}
out:
	free(secrets);
	if (dir)
		rmstate(dir);
	return t;
}

static int send_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *b, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, b, n, 0);

		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Baseline 1: the same connections and round trips, nothing behind them. */
static double round_tcp(const struct sizes *sz)
{
	uint8_t buf[RSIP_MAX_MSG];
	double t0, t = -1;
	uint16_t port;
	pid_t pid;
	int lfd = listen_any(&port);

	memset(buf, 0xa5, sizeof(buf));
	if (lfd < 0)
		return -1;
	pid = spawn(1, NULL, lfd, port, false);
	close(lfd);
	if (pid < 0)
		return -1;
	t0 = now_s();
	for (unsigned i = 0; i < n_hosts; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f010000u + i + 1) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			perror("rsip-bench: tcp baseline");
			if (fd >= 0)
				close(fd);
			reap(pid);
			return -1;
		}
		for (int k = 0; k < NX; k++) {
			buf[0] = (uint8_t)(sz->req[k] >> 8);
			buf[1] = (uint8_t)sz->req[k];
			buf[2] = (uint8_t)(sz->resp[k] >> 8);
			buf[3] = (uint8_t)sz->resp[k];
			if (send_all(fd, buf, sz->req[k]) || recv_all(fd, buf + 4, sz->resp[k])) {
				fprintf(stderr, "rsip-bench: tcp baseline: exchange failed\n");
				close(fd);
				reap(pid);
				return -1;
			}
		}
		close(fd);
	}
	t = now_s() - t0;
	if (reap(pid))
		t = -1;
	return t;
}

/* Baseline 2: the store alone (store.h, its SQLite backend), one durable
 * transaction per message of the same shape: add a registration; claim a
 * block (insert a binding, update the registration). */
static double round_sqlite(void)
{
	char *dir = mkstate(), err[256], name[32];
	struct xd_store *st = NULL;
	double t0, t = -1;

	if (!dir || xd_store_open(dir, "raw", 0, &st, err, sizeof(err)))
		goto out;
	t0 = now_s();
	for (unsigned i = 0; i < n_hosts; i++) {
		uint32_t id, bid;

		snprintf(name, sizeof(name), "h%u", i);
		if (st->ops->client_add(st, name, i + 1, (int64_t)i, &id))
			goto out;
		for (int k = 0; k < 2; k++) {
			struct xd_claim c = { .client_id = id, .host_id = i + 1, .kind = k + 1,
					      .first = 1024 + i * 2 + (uint32_t)k, .last = 1024 + i * 2 + (uint32_t)k,
					      .until_ms = 1, .now_ms = 1 };

			if (st->ops->claim(st, &c, &bid))
				goto out;
		}
	}
	t = now_s() - t0;
out:
	if (st && t < 0)
		fprintf(stderr, "rsip-bench: store: %s\n", xd_store_error(st));
	xd_store_close(st);
	if (dir)
		rmstate(dir);
	return t;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rsip-bench [--hosts N] [--ports N] [--clients N] [--rounds N] [--state-dir DIR]\n"
"RSIP control-plane allocation rate over TCP on loopback, next to baselines\n"
"measured in the same run (docs/CONTROL-PLANE.md, Performance).\n"
"  --hosts N      hosts per round, each REGISTER + 2 ASSIGN (default 500)\n"
"  --ports N      ports per host (1-255, default 100)\n"
"  --clients N    also run the hosts N clients at a time (each client's hosts\n"
"                 one after the other), with group commit and with one\n"
"                 commit per request (1-32, default 16; 1: off)\n"
"  --rounds N     interleaved rounds; medians are printed (default 3)\n"
"  --state-dir D  where the SQLite databases go (default /var/tmp)\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "hosts", required_argument, NULL, 'H' }, { "ports", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "rounds", required_argument, NULL, 'r' }, { "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	double *tr, *tt, *ts, *tc, *tn;
	struct sizes sz = { { 0 }, { 0 } };
	double mr, mt, ms, mc = 0, mn = 0, ops;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'H': n_hosts = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': n_ports = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': n_clients = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': base_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (n_hosts < 1 || n_hosts > 60000 || n_ports < 1 || n_ports > 255 || rounds < 1 || rounds > 99 ||
	    n_clients < 1 || n_clients > MAX_CLIENTS ||
	    (uint64_t)n_hosts * n_ports > (uint64_t)PORTS_PER_GADDR * XDNAT_MAX_GADDRS) {
		fprintf(stderr, "rsip-bench: hosts 1-60000, ports 1-255, hosts*ports <= %u, rounds 1-99, "
			"clients 1-32\n",
			PORTS_PER_GADDR * XDNAT_MAX_GADDRS);
		return 2;
	}
	tr = calloc(rounds, sizeof(double));
	tt = calloc(rounds, sizeof(double));
	ts = calloc(rounds, sizeof(double));
	tc = calloc(rounds, sizeof(double));
	tn = calloc(rounds, sizeof(double));
	if (!tr || !tt || !ts || !tc || !tn)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	for (unsigned r = 0; r < rounds; r++) {
		if ((tr[r] = round_rsip(&sz, 1, true)) < 0 || (tt[r] = round_tcp(&sz)) < 0 ||
		    (ts[r] = round_sqlite()) < 0 ||
		    (n_clients > 1 && ((tc[r] = round_rsip(&sz, n_clients, true)) < 0 ||
				       (tn[r] = round_rsip(&sz, n_clients, false)) < 0))) {
			fprintf(stderr, "rsip-bench: round %u failed\n", r + 1);
			goto out;
		}
	}
	ops = (double)n_hosts * NX;
	mr = median(tr, rounds);
	mt = median(tt, rounds);
	ms = median(ts, rounds);
	if (n_clients > 1) {
		mc = median(tc, rounds);
		mn = median(tn, rounds);
	}
	printf("RSIP control plane: %u hosts x (REGISTER + ASSIGN %u ports + ASSIGN SPI block), "
	       "1 TCP connection each, loopback; %u global address%s; state in %s; median of %u rounds\n",
	       n_hosts, n_ports, n_gaddrs(), n_gaddrs() == 1 ? "" : "es", base_dir, rounds);
	printf("bytes per host: requests %llu+%llu+%llu, responses %llu+%llu+%llu\n",
	       (unsigned long long)sz.req[0], (unsigned long long)sz.req[1], (unsigned long long)sz.req[2],
	       (unsigned long long)sz.resp[0], (unsigned long long)sz.resp[1], (unsigned long long)sz.resp[2]);
	printf("%-44s %12s %10s %10s %12s\n", "", "ops/s", "hosts/s", "us/op", "xdnat/this");
	printf("%-44s %12.0f %10.0f %10.1f %12s\n", "xdnat RSIP server (auth + allocator + SQLite)",
	       ops / mr, n_hosts / mr, mr / ops * 1e6, "1.00");
	if (n_clients > 1) {
		char lbl[64];

		snprintf(lbl, sizeof(lbl), "xdnat RSIP server, %u clients at once", n_clients);
		printf("%-44s %12.0f %10.0f %10.1f %12.2f\n", lbl, ops / mc, n_hosts / mc, mc / ops * 1e6,
		       mc / mr);
		snprintf(lbl, sizeof(lbl), "  same, one commit per request");
		printf("%-44s %12.0f %10.0f %10.1f %12.2f\n", lbl, ops / mn, n_hosts / mn, mn / ops * 1e6,
		       mn / mr);
	}
	printf("%-44s %12.0f %10.0f %10.1f %12.2f\n", "baseline: TCP round trips, same bytes",
	       ops / mt, n_hosts / mt, mt / ops * 1e6, mt / mr);
	printf("%-44s %12.0f %10.0f %10.1f %12.2f\n", "baseline: SQLite, 1 durable txn per message",
	       ops / ms, n_hosts / ms, ms / ops * 1e6, ms / mr);
	printf("ops = registrations + assignments, each confirmed only after its commit (fsync);\n"
	       "xdnat/this = the first row's rate / this row's rate\n");
	rc = 0;
out:
	free(tr);
	free(tt);
	free(ts);
	free(tc);
	free(tn);
	return rc;
}
