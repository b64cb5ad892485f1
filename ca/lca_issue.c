// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: host certificate issuance. */
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

/* ---- issuance --------------------------------------------------------------- */

static int text_ok(const char *s, size_t max, bool user)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (user ? !(isalnum(c) || c == '.' || c == '_' || c == '-') : (c < 0x21 || c > 0x7e))
			return 0;
	}
	return !(user && (s[0] == '.' || s[n - 1] == '.' || strstr(s, "..")));
}

static int merge(const struct lca_range *in, unsigned n, uint32_t min, uint32_t max,
		 struct lca_range *out, unsigned *nout, const char *what, struct lca_err *e)
{
	struct lca_range t[LCA_MAX_RANGES];
	if (n > LCA_MAX_RANGES)
		return lca_fail(e, -EINVAL, "%u %s ranges, at most %d", n, what, LCA_MAX_RANGES);
	for (unsigned i = 0; i < n; i++) {
		if (in[i].first > in[i].last || in[i].first < min || in[i].last > max)
			return lca_fail(e, -EINVAL, "%s range %u-%u empty or outside %u-%u", what,
					in[i].first, in[i].last, min, max);
		t[i] = in[i];
	}
	/* insertion sort: n <= 32 */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && t[j].first < t[j - 1].first; j--) {
			struct lca_range x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	unsigned m = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m && (uint64_t)t[i].first <= (uint64_t)out[m - 1].last + 1) {
			if (t[i].last > out[m - 1].last)
				out[m - 1].last = t[i].last;
		} else {
			out[m++] = t[i];
		}
	}
	*nout = m;
	return 0;
}

static GENERAL_NAME *gn_new(int type, void *val)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	if (g)
		GENERAL_NAME_set0_value(g, type, val);
	return g;
}

static int add_san(X509 *x, uint32_t g_be, int type, const char *name)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
	ASN1_IA5STRING *s = lcap_ia5(name);
	GENERAL_NAME *g1 = NULL, *g2 = NULL;
	int ok = gens && ip && s && ASN1_OCTET_STRING_set(ip, (unsigned char *)&g_be, 4);
	if (ok && (g1 = gn_new(GEN_IPADD, ip)))
		ip = NULL;
	if (ok && g1 && (g2 = gn_new(type, s)))
		s = NULL;
	ok = ok && g1 && g2 && sk_GENERAL_NAME_push(gens, g1);
	if (ok)
		g1 = NULL;
	ok = ok && sk_GENERAL_NAME_push(gens, g2);
	if (ok)
		g2 = NULL;
	ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAME_free(g1);
	GENERAL_NAME_free(g2);
	ASN1_OCTET_STRING_free(ip);
	ASN1_IA5STRING_free(s);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -EIO;
}

static int store_cert(struct lca *ca, const struct lca_issue_req *rq, const struct lca_issued *o,
		      const struct lca_alloc *a, struct lca_err *e)
{
	char lan[INET_ADDRSTRLEN], ports[LCA_MAX_RANGES * 14], spis[LCA_MAX_RANGES * 24];
	lcap_ip_str(rq->lan_be, lan, sizeof(lan));
	lca_ranges_fmt(ports, sizeof(ports), a->ports, a->n_ports, false);
	lca_ranges_fmt(spis, sizeof(spis), a->spis, a->n_spis, true);
	struct lca_record r = {
		.serial = o->serial, .host_id = rq->host_id, .identity = o->identity, .lan = lan,
		.ports = ports, .spis = spis, .not_before = rq->not_before,
		.not_after = rq->not_after, .issued_at = (int64_t)time(NULL), .der = o->der,
		.der_len = o->der_len,
	};
	return ca->db->ops->insert(ca->db, &r, e);
}

void lca_issued_free(struct lca_issued *r)
{
	if (!r)
		return;
	OPENSSL_free(r->der);
	r->der = NULL;
	r->der_len = 0;
}

