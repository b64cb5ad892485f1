// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Remote-side verifier (verify.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

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

/* ---- what the LCA issues (lca_check_lca, lca_check_identity) ------------- */

static const char *gen_name(int type)
{
	switch (type) {
	case GEN_OTHERNAME: return "otherName";
	case GEN_EMAIL: return "rfc822Name";
	case GEN_DNS: return "dNSName";
	case GEN_X400: return "x400Address";
	case GEN_DIRNAME: return "directoryName";
	case GEN_EDIPARTY: return "ediPartyName";
	case GEN_URI: return "URI";
	case GEN_IPADD: return "iPAddress";
	case GEN_RID: return "registeredID";
	default: return "unknown name type";
	}
}

/* An IA5String's bytes into buf as a C string: printable ASCII only. */
static int ia5_text(const ASN1_STRING *s, char *buf, size_t len)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	if (n <= 0 || (size_t)n >= len)
		return -1;
	for (int i = 0; i < n; i++)
		if (d[i] < 0x21 || d[i] > 0x7e)
			return -1;
	memcpy(buf, d, (size_t)n);
	buf[n] = 0;
	return 0;
}

int lca_check_lca(X509 *lca, struct lca_ns *ns, struct lca_err *e)
{
	int crit = 0;
	memset(ns, 0, sizeof(*ns));
	if (!(X509_get_extension_flags(lca) & EXFLAG_CA) || X509_check_ca(lca) != 1)
		return lca_fail(e, -EPERM, "LCA certificate: not a CA (basicConstraints CA:TRUE)");
	if (X509_get_pathlen(lca) != 0)
		return lca_fail(e, -EPERM, "LCA certificate: no pathLenConstraint 0 (it could "
				"certify further CAs)");
	if (!(X509_get_key_usage(lca) & KU_KEY_CERT_SIGN) ||
	    !(X509_get_extension_flags(lca) & EXFLAG_KUSAGE))
		return lca_fail(e, -EPERM, "LCA certificate: keyUsage without keyCertSign");
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(lca, NID_name_constraints, &crit, NULL);
	if (!nc)
		return lca_fail(e, -EPERM, "LCA certificate: %s name constraints extension",
				crit == -2 ? "more than one" : "no (or malformed)");
	int err = 0, nip = 0, nuri = 0, nmail = 0, ndns = 0, ndn = 0;
	char uri[254] = "", mail[254] = "", dns[254] = "";
	/* Critical or not: OpenSSL enforces both (the profile marks them
	 * non-critical so that strongSwan 5.9.8 and Go can parse the LCA). */
	for (int i = 0; !err && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		GENERAL_NAME *gn = st->base;
		if (st->minimum || st->maximum) {
			err = lca_fail(e, -EPERM, "LCA certificate: a subtree with minimum/maximum");
			break;
		}
		switch (gn->type) {
		case GEN_IPADD: {
			const unsigned char *d = ASN1_STRING_get0_data(gn->d.ip);
			if (ASN1_STRING_length(gn->d.ip) != 8 || memcmp(d + 4, "\xff\xff\xff\xff", 4))
				err = lca_fail(e, -EPERM, "LCA certificate: a permitted iPAddress "
					       "subtree that is not one IPv4 /32");
			else
				memcpy(&ns->g_be, d, 4);
			nip++;
			break;
		}
		case GEN_URI:
			if (ia5_text(gn->d.uniformResourceIdentifier, uri, sizeof(uri)))
				err = lca_fail(e, -EPERM, "LCA certificate: unreadable URI subtree");
			nuri++;
			break;
		case GEN_EMAIL:
			if (ia5_text(gn->d.rfc822Name, mail, sizeof(mail)))
				err = lca_fail(e, -EPERM, "LCA certificate: unreadable e-mail subtree");
			nmail++;
			break;
		case GEN_DNS:
			if (ia5_text(gn->d.dNSName, dns, sizeof(dns)))
				err = lca_fail(e, -EPERM, "LCA certificate: unreadable DNS subtree");
			ndns++;
			break;
		case GEN_DIRNAME:
			if (!ns->dn && !(ns->dn = X509_NAME_dup(gn->d.directoryName)))
				err = lca_fail(e, -ENOMEM, "out of memory");
			ndn++;
			break;
		default:
			err = lca_fail(e, -EPERM, "LCA certificate: a permitted %s subtree (not in "
				       "the profile)", gen_name(gn->type));
		}
	}
	NAME_CONSTRAINTS_free(nc);
	if (!err && (nip != 1 || nuri != 1 || nmail != 1 || ndns != 1 || ndn != 1)) {
		char miss[160] = "";
		size_t o = 0;
		const struct { int n; const char *what; } need[] = {
			{ nip, "iPAddress G/32" }, { nuri, "URI" }, { nmail, "rfc822Name" },
			{ ndns, "dNSName" }, { ndn, "directoryName" },
		};
		for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
			if (need[i].n != 1 && o < sizeof(miss))
				o += (size_t)snprintf(miss + o, sizeof(miss) - o, "%s%s %s",
						      o ? ", " : "", need[i].n ? "several" : "no",
						      need[i].what);
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints incomplete (%s); "
			       "need exactly one permitted subtree of each type", miss);
	}
	if (!err && (strcmp(uri, mail) || strcmp(uri, dns)))
		err = lca_fail(e, -EPERM, "LCA certificate: the URI (%s), e-mail (%s) and DNS (%s) "
			       "subtrees name different domains", uri, mail, dns);
	if (!err && (uri[0] == '.' || strlen(uri) < 1))
		err = lca_fail(e, -EPERM, "LCA certificate: URI subtree '%s' is not a host", uri);
	for (const char *c = uri; !err && *c; c++)
		if (isupper((unsigned char)*c))
			err = lca_fail(e, -EPERM, "LCA certificate: URI subtree '%s' not in lower "
				       "case", uri);
	if (!err)
		memcpy(ns->domain, uri, sizeof(ns->domain) < sizeof(uri) ? sizeof(ns->domain) :
		       sizeof(uri));
	if (err)
		lca_ns_release(ns);
	return err;
}

