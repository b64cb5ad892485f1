// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store interface on its etcd backend (loader/store/store_etcd.c):
 * the same contract as the SQLite backend (store_contract.h), nested
 * transactions as one Txn, the ops not implemented yet, and two handles
 * (two routers) racing claim() on overlapping blocks: exactly one wins.
 * Every test starts its own etcd (ETCD, default /usr/bin/etcd) on free
 * loopback ports with a throwaway data directory; a missing etcd fails.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "lca_ext.h"
#include "store.h"
#include "store_etcd_int.h"

static char dir[64], loc[128];
static pid_t etcd_pid;
static struct xd_store *st;

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void start_etcd(void)
{
	const char *bin = getenv("ETCD") ? getenv("ETCD") : "/usr/bin/etcd";
	char client[64], peer[64], cluster[80], data[96], log[96], err[256];
	int cport = free_port(), pport = free_port();

	cr_assert_eq(access(bin, X_OK), 0, "etcd not found at %s: install etcd-server "
		     "(scripts/deps.sh) or set ETCD", bin);
	/* tmpfs when there is one: etcd fsyncs every Txn, and a throwaway
	 * member needs no durability (the race below runs 2,000 claims) */
	snprintf(dir, sizeof(dir), "%s/test_store_etcd-XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(client, sizeof(client), "http://127.0.0.1:%d", cport);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "default=%s", peer);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(log, sizeof(log), "%s/etcd.log", dir);
	etcd_pid = fork();
	cr_assert_geq(etcd_pid, 0);
	if (!etcd_pid) {
		/* etcd dies with the test even if the test crashes */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || !freopen(log, "w", stderr) ||
		    !freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(bin, bin, "--data-dir", data, "--listen-client-urls", client, "--advertise-client-urls",
		      client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		      "--initial-cluster", cluster, (char *)NULL);
		_exit(127);
	}
	snprintf(loc, sizeof(loc), "etcd://127.0.0.1:%d/xdnat-test", cport);
	/* Until it answers (a few hundred ms), at most 10 s. */
	for (int i = 0; i < 200; i++) {
		int status;

		if (xd_store_open(loc, "t", 0, &st, err, sizeof(err)) == 0)
			return;
		cr_assert_eq(waitpid(etcd_pid, &status, WNOHANG), 0, "etcd exited (see %s)", log);
		usleep(50 * 1000);
	}
	cr_assert_fail("etcd at %s did not answer: %s", loc, err);
}

static void setup(void)
{
	start_etcd();
}

static void teardown(void)
{
	char cmd[128];

	xd_store_close(st);
	st = NULL;
	if (etcd_pid > 0) {
		kill(etcd_pid, SIGTERM);
		waitpid(etcd_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(store_etcd, .init = setup, .fini = teardown);

#include "store_contract.h"

Test(store_etcd, enrolments) { contract_enrolments(); }
Test(store_etcd, registrations) { contract_registrations(); }
Test(store_etcd, bindings) { contract_bindings(); }
Test(store_etcd, listing_counts_settings) { contract_listing_counts_settings(); }

Test(store_etcd, nested_transactions_are_one_txn)
{
	uint8_t sec[RSIP_SECRET_LEN];
	struct xd_store *s2;
	char err[256];
	uint32_t lan;

	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "a", 0, sec), 0);
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "b", 0, sec), 0);
	st->ops->rollback(st);                 /* undoes b only */
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "c", 0, sec), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	/* Read your writes inside, nothing outside before the outer commit. */
	cr_assert_eq(st->ops->host_secret(st, "c", sec, &lan), 0);
	cr_assert_eq(s2->ops->host_secret(s2, "a", sec, &lan), -ENOENT);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(s2->ops->host_secret(s2, "a", sec, &lan), 0);
	cr_assert_eq(s2->ops->host_secret(s2, "c", sec, &lan), 0);
	cr_assert_eq(s2->ops->host_secret(s2, "b", sec, &lan), -ENOENT);
	cr_assert_eq(st->ops->commit(st), -EINVAL, "commit without begin");
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "d", 0, sec), 0);
	st->ops->rollback(st);
	cr_assert_eq(st->ops->host_secret(st, "d", sec, &lan), -ENOENT);
	xd_store_close(s2);
}

/* A unit whose guarded read changed meanwhile commits nothing. */
Test(store_etcd, a_stale_unit_fails_as_a_whole)
{
	struct xd_store *s2;
	char err[256];
	uint32_t cid, b;
	struct xd_claim c = { .host_id = 1, .kind = RSIP_KIND_PORTS, .first = 100, .last = 199,
			      .until_ms = 9, .now_ms = 1 };
	int64_t v[4];

	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &cid), 0);
	c.client_id = cid;
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(st->ops->claim(st, &c, &b), 0);          /* buffered */
	c.first = 150;
	c.last = 160;
	cr_assert_eq(s2->ops->claim(s2, &c, &b), 0, "%s", xd_store_error(s2));   /* the other router */
	cr_assert_eq(st->ops->commit(st), -EAGAIN);
	cr_assert_not_null(strstr(xd_store_error(st), "changed meanwhile"), "%s", xd_store_error(st));
	cr_assert_eq(s2->ops->counts(s2, v), 0);
	cr_assert_eq(v[2], 1, "only the other router's block");
	xd_store_close(s2);
}

