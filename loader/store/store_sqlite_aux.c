// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The SQLite backend of the store (store.h): counter baselines and the
 * Local CA's store, which the CA library (ca/lca.h) keeps in its own
 * tables of the same database. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lca.h"
#include "store_sqlite_int.h"

/* ------------------------------------------------------ counter baselines */

static int ctr_names(struct sq *q, struct xd_ctr_state *s)
{
	sqlite3_stmt *st = sq_stmt(q, "SELECT host_id, name FROM clients WHERE host_id > 0 ORDER BY host_id");
	size_t cap = 0;
	int rc;

	if (!st)
		return 0;       /* a database without registrations */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 1);

		if (s->n_names == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct xd_ctr_name *nn = realloc(s->names, nc * sizeof(*nn));

			if (!nn)
				break;
			s->names = nn;
			cap = nc;
		}
		s->names[s->n_names].host_id = (uint32_t)sqlite3_column_int64(st, 0);
		snprintf(s->names[s->n_names].name, sizeof(s->names[0].name), "%s", n ? n : "");
		s->n_names++;
	}
	sqlite3_reset(st);
	return 0;
}

int sq_ctr_load(struct xd_store *xs, const char *gen, struct xd_ctr_state *s)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st;
	int rc;

	(void)gen;
	/* A database of an older release opened read-only may lack the tables. */
	st = sq_stmt(q, "SELECT gen, since_ms, saved_ms FROM counters_meta WHERE id=1");
	if (!st)
		return xd_store_fail(xs, -ENOENT, "no counter baselines");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *g = (const char *)sqlite3_column_text(st, 0);

		snprintf(s->gen, sizeof(s->gen), "%s", g ? g : "");
		s->since_ms = (uint64_t)sqlite3_column_int64(st, 1);
		s->saved_ms = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_dberr(q, -EIO);
	st = sq_stmt(q, "SELECT key, b0, b1, b2, b3, has_last, l0, l1, l2, l3 FROM counters");
	if (!st)
		return xd_store_fail(xs, -ENOENT, "no counter baselines");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		struct xd_ctr_row *r = xd_ctr_add_row(s, k ? k : "");

		if (!r) {
			sqlite3_reset(st);
			return xd_store_fail(xs, -ENOMEM, "out of memory");
		}
		for (int i = 0; i < XD_CTR_NVAL; i++) {
			r->base[i] = (uint64_t)sqlite3_column_int64(st, 1 + i);
			r->last[i] = (uint64_t)sqlite3_column_int64(st, 6 + i);
		}
		r->has_last = sqlite3_column_int(st, 5) != 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_dberr(q, -EIO);
	return ctr_names(q, s);
}

int sq_ctr_store(struct xd_store *xs, const struct xd_ctr_state *s)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st;

	if (sq_exec(q, "DELETE FROM counters") ||
	    !(st = sq_stmt(q, "INSERT INTO counters(key, b0, b1, b2, b3, has_last, l0, l1, l2, l3) "
			      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")))
		return -EIO;
	for (size_t i = 0; i < s->n; i++) {
		const struct xd_ctr_row *r = &s->rows[i];
		bool zero = !r->has_last;

		for (int k = 0; k < XD_CTR_NVAL; k++)
			zero = zero && !r->base[k];
		if (zero)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
		for (int k = 0; k < XD_CTR_NVAL; k++) {
			sqlite3_bind_int64(st, 2 + k, (sqlite3_int64)r->base[k]);
			sqlite3_bind_int64(st, 7 + k, (sqlite3_int64)r->last[k]);
		}
		sqlite3_bind_int(st, 6, r->has_last);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			return sq_dberr(q, -EIO);
		}
	}
	sqlite3_reset(st);
	st = sq_stmt(q, "INSERT INTO counters_meta(id, gen, since_ms, saved_ms) VALUES(1, ?, ?, ?) "
			"ON CONFLICT(id) DO UPDATE SET gen=excluded.gen, since_ms=excluded.since_ms, "
			"saved_ms=excluded.saved_ms");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, s->gen, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)s->since_ms);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)s->saved_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return sq_dberr(q, -EIO);
	}
	sqlite3_reset(st);
	return 0;
}

/* ----------------------------------------------- the CA's store (ca/lca.h) */

struct lca_certdb *sq_ca_certdb(struct xd_store *st, struct lca_err *e)
{
	struct sq *q = SQ(st);

	if (!q->certdb)
		q->certdb = lca_certdb_sqlite(q->db, e);
	return q->certdb;
}

