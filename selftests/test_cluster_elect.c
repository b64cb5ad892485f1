// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The cluster's elections (loader/daemon/cluster_elect.c): the decisions
 * on a simulated clock (when a router acts, steps down, may expire; the
 * grace after an outage and after winning), and the etcd side
 * (loader/store/store_etcd_lease.c) against a real etcd started by the
 * test (ETCD, default /usr/bin/etcd): one winner per role, a role follows
 * its lease, a resigned or revoked role goes to the other candidate.
 */
#include <criterion/criterion.h>
#include <errno.h>
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
#include "cluster_elect.h"
#include "store.h"
#include "store_etcd_lease.h"

/* ------------------------------------------------- decisions, simulated */

#define TTL 10
#define GRACE 34

Test(elect_logic, acts_only_after_a_keepalive_and_until_half_the_ttl)
{
	struct xd_elect_state s;

	xd_elect_init(&s, TTL, GRACE);
	s.want[XD_ROLE_EXPIRY] = true;
	xd_elect_result(&s, XD_ROLE_EXPIRY, 1, "r1", 1000);
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_EXPIRY, 1000), "no keepalive answered yet");
	xd_elect_ok(&s, 1000, 1010);
	cr_assert(xd_elect_acting(&s, XD_ROLE_EXPIRY, 1010));
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_SIGNER, 1010), "a role not won");
	/* keepalives fail from here: acting until sent + TTL/2, not after */
	xd_elect_fail(&s, 2000);
	xd_elect_fail(&s, 2500);
	cr_assert(xd_elect_acting(&s, XD_ROLE_EXPIRY, 1000 + TTL * 500 - 1));
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_EXPIRY, 1000 + TTL * 500));
	/* the margin: etcd keeps the key at least until sent + TTL */
	cr_assert_lt(1000 + TTL * 500, 1000 + TTL * 1000);
}

Test(elect_logic, a_later_keepalive_counts_from_its_sending)
{
	struct xd_elect_state s;

	xd_elect_init(&s, TTL, GRACE);
	xd_elect_result(&s, XD_ROLE_SIGNER, 1, "r1", 0);
	xd_elect_ok(&s, 3000, 3500);
	xd_elect_ok(&s, 2000, 3600);      /* an older answer arriving late changes nothing */
	cr_assert_eq(s.last_ok_ms, 3000);
	cr_assert(xd_elect_acting(&s, XD_ROLE_SIGNER, 3000 + TTL * 500 - 1));
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_SIGNER, 3000 + TTL * 500));
}

Test(elect_logic, no_expiry_during_an_outage_nor_for_the_grace_after)
{
	struct xd_elect_state s;
	uint64_t t = 100000;

	xd_elect_init(&s, TTL, GRACE);
	xd_elect_ok(&s, t, t);
	xd_elect_result(&s, XD_ROLE_EXPIRY, 1, "r1", t);
	/* winning the role holds expiry for the grace */
	cr_assert_not(xd_elect_may_expire(&s, t + 1000));
	t += GRACE * 1000;
	xd_elect_ok(&s, t, t);
	cr_assert(xd_elect_may_expire(&s, t));
	/* one failed request is not an outage */
	xd_elect_fail(&s, t + 50);
	cr_assert(xd_elect_store_ok(&s));
	cr_assert(xd_elect_may_expire(&s, t + 60));
	/* quorum lost: the second fails too; nothing expires, also while still acting */
	xd_elect_fail(&s, t + 100);
	cr_assert_not(xd_elect_store_ok(&s));
	cr_assert(xd_elect_acting(&s, XD_ROLE_EXPIRY, t + 200));
	cr_assert_not(xd_elect_may_expire(&s, t + 200));
	cr_assert_eq(s.outages, 1);
	xd_elect_fail(&s, t + 600);        /* the same outage */
	cr_assert_eq(s.outages, 1);
	/* quorum back 20 s later: still the leader (lease alive), but held */
	xd_elect_ok(&s, t + 20000, t + 20010);
	cr_assert(xd_elect_store_ok(&s));
	cr_assert_eq(s.outage_end_ms, t + 20010);
	cr_assert(xd_elect_acting(&s, XD_ROLE_EXPIRY, t + 20010));
	cr_assert_not(xd_elect_may_expire(&s, t + 20010 + GRACE * 1000 - 1));
	xd_elect_ok(&s, t + 20010 + GRACE * 1000, t + 20010 + GRACE * 1000);
	cr_assert(xd_elect_may_expire(&s, t + 20010 + GRACE * 1000));
}

