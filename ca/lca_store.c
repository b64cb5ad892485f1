// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: the certificate store (struct lca_certdb) on SQLite, in the
 * ca_ tables of a database the caller opened, and the functions of lca.h
 * that take a sqlite3 *. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

/* ---- store ---------------------------------------------------------------- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS ca_certs ("
	" serial TEXT PRIMARY KEY,"          /* uppercase hex */
	" host_id TEXT NOT NULL,"
	" identity TEXT NOT NULL,"
	" lan TEXT NOT NULL,"
	" ports TEXT NOT NULL,"
	" spis TEXT NOT NULL,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" issued_at INTEGER NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('valid','revoked')),"
	" revoked_at INTEGER,"
	" reason INTEGER,"
	" der BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS ca_certs_host ON ca_certs(host_id);"
	"CREATE TABLE IF NOT EXISTS ca_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	/* the latest signed CRL (lca_crl_latest): created here, like every ca_
	 * table, so a database of an older release gets it on the next open */
	"CREATE TABLE IF NOT EXISTS ca_crl (id INTEGER PRIMARY KEY CHECK (id = 1),"
	" number INTEGER NOT NULL, der BLOB NOT NULL);";

int lcap_db_fail(sqlite3 *db, struct lca_err *e, const char *what)
{
	return lca_fail(e, -EIO, "database: %s: %s", what, sqlite3_errmsg(db));
}

int lca_store_init(sqlite3 *db, struct lca_err *e)
{
	char *msg = NULL;
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		int r = lca_fail(e, -EIO, "database: creating the ca_ tables: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

/* SAVEPOINTs nest inside a caller's transaction and work without one. */
int lcap_sp_begin(sqlite3 *db, struct lca_err *e)
{
	return sqlite3_exec(db, "SAVEPOINT lca", NULL, NULL, NULL) == SQLITE_OK
		       ? 0 : lcap_db_fail(db, e, "savepoint");
}

int lcap_sp_end(sqlite3 *db, int err, struct lca_err *e)
{
	if (err) {
		sqlite3_exec(db, "ROLLBACK TO lca", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL);
		return err;
	}
	if (sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL) != SQLITE_OK) {
		err = lcap_db_fail(db, e, "commit");
		sqlite3_exec(db, "ROLLBACK TO lca", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL);
	}
	return err;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : "";
}

#define REC_COLS "serial, host_id, identity, lan, ports, spis, not_before, not_after, " \
		 "issued_at, status, revoked_at, reason, der"

static void row_to_rec(sqlite3_stmt *s, struct lca_record *r)
{
	memset(r, 0, sizeof(*r));
	r->serial = col_text(s, 0);
	r->host_id = col_text(s, 1);
	r->identity = col_text(s, 2);
	r->lan = col_text(s, 3);
	r->ports = col_text(s, 4);
	r->spis = col_text(s, 5);
	r->not_before = sqlite3_column_int64(s, 6);
	r->not_after = sqlite3_column_int64(s, 7);
	r->issued_at = sqlite3_column_int64(s, 8);
	r->revoked = !strcmp(col_text(s, 9), "revoked");
	r->revoked_at = sqlite3_column_int64(s, 10);
	r->reason = sqlite3_column_int(s, 11);
	r->der = sqlite3_column_blob(s, 12);
	r->der_len = (size_t)sqlite3_column_bytes(s, 12);
}

static int query(sqlite3 *db, const char *sql, const char *a1, lca_list_fn fn, void *arg,
		 struct lca_err *e, unsigned *rows)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return lcap_db_fail(db, e, "query");
	if (a1 && sqlite3_bind_text(s, 1, a1, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_finalize(s);
		return lcap_db_fail(db, e, "bind");
	}
	int rc, ret = 0;
	unsigned n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct lca_record r;
		row_to_rec(s, &r);
		n++;
		if ((ret = fn(arg, &r)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = lcap_db_fail(db, e, "reading certificates");
	sqlite3_finalize(s);
	if (rows)
		*rows = n;
	return ret;
}

/* ---- struct lca_certdb on SQLite ------------------------------------------ */

struct sqdb {
	struct lca_certdb base;
	sqlite3 *db;
};
#define SQDB(d) (((struct sqdb *)(d))->db)

static int sq_init(struct lca_certdb *d, struct lca_err *e)
{
	return lca_store_init(SQDB(d), e);
}

static int sq_list(struct lca_certdb *d, const char *host_id, lca_list_fn fn, void *arg,
		   struct lca_err *e)
{
	return query(SQDB(d), host_id ? "SELECT " REC_COLS " FROM ca_certs WHERE host_id = ?1 "
					"ORDER BY issued_at, rowid"
				      : "SELECT " REC_COLS " FROM ca_certs ORDER BY issued_at, rowid",
		     host_id, fn, arg, e, NULL);
}

static int sq_get(struct lca_certdb *d, const char *serial, lca_list_fn fn, void *arg,
		  struct lca_err *e)
{
	unsigned n = 0;
	int err = query(SQDB(d), "SELECT " REC_COLS " FROM ca_certs WHERE serial = upper(?1)", serial,
			fn, arg, e, &n);
	if (!err && n == 0)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial);
	return err;
}

static int sq_insert(struct lca_certdb *d, const struct lca_record *r, struct lca_err *e)
{
	sqlite3 *db = SQDB(d);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO ca_certs (serial, host_id, identity, lan, ports, spis, "
			       "not_before, not_after, issued_at, status, der) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'valid', ?10)",
			       -1, &s, NULL) != SQLITE_OK)
		return lcap_db_fail(db, e, "prepare insert");
	int ok = sqlite3_bind_text(s, 1, r->serial, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 2, r->host_id, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 3, r->identity, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 4, r->lan, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 5, r->ports, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 6, r->spis, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 7, r->not_before) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 8, r->not_after) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 9, r->issued_at) == SQLITE_OK &&
		 sqlite3_bind_blob(s, 10, r->der, (int)r->der_len, SQLITE_STATIC) == SQLITE_OK;
	int rc = ok ? sqlite3_step(s) : SQLITE_ERROR;
	int err = rc == SQLITE_DONE ? 0
		  : (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
		  ? lca_fail(e, -EEXIST, "serial %s is taken", r->serial)
		  : lcap_db_fail(db, e, "storing the certificate");
	sqlite3_finalize(s);
	return err;
}