Test(store_etcd, ops_not_implemented_say_so)
{
	struct lca_err e = { { 0 } };
	struct xd_ctr_state s;

	cr_assert_eq(st->ops->ctr_load(st, "g", &s), -EOPNOTSUPP);
	cr_assert_not_null(strstr(xd_store_error(st), "not implemented"), "%s", xd_store_error(st));
	cr_assert_eq(st->ops->ca_init(st, &e), -EOPNOTSUPP);
	cr_assert_not_null(strstr(e.msg, "not implemented"), "%s", e.msg);
	cr_assert_eq(st->ops->cert_announced(st, "0abc", 1), -EOPNOTSUPP);
}

Test(store_etcd, open_errors)
{
	struct xd_store *s2 = NULL;
	char err[256];

	cr_assert_eq(xd_store_open("etcd://127.0.0.1:1/x", "t", 0, &s2, err, sizeof(err)), -EIO);
	cr_assert_null(s2);
	cr_assert_not_null(strstr(err, "etcd http://127.0.0.1:1"), "%s", err);
	cr_assert_eq(xd_store_open("etcd://", "t", 0, &s2, err, sizeof(err)), -EINVAL);
	cr_assert_eq(xd_store_open(loc, "../x", 0, &s2, err, sizeof(err)), -EINVAL);
}

/* ------------------------------------------------ two routers, one store */

#define RACES 1000

struct racer {
	struct xd_store *st;
	uint32_t cid;
	pthread_barrier_t *bar;
	int wins[RACES], busy, other;
};

/* Round i: both claim overlapping blocks around 10 * i (ports 1000..).
 * Router A takes [b, b+5], router B [b+3, b+9]. */
static void *race(void *arg)
{
	struct racer *r = arg;
	bool a = r->cid == 1;

	for (int i = 0; i < RACES; i++) {
		uint32_t base = 1000 + 10 * (uint32_t)i, id;
		struct xd_claim c = { .client_id = r->cid, .host_id = r->cid, .kind = RSIP_KIND_PORTS,
				      .first = a ? base : base + 3, .last = a ? base + 5 : base + 9,
				      .until_ms = 1, .now_ms = 1 };
		int rc;

		pthread_barrier_wait(r->bar);
		rc = r->st->ops->claim(r->st, &c, &id);
		r->wins[i] = rc == 0;
		if (rc == -EBUSY)
			r->busy++;
		else if (rc)
			r->other++;
	}
	return NULL;
}

Test(store_etcd, two_routers_race_claim_exactly_one_wins, .timeout = 300)
{
	struct racer ra = { 0 }, rb = { 0 };
	pthread_barrier_t bar;
	pthread_t ta, tb;
	char err[256];
	unsigned a_won = 0;
	int64_t v[4];
	struct timespec t0, t1;

	cr_assert_eq(st->ops->client_add(st, "ra", 11, 1, &ra.cid), 0);
	cr_assert_eq(st->ops->client_add(st, "rb", 12, 1, &rb.cid), 0);
	cr_assert_eq(ra.cid, 1);
	cr_assert_eq(xd_store_open(loc, "t", 0, &ra.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_open(loc, "t", 0, &rb.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pthread_barrier_init(&bar, NULL, 2), 0);
	ra.bar = rb.bar = &bar;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(pthread_create(&ta, NULL, race, &ra), 0);
	cr_assert_eq(pthread_create(&tb, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < RACES; i++) {
		cr_assert_eq(ra.wins[i] + rb.wins[i], 1, "round %d: %d winners", i, ra.wins[i] + rb.wins[i]);
		a_won += (unsigned)ra.wins[i];
	}
	cr_assert_eq(ra.other + rb.other, 0, "errors other than -EBUSY");
	cr_assert_eq(st->ops->counts(st, v), 0);
	cr_assert_eq(v[2], RACES, "%lld blocks in the store", (long long)v[2]);
	cr_log_info("%d races: router A won %u, B %u; %llu + %llu reruns after a failed compare; "
		    "%.0f claims/s", RACES, a_won, RACES - a_won,
		    (unsigned long long)ET(ra.st)->retries, (unsigned long long)ET(rb.st)->retries,
		    2.0 * RACES / ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9));
	xd_store_close(ra.st);
	xd_store_close(rb.st);
}
