// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store interface on its etcd backend (loader/store/store_etcd.c):
 * the same contract as the SQLite backend (store_contract.h), nested
 * transactions as one Txn, the [store] configuration (failover to the next
 * member, timeouts, TLS with client certificates), counters per router,
 * the CA's serials and CRL numbers given once across handles, and two
 * handles (two routers) racing claim() on overlapping blocks: exactly one
 * wins.
 * Every test starts its own etcd (ETCD, default /usr/bin/etcd) on free
 * loopback ports with a throwaway data directory; a missing etcd fails.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "counters.h"
#include "lca.h"
#include "rsip_client.h"
#include "rsip_server.h"
#include "etcd_member.h"
#include "store.h"
#include "store_etcd_int.h"

static struct etcd_member etcd;
static char loc[128], prefix[48];
static struct xd_store *st;

/* A CA, a server certificate for 127.0.0.1 and a client certificate,
 * made with the openssl tool in the member's directory. */
static void make_tls_files(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "(cd %s && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
		 "-out ca.pem -days 2 -subj /CN=test-ca && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key "
		 "-out srv.csr -subj /CN=127.0.0.1 && openssl x509 -req -in srv.csr -CA ca.pem "
		 "-CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile san.ext && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cli.key "
		 "-out cli.csr -subj /CN=router && openssl x509 -req -in cli.csr -CA ca.pem "
		 "-CAkey ca.key -CAcreateserial -out cli.pem -days 2) >/dev/null 2>&1", etcd.dir);
	cr_assert_eq(system(cmd), 0, "openssl could not make the test certificates");
}

