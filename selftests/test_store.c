// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store interface (loader/store/store.h) on its SQLite backend: every
 * operation, nested transactions, errors with messages, the migration of
 * databases of the previous release (PRAGMA user_version), and the modes
 * of the files it creates.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sqlite3.h>
#include "lca.h"
#include "rsip_client.h"
#include "rsip_server.h"
#include "store.h"

static char dir[64];
static struct xd_store *st;

static void setup(void)
{
	char err[256];

	snprintf(dir, sizeof(dir), "/tmp/test_store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(xd_store_open(dir, "t", 0, &st, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	char cmd[128];

	xd_store_close(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void db_path(char *buf, size_t len, const char *sfx)
{
	snprintf(buf, len, "%s/t.db%s", dir, sfx);
}

/* Run SQL on the file directly (another process, or an older release). */
static void raw(const char *sql)
{
	char p[128];
	sqlite3 *db = NULL;

	db_path(p, sizeof(p), "");
	cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static int64_t raw_int(const char *sql)
{
	char p[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int64_t v;

	db_path(p, sizeof(p), "");
	cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

TestSuite(store, .init = setup, .fini = teardown);

#include "store_contract.h"

Test(store, enrolments)
{
	contract_enrolments();
}

Test(store, registrations)
{
	contract_registrations();
}

Test(store, bindings)
{
	contract_bindings();
}

Test(store, counter_baselines_contract) { contract_counter_baselines(); }
Test(store, ca_records) { contract_ca_records(); }
Test(store, ca_library) { contract_ca_library(); }

Test(store, listing_counts_settings)
{
	contract_listing_counts_settings();
}

Test(store, nested_transactions)
{
	uint8_t sec[RSIP_SECRET_LEN];
	uint32_t lan;

	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "a", 0, sec), 0);
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "b", 0, sec), 0);
	st->ops->rollback(st);                 /* undoes b only */
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "c", 0, sec), 0);
	cr_assert_eq(st->ops->commit(st), 0);  /* c joins the outer unit */
	/* Not durable yet: another connection does not see it. */
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM hosts"), 0);
	cr_assert_eq(st->ops->commit(st), 0);
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM hosts"), 2);
	cr_assert_eq(st->ops->host_secret(st, "b", sec, &lan), -ENOENT);
	cr_assert_eq(st->ops->host_secret(st, "c", sec, &lan), 0);
	cr_assert_eq(st->ops->commit(st), -EINVAL, "commit without begin");
	cr_assert_eq(st->ops->begin(st), 0);
	cr_assert_eq(xd_store_enroll_new(st, "d", 0, sec), 0);
	st->ops->rollback(st);
	cr_assert_eq(st->ops->host_secret(st, "d", sec, &lan), -ENOENT);
}

Test(store, counter_baselines)
{
	struct xd_ctr_sample smp[2] = { { .key = "reason:a", .v = { 1, 2, 0, 0 } },
					{ .key = "host:3", .v = { 3, 4, 5, 6 } } };
	struct xd_ctr_state s = { 0 }, l;
	uint32_t cid;

	cr_assert_eq(xd_ctr_load(st, "g1", &l), 0);
	cr_assert_eq(l.since_ms, 0);
	xd_ctr_free(&l);
	cr_assert_eq(st->ops->client_add(st, "h1", 11, 1, &cid), 0);
	cr_assert_eq(st->ops->client_set_host(st, cid, 3, 0), 0);
	cr_assert_eq(xd_ctr_fold(&s, "g1", smp, 2, 777), 0);
	cr_assert_eq(st->ops->ctr_store(st, &s), 0);
	cr_assert_eq(xd_ctr_load(st, "g1", &l), 0);
	cr_assert(l.same_gen);
	cr_assert_eq(l.since_ms, 777);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.n_names, 1);
	cr_assert_str_eq(l.names[0].name, "h1");
	xd_ctr_free(&l);
	xd_ctr_free(&s);
}

static int count_rev(void *arg, const struct xd_cert_revoked *r)
{
	(void)r;
	(*(unsigned *)arg)++;
	return 0;
}