static int sq_revoke(struct lca_certdb *d, const char *serial, int reason, int64_t when,
		     struct lca_err *e)
{
	sqlite3 *db = SQDB(d);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "UPDATE ca_certs SET status = 'revoked', revoked_at = ?2, "
			       "reason = ?3 WHERE serial = upper(?1) AND status = 'valid'",
			       -1, &s, NULL) != SQLITE_OK)
		return lcap_db_fail(db, e, "prepare revoke");
	int ok = sqlite3_bind_text(s, 1, serial, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 2, when) == SQLITE_OK &&
		 sqlite3_bind_int(s, 3, reason) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
	int changed = sqlite3_changes(db);
	sqlite3_finalize(s);
	if (!ok)
		return lcap_db_fail(db, e, "revoking");
	return changed ? 0 : lca_fail(e, -EALREADY, "certificate %s is not valid", serial);
}

static int sq_next_crl(struct lca_certdb *d, const char *who, int64_t now, int64_t *num,
		       int64_t *this_update, struct lca_err *e)
{
	int err = lcap_sp_begin(SQDB(d), e);
	return err ? err : lcap_sp_end(SQDB(d), lcap_next_crl(SQDB(d), who, now, num, this_update, e), e);
}

static int sq_crl_put(struct lca_certdb *d, int64_t num, const unsigned char *der, size_t len,
		      struct lca_err *e)
{
	sqlite3 *db = SQDB(d);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO ca_crl (id, number, der) VALUES (1, ?1, ?2) "
			       "ON CONFLICT(id) DO UPDATE SET number = excluded.number, "
			       "der = excluded.der WHERE excluded.number > number", -1, &s,
			       NULL) != SQLITE_OK)
		return lcap_db_fail(db, e, "prepare CRL");
	int ok = sqlite3_bind_int64(s, 1, num) == SQLITE_OK &&
		 sqlite3_bind_blob(s, 2, der, (int)len, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_step(s) == SQLITE_DONE;
	sqlite3_finalize(s);
	return ok ? 0 : lcap_db_fail(db, e, "keeping the CRL");
}