int sq_ca_open(struct xd_store *st, const struct lca_config *cfg, struct lca **out, struct lca_err *e)
{
	return lca_open(cfg, SQ(st)->db, out, e);
}

int sq_ca_init(struct xd_store *st, struct lca_err *e)
{
	return lca_store_init(SQ(st)->db, e);
}

int sq_cert_revoke(struct xd_store *st, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	return lca_db_revoke(SQ(st)->db, serial, reason, when, e);
}

int sq_cert_revoke_overlapping(struct xd_store *st, int kind, uint32_t first, uint32_t last, int reason,
			       int64_t when, unsigned *n, struct lca_err *e)
{
	return lca_db_revoke_overlapping(SQ(st)->db, kind == RSIP_KIND_PORTS ? LCA_KIND_PORTS : LCA_KIND_SPI,
					 first, last, reason, when, n, e);
}

int sq_cert_list(struct xd_store *st, const char *host, xd_store_cert_fn fn, void *arg, struct lca_err *e)
{
	return lca_list(SQ(st)->db, host, fn, arg, e);
}

int sq_cert_list_print(struct xd_store *st, const char *host, bool json, FILE *f, int64_t now,
		       struct lca_err *e)
{
	return lca_list_print(SQ(st)->db, host, json, f, now, e);
}

int sq_cert_get(struct xd_store *st, const char *serial, xd_store_cert_fn fn, void *arg, struct lca_err *e)
{
	return lca_get(SQ(st)->db, serial, fn, arg, e);
}

/* Revocations (table ca_certs of the CA library) not yet in ca_notified. */
int sq_cert_unannounced(struct xd_store *xs, unsigned max, xd_store_revoked_fn fn, void *arg)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st = NULL;
	int rc, cb = 0;

	if (sqlite3_prepare_v2(q->db, "SELECT serial, host_id, identity, revoked_at, reason FROM ca_certs "
				      "WHERE status='revoked' AND serial NOT IN (SELECT serial FROM "
				      "ca_notified) ORDER BY revoked_at LIMIT ?", -1, &st, NULL) != SQLITE_OK)
		return sq_dberr(q, -EIO);
	sqlite3_bind_int64(st, 1, max);
	while (!cb && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *serial = (const char *)sqlite3_column_text(st, 0);
		const char *host = (const char *)sqlite3_column_text(st, 1);
		const char *id = (const char *)sqlite3_column_text(st, 2);
		struct xd_cert_revoked r;

		memset(&r, 0, sizeof(r));
		snprintf(r.serial, sizeof(r.serial), "%s", serial ? serial : "");
		snprintf(r.host, sizeof(r.host), "%s", host ? host : "");
		snprintf(r.identity, sizeof(r.identity), "%s", id ? id : "");
		r.revoked_at = sqlite3_column_int64(st, 3);
		r.reason = sqlite3_column_int(st, 4);
		cb = fn(arg, &r);
	}
	if (!cb && rc != SQLITE_DONE)
		cb = sq_dberr(q, -EIO);
	sqlite3_finalize(st);
	return cb;
}

int sq_cert_announced(struct xd_store *xs, const char *serial, int64_t at)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st = sq_stmt(q, "INSERT OR IGNORE INTO ca_notified(serial, at) VALUES(?, ?)");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, at);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(st);
	return rc;
}

int sq_cert_enrolment_record(struct xd_store *xs, const char *serial, const char *host, const uint8_t *tag,
			     size_t len)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st = sq_stmt(q, "INSERT OR REPLACE INTO ca_enrolment(serial, host, tag) VALUES(?, ?, ?)");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, tag, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(st);
	return rc;
}

int sq_cert_enrolment_is(struct xd_store *xs, const char *serial, const uint8_t *tag, size_t len)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st = sq_stmt(q, "SELECT 1 FROM ca_enrolment WHERE serial=? AND tag=?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, tag, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	sqlite3_reset(st);
	return rc;
}

int sq_cert_enrolment_tag(struct xd_store *xs, const char *serial, uint8_t *tag, size_t len)
{
	struct sq *q = SQ(xs);
	sqlite3_stmt *st = sq_stmt(q, "SELECT tag FROM ca_enrolment WHERE serial=?");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == (int)len) {
		memcpy(tag, sqlite3_column_blob(st, 0), len);
		rc = 1;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_dberr(q, -EIO);
	}
	sqlite3_reset(st);
	return rc;
}
