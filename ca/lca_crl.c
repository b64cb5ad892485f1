// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: listing and CRL issuance. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

/* ---- listing ------------------------------------------------------------------ */

struct printer {
	FILE *f;
	bool json;
	int64_t now;
	unsigned n;
};

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

static int cb_print(void *arg, const struct lca_record *r)
{
	struct printer *p = arg;
	char nb[32], na[32], ra[32] = "-";
	fmt_time(r->not_before, nb, sizeof(nb));
	fmt_time(r->not_after, na, sizeof(na));
	if (r->revoked)
		fmt_time(r->revoked_at, ra, sizeof(ra));
	const char *st = lca_record_status(r, p->now);
	if (p->json) {
		fprintf(p->f, "%s\n  {\"serial\":", p->n ? "," : "");
		lca_json_str(p->f, r->serial);
		fputs(",\"host_id\":", p->f);
		lca_json_str(p->f, r->host_id);
		fputs(",\"identity\":", p->f);
		lca_json_str(p->f, r->identity);
		fputs(",\"lan\":", p->f);
		lca_json_str(p->f, r->lan);
		fputs(",\"ports\":", p->f);
		lca_json_str(p->f, r->ports);
		fputs(",\"spis\":", p->f);
		lca_json_str(p->f, r->spis);
		fprintf(p->f, ",\"not_before\":\"%s\",\"not_after\":\"%s\",\"status\":\"%s\"", nb, na, st);
		if (r->revoked)
			fprintf(p->f, ",\"revoked_at\":\"%s\",\"reason\":\"%s\"", ra,
				lca_reason_name(r->reason));
		fputc('}', p->f);
	} else {
		fprintf(p->f, "%-40s  %-16s  %-8s  %-24s  %s  ports %s  spis %s  %s..%s%s%s\n",
			r->serial, r->host_id, st, r->identity, r->lan, r->ports[0] ? r->ports : "-",
			r->spis[0] ? r->spis : "-", nb, na, r->revoked ? "  revoked " : "",
			r->revoked ? lca_reason_name(r->reason) : "");
	}
	p->n++;
	return 0;
}

int lca_certdb_list_print(struct lca_certdb *db, const char *host_id, bool json, FILE *f,
			  int64_t now, struct lca_err *e)
{
	struct printer p = { .f = f, .json = json, .now = now };
	if (json)
		fputc('[', f);
	int err = db->ops->list(db, host_id, cb_print, &p, e);
	if (json)
		fputs(p.n ? "\n]\n" : "]\n", f);
	return err;
}

int lca_list_print(sqlite3 *db, const char *host_id, bool json, FILE *f, int64_t now,
		   struct lca_err *e)
{
	struct lca_certdb *d = lcap_sq_get(db, e);
	return d ? lcap_sq_put(d, lca_certdb_list_print(d, host_id, json, f, now, e)) : -ENOMEM;
}

int lca_list_print_one(const struct lca_record *r, bool json, FILE *f, int64_t now)
{
	struct printer p = { .f = f, .json = json, .now = now };
	int err = cb_print(&p, r);
	if (json)
		fputc('\n', f);
	return err;
}

/* ---- CRL ------------------------------------------------------------------------ */

#define LCA_CRL_BUMP_MAX 60

/* The next CRL number and thisUpdate, in one step: numbers and thisUpdate
 * strictly increase (RFC 5280 5.2.3; a verifier given two CRLs of the same
 * second cannot tell which is newer).  A CRL asked for at or shortly after
 * (LCA_CRL_BUMP_MAX s) the last thisUpdate gets last + 1 (valid a second
 * later: verifiers fail closed meanwhile; xdnat-ca waits for it); xdnatd makes several CRLs within
 * one second when revocations come in a burst, and its clock then lags the
 * bumped thisUpdate.  A time further back (a clock stepped back, an
 * operator's --now in the past) is refused. */
int lca_crl_next_time(int64_t last, int64_t now, int64_t *this_update, struct lca_err *e)
{
	if (last >= 0 && now < last - LCA_CRL_BUMP_MAX)
		return lca_fail(e, -EINVAL, "CRL time %lld is before the last CRL's thisUpdate %lld: "
				"a CRL never goes back in time", (long long)now, (long long)last);
	*this_update = now > last ? now : last + 1;
	return 0;
}

