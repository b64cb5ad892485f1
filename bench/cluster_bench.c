// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cluster-bench: RSIP allocation storms against running xdnatd routers that
 * share a store, the time a change takes to reach another router's maps,
 * and a check that a router's maps are its store (docs/CLUSTER.md).
 *
 *   cluster-bench storm --store LOC --instance I --router ADDR[:PORT]... \
 *        --src FIRST_ADDR --hosts N [--assigns K] [--ports P] [--threads T] \
 *        [--prefix NAME] [--latency L --maps PIN_BASE:INSTANCE]
 *   cluster-bench check --store LOC --instance I --maps PIN_BASE:INSTANCE
 *
 * storm: enrols N hosts (PREFIX-0 ...) in the store, then T threads run
 * them at once, host i against router i mod R from source address
 * FIRST_ADDR + i (those addresses must be configured): REGISTER, K times
 * ASSIGN_REQUEST_RSAP-IP (P ports), one ASSIGN_REQUEST_RSIPSEC.  A request
 * whose connection was closed (its batch did not commit, e.g. another
 * router won the compare-and-swap) is retried on a new connection.  Every
 * grant is kept; two grants that overlap (same global address and port, or
 * SPI) fail the run.  With --latency, L more single-port allocations on the
 * first router, one at a time, each followed by polling the maps given by
 * --maps (the second router's) until the port is owned there: the delay
 * from the reply (sent after the commit) to the other router's maps.
 * Prints one JSON object.
 *
 * check: every registration of the store that holds a host id is in the
 * maps with its LAN address, global address and exactly the ports and SPI
 * blocks of its active bindings whose lease has not lapsed; every host the
 * maps mark as RSIP's (XDNAT_HOST_F_RSIP) is held by a registration.
 * Exit 1 with the differences on stdout.
 *
 * deregister: hosts PREFIX-0 .. N-1 of an earlier storm REGISTER again at
 * the first router (from their storm source addresses) and DEREGISTER:
 * their blocks go into quarantine and they leave every router's maps.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "rsip_client.h"
#include "store.h"
#include "xdnat.h"

#define MAX_ROUTERS 8

static struct {
	const char *store, *instance, *prefix, *maps;
	uint32_t routers[MAX_ROUTERS];
	uint16_t ports[MAX_ROUTERS];
	unsigned n_routers, hosts, assigns, nports, threads, latency;
	uint32_t src;            /* host order */
} o = { .prefix = "cb", .assigns = 2, .nports = 10, .threads = 16 };

struct grant { uint32_t gaddr, first, last; int kind; unsigned host, router; };

static struct {
	pthread_mutex_t mu;
	struct grant *g;
	size_t n, cap;
	unsigned next_host, failed, retries;
	uint8_t (*secret)[RSIP_SECRET_LEN];
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: cluster-bench storm --store LOC --instance I --router ADDR[:PORT]... --src ADDR\n"
"                           --hosts N [--assigns K] [--ports P] [--threads T] [--prefix NAME]\n"
"                           [--latency L --maps PIN_BASE:INSTANCE]\n"
"       cluster-bench check --store LOC --instance I --maps PIN_BASE:INSTANCE\n"
"       cluster-bench deregister --store LOC --instance I --router ADDR[:PORT] --src ADDR\n"
"                           --hosts N [--prefix NAME]\n"
"RSIP allocation storms against xdnatd routers sharing a store (etcd://HOST:PORT[/PREFIX]\n"
"or an SQLite state directory), the delay until another router's maps hold a\n"
"change, and a check that a router's maps equal its store.\n"
"  --store LOC      the routers' state location (hosts are enrolled there)\n"
"  --instance I     the routers' instance name\n"
"  --router A[:P]   an RSIP server (default port 4555); repeat for each router\n"
"  --src ADDR       source address of host 0; host i uses ADDR + i\n"
"  --hosts N        hosts (1-20000)\n"
"  --assigns K      port assignments per host (default 2), then one SPI block\n"
"  --ports P        ports per assignment (1-255, default 10)\n"
"  --threads T      hosts served at once (1-256, default 16)\n"
"  --prefix NAME    host names NAME-0, NAME-1, ... (default cb)\n"
"  --latency L      then L single-port allocations on the first router, each\n"
"                   timed until the --maps router's maps hold it\n"
"  --maps B:I       pinned maps of a router (pin base and instance)\n"
"Exit status: 0 ok, 1 overlap, failure or difference, 2 usage.\n");
}

