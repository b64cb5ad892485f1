// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: the certificate store (ca_ tables). */
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
	"CREATE TABLE IF NOT EXISTS ca_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

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

int lca_list(sqlite3 *db, const char *host_id, lca_list_fn fn, void *arg, struct lca_err *e)
{
	return query(db, host_id ? "SELECT " REC_COLS " FROM ca_certs WHERE host_id = ?1 "
				   "ORDER BY issued_at, rowid"
				 : "SELECT " REC_COLS " FROM ca_certs ORDER BY issued_at, rowid",
		     host_id, fn, arg, e, NULL);
}

int lca_get(sqlite3 *db, const char *serial, lca_list_fn fn, void *arg, struct lca_err *e)
{
	unsigned n = 0;
	int err = query(db, "SELECT " REC_COLS " FROM ca_certs WHERE serial = upper(?1)", serial,
			fn, arg, e, &n);
	if (!err && n == 0)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial);
	return err;
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
