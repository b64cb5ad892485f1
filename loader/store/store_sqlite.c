// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The SQLite backend of the store (store.h): STATE_DIR/INSTANCE.db, WAL,
 * synchronous=FULL, busy timeout 5 s.  Every SQL statement of the control
 * plane's RSIP, enrolment and counter state is in this file (the CA's own
 * tables are in ca/lca.c, reached through the CA library).  Statements are
 * prepared once and cached per handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include "store.h"

#include "store_sqlite_int.h"

int sq_dberr(struct sq *q, int rc)
{
	return xd_store_fail(&q->base, rc, "state database: %s", sqlite3_errmsg(q->db));
}

/* The cached statement for @sql (a string literal: its address is the key). */
sqlite3_stmt *sq_stmt(struct sq *q, const char *sql)
{
	unsigned i;

	for (i = 0; i < SQ_CACHE && q->cache[i].sql; i++) {
		if (q->cache[i].sql == sql) {
			sqlite3_reset(q->cache[i].st);
			sqlite3_clear_bindings(q->cache[i].st);
			return q->cache[i].st;
		}
	}
	if (i == SQ_CACHE) {
		xd_store_fail(&q->base, -ENOMEM, "state database: statement cache full");
		return NULL;
	}
	if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q->cache[i].st, NULL) !=
	    SQLITE_OK) {
		sq_dberr(q, -EIO);
		return NULL;
	}
	q->cache[i].sql = sql;
	return q->cache[i].st;
}

/* Bind up to 4 integers, run to completion; -EIO on failure. */
static int run4(struct sq *q, const char *sql, int n, int64_t a, int64_t b, int64_t c, int64_t d)
{
	sqlite3_stmt *s = sq_stmt(q, sql);
	int64_t v[4] = { a, b, c, d };
	int rc;

	if (!s)
		return -EIO;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(s, i + 1, v[i]);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_dberr(q, -EIO);
}

/* One integer (column 0 of the first row): 1 found, 0 none/NULL, <0 error. */
int sq_one4(struct sq *q, const char *sql, int64_t *out, int n, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *s = sq_stmt(q, sql);
	int64_t v[3] = { a, b, c };
	int rc;

	if (!s)
		return -EIO;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(s, i + 1, v[i]);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*out = sqlite3_column_int64(s, 0);
		rc = 1;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	}
	sqlite3_reset(s);
	return rc;
}

int sq_exec(struct sq *q, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xd_store_fail(&q->base, -EIO, "state database: %s", msg ? msg : sqlite3_errmsg(q->db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* ---------------------------------------------------------- transactions */

static int sq_begin(struct xd_store *st)
{
	struct sq *q = SQ(st);
	char sql[32];

	if (q->depth == 0 && sq_exec(q, "BEGIN IMMEDIATE"))
		return -EIO;
	if (q->depth) {
		snprintf(sql, sizeof(sql), "SAVEPOINT s%u", q->depth);
		if (sq_exec(q, sql))
			return -EIO;
	}
	q->depth++;
	return 0;
}

/* On failure the transaction stays open: the caller rolls back. */
static int sq_commit(struct xd_store *st)
{
	struct sq *q = SQ(st);
	char sql[32];

	if (q->depth == 0)
		return xd_store_fail(st, -EINVAL, "state database: commit without begin");
	if (q->depth == 1) {
		if (sq_exec(q, "COMMIT"))
			return -EIO;
	} else {
		snprintf(sql, sizeof(sql), "RELEASE s%u", q->depth - 1);
		if (sq_exec(q, sql))
			return -EIO;
	}
	q->depth--;
	return 0;
}

static void sq_rollback(struct xd_store *st)
{
	struct sq *q = SQ(st);
	char sql[64];

	if (q->depth == 0)
		return;
	q->depth--;
	if (q->depth == 0) {
		if (!sqlite3_get_autocommit(q->db))
			sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	snprintf(sql, sizeof(sql), "ROLLBACK TO s%u; RELEASE s%u", q->depth, q->depth);
	sqlite3_exec(q->db, sql, NULL, NULL, NULL);
}

static int64_t sq_version(struct xd_store *st)
{
	int64_t v = -1;

	return sq_one4(SQ(st), "PRAGMA data_version", &v, 0, 0, 0, 0) == 1 ? v : -1;
}

/* ------------------------------------------------------------ enrolments */

static int sq_enroll(struct xd_store *st, const char *name, uint32_t lan_be,
		     const uint8_t secret[RSIP_SECRET_LEN], int64_t now_ms)
{
	static const char sql[] = "INSERT INTO hosts(name, secret, lan_addr, enrolled_ms) "
				  "VALUES(?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
				  "secret=excluded.secret, lan_addr=excluded.lan_addr";
	struct sq *q = SQ(st);
	sqlite3_stmt *s;
	int rc;

	if (!rsip_valid_name(name, strlen(name)))
		return xd_store_fail(st, -EINVAL, "'%s' is not a valid host name (1-%d of [A-Za-z0-9_.-])",
				     name, RSIP_KEYID_MAX);
	if (!(s = sq_stmt(q, sql)))
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, secret, RSIP_SECRET_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, lan_be);
	sqlite3_bind_int64(s, 4, now_ms);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}

static int sq_unenroll(struct xd_store *st, const char *name)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "DELETE FROM hosts WHERE name=?");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	if (!rc && sqlite3_changes(q->db) == 0)
		rc = xd_store_fail(st, -ENOENT, "no enrolled host '%s'", name);
	return rc;
}

static int sq_host_secret(struct xd_store *st, const char *name, uint8_t secret[RSIP_SECRET_LEN],
			  uint32_t *lan_be)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT secret, lan_addr FROM hosts WHERE name=?");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == RSIP_SECRET_LEN) {
		memcpy(secret, sqlite3_column_blob(s, 0), RSIP_SECRET_LEN);
		*lan_be = (uint32_t)sqlite3_column_int64(s, 1);
		rc = 0;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		rc = xd_store_fail(st, -ENOENT, "no enrolled host '%s'", name);
	} else {
		rc = sq_dberr(q, -EIO);
	}
	sqlite3_reset(s);
	return rc;
}