/* ------------------------------------------------------------ storm */

static int keep(const struct rsip_grant *g, int kind, unsigned host, unsigned router)
{
	int rc = 0;

	pthread_mutex_lock(&S.mu);
	if (S.n == S.cap) {
		size_t cap = S.cap ? S.cap * 2 : 1024;
		struct grant *v = realloc(S.g, cap * sizeof(*v));

		if (v) {
			S.g = v;
			S.cap = cap;
		}
	}
	if (S.n < S.cap)
		S.g[S.n++] = (struct grant){ g->gaddr_be, g->first, g->first + g->count - 1, kind, host, router };
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&S.mu);
	return rc;
}

/* One request, retried on a new connection when the router closed it. */
static int ask(struct rsip_client *c, int what, struct rsip_grant *g)
{
	for (int t = 0; t < 200; t++) {
		int rc = rsip_client_connected(c) ? 0 : rsip_client_register(c);

		if (!rc)
			rc = what == 0 ? 0 : what == 1 ? rsip_client_assign_ports(c, 0, (uint8_t)o.nports, 600, g)
						    : rsip_client_assign_spi(c, 0, 0, 600, g);
		if (rc == 0)
			return 0;
		if (rc > 0 && rc != RSIP_E_INTERNAL_SERVER_ERROR)
			return rc;
		rsip_client_close(c);
		pthread_mutex_lock(&S.mu);
		S.retries++;
		pthread_mutex_unlock(&S.mu);
		/* jittered backoff up to ~50 ms: two routers' batches that lost
		 * a compare-and-swap to each other do not meet again */
		usleep(1000u * (1u + (unsigned)rand() % (unsigned)(t < 49 ? t + 2 : 50)));
	}
	return -ETIMEDOUT;
}

static void *storm_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct rsip_client c;
		struct rsip_grant g;
		char name[64];
		unsigned h, r;
		int rc = 0;

		pthread_mutex_lock(&S.mu);
		h = S.next_host < o.hosts ? S.next_host++ : UINT32_MAX;
		pthread_mutex_unlock(&S.mu);
		if (h == UINT32_MAX)
			return NULL;
		r = h % o.n_routers;
		snprintf(name, sizeof(name), "%s-%u", o.prefix, h);
		rsip_client_init(&c, o.routers[r], o.ports[r], name, S.secret[h], 5000);
		c.src_be = htonl(o.src + h);
		rc = ask(&c, 0, NULL);
		for (unsigned k = 0; !rc && k < o.assigns; k++)
			if (!(rc = ask(&c, 1, &g)))
				rc = keep(&g, RSIP_KIND_PORTS, h, r);
		if (!rc && !(rc = ask(&c, 2, &g)))
			rc = keep(&g, RSIP_KIND_SPI, h, r);
		if (rc) {
			fprintf(stderr, "cluster-bench: host %s at router %u: %s\n", name, r,
				rc > 0 ? rsip_error_name((uint16_t)rc) : strerror(-rc));
			pthread_mutex_lock(&S.mu);
			S.failed++;
			pthread_mutex_unlock(&S.mu);
		}
		rsip_client_close(&c);
		rsip_client_free_certs(&c);
	}
}