/* TLS: https:// only, client certificates required. */
static void tls_config(int cport, const char *client_cert)
{
	static char eps[64], ca[96], cert[96], key[96];
	struct xd_store_cfg c = { .backend = XD_STORE_ETCD, .endpoints = eps, .cacert = ca,
				  .prefix = prefix };
	char err[256];

	snprintf(eps, sizeof(eps), "https://127.0.0.1:%d", cport);
	snprintf(ca, sizeof(ca), "%s/ca.pem", etcd.dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", etcd.dir, client_cert);
	snprintf(key, sizeof(key), "%s/%s.key", etcd.dir, client_cert);
	if (client_cert) {
		c.cert = cert;
		c.key = key;
	}
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
}

static void start_etcd(bool tls)
{
	char srv[3][96];
	const char *const tls_args[] = { "--cert-file", srv[0], "--key-file", srv[1], "--client-cert-auth",
					 "--trusted-ca-file", srv[2], NULL };

	/* tmpfs: the race below runs 2,000 claims */
	etcd_member_prepare(&etcd, "test_store_etcd", true);
	if (tls)
		make_tls_files();
	snprintf(srv[0], sizeof(srv[0]), "%s/srv.pem", etcd.dir);
	snprintf(srv[1], sizeof(srv[1]), "%s/srv.key", etcd.dir);
	snprintf(srv[2], sizeof(srv[2]), "%s/ca.pem", etcd.dir);
	etcd_member_spawn(&etcd, tls ? "https" : "http", tls ? tls_args : NULL);
	/* Criterion runs tests in parallel, each with its own member on ports
	 * picked by etcd_free_port(): a prefix of this process's own keeps
	 * tests apart even if two members ever raced for one port. */
	snprintf(prefix, sizeof(prefix), "/xdnat-test-%d", (int)getpid());
	snprintf(loc, sizeof(loc), tls ? "/unused" : "etcd://127.0.0.1:%d%s", etcd.cport, prefix);
	if (tls)
		tls_config(etcd.cport, "cli");
	etcd_member_open(&etcd, loc, &st);
	/* the member that answered must be ours, still running */
	usleep(100 * 1000);
	etcd_member_assert_running(&etcd);
}

static void setup(void)
{
	start_etcd(false);
}

static void setup_tls(void)
{
	start_etcd(true);
}

static void teardown(void)
{
	struct xd_store_cfg c = { .backend = XD_STORE_SQLITE };
	char err[128];

	xd_store_close(st);
	st = NULL;
	etcd_member_stop(&etcd);
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
}

TestSuite(store_etcd, .init = setup, .fini = teardown);
TestSuite(store_etcd_tls, .init = setup_tls, .fini = teardown);

#include "store_contract.h"

Test(store_etcd, enrolments) { contract_enrolments(); }
Test(store_etcd, registrations) { contract_registrations(); }
Test(store_etcd, bindings) { contract_bindings(); }
Test(store_etcd, listing_counts_settings) { contract_listing_counts_settings(); }
Test(store_etcd, counter_baselines) { contract_counter_baselines(); }
Test(store_etcd, ca_records) { contract_ca_records(); }
Test(store_etcd, ca_library) { contract_ca_library(); }

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

static void put_n(struct et *q, const char *tag, int n)
{
	for (int i = 0; i < n; i++) {
		char k[32];

		snprintf(k, sizeof(k), "lim/%s%d", tag, i);
		cr_assert_eq(et_put(q, k, "v"), 0);
	}
}

/* etcd refuses a Txn of more than --max-txn-ops operations as a whole: the
 * backend refuses it first, with a message naming the option; an inner
 * unit that would go over fails alone, and the outer one still commits. */
Test(store_etcd, a_unit_over_the_txn_limit_is_refused_alone)
{
	struct et *q = ET(st);
	struct et_kvs k;
	unsigned ops, limit;

	cr_assert_eq(q->max_ops, XD_STORE_DEFAULT_MAX_TXN_OPS);
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(st->ops->begin(st), 0);
	put_n(q, "a", 100);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->begin(st), 0);
	put_n(q, "b", 40);
	st->ops->unit_size(st, &ops, &limit);
	cr_assert_eq(ops, 140);
	cr_assert_eq(limit, 128);
	cr_assert_eq(st->ops->commit(st), -E2BIG);
	cr_assert(strstr(xd_store_error(st), "140 operations") &&
		  strstr(xd_store_error(st), "max-txn-ops"), "%s", xd_store_error(st));
	st->ops->rollback(st);             /* the inner unit only */
	/* one key written many times is one operation */
	cr_assert_eq(st->ops->begin(st), 0);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(et_put(q, "lim/again", "v"), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(et_scan(q, "lim/", &k), 0);
	cr_assert_eq(k.n, 101, "%zu keys", k.n);
	et_kvs_free(&k);
	/* the outermost unit over the limit: nothing written, the unit over */
	cr_assert_eq(st->ops->begin(st), 0);
	put_n(q, "c", 129);
	cr_assert_eq(st->ops->commit(st), -E2BIG);
	cr_assert_eq(q->depth, 0);
	st->ops->rollback(st);             /* a no-op, as after any failed commit */
	cr_assert_eq(et_scan(q, "lim/", &k), 0);
	cr_assert_eq(k.n, 101, "%zu keys", k.n);
	et_kvs_free(&k);
	cr_assert_eq(q->commits, 1, "%llu Txns sent", (unsigned long long)q->commits);
}

/* The JSON helpers take what they are given, added or not (ASan: no
 * leak), and a value that could not be made (NULL) is -ENOMEM, never a
 * JSON null in a record nor a deletion. */
Test(store_etcd, json_helpers_consume_and_report)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct et *q = ET(st);

	cr_assert_eq(et_jadd(o, "k", json_object_new_int(1)), 0);
	cr_assert_eq(et_jadd(o, "n", NULL), -ENOMEM);
	cr_assert_eq(et_jadd(NULL, "k", json_object_new_int(1)), -ENOMEM);
	cr_assert_eq(et_jpush(a, json_object_new_int(1)), 0);
	cr_assert_eq(et_jpush(a, NULL), -ENOMEM);
	cr_assert_eq(et_jpush(NULL, json_object_new_int(1)), -ENOMEM);
	cr_assert_eq(json_object_array_length(a), 1);
	cr_assert_null(et_with(NULL, "k", json_object_new_int(2)));
	cr_assert_eq(et_with(o, "k", json_object_new_int(3)), o, "a field is replaced");
	cr_assert_eq(et_jget(o, "k"), 3);
	cr_assert_null(et_with(o, "x", NULL), "o is put with it");
	json_object_put(a);
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(et_put_json(q, "j/x", NULL), -ENOMEM);
	cr_assert_eq(q->nw, 0, "nothing buffered");
	st->ops->rollback(st);
}

/* version() moves for another writer's commits, not for the handle's own
 * (the RSIP server re-reads its index only when someone else wrote). */
