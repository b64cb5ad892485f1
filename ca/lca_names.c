// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: CSR checks, distinguished names, the namespace of G. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

/* ---- CSR checks --------------------------------------------------------- */

/* Printable UTF-8 text of an ASN1 string, no control characters. */
static int string_ok(const ASN1_STRING *s, size_t max)
{
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, s);
	if (n < 0)
		return 0;
	int ok = (size_t)n <= max;
	for (int i = 0; ok && i < n; i++)
		if (u[i] < 0x20 || u[i] == 0x7f)
			ok = 0;
	OPENSSL_free(u);
	return ok;
}

static int check_key(EVP_PKEY *k, struct lca_err *e)
{
	int id = EVP_PKEY_get_base_id(k);

	if (id == EVP_PKEY_EC) {
		char grp[64] = "";
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &gl))
			return lca_fail(e, -EPERM, "CSR: EC key with explicit or unknown curve parameters; "
					"allowed: P-256, P-384");
		if (strcmp(grp, "prime256v1") && strcmp(grp, "secp384r1"))
			return lca_fail(e, -EPERM, "CSR: EC curve %s not allowed; allowed: P-256, P-384", grp);
	} else if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(k);
		if (bits < 2048 || bits > 8192)
			return lca_fail(e, -EPERM, "CSR: RSA key of %d bits; allowed: 2048 to 8192", bits);
	} else if (id != EVP_PKEY_ED25519) {
		const char *n = OBJ_nid2sn(id);
		return lca_fail(e, -EPERM, "CSR: key type %s not allowed; allowed: EC P-256/P-384, "
				"Ed25519, RSA 2048-8192", n ? n : "unknown");
	}
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	int ok = c && EVP_PKEY_public_check(c) == 1;
	EVP_PKEY_CTX_free(c);
	if (!ok)
		return lca_fail(e, -EINVAL, "CSR: public key fails its validity check");
	return 0;
}

static int check_csr_fields(X509_REQ *r, struct lca_err *e)
{
	if (X509_REQ_get_version(r) != X509_REQ_VERSION_1)
		return lca_fail(e, -EINVAL, "CSR: version %ld, want 1", X509_REQ_get_version(r) + 1);
	const X509_NAME *sn = X509_REQ_get_subject_name(r);
	int cnt = X509_NAME_entry_count(sn);
	if (cnt > 16)
		return lca_fail(e, -EINVAL, "CSR: subject has %d attributes, limit 16", cnt);
	for (int i = 0; i < cnt; i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(sn, i);
		if (!string_ok(X509_NAME_ENTRY_get_data(ne), 256))
			return lca_fail(e, -EINVAL, "CSR: subject attribute %d is over 256 bytes, "
					"not text, or has control characters", i);
	}
	int na = X509_REQ_get_attr_count(r);
	if (na > 8)
		return lca_fail(e, -EINVAL, "CSR: %d attributes, limit 8", na);
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(r);
	/* X509_REQ_get_extensions returns NULL for "none" and for malformed */
	if (!exts && X509_REQ_get_attr_by_NID(r, NID_ext_req, -1) >= 0)
		return lca_fail(e, -EINVAL, "CSR: malformed extension request");
	int err = 0;
	if (sk_X509_EXTENSION_num(exts) > 16)
		err = lca_fail(e, -EINVAL, "CSR: %d requested extensions, limit 16",
			       sk_X509_EXTENSION_num(exts));
	for (int i = 0; !err && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) != NID_basic_constraints)
			continue;
		BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(x);
		if (!bc)
			err = lca_fail(e, -EINVAL, "CSR: malformed basicConstraints request");
		else if (bc->ca)
			err = lca_fail(e, -EPERM, "CSR: asks for a CA certificate; hosts get end-entity "
				       "certificates only");
		BASIC_CONSTRAINTS_free(bc);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return err;
}

int lcap_parse_csr(const unsigned char *buf, size_t len, X509_REQ **out, struct lca_err *e)
{
	X509_REQ *r = NULL;

	*out = NULL;
	if (!buf || len == 0)
		return lca_fail(e, -EINVAL, "CSR: empty");
	if (len > LCA_CSR_MAX)
		return lca_fail(e, -EINVAL, "CSR: %zu bytes, limit %d", len, LCA_CSR_MAX);
	if (len > 10 && !memcmp(buf, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);
		if (b)
			r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = buf;
		r = d2i_X509_REQ(NULL, &p, (long)len);
		if (r && (size_t)(p - buf) != len) {
			X509_REQ_free(r);
			return lca_fail(e, -EINVAL, "CSR: %zu bytes after the DER request",
					len - (size_t)(p - buf));
		}
	}
	if (!r)
		return lca_fail(e, -EINVAL, "CSR: not a PEM or DER certificate request");
	EVP_PKEY *pk = X509_REQ_get0_pubkey(r);
	int err;
	if (!pk)
		err = lca_fail(e, -EINVAL, "CSR: unreadable public key");
	else if ((err = check_key(pk, e)))
		;
	else if (X509_REQ_verify(r, pk) != 1)
		err = lca_fail(e, -EINVAL, "CSR: signature does not verify with its own key "
			       "(altered, or not signed by the key it carries)");
	else
		err = check_csr_fields(r, e);
	if (err) {
		X509_REQ_free(r);
		return err;
	}
	*out = r;
	return 0;
}

