// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Remote-side verifier (verify.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

const char *lca_vcode_name(enum lca_vcode c)
{
	static const char *const n[] = {
		[LCA_V_OK] = "ok", [LCA_V_CHAIN] = "chain", [LCA_V_EXPIRED] = "expired",
		[LCA_V_NAME_CONSTRAINTS] = "name-constraints", [LCA_V_REVOKED] = "revoked",
		[LCA_V_CRL] = "crl", [LCA_V_EXTENSION] = "extension", [LCA_V_ADDRESS] = "address",
		[LCA_V_PORTS] = "ports", [LCA_V_SPIS] = "spis",
	};
	return (unsigned)c < sizeof(n) / sizeof(n[0]) && n[c] ? n[c] : "unknown";
}

static int verdict(struct lca_verify_res *r, enum lca_vcode c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int verdict(struct lca_verify_res *r, enum lca_vcode c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->ok = c == LCA_V_OK;
	r->code = c;
	ERR_clear_error();
	return 0;
}

static enum lca_vcode classify(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return LCA_V_EXPIRED;
	case X509_V_ERR_PERMITTED_VIOLATION:
	case X509_V_ERR_EXCLUDED_VIOLATION:
	case X509_V_ERR_SUBTREE_MINMAX:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
	case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
		return LCA_V_NAME_CONSTRAINTS;
	case X509_V_ERR_CERT_REVOKED:
		return LCA_V_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		return LCA_V_CRL;
	default:
		return LCA_V_CHAIN;
	}
}

static void fill_info(X509 *leaf, struct lca_verify_res *r)
{
	lca_dn_str(X509_get_subject_name(leaf), r->subject, sizeof(r->subject));
	const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	snprintf(r->serial, sizeof(r->serial), "%s", h ? h : "?");
	OPENSSL_free(h);
	BN_free(bn);
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && !r->identity[0]; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI && g->type != GEN_EMAIL && g->type != GEN_DNS)
			continue;
		const ASN1_STRING *s = g->type == GEN_URI ? g->d.uniformResourceIdentifier
				     : g->type == GEN_DNS ? g->d.dNSName : g->d.rfc822Name;
		int n = ASN1_STRING_length(s);
		const unsigned char *d = ASN1_STRING_get0_data(s);
		if (n > 0 && (size_t)n < sizeof(r->identity) && !memchr(d, 0, (size_t)n)) {
			memcpy(r->identity, d, (size_t)n);
			r->identity[n] = 0;
		}
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
}

static bool san_has_ip(X509 *leaf, uint32_t be)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	bool hit = false;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && !hit; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		hit = g->type == GEN_IPADD && ASN1_STRING_length(g->d.ip) == 4 &&
		      !memcmp(ASN1_STRING_get0_data(g->d.ip), &be, 4);
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return hit;
}

