// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Elections and quorum loss: see cluster_elect.h.  The decisions are the
 * pure functions xd_elect_* on struct xd_elect_state (unit-tested in
 * selftests/test_cluster_elect.c); the thread below feeds them the
 * outcome of its etcd requests, and the event loop reads them under the
 * mutex.  The thread prints its transitions itself (one line each), with
 * stdio only: xd_err's capture buffer belongs to the event loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "xdnatd.h"
#include "store_etcd_lease.h"

const char *const xd_role_names[XD_ROLE_N] = { "expiry", "signer" };

uint64_t xd_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------- the decisions */

void xd_elect_init(struct xd_elect_state *s, unsigned ttl_s, unsigned grace_s)
{
	memset(s, 0, sizeof(*s));
	s->ttl_s = ttl_s < 2 ? 2 : ttl_s;
	s->grace_s = grace_s;
	s->store_ok = true;    /* it answered when the store was opened */
}

void xd_elect_ok(struct xd_elect_state *s, uint64_t sent_ms, uint64_t now_ms)
{
	if (!s->store_ok) {
		/* Quorum is back: hosts get a whole grace to renew first. */
		s->store_ok = true;
		s->outage_end_ms = now_ms;
		if (now_ms + s->grace_s * 1000ull > s->hold_until_ms)
			s->hold_until_ms = now_ms + s->grace_s * 1000ull;
	}
	s->ever_ok = true;
	s->fails = 0;
	if (sent_ms > s->last_ok_ms)
		s->last_ok_ms = sent_ms;
}

void xd_elect_fail(struct xd_elect_state *s, uint64_t now_ms)
{
	/* One slow answer on a busy machine is not an outage: two failures
	 * in a row are (the roles do not wait for this: see acting). */
	if (!s->store_ok || ++s->fails < XD_ELECT_FAILS)
		return;
	s->store_ok = false;
	s->outage_start_ms = now_ms;
	s->outages++;
}

void xd_elect_lease_lost(struct xd_elect_state *s)
{
	for (int r = 0; r < XD_ROLE_N; r++) {
		if (s->leader[r])
			s->stepped_down++;
		s->leader[r] = false;
	}
	s->last_ok_ms = 0;
}

void xd_elect_result(struct xd_elect_state *s, int role, int won, const char *holder, uint64_t now_ms)
{
	if (role < 0 || role >= XD_ROLE_N)
		return;
	snprintf(s->holder[role], sizeof(s->holder[role]), "%s", holder ? holder : "");
	if (won && !s->leader[role]) {
		s->leader[role] = true;
		s->won_ms[role] = now_ms;
		s->elections_won++;
		/* A new expiry worker: the hosts whose renewals went to a dying
		 * router get a whole grace to find this one. */
		if (role == XD_ROLE_EXPIRY && now_ms + s->grace_s * 1000ull > s->hold_until_ms)
			s->hold_until_ms = now_ms + s->grace_s * 1000ull;
	} else if (!won && s->leader[role]) {
		s->leader[role] = false;
		s->stepped_down++;
	}
}

/* ttl/2 after the last keepalive that etcd answered: the lease (and so the
 * leader key) lives at least ttl after it, so another router cannot have
 * won yet, with ttl/2 to spare for the act under way and clock rates. */
bool xd_elect_acting(const struct xd_elect_state *s, int role, uint64_t now_ms)
{
	return role >= 0 && role < XD_ROLE_N && s->leader[role] && s->last_ok_ms &&
	       now_ms < s->last_ok_ms + s->ttl_s * 500ull;
}

bool xd_elect_may_expire(const struct xd_elect_state *s, uint64_t now_ms)
{
	return xd_elect_acting(s, XD_ROLE_EXPIRY, now_ms) && s->store_ok && now_ms >= s->hold_until_ms;
}

bool xd_elect_store_ok(const struct xd_elect_state *s)
{
	return s->store_ok;
}