int lcap_next_crl(sqlite3 *db, const char *who, int64_t now, int64_t *num, int64_t *this_update,
		  struct lca_err *e)
{
	char k_time[48], k_num[48];
	snprintf(k_time, sizeof(k_time), "%scrl_this_update", who);
	snprintf(k_num, sizeof(k_num), "%scrl_number", who);
	sqlite3_stmt *s = NULL;
	int64_t last = -1;
	if (sqlite3_prepare_v2(db, "SELECT v FROM ca_meta WHERE k = ?1", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, k_time, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(s);
		return lcap_db_fail(db, e, "CRL time");
	}
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		last = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lcap_db_fail(db, e, "CRL time");
	if ((rc = lca_crl_next_time(last, now, this_update, e)))
		return rc;
	char sql[400];
	snprintf(sql, sizeof(sql), "INSERT INTO ca_meta (k, v) VALUES ('%s', %lld) "
		 "ON CONFLICT(k) DO UPDATE SET v = excluded.v;"
		 "INSERT INTO ca_meta (k, v) VALUES ('%s', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1",
		 k_time, (long long)*this_update, k_num);
	s = NULL;
	int err = 0;
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT v FROM ca_meta WHERE k = ?1", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(s, 1, k_num, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		err = lcap_db_fail(db, e, "CRL number");
	else
		*num = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return err;
}

struct crl_fill {
	X509_CRL *crl;
	int64_t now;
	struct lca_err *e;
};

int lcap_crl_add(X509_CRL *crl, const char *serial_hex, int64_t revoked_at, int reason,
		 struct lca_err *e)
{
	BIGNUM *bn = NULL;
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_ENUMERATED *re = NULL;
	int ok = rv && t && BN_hex2bn(&bn, serial_hex) > 0 && (ai = BN_to_ASN1_INTEGER(bn, NULL)) &&
		 X509_REVOKED_set_serialNumber(rv, ai) &&
		 ASN1_TIME_adj(t, (time_t)revoked_at, 0, 0) && X509_REVOKED_set_revocationDate(rv, t);
	if (ok && reason != LCA_REASON_UNSPECIFIED)
		ok = (re = ASN1_ENUMERATED_new()) && ASN1_ENUMERATED_set(re, reason) &&
		     X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, re, 0, 0) == 1;
	if (ok && X509_CRL_add0_revoked(crl, rv))
		rv = NULL;
	else
		ok = 0;
	ASN1_ENUMERATED_free(re);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_REVOKED_free(rv);
	return ok ? 0 : lca_fail(e, -EIO, "cannot add %s to the CRL", serial_hex);
}

static int cb_crl(void *arg, const struct lca_record *r)
{
	struct crl_fill *c = arg;
	if (!r->revoked || r->not_after < c->now)
		return 0;
	return lcap_crl_add(c->crl, r->serial, r->revoked_at, r->reason, c->e);
}

X509_CRL *lcap_crl_new(X509 *issuer, int64_t this_update, uint32_t period, struct lca_err *e)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_new(), *t2 = ASN1_TIME_new();
	int ok = crl && t1 && t2 && X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
		 X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
		 ASN1_TIME_adj(t1, (time_t)this_update, 0, 0) &&
		 ASN1_TIME_adj(t2, (time_t)(this_update + period), 0, 0) &&
		 X509_CRL_set1_lastUpdate(crl, t1) && X509_CRL_set1_nextUpdate(crl, t2);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	if (!ok) {
		X509_CRL_free(crl);
		lca_fail(e, -EIO, "cannot build the CRL");
		return NULL;
	}
	return crl;
}

int lcap_crl_finish(X509_CRL *crl, X509 *issuer, EVP_PKEY *key, int64_t number,
		    unsigned char **der, size_t *len, struct lca_err *e)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
	X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
						  "keyid:always");
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	int ok = aki && num && X509_CRL_add_ext(crl, aki, -1) && ASN1_INTEGER_set_int64(num, number) &&
		 X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1 && X509_CRL_sort(crl) &&
		 X509_CRL_sign(crl, key, lca_sign_md(key)) > 0;
	X509_EXTENSION_free(aki);
	ASN1_INTEGER_free(num);
	if (!ok)
		return lca_fail(e, -EIO, "cannot sign the CRL");
	unsigned char *buf = NULL;
	int bl = i2d_X509_CRL(crl, &buf);
	if (bl <= 0)
		return lca_fail(e, -EIO, "cannot encode the CRL");
	*der = buf;
	*len = (size_t)bl;
	return 0;
}

int lca_crl(struct lca *ca, int64_t now, unsigned char **der, size_t *len, struct lca_err *e)
{
	struct lca_certdb *db = ca->db;
	int64_t n = 0, tu = now;
	/* atomic by itself: an etcd store reruns its compare-and-swap */
	int err = db->ops->next_crl(db, "", now, &n, &tu, e);
	if (err)
		return err;
	X509_CRL *crl = lcap_crl_new(ca->cert, tu, ca->crl_period, e);
	if (!crl)
		return -EIO;
	struct crl_fill c = { .crl = crl, .now = now, .e = e };
	if (!(err = db->ops->list(db, NULL, cb_crl, &c, e)))
		err = lcap_crl_finish(crl, ca->cert, ca->key, n, der, len, e);
	X509_CRL_free(crl);
	/* every router of a shared store serves the latest CRL, whoever signed it */
	if (!err && (err = db->ops->crl_put(db, n, *der, *len, e))) {
		OPENSSL_free(*der);
		*der = NULL;
	}
	return err;
}

int lca_crl_latest(struct lca *ca, unsigned char **der, size_t *len, int64_t *num,
		   struct lca_err *e)
{
	return ca->db->ops->crl_get(ca->db, der, len, num, e);
}
