// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Revocation notices: see notice.h (format) and docs/LCA.md. */
#include <errno.h>
#include <string.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include "notice.h"

typedef struct {
	ASN1_INTEGER *serial;
	ASN1_GENERALIZEDTIME *date;
	ASN1_ENUMERATED *reason;
	ASN1_UTF8STRING *identity;
} XDNAT_REVOKED;

typedef struct {
	ASN1_INTEGER *version;
	ASN1_OCTET_STRING *gaddr;
	ASN1_INTEGER *crl_number;
	ASN1_GENERALIZEDTIME *produced;
	STACK_OF(XDNAT_REVOKED) *revoked;
} XDNAT_NOTICE;

DEFINE_STACK_OF(XDNAT_REVOKED)

ASN1_SEQUENCE(XDNAT_REVOKED) = {
	ASN1_SIMPLE(XDNAT_REVOKED, serial, ASN1_INTEGER),
	ASN1_SIMPLE(XDNAT_REVOKED, date, ASN1_GENERALIZEDTIME),
	ASN1_SIMPLE(XDNAT_REVOKED, reason, ASN1_ENUMERATED),
	ASN1_SIMPLE(XDNAT_REVOKED, identity, ASN1_UTF8STRING),
} ASN1_SEQUENCE_END(XDNAT_REVOKED)

ASN1_SEQUENCE(XDNAT_NOTICE) = {
	ASN1_SIMPLE(XDNAT_NOTICE, version, ASN1_INTEGER),
	ASN1_SIMPLE(XDNAT_NOTICE, gaddr, ASN1_OCTET_STRING),
	ASN1_SIMPLE(XDNAT_NOTICE, crl_number, ASN1_INTEGER),
	ASN1_SIMPLE(XDNAT_NOTICE, produced, ASN1_GENERALIZEDTIME),
	ASN1_SEQUENCE_OF(XDNAT_NOTICE, revoked, XDNAT_REVOKED),
} ASN1_SEQUENCE_END(XDNAT_NOTICE)

DECLARE_ASN1_FUNCTIONS(XDNAT_REVOKED)
DECLARE_ASN1_FUNCTIONS(XDNAT_NOTICE)
IMPLEMENT_ASN1_FUNCTIONS(XDNAT_REVOKED)
IMPLEMENT_ASN1_FUNCTIONS(XDNAT_NOTICE)

static ASN1_OBJECT *notice_oid(void)
{
	return OBJ_txt2obj(LCA_OID_NOTICE, 1);
}

static int64_t crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	int64_t v = -1;

	if (n && !ASN1_INTEGER_get_int64(&v, n))
		v = -1;
	ASN1_INTEGER_free(n);
	return v;
}

static XDNAT_REVOKED *make_entry(const struct lca_notice_entry *e)
{
	XDNAT_REVOKED *r = XDNAT_REVOKED_new();
	BIGNUM *bn = NULL;
	int ok = r && BN_hex2bn(&bn, e->serial) > 0 && BN_to_ASN1_INTEGER(bn, r->serial) &&
		 ASN1_GENERALIZEDTIME_set(r->date, (time_t)e->revoked_at) &&
		 ASN1_ENUMERATED_set(r->reason, e->reason) &&
		 ASN1_STRING_set(r->identity, e->identity, (int)strlen(e->identity));

	BN_free(bn);
	if (!ok) {
		XDNAT_REVOKED_free(r);
		return NULL;
	}
	return r;
}