static int sq_crl_get(struct lca_certdb *d, unsigned char **der, size_t *len, int64_t *num,
		      struct lca_err *e)
{
	sqlite3 *db = SQDB(d);
	sqlite3_stmt *s = NULL;
	int err;
	*der = NULL;
	if (sqlite3_prepare_v2(db, "SELECT number, der FROM ca_crl WHERE id = 1", -1, &s, NULL) !=
	    SQLITE_OK)
		return lcap_db_fail(db, e, "reading the CRL");
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 1);
		const void *b = sqlite3_column_blob(s, 1);
		*der = n > 0 && b ? malloc((size_t)n) : NULL;
		if (*der) {
			memcpy(*der, b, (size_t)n);
			*len = (size_t)n;
			*num = sqlite3_column_int64(s, 0);
			err = 0;
		} else {
			err = lca_fail(e, n > 0 ? -ENOMEM : -EIO, "reading the CRL: %s",
				       n > 0 ? "out of memory" : "empty");
		}
	} else {
		err = rc == SQLITE_DONE ? lca_fail(e, -ENOENT, "no CRL signed yet")
					: lcap_db_fail(db, e, "reading the CRL");
	}
	sqlite3_finalize(s);
	return err;
}

static int sq_begin(struct lca_certdb *d, struct lca_err *e)
{
	return lcap_sp_begin(SQDB(d), e);
}

static int sq_end(struct lca_certdb *d, int err, struct lca_err *e)
{
	return lcap_sp_end(SQDB(d), err, e);
}

static void sq_free(struct lca_certdb *d)
{
	free(d);
}

static const struct lca_certdb_ops sq_ops = {
	.init = sq_init, .insert = sq_insert, .list = sq_list, .get = sq_get, .revoke = sq_revoke,
	.next_crl = sq_next_crl, .crl_put = sq_crl_put, .crl_get = sq_crl_get, .begin = sq_begin,
	.end = sq_end, .free = sq_free,
};

struct lca_certdb *lca_certdb_sqlite(sqlite3 *db, struct lca_err *e)
{
	struct sqdb *d;
	if (!db) {
		lca_fail(e, -EINVAL, "no database");
		return NULL;
	}
	if (!(d = calloc(1, sizeof(*d)))) {
		lca_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	d->base.ops = &sq_ops;
	d->db = db;
	return &d->base;
}

struct lca_certdb *lcap_sq_get(sqlite3 *db, struct lca_err *e)
{
	return lca_certdb_sqlite(db, e);
}

int lcap_sq_put(struct lca_certdb *db, int err)
{
	if (db)
		db->ops->free(db);
	return err;
}

int lca_list(sqlite3 *db, const char *host_id, lca_list_fn fn, void *arg, struct lca_err *e)
{
	struct lca_certdb *d = lcap_sq_get(db, e);
	return d ? lcap_sq_put(d, sq_list(d, host_id, fn, arg, e)) : -ENOMEM;
}

int lca_get(sqlite3 *db, const char *serial, lca_list_fn fn, void *arg, struct lca_err *e)
{
	struct lca_certdb *d = lcap_sq_get(db, e);
	return d ? lcap_sq_put(d, sq_get(d, serial, fn, arg, e)) : -ENOMEM;
}

struct lca_certdb *lca_certdb_of(const struct lca *ca)
{
	return ca->db;
}

const char *lca_record_status(const struct lca_record *r, int64_t now)
{
	if (r->revoked)
		return "revoked";
	if (now > r->not_after)
		return "expired";
	if (now < r->not_before)
		return "not-yet-valid";
	return "valid";
}