/* --------------------------------------------------------- registrations */

#define CLIENT_COLS "client_id, lan_addr, host_id, gidx, name, last_seen_ms"

static void client_row(sqlite3_stmt *s, struct xd_client *c)
{
	const char *n = (const char *)sqlite3_column_text(s, 4);

	c->id = (uint32_t)sqlite3_column_int64(s, 0);
	c->lan = (uint32_t)sqlite3_column_int64(s, 1);
	c->host_id = (uint32_t)sqlite3_column_int64(s, 2);
	c->gidx = (int32_t)sqlite3_column_int64(s, 3);
	snprintf(c->name, sizeof(c->name), "%s", n ? n : "");
	c->last_seen_ms = sqlite3_column_int64(s, 5);
}

/* Step a client lookup whose parameters are bound: 1/0/<0. */
static int client_one(struct sq *q, sqlite3_stmt *s, struct xd_client *c)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		client_row(s, c);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}

static int sq_client_get(struct xd_store *st, uint32_t id, struct xd_client *c)
{
	sqlite3_stmt *s = sq_stmt(SQ(st), "SELECT " CLIENT_COLS " FROM clients WHERE client_id=?");

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return client_one(SQ(st), s, c);
}

static int sq_client_by_name(struct xd_store *st, const char *name, struct xd_client *c)
{
	sqlite3_stmt *s = sq_stmt(SQ(st), "SELECT " CLIENT_COLS " FROM clients WHERE name=?");

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	return client_one(SQ(st), s, c);
}

static int sq_client_by_lan(struct xd_store *st, uint32_t lan_be, struct xd_client *c)
{
	sqlite3_stmt *s = sq_stmt(SQ(st), "SELECT " CLIENT_COLS " FROM clients WHERE lan_addr=?");

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, lan_be);
	return client_one(SQ(st), s, c);
}

static int sq_client_add(struct xd_store *st, const char *name, uint32_t lan_be, int64_t now_ms,
			 uint32_t *id)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "INSERT INTO clients(name, lan_addr, registered_ms, last_seen_ms) "
				  "VALUES(?, ?, ?, ?)");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, lan_be);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_int64(s, 4, now_ms);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	if (!rc)
		*id = (uint32_t)sqlite3_last_insert_rowid(q->db);
	return rc;
}

static int sq_client_touch(struct xd_store *st, uint32_t id, uint32_t lan_be, int64_t now_ms)
{
	return lan_be ? run4(SQ(st), "UPDATE clients SET lan_addr=?, last_seen_ms=? WHERE client_id=?", 3,
			     lan_be, now_ms, id, 0)
		      : run4(SQ(st), "UPDATE clients SET last_seen_ms=? WHERE client_id=?", 2, now_ms, id,
			     0, 0);
}