Test(store, ca_store_through_the_ca_library)
{
	struct lca_err e = { { 0 } };
	unsigned n = 0;

	cr_assert_eq(st->ops->ca_init(st, &e), 0, "%s", e.msg);
	cr_assert_eq(st->ops->cert_unannounced(st, 16, count_rev, &n), 0, "%s", xd_store_error(st));
	cr_assert_eq(n, 0);
	cr_assert_neq(st->ops->cert_revoke(st, "0abc", 1, 1, &e), 0, "no such certificate");
	cr_assert_eq(st->ops->cert_announced(st, "0abc", 5), 0);
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM ca_notified"), 1);
	{
		uint8_t tag[4] = { 1, 2, 3, 4 }, got[4] = { 0 };

		cr_assert_eq(st->ops->cert_enrolment_record(st, "0abc", "h1", tag, 4), 0);
		cr_assert_eq(st->ops->cert_enrolment_is(st, "0abc", tag, 4), 1);
		cr_assert_eq(st->ops->cert_enrolment_is(st, "0abc", got, 4), 0);
		cr_assert_eq(st->ops->cert_enrolment_tag(st, "0abc", got, 4), 1);
		cr_assert_eq(memcmp(got, tag, 4), 0);
		cr_assert_eq(st->ops->cert_enrolment_tag(st, "0def", got, 4), 0);
	}
}

/* ------------------------------------------------------------ migrations */

/* The schema of the release before versions (6024d9f), optionally from
 * before bindings had an owner. */
static void old_db(bool with_owner)
{
	char sql[2048];

	snprintf(sql, sizeof(sql),
		 "CREATE TABLE hosts(name TEXT PRIMARY KEY, secret BLOB NOT NULL, lan_addr INTEGER NOT NULL "
		 "DEFAULT 0, enrolled_ms INTEGER NOT NULL);"
		 "CREATE TABLE clients(client_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
		 " lan_addr INTEGER NOT NULL, host_id INTEGER NOT NULL DEFAULT 0, gidx INTEGER NOT NULL "
		 "DEFAULT -1, registered_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);"
		 "CREATE TABLE bindings(bind_id INTEGER PRIMARY KEY AUTOINCREMENT, client_id INTEGER NOT NULL,"
		 " %s kind INTEGER NOT NULL, gidx INTEGER NOT NULL, first INTEGER NOT NULL,"
		 " last INTEGER NOT NULL, state INTEGER NOT NULL, until_ms INTEGER NOT NULL,"
		 " created_ms INTEGER NOT NULL);"
		 "CREATE INDEX bindings_by_client ON bindings(client_id);"
		 "CREATE TABLE settings(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		 "INSERT INTO hosts VALUES('h1', x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 0, 1);"
		 "INSERT INTO clients VALUES(4, 'h1', 167772162, 9, 0, 1, 1);"
		 "INSERT INTO bindings(bind_id, client_id, kind, gidx, first, last, state, until_ms, created_ms) "
		 "VALUES(3, 4, 1, 0, 5000, 5099, 1, 99999999999999, 1);"
		 "INSERT INTO settings VALUES('quarantine', 77);",
		 with_owner ? "owner TEXT NOT NULL DEFAULT '', " : "");
	raw(sql);
	if (with_owner)
		raw("UPDATE bindings SET owner='h1'");
}

