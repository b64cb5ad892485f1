/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A private, throwaway etcd member for a Criterion test (test_store_etcd,
 * test_cluster_elect): free loopback ports, a fresh directory for its data
 * and log, started from ETCD (default /usr/bin/etcd; a missing etcd fails
 * the test), waited for until the store opens on it, stopped and removed.
 * Header-only: each test binary links its one object (see the Makefile).
 *
 * Use: etcd_member_prepare(), then whatever the member needs in m->dir
 * (certificates), etcd_member_spawn(), etcd_member_open() with a location
 * built from m->cport; etcd_member_stop() in the suite's fini.
 */
#ifndef XDNAT_SELFTESTS_ETCD_MEMBER_H
#define XDNAT_SELFTESTS_ETCD_MEMBER_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "store.h"

struct etcd_member {
	const char *bin;
	char dir[64];    /* data/, etcd.log and the test's own files */
	char log[96];
	int cport, pport; /* client and peer ports on 127.0.0.1 */
	pid_t pid;       /* 0 once stopped (or killed by the test) */
};

/* A loopback TCP port nobody holds now. */
static inline int etcd_free_port(void)
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

/* Ports and the directory @name-XXXXXX: in /tmp, or on tmpfs (/dev/shm)
 * when @tmpfs and there is one (etcd fsyncs every Txn; a throwaway member
 * needs no durability). */
static inline void etcd_member_prepare(struct etcd_member *m, const char *name, bool tmpfs)
{
	const char *parent = tmpfs && !access("/dev/shm", W_OK) ? "/dev/shm" : "/tmp";

	m->pid = 0;
	m->cport = etcd_free_port();
	m->pport = etcd_free_port();
	m->bin = getenv("ETCD") ? getenv("ETCD") : "/usr/bin/etcd";
	cr_assert_eq(access(m->bin, X_OK), 0, "etcd not found at %s: install etcd-server "
		     "(scripts/deps.sh) or set ETCD", m->bin);
	snprintf(m->dir, sizeof(m->dir), "%s/%s-XXXXXX", parent, name);
	cr_assert_not_null(mkdtemp(m->dir));
	snprintf(m->log, sizeof(m->log), "%s/etcd.log", m->dir);
}

/* Runs the member, clients on @scheme://127.0.0.1:cport (peers on http),
 * with @extra (NULL-terminated, may be NULL) after the usual arguments. */
static inline void etcd_member_spawn(struct etcd_member *m, const char *scheme, const char *const *extra)
{
	char client[64], peer[64], cluster[80], data[96];
	const char *argv[32] = { m->bin, "--data-dir", data, "--listen-client-urls", client,
				 "--advertise-client-urls", client, "--listen-peer-urls", peer,
				 "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster };
	size_t n = 13;

	for (; extra && *extra; extra++) {
		cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1, "too many etcd arguments");
		argv[n++] = *extra;
	}
	argv[n] = NULL;
	snprintf(client, sizeof(client), "%s://127.0.0.1:%d", scheme, m->cport);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", m->pport);
	snprintf(cluster, sizeof(cluster), "default=%s", peer);
	snprintf(data, sizeof(data), "%s/data", m->dir);
	m->pid = fork();
	cr_assert_geq(m->pid, 0);
	if (!m->pid) {
		/* etcd dies with the test even if the test crashes */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || !freopen(m->log, "w", stderr) ||
		    !freopen("/dev/null", "w", stdout))
			_exit(126);
		execv(m->bin, (char *const *)argv);
		_exit(127);
	}
}

/* Fails the test if the member has exited. */
static inline void etcd_member_assert_running(const struct etcd_member *m)
{
	int status;

	cr_assert_eq(waitpid(m->pid, &status, WNOHANG), 0, "etcd exited (see %s)", m->log);
}

/* Opens the store at @loc into *@st once the member answers (a few
 * hundred ms), at most 10 s. */
static inline void etcd_member_open(const struct etcd_member *m, const char *loc, struct xd_store **st)
{
	char err[256];

	for (int i = 0; i < 200; i++) {
		if (xd_store_open(loc, "t", 0, st, err, sizeof(err)) == 0)
			return;
		etcd_member_assert_running(m);
		usleep(50 * 1000);
	}
	cr_assert_fail("etcd at %s did not answer: %s", loc, err);
}

/* Stops the member (if still running) and removes its directory. */
static inline void etcd_member_stop(struct etcd_member *m)
{
	char cmd[128];

	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, NULL, 0);
	}
	m->pid = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", m->dir);
	cr_assert_eq(system(cmd), 0);
}

#endif