int lca_notice_make(struct lca *ca, const struct lca_notice_entry *e, unsigned n,
		    const unsigned char *crl, size_t crl_len, int64_t now, unsigned char **der,
		    size_t *len, struct lca_err *err)
{
	XDNAT_NOTICE *nt = XDNAT_NOTICE_new();
	const struct lca_ns *ns = lca_namespace(ca);
	X509_CRL *c = NULL;
	CMS_ContentInfo *cms = NULL;
	ASN1_OBJECT *oid = notice_oid();
	unsigned char *content = NULL, *out = NULL;
	BIO *bio = NULL;
	int clen, olen, rc = -EIO;

	if (!n || n > LCA_NOTICE_MAX) {
		rc = lca_fail(err, -EINVAL, "a notice carries 1 to %d revocations", LCA_NOTICE_MAX);
		goto out;
	}
	if (crl) {
		const unsigned char *p = crl;

		c = d2i_X509_CRL(NULL, &p, (long)crl_len);
		if (!c || p != crl + crl_len) {
			rc = lca_fail(err, -EINVAL, "notice: the CRL does not parse");
			goto out;
		}
	}
	if (!nt || !oid || !ASN1_INTEGER_set(nt->version, 1) ||
	    !ASN1_OCTET_STRING_set(nt->gaddr, (const unsigned char *)&ns->g_be, 4) ||
	    !ASN1_INTEGER_set_int64(nt->crl_number, c ? crl_number(c) : 0) ||
	    !ASN1_GENERALIZEDTIME_set(nt->produced, (time_t)now))
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		XDNAT_REVOKED *r = make_entry(&e[i]);

		if (!r || !sk_XDNAT_REVOKED_push(nt->revoked, r)) {
			XDNAT_REVOKED_free(r);
			goto fail;
		}
	}
	clen = i2d_XDNAT_NOTICE(nt, &content);
	if (clen <= 0 || !(bio = BIO_new_mem_buf(content, clen)))
		goto fail;
	cms = CMS_sign(lca_cert(ca), lca_key(ca), lca_chain(ca), NULL,
		       CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP);
	if (!cms || !CMS_set1_eContentType(cms, oid) || !CMS_final(cms, bio, NULL, CMS_BINARY) ||
	    (c && !CMS_add1_crl(cms, c)))
		goto fail;
	olen = i2d_CMS_ContentInfo(cms, &out);
	if (olen <= 0)
		goto fail;
	if (olen > LCA_NOTICE_MAX_DER) {
		OPENSSL_free(out);
		rc = lca_fail(err, -E2BIG, "notice of %d bytes does not fit a datagram", olen);
		goto out;
	}
	*der = out;
	*len = (size_t)olen;
	rc = 0;
	goto out;
fail:
	rc = lca_fail(err, -EIO, "cannot make the revocation notice");
out:
	BIO_free(bio);
	OPENSSL_free(content);
	CMS_ContentInfo_free(cms);
	ASN1_OBJECT_free(oid);
	X509_CRL_free(c);
	XDNAT_NOTICE_free(nt);
	return rc;
}

void lca_notice_release(struct lca_notice *n)
{
	X509_CRL_free(n->crl);
	n->crl = NULL;
	EVP_PKEY_free(n->crl_key);
	n->crl_key = NULL;
}

/* The content, strictly: DER (re-encodes to the same bytes), version 1,
 * an IPv4 address, 1..LCA_NOTICE_MAX entries. */
static int decode_content(const unsigned char *p, long len, struct lca_notice *out,
			  struct lca_err *err)
{
	const unsigned char *q = p;
	XDNAT_NOTICE *nt = d2i_XDNAT_NOTICE(NULL, &q, len);
	unsigned char *re = NULL;
	int rl, rc = -EINVAL;
	int64_t v;
	struct tm tm;