static bool user_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c == '.' || c == '_' || c == '-') ||
		    (c == '.' && i + 1 < n && s[i + 1] == '.'))
			return false;
	}
	return true;
}

/* "xdnat://<domain>/<LAN>" exactly; the canonical LAN in lan. */
static int uri_ok(const char *u, const struct lca_ns *ns, char *lan, size_t lanlen,
		  struct lca_err *e)
{
	static const char scheme[] = "xdnat://";
	size_t dl = strlen(ns->domain);
	if (strncmp(u, scheme, sizeof(scheme) - 1))
		return lca_fail(e, -EPERM, "URI SAN '%s': scheme is not xdnat://", u);
	const char *h = u + sizeof(scheme) - 1;
	if (strncmp(h, ns->domain, dl) || h[dl] != '/')
		return lca_fail(e, -EPERM, "URI SAN '%s': the authority is not exactly '%s' (no "
				"userinfo, port, case or trailing-dot variants)", u, ns->domain);
	const char *l = h + dl + 1;
	struct in_addr a;
	char canon[INET_ADDRSTRLEN];
	if (strlen(l) >= sizeof(canon) || strspn(l, "0123456789.") != strlen(l) ||
	    inet_pton(AF_INET, l, &a) != 1 || !inet_ntop(AF_INET, &a, canon, sizeof(canon)) ||
	    strcmp(canon, l))
		return lca_fail(e, -EPERM, "URI SAN '%s': the path is not one canonical IPv4 LAN "
				"address (no query, fragment, %%-escapes or extra segments)", u);
	uint32_t lh = ntohl(a.s_addr);
	if (lh == 0 || lh == UINT32_MAX || (lh >> 24) == 127 || (lh >> 28) == 14 ||
	    a.s_addr == ns->g_be)
		return lca_fail(e, -EPERM, "URI SAN '%s': %s is not a unicast LAN address", u, l);
	snprintf(lan, lanlen, "%s", canon);
	return 0;
}