static int sq_client_set_host(struct xd_store *st, uint32_t id, uint32_t host_id, int32_t gidx)
{
	return run4(SQ(st), "UPDATE clients SET host_id=?, gidx=? WHERE client_id=?", 3, host_id, gidx,
		    id, 0);
}

static int sq_client_del(struct xd_store *st, uint32_t id)
{
	return run4(SQ(st), "DELETE FROM clients WHERE client_id=?", 1, id, 0, 0, 0);
}

static int sq_clients_expire(struct xd_store *st, int64_t before_ms)
{
	return run4(SQ(st), "DELETE FROM clients WHERE host_id=0 AND last_seen_ms<=? AND NOT EXISTS "
			    "(SELECT 1 FROM bindings b WHERE b.client_id=clients.client_id AND b.state=1)",
		    1, before_ms, 0, 0, 0);
}

static int sq_host_id_taken(struct xd_store *st, uint32_t host_id)
{
	int64_t v;

	return sq_one4(SQ(st), "SELECT 1 FROM clients WHERE host_id=? LIMIT 1", &v, 1, host_id, 0, 0);
}

static int sq_each_client(struct xd_store *st, xd_store_client_fn fn, void *arg)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = NULL;
	int rc, cb = 0;

	/* Not cached: the callback may run other statements. */
	if (sqlite3_prepare_v2(q->db, "SELECT " CLIENT_COLS " FROM clients ORDER BY client_id", -1, &s,
			       NULL) != SQLITE_OK)
		return sq_dberr(q, -EIO);
	while (!cb && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct xd_client c;

		client_row(s, &c);
		cb = fn(arg, &c);
	}
	if (!cb && rc != SQLITE_DONE)
		cb = sq_dberr(q, -EIO);
	sqlite3_finalize(s);
	return cb;
}

/* -------------------------------------------------------------- bindings */

#define BIND_COLS "bind_id, client_id, kind, gidx, first, last, state, until_ms"

static void binding_row(sqlite3_stmt *s, struct xd_binding *b)
{
	b->id = (uint32_t)sqlite3_column_int64(s, 0);
	b->client_id = (uint32_t)sqlite3_column_int64(s, 1);
	b->kind = sqlite3_column_int(s, 2);
	b->gidx = sqlite3_column_int(s, 3);
	b->first = (uint32_t)sqlite3_column_int64(s, 4);
	b->last = (uint32_t)sqlite3_column_int64(s, 5);
	b->state = sqlite3_column_int(s, 6);
	b->until_ms = sqlite3_column_int64(s, 7);
}

static int sq_last_before(struct xd_store *st, int kind, uint32_t gidx, uint32_t at, int64_t *last)
{
	return kind == RSIP_KIND_PORTS
	       ? sq_one4(SQ(st), "SELECT last FROM bindings WHERE kind=1 AND gidx=? AND first<=? "
			      "ORDER BY first DESC LIMIT 1", last, 2, gidx, at, 0)
	       : sq_one4(SQ(st), "SELECT last FROM bindings WHERE kind=2 AND first<=? "
			      "ORDER BY first DESC LIMIT 1", last, 1, at, 0, 0);
}

/* Bindings of a kind never overlap, so [first,last] is free iff the one
 * starting last at or before @last ends before @first. */
static int sq_claim(struct xd_store *st, const struct xd_claim *c, uint32_t *bind_id)
{
	struct sq *q = SQ(st);
	int64_t end;
	int rc;

	if (c->first > c->last || (c->kind != RSIP_KIND_PORTS && c->kind != RSIP_KIND_SPI))
		return xd_store_fail(st, -EINVAL, "claim: bad block");
	if (sq_begin(st))
		return -EIO;
	rc = sq_last_before(st, c->kind, c->gidx, c->last, &end);
	if (rc == 1 && end >= c->first)
		rc = xd_store_fail(st, -EBUSY, "claim: %s %u-%u overlap a binding", c->kind == RSIP_KIND_PORTS
				   ? "ports" : "SPIs", c->first, c->last);
	if (rc >= 0)
		rc = run4(q, "INSERT INTO bindings(client_id, owner, kind, gidx, first, last, state, "
			     "until_ms, created_ms) VALUES(?1, COALESCE((SELECT name FROM clients WHERE "
			     "client_id=?1), ''), ?2, ?3, ?4, ?4, 1, 0, 0)", 4, c->client_id, c->kind,
			  c->gidx, c->first);
	if (rc >= 0) {
		*bind_id = (uint32_t)sqlite3_last_insert_rowid(q->db);
		rc = run4(q, "UPDATE bindings SET last=?, until_ms=?, created_ms=? WHERE bind_id=?", 4,
			  c->last, c->until_ms, c->now_ms, *bind_id);
	}
	if (rc >= 0)
		rc = run4(q, "UPDATE clients SET host_id=?, gidx=?, last_seen_ms=? WHERE client_id=?", 4,
			  c->host_id, c->gidx, c->now_ms, c->client_id);
	if (rc >= 0 && sqlite3_changes(q->db) == 0)
		rc = xd_store_fail(st, -ENOENT, "claim: no client %u", c->client_id);
	if (rc < 0 || (rc = sq_commit(st)) < 0) {
		sq_rollback(st);
		return rc;
	}
	return 0;
}