Test(store_etcd, version_moves_for_other_writers_only)
{
	struct xd_store *s2;
	char err[256];
	int64_t v0, v1;

	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	v0 = st->ops->version(st);
	cr_assert_geq(v0, 0);
	cr_assert_eq(st->ops->setting_set(st, "a", 1), 0);
	cr_assert_eq(st->ops->setting_set(st, "a", 2), 0);
	cr_assert_eq(st->ops->version(st), v0, "own commits");
	cr_assert_eq(s2->ops->setting_set(s2, "a", 3), 0);
	v1 = st->ops->version(st);
	cr_assert_neq(v1, v0, "another handle's commit");
	cr_assert_eq(st->ops->version(st), v1);
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

/* Another router commits @arg's key right after this handle's next read
 * (once): exactly the moment a second read would see the winner. */
struct between { struct xd_store *other; const char *sub, *val; int rc; };

static void commit_between(struct et *q, void *arg)
{
	struct between *b = arg;

	q->after_range = NULL;
	b->rc = b->other->ops->begin(b->other);
	if (!b->rc && (b->rc = et_put(ET(b->other), b->sub, b->val)))
		b->other->ops->rollback(b->other);
	else if (!b->rc)
		b->rc = b->other->ops->commit(b->other);
}

/* A guarded read guards the revision of the value it returned, from the
 * same answer: when another router commits the key between this read and
 * the commit, the commit fails.  Absent keys and keys the unit deleted
 * once took a second read for the revision, which could see the other
 * router's commit and guard it (both routers then committed from one
 * read: one CRL number, one port block twice). */
Test(store_etcd, a_guard_holds_the_revision_of_the_value_read)
{
	struct between b = { .sub = "race/k", .val = "theirs" };
	char err[256], *v;

	cr_assert_eq(xd_store_open(loc, "t", 0, &b.other, err, sizeof(err)), 0, "%s", err);
	/* absent when read; the other router creates it */
	cr_assert_eq(st->ops->begin(st), 0);
	ET(st)->after_range = commit_between;
	ET(st)->after_range_arg = &b;
	cr_assert_eq(et_get(ET(st), "race/k", &v, true), 0, "absent as read");
	cr_assert_eq(b.rc, 0, "%s", xd_store_error(b.other));
	cr_assert_eq(et_put(ET(st), "race/k", "mine"), 0);
	cr_assert_eq(st->ops->commit(st), -EAGAIN, "the other router created it meanwhile");
	cr_assert_eq(et_get(ET(st), "race/k", &v, false), 1);
	cr_assert_str_eq(v, "theirs");
	free(v);
	/* deleted in the unit, then read guarded; the other router rewrites it */
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(et_del(ET(st), "race/k"), 0);
	b.val = "theirs again";
	ET(st)->after_range = commit_between;
	cr_assert_eq(et_get(ET(st), "race/k", &v, true), 0, "the unit's delete is read");
	cr_assert_eq(b.rc, 0, "%s", xd_store_error(b.other));
	cr_assert_eq(et_put(ET(st), "race/k", "mine"), 0);
	cr_assert_eq(st->ops->commit(st), -EAGAIN, "the other router rewrote it meanwhile");
	cr_assert_eq(et_get(ET(st), "race/k", &v, false), 1);
	cr_assert_str_eq(v, "theirs again");
	free(v);
	/* buffered only, read your writes */
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(et_put(ET(st), "race/n", "x"), 0);
	cr_assert_eq(et_get(ET(st), "race/n", &v, true), 1);
	cr_assert_str_eq(v, "x");
	free(v);
	cr_assert_eq(st->ops->commit(st), 0, "%s", xd_store_error(st));
	xd_store_close(b.other);
}

/* https:// with a client certificate: the contract holds; without the
 * certificate the member refuses, and the error says so. */
Test(store_etcd_tls, client_certificates)
{
	struct xd_store *s2 = NULL;
	char err[512];
	int port = atoi(strrchr(xd_store_config()->endpoints, ':') + 1);

	contract_bindings();
	tls_config(port, NULL);
	cr_assert_lt(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "no client certificate");
	cr_assert_null(s2);
	cr_assert_not_null(strstr(err, "https://127.0.0.1:"), "%s", err);
}

/* A member that stops answering (SIGSTOP: a cluster without quorum looks
 * the same to a client) bounds every request by the timeout; it answers
 * again once it runs. */
Test(store_etcd, a_stopped_member_times_out_and_recovers, .timeout = 60)
{
	struct xd_store_cfg c = { .backend = XD_STORE_SQLITE, .timeout_ms = 300 };
	struct xd_store *s2;
	struct timespec t0, t1;
	char err[256];
	int64_t x, ms;

	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(kill(etcd.pid, SIGSTOP), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(s2->ops->setting_set(s2, "q", 1), -ETIMEDOUT);
	cr_assert_eq(s2->ops->setting_get(s2, "q", &x), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(kill(etcd.pid, SIGCONT), 0);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert(ms >= 550 && ms < 8000, "two requests took %lld ms (timeout 300 each)", (long long)ms);
	cr_assert_not_null(strstr(xd_store_error(s2), "no answer within 300 ms"), "%s", xd_store_error(s2));
	/* the write's outcome was unknown: it may have been applied.  A member
	 * that was stopped takes a moment to catch up (longer on a loaded
	 * machine than the 300 ms timeout): it must answer within 10 s. */
	/* The write that timed out was still in the stopped member's socket:
	 * it can be applied after SIGCONT, even after a later write, so the
	 * later one is made until it is what the store holds. */
	int rc = -1;
	x = 0;
	for (int i = 0; i < 100 && (rc || x != 2); i++) {
		rc = s2->ops->setting_set(s2, "q", 2);
		if (!rc)
			rc = s2->ops->setting_get(s2, "q", &x);
		if (rc || x != 2)
			usleep(100 * 1000);
	}
	cr_assert_eq(rc, 0, "%s", xd_store_error(s2));
	cr_assert_eq(x, 2);
	xd_store_close(s2);
}

/* Two routers registering hosts at once never give one datapath host id
 * to two of them. */
Test(store_etcd, a_host_id_is_held_by_one_client)
{
	struct xd_claim c = { .host_id = 7, .kind = RSIP_KIND_PORTS, .first = 10, .last = 19,
			      .until_ms = 9, .now_ms = 1 };
	uint32_t a, b, bid;

	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &a), 0);
	cr_assert_eq(st->ops->client_add(st, "h2", 12, 1, &b), 0);
	cr_assert_eq(st->ops->client_set_host(st, a, 7, 0), 0);
	cr_assert_eq(st->ops->client_set_host(st, b, 7, 0), -EBUSY);
	cr_assert_not_null(strstr(xd_store_error(st), "host id 7 is taken"), "%s", xd_store_error(st));
	c.client_id = b;
	cr_assert_eq(st->ops->claim(st, &c, &bid), -EBUSY);
	c.client_id = a;
	cr_assert_eq(st->ops->claim(st, &c, &bid), 0, "%s", xd_store_error(st));
	cr_assert_eq(st->ops->client_set_host(st, a, 0, -1), 0);
	cr_assert_eq(st->ops->host_id_taken(st, 7), 0);
	cr_assert_eq(st->ops->client_set_host(st, b, 7, 0), 0);
	cr_assert_eq(st->ops->client_del(st, b), 0);
	cr_assert_eq(st->ops->host_id_taken(st, 7), 0);
}

/* Counters count one router's maps: each router id has its own. */
Test(store_etcd, counter_baselines_are_per_router)
{
	struct xd_store_cfg c = { .backend = XD_STORE_SQLITE, .router_id = "r2" };
	struct xd_ctr_state s = { 0 }, l;
	struct xd_ctr_sample smp = { .key = "reason:a", .v = { 9, 9, 9, 9 } };
	struct xd_store *s2;
	char err[256], *v;

	cr_assert_eq(xd_ctr_fold(&s, "g", &smp, 1, 5), 0);
	cr_assert_eq(st->ops->ctr_store(st, &s), 0, "%s", xd_store_error(st));
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_ctr_load(s2, "g", &l), 0);
	cr_assert_eq(l.n, 0, "router r2 sees none of the first router's baselines");
	xd_ctr_free(&l);
	cr_assert_eq(et_get(ET(s2), "routers/r2/counters", &v, false), 0);
	snprintf(err, sizeof(err), "routers/%s/counters", ET(st)->router_id);
	cr_assert_eq(et_get(ET(s2), err, &v, false), 1, "the first router's key: %s", err);
	free(v);
	xd_store_close(s2);
	xd_ctr_free(&s);
	c.router_id = NULL;
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
}

