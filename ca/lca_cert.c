// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: root and LCA certificates, their checks; opening the CA. */
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

/* ---- certificate building blocks --------------------------------------- */

int lcap_rand_serial(X509 *x, char *hex, size_t hexlen)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, LCA_SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
	ASN1_INTEGER *ai = ok ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ok = ai && X509_set_serialNumber(x, ai);
	if (ok && hex) {
		char *h = BN_bn2hex(bn);
		ok = h && strlen(h) < hexlen;
		if (ok)
			strcpy(hex, h);
		OPENSSL_free(h);
	}
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok ? 0 : -EIO;
}

int lcap_set_times(X509 *x, int64_t nb, int64_t na)
{
	return ASN1_TIME_adj(X509_getm_notBefore(x), (time_t)nb, 0, 0) &&
	       ASN1_TIME_adj(X509_getm_notAfter(x), (time_t)na, 0, 0) ? 0 : -EIO;
}

int lcap_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, val);
	int ok = ex && X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -EIO;
}

static int add_subtree(STACK_OF(GENERAL_SUBTREE) *sk, int type, void *val)
{
	GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
	if (!st)
		return -ENOMEM;
	GENERAL_NAME_set0_value(st->base, type, val);
	if (!sk_GENERAL_SUBTREE_push(sk, st)) {
		GENERAL_SUBTREE_free(st);
		return -ENOMEM;
	}
	return 0;
}

ASN1_IA5STRING *lcap_ia5(const char *s)
{
	ASN1_IA5STRING *a = ASN1_IA5STRING_new();
	if (a && !ASN1_STRING_set(a, s, -1)) {
		ASN1_IA5STRING_free(a);
		return NULL;
	}
	return a;
}

static NAME_CONSTRAINTS *make_nc(const struct lca_ns *ns)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	if (!nc || !(nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()))
		goto fail;
	unsigned char ip[8];
	memcpy(ip, &ns->g_be, 4);
	memset(ip + 4, 0xff, 4);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	if (!os || !ASN1_OCTET_STRING_set(os, ip, 8) ||
	    add_subtree(nc->permittedSubtrees, GEN_IPADD, os)) {
		ASN1_OCTET_STRING_free(os);
		goto fail;
	}
	const int types[] = { GEN_URI, GEN_EMAIL, GEN_DNS };
	for (size_t i = 0; i < 3; i++) {
		ASN1_IA5STRING *s = lcap_ia5(ns->domain);
		if (!s || add_subtree(nc->permittedSubtrees, types[i], s)) {
			ASN1_IA5STRING_free(s);
			goto fail;
		}
	}
	if (ns->dn) {
		X509_NAME *dn = X509_NAME_dup(ns->dn);
		if (!dn || add_subtree(nc->permittedSubtrees, GEN_DIRNAME, dn)) {
			X509_NAME_free(dn);
			goto fail;
		}
	}
	return nc;
fail:
	NAME_CONSTRAINTS_free(nc);
	return NULL;
}