Test(elect_logic, losing_the_lease_or_the_campaign_ends_the_role)
{
	struct xd_elect_state s;

	xd_elect_init(&s, TTL, GRACE);
	xd_elect_ok(&s, 10, 10);
	xd_elect_result(&s, XD_ROLE_EXPIRY, 1, "r1", 10);
	xd_elect_result(&s, XD_ROLE_SIGNER, 1, "r1", 10);
	cr_assert_eq(s.elections_won, 2);
	xd_elect_lease_lost(&s);
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_EXPIRY, 11));
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_SIGNER, 11));
	cr_assert_eq(s.stepped_down, 2);
	xd_elect_ok(&s, 20, 20);
	xd_elect_result(&s, XD_ROLE_EXPIRY, 0, "r2", 20);
	cr_assert_not(xd_elect_acting(&s, XD_ROLE_EXPIRY, 21));
	cr_assert_str_eq(s.holder[XD_ROLE_EXPIRY], "r2");
	/* re-winning later holds expiry for a new grace */
	xd_elect_result(&s, XD_ROLE_EXPIRY, 1, "r1", 5000);
	cr_assert_eq(s.hold_until_ms, 5000 + GRACE * 1000);
}

/* --------------------------------------------------------- against etcd */

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
	snprintf(dir, sizeof(dir), "/tmp/test_cluster_elect-XXXXXX");
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

TestSuite(elect_etcd, .init = start_etcd, .fini = teardown);