static int sq_binding_get(struct xd_store *st, uint32_t id, struct xd_binding *b)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT " BIND_COLS " FROM bindings WHERE bind_id=?");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		binding_row(s, b);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}

static int sq_binding_set(struct xd_store *st, uint32_t id, int state, int64_t until_ms)
{
	return run4(SQ(st), "UPDATE bindings SET state=?, until_ms=? WHERE bind_id=?", 3, state, until_ms,
		    id, 0);
}

static int sq_binding_del(struct xd_store *st, uint32_t id)
{
	return run4(SQ(st), "DELETE FROM bindings WHERE bind_id=?", 1, id, 0, 0, 0);
}

/* Run @sql (parameters bound by the caller into a fresh statement) and
 * hand every binding row to @fn. */
static int each_row(struct sq *q, sqlite3_stmt *s, xd_store_binding_fn fn, void *arg)
{
	int rc, cb = 0;

	while (!cb && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct xd_binding b;

		binding_row(s, &b);
		cb = fn(arg, &b);
	}
	if (!cb && rc != SQLITE_DONE)
		cb = sq_dberr(q, -EIO);
	sqlite3_finalize(s);
	return cb;
}

static int sq_each_binding(struct xd_store *st, xd_store_binding_fn fn, void *arg)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(SQ(st)->db, "SELECT " BIND_COLS " FROM bindings", -1, &s, NULL))
		return sq_dberr(SQ(st), -EIO);
	return each_row(SQ(st), s, fn, arg);
}

struct collect {
	struct xd_binding *out;
	unsigned max, n;
};

static int collect_one(void *arg, const struct xd_binding *b)
{
	struct collect *c = arg;

	if (c->n < c->max)
		c->out[c->n] = *b;
	c->n++;
	return 0;
}

static int sq_client_bindings(struct xd_store *st, uint32_t client_id, struct xd_binding *out,
			      unsigned max, unsigned *n)
{
	struct collect c = { .out = out, .max = max };
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(SQ(st)->db, "SELECT " BIND_COLS " FROM bindings WHERE client_id=? AND "
				"state=1 ORDER BY bind_id", -1, &s, NULL))
		return sq_dberr(SQ(st), -EIO);
	sqlite3_bind_int64(s, 1, client_id);
	rc = each_row(SQ(st), s, collect_one, &c);
	*n = c.n;
	return rc;
}

static int sq_client_runs(struct xd_store *st, uint32_t client_id, int kind, struct xd_run **out,
			  size_t *n)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT first, last FROM bindings WHERE client_id=? AND kind=? "
				  "AND state=1 ORDER BY first");
	struct xd_run *r = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, client_id);
	sqlite3_bind_int64(s, 2, kind);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint32_t f = (uint32_t)sqlite3_column_int64(s, 0), l = (uint32_t)sqlite3_column_int64(s, 1);

		if (cnt && r[cnt - 1].last + 1 == f) {
			r[cnt - 1].last = l;
			continue;
		}
		if (cnt == cap) {
			struct xd_run *nr = realloc(r, (cap = cap ? cap * 2 : 8) * sizeof(*r));

			if (!nr) {
				free(r);
				sqlite3_reset(s);
				return xd_store_fail(st, -ENOMEM, "out of memory");
			}
			r = nr;
		}
		r[cnt].first = f;
		r[cnt].last = l;
		cnt++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(r);
		return sq_dberr(q, -EIO);
	}
	*out = r;
	*n = cnt;
	return 0;
}

