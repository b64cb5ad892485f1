// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Remote-side verifier (verify.h): what the LCA issues, the LCA's constraint
 * set (lca_check_lca) and the exact identity forms (lca_check_identity). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

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