/* Two signers on one store: every CRL number and every serial once. */
struct signer { struct xd_store *st; int64_t nums[200]; char err[600]; };
static _Atomic int64_t sign_clock = 1000;

static void *sign_numbers(void *arg)
{
	struct signer *g = arg;
	struct lca_err e = { { 0 } };
	struct lca_certdb *d = g->st->ops->ca_certdb(g->st, &e);

	for (int i = 0; d && i < 200; i++) {
		int64_t tu;

		/* One clock for both.  A CRL never goes back more than a minute:
		 * a signer that lost many compares in a row to the other one has
		 * a time older than that and is refused; like a real signer it
		 * then reads its clock again and retries. */
		int rc;
		for (int t = 0; (rc = d->ops->next_crl(d, "", atomic_fetch_add(&sign_clock, 1),
						      &g->nums[i], &tu, &e)) &&
				strstr(e.msg, "never goes back in time") && t < 20; t++)
			;
		if (rc) {
			g->nums[i] = -1;
			snprintf(g->err, sizeof(g->err), "%s", e.msg);
		}
	}
	return NULL;
}

Test(store_etcd, two_signers_never_share_a_crl_number, .timeout = 120)
{
	struct signer a = { 0 }, b = { 0 };
	pthread_t ta, tb;
	char err[256], seen[401] = { 0 };

	cr_assert_eq(xd_store_open(loc, "t", 0, &a.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_open(loc, "t", 0, &b.st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pthread_create(&ta, NULL, sign_numbers, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, sign_numbers, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (int i = 0; i < 200; i++)
		for (int k = 0; k < 2; k++) {
			int64_t n = k ? b.nums[i] : a.nums[i];

			cr_assert(n >= 1 && n <= 400, "number %lld: %s", (long long)n, k ? b.err : a.err);
			cr_assert_eq(seen[n], 0, "CRL number %lld given twice", (long long)n);
			seen[n] = 1;
		}
	cr_log_info("400 CRL numbers by two signers: %llu + %llu reruns after a failed compare",
		    (unsigned long long)ET(a.st)->retries, (unsigned long long)ET(b.st)->retries);
	xd_store_close(a.st);
	xd_store_close(b.st);
}

Test(store_etcd, a_serial_is_taken_once_across_handles)
{
	struct xd_store *s2;
	struct lca_err e = { { 0 } };
	struct lca_certdb *d1 = st->ops->ca_certdb(st, &e), *d2;
	struct lca_record r = { .serial = "AB", .host_id = "h", .identity = "i", .lan = "l", .ports = "",
				.spis = "", .der = (const unsigned char *)"x", .der_len = 1 };
	char err[256];

	cr_assert_eq(xd_store_open(loc, "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	d2 = s2->ops->ca_certdb(s2, &e);
	/* the first signer's insert is buffered in its unit, the second commits first */
	cr_assert_eq(d1->ops->begin(d1, &e), 0);
	cr_assert_eq(d1->ops->insert(d1, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(d2->ops->insert(d2, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(d1->ops->end(d1, 0, &e), -EAGAIN, "the compare on the absent key fails");
	cr_assert_eq(d1->ops->insert(d1, &r, &e), -EEXIST);
	xd_store_close(s2);
}

Test(store_etcd, open_errors)
{
	struct xd_store *s2 = NULL;
	char err[256];

	cr_assert_eq(xd_store_open("etcd://127.0.0.1:1/x", "t", 0, &s2, err, sizeof(err)), -EAGAIN);
	cr_assert_null(s2);
	cr_assert_not_null(strstr(err, "http://127.0.0.1:1"), "%s", err);
	cr_assert_eq(xd_store_open("etcd://", "t", 0, &s2, err, sizeof(err)), -EINVAL);
	cr_assert_eq(xd_store_open("etcd://host", "t", 0, &s2, err, sizeof(err)), -EINVAL, "no port");
	cr_assert_eq(xd_store_open(loc, "../x", 0, &s2, err, sizeof(err)), -EINVAL);
}

static int port_of_loc(void)
{
	return atoi(strrchr(loc, ':') + 1);
}

/* [store] settings: errors name what is wrong; a dead first member is
 * skipped; an endpoint that never answers gives -ETIMEDOUT in time. */
Test(store_etcd, configuration_failover_and_timeout, .timeout = 60)
{
	struct xd_store_cfg c = { .backend = XD_STORE_ETCD, .timeout_ms = 500 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char eps[200], err[256];
	struct xd_store *s2 = NULL;
	struct timespec t0, t1;
	int64_t x, ms;
	int fd;

	c.endpoints = "etcd.example:2379";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "http://HOST:PORT"), "%s", err);
	c.endpoints = "http://a:1,http://b:99999";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL);
	c.endpoints = "";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL, "etcd needs endpoints");
	c.endpoints = "http://a:1";
	c.cert = "/nonexistent.pem";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL, "cert without key");
	c.key = "/nonexistent.key";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "cannot read /nonexistent.pem"), "%s", err);
	c.cert = c.key = NULL;
	c.prefix = "no-slash";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL);
	c.prefix = prefix;
	c.router_id = "bad id";
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), -EINVAL);
	c.router_id = NULL;

	/* a refused first member: the second answers */
	snprintf(eps, sizeof(eps), "http://127.0.0.1:1, http://127.0.0.1:%d", port_of_loc());
	c.endpoints = eps;
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_open("/unused", "t", 0, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s2->ops->setting_set(s2, "x", 7), 0, "%s", xd_store_error(s2));
	cr_assert_eq(st->ops->setting_get(st, "x", &x), 0, "the same keys as etcd://");
	cr_assert_eq(x, 7);
	xd_store_close(s2);

	/* a member that accepts connections and never answers */
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(xd_store_open("/unused", "t", 0, &s2, err, sizeof(err)), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert(ms >= 400 && ms < 8000, "gave up after %lld ms (timeout 500)", (long long)ms);
	cr_assert_not_null(strstr(err, eps), "the message names the endpoint: %s", err);
	cr_assert_not_null(strstr(err, "500 ms"), "%s", err);
	close(fd);
	c = (struct xd_store_cfg){ .backend = XD_STORE_SQLITE };
	cr_assert_eq(xd_store_configure(&c, err, sizeof(err)), 0, "%s", err);
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

/* ------------------------------------ two RSIP servers (two routers), one store */

#define RS_HOSTS 8      /* per router */

static int rs_ok(void *c, uint32_t id, uint32_t a, uint32_t b) { (void)c; (void)id; (void)a; (void)b; return 0; }
static int rs_del(void *c, uint32_t id) { (void)c; (void)id; return 0; }
static int rs_get(void *c, uint32_t id, uint32_t *l, uint32_t *g)
{
	(void)c; (void)id; (void)l; (void)g;
	return -ENOENT;
}
static int64_t rs_pbusy(void *c, uint32_t g, uint32_t a, uint32_t b) { (void)c; (void)g; (void)a; (void)b; return -1; }
static int64_t rs_sbusy(void *c, uint32_t a, uint32_t b) { (void)c; (void)a; (void)b; return -1; }
static int rs_runs(void *c, uint32_t id, int k, struct xd_run **r, size_t *n)
{
	(void)c; (void)id; (void)k;
	*r = NULL;
	*n = 0;
	return 0;
}

struct router { struct rsip_server srv; uint16_t port; pthread_t th; };

/* Maps that accept everything: these tests look at the store. */
static const struct rsip_backend rs_be = {
	.host_add = rs_ok, .host_del = rs_del, .host_get = rs_get, .ports_add = rs_ok,
	.ports_del = rs_ok, .spis_add = rs_ok, .spis_del = rs_ok, .ports_busy = rs_pbusy,
	.spis_busy = rs_sbusy, .runs = rs_runs };

/* One global address; state in this test's etcd store; router on loopback. */
static void rs_config(struct rsip_config *cfg)
{
	rsip_config_defaults(cfg);
	cfg->state_dir = loc;
	cfg->instance = "t";
	cfg->n_gaddrs = 1;
	cfg->gaddrs[0] = htonl(0xc0000201);
	cfg->router_lan = htonl(0x7f000001);
}

/* Open @r's RSIP server and listen on an ephemeral loopback port (r->port). */
static void rs_router_open(struct router *r, const struct rsip_config *cfg, int backlog)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	cr_assert_eq(rsip_server_open(&r->srv, cfg, &rs_be), 0);
	cr_assert_eq(rsip_server_listen(&r->srv, htonl(0x7f000001), 0, NULL, backlog, 60), 0);
	cr_assert_eq(getsockname(r->srv.listen_fd, (struct sockaddr *)&sa, &sl), 0);
	r->port = ntohs(sa.sin_port);
}
static atomic_bool rs_stop;
static uint8_t rs_secret[2 * RS_HOSTS][RSIP_SECRET_LEN];

static void *rs_serve(void *arg)
{
	struct router *r = arg;

	while (!atomic_load(&rs_stop)) {
		struct pollfd pfd[32];
		unsigned n = rsip_server_pollfds(&r->srv, pfd, 32);

		if (poll(pfd, n, 20) > 0)
			rsip_server_events(&r->srv, pfd, n);
	}
	return NULL;
}

struct rs_host { int i, tries, rc; uint16_t port; struct rsip_grant g; };

/* A host asks its router for 10 ports, again after a refusal: a router
 * whose claim lost to the other router's answers with an error (its
 * commit failed, nothing of it was written) and gets it right next time. */
static void *rs_host(void *arg)
{
	struct rs_host *h = arg;
	unsigned seed = (unsigned)h->i * 2654435761u;
	char name[16];

	snprintf(name, sizeof(name), "r%d", h->i);
	/* up to ~30 s with a random back-off, so that the two routers' group
	 * commits stop colliding on a loaded machine */
	for (h->tries = 1; h->tries <= 300; h->tries++) {
		struct rsip_client c;

		rsip_client_init(&c, htonl(0x7f000001), h->port, name, rs_secret[h->i], 5000);
		c.src_be = htonl(0x7f030001u + (uint32_t)h->i);
		h->rc = rsip_client_register(&c);
		if (!h->rc)
			h->rc = rsip_client_assign_ports(&c, 0, 10, 0, &h->g);
		rsip_client_close(&c);
		if (!h->rc)
			return NULL;
		usleep((useconds_t)(20 + rand_r(&seed) % 100) * 1000);
	}
	return NULL;
}

Test(store_etcd, two_rsip_servers_never_grant_one_port_twice, .timeout = 120)
{
	static struct router r[2];
	struct rs_host h[2 * RS_HOSTS];
	pthread_t th[2 * RS_HOSTS];
	struct rsip_config cfg;
	unsigned retried = 0;
	int64_t v[4];

	rs_config(&cfg);
	for (int i = 0; i < 2 * RS_HOSTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "r%d", i);
		cr_assert_eq(xd_store_enroll_new(st, name, 0, rs_secret[i]), 0, "%s", xd_store_error(st));
	}
	for (int k = 0; k < 2; k++) {
		rs_router_open(&r[k], &cfg, 64);
		cr_assert_eq(pthread_create(&r[k].th, NULL, rs_serve, &r[k]), 0);
	}
	for (int i = 0; i < 2 * RS_HOSTS; i++) {
		h[i] = (struct rs_host){ .i = i, .port = r[i % 2].port };
		cr_assert_eq(pthread_create(&th[i], NULL, rs_host, &h[i]), 0);
	}
	for (int i = 0; i < 2 * RS_HOSTS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&rs_stop, true);
	for (int k = 0; k < 2; k++) {
		pthread_join(r[k].th, NULL);
		rsip_server_close(&r[k].srv);
	}
	for (int i = 0; i < 2 * RS_HOSTS; i++) {
		cr_assert_eq(h[i].rc, 0, "host %d: %d after %d tries", i, h[i].rc, h[i].tries);
		retried += h[i].tries > 1;
		for (int k = 0; k < i; k++)
			cr_assert(h[i].g.first + h[i].g.count <= h[k].g.first ||
				  h[k].g.first + h[k].g.count <= h[i].g.first,
				  "hosts %d and %d (routers %d, %d) got overlapping ports", i, k, i % 2, k % 2);
	}
	cr_assert_eq(st->ops->counts(st, v), 0);
	cr_assert_eq(v[2], 2 * RS_HOSTS, "%lld bindings in the store", (long long)v[2]);
	cr_assert_eq(r[0].srv.tx_leaks + r[1].srv.tx_leaks, 0, "a request left its transaction open");
	cr_log_info("%d hosts on two routers: no overlap; %u asked again after a lost race",
		    2 * RS_HOSTS, retried);
}

/* ---------------- group commit within etcd's Txn limit (--max-txn-ops) */

#define GC_HOSTS 40

static pthread_barrier_t gc_bar;
static uint8_t gc_secret[GC_HOSTS][RSIP_SECRET_LEN];
static atomic_int gc_started;

/* Register and ask for 10 ports once, all hosts at the same instant. */
static void *gc_host(void *arg)
{
	struct rs_host *h = arg;
	struct rsip_client c;
	char name[16];

	snprintf(name, sizeof(name), "g%d", h->i);
	rsip_client_init(&c, htonl(0x7f000001), h->port, name, gc_secret[h->i], 10000);
	c.src_be = htonl(0x7f040001u + (uint32_t)h->i);
	pthread_barrier_wait(&gc_bar);
	atomic_fetch_add(&gc_started, 1);
	h->rc = rsip_client_register(&c);
	if (!h->rc)
		h->rc = rsip_client_assign_ports(&c, 0, 10, 0, &h->g);
	rsip_client_close(&c);
	return NULL;
}

static void *gc_serve(void *arg)
{
	struct router *r = arg;

	/* Every host's hello waits in the listen queue first: the first
	 * batches hold (nearly) all of them. */
	while (atomic_load(&gc_started) < GC_HOSTS)
		usleep(1000);
	usleep(200 * 1000);
	while (!atomic_load(&rs_stop)) {
		struct pollfd pfd[2 * GC_HOSTS];
		unsigned n = rsip_server_pollfds(&r->srv, pfd, 2 * GC_HOSTS);

		bool more = r->srv.pending_work;   /* messages wait: no sleep */

		if (poll(pfd, n, more ? 0 : 20) > 0 || more)
			rsip_server_events(&r->srv, pfd, n);
	}
	return NULL;
}

/* 40 hosts register and claim at once on one router with group commit:
 * one Txn of all of them would exceed etcd's 128 operations.  Every host
 * gets its grant at the first try (no connection closed for a refused
 * Txn), and the store holds exactly the grants. */
Test(store_etcd, group_commit_stays_within_the_txn_limit, .timeout = 120)
{
	static struct router r;
	struct rs_host h[GC_HOSTS];
	pthread_t th[GC_HOSTS];
	struct rsip_config cfg;
	int64_t v[4];

	rs_config(&cfg);
	for (int i = 0; i < GC_HOSTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(xd_store_enroll_new(st, name, 0, gc_secret[i]), 0, "%s", xd_store_error(st));
	}
	rs_router_open(&r, &cfg, 2 * GC_HOSTS);
	atomic_store(&rs_stop, false);
	atomic_store(&gc_started, 0);
	cr_assert_eq(pthread_barrier_init(&gc_bar, NULL, GC_HOSTS), 0);
	cr_assert_eq(pthread_create(&r.th, NULL, gc_serve, &r), 0);
	for (int i = 0; i < GC_HOSTS; i++) {
		h[i] = (struct rs_host){ .i = i, .port = r.port };
		cr_assert_eq(pthread_create(&th[i], NULL, gc_host, &h[i]), 0);
	}
	for (int i = 0; i < GC_HOSTS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&rs_stop, true);
	pthread_join(r.th, NULL);
	pthread_barrier_destroy(&gc_bar);
	for (int i = 0; i < GC_HOSTS; i++)
		cr_expect_eq(h[i].rc, 0, "host %d: %d", i, h[i].rc);
	cr_assert_eq(st->ops->counts(st, v), 0);
	cr_assert_eq(v[2], GC_HOSTS, "%lld bindings in the store", (long long)v[2]);
	cr_assert_eq(r.srv.tx_leaks, 0, "a request left its transaction open");
	cr_assert_gt(r.srv.batches_full, 0, "no batch reached the limit: the test tests nothing");
	cr_log_info("%d hosts at once: %llu batches (%llu cut at the limit), %llu messages, "
		    "%.1f per batch; at most %u operations added by one message", GC_HOSTS,
		    (unsigned long long)r.srv.batches, (unsigned long long)r.srv.batches_full,
		    (unsigned long long)r.srv.batched,
		    r.srv.batches ? (double)r.srv.batched / (double)r.srv.batches : 0.0,
		    r.srv.msg_ops_max);
	rsip_server_close(&r.srv);
}

/* ---------------- a batch whose Txn fails its compare */

struct lose { struct xd_store *other; uint32_t client_id; atomic_bool armed; bool started;
	      uint64_t commits0; unsigned injected; };

/* Inside the server's batch, after each read: another router touches the
 * host's registration, which the batch read guarded, until the batch's
 * Txn has been sent (it then fails its compare). */
static void lose_race(struct et *q, void *arg)
{
	struct lose *l = arg;

	if (!atomic_load(&l->armed) || !q->depth)
		return;
	if (!l->started) {
		l->started = true;
		l->commits0 = q->commits;
	}
	if (q->commits != l->commits0) {
		atomic_store(&l->armed, false);
		return;
	}
	if (l->other->ops->client_touch(l->other, l->client_id, 0, 5) == 0)
		l->injected++;
}

/* The host's request in a batch that lost to another router's write is
 * answered INTERNAL_SERVER_ERROR on its open connection, and the same
 * request again succeeds on it: no connection closed, no new session. */
Test(store_etcd, a_batch_that_loses_a_race_is_answered_try_again, .timeout = 60)
{
	static struct router r;
	static struct lose l;
	struct rsip_config cfg;
	struct rsip_client c;
	struct rsip_grant g;
	uint8_t secret[RSIP_SECRET_LEN];
	char err[256];
	int64_t v[4];
	int rc;

	rs_config(&cfg);
	cr_assert_eq(xd_store_enroll_new(st, "h1", 0, secret), 0, "%s", xd_store_error(st));
	cr_assert_eq(xd_store_open(loc, "t", 0, &l.other, err, sizeof(err)), 0, "%s", err);
	rs_router_open(&r, &cfg, 8);
	ET(r.srv.st)->after_range = lose_race;
	ET(r.srv.st)->after_range_arg = &l;
	atomic_store(&rs_stop, false);
	atomic_store(&gc_started, GC_HOSTS);      /* gc_serve: no waiting */
	cr_assert_eq(pthread_create(&r.th, NULL, gc_serve, &r), 0);

	rsip_client_init(&c, htonl(0x7f000001), r.port, "h1", secret, 10000);
	cr_assert_eq(rsip_client_register(&c), 0);
	l.client_id = c.client_id;
	atomic_store(&l.armed, true);
	rc = rsip_client_assign_ports(&c, 0, 10, 0, &g);
	cr_assert_eq(rc, RSIP_E_INTERNAL_SERVER_ERROR, "first request: %d (want %d: try again)", rc,
		     RSIP_E_INTERNAL_SERVER_ERROR);
	cr_assert_geq(c.fd, 0, "the connection was closed");
	rc = rsip_client_assign_ports(&c, 0, 10, 0, &g);
	cr_assert_eq(rc, 0, "the same request again, same session: %d", rc);
	rsip_client_close(&c);

	atomic_store(&rs_stop, true);
	pthread_join(r.th, NULL);
	cr_assert_geq(l.injected, 1);
	cr_assert_eq(r.srv.batches_failed, 1);
	cr_assert_eq(r.srv.batch_retry_replies, 1);
	cr_assert_eq(st->ops->counts(st, v), 0);
	cr_assert_eq(v[2], 1, "%lld bindings in the store", (long long)v[2]);
	rsip_server_close(&r.srv);
	xd_store_close(l.other);
}