static int sq_client_held(struct xd_store *st, uint32_t client_id, int kind, struct xd_held *h)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT COUNT(*), COALESCE(SUM(last-first+1),0), MIN(first), MAX(last), "
				  "MIN(until_ms) FROM bindings INDEXED BY bindings_by_client_kind "
				  "WHERE client_id=?1 AND (?2=0 OR kind=?2) AND state=1");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, client_id);
	sqlite3_bind_int64(s, 2, kind);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		h->count = (uint64_t)sqlite3_column_int64(s, 0);
		h->size = (uint64_t)sqlite3_column_int64(s, 1);
		h->min_first = h->count ? sqlite3_column_int64(s, 2) : -1;
		h->max_last = h->count ? sqlite3_column_int64(s, 3) : -1;
		h->min_until = h->count ? sqlite3_column_int64(s, 4) : INT64_MAX;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : sq_dberr(q, -EIO);
}

static int sq_held_at(struct xd_store *st, const char *name, int kind, uint32_t at, int64_t *last)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT b.last FROM bindings b JOIN clients c ON c.client_id=b.client_id "
				  "WHERE c.name=?1 AND b.kind=?2 AND b.state=1 AND b.first<=?3 AND b.last>=?3");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, kind);
	sqlite3_bind_int64(s, 3, at);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*last = sqlite3_column_int64(s, 0);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}

static int sq_lapsed(struct xd_store *st, int64_t now_ms, uint32_t *ids, unsigned max, unsigned *n)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT bind_id FROM bindings WHERE state=1 AND until_ms<=? LIMIT ?");
	int rc;

	*n = 0;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_int64(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max)
		ids[(*n)++] = (uint32_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_dberr(q, -EIO);
}

static int sq_quarantine_end(struct xd_store *st, int64_t now_ms, xd_store_binding_fn fn, void *arg)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(SQ(st)->db, "DELETE FROM bindings WHERE state=2 AND until_ms<=? RETURNING "
				BIND_COLS, -1, &s, NULL))
		return sq_dberr(SQ(st), -EIO);
	sqlite3_bind_int64(s, 1, now_ms);
	return each_row(SQ(st), s, fn, arg);
}

static int sq_next_until(struct xd_store *st, int state, int64_t *until_ms)
{
	return sq_one4(SQ(st), "SELECT MIN(until_ms) FROM bindings WHERE state=?", until_ms, 1, state, 0, 0);
}

/* ------------------------------------------------------ operator's view */

/*
 * Three kinds of rows, by host name then binding:
 *   - enrolled hosts with their registration (if any) and its bindings;
 *   - registrations (and bindings) of hosts no longer enrolled;
 *   - bindings whose registration ended (de-registered, evicted): they are
 *     quarantined until their deadline and listed under their owner's name.
 * An enrolled host that is not registered but has such bindings is listed
 * by them only.
 */
static const char list_sql[] =
	"SELECT h.name, 1, h.lan_addr, c.client_id, c.lan_addr, c.host_id, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM hosts h LEFT JOIN clients c ON c.name = h.name "
	"LEFT JOIN bindings b ON b.client_id = c.client_id "
	"WHERE c.client_id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM bindings o WHERE o.owner = h.name "
	"      AND NOT EXISTS (SELECT 1 FROM clients x WHERE x.client_id = o.client_id)) "
	"UNION ALL "
	"SELECT c.name, 0, 0, c.client_id, c.lan_addr, c.host_id, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM clients c LEFT JOIN bindings b ON b.client_id = c.client_id "
	"WHERE NOT EXISTS (SELECT 1 FROM hosts h WHERE h.name = c.name) "
	"UNION ALL "
	"SELECT b.owner, EXISTS (SELECT 1 FROM hosts h WHERE h.name = b.owner), "
	"       COALESCE((SELECT h.lan_addr FROM hosts h WHERE h.name = b.owner), 0), NULL, NULL, NULL, "
	"       b.bind_id, b.kind, b.first, b.last, b.state, b.until_ms "
	"FROM bindings b WHERE NOT EXISTS (SELECT 1 FROM clients x WHERE x.client_id = b.client_id) "
	"ORDER BY 1, 7";

