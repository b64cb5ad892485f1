// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Remote-side verifier (verify.h): the chain and the verdict.  The identity
 * forms and the LCA's constraint set are in verify_identity.c, CRL selection
 * and the high-water state in verify_crl.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"
#include "verify_priv.h"

const char *lca_vcode_name(enum lca_vcode c)
{
	static const char *const n[] = {
		[LCA_V_OK] = "ok", [LCA_V_CHAIN] = "chain", [LCA_V_EXPIRED] = "expired",
		[LCA_V_NAME_CONSTRAINTS] = "name-constraints", [LCA_V_REVOKED] = "revoked",
		[LCA_V_CRL] = "crl", [LCA_V_EXTENSION] = "extension", [LCA_V_ADDRESS] = "address",
		[LCA_V_PORTS] = "ports", [LCA_V_SPIS] = "spis", [LCA_V_IDENTITY] = "identity",
	};
	return (unsigned)c < sizeof(n) / sizeof(n[0]) && n[c] ? n[c] : "unknown";
}

int lca_verdict(struct lca_verify_res *r, enum lca_vcode c, const char *fmt, ...)
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

/* The store of anchors and the context for q->leaf, with q's CRLs (use,
 * created when CRLs are checked without any) and verification flags (also
 * in *flags).  0 or -ENOMEM. */
static int setup_ctx(const struct lca_verify_req *q, X509_STORE *st, X509_STORE_CTX *c,
		     STACK_OF(X509_CRL) **use, unsigned long *flags)
{
	bool with_crl = (q->crls && sk_X509_CRL_num(q->crls) > 0) || q->check_chain ||
			q->require_crl;
	for (int i = 0; st && i < sk_X509_num(q->anchors); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(q->anchors, i)))
			return -ENOMEM;
	if (!st || !c || !X509_STORE_CTX_init(c, st, q->leaf, q->untrusted))
		return -ENOMEM;
	if (with_crl && !*use && !(*use = sk_X509_CRL_new_null()))
		return -ENOMEM;
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(c);
	*flags = X509_V_FLAG_X509_STRICT;
	if (with_crl) {
		X509_STORE_CTX_set0_crls(c, *use);
		*flags |= X509_V_FLAG_CRL_CHECK | (q->check_chain ? X509_V_FLAG_CRL_CHECK_ALL : 0);
	}
	X509_VERIFY_PARAM_set_flags(p, *flags);
	if (q->at)
		X509_VERIFY_PARAM_set_time(p, (time_t)q->at);
	return 0;
}

/* X509_verify_cert refused the chain of c: the verdict, 0, or -errno. */
static int chain_refused(const struct lca_verify_req *q, X509_STORE_CTX *c,
			 STACK_OF(X509_CRL) *use, struct lca_verify_res *r)
{
	int ret, err = X509_STORE_CTX_get_error(c), depth = X509_STORE_CTX_get_error_depth(c);
	/* a revoked certificate: the CRL was genuine, remember it */
	if (err == X509_V_ERR_CERT_REVOKED &&
	    (ret = lca_record_crls(q, use, X509_STORE_CTX_get0_chain(c), r)))
		return ret;
	if (r->code == LCA_V_CRL && r->reason[0])
		return 0;
	lca_verdict(r, classify(err), "certificate at depth %d%s: %s", depth,
		    depth == 0 ? " (host)" : depth == 1 ? " (LCA)" : "",
		    X509_verify_cert_error_string(err));
	return 0;
}

/* The leaf's issuer is an LCA confined to src, and the leaf names only what
 * it issues (sets r->identity).  0 if so, else 1 with the verdict in r. */
static int check_confined(const struct lca_verify_req *q, STACK_OF(X509) *chain,
			  const char *src, struct lca_verify_res *r)
{
	struct lca_ns ns;
	struct lca_err e;
	if (sk_X509_num(chain) < 2 || lca_check_lca(sk_X509_value(chain, 1), &ns, &e)) {
		lca_verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuer is not an LCA confined to one "
			    "global address: %s", sk_X509_num(chain) < 2 ? "no issuer" : e.msg);
		return 1;
	}
	if (ns.g_be != q->src_be) {
		char gs[INET_ADDRSTRLEN];
		struct in_addr ia = { .s_addr = ns.g_be };
		inet_ntop(AF_INET, &ia, gs, sizeof(gs));
		lca_ns_release(&ns);
		lca_verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuing LCA is confined to %s, traffic "
			    "comes from %s", gs, src);
		return 1;
	}
	int bad = lca_check_identity(q->leaf, &ns, r->identity, sizeof(r->identity), &e);
	lca_ns_release(&ns);
	if (bad) {
		lca_verdict(r, LCA_V_IDENTITY, "host certificate: %s", e.msg);
		return 1;
	}
	return 0;
}