/* "<a-b-c-d>.<domain>" exactly (the LAN address a.b.c.d, dashes for dots). */
static int dns_ok(const char *d, const struct lca_ns *ns, char *lan, size_t lanlen,
		  struct lca_err *e)
{
	size_t n = strlen(d), dl = strlen(ns->domain);
	char l[INET_ADDRSTRLEN], canon[INET_ADDRSTRLEN];
	struct in_addr a;
	if (n <= dl + 1 || d[n - dl - 1] != '.' || strcmp(d + n - dl, ns->domain) ||
	    n - dl - 1 >= sizeof(l))
		return lca_fail(e, -EPERM, "dNSName SAN '%s' is not <LAN>.%s (no case or "
				"trailing-dot variants)", d, ns->domain);
	memcpy(l, d, n - dl - 1);
	l[n - dl - 1] = 0;
	if (strspn(l, "0123456789-") != strlen(l))
		return lca_fail(e, -EPERM, "dNSName SAN '%s': the first label is not a LAN "
				"address a-b-c-d", d);
	for (char *c = l; *c; c++)
		if (*c == '-')
			*c = '.';
	if (inet_pton(AF_INET, l, &a) != 1 || !inet_ntop(AF_INET, &a, canon, sizeof(canon)) ||
	    strcmp(canon, l))
		return lca_fail(e, -EPERM, "dNSName SAN '%s': the first label is not a canonical "
				"LAN address a-b-c-d", d);
	uint32_t lh = ntohl(a.s_addr);
	if (lh == 0 || lh == UINT32_MAX || (lh >> 24) == 127 || (lh >> 28) == 14 ||
	    a.s_addr == ns->g_be)
		return lca_fail(e, -EPERM, "dNSName SAN '%s': %s is not a unicast LAN address", d, l);
	snprintf(lan, lanlen, "%s", canon);
	return 0;
}

/* The subject: ns->dn's RDNs, byte for byte, then exactly CN=cn. */
static int subject_ok(X509 *leaf, const struct lca_ns *ns, const char *cn, struct lca_err *e)
{
	const X509_NAME *sn = X509_get_subject_name(leaf);
	int k = X509_NAME_entry_count(ns->dn), n = X509_NAME_entry_count(sn);
	char have[256];
	lca_dn_str(sn, have, sizeof(have));
	if (n != k + 1)
		return lca_fail(e, -EPERM, "subject '%s': not the LCA's DN base plus one CN", have);
	for (int i = 0; i <= k; i++) {
		const X509_NAME_ENTRY *g = X509_NAME_get_entry(sn, i);
		const ASN1_STRING *gd = X509_NAME_ENTRY_get_data(g);
		const unsigned char *want;
		int wl;
		if (X509_NAME_ENTRY_set(g) != i)
			return lca_fail(e, -EPERM, "subject '%s': a multi-valued RDN", have);
		if (i < k) {
			const X509_NAME_ENTRY *w = X509_NAME_get_entry(ns->dn, i);
			const ASN1_STRING *wd = X509_NAME_ENTRY_get_data(w);
			if (OBJ_cmp(X509_NAME_ENTRY_get_object(g), X509_NAME_ENTRY_get_object(w)))
				return lca_fail(e, -EPERM, "subject '%s': RDN %d is not the LCA's", have,
						i + 1);
			want = ASN1_STRING_get0_data(wd);
			wl = ASN1_STRING_length(wd);
		} else {
			if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(g)) != NID_commonName)
				return lca_fail(e, -EPERM, "subject '%s': the last RDN is not the CN",
						have);
			want = (const unsigned char *)cn;
			wl = (int)strlen(cn);
		}
		if (ASN1_STRING_length(gd) != wl || memcmp(ASN1_STRING_get0_data(gd), want, (size_t)wl))
			return lca_fail(e, -EPERM, "subject '%s': RDN %d differs from what the LCA "
					"issues (CN=%s under its DN base)", have, i + 1, cn);
	}
	return 0;
}