static void check_migrated(void)
{
	char err[256];
	struct xd_binding b;
	struct xd_client c;
	int64_t v;

	cr_assert_eq(xd_store_open(dir, "t", 0, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(raw_int("PRAGMA user_version"), XD_STORE_SCHEMA);
	cr_assert_eq(st->ops->client_get(st, 4, &c), 1);
	cr_assert(c.host_id == 9 && c.lan == 167772162);
	cr_assert_eq(st->ops->binding_get(st, 3, &b), 1);
	cr_assert(b.first == 5000 && b.last == 5099 && b.client_id == 4);
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM bindings WHERE owner='h1'"), 1, "owner filled in");
	cr_assert_eq(st->ops->setting_get(st, "quarantine", &v), 0);
	cr_assert_eq(v, 77);
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM counters"), 0, "v2 tables created");
	cr_assert_eq(raw_int("SELECT COUNT(*) FROM ca_notified"), 0);
	/* And it works: the old block is held, a new one is not. */
	claim(4, RSIP_KIND_PORTS, 0, 5050, 5150, 1, -EBUSY);
	claim(4, RSIP_KIND_PORTS, 0, 5100, 5150, 1, 0);
}

Test(store, migrates_a_database_of_the_previous_release)
{
	xd_store_close(st);
	st = NULL;
	raw("DROP TABLE hosts; DROP TABLE clients; DROP TABLE bindings; DROP TABLE settings;"
	    "DROP TABLE counters; DROP TABLE counters_meta; DROP TABLE ca_notified; PRAGMA user_version=0");
	old_db(true);
	check_migrated();
}

Test(store, migrates_a_database_from_before_owners)
{
	xd_store_close(st);
	st = NULL;
	raw("DROP TABLE hosts; DROP TABLE clients; DROP TABLE bindings; DROP TABLE settings;"
	    "DROP TABLE counters; DROP TABLE counters_meta; DROP TABLE ca_notified; PRAGMA user_version=0");
	old_db(false);
	check_migrated();
}

Test(store, refuses_a_newer_schema)
{
	char err[256];
	struct xd_store *s2 = NULL;

	raw("PRAGMA user_version=99");
	cr_assert_eq(xd_store_open(dir, "t", 0, &s2, err, sizeof(err)), -EPROTO);
	cr_assert_null(s2);
	cr_assert_not_null(strstr(err, "newer"), "%s", err);
}

/* ------------------------------------------------------- modes, errors */

static void expect_0600(const char *sfx)
{
	char p[128];
	struct stat sb;

	db_path(p, sizeof(p), sfx);
	cr_assert_eq(stat(p, &sb), 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(sb.st_mode & 0777, 0600, "%s is %o", p, sb.st_mode & 0777);
}

Test(store, files_are_0600)
{
	char err[256], p[128];
	uint8_t sec[RSIP_SECRET_LEN];
	struct stat sb;
	mode_t old;

	xd_store_close(st);
	st = NULL;
	/* A fresh store under a permissive umask. */
	db_path(p, sizeof(p), "");
	cr_assert_eq(unlink(p), 0);
	old = umask(0);
	cr_assert_eq(xd_store_open(dir, "t", 0, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(xd_store_enroll_new(st, "h1", 0, sec), 0);   /* -wal and -shm exist now */
	umask(old);
	expect_0600("");
	expect_0600("-wal");
	expect_0600("-shm");
	cr_assert_eq(stat(dir, &sb), 0);
	/* An existing database that was world-readable is fixed. */
	xd_store_close(st);
	st = NULL;
	cr_assert_eq(chmod(p, 0644), 0);
	cr_assert_eq(xd_store_open(dir, "t", 0, &st, err, sizeof(err)), 0, "%s", err);
	expect_0600("");
}

Test(store, open_errors)
{
	char err[256];
	struct xd_store *s2 = NULL;

	cr_assert_eq(xd_store_open(dir, "../x", 0, &s2, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "invalid instance"), "%s", err);
	cr_assert_eq(xd_store_open("/proc/nonexistent/dir", "t", 0, &s2, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "cannot create state directory"), "%s", err);
	cr_assert_eq(xd_store_open(dir, "absent", XD_STORE_RDONLY, &s2, err, sizeof(err)), -ENOENT);
	cr_assert_null(s2);
	/* Read-only: the state is there, writes fail with a message. */
	cr_assert_eq(xd_store_open(dir, "t", XD_STORE_RDONLY, &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s2->ops->setting_set(s2, "k", 1), -EIO);
	cr_assert_not_null(strstr(xd_store_error(s2), "readonly"), "%s", xd_store_error(s2));
	xd_store_close(s2);
}

/* ------------------------------------------- group commit (RSIP transport) */

#define GC_HOSTS 6

static int gc_ok(void *c, uint32_t id, uint32_t a, uint32_t b) { (void)c; (void)id; (void)a; (void)b; return 0; }
static int gc_del(void *c, uint32_t id) { (void)c; (void)id; return 0; }
static int gc_get(void *c, uint32_t id, uint32_t *l, uint32_t *g)
{
	(void)c; (void)id; (void)l; (void)g;
	return -ENOENT;
}
static int64_t gc_pbusy(void *c, uint32_t g, uint32_t a, uint32_t b) { (void)c; (void)g; (void)a; (void)b; return -1; }
static int64_t gc_sbusy(void *c, uint32_t a, uint32_t b) { (void)c; (void)a; (void)b; return -1; }
static int gc_runs(void *c, uint32_t id, int k, struct xd_run **r, size_t *n)
{
	(void)c; (void)id; (void)k;
	*r = NULL;
	*n = 0;
	return 0;
}

static struct rsip_server gsrv;
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool gstop;
static uint16_t gport;
static uint8_t gsecret[GC_HOSTS][RSIP_SECRET_LEN];

struct gc_host {
	int i, rc;
	struct rsip_grant g;
};

static void *gc_serve(void *arg)
{
	(void)arg;
	while (!atomic_load(&gstop)) {
		struct pollfd pfd[16];
		unsigned n;

		pthread_mutex_lock(&gmu);
		n = rsip_server_pollfds(&gsrv, pfd, 16);
		pthread_mutex_unlock(&gmu);
		if (poll(pfd, n, 20) > 0) {
			pthread_mutex_lock(&gmu);
			rsip_server_events(&gsrv, pfd, n);
			pthread_mutex_unlock(&gmu);
		}
	}
	return NULL;
}

static void *gc_host(void *arg)
{
	struct gc_host *h = arg;
	struct rsip_client c;
	char name[16];

	snprintf(name, sizeof(name), "g%d", h->i);
	rsip_client_init(&c, htonl(0x7f000001), gport, name, gsecret[h->i], 5000);
	c.src_be = htonl(0x7f020001u + (uint32_t)h->i);   /* one LAN address each */
	h->rc = rsip_client_register(&c);
	if (!h->rc)
		h->rc = rsip_client_assign_ports(&c, 0, 10, 0, &h->g);
	rsip_client_close(&c);
	return NULL;
}

/* Hosts that ask at the same moment share commits, and every one of them
 * gets a block that is durable (another connection sees it) and its own. */
Test(store, group_commit_of_concurrent_requests)
{
	struct rsip_backend be = { .host_add = gc_ok, .host_del = gc_del, .host_get = gc_get,
				   .ports_add = gc_ok, .ports_del = gc_ok, .spis_add = gc_ok,
				   .spis_del = gc_ok, .ports_busy = gc_pbusy, .spis_busy = gc_sbusy,
				   .runs = gc_runs };
	struct gc_host h[GC_HOSTS];
	pthread_t th[GC_HOSTS], srv_th;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct rsip_config cfg;
	int64_t v[4];

	rsip_config_defaults(&cfg);
	cfg.state_dir = dir;
	cfg.instance = "g";
	cfg.n_gaddrs = 1;
	cfg.gaddrs[0] = htonl(0xc0000201);
	cfg.router_lan = htonl(0x7f000001);
	cr_assert_eq(rsip_server_open(&gsrv, &cfg, &be), 0);
	for (int i = 0; i < GC_HOSTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(xd_store_enroll_new(gsrv.st, name, 0, gsecret[i]), 0);
	}
	cr_assert_eq(rsip_server_listen(&gsrv, htonl(0x7f000001), 0, NULL, 16, 60), 0);
	cr_assert_eq(getsockname(gsrv.listen_fd, (struct sockaddr *)&sa, &sl), 0);
	gport = ntohs(sa.sin_port);
	/* The server is held while every host connects and sends REGISTER:
	 * the first batch then holds all of them. */
	pthread_mutex_lock(&gmu);
	cr_assert_eq(pthread_create(&srv_th, NULL, gc_serve, NULL), 0);
	for (int i = 0; i < GC_HOSTS; i++) {
		h[i] = (struct gc_host){ .i = i };
		cr_assert_eq(pthread_create(&th[i], NULL, gc_host, &h[i]), 0);
	}
	usleep(300 * 1000);
	pthread_mutex_unlock(&gmu);
	for (int i = 0; i < GC_HOSTS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&gstop, true);
	pthread_join(srv_th, NULL);
	for (int i = 0; i < GC_HOSTS; i++) {
		cr_assert_eq(h[i].rc, 0, "host %d: %d", i, h[i].rc);
		for (int k = 0; k < i; k++)
			cr_assert(h[i].g.first + h[i].g.count <= h[k].g.first ||
				  h[k].g.first + h[k].g.count <= h[i].g.first, "hosts %d and %d overlap", i, k);
	}
	cr_log_info("%llu messages in %llu commits", (unsigned long long)gsrv.batched,
		    (unsigned long long)gsrv.batches);
	cr_assert_eq(gsrv.batched, 2 * GC_HOSTS, "every message went through a batch");
	cr_assert_lt(gsrv.batches, gsrv.batched, "no two requests shared a commit (%llu batches)",
		     (unsigned long long)gsrv.batches);
	rsip_server_close(&gsrv);
	/* Durable: a fresh handle sees every binding. */
	{
		struct xd_store *s2;
		char err[256];

		cr_assert_eq(xd_store_open(dir, "g", 0, &s2, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(s2->ops->counts(s2, v), 0);
		cr_assert_eq(v[2], GC_HOSTS, "%lld active bindings in the store", (long long)v[2]);
		xd_store_close(s2);
	}
}