/* Every range of want inside the certified have (ports, or SPIs when spi).
 * 0 if so, else 1 with the verdict in r. */
static int check_ranges(const struct lca_range *want, unsigned n, const struct lca_range *have,
			unsigned n_have, bool spi, struct lca_verify_res *r)
{
	for (unsigned i = 0; i < n; i++) {
		if (lca_ranges_cover(have, n_have, want[i].first, want[i].last))
			continue;
		char cert[LCA_MAX_RANGES * 24], w[32];
		lca_ranges_fmt(cert, sizeof(cert), have, n_have, spi);
		lca_ranges_fmt(w, sizeof(w), &want[i], 1, spi);
		lca_verdict(r, spi ? LCA_V_SPIS : LCA_V_PORTS, "%s %s is not inside the certified "
			    "%s %s", spi ? "SPI" : "port", w, spi ? "SPIs" : "ports",
			    cert[0] ? cert : "(none)");
		return 1;
	}
	return 0;
}

/* The allocation extension: src is the certified address (and an iPAddress
 * SAN), the ports and SPIs in use are certified.  0 if so, else 1 with the
 * verdict in r. */
static int check_allocation(const struct lca_verify_req *q, const char *src,
			    struct lca_verify_res *r)
{
	struct lca_err e;
	if (lca_alloc_from_cert(q->leaf, &r->alloc, &e)) {
		lca_verdict(r, LCA_V_EXTENSION, "%s", e.msg);
		return 1;
	}
	r->have_alloc = true;
	if (!san_has_ip(q->leaf, q->src_be)) {
		lca_verdict(r, LCA_V_ADDRESS, "%s is not an iPAddress in the host certificate", src);
		return 1;
	}
	if (r->alloc.gaddr_len != 4 || memcmp(r->alloc.gaddr, &q->src_be, 4)) {
		lca_verdict(r, LCA_V_ADDRESS, "%s is not the certified global address", src);
		return 1;
	}
	return check_ranges(q->ports, q->n_ports, r->alloc.ports, r->alloc.n_ports, false, r) ||
	       check_ranges(q->spis, q->n_spis, r->alloc.spis, r->alloc.n_spis, true, r);
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
	if (!q->allow_unconstrained)
		r->identity[0] = 0;      /* set only once lca_check_identity accepts it */

	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *c = X509_STORE_CTX_new();
	STACK_OF(X509_CRL) *use = NULL;
	unsigned long flags = 0;
	int ret = 0;
	if (q->crls && sk_X509_CRL_num(q->crls) > 0) {
		/* the newest CRL of each signer only, never one older than seen */
		if ((ret = lca_pick_crls(q, &use, r)) || !use)
			goto out;
	}
	if ((ret = setup_ctx(q, st, c, &use, &flags))) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		goto out;
	}
	if (X509_verify_cert(c) != 1) {
		ret = chain_refused(q, c, use, r);
		goto out;
	}
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(c);
	if (X509_check_ca(q->leaf) != 0) {
		lca_verdict(r, LCA_V_CHAIN, "the host certificate is a CA certificate");
		goto out;
	}
	if (!q->allow_unconstrained && check_confined(q, chain, src, r))
		goto out;
	if ((ret = lca_record_crls(q, use, chain, r)) || r->code == LCA_V_CRL)
		goto out;
	if (check_allocation(q, src, r))
		goto out;
	lca_verdict(r, LCA_V_OK, "chain valid%s, name constraints hold, %s is the certified "
		    "address, ports and SPIs inside the certified ranges",
		    flags & X509_V_FLAG_CRL_CHECK_ALL ? ", no certificate of the chain revoked" :
		    flags & X509_V_FLAG_CRL_CHECK ? ", not revoked" : " (no CRL checked)", src);
out:
	X509_STORE_CTX_free(c);
	X509_STORE_free(st);
	sk_X509_CRL_pop_free(use, X509_CRL_free);
	ERR_clear_error();
	return ret;
}