/* ------------------------------------------------------------ the thread */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("xdnatd: cluster: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

/* A request failed (the mutex held): say so when the store becomes unavailable. */
static void failed(struct xd_elect *e)
{
	bool was = e->s.store_ok;

	xd_elect_fail(&e->s, e->now_ms());
	if (was && !e->s.store_ok)
		say("store unavailable (%s): RSIP requests refused, nothing expires, "
		    "forwarding goes on", xd_etcd_lease_error(e->lease_cl));
}

/* One round: keep the lease (or get one), then campaign for each role. */
static bool round_once(struct xd_elect *e)
{
	struct xd_elect_state *s = &e->s;
	uint64_t sent = e->now_ms();
	int64_t lease = e->lease, got = 0, ttl = 0;
	bool was_ok, ok;
	int rc = lease ? xd_etcd_lease_keepalive(e->lease_cl, lease, &ttl)
		       : xd_etcd_lease_grant(e->lease_cl, s->ttl_s, &got);

	pthread_mutex_lock(&e->mu);
	was_ok = s->store_ok;
	if (rc == -ENOENT) {
		/* etcd answered, but our lease is gone (we were cut off longer
		 * than the TTL): every role is lost; a new lease next round. */
		say("lease %" PRIx64 " expired in etcd: no role held until re-elected", (uint64_t)lease);
		xd_elect_lease_lost(s);
		xd_elect_ok(s, 0, e->now_ms());
		e->lease = 0;
	} else if (rc) {
		failed(e);
	} else {
		if (!lease)
			e->lease = got;
		xd_elect_ok(s, sent, e->now_ms());
		if (!was_ok)
			say("store answers again after %" PRIu64 " ms: RSIP resumes; no lease or "
			    "quarantine expires for %u s (grace)", s->outage_end_ms - s->outage_start_ms,
			    s->grace_s);
	}
	/* Past ttl/2 without a keepalive: stop acting before anyone can win. */
	for (int r = 0; r < XD_ROLE_N; r++) {
		if (s->leader[r] && !xd_elect_acting(s, r, e->now_ms())) {
			say("no longer the %s (no keepalive for %u s, half the lease TTL)",
			    xd_role_names[r], s->ttl_s / 2);
			xd_elect_result(s, r, 0, "", e->now_ms());
		}
	}
	ok = rc == 0;
	lease = e->lease;
	pthread_mutex_unlock(&e->mu);
	for (int r = 0; ok && r < XD_ROLE_N; r++) {
		char holder[XD_ELECT_ID_MAX];
		bool had;

		if (!e->s.want[r])
			continue;
		rc = xd_etcd_campaign(e->lease_cl, xd_role_names[r], e->id, lease, holder, sizeof(holder));
		pthread_mutex_lock(&e->mu);
		had = s->leader[r];
		if (rc < 0) {
			failed(e);
			ok = false;
		} else {
			xd_elect_result(s, r, rc, holder, e->now_ms());
			if (!had && rc == 1)
				say("elected %s (router %s, lease %" PRIx64 ", TTL %u s)%s", xd_role_names[r],
				    e->id, (uint64_t)lease, s->ttl_s,
				    r == XD_ROLE_EXPIRY ? "; expiring after the grace" : "");
			else if (had && rc == 0)
				say("lost the %s role to %s", xd_role_names[r], holder);
		}
		pthread_mutex_unlock(&e->mu);
	}
	return ok;
}

static void *run(void *arg)
{
	struct xd_elect *e = arg;

	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		struct timespec ts;
		uint64_t wait;
		bool ok;

		pthread_mutex_unlock(&e->mu);
		ok = round_once(e);
		/* Five keepalives per TTL, so one or two lost ones do not cost
		 * the role; failing: try again soon, to notice quorum's return. */
		wait = ok ? e->s.ttl_s * 200ull : 500;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&e->mu);
		while (!e->stop && pthread_cond_timedwait(&e->cv, &e->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* The lease of the process this one replaced (xd_elect_handover): kept
 * alive from the first round, so its roles stay here.  Gone already (the
 * re-exec took longer than the TTL): the first keepalive says so and a new
 * lease is taken. */
static void adopt_lease(struct xd_elect *e)
{
	const char *v = getenv(XD_ELECT_LEASE_ENV);
	char *end;
	unsigned long long id;

	if (!v)
		return;
	errno = 0;
	id = strtoull(v, &end, 16);
	if (!errno && end != v && !*end && id && id <= INT64_MAX) {
		e->lease = (int64_t)id;
		say("keeping lease %llx of the process before the re-exec", id);
	} else {
		fprintf(stderr, "xdnatd: cluster: ignoring %s=%s (not a lease id)\n", XD_ELECT_LEASE_ENV, v);
	}
	unsetenv(XD_ELECT_LEASE_ENV);
}

int xd_elect_start(struct xd_elect **out, const char *state_dir, const char *instance,
		   const char *id, unsigned ttl_s, unsigned grace_s, const bool want[XD_ROLE_N])
{
	struct xd_elect *e = calloc(1, sizeof(*e));
	pthread_condattr_t ca;
	char err[256];
	int rc;

	*out = NULL;
	if (!e) {
		fprintf(stderr, "xdnatd: cluster: out of memory\n");
		return -ENOMEM;
	}
	xd_elect_init(&e->s, ttl_s, grace_s);
	memcpy(e->s.want, want, sizeof(e->s.want));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->now_ms = xd_mono_ms;
	/* Each request within a fifth of the TTL (at least 1 s): a dead
	 * endpoint is noticed well before ttl/2. */
	rc = xd_etcd_lease_open(state_dir, instance, e->s.ttl_s * 200u < 1000 ? 1000 : e->s.ttl_s * 200u,
				&e->lease_cl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "xdnatd: cluster: %s\n", err);
		free(e);
		return rc;
	}
	pthread_mutex_init(&e->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	adopt_lease(e);
	/* The first round before the loop starts: a router that can be the
	 * expiry worker knows it from the start. */
	round_once(e);
	rc = pthread_create(&e->thread, NULL, run, e);
	if (rc) {
		fprintf(stderr, "xdnatd: cluster: cannot start the election thread: %s\n", strerror(rc));
		xd_elect_stop(e);
		return -rc;
	}
	e->running = true;
	*out = e;
	return 0;
}

static void elect_end(struct xd_elect *e, bool revoke);

void xd_elect_stop(struct xd_elect *e)
{
	elect_end(e, true);
}

void xd_elect_handover(struct xd_elect *e)
{
	elect_end(e, false);
}

static void elect_end(struct xd_elect *e, bool revoke)
{
	if (!e)
		return;
	if (e->running) {
		pthread_mutex_lock(&e->mu);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	if (!revoke && e->lease) {
		char v[24];

		snprintf(v, sizeof(v), "%" PRIx64, (uint64_t)e->lease);
		if (setenv(XD_ELECT_LEASE_ENV, v, 1)) {
			fprintf(stderr, "xdnatd: cluster: cannot hand lease %s over: %s\n", v, strerror(errno));
			revoke = true;
		}
	}
	/* Revoking the lease deletes our leader keys: the others take over
	 * at their next round instead of after the TTL. */
	if (revoke && e->lease && xd_etcd_lease_revoke(e->lease_cl, e->lease))
		fprintf(stderr, "xdnatd: cluster: cannot revoke lease %" PRIx64 " (%s): the others "
			"take over when it expires\n", (uint64_t)e->lease, xd_etcd_lease_error(e->lease_cl));
	xd_etcd_lease_close(e->lease_cl);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

bool xd_elect_is(struct xd_elect *e, int role)
{
	bool r;

	pthread_mutex_lock(&e->mu);
	r = xd_elect_acting(&e->s, role, e->now_ms());
	pthread_mutex_unlock(&e->mu);
	return r;
}

bool xd_elect_expire_ok(struct xd_elect *e)
{
	bool r;

	pthread_mutex_lock(&e->mu);
	r = xd_elect_may_expire(&e->s, e->now_ms());
	pthread_mutex_unlock(&e->mu);
	return r;
}

bool xd_elect_available(struct xd_elect *e)
{
	bool r;

	pthread_mutex_lock(&e->mu);
	r = e->s.store_ok;
	pthread_mutex_unlock(&e->mu);
	return r;
}

void xd_elect_metrics(struct xd_elect *e, const char *instance, FILE *f)
{
	struct xd_elect_state s;
	uint64_t now;
	char id[XD_ELECT_ID_MAX];

	(void)instance;
	pthread_mutex_lock(&e->mu);
	s = e->s;
	now = e->now_ms();
	snprintf(id, sizeof(id), "%s", e->id);
	pthread_mutex_unlock(&e->mu);
	fprintf(f, "# HELP xdnat_cluster_leader 1 while this router acts in the role (elected through etcd).\n"
		   "# TYPE xdnat_cluster_leader gauge\n");
	for (int r = 0; r < XD_ROLE_N; r++)
		fprintf(f, "xdnat_cluster_leader{role=\"%s\",router=\"%s\",candidate=\"%d\"} %d\n",
			xd_role_names[r], id, s.want[r], xd_elect_acting(&s, r, now));
	fprintf(f, "# HELP xdnat_cluster_store_available 1 while the etcd store answers (0: quorum lost or unreachable).\n"
		   "# TYPE xdnat_cluster_store_available gauge\n"
		   "xdnat_cluster_store_available %d\n"
		   "# HELP xdnat_cluster_expiry_hold_seconds Seconds before the expiry worker may expire again (grace).\n"
		   "# TYPE xdnat_cluster_expiry_hold_seconds gauge\n"
		   "xdnat_cluster_expiry_hold_seconds %.1f\n"
		   "# HELP xdnat_cluster_store_outages_total Times the store stopped answering.\n"
		   "# TYPE xdnat_cluster_store_outages_total counter\n"
		   "xdnat_cluster_store_outages_total %" PRIu64 "\n"
		   "# HELP xdnat_cluster_elections_won_total Roles won by this router.\n"
		   "# TYPE xdnat_cluster_elections_won_total counter\n"
		   "xdnat_cluster_elections_won_total %" PRIu64 "\n",
		s.store_ok, s.hold_until_ms > now ? (double)(s.hold_until_ms - now) / 1000.0 : 0.0,
		s.outages, s.elections_won);
}

int xd_elect_metrics_append(struct xd_elect *e, char **body, size_t *len)
{
	char *more = NULL, *all;
	size_t n = 0;
	FILE *f = open_memstream(&more, &n);

	if (!f)
		return -ENOMEM;
	xd_elect_metrics(e, NULL, f);
	if (fclose(f) || !(all = realloc(*body, *len + n + 1))) {
		free(more);
		return -ENOMEM;
	}
	memcpy(all + *len, more, n + 1);
	*body = all;
	*len += n;
	free(more);
	return 0;
}

/* ------------------------------------------------------------ xdnatd */

static bool store_available(void *ctx)
{
	return xd_elect_available(ctx);
}

/* The daemon's election, for the issue() wrapper: the certificate ops share
 * one context (the Local CA's), which must stay theirs (release, ca_der). */
static struct xd_elect *signer_gate;

/* Certificates only from the signer: the others refuse the CSR (-EPERM:
 * BAD_PARAM to the host, which keeps its blocks and goes on without a new
 * certificate; docs/CLUSTER.md). */
static int issue_if_signer(void *ctx, const struct rsip_cert_req *rq, uint8_t **der, size_t *len)
{
	struct xd_elect *e = signer_gate;

	if (!e)
		return -EIO;   /* not installed (cannot happen) */
	if (!xd_elect_is(e, XD_ROLE_SIGNER)) {
		e->refused_issue++;
		xd_warn("certificate for '%s' refused: this router is not the cluster's signer "
			"(xdnatctl cluster)", rq->name);
		return -EPERM;
	}
	return e->issue(ctx, rq, der, len);
}

int xdd_start_cluster(struct daemon *d)
{
	bool want[XD_ROLE_N] = { [XD_ROLE_EXPIRY] = true, [XD_ROLE_SIGNER] = d->ca != NULL };
	char id[XD_ELECT_ID_MAX];
	int rc;

	if (!d->rsip_on || strcmp(d->rsip.st->ops->name, "etcd"))
		return 0;   /* one router, its own store: it does everything */
	/* [store] router-id, else the host name (two routers need two names) */
	snprintf(id, sizeof(id), "%s", xd_store_router_id());
	/* Hosts get one (default) lease plus their longest retry interval to
	 * renew after an outage or a change of expiry worker. */
	rc = xd_elect_start(&d->elect, d->o.rcfg.state_dir ? d->o.rcfg.state_dir : XDNAT_STATE_DIR,
			    d->o.instance, id, d->o.elect_ttl,
			    d->o.rcfg.lease_default + XD_HOST_RETRY_MAX_S, want);
	if (rc)
		return rc;
	d->rsip.available = store_available;
	d->rsip.available_ctx = d->elect;
	if (d->ca && d->rsip.certs.issue) {
		d->elect->issue = d->rsip.certs.issue;
		signer_gate = d->elect;
		d->rsip.certs.issue = issue_if_signer;
	}
	printf("xdnatd: cluster: router %s, lease TTL %u s, candidate for expiry%s; grace %u s\n",
	       id, d->o.elect_ttl, want[XD_ROLE_SIGNER] ? " and signer" : "",
	       d->o.rcfg.lease_default + XD_HOST_RETRY_MAX_S);
	fflush(stdout);
	return 0;
}

static struct xd_elect *detach_cluster(struct daemon *d)
{
	struct xd_elect *e = d->elect;

	if (!e)
		return NULL;
	d->rsip.available = NULL;
	if (d->rsip.certs.issue == issue_if_signer)
		d->rsip.certs.issue = e->issue;
	signer_gate = NULL;
	d->mctx.elect = NULL;
	d->elect = NULL;
	return e;
}

void xdd_stop_cluster(struct daemon *d)
{
	xd_elect_stop(detach_cluster(d));
}

void xdd_handover_cluster(struct daemon *d)
{
	xd_elect_handover(detach_cluster(d));
}

int xdd_sweep(struct daemon *d)
{
	if (d->elect && !xd_elect_expire_ok(d->elect))
		return 1000;   /* another router expires, or nobody may now */
	return rsip_server_sweep(&d->rsip);
}

bool xdd_may_sign(struct daemon *d)
{
	return !d->elect || xd_elect_is(d->elect, XD_ROLE_SIGNER);
}