int lca_verify(const struct lca_verify_req *q, struct lca_verify_res *r)
{
	char src[INET_ADDRSTRLEN];
	memset(r, 0, sizeof(*r));
	r->code = LCA_V_CHAIN;
	if (!q->leaf || !q->anchors || sk_X509_num(q->anchors) == 0) {
		snprintf(r->reason, sizeof(r->reason), "need a host certificate and trust anchors");
		return -EINVAL;
	}
	if (lca_alloc_nid() == NID_undef) {
		snprintf(r->reason, sizeof(r->reason), "cannot register the allocation OID");
		return -ENOMEM;
	}
	struct in_addr ia = { .s_addr = q->src_be };
	inet_ntop(AF_INET, &ia, src, sizeof(src));
	fill_info(q->leaf, r);

	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *c = X509_STORE_CTX_new();
	int ret = 0;
	for (int i = 0; st && i < sk_X509_num(q->anchors); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(q->anchors, i)))
			goto nomem;
	if (!st || !c || !X509_STORE_CTX_init(c, st, q->leaf, q->untrusted))
		goto nomem;
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(c);
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	if (q->crls && sk_X509_CRL_num(q->crls) > 0) {
		X509_STORE_CTX_set0_crls(c, q->crls);
		flags |= X509_V_FLAG_CRL_CHECK;
	}
	X509_VERIFY_PARAM_set_flags(p, flags);
	if (q->at)
		X509_VERIFY_PARAM_set_time(p, (time_t)q->at);
	if (X509_verify_cert(c) != 1) {
		int err = X509_STORE_CTX_get_error(c);
		verdict(r, classify(err), "certificate at depth %d: %s", X509_STORE_CTX_get_error_depth(c),
			X509_verify_cert_error_string(err));
		goto out;
	}
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(c);
	if (X509_check_ca(q->leaf) != 0) {
		verdict(r, LCA_V_CHAIN, "the host certificate is a CA certificate");
		goto out;
	}
	if (!q->allow_unconstrained) {
		struct lca_ns ns;
		struct lca_err e;
		if (sk_X509_num(chain) < 2 ||
		    lca_ns_from_cert(sk_X509_value(chain, 1), &ns, &e)) {
			verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuer is not an LCA confined to one "
				"global address: %s", sk_X509_num(chain) < 2 ? "no issuer" : e.msg);
			goto out;
		}
		uint32_t g = ns.g_be;
		lca_ns_release(&ns);
		if (g != q->src_be) {
			char gs[INET_ADDRSTRLEN];
			ia.s_addr = g;
			inet_ntop(AF_INET, &ia, gs, sizeof(gs));
			verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuing LCA is confined to %s, traffic "
				"comes from %s", gs, src);
			goto out;
		}
	}
	struct lca_err e;
	int err = lca_alloc_from_cert(q->leaf, &r->alloc, &e);
	if (err) {
		verdict(r, LCA_V_EXTENSION, "%s", e.msg);
		goto out;
	}
	r->have_alloc = true;
	if (!san_has_ip(q->leaf, q->src_be)) {
		verdict(r, LCA_V_ADDRESS, "%s is not an iPAddress in the host certificate", src);
		goto out;
	}
	if (r->alloc.gaddr_len != 4 || memcmp(r->alloc.gaddr, &q->src_be, 4)) {
		verdict(r, LCA_V_ADDRESS, "%s is not the certified global address", src);
		goto out;
	}
	for (unsigned i = 0; i < q->n_ports; i++)
		if (!lca_ranges_cover(r->alloc.ports, r->alloc.n_ports, q->ports[i].first,
				      q->ports[i].last)) {
			char cert[LCA_MAX_RANGES * 14];
			lca_ranges_fmt(cert, sizeof(cert), r->alloc.ports, r->alloc.n_ports, false);
			char want[32];
			lca_ranges_fmt(want, sizeof(want), &q->ports[i], 1, false);
			verdict(r, LCA_V_PORTS, "port %s is not inside the certified ports %s", want,
				cert[0] ? cert : "(none)");
			goto out;
		}
	for (unsigned i = 0; i < q->n_spis; i++)
		if (!lca_ranges_cover(r->alloc.spis, r->alloc.n_spis, q->spis[i].first,
				      q->spis[i].last)) {
			char cert[LCA_MAX_RANGES * 24];
			lca_ranges_fmt(cert, sizeof(cert), r->alloc.spis, r->alloc.n_spis, true);
			char want[32];
			lca_ranges_fmt(want, sizeof(want), &q->spis[i], 1, true);
			verdict(r, LCA_V_SPIS, "SPI %s is not inside the certified SPIs %s", want,
				cert[0] ? cert : "(none)");
			goto out;
		}
	verdict(r, LCA_V_OK, "chain valid%s, name constraints hold, %s is the certified address, "
		"ports and SPIs inside the certified ranges",
		flags & X509_V_FLAG_CRL_CHECK ? ", not revoked" : " (no CRL checked)", src);
	goto out;
nomem:
	snprintf(r->reason, sizeof(r->reason), "out of memory");
	ret = -ENOMEM;
out:
	X509_STORE_CTX_free(c);
	X509_STORE_free(st);
	ERR_clear_error();
	return ret;
}

STACK_OF(X509_CRL) *lca_read_crls(const char *path, struct lca_err *e)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	if (lca_read_file(path, 16 << 20, &buf, &len, e))
		return NULL;
	STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
	int bad = !sk;
	if (!bad && len > 10 && !memcmp(buf, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);
		X509_CRL *crl;
		while (b && (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)))
			if (!sk_X509_CRL_push(sk, crl)) {
				X509_CRL_free(crl);
				bad = 1;
				break;
			}
		BIO_free(b);
		if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
			ERR_clear_error();
	} else if (!bad) {
		const unsigned char *p = buf;
		X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (!crl || (size_t)(p - buf) != len || !sk_X509_CRL_push(sk, crl)) {
			X509_CRL_free(crl);
			bad = 1;
		}
	}
	free(buf);
	if (bad || sk_X509_CRL_num(sk) == 0 || ERR_peek_error()) {
		lca_fail(e, -EINVAL, "%s: not a PEM or DER CRL", path);
		sk_X509_CRL_pop_free(sk, X509_CRL_free);
		return NULL;
	}
	return sk;
}