int lca_check_identity(X509 *leaf, const struct lca_ns *ns, char *id, size_t idlen,
		       struct lca_err *e)
{
	int crit = 0;
	if (!ns->dn)
		return lca_fail(e, -EPERM, "the LCA has no directoryName constraint");
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (!gens)
		return lca_fail(e, -EPERM, "%s subjectAltName extension",
				crit == -2 ? "more than one" : "no (or a malformed)");
	int err = 0, nip = 0, nid = 0, idtype = 0;
	char ident[300] = "", lan[INET_ADDRSTRLEN] = "", cn[400];
	for (int i = 0; !err && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		switch (g->type) {
		case GEN_IPADD: {
			char s[INET6_ADDRSTRLEN] = "?";
			int l = ASN1_STRING_length(g->d.ip);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.ip);
			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6, d, s, sizeof(s));
			if (l != 4 || memcmp(d, &ns->g_be, 4))
				err = lca_fail(e, -EPERM, "iPAddress SAN %s is not the LCA's global "
					       "address", s);
			nip++;
			break;
		}
		case GEN_URI:
		case GEN_DNS:
		case GEN_EMAIL: {
			const ASN1_STRING *s = g->type == GEN_URI ? g->d.uniformResourceIdentifier
					     : g->type == GEN_DNS ? g->d.dNSName : g->d.rfc822Name;
			nid++;
			idtype = g->type;
			if (ia5_text(s, ident, sizeof(ident))) {
				err = lca_fail(e, -EPERM, "%s SAN with control, space or non-ASCII "
					       "characters", gen_name(g->type));
			} else if (g->type == GEN_URI) {
				err = uri_ok(ident, ns, lan, sizeof(lan), e);
			} else if (g->type == GEN_DNS) {
				err = dns_ok(ident, ns, lan, sizeof(lan), e);
			} else {
				const char *at = strchr(ident, '@');
				if (!at || strchr(at + 1, '@') || !user_ok(ident, (size_t)(at - ident)) ||
				    strcmp(at + 1, ns->domain))
					err = lca_fail(e, -EPERM, "rfc822Name SAN '%s' is not "
						       "<user>@%s", ident, ns->domain);
			}
			break;
		}
		default:
			err = lca_fail(e, -EPERM, "a %s SAN: the LCA never issues one and no verifier "
				       "can confine it", gen_name(g->type));
		}
	}
	GENERAL_NAMES_free(gens);
	if (!err && nip != 1)
		err = lca_fail(e, -EPERM, "%d iPAddress SANs; the LCA issues exactly one (G)", nip);
	if (!err && nid != 1)
		err = lca_fail(e, -EPERM, "%d DNS/URI/e-mail SANs; the LCA issues exactly one "
			       "identity", nid);
	if (err)
		return err;
	if (idtype != GEN_EMAIL) {
		char g[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = ns->g_be };
		inet_ntop(AF_INET, &a, g, sizeof(g));
		snprintf(cn, sizeof(cn), "%s@%s", lan, g);
	} else {
		snprintf(cn, sizeof(cn), "%s", ident);
	}
	if ((err = subject_ok(leaf, ns, cn, e)))
		return err;
	if (id)
		snprintf(id, idlen, "%s", ident);
	return 0;
}

/* ---- CRLs: newest per signer, high-water state ----------------------------- */

static ASN1_INTEGER *crl_num(X509_CRL *c)
{
	return X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
}

static int crl_hash(X509_CRL *c, unsigned char h[SHA256_DIGEST_LENGTH])
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(c, &der);
	if (n <= 0)
		return -EIO;
	SHA256(der, (size_t)n, h);
	OPENSSL_free(der);
	return 0;
}

static int64_t crl_time(X509_CRL *c)
{
	const ASN1_TIME *t = X509_CRL_get0_lastUpdate(c);
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return INT64_MIN;
	return (int64_t)timegm(&tm);
}