static X509_NAME *lca_subject(const struct lca_ns *ns)
{
	char g[INET_ADDRSTRLEN], cn[64];
	lcap_ip_str(ns->g_be, g, sizeof(g));
	snprintf(cn, sizeof(cn), "xdnat LCA %s", g);
	X509_NAME *n = ns->dn ? X509_NAME_dup(ns->dn) : X509_NAME_new();
	if (n && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					     (unsigned char *)cn, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

X509 *lca_root_create(EVP_PKEY *key, const char *subject_dn, int64_t not_before,
		      int64_t not_after, struct lca_err *e)
{
	X509_NAME *sn = lcap_parse_dn(subject_dn, e);
	if (!sn)
		return NULL;
	X509 *x = X509_new();
	X509V3_CTX ctx;
	int err = -EIO;
	if (!x || !X509_set_version(x, X509_VERSION_3) || lcap_rand_serial(x, NULL, 0) ||
	    !X509_set_subject_name(x, sn) || !X509_set_issuer_name(x, sn) ||
	    lcap_set_times(x, not_before, not_after) || !X509_set_pubkey(x, key))
		goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (lcap_add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
	    lcap_add_conf_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    lcap_add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    lcap_add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (X509_sign(x, key, lca_sign_md(key)) <= 0)
		goto out;
	err = 0;
out:
	X509_NAME_free(sn);
	if (err) {
		X509_free(x);
		lca_fail(e, err, "cannot create the root certificate");
		return NULL;
	}
	return x;
}

/* The LCA profile (docs/LCA.md): keyCertSign + cRLSign only; name
 * constraints non-critical so strongSwan 5.9.8 can parse them (it cannot
 * parse a critical iPAddress constraint); optional CRL distribution point
 * of the issuer's CRL, so the root can revoke the LCA. */
static int add_ca_exts(X509 *x, X509V3_CTX *ctx, const struct lca_ns *ns, bool with_keyids,
		       const char *crl_url)
{
	if (lcap_add_conf_ext(x, ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    lcap_add_conf_ext(x, ctx, NID_key_usage, "critical,keyCertSign,cRLSign"))
		return -EIO;
	if (with_keyids && (lcap_add_conf_ext(x, ctx, NID_subject_key_identifier, "hash") ||
			    lcap_add_conf_ext(x, ctx, NID_authority_key_identifier, "keyid:always")))
		return -EIO;
	if (crl_url) {
		X509_EXTENSION *dp = lcap_make_crldp(crl_url);
		int ok = dp && X509_add_ext(x, dp, -1);
		X509_EXTENSION_free(dp);
		if (!ok)
			return -EIO;
	}
	NAME_CONSTRAINTS *nc = make_nc(ns);
	int ok = nc && X509_add1_ext_i2d(x, NID_name_constraints, nc, 0, X509V3_ADD_DEFAULT) == 1;
	NAME_CONSTRAINTS_free(nc);
	return ok ? 0 : -EIO;
}

X509_REQ *lca_csr_create(EVP_PKEY *key, const struct lca_ns *ns, struct lca_err *e)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *sn = lca_subject(ns);
	/* build the requested extensions on a scratch certificate */
	X509 *tmp = X509_new();
	X509V3_CTX ctx;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int err = -EIO;
	if (!r || !sn || !tmp || !X509_REQ_set_version(r, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(r, sn) || !X509_REQ_set_pubkey(r, key))
		goto out;
	X509V3_set_ctx(&ctx, NULL, tmp, NULL, NULL, 0);
	if (add_ca_exts(tmp, &ctx, ns, false, NULL))
		goto out;
	exts = sk_X509_EXTENSION_new_null();
	for (int i = 0; exts && i < X509_get_ext_count(tmp); i++)
		if (!sk_X509_EXTENSION_push(exts, X509_get_ext(tmp, i)))
			goto out;
	if (!exts || !X509_REQ_add_extensions(r, exts) || X509_REQ_sign(r, key, lca_sign_md(key)) <= 0)
		goto out;
	err = 0;
out:
	sk_X509_EXTENSION_free(exts);   /* entries belong to tmp */
	X509_free(tmp);
	X509_NAME_free(sn);
	if (err) {
		X509_REQ_free(r);
		lca_fail(e, err, "cannot create the LCA certificate request");
		return NULL;
	}
	return r;
}

X509 *lca_cert_sign(X509_REQ *csr, X509 *issuer, EVP_PKEY *issuer_key, const struct lca_ns *ns,
		    int64_t not_before, int64_t not_after, struct lca_err *e)
{
	return lca_cert_sign_dp(csr, issuer, issuer_key, ns, NULL, not_before, not_after, e);
}

X509 *lca_cert_sign_dp(X509_REQ *csr, X509 *issuer, EVP_PKEY *issuer_key, const struct lca_ns *ns,
		       const char *crl_url, int64_t not_before, int64_t not_after,
		       struct lca_err *e)
{
	if (crl_url && !lcap_url_ok(crl_url)) {
		lca_fail(e, -EINVAL, "CRL URL '%s': want http:// or https://, printable, no commas "
			 "or quotes, at most %d bytes", crl_url, LCA_URL_MAX);
		return NULL;
	}
	EVP_PKEY *pk = X509_REQ_get0_pubkey(csr);
	if (!pk || X509_REQ_verify(csr, pk) != 1) {
		lca_fail(e, -EINVAL, "LCA CSR: signature does not verify");
		return NULL;
	}
	X509 *x = X509_new();
	X509V3_CTX ctx;
	if (!x || !X509_set_version(x, X509_VERSION_3) || lcap_rand_serial(x, NULL, 0) ||
	    !X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(issuer)) ||
	    lcap_set_times(x, not_before, not_after) || !X509_set_pubkey(x, pk))
		goto fail;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (add_ca_exts(x, &ctx, ns, true, crl_url) || X509_sign(x, issuer_key, lca_sign_md(issuer_key)) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	lca_fail(e, -EIO, "cannot issue the LCA certificate");
	return NULL;
}

int lcap_verify_with(X509_STORE *st, X509 *leaf, STACK_OF(X509) *untrusted, int64_t at,
		       unsigned long flags, struct lca_err *e, const char *what)
{
	X509_STORE_CTX *c = X509_STORE_CTX_new();
	if (!c || !X509_STORE_CTX_init(c, st, leaf, untrusted)) {
		X509_STORE_CTX_free(c);
		return lca_fail(e, -ENOMEM, "out of memory");
	}
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(c);
	X509_VERIFY_PARAM_set_flags(p, flags);
	if (at)
		X509_VERIFY_PARAM_set_time(p, (time_t)at);
	int r = X509_verify_cert(c);
	int verr = X509_STORE_CTX_get_error(c);
	X509_STORE_CTX_free(c);
	if (r != 1)
		return lca_fail(e, -EPERM, "%s does not verify: %s", what,
				X509_verify_cert_error_string(verr));
	return 0;
}

static bool self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

/* The CA half of the profile: basicConstraints critical CA:TRUE pathlen 0,
 * keyUsage critical exactly keyCertSign + cRLSign.  lca_ns_from_cert()
 * checks the name constraints. */
static int ca_profile_check(X509 *cert, struct lca_err *e)
{
	int crit = 0;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	int err = 0;
	if (!bc || !bc->ca)
		err = lca_fail(e, -EPERM, "LCA certificate: basicConstraints CA:TRUE missing");
	else if (!crit)
		err = lca_fail(e, -EPERM, "LCA certificate: basicConstraints not critical");
	else if (!bc->pathlen || ASN1_INTEGER_get(bc->pathlen) != 0)
		err = lca_fail(e, -EPERM, "LCA certificate: basicConstraints without pathlen:0 "
			       "(a sub-CA under the LCA could escape its constraints' intent)");
	BASIC_CONSTRAINTS_free(bc);
	if (err)
		return err;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
	uint32_t bits = X509_get_key_usage(cert);
	ASN1_BIT_STRING_free(ku);
	if (!ku)
		return lca_fail(e, -EPERM, "LCA certificate: no keyUsage extension (need critical "
				"keyCertSign, cRLSign)");
	if (!crit)
		return lca_fail(e, -EPERM, "LCA certificate: keyUsage not critical");
	if (bits != (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
		return lca_fail(e, -EPERM, "LCA certificate: keyUsage is 0x%x; need exactly "
				"keyCertSign and cRLSign", bits);
	return 0;
}

int lca_cert_check(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain, int64_t at,
		   struct lca_err *e)
{
	if (X509_check_private_key(cert, key) != 1)
		return lca_fail(e, -EINVAL, "LCA certificate does not match the LCA key");
	if (X509_check_ca(cert) < 1)
		return lca_fail(e, -EPERM, "LCA certificate is not a CA certificate");
	int err = ca_profile_check(cert, e);
	if (err)
		return err;
	struct lca_ns ns;
	err = lca_ns_from_cert(cert, &ns, e);
	if (err)
		return err;
	lca_ns_release(&ns);
	if (!chain || sk_X509_num(chain) == 0)
		return 0;
	X509_STORE *st = X509_STORE_new();
	if (!st)
		return lca_fail(e, -ENOMEM, "out of memory");
	int anchors = 0;
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (self_signed(sk_X509_value(chain, i))) {
			if (!X509_STORE_add_cert(st, sk_X509_value(chain, i))) {
				X509_STORE_free(st);
				return lca_fail(e, -ENOMEM, "out of memory");
			}
			anchors++;
		}
	if (!anchors)
		err = lca_fail(e, -EINVAL, "the chain file has no self-signed root");
	else
		err = lcap_verify_with(st, cert, chain, at, X509_V_FLAG_X509_STRICT, e,
				  "LCA certificate");
	X509_STORE_free(st);
	return err;
}

/* ---- open/close ----------------------------------------------------------- */

int lcap_url_ok(const char *u)
{
	size_t n = strlen(u);
	if (n < 8 || n > LCA_URL_MAX || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= 0x20 || u[i] >= 0x7f || u[i] == ',' || u[i] == '"' || u[i] == '\\')
			return 0;
	return 1;
}

X509_EXTENSION *lcap_make_crldp(const char *url)
{
	char v[LCA_URL_MAX + 8];
	snprintf(v, sizeof(v), "URI:%s", url);
	return X509V3_EXT_conf_nid(NULL, NULL, NID_crl_distribution_points, v);
}

int lca_open_mem_certdb(const struct lca_config *cfg, EVP_PKEY *key, X509 *cert,
			STACK_OF(X509) *chain, struct lca_certdb *db, struct lca **out,
			struct lca_err *e)
{
	if (lca_alloc_nid() == NID_undef)
		return lca_fail(e, -ENOMEM, "cannot register the allocation OID");
	if (!db)
		return lca_fail(e, -EINVAL, "no database");
	if (cfg->crl_url && !lcap_url_ok(cfg->crl_url))
		return lca_fail(e, -EINVAL, "CRL URL '%s': want http:// or https://, printable, "
				"no commas or quotes, at most %d bytes", cfg->crl_url, LCA_URL_MAX);
	int err = lca_cert_check(cert, key, chain, 0, e);
	if (err)
		return err;
	struct lca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return lca_fail(e, -ENOMEM, "out of memory");
	ca->db = db;
	ca->crl_period = cfg->crl_period_s ? cfg->crl_period_s : LCA_DEFAULT_CRL_PERIOD;
	ca->max_lease = cfg->max_lease_s ? cfg->max_lease_s : LCA_DEFAULT_MAX_LEASE;
	ca->selfcheck = !cfg->no_selfcheck;
	if (!EVP_PKEY_up_ref(key) || !X509_up_ref(cert)) {
		free(ca);
		return lca_fail(e, -EIO, "cannot reference the key");
	}
	ca->key = key;
	ca->cert = cert;
	ca->chain = chain ? X509_chain_up_ref(chain) : sk_X509_new_null();
	ca->store = X509_STORE_new();
	if (!ca->chain || !ca->store || !X509_STORE_add_cert(ca->store, cert)) {
		err = lca_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((err = lca_ns_from_cert(cert, &ca->ns, e)))
		goto fail;
	if (cfg->crl_url && !(ca->crldp = lcap_make_crldp(cfg->crl_url))) {
		err = lca_fail(e, -EINVAL, "CRL URL '%s' rejected", cfg->crl_url);
		goto fail;
	}
	if ((err = db->ops->init(db, e)))
		goto fail;
	*out = ca;
	return 0;
fail:
	lca_close(ca);
	return err;
}

/* The same over the ca_ tables of @db: the CA owns the wrapper. */
int lca_open_mem(const struct lca_config *cfg, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
		 sqlite3 *db, struct lca **out, struct lca_err *e)
{
	struct lca_certdb *d = lca_certdb_sqlite(db, e);
	if (!d)
		return db ? -ENOMEM : -EINVAL;
	int err = lca_open_mem_certdb(cfg, key, cert, chain, d, out, e);
	if (err)
		d->ops->free(d);
	else
		(*out)->own_db = d;
	return err;
}

/* Key and certificates from files; @sq or @db. */
static int open_files(const struct lca_config *cfg, sqlite3 *sq, struct lca_certdb *db,
		      struct lca **out, struct lca_err *e)
{
	EVP_PKEY *key = lca_read_key(cfg->key_path, e);
	if (!key)
		return -EINVAL;
	X509 *cert = lca_read_cert(cfg->cert_path, e);
	STACK_OF(X509) *chain = NULL;
	int err = -EINVAL;
	if (cert && (!cfg->chain_path || (chain = lca_read_certs(cfg->chain_path, e))))
		err = db ? lca_open_mem_certdb(cfg, key, cert, chain, db, out, e)
			 : lca_open_mem(cfg, key, cert, chain, sq, out, e);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	return err;
}

int lca_open(const struct lca_config *cfg, sqlite3 *db, struct lca **out, struct lca_err *e)
{
	return open_files(cfg, db, NULL, out, e);
}

int lca_open_certdb(const struct lca_config *cfg, struct lca_certdb *db, struct lca **out,
		    struct lca_err *e)
{
	if (!db)
		return lca_fail(e, -EINVAL, "no certificate store");
	return open_files(cfg, NULL, db, out, e);
}

void lca_close(struct lca *ca)
{
	if (!ca)
		return;
	X509_EXTENSION_free(ca->crldp);
	X509_STORE_free(ca->store);
	sk_X509_pop_free(ca->chain, X509_free);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	lca_ns_release(&ca->ns);
	if (ca->own_db)
		ca->own_db->ops->free(ca->own_db);
	free(ca);
}

const struct lca_ns *lca_namespace(const struct lca *ca) { return &ca->ns; }
X509 *lca_cert(const struct lca *ca) { return ca->cert; }
EVP_PKEY *lca_key(const struct lca *ca) { return ca->key; }

STACK_OF(X509) *lca_chain(const struct lca *ca) { return ca->chain; }
