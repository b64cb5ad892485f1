/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Private to the Local CA's source files (ca/lca_*.c): the CA object and
 * the helpers more than one of them uses.  Not part of the library's API.
 */
#ifndef XDNAT_LCA_PRIV_H
#define XDNAT_LCA_PRIV_H

#include "lca.h"

struct lca {
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) *chain;        /* above the LCA; may be empty */
	X509_STORE *store;            /* self-check: LCA (+ chain) trusted */
	X509_EXTENSION *crldp;        /* prebuilt, NULL without URL */
	struct lca_ns ns;
	struct lca_certdb *db;        /* the certificate store */
	struct lca_certdb *own_db;    /* ... when lca_open wrapped a sqlite3 * */
	uint32_t crl_period, max_lease;
	bool selfcheck;
};

/* lca_names.c */
int lcap_parse_csr(const unsigned char *buf, size_t len, X509_REQ **out, struct lca_err *e);
X509_NAME *lcap_parse_dn(const char *s, struct lca_err *e);
void lcap_ip_str(uint32_t be, char *buf, size_t len);

/* lca_cert.c: certificate building blocks */
ASN1_IA5STRING *lcap_ia5(const char *s);
int lcap_rand_serial(X509 *x, char *hex, size_t hexlen);
int lcap_set_times(X509 *x, int64_t nb, int64_t na);
int lcap_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val);
int lcap_url_ok(const char *u);             /* http(s)://, printable, no , " \\ */
X509_EXTENSION *lcap_make_crldp(const char *url);
int lcap_verify_with(X509_STORE *st, X509 *leaf, STACK_OF(X509) *untrusted, int64_t at,
		     unsigned long flags, struct lca_err *e, const char *what);

/* lca_store.c: errors and SAVEPOINTs (they nest in a caller's transaction),
 * and a sqlite3 * as a certificate store for one call (lcap_sq_put frees). */
int lcap_db_fail(sqlite3 *db, struct lca_err *e, const char *what);
int lcap_sp_begin(sqlite3 *db, struct lca_err *e);
int lcap_sp_end(sqlite3 *db, int err, struct lca_err *e);
struct lca_certdb *lcap_sq_get(sqlite3 *db, struct lca_err *e);
int lcap_sq_put(struct lca_certdb *db, int err);

/* lca_crl.c: CRLs of the LCA and of the demo root.  who: "" (LCA) or
 * "root_" (keys in ca_meta).  lcap_next_crl: next number and a thisUpdate
 * strictly after the last one (refuses now < last). */
int lcap_next_crl(sqlite3 *db, const char *who, int64_t now, int64_t *num, int64_t *this_update,
		  struct lca_err *e);
X509_CRL *lcap_crl_new(X509 *issuer, int64_t this_update, uint32_t period, struct lca_err *e);
int lcap_crl_add(X509_CRL *crl, const char *serial_hex, int64_t revoked_at, int reason,
		 struct lca_err *e);
int lcap_crl_finish(X509_CRL *crl, X509 *issuer, EVP_PKEY *key, int64_t number,
		    unsigned char **der, size_t *len, struct lca_err *e);

#endif