int lca_crl_newest(STACK_OF(X509_CRL) *sk, X509_CRL **best, struct lca_err *e)
{
	ASN1_INTEGER *bn = NULL;
	int err = 0;
	*best = NULL;
	for (int i = 0; !err && i < sk_X509_CRL_num(sk); i++) {
		X509_CRL *c = sk_X509_CRL_value(sk, i);
		ASN1_INTEGER *n = crl_num(c);
		if (!n) {
			err = lca_fail(e, -EINVAL, "a CRL without a CRL number (cannot tell its age)");
			break;
		}
		int d = bn ? ASN1_INTEGER_cmp(n, bn) : 1;
		if (d < 0 && crl_time(c) > crl_time(*best))
			err = lca_fail(e, -EINVAL, "CRL number %ld was issued after CRL number %ld "
				       "(thisUpdate goes back)", ASN1_INTEGER_get(n), ASN1_INTEGER_get(bn));
		if (d == 0) {
			unsigned char h1[SHA256_DIGEST_LENGTH], h2[SHA256_DIGEST_LENGTH];
			if (crl_hash(c, h1) || crl_hash(*best, h2))
				err = lca_fail(e, -EIO, "cannot encode a CRL");
			else if (memcmp(h1, h2, sizeof(h1)))
				err = lca_fail(e, -EINVAL, "two different CRLs carry the same CRL "
					       "number %ld", ASN1_INTEGER_get(n));
		} else if (d > 0) {
			if (*best && crl_time(c) < crl_time(*best))
				err = lca_fail(e, -EINVAL, "CRL number %ld was issued before CRL number "
					       "%ld (thisUpdate goes back)", ASN1_INTEGER_get(n),
					       ASN1_INTEGER_get(bn));
			ASN1_INTEGER_free(bn);
			bn = n;
			n = NULL;
			*best = c;
		}
		ASN1_INTEGER_free(n);
	}
	ASN1_INTEGER_free(bn);
	if (err)
		*best = NULL;
	return err;
}

const char *lca_crl_state_default(void)
{
	static char path[4096];
	if (geteuid() == 0)
		return "/var/lib/xdnat/crl-seen";
	const char *x = getenv("XDG_STATE_HOME"), *h = getenv("HOME");
	if (x && x[0] == '/')
		snprintf(path, sizeof(path), "%s/xdnat/crl-seen", x);
	else if (h && h[0] == '/')
		snprintf(path, sizeof(path), "%s/.local/state/xdnat/crl-seen", h);
	else
		return NULL;
	return path;
}

#define HW_MAX 4096     /* signers remembered; then the stalest is forgotten */
struct hw_ent {
	char key[65];          /* SHA-256 of the signer's public key, hex */
	char num[80];          /* CRL number, hex */
	long long this_update;
	char hash[65];         /* SHA-256 of the CRL's DER, hex */
};

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = 0;
}

/* Compare two hex CRL numbers (no leading zeros, as BN_bn2hex writes them). */
static int num_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcasecmp(a, b);
}

/* mkdir -p of path's directory, new directories 0700. */
static int mkdir_parent(const char *path)
{
	char d[4096];
	snprintf(d, sizeof(d), "%s", path);
	char *s = strrchr(d, '/');
	if (!s || s == d)
		return 0;
	*s = 0;
	for (char *p = d + 1; ; p++) {
		bool last = !*p;
		if (*p == '/' || last) {
			*p = 0;
			if (mkdir(d, 0700) && errno != EEXIST)
				return -errno;
			if (last)
				return 0;
			*p = '/';
		}
	}
}

int lca_crl_highwater(const char *state, X509_CRL *crl, EVP_PKEY *key, bool record,
		      struct lca_err *e)
{
	unsigned char kh[SHA256_DIGEST_LENGTH], ch[SHA256_DIGEST_LENGTH], *kder = NULL;
	struct hw_ent cur = { 0 }, *tab = NULL;
	int err = 0, n = 0, lockfd = -1, klen;
	char lockp[4200], tmp[4200], issuer[256];

