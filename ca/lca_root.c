// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: the demo root's side of LCA revocation (root_revoked table,
 * the root's CRL), for operators who use `xdnat-ca init-root`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

static const char root_schema[] =
	"CREATE TABLE IF NOT EXISTS root_revoked ("
	" serial TEXT PRIMARY KEY,"          /* uppercase hex */
	" subject TEXT NOT NULL,"
	" revoked_at INTEGER NOT NULL,"
	" reason INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL);";

static int root_store_init(sqlite3 *db, struct lca_err *e)
{
	int err = lca_store_init(db, e);   /* ca_meta: the CRL number and time */
	if (err)
		return err;
	if (sqlite3_exec(db, root_schema, NULL, NULL, NULL) != SQLITE_OK)
		return lcap_db_fail(db, e, "creating root_revoked");
	return 0;
}

static int issued_by(X509 *cert, X509 *root, struct lca_err *e)
{
	EVP_PKEY *rk = X509_get0_pubkey(root);
	if (X509_check_issued(root, cert) != X509_V_OK || !rk || X509_verify(cert, rk) != 1) {
		ERR_clear_error();
		return lca_fail(e, -EPERM, "the certificate was not issued by this root");
	}
	return 0;
}

int lca_root_revoke(sqlite3 *db, X509 *root, X509 *cert, int reason, int64_t when,
		    struct lca_err *e)
{
	if (strcmp(lca_reason_name(reason), "unknown") == 0)
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	int err = issued_by(cert, root, e);
	if (err || (err = root_store_init(db, e)))
		return err;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	int day = 0, sec = 0;
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int ok = hex && epoch && ASN1_TIME_diff(&day, &sec, epoch, X509_get0_notAfter(cert));
	ASN1_TIME_free(epoch);
	if (!ok) {
		OPENSSL_free(hex);
		return lca_fail(e, -EIO, "cannot read the certificate's serial or notAfter");
	}
	char subj[256];
	lca_dn_str(X509_get_subject_name(cert), subj, sizeof(subj));
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO root_revoked (serial, subject, revoked_at, reason, "
			       "not_after) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(serial) DO NOTHING",
			       -1, &s, NULL) != SQLITE_OK) {
		OPENSSL_free(hex);
		return lcap_db_fail(db, e, "prepare");
	}
	ok = sqlite3_bind_text(s, 1, hex, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_text(s, 2, subj, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_int64(s, 3, when) == SQLITE_OK && sqlite3_bind_int(s, 4, reason) == SQLITE_OK &&
	     sqlite3_bind_int64(s, 5, (int64_t)day * 86400 + sec) == SQLITE_OK &&
	     sqlite3_step(s) == SQLITE_DONE;
	sqlite3_finalize(s);
	if (!ok)
		err = lcap_db_fail(db, e, "recording the revocation");
	else if (sqlite3_changes(db) == 0)
		err = lca_fail(e, -EALREADY, "certificate %s is already revoked by the root", hex);
	OPENSSL_free(hex);
	return err;
}

int lca_root_crl(sqlite3 *db, X509 *root, EVP_PKEY *rk, int64_t now, uint32_t period,
		 unsigned char **der, size_t *len, struct lca_err *e)
{
	if (X509_check_private_key(root, rk) != 1)
		return lca_fail(e, -EINVAL, "the root key does not match the root certificate");
	int64_t n = 0, tu = now;
	int err = root_store_init(db, e);
	if (err || (err = lcap_sp_begin(db, e)) ||
	    (err = lcap_sp_end(db, lcap_next_crl(db, "root_", now, &n, &tu, e), e)))
		return err;
	X509_CRL *crl = lcap_crl_new(root, tu, period ? period : LCA_DEFAULT_CRL_PERIOD, e);
	if (!crl)
		return -EIO;
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT serial, revoked_at, reason FROM root_revoked "
			       "WHERE not_after >= ?1 ORDER BY serial", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
		err = lcap_db_fail(db, e, "reading root_revoked");
	int rc = SQLITE_DONE;
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW)
		err = lcap_crl_add(crl, (const char *)sqlite3_column_text(s, 0),
				   sqlite3_column_int64(s, 1), sqlite3_column_int(s, 2), e);
	if (!err && rc != SQLITE_DONE)
		err = lcap_db_fail(db, e, "reading root_revoked");
	sqlite3_finalize(s);
	if (!err)
		err = lcap_crl_finish(crl, root, rk, n, der, len, e);
	X509_CRL_free(crl);
	return err;
}