X509_REQ *lca_parse_csr(const unsigned char *buf, size_t len, struct lca_err *e)
{
	X509_REQ *r;
	lcap_parse_csr(buf, len, &r, e);
	return r;
}

/* ---- names -------------------------------------------------------------- */

static const char *const dn_attrs[] = { "C", "ST", "L", "O", "OU", "CN", "DC" };

X509_NAME *lcap_parse_dn(const char *s, struct lca_err *e)
{
	X509_NAME *n = X509_NAME_new();
	char *copy = strdup(s);
	if (!n || !copy) {
		X509_NAME_free(n);
		free(copy);
		lca_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	int err = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		char *eq = strchr(tok, '=');
		if (!eq) {
			err = lca_fail(e, -EINVAL, "DN '%s': '%s' is not ATTR=value", s, tok);
			break;
		}
		*eq = 0;
		char *val = eq + 1;
		size_t vl = strlen(val);
		while (vl && val[vl - 1] == ' ')
			val[--vl] = 0;
		bool known = false;
		for (size_t i = 0; i < sizeof(dn_attrs) / sizeof(dn_attrs[0]); i++)
			known |= !strcmp(tok, dn_attrs[i]);
		if (!known) {
			err = lca_fail(e, -EINVAL, "DN '%s': attribute '%s' not one of C ST L O OU CN DC",
				       s, tok);
			break;
		}
		if (vl == 0 || vl > 64) {
			err = lca_fail(e, -EINVAL, "DN '%s': value of %s empty or over 64 bytes", s, tok);
			break;
		}
		for (size_t i = 0; i < vl; i++)
			if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f || val[i] == '=' ||
			    val[i] == '+' || val[i] == '\\' || val[i] == '"')
				err = lca_fail(e, -EINVAL, "DN '%s': bad character in value of %s", s, tok);
		if (!err && !X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8,
							(const unsigned char *)val, -1, -1, 0))
			err = lca_fail(e, -EINVAL, "DN '%s': cannot add %s", s, tok);
	}
	free(copy);
	if (!err && X509_NAME_entry_count(n) == 0)
		err = lca_fail(e, -EINVAL, "DN '%s' is empty", s);
	if (err) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

void lca_dn_str(const X509_NAME *n, char *buf, size_t len)
{
	size_t off = 0;
	if (len)
		buf[0] = 0;
	for (int i = 0; n && i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(n, i);
		const char *sn = OBJ_nid2sn(OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne)));
		unsigned char *u = NULL;
		if (ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ne)) < 0)
			continue;
		int w = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, "%s%s=%s",
				 i ? ", " : "", sn ? sn : "?", u);
		OPENSSL_free(u);
		if (w > 0)
			off += (size_t)w;
	}
}

void lcap_ip_str(uint32_t be, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = be };
	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)len) && len)
		buf[0] = 0;
}

static int domain_ok(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || (d[i] == '.' && d[i + 1] != '.')))
			return 0;
	return 1;
}

int lca_ns_init(struct lca_ns *ns, uint32_t g_be, const char *domain, const char *dn,
		struct lca_err *e)
{
	char g[INET_ADDRSTRLEN];
	memset(ns, 0, sizeof(*ns));
	uint32_t h = ntohl(g_be);
	if (h == 0 || h == UINT32_MAX)
		return lca_fail(e, -EINVAL, "global address 0.0.0.0/255.255.255.255 refused");
	ns->g_be = g_be;
	lcap_ip_str(g_be, g, sizeof(g));
	if (domain) {
		if (!domain_ok(domain))
			return lca_fail(e, -EINVAL, "domain '%s' is not a DNS name", domain);
		snprintf(ns->domain, sizeof(ns->domain), "%s", domain);
	} else {
		snprintf(ns->domain, sizeof(ns->domain), "%u.%u.%u.%u.in-addr.arpa", h & 255,
			 (h >> 8) & 255, (h >> 16) & 255, h >> 24);
	}
	char def[64];
	snprintf(def, sizeof(def), "O=xdnat, OU=%s", g);
	ns->dn = lcap_parse_dn(dn ? dn : def, e);
	return ns->dn ? 0 : -EINVAL;
}