	if (!key || X509_CRL_verify(crl, key) != 1)
		return lca_fail(e, -EINVAL, "the CRL's signature does not verify");
	ASN1_INTEGER *ai = crl_num(crl);
	BIGNUM *bn = ai ? ASN1_INTEGER_to_BN(ai, NULL) : NULL;
	char *nh = bn ? BN_bn2hex(bn) : NULL;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	if (!nh || nh[0] == '-' || strlen(nh) >= sizeof(cur.num)) {
		OPENSSL_free(nh);
		return lca_fail(e, -EINVAL, "a CRL without a usable CRL number");
	}
	snprintf(cur.num, sizeof(cur.num), "%s", nh);
	OPENSSL_free(nh);
	if ((klen = i2d_PUBKEY(key, &kder)) <= 0 || crl_hash(crl, ch))
		return lca_fail(e, -EIO, "cannot encode the CRL or its signer's key");
	SHA256(kder, (size_t)klen, kh);
	OPENSSL_free(kder);
	hex(kh, sizeof(kh), cur.key);
	hex(ch, sizeof(ch), cur.hash);
	cur.this_update = crl_time(crl);
	lca_dn_str(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));

	if (strlen(state) > 4000)
		return lca_fail(e, -EINVAL, "state path too long");
	snprintf(lockp, sizeof(lockp), "%s.lock", state);
	if (record && mkdir_parent(state))
		return lca_fail(e, -EIO, "%s: cannot create its directory: %s", state, strerror(errno));
	lockfd = open(lockp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0 && (record || errno != ENOENT))
		return lca_fail(e, -EIO, "%s: %s", lockp, strerror(errno));
	if (lockfd >= 0 && flock(lockfd, LOCK_EX)) {
		err = lca_fail(e, -EIO, "%s: flock: %s", lockp, strerror(errno));
		goto out;
	}
	if (!(tab = calloc(HW_MAX + 1, sizeof(*tab)))) {
		err = lca_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	int fd = open(state, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (fd >= 0 && !f)
		close(fd);
	if (!f && errno != ENOENT) {
		err = lca_fail(e, -EIO, "%s: %s", state, strerror(errno));
		goto out;
	}
	char line[512];
	int found = -1;
	while (f && fgets(line, sizeof(line), f)) {
		struct hw_ent *t = &tab[n];
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (n >= HW_MAX || sscanf(line, "%64s %79s %lld %64s", t->key, t->num, &t->this_update,
					  t->hash) != 4) {
			err = lca_fail(e, -EIO, "%s: line %d is not 'KEY NUMBER THISUPDATE HASH'",
				       state, n + 1);
			break;
		}
		if (!strcmp(t->key, cur.key))
			found = n;
		n++;
	}
	if (f)
		fclose(f);
	if (err)
		goto out;
	if (found >= 0) {
		const struct hw_ent *s = &tab[found];
		int d = num_cmp(cur.num, s->num);
		if (d < 0)
			err = lca_fail(e, -ESTALE, "CRL number 0x%s of '%s' is older than CRL 0x%s seen "
				       "before (state %s): refusing to go back", cur.num, issuer, s->num,
				       state);
		else if (d == 0 && strcmp(cur.hash, s->hash))
			err = lca_fail(e, -ESTALE, "CRL number 0x%s of '%s' differs from the CRL with "
				       "that number seen before (state %s)", cur.num, issuer, state);
		else if (cur.this_update < s->this_update)
			err = lca_fail(e, -ESTALE, "CRL 0x%s of '%s' was issued (thisUpdate %lld) before "
				       "the CRL seen before (%lld, state %s)", cur.num, issuer,
				       cur.this_update, s->this_update, state);
		if (err || d == 0 || !record)
			goto out;
		tab[found] = cur;
	} else {
		if (!record)
			goto out;
		if (n >= HW_MAX) {
			/* full: forget the signer whose last CRL is the oldest */
			int o = 0;
			for (int i = 1; i < n; i++)
				if (tab[i].this_update < tab[o].this_update)
					o = i;
			tab[o] = cur;
		} else {
			tab[n++] = cur;
		}
	}
	/* write atomically: temporary file, fsync, rename */
	snprintf(tmp, sizeof(tmp), "%s.tmp", state);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		err = lca_fail(e, -EIO, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	fprintf(f, "# xdnat CRL high-water: signer-key-sha256 crl-number-hex thisUpdate "
		"crl-sha256\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "%s %s %lld %s\n", tab[i].key, tab[i].num, tab[i].this_update, tab[i].hash);
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		unlink(tmp);
		err = lca_fail(e, -EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) || rename(tmp, state)) {
		unlink(tmp);
		err = lca_fail(e, -EIO, "%s: %s", state, strerror(errno));
	}
out:
	free(tab);
	if (lockfd >= 0)
		close(lockfd);
	return err;
}

/* Per signer among certs, the newest CRL of crls; high-water-checked against
 * q->crl_state (not recorded: see record_crls).  *out: the CRLs to use,
 * 0, a verdict (r->code set,
 * *out NULL), or a negative errno. */
static int pick_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) **out,
		     struct lca_verify_res *r)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	STACK_OF(X509_CRL) *res = sk_X509_CRL_new_null(), *grp = NULL;
	struct lca_err e = { { 0 } };
	int ret = -ENOMEM;
	*out = NULL;
	if (!certs || !res)
		goto out;
	for (int i = 0; i < sk_X509_num(q->anchors); i++)
		if (!sk_X509_push(certs, sk_X509_value(q->anchors, i)))
			goto out;
	for (int i = 0; i < sk_X509_num(q->untrusted); i++) {
		X509 *u = sk_X509_value(q->untrusted, i);
		bool dup = false;
		for (int k = 0; k < sk_X509_num(certs) && !dup; k++)
			dup = !X509_cmp(u, sk_X509_value(certs, k));   /* e.g. the root in both */
		if (!dup && !sk_X509_push(certs, u))
			goto out;
	}
	for (int k = 0; k < sk_X509_num(certs); k++) {
		X509 *s = sk_X509_value(certs, k);
		EVP_PKEY *key = X509_get0_pubkey(s);
		sk_X509_CRL_free(grp);
		if (!(grp = sk_X509_CRL_new_null()))
			goto out;
		for (int i = 0; key && i < sk_X509_CRL_num(q->crls); i++) {
			X509_CRL *c = sk_X509_CRL_value(q->crls, i);
			if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(s)))
				continue;
			if (X509_CRL_verify(c, key) != 1)
				continue;   /* another key of the same name; OpenSSL decides */
			if (!sk_X509_CRL_push(grp, c))
				goto out;
		}
		ERR_clear_error();
		if (sk_X509_CRL_num(grp) == 0)
			continue;
		X509_CRL *best;
		if (lca_crl_newest(grp, &best, &e)) {
			ret = verdict(r, LCA_V_CRL, "%s", e.msg);
			goto out;
		}
		int hw = q->crl_state ? lca_crl_highwater(q->crl_state, best, key, false, &e) : 0;
		if (hw == -ESTALE || hw == -EINVAL) {
			ret = verdict(r, LCA_V_CRL, "%s", e.msg);
			goto out;
		} else if (hw) {
			snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
			ret = hw;
			goto out;
		}
		if (!sk_X509_CRL_push(res, best))
			goto out;
		X509_CRL_up_ref(best);
	}
	*out = res;
	res = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		snprintf(r->reason, sizeof(r->reason), "out of memory");
	sk_X509_CRL_pop_free(res, X509_CRL_free);
	sk_X509_CRL_free(grp);
	sk_X509_free(certs);
	return ret;
}