Test(elect_etcd, one_winner_per_role_and_the_role_follows_the_lease)
{
	struct xd_etcd_lease *a, *b;
	int64_t la, lb, ttl;
	char err[256], h[64];

	cr_assert_eq(xd_etcd_lease_open(loc, "t", 2000, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_open(loc, "t", 2000, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_grant(a, 5, &la), 0, "%s", xd_etcd_lease_error(a));
	cr_assert_eq(xd_etcd_lease_grant(b, 5, &lb), 0, "%s", xd_etcd_lease_error(b));
	cr_assert_neq(la, lb);
	cr_assert_eq(xd_etcd_campaign(a, "expiry", "ra", la, h, sizeof(h)), 1, "%s", xd_etcd_lease_error(a));
	cr_assert_eq(xd_etcd_campaign(b, "expiry", "rb", lb, h, sizeof(h)), 0);
	cr_assert_str_eq(h, "ra");
	/* campaigning again while holding it: still ours (idempotent) */
	cr_assert_eq(xd_etcd_campaign(a, "expiry", "ra", la, h, sizeof(h)), 1);
	/* the other role is independent */
	cr_assert_eq(xd_etcd_campaign(b, "signer", "rb", lb, h, sizeof(h)), 1);
	cr_assert_eq(xd_etcd_leader(a, "signer", h, sizeof(h), &ttl), 1);
	cr_assert_str_eq(h, "rb");
	cr_assert_eq(ttl, lb, "the key is attached to rb's lease");
	cr_assert_eq(xd_etcd_lease_keepalive(a, la, &ttl), 0, "%s", xd_etcd_lease_error(a));
	cr_assert_gt(ttl, 0);
	/* a resigns: b wins at its next campaign */
	cr_assert_eq(xd_etcd_resign(a, "expiry", "ra"), 0);
	cr_assert_eq(xd_etcd_campaign(b, "expiry", "rb", lb, h, sizeof(h)), 1);
	/* resigning a role one does not hold deletes nothing */
	cr_assert_eq(xd_etcd_resign(a, "expiry", "ra"), 0);
	cr_assert_eq(xd_etcd_leader(a, "expiry", h, sizeof(h), NULL), 1);
	cr_assert_str_eq(h, "rb");
	/* b's lease revoked (a clean stop): its keys go, a takes both */
	cr_assert_eq(xd_etcd_lease_revoke(b, lb), 0);
	cr_assert_eq(xd_etcd_leader(a, "expiry", h, sizeof(h), NULL), 0);
	cr_assert_eq(xd_etcd_campaign(a, "expiry", "ra", la, h, sizeof(h)), 1);
	cr_assert_eq(xd_etcd_campaign(a, "signer", "ra", la, h, sizeof(h)), 1);
	cr_assert_eq(xd_etcd_lease_keepalive(b, lb, &ttl), -ENOENT, "a revoked lease is gone");
	xd_etcd_lease_close(a);
	xd_etcd_lease_close(b);
}

Test(elect_etcd, an_unrenewed_lease_frees_the_role_after_its_ttl, .timeout = 20)
{
	struct xd_etcd_lease *a, *b;
	int64_t la, lb, ttl;
	char err[256], h[64];
	struct timespec t0, t1;
	double waited;

	cr_assert_eq(xd_etcd_lease_open(loc, "t", 2000, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_open(loc, "t", 2000, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_grant(a, 2, &la), 0);
	cr_assert_eq(xd_etcd_lease_grant(b, 10, &lb), 0);
	cr_assert_eq(xd_etcd_campaign(a, "expiry", "ra", la, h, sizeof(h)), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a stops renewing (killed): b polls as the thread does */
	while (xd_etcd_campaign(b, "expiry", "rb", lb, h, sizeof(h)) != 1) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		cr_assert_lt(t1.tv_sec - t0.tv_sec, 10, "the role stayed with a dead lease");
		usleep(100 * 1000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* never before the TTL (the safety of stopping at TTL/2) */
	cr_assert_geq(waited, 1.9, "taken over after %.2f s, before a's TTL of 2 s", waited);
	cr_assert_eq(xd_etcd_lease_keepalive(a, la, &ttl), -ENOENT);
	xd_etcd_lease_close(a);
	xd_etcd_lease_close(b);
}

/* SIGHUP/SIGUSR2 re-execute xdnatd: the new process takes the lease over,
 * so the roles do not move to another router for a restart (they did:
 * the old process revoked its lease on the way out). */
Test(elect_etcd, a_reexec_hands_the_lease_over_and_keeps_the_roles, .timeout = 30)
{
	const bool want[XD_ROLE_N] = { [XD_ROLE_EXPIRY] = true, [XD_ROLE_SIGNER] = true };
	struct xd_elect *a, *a2, *b;
	struct xd_etcd_lease *l;
	char err[256], h[64];
	int64_t lease_a, held_by;

	cr_assert_eq(unsetenv(XD_ELECT_LEASE_ENV), 0);
	cr_assert_eq(xd_elect_start(&a, loc, "t", "ra", 10, 0, want), 0);
	cr_assert(xd_elect_is(a, XD_ROLE_EXPIRY) && xd_elect_is(a, XD_ROLE_SIGNER));
	cr_assert_eq(xd_elect_start(&b, loc, "t", "rb", 10, 0, want), 0);
	cr_assert_not(xd_elect_is(b, XD_ROLE_EXPIRY));
	lease_a = a->lease;
	xd_elect_handover(a);
	cr_assert_not_null(getenv(XD_ELECT_LEASE_ENV), "the lease id is not handed over");
	cr_assert_eq(xd_elect_start(&a2, loc, "t", "ra", 10, 0, want), 0);
	cr_assert_null(getenv(XD_ELECT_LEASE_ENV), "the lease id stays in the environment");
	cr_assert_eq(a2->lease, lease_a, "a new lease after the re-exec");
	cr_assert(xd_elect_is(a2, XD_ROLE_EXPIRY) && xd_elect_is(a2, XD_ROLE_SIGNER),
		  "the roles were lost across the re-exec");
	cr_assert_eq(xd_etcd_lease_open(loc, "t", 2000, &l, err, sizeof(err)), 0, "%s", err);
	for (int r = 0; r < XD_ROLE_N; r++) {
		cr_assert_eq(xd_etcd_leader(l, xd_role_names[r], h, sizeof(h), &held_by), 1);
		cr_assert_str_eq(h, "ra");
		cr_assert_eq(held_by, lease_a);
	}
	cr_assert_not(xd_elect_is(b, XD_ROLE_EXPIRY));
	/* a plain stop still revokes: b takes over at its next round */
	xd_elect_stop(a2);
	cr_assert_eq(xd_etcd_leader(l, "expiry", h, sizeof(h), NULL), 0, "the role outlived the stop");
	xd_etcd_lease_close(l);
	xd_elect_stop(b);
}

Test(elect_etcd, an_unreachable_store_is_an_error_not_a_lost_lease)
{
	struct xd_etcd_lease *a;
	int64_t la, ttl;
	int rc;
	char err[256];

	cr_assert_eq(xd_etcd_lease_open(loc, "t", 1000, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_grant(a, 30, &la), 0);
	kill(etcd_pid, SIGKILL);
	waitpid(etcd_pid, NULL, 0);
	etcd_pid = 0;
	rc = xd_etcd_lease_keepalive(a, la, &ttl);
	cr_assert(rc < 0 && rc != -ENOENT, "an unreachable etcd is not a lost lease: %d", rc);
	cr_assert_neq(strstr(xd_etcd_lease_error(a), "etcd"), NULL, "%s", xd_etcd_lease_error(a));
	xd_etcd_lease_close(a);
}

Test(elect_etcd, only_an_etcd_store_elects)
{
	struct xd_store *sq;
	struct xd_etcd_lease *a;
	char err[256], d[64] = "/tmp/test_cluster_elect-sq-XXXXXX";

	cr_assert_not_null(mkdtemp(d));
	cr_assert_eq(xd_store_open(d, "t", 0, &sq, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_etcd_lease_open(d, "t", 1000, &a, err, sizeof(err)), -EINVAL);
	cr_assert_neq(strstr(err, "etcd"), NULL);
	xd_store_close(sq);
	snprintf(err, sizeof(err), "rm -rf %s", d);
	cr_assert_eq(system(err), 0);
}