int lca_issue(struct lca *ca, const struct lca_issue_req *rq, struct lca_issued *out,
	      struct lca_err *e)
{
	struct lca_alloc a;
	char g[INET_ADDRSTRLEN], lan[INET_ADDRSTRLEN], cn[LCA_ID_MAX + 300];
	int err;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	if (!text_ok(rq->host_id, LCA_ID_MAX, false))
		return lca_fail(e, -EINVAL, "host id: 1 to %d printable ASCII characters, no spaces",
				LCA_ID_MAX);
	if (rq->user && !text_ok(rq->user, 64, true))
		return lca_fail(e, -EINVAL, "user: 1 to 64 of [A-Za-z0-9._-], no leading, trailing "
				"or double dot");
	uint32_t lh = ntohl(rq->lan_be);
	if (lh == 0 || lh == UINT32_MAX || (lh >> 24) == 127 || (lh >> 28) == 14)
		return lca_fail(e, -EINVAL, "LAN address must be a unicast address");
	if (rq->lan_be == ca->ns.g_be)
		return lca_fail(e, -EINVAL, "LAN address equals the global address");
	if (rq->not_after <= rq->not_before || rq->not_before < 0)
		return lca_fail(e, -EINVAL, "lease: not_after must be after not_before");
	if (rq->not_after - rq->not_before > (int64_t)ca->max_lease)
		return lca_fail(e, -EINVAL, "lease of %lld s exceeds the limit of %u s",
				(long long)(rq->not_after - rq->not_before), ca->max_lease);
	if ((err = merge(rq->ports, rq->n_ports, 0, 65535, a.ports, &a.n_ports, "port", e)) ||
	    (err = merge(rq->spis, rq->n_spis, LCA_SPI_MIN, UINT32_MAX, a.spis, &a.n_spis, "SPI", e)))
		return err;
	if (a.n_ports + a.n_spis == 0)
		return lca_fail(e, -EINVAL, "no port or SPI range to certify");
	memcpy(a.gaddr, &ca->ns.g_be, 4);
	a.gaddr_len = 4;

	X509_REQ *req;
	if ((err = lcap_parse_csr(rq->csr, rq->csr_len, &req, e)))
		return err;

	lcap_ip_str(ca->ns.g_be, g, sizeof(g));
	lcap_ip_str(rq->lan_be, lan, sizeof(lan));
	int san_type;
	if (rq->user) {
		snprintf(out->identity, sizeof(out->identity), "%s@%s", rq->user, ca->ns.domain);
		snprintf(cn, sizeof(cn), "%s", out->identity);
		san_type = GEN_EMAIL;
	} else {
		/* G + LAN as a DNS name below the domain: every verifier family
		 * can check a dNSName under a DNS constraint (Python cryptography
		 * cannot check a URI under a URI constraint). 10.0.0.2 -> 10-0-0-2 */
		uint32_t h = ntohl(rq->lan_be);
		int n = snprintf(out->identity, sizeof(out->identity), "%u-%u-%u-%u.%s", h >> 24,
				 (h >> 16) & 255, (h >> 8) & 255, h & 255, ca->ns.domain);
		if (n < 0 || n > 253) {
			X509_REQ_free(req);
			return lca_fail(e, -EINVAL, "the host's DNS name would exceed 253 bytes "
					"(domain too long)");
		}
		snprintf(cn, sizeof(cn), "%s@%s", lan, g);
		san_type = GEN_DNS;
	}
	X509 *x = X509_new();
	X509_NAME *sn = ca->ns.dn ? X509_NAME_dup(ca->ns.dn) : X509_NAME_new();
	X509V3_CTX ctx;
	err = -EIO;
	if (!x || !sn ||
	    !X509_NAME_add_entry_by_NID(sn, NID_commonName, MBSTRING_UTF8, (unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    lcap_rand_serial(x, out->serial, sizeof(out->serial)) || !X509_set_subject_name(x, sn) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    lcap_set_times(x, rq->not_before > LCA_BACKDATE_S ? rq->not_before - LCA_BACKDATE_S : 0,
			   rq->not_after) ||
	    !X509_set_pubkey(x, X509_REQ_get0_pubkey(req))) {
		lca_fail(e, err, "cannot build the certificate");
		goto out;
	}
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (lcap_add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    lcap_add_conf_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
	    lcap_add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    lcap_add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
	    add_san(x, ca->ns.g_be, san_type, out->identity) ||
	    (ca->crldp && !X509_add_ext(x, ca->crldp, -1))) {
		lca_fail(e, err, "cannot add the certificate extensions");
		goto out;
	}
	if ((err = lca_alloc_add(x, &a, e)))
		goto out;
	if (X509_sign(x, ca->key, lca_sign_md(ca->key)) <= 0) {
		err = lca_fail(e, -EIO, "signing failed");
		goto out;
	}
	/* Never hand out what a verifier would refuse: chain to the LCA,
	 * name constraints included (they are checked on trust anchors too). */
	int64_t at = time(NULL);     /* now, clamped into the lease */
	at = at < rq->not_before ? rq->not_before : at > rq->not_after ? rq->not_after : at;
	if (ca->selfcheck &&
	    (err = lcap_verify_with(ca->store, x, ca->chain, at,
			       X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT, e,
			       "the new certificate")))
		goto out;
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	if (n <= 0) {
		err = lca_fail(e, -EIO, "cannot encode the certificate");
		goto out;
	}
	out->der = der;
	out->der_len = (size_t)n;
	if ((err = ca->db->ops->begin(ca->db, e)))
		goto out;
	err = ca->db->ops->end(ca->db, store_cert(ca, rq, out, &a, e), e);
out:
	if (err)
		lca_issued_free(out);
	X509_NAME_free(sn);
	X509_free(x);
	X509_REQ_free(req);
	return err;
}