/* After the chain verified: record the CRLs whose signer is in it. */
static int record_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) *crls,
		       STACK_OF(X509) *chain, struct lca_verify_res *r)
{
	struct lca_err e = { { 0 } };
	for (int i = 0; q->crl_state && i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *c = sk_X509_CRL_value(crls, i);
		for (int k = 0; k < sk_X509_num(chain); k++) {
			X509 *s = sk_X509_value(chain, k);
			if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(s)) ||
			    X509_CRL_verify(c, X509_get0_pubkey(s)) != 1)
				continue;
			int err = lca_crl_highwater(q->crl_state, c, X509_get0_pubkey(s), true, &e);
			if (err == -ESTALE)
				return verdict(r, LCA_V_CRL, "%s", e.msg);
			if (err) {
				snprintf(r->reason, sizeof(r->reason), "%s", e.msg);
				return err;
			}
			break;
		}
	}
	ERR_clear_error();
	return 0;
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
	int ret = 0;
	bool with_crl = (q->crls && sk_X509_CRL_num(q->crls) > 0) || q->check_chain ||
			q->require_crl;
	if (q->crls && sk_X509_CRL_num(q->crls) > 0) {
		/* the newest CRL of each signer only, never one older than seen */
		if ((ret = pick_crls(q, &use, r)) || !use)
			goto out;
	}
	for (int i = 0; st && i < sk_X509_num(q->anchors); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(q->anchors, i)))
			goto nomem;
	if (!st || !c || !X509_STORE_CTX_init(c, st, q->leaf, q->untrusted))
		goto nomem;
	if (with_crl && !use && !(use = sk_X509_CRL_new_null()))
		goto nomem;
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(c);
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	if (with_crl) {
		X509_STORE_CTX_set0_crls(c, use);
		flags |= X509_V_FLAG_CRL_CHECK | (q->check_chain ? X509_V_FLAG_CRL_CHECK_ALL : 0);
	}
	X509_VERIFY_PARAM_set_flags(p, flags);
	if (q->at)
		X509_VERIFY_PARAM_set_time(p, (time_t)q->at);
	if (X509_verify_cert(c) != 1) {
		int err = X509_STORE_CTX_get_error(c), depth = X509_STORE_CTX_get_error_depth(c);
		/* a revoked certificate: the CRL was genuine, remember it */
		if (err == X509_V_ERR_CERT_REVOKED &&
		    (ret = record_crls(q, use, X509_STORE_CTX_get0_chain(c), r)))
			goto out;
		if (r->code == LCA_V_CRL && r->reason[0])
			goto out;
		verdict(r, classify(err), "certificate at depth %d%s: %s", depth,
			depth == 0 ? " (host)" : depth == 1 ? " (LCA)" : "",
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
		if (sk_X509_num(chain) < 2 || lca_check_lca(sk_X509_value(chain, 1), &ns, &e)) {
			verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuer is not an LCA confined to one "
				"global address: %s", sk_X509_num(chain) < 2 ? "no issuer" : e.msg);
			goto out;
		}
		uint32_t g = ns.g_be;
		if (g != q->src_be) {
			char gs[INET_ADDRSTRLEN];
			ia.s_addr = g;
			inet_ntop(AF_INET, &ia, gs, sizeof(gs));
			lca_ns_release(&ns);
			verdict(r, LCA_V_NAME_CONSTRAINTS, "the issuing LCA is confined to %s, traffic "
				"comes from %s", gs, src);
			goto out;
		}
		int bad = lca_check_identity(q->leaf, &ns, r->identity, sizeof(r->identity), &e);
		lca_ns_release(&ns);
		if (bad) {
			verdict(r, LCA_V_IDENTITY, "host certificate: %s", e.msg);
			goto out;
		}
	}
	if ((ret = record_crls(q, use, chain, r)) || r->code == LCA_V_CRL)
		goto out;
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
		flags & X509_V_FLAG_CRL_CHECK_ALL ? ", no certificate of the chain revoked" :
		flags & X509_V_FLAG_CRL_CHECK ? ", not revoked" : " (no CRL checked)", src);
	goto out;
nomem:
	snprintf(r->reason, sizeof(r->reason), "out of memory");
	ret = -ENOMEM;
out:
	X509_STORE_CTX_free(c);
	X509_STORE_free(st);
	sk_X509_CRL_pop_free(use, X509_CRL_free);
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