void lca_ns_release(struct lca_ns *ns)
{
	X509_NAME_free(ns->dn);
	ns->dn = NULL;
}

static int ia5_copy(const ASN1_IA5STRING *s, char *buf, size_t len)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	if (n <= 0 || (size_t)n >= len || memchr(d, 0, (size_t)n))
		return -EINVAL;
	memcpy(buf, d, (size_t)n);
	buf[n] = 0;
	return 0;
}

/* What the permitted subtrees of an LCA certificate hold. */
struct nc_scan {
	int nip, nuri, ndns, nmail, ndir, nother;
	bool domains_differ;
};

static int scan_subtree(const GENERAL_NAME *gn, struct lca_ns *ns, struct nc_scan *c,
			struct lca_err *e)
{
	const ASN1_IA5STRING *s = NULL;
	int *cnt = NULL;
	switch (gn->type) {
	case GEN_IPADD: {
		const unsigned char *d = ASN1_STRING_get0_data(gn->d.ip);
		if (ASN1_STRING_length(gn->d.ip) == 8 && !memcmp(d + 4, "\xff\xff\xff\xff", 4)) {
			memcpy(&ns->g_be, d, 4);
			c->nip++;
		} else {
			c->nother++;   /* a wider IPv4 block or IPv6: more than G */
		}
		return 0;
	}
	case GEN_URI: s = gn->d.uniformResourceIdentifier; cnt = &c->nuri; break;
	case GEN_DNS: s = gn->d.dNSName; cnt = &c->ndns; break;
	case GEN_EMAIL: s = gn->d.rfc822Name; cnt = &c->nmail; break;
	case GEN_DIRNAME:
		c->ndir++;
		if (!ns->dn && !(ns->dn = X509_NAME_dup(gn->d.directoryName)))
			return lca_fail(e, -ENOMEM, "out of memory");
		return 0;
	default:
		c->nother++;
		return 0;
	}
	char d[254];
	if (ia5_copy(s, d, sizeof(d)) || !domain_ok(d)) {
		c->nother++;
		return 0;
	}
	(*cnt)++;
	if (!ns->domain[0])
		memcpy(ns->domain, d, sizeof(d));
	else if (strcasecmp(ns->domain, d))
		c->domains_differ = true;
	return 0;
}

/* "IPv4 /32 (G), URI, DNS" for the subtrees the profile needs and c lacks. */
static void nc_missing(const struct nc_scan *c, char *buf, size_t len)
{
	const struct { int n; const char *what; } need[] = {
		{ c->nip, "iPAddress G/32" }, { c->nuri, "URI <domain>" },
		{ c->ndns, "dNSName <domain>" }, { c->nmail, "rfc822Name <domain>" },
		{ c->ndir, "directoryName <DN base>" },
	};
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (need[i].n != 1 && off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s%s", off ? ", " : "",
						need[i].what, need[i].n ? " (more than one)" : "");
}

int lca_ns_from_cert(X509 *lca, struct lca_ns *ns, struct lca_err *e)
{
	int crit = 0;
	memset(ns, 0, sizeof(*ns));
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(lca, NID_name_constraints, &crit, NULL);
	if (!nc)
		return lca_fail(e, crit == -2 ? -EINVAL : -EPERM,
				"LCA certificate: %s name constraints extension",
				crit == -2 ? "more than one" : "no (or malformed)");
	/* Criticality is not required: strongSwan 5.9.8 cannot parse a critical
	 * iPAddress constraint, and every verifier we test enforces the
	 * constraints either way (docs/LCA.md, "Certificate profile and why"). */
	struct nc_scan c = { 0 };
	int err = 0;
	for (int i = 0; !err && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		if (st->minimum || st->maximum)
			c.nother++;
		else
			err = scan_subtree(st->base, ns, &c, e);
	}
	NAME_CONSTRAINTS_free(nc);
	char miss[160];
	nc_missing(&c, miss, sizeof(miss));
	if (!err && miss[0])
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints need exactly one "
			       "permitted subtree of each kind; wrong: %s (a missing kind lets "
			       "forged identities of that type verify)", miss);
	if (!err && c.nother)
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints permit %d subtree(s) "
			       "outside the profile (other IP blocks, other name types, min/max)",
			       c.nother);
	if (!err && c.domains_differ)
		err = lca_fail(e, -EPERM, "LCA certificate: the URI, DNS and e-mail subtrees name "
			       "different domains");
	if (err)
		lca_ns_release(ns);
	return err;
}