static int sq_list(struct xd_store *st, xd_store_row_fn fn, void *arg)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = NULL;
	int rc, cb = 0;

	if (sqlite3_prepare_v2(q->db, list_sql, -1, &s, NULL))
		return sq_dberr(q, -EIO);
	while (!cb && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		struct xd_list_row r = { .enrolled = sqlite3_column_int(s, 1) != 0 };

		snprintf(r.name, sizeof(r.name), "%s", name ? name : "");
		r.registered = sqlite3_column_type(s, 3) != SQLITE_NULL;
		r.bound = sqlite3_column_type(s, 6) != SQLITE_NULL;
		r.lan = (uint32_t)sqlite3_column_int64(s, r.registered ? 4 : 2);
		r.client_id = (uint32_t)sqlite3_column_int64(s, 3);
		r.host_id = (uint32_t)sqlite3_column_int64(s, 5);
		r.b.id = (uint32_t)sqlite3_column_int64(s, 6);
		r.b.client_id = r.client_id;
		r.b.kind = sqlite3_column_int(s, 7);
		r.b.first = (uint32_t)sqlite3_column_int64(s, 8);
		r.b.last = (uint32_t)sqlite3_column_int64(s, 9);
		r.b.state = sqlite3_column_int(s, 10);
		r.b.until_ms = sqlite3_column_int64(s, 11);
		cb = fn(arg, &r);
	}
	if (!cb && rc != SQLITE_DONE)
		cb = sq_dberr(q, -EIO);
	sqlite3_finalize(s);
	return cb;
}

static int sq_counts(struct xd_store *st, int64_t v[4])
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM clients), "
				  "(SELECT count(*) FROM bindings WHERE state=1), "
				  "(SELECT count(*) FROM bindings WHERE state=2)");
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		for (int i = 0; i < 4; i++)
			v[i] = sqlite3_column_int64(s, i);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : sq_dberr(q, -EIO);
}

static int sq_setting_set(struct xd_store *st, const char *key, int64_t value)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "INSERT INTO settings(key, value) VALUES(?, ?) "
				  "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, value);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}

static int sq_setting_get(struct xd_store *st, const char *key, int64_t *value)
{
	struct sq *q = SQ(st);
	sqlite3_stmt *s = sq_stmt(q, "SELECT value FROM settings WHERE key=?");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*value = sqlite3_column_int64(s, 0);
	rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? xd_store_fail(st, -ENOENT, "no setting %s", key)
						      : sq_dberr(q, -EIO);
	sqlite3_reset(s);
	return rc;
}


const struct xd_store_ops sq_ops = {
	.name = "sqlite", .close = sq_close,
	.begin = sq_begin, .commit = sq_commit, .rollback = sq_rollback, .version = sq_version,
	.enroll = sq_enroll, .unenroll = sq_unenroll, .host_secret = sq_host_secret,
	.client_get = sq_client_get, .client_by_name = sq_client_by_name,
	.client_by_lan = sq_client_by_lan, .client_add = sq_client_add,
	.client_touch = sq_client_touch, .client_set_host = sq_client_set_host,
	.client_del = sq_client_del, .clients_expire = sq_clients_expire,
	.host_id_taken = sq_host_id_taken, .each_client = sq_each_client,
	.claim = sq_claim, .binding_get = sq_binding_get, .binding_set = sq_binding_set,
	.binding_del = sq_binding_del, .each_binding = sq_each_binding,
	.client_bindings = sq_client_bindings, .client_runs = sq_client_runs,
	.client_held = sq_client_held, .last_before = sq_last_before, .held_at = sq_held_at,
	.lapsed = sq_lapsed, .quarantine_end = sq_quarantine_end, .next_until = sq_next_until,
	.list = sq_list, .counts = sq_counts, .setting_set = sq_setting_set,
	.setting_get = sq_setting_get,
	.ctr_load = sq_ctr_load, .ctr_store = sq_ctr_store,
	.ca_open = sq_ca_open, .ca_init = sq_ca_init, .cert_revoke = sq_cert_revoke,
	.cert_revoke_overlapping = sq_cert_revoke_overlapping, .cert_list = sq_cert_list, .cert_list_print = sq_cert_list_print,
	.cert_get = sq_cert_get, .cert_unannounced = sq_cert_unannounced,
	.cert_announced = sq_cert_announced, .cert_enrolment_record = sq_cert_enrolment_record,
	.cert_enrolment_is = sq_cert_enrolment_is, .cert_enrolment_tag = sq_cert_enrolment_tag,
	.ca_certdb = sq_ca_certdb,
};