	if (!nt || q != p + len) {
		rc = lca_fail(err, -EINVAL, "notice content does not decode");
		goto out;
	}
	rl = i2d_XDNAT_NOTICE(nt, &re);
	if (rl != len || memcmp(re, p, (size_t)len)) {
		rc = lca_fail(err, -EINVAL, "notice content is not DER");
		goto out;
	}
	if (!ASN1_INTEGER_get_int64(&v, nt->version) || v != 1) {
		rc = lca_fail(err, -EINVAL, "notice version is not 1");
		goto out;
	}
	if (ASN1_STRING_length(nt->gaddr) != 4) {
		rc = lca_fail(err, -EINVAL, "notice global address is not IPv4");
		goto out;
	}
	memcpy(&out->g_be, ASN1_STRING_get0_data(nt->gaddr), 4);
	if (!ASN1_INTEGER_get_int64(&out->crl_number, nt->crl_number) ||
	    !ASN1_TIME_to_tm(nt->produced, &tm)) {
		rc = lca_fail(err, -EINVAL, "notice CRL number or time unusable");
		goto out;
	}
	out->produced_at = (int64_t)timegm(&tm);
	out->n = (unsigned)sk_XDNAT_REVOKED_num(nt->revoked);
	if (out->n == 0 || out->n > LCA_NOTICE_MAX) {
		rc = lca_fail(err, -EINVAL, "notice carries %u revocations (1..%d)", out->n,
			      LCA_NOTICE_MAX);
		goto out;
	}
	for (unsigned i = 0; i < out->n; i++) {
		XDNAT_REVOKED *r = sk_XDNAT_REVOKED_value(nt->revoked, (int)i);
		struct lca_notice_entry *e = &out->e[i];
		BIGNUM *bn = ASN1_INTEGER_to_BN(r->serial, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		long reason = ASN1_ENUMERATED_get(r->reason);
		int il = ASN1_STRING_length(r->identity);
		const unsigned char *id = ASN1_STRING_get0_data(r->identity);
		bool ok = hex && strlen(hex) < sizeof(e->serial) && BN_is_negative(bn) == 0 &&
			  ASN1_TIME_to_tm(r->date, &tm) && reason >= 0 && reason <= 10 && il >= 0 &&
			  (size_t)il < sizeof(e->identity);

		for (int k = 0; ok && k < il; k++)
			ok = id[k] >= 0x20 && id[k] < 0x7f;
		if (ok) {
			snprintf(e->serial, sizeof(e->serial), "%s", hex);
			e->revoked_at = (int64_t)timegm(&tm);
			e->reason = (int)reason;
			memcpy(e->identity, id, (size_t)il);
			e->identity[il] = 0;
		}
		OPENSSL_free(hex);
		BN_free(bn);
		if (!ok) {
			rc = lca_fail(err, -EINVAL, "notice entry %u is unusable", i);
			goto out;
		}
	}
	rc = 0;
out:
	OPENSSL_free(re);
	XDNAT_NOTICE_free(nt);
	return rc;
}

int lca_notice_verify(const unsigned char *der, size_t len, STACK_OF(X509) *anchors, int64_t at,
		      struct lca_notice *out, struct lca_err *err)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	X509_STORE *st = X509_STORE_new();
	X509_VERIFY_PARAM *vp = X509_VERIFY_PARAM_new();
	ASN1_OBJECT *oid = notice_oid();
	STACK_OF(X509) *signers = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	BIO *content = BIO_new(BIO_s_mem());
	struct lca_ns ns = { 0 };
	char *data;
	long dlen;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!st || !vp || !oid || !content || !anchors) {
		rc = lca_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (len == 0 || len > LCA_NOTICE_MAX_DER) {
		rc = lca_fail(err, -EINVAL, "notice of %zu bytes", len);
		goto out;
	}
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	if (!cms || p != der + len) {
		rc = lca_fail(err, -EINVAL, "not a DER CMS message");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    OBJ_cmp(CMS_get0_eContentType(cms), oid)) {
		rc = lca_fail(err, -EINVAL, "not a SignedData xdnat revocation notice");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(anchors); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(anchors, i))) {
			rc = lca_fail(err, -EIO, "cannot use the trust anchors");
			goto out;
		}
	/* The LCA signs with its CA key (keyCertSign, cRLSign), as it signs
	 * CRLs: no S/MIME purpose; the chain still has to verify. */
	X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_ANY);
	if (at)
		X509_VERIFY_PARAM_set_time(vp, (time_t)at);
	X509_STORE_set1_param(st, vp);
	if (CMS_verify(cms, NULL, st, NULL, content, CMS_BINARY) != 1) {
		rc = lca_fail(err, -EPERM, "signature or chain does not verify");
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (!signers || sk_X509_num(signers) != 1) {
		rc = lca_fail(err, -EPERM, "the notice must have exactly one signer");
		goto out;
	}
	X509 *lca = sk_X509_value(signers, 0);
	if (lca_ns_from_cert(lca, &ns, err)) {
		rc = -EPERM;
		goto out;
	}
	lca_dn_str(X509_get_subject_name(lca), out->signer, sizeof(out->signer));
	dlen = BIO_get_mem_data(content, &data);
	if (dlen <= 0 || (rc = decode_content((const unsigned char *)data, dlen, out, err)))
		goto out;
	if (out->g_be != ns.g_be) {
		rc = lca_fail(err, -EPERM, "the notice names another global address than its LCA's");
		goto out;
	}
	crls = CMS_get1_crls(cms);
	if (crls && sk_X509_CRL_num(crls) > 0) {
		X509_CRL *c = sk_X509_CRL_value(crls, 0);
		EVP_PKEY *k = X509_get0_pubkey(lca);

		if (sk_X509_CRL_num(crls) != 1 || !k || X509_CRL_verify(c, k) != 1 ||
		    X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(lca))) {
			rc = lca_fail(err, -EPERM, "the CRL in the notice is not its LCA's");
			goto out;
		}
		out->crl = X509_CRL_dup(c);
		if (out->crl && EVP_PKEY_up_ref(k))
			out->crl_key = k;
		if (!out->crl || !out->crl_key) {
			rc = lca_fail(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	if (rc)
		lca_notice_release(out);
	lca_ns_release(&ns);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	sk_X509_free(signers);
	BIO_free(content);
	ASN1_OBJECT_free(oid);
	X509_VERIFY_PARAM_free(vp);
	X509_STORE_free(st);
	CMS_ContentInfo_free(cms);
	return rc;
}