static int grant_cmp(const void *a, const void *b)
{
	const struct grant *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->kind == RSIP_KIND_PORTS && x->gaddr != y->gaddr)
		return x->gaddr < y->gaddr ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static unsigned overlaps(void)
{
	unsigned bad = 0;

	qsort(S.g, S.n, sizeof(*S.g), grant_cmp);
	for (size_t i = 1; i < S.n; i++) {
		const struct grant *p = &S.g[i - 1], *q = &S.g[i];

		if (p->kind == q->kind && (q->kind == RSIP_KIND_SPI || p->gaddr == q->gaddr) && q->first <= p->last) {
			if (bad++ < 5)
				fprintf(stderr, "cluster-bench: OVERLAP %s %u-%u (host %u, router %u) and %u-%u "
					"(host %u, router %u)\n", q->kind == RSIP_KIND_PORTS ? "ports" : "SPIs",
					p->first, p->last, p->host, p->router, q->first, q->last, q->host, q->router);
		}
	}
	return bad;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int parse_maps(const char *spec, struct xd_maps *m)
{
	char base[256];
	const char *c = strrchr(spec, ':');

	if (!c || (size_t)(c - spec) >= sizeof(base))
		return -EINVAL;
	snprintf(base, sizeof(base), "%.*s", (int)(c - spec), spec);
	return xd_maps_open(base, c + 1, m) ? -ENOENT : 0;
}

/* Enrol @name, retried for ~20 s (an etcd leader election answers 503). */
static int enrol(struct xd_store *st, const char *name, uint8_t sec[RSIP_SECRET_LEN])
{
	int rc = -EIO;

	for (int t = 0; t < 100 && (rc = xd_store_enroll_new(st, name, 0, sec)); t++)
		usleep(200 * 1000);
	if (rc)
		fprintf(stderr, "cluster-bench: enrol %s: %s\n", name, xd_store_error(st));
	return rc;
}

/* L allocations on router 0, each until the other router's maps hold it. */
static int latency(struct xd_store *st, double *med, double *p99, double *rtt)
{
	struct xd_maps m;
	struct rsip_client c;
	uint8_t sec[RSIP_SECRET_LEN];
	double *d = calloc(o.latency, sizeof(*d)), *t = calloc(o.latency, sizeof(*t));
	char name[64];
	unsigned got = 0, per = 0, hn = 0;
	int rc;

	if (!d || !t || parse_maps(o.maps, &m)) {
		free(d);
		free(t);
		fprintf(stderr, "cluster-bench: cannot open the maps %s\n", o.maps);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.fd = -1;
	for (unsigned i = 0; i < o.latency; i++) {
		struct rsip_grant g;
		double t0, t1;
		int64_t own = -1;

		if (!rsip_client_connected(&c) && per == 0) {
			/* a host holds at most 4096 ports: a fresh one every 1000 */
			snprintf(name, sizeof(name), "%s-lat%u", o.prefix, hn);
			if (enrol(st, name, sec))
				break;
			rsip_client_init(&c, o.routers[0], o.ports[0], name, sec, 5000);
			c.src_be = htonl(o.src + o.hosts + hn);
			hn++;
		}
		t0 = now_s();
		rc = rsip_client_connected(&c) ? 0 : rsip_client_register(&c);
		if (!rc)
			rc = rsip_client_assign_ports(&c, 0, 1, 600, &g);
		t1 = now_s();
		if (rc) {
			fprintf(stderr, "cluster-bench: latency allocation %u: %d\n", i, rc);
			rsip_client_close(&c);
			continue;
		}
		for (int k = 0; k < 200000 && (own = xd_ports_first_owned(&m, 0, g.first, g.first)) < 0; k++)
			usleep(20);
		if (own < 0) {
			fprintf(stderr, "cluster-bench: port %u never reached the other router's maps\n", g.first);
			continue;
		}
		d[got] = (now_s() - t1) * 1e3;
		t[got++] = (t1 - t0) * 1e3;
		if (++per == 1000) {
			rsip_client_close(&c);
			per = 0;
		}
	}
	rsip_client_close(&c);
	xd_maps_close(&m);
	if (got) {
		qsort(d, got, sizeof(*d), dcmp);
		qsort(t, got, sizeof(*t), dcmp);
		*med = d[got / 2];
		*p99 = d[(size_t)((got - 1) * 0.99)];
		*rtt = t[got / 2];
	}
	free(d);
	free(t);
	return got == o.latency ? 0 : -1;
}

static int storm(void)
{
	struct xd_store *st;
	pthread_t th[256];
	char err[256];
	double t0, t1, med = 0, p99 = 0, rtt = 0;
	unsigned nt = o.threads < o.hosts ? o.threads : o.hosts, bad, ports = 0, spis = 0;
	int rc = 0;

	if (xd_store_open(o.store, o.instance, 0, &st, err, sizeof(err))) {
		fprintf(stderr, "cluster-bench: %s\n", err);
		return 1;
	}
	S.secret = calloc(o.hosts, sizeof(*S.secret));
	for (unsigned h = 0; S.secret && h < o.hosts; h++) {
		char name[64];

		snprintf(name, sizeof(name), "%s-%u", o.prefix, h);
		if (enrol(st, name, S.secret[h])) {
			xd_store_close(st);
			return 1;
		}
	}
	t0 = now_s();
	for (unsigned i = 0; i < nt; i++)
		if (pthread_create(&th[i], NULL, storm_thread, NULL)) {
			nt = i;
			rc = 1;
		}
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	bad = overlaps();
	for (size_t i = 0; i < S.n; i++)
		*(S.g[i].kind == RSIP_KIND_PORTS ? &ports : &spis) += 1;
	if (o.latency && latency(st, &med, &p99, &rtt))
		rc = 1;
	printf("{\"store\": \"%s\", \"routers\": %u, \"hosts\": %u, \"registrations\": %u, "
	       "\"allocations\": %zu, \"port_grants\": %u, \"spi_grants\": %u, \"seconds\": %.3f, "
	       "\"allocations_per_s\": %.0f, \"ops_per_s\": %.0f, \"retries\": %u, \"failed_hosts\": %u, "
	       "\"overlaps\": %u",
	       strncmp(o.store, "etcd://", 7) ? "sqlite" : "etcd", o.n_routers, o.hosts, o.hosts - S.failed,
	       S.n, ports, spis, t1 - t0, (double)S.n / (t1 - t0), (double)(S.n + o.hosts - S.failed) / (t1 - t0),
	       S.retries, S.failed, bad);
	if (o.latency)
		printf(", \"latency_n\": %u, \"to_other_maps_ms_median\": %.2f, \"to_other_maps_ms_p99\": %.2f, "
		       "\"allocation_rtt_ms_median\": %.2f", o.latency, med, p99, rtt);
	printf("}\n");
	free(S.g);
	free(S.secret);
	xd_store_close(st);
	return rc || bad || S.failed ? 1 : 0;
}

/* deregister: hosts PREFIX-0 .. N-1 (as enrolled) leave, from their source
 * addresses, at the first router. */
static int deregister(void)
{
	struct xd_store *st;
	char err[256];
	unsigned bad = 0;

	if (xd_store_open(o.store, o.instance, 0, &st, err, sizeof(err))) {
		fprintf(stderr, "cluster-bench: %s\n", err);
		return 1;
	}
	for (unsigned h = 0; h < o.hosts; h++) {
		uint8_t sec[RSIP_SECRET_LEN];
		struct rsip_client c;
		char name[64];
		uint32_t lan;
		int rc;

		snprintf(name, sizeof(name), "%s-%u", o.prefix, h);
		if (st->ops->host_secret(st, name, sec, &lan)) {
			fprintf(stderr, "cluster-bench: %s: %s\n", name, xd_store_error(st));
			bad++;
			continue;
		}
		rsip_client_init(&c, o.routers[0], o.ports[0], name, sec, 5000);
		c.src_be = htonl(o.src + h);
		rc = ask(&c, 0, NULL);
		if (!rc)
			rc = rsip_client_deregister(&c);
		if (rc) {
			fprintf(stderr, "cluster-bench: deregister %s: %d\n", name, rc);
			bad++;
		}
		rsip_client_close(&c);
		rsip_client_free_certs(&c);
	}
	printf("{\"deregistered\": %u, \"failed\": %u}\n", o.hosts - bad, bad);
	xd_store_close(st);
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------ check */

struct ck { struct xd_store *st; struct xd_maps *m; unsigned bad, hosts; int64_t now; uint8_t *held;
	   struct xd_binding *b; size_t nb, capb; };

/* Every binding, read once (a scan per registration would read the whole
 * prefix once per host). */
static int load_binding(void *arg, const struct xd_binding *b)
{
	struct ck *k = arg;

	if (k->nb == k->capb) {
		size_t cap = k->capb ? k->capb * 2 : 1024;
		struct xd_binding *v = realloc(k->b, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		k->b = v;
		k->capb = cap;
	}
	k->b[k->nb++] = *b;
	return 0;
}

static void diff(struct ck *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diff(struct ck *k, const char *fmt, ...)
{
	va_list ap;

	if (k->bad++ < 20) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
}

struct runs { struct xd_run *r; size_t n, cap; uint32_t client; int kind; int64_t now; };

static int collect(void *arg, const struct xd_binding *b)
{
	struct runs *r = arg;

	if (b->client_id != r->client || b->kind != r->kind || b->state != RSIP_BIND_ACTIVE || b->until_ms <= r->now)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct xd_run *v = realloc(r->r, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->r = v;
		r->cap = cap;
	}
	r->r[r->n++] = (struct xd_run){ b->first, b->last };
	return 0;
}


static int check_client(void *arg, const struct xd_client *c)
{
	struct ck *k = arg;
	struct xdnat_host h;
	char a[INET_ADDRSTRLEN];

	if (!c->host_id)
		return 0;
	if (c->host_id < k->m->cfg.max_hosts)
		k->held[c->host_id] = 1;
	if (xd_host_get(k->m, c->host_id, &h)) {
		diff(k, "host %u (%s, %s) is in the store, not in the maps", c->host_id, c->name, xd_ipstr(c->lan, a));
		return 0;
	}
	if (h.lan_addr != c->lan || (int32_t)h.gaddr_index != c->gidx)
		diff(k, "host %u: the maps give LAN %s, global %u; the store %s, %d", c->host_id,
		     xd_ipstr(h.lan_addr, a), h.gaddr_index, c->name, c->gidx);
	k->hosts++;
	for (int kind = RSIP_KIND_PORTS; kind <= RSIP_KIND_SPI; kind++) {
		struct runs want = { .client = c->id, .kind = kind, .now = k->now };
		struct xd_run *have = NULL;
		size_t nh = 0;
		int rc = 0;

		for (size_t i = 0; !rc && i < k->nb; i++)
			rc = collect(&want, &k->b[i]);

		want.n = xd_runs_merge(want.r, want.n);
		if (!rc)
			rc = kind == RSIP_KIND_PORTS ? xd_ports_of(k->m, c->host_id, &have, &nh)
						     : xd_spis_of(k->m, c->host_id, &have, &nh);
		if (rc)
			diff(k, "host %u: cannot compare: %s", c->host_id, strerror(rc < 0 ? -rc : rc));
		else if (nh != want.n || (nh && memcmp(have, want.r, nh * sizeof(*have))))
			diff(k, "host %u (%s): %s differ: maps %zu runs (first %u-%u), store %zu runs (first %u-%u)",
			     c->host_id, c->name, kind == RSIP_KIND_PORTS ? "ports" : "SPIs", nh,
			     nh ? have[0].first : 0, nh ? have[0].last : 0, want.n, want.n ? want.r[0].first : 0,
			     want.n ? want.r[0].last : 0);
		free(have);
		free(want.r);
	}
	return 0;
}

static int check(void)
{
	struct xd_maps m;
	struct xd_store *st;
	struct ck k = { .now = (int64_t)rsip_now_ms() };
	char err[256];
	unsigned stale = 0;

	if (xd_store_open(o.store, o.instance, 0, &st, err, sizeof(err))) {
		fprintf(stderr, "cluster-bench: %s\n", err);
		return 1;
	}
	if (parse_maps(o.maps, &m)) {
		fprintf(stderr, "cluster-bench: cannot open the maps %s\n", o.maps);
		xd_store_close(st);
		return 1;
	}
	k.st = st;
	k.m = &m;
	k.held = calloc(m.cfg.max_hosts, 1);
	if (!k.held || st->ops->each_binding(st, load_binding, &k) || st->ops->each_client(st, check_client, &k))
		diff(&k, "cannot read the store: %s", xd_store_error(st));
	for (uint32_t id = 1; k.held && id < m.cfg.max_hosts; id++) {
		struct xdnat_host h;

		if (!k.held[id] && xd_host_get(&m, id, &h) == 0 && (h.flags & XDNAT_HOST_F_RSIP)) {
			stale++;
			diff(&k, "host %u is RSIP's in the maps, held by no registration of the store", id);
		}
	}
	printf("{\"maps\": \"%s\", \"hosts_checked\": %u, \"stale\": %u, \"differences\": %u}\n", o.maps,
	       k.hosts, stale, k.bad);
	free(k.held);
	free(k.b);
	xd_maps_close(&m);
	xd_store_close(st);
	return k.bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, NULL, 's' }, { "instance", required_argument, NULL, 'i' },
		{ "router", required_argument, NULL, 'r' }, { "src", required_argument, NULL, 'S' },
		{ "hosts", required_argument, NULL, 'H' }, { "assigns", required_argument, NULL, 'k' },
		{ "ports", required_argument, NULL, 'p' }, { "threads", required_argument, NULL, 't' },
		{ "prefix", required_argument, NULL, 'P' }, { "latency", required_argument, NULL, 'L' },
		{ "maps", required_argument, NULL, 'm' }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	const char *mode = argc > 1 ? argv[1] : "";
	struct in_addr a;
	int c;

	xd_progname = "cluster-bench";
	if (!strcmp(mode, "--help") || !strcmp(mode, "-h")) {
		usage(stdout);
		return 0;
	}
	if (strcmp(mode, "storm") && strcmp(mode, "check") && strcmp(mode, "deregister")) {
		usage(stderr);
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *colon;

		switch (c) {
		case 's': o.store = optarg; break;
		case 'i': o.instance = optarg; break;
		case 'P': o.prefix = optarg; break;
		case 'm': o.maps = optarg; break;
		case 'H': o.hosts = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': o.assigns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': o.nports = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': o.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'L': o.latency = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S':
			if (inet_pton(AF_INET, optarg, &a) != 1) {
				fprintf(stderr, "cluster-bench: --src: not an IPv4 address: %s\n", optarg);
				return 2;
			}
			o.src = ntohl(a.s_addr);
			break;
		case 'r':
			if (o.n_routers == MAX_ROUTERS) {
				fprintf(stderr, "cluster-bench: at most %d routers\n", MAX_ROUTERS);
				return 2;
			}
			colon = strchr(optarg, ':');
			if (colon)
				*colon = 0;
			if (inet_pton(AF_INET, optarg, &a) != 1) {
				fprintf(stderr, "cluster-bench: --router: not an IPv4 address: %s\n", optarg);
				return 2;
			}
			o.routers[o.n_routers] = a.s_addr;
			o.ports[o.n_routers++] = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : RSIP_DEFAULT_PORT;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.store || !o.instance || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(mode, "check")) {
		if (!o.maps) {
			fprintf(stderr, "cluster-bench: check needs --maps\n");
			return 2;
		}
		return check();
	}
	if (!o.n_routers || !o.src || o.hosts < 1 || o.hosts > 20000 || o.nports < 1 || o.nports > 255 ||
	    o.threads < 1 || o.threads > 256 || (o.latency && !o.maps)) {
		fprintf(stderr, "cluster-bench: storm needs --router, --src, --hosts 1-20000, --ports 1-255, "
			"--threads 1-256 (and --maps with --latency)\n");
		return 2;
	}
	return strcmp(mode, "deregister") ? storm() : deregister();
}
