// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The remote-side verifier (ca/verify.c): it refuses every name the LCA
 * never issues, even where OpenSSL's name constraints let it through
 * (userinfo URIs, otherName, registeredID, case and port variants), LCAs
 * without the complete constraint set, CRLs older than the newest seen
 * (in any order given, and across runs through the high-water state), and
 * checks the whole chain's revocation when asked.  Built with ASan/UBSan. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

#define G_BE   htonl(0xcb007107)   /* 203.0.113.7 */
#define DOMAIN "7.113.0.203.in-addr.arpa"

struct fx {
	EVP_PKEY *rk, *lk, *hk;
	X509 *root, *lcert;
	int64_t now;
	char state[80];
};

static X509 *lca_with(struct fx *f, const char *nc, const char *bc)
{
	X509 *x = X509_new();
	cr_assert(x && X509_set_version(x, X509_VERSION_3) &&
		  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)random()));
	X509_NAME *n = X509_NAME_new();
	cr_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
					     (const unsigned char *)"xdnat LCA 203.0.113.7", -1, -1, 0));
	cr_assert(X509_set_subject_name(x, n) && X509_set_issuer_name(x, X509_get_subject_name(f->root)) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, f->lk));
	X509_NAME_free(n);
	CONF *conf = NCONF_new(NULL);
	long eline;
	BIO *b = BIO_new_mem_buf("[nc_dn]\nO=xdnat\nOU=203.0.113.7\n", -1);
	cr_assert(conf && b && NCONF_load_bio(conf, b, &eline) > 0);
	BIO_free(b);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, f->root, x, NULL, NULL, 0);
	X509V3_set_nconf(&ctx, conf);
	const char *exts[][2] = { { "basicConstraints", bc },
				  { "keyUsage", "critical,keyCertSign,cRLSign" },
				  { "subjectKeyIdentifier", "hash" },
				  { "authorityKeyIdentifier", "keyid:always" },
				  { "nameConstraints", nc } };
	for (int i = 0; i < 5; i++) {
		X509_EXTENSION *ex = X509V3_EXT_nconf(conf, &ctx, exts[i][0], exts[i][1]);
		cr_assert(ex && X509_add_ext(x, ex, -1), "%s", exts[i][1]);
		X509_EXTENSION_free(ex);
	}
	NCONF_free(conf);
	cr_assert(X509_sign(x, f->rk, EVP_sha256()) > 0);
	return x;
}

#define FULL_NC "critical,permitted;IP:203.0.113.7/255.255.255.255,permitted;URI:" DOMAIN \
	",permitted;email:" DOMAIN ",permitted;DNS:" DOMAIN ",permitted;dirName:nc_dn"

static void fx_init(struct fx *f)
{
	struct lca_err e;
	struct lca_ns ns;
	memset(f, 0, sizeof(*f));
	f->now = time(NULL);
	cr_assert_not_null(f->rk = lca_keygen(LCA_KEY_EC_P256, &e));
	cr_assert_not_null(f->lk = lca_keygen(LCA_KEY_EC_P256, &e));
	cr_assert_not_null(f->hk = lca_keygen(LCA_KEY_EC_P256, &e));
	cr_assert_not_null(f->root = lca_root_create(f->rk, "O=test, CN=test root", f->now - 7200,
						     f->now + 86400, &e), "%s", e.msg);
	cr_assert_eq(lca_ns_init(&ns, G_BE, NULL, NULL, &e), 0, "%s", e.msg);
	X509_REQ *req = lca_csr_create(f->lk, &ns, &e);
	cr_assert_not_null(req, "%s", e.msg);
	f->lcert = lca_cert_sign(req, f->root, f->rk, &ns, f->now - 3600, f->now + 86400, &e);
	cr_assert_not_null(f->lcert, "%s", e.msg);
	X509_REQ_free(req);
	lca_ns_release(&ns);
	snprintf(f->state, sizeof(f->state), "/tmp/test_verify-%d-%ld.state", (int)getpid(), random());
}

static void fx_fini(struct fx *f)
{
	char p[100];
	unlink(f->state);
	snprintf(p, sizeof(p), "%s.lock", f->state);
	unlink(p);
	X509_free(f->lcert);
	X509_free(f->root);
	EVP_PKEY_free(f->hk);
	EVP_PKEY_free(f->lk);
	EVP_PKEY_free(f->rk);
}

/* A host certificate signed by issuer/key (the LCA key: genuine or forged,
 * depending on the names).  subject: "O=..,OU=..,CN=.." text. */
static X509 *mkleaf(const struct fx *f, X509 *issuer, EVP_PKEY *key, const char *subject,
		    const char *san, const char *bc)
{
	struct lca_err e;
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", subject);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		cr_assert(eq);
		*eq = 0;
		cr_assert(X509_NAME_add_entry_by_txt(n, t, MBSTRING_UTF8, (unsigned char *)eq + 1, -1,
						     -1, 0), "%s", t);
	}
	cr_assert(X509_set_version(x, X509_VERSION_3) &&
		  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)random()) &&
		  X509_set_subject_name(x, n) && X509_set_issuer_name(x, X509_get_subject_name(issuer)) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, f->hk));
	X509_NAME_free(n);
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	const char *exts[][2] = { { "basicConstraints", bc ? bc : "critical,CA:FALSE" },
				  { "authorityKeyIdentifier", "keyid:always" },
				  { "subjectKeyIdentifier", "hash" },
				  { "subjectAltName", san } };
	for (int i = 0; i < 4; i++) {
		if (!exts[i][1][0])
			continue;
		X509_EXTENSION *ex = X509V3_EXT_nconf(NULL, &ctx, exts[i][0], exts[i][1]);
		cr_assert(ex && X509_add_ext(x, ex, -1), "%s", exts[i][1]);
		X509_EXTENSION_free(ex);
	}
	struct lca_alloc a = { .gaddr_len = 4, .n_ports = 1 };
	uint32_t g = G_BE;
	memcpy(a.gaddr, &g, 4);
	a.ports[0] = (struct lca_range){ 20000, 20999 };
	cr_assert_eq(lca_alloc_add(x, &a, &e), 0);
	cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

#define DN "O=xdnat,OU=203.0.113.7,CN="
#define GENUINE_SAN "IP:203.0.113.7,URI:xdnat://" DOMAIN "/10.77.0.11"

/* A CRL by hand: issuer/key, number, thisUpdate offset, one revoked serial. */
static X509_CRL *mkcrl(X509 *issuer, EVP_PKEY *key, long number, int64_t this_update,
		       const ASN1_INTEGER *revoked)
{
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
	ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)this_update + 86400);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	cr_assert(c && tu && nu && num && ASN1_INTEGER_set(num, number) &&
		  X509_CRL_set_version(c, 1) && X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer)) &&
		  X509_CRL_set1_lastUpdate(c, tu) && X509_CRL_set1_nextUpdate(c, nu) &&
		  X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, 0));
	if (revoked) {
		X509_REVOKED *r = X509_REVOKED_new();
		cr_assert(r && X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)revoked) &&
			  X509_REVOKED_set_revocationDate(r, tu) && X509_CRL_add0_revoked(c, r));
	}
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, NULL, NULL, c, 0);
	X509_EXTENSION *ex = X509V3_EXT_nconf(NULL, &ctx, "authorityKeyIdentifier", "keyid:always");
	cr_assert(ex && X509_CRL_add_ext(c, ex, -1));
	X509_EXTENSION_free(ex);
	cr_assert(X509_CRL_sort(c) && X509_CRL_sign(c, key, EVP_sha256()) > 0);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	return c;
}

struct vopt {
	X509 *lca;                 /* NULL: f->lcert */
	X509 *extra;               /* another untrusted certificate (a sub-CA) */
	X509_CRL *crl[3];
	bool chain, state;
};

static struct lca_verify_res verify(struct fx *f, X509 *leaf, const struct vopt *o)
{
	STACK_OF(X509) *anc = sk_X509_new_null(), *unt = sk_X509_new_null();
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	cr_assert(anc && unt && crls && sk_X509_push(anc, f->root) &&
		  sk_X509_push(unt, o && o->lca ? o->lca : f->lcert));
	if (o && o->extra)
		cr_assert(sk_X509_push(unt, o->extra));
	for (int i = 0; o && i < 3; i++)
		if (o->crl[i])
			cr_assert(sk_X509_CRL_push(crls, o->crl[i]));
	struct lca_verify_req q = { .anchors = anc, .leaf = leaf, .untrusted = unt, .crls = crls,
				    .src_be = G_BE, .check_chain = o && o->chain,
				    .crl_state = o && o->state ? f->state : NULL };
	struct lca_verify_res r;
	cr_assert_eq(lca_verify(&q, &r), 0, "%s", r.reason);
	sk_X509_free(anc);
	sk_X509_free(unt);
	sk_X509_CRL_free(crls);
	return r;
}

Test(identity, genuine_uri_and_email_identities_pass)
{
	struct fx f;
	fx_init(&f);
	X509 *x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
	struct lca_verify_res r = verify(&f, x, NULL);
	cr_assert(r.ok, "%s: %s", lca_vcode_name(r.code), r.reason);
	cr_assert_str_eq(r.identity, "xdnat://" DOMAIN "/10.77.0.11");
	X509_free(x);
	x = mkleaf(&f, f.lcert, f.lk, DN "alice@" DOMAIN, "IP:203.0.113.7,email:alice@" DOMAIN, NULL);
	r = verify(&f, x, NULL);
	cr_assert(r.ok, "%s: %s", lca_vcode_name(r.code), r.reason);
	cr_assert_str_eq(r.identity, "alice@" DOMAIN);
	X509_free(x);
	x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7",
		   "IP:203.0.113.7,DNS:10-77-0-11." DOMAIN, NULL);
	r = verify(&f, x, NULL);
	cr_assert(r.ok, "%s: %s", lca_vcode_name(r.code), r.reason);
	cr_assert_str_eq(r.identity, "10-77-0-11." DOMAIN);
	X509_free(x);
	fx_fini(&f);
}

/* Signed with the LCA key and inside its name constraints as OpenSSL reads
 * them (or outside): xdnat-verify refuses each, and never reports the
 * forged name as the identity. */
Test(identity, forms_the_lca_never_issues_are_refused)
{
	struct fx f;
	fx_init(&f);
	const char *cn = DN "10.77.0.11@203.0.113.7";
	struct { const char *subject, *san, *why; } c[] = {
		{ cn, "IP:203.0.113.7,URI:https://" DOMAIN ":x@www.example.com/", "scheme" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN ":x@www.example.com/10.77.0.11", "authority" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN ":443/10.77.0.11", "authority" },
		{ cn, "IP:203.0.113.7,URI:xdnat://u@" DOMAIN "/10.77.0.11", "authority" },
		{ cn, "IP:203.0.113.7,URI:XDNAT://" DOMAIN "/10.77.0.11", "scheme" },
		{ cn, "IP:203.0.113.7,URI:xdnat://7.113.0.203.IN-ADDR.ARPA/10.77.0.11", "authority" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "./10.77.0.11", "authority" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "/10.77.0.11?x=1", "path" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "/10.77.0.11#f", "path" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "/%31%30.77.0.11", "path" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "/010.77.0.11", "path" },
		{ cn, "IP:203.0.113.7,URI:xdnat://" DOMAIN "/10.77.0.11/x", "path" },
		{ DN "203.0.113.7@203.0.113.7", "IP:203.0.113.7,URI:xdnat://" DOMAIN "/203.0.113.7", "unicast" },
		{ cn, GENUINE_SAN ",otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ceo@bank.example", "otherName" },
		{ cn, GENUINE_SAN ",RID:1.2.3.4", "registeredID" },
		{ cn, GENUINE_SAN ",DNS:h." DOMAIN, "dNSName" },
		{ cn, "IP:203.0.113.7,DNS:h." DOMAIN, "dNSName" },
		{ cn, "IP:203.0.113.7,DNS:10-77-0-11.7.113.0.203.IN-ADDR.ARPA", "dNSName" },
		{ cn, "IP:203.0.113.7,DNS:10-77-0-11." DOMAIN ".", "dNSName" },
		{ cn, "IP:203.0.113.7,DNS:010-77-0-11." DOMAIN, "dNSName" },
		{ cn, "IP:203.0.113.7,DNS:10-77-0-11.x." DOMAIN, "dNSName" },
		{ DN "203.0.113.7@203.0.113.7", "IP:203.0.113.7,DNS:203-0-113-7." DOMAIN, "unicast" },
		{ DN "10.9.9.9@203.0.113.7", "IP:203.0.113.7,DNS:10-77-0-11." DOMAIN, "subject" },
		{ cn, "IP:203.0.113.7,DNS:10-77-0-11." DOMAIN ",URI:xdnat://" DOMAIN "/10.77.0.11", "identity" },
		{ cn, GENUINE_SAN ",dirName:dn_sect", "directoryName" },
		{ cn, GENUINE_SAN ",email:alice@" DOMAIN, "identity" },
		{ cn, "URI:xdnat://" DOMAIN "/10.77.0.11", "iPAddress" },
		{ cn, GENUINE_SAN ",IP:203.0.113.7", "iPAddress" },
		{ DN "10.9.9.9@203.0.113.7", GENUINE_SAN, "subject" },
		{ "O=xdnat,OU=203.0.113.7,OU=x,CN=10.77.0.11@203.0.113.7", GENUINE_SAN, "subject" },
		{ DN "Alice@" DOMAIN, "IP:203.0.113.7,email:Alice@" DOMAIN ".", "rfc822Name" },
		{ DN "a..b@" DOMAIN, "IP:203.0.113.7,email:a..b@" DOMAIN, "rfc822Name" },
		{ DN "alice@" DOMAIN, "IP:203.0.113.7,email:alice@x." DOMAIN, "rfc822Name" },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		X509 *x;
		if (strstr(c[i].san, "dirName:")) {
			/* the dirName section needs a config: build it through one */
			CONF *conf = NCONF_new(NULL);
			long el;
			BIO *b = BIO_new_mem_buf("[dn_sect]\nO=xdnat\nOU=203.0.113.7\nCN=x\n", -1);
			cr_assert(conf && b && NCONF_load_bio(conf, b, &el) > 0);
			BIO_free(b);
			x = mkleaf(&f, f.lcert, f.lk, c[i].subject, GENUINE_SAN, NULL);
			X509V3_CTX ctx;
			X509V3_set_ctx(&ctx, f.lcert, x, NULL, NULL, 0);
			X509V3_set_nconf(&ctx, conf);
			X509_EXTENSION *ex = X509V3_EXT_nconf(conf, &ctx, "subjectAltName", c[i].san);
			int at = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
			cr_assert(ex && at >= 0);
			X509_EXTENSION_free(X509_delete_ext(x, at));
			cr_assert(X509_add_ext(x, ex, -1) && X509_sign(x, f.lk, EVP_sha256()) > 0);
			X509_EXTENSION_free(ex);
			NCONF_free(conf);
		} else {
			x = mkleaf(&f, f.lcert, f.lk, c[i].subject, c[i].san, NULL);
		}
		struct lca_verify_res r = verify(&f, x, NULL);
		cr_expect(!r.ok, "%s accepted", c[i].san);
		cr_expect(r.code == LCA_V_IDENTITY || r.code == LCA_V_NAME_CONSTRAINTS,
			  "%s: %s (%s)", c[i].san, lca_vcode_name(r.code), r.reason);
		if (r.code == LCA_V_IDENTITY)
			cr_expect(strstr(r.reason, c[i].why), "%s: reason '%s' lacks '%s'", c[i].san,
				  r.reason, c[i].why);
		cr_expect_str_empty(r.identity, "%s: reported identity %s", c[i].san, r.identity);
		X509_free(x);
	}
	fx_fini(&f);
}

/* The two the red team found: OpenSSL accepts them, xdnat-verify must not. */
Test(identity, userinfo_uri_and_upn_are_refused_though_openssl_accepts_them)
{
	struct fx f;
	fx_init(&f);
	const char *san[] = {
		"IP:203.0.113.7,URI:https://" DOMAIN ":x@www.example.com/",
		"IP:203.0.113.7,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ceo@bank.example",
	};
	for (int i = 0; i < 2; i++) {
		X509 *x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7", san[i], NULL);
		X509_STORE *st = X509_STORE_new();
		X509_STORE_CTX *c = X509_STORE_CTX_new();
		STACK_OF(X509) *unt = sk_X509_new_null();
		cr_assert(st && c && unt && X509_STORE_add_cert(st, f.root) && sk_X509_push(unt, f.lcert) &&
			  X509_STORE_CTX_init(c, st, x, unt));
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(c), X509_V_FLAG_X509_STRICT);
		cr_expect_eq(X509_verify_cert(c), 1, "OpenSSL now refuses %s: update the docs", san[i]);
		X509_STORE_CTX_free(c);
		X509_STORE_free(st);
		sk_X509_free(unt);
		ERR_clear_error();
		struct lca_verify_res r = verify(&f, x, NULL);
		cr_expect_eq(r.code, LCA_V_IDENTITY, "%s: %s (%s)", san[i], lca_vcode_name(r.code), r.reason);
		X509_free(x);
	}
	fx_fini(&f);
}

Test(lca, weak_lca_certificates_are_refused)
{
	struct fx f;
	fx_init(&f);
	const char *ip = "critical,permitted;IP:203.0.113.7/255.255.255.255";
	const char *uri = ",permitted;URI:" DOMAIN, *mail = ",permitted;email:" DOMAIN,
		   *dns = ",permitted;DNS:" DOMAIN, *dn = ",permitted;dirName:nc_dn";
	char nc[400];
	struct { const char *nc_fmt, *bc, *why; } c[] = {
		{ "%s%s%s%s%s", "critical,CA:TRUE,pathlen:0", NULL },            /* control */
		{ "%s%s%s%s", "critical,CA:TRUE,pathlen:0", "directoryName" },   /* no dirName */
		{ "%s%s%.0s%s%s", "critical,CA:TRUE,pathlen:0", "rfc822Name" },  /* no e-mail */
		{ "%s%s%s%.0s%s", "critical,CA:TRUE,pathlen:0", "dNSName" },     /* no DNS */
		{ "%s%s%s%s%s", "critical,CA:TRUE", "pathLenConstraint" },
		{ "%s%s%s%s%s", "critical,CA:TRUE,pathlen:0", NULL },   /* non-critical NC */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(nc, sizeof(nc), c[i].nc_fmt, ip, uri, mail, dns, dn);
		if (i == sizeof(c) / sizeof(c[0]) - 1)
			memmove(nc, nc + strlen("critical,"), strlen(nc) - strlen("critical,") + 1);
		X509 *lca = lca_with(&f, nc, c[i].bc);
		X509 *x = mkleaf(&f, lca, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
		struct vopt o = { .lca = lca };
		struct lca_verify_res r = verify(&f, x, &o);
		if (!c[i].why) {
			cr_expect(r.ok, "control: %s", r.reason);
		} else {
			cr_expect_eq(r.code, LCA_V_NAME_CONSTRAINTS, "%s: %s (%s)", c[i].why,
				     lca_vcode_name(r.code), r.reason);
			cr_expect(strstr(r.reason, c[i].why), "reason '%s' lacks '%s'", r.reason, c[i].why);
		}
		X509_free(x);
		X509_free(lca);
	}
	/* a DNS forgery under an LCA without the DNS subtree: OpenSSL accepts it */
	snprintf(nc, sizeof(nc), "%s%s%s%s", ip, uri, mail, dn);
	X509 *lca = lca_with(&f, nc, "critical,CA:TRUE,pathlen:0");
	X509 *x = mkleaf(&f, lca, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN ",DNS:www.bank.example", NULL);
	struct vopt o = { .lca = lca };
	struct lca_verify_res r = verify(&f, x, &o);
	cr_expect(!r.ok, "DNS forgery under a weak LCA accepted");
	X509_free(x);
	X509_free(lca);
	fx_fini(&f);
}

Test(lca, sub_ca_under_the_lca_is_refused)
{
	struct fx f;
	fx_init(&f);
	EVP_PKEY *sk = f.hk;
	X509 *sub = mkleaf(&f, f.lcert, f.lk, DN "sub@203.0.113.7", GENUINE_SAN, "critical,CA:TRUE");
	X509 *x = mkleaf(&f, sub, sk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
	struct vopt o = { .extra = sub };
	struct lca_verify_res r = verify(&f, x, &o);
	cr_expect(!r.ok, "leaf under a sub-CA accepted");
	X509_free(x);
	X509_free(sub);
	fx_fini(&f);
}

Test(crl, newest_wins_in_any_order)
{
	struct fx f;
	fx_init(&f);
	X509 *x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
	/* numbers 2 and 3 in the same second; 3 revokes x */
	X509_CRL *c2 = mkcrl(f.lcert, f.lk, 2, f.now - 10, NULL);
	X509_CRL *c3 = mkcrl(f.lcert, f.lk, 3, f.now - 10, X509_get0_serialNumber(x));
	struct vopt a = { .crl = { c2, c3 } }, b = { .crl = { c3, c2 } }, only2 = { .crl = { c2 } };
	cr_expect_eq(verify(&f, x, &a).code, LCA_V_REVOKED);
	cr_expect_eq(verify(&f, x, &b).code, LCA_V_REVOKED);
	cr_expect(verify(&f, x, &only2).ok, "CRL 2 alone (no state) does not list x");
	/* two different CRLs with one number */
	X509_CRL *c3b = mkcrl(f.lcert, f.lk, 3, f.now - 5, NULL);
	struct vopt dup = { .crl = { c3, c3b } };
	struct lca_verify_res r = verify(&f, x, &dup);
	cr_expect_eq(r.code, LCA_V_CRL, "%s", r.reason);
	cr_expect(strstr(r.reason, "same CRL number"), "%s", r.reason);
	/* a higher number issued earlier: the signer's clock or numbering went back */
	X509_CRL *c4old = mkcrl(f.lcert, f.lk, 4, f.now - 100, NULL);
	struct vopt back = { .crl = { c3, c4old } }, back2 = { .crl = { c4old, c3 } };
	r = verify(&f, x, &back);
	cr_expect_eq(r.code, LCA_V_CRL, "%s", r.reason);
	cr_expect(strstr(r.reason, "thisUpdate goes back"), "%s", r.reason);
	r = verify(&f, x, &back2);
	cr_expect_eq(r.code, LCA_V_CRL, "%s", r.reason);
	X509_CRL_free(c4old);
	X509_CRL_free(c2);
	X509_CRL_free(c3);
	X509_CRL_free(c3b);
	X509_free(x);
	fx_fini(&f);
}

Test(crl, state_directory_is_created)
{
	struct fx f;
	fx_init(&f);
	char dir[120], path[160];
	snprintf(dir, sizeof(dir), "/tmp/test_verify-%d-%ld", (int)getpid(), random());
	snprintf(path, sizeof(path), "%s/a/b/crl-seen", dir);
	X509_CRL *c = mkcrl(f.lcert, f.lk, 7, f.now - 10, NULL);
	struct lca_err e;
	cr_assert_eq(lca_crl_highwater(path, c, f.lk, true, &e), 0, "%s", e.msg);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0700);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
	X509_CRL_free(c);
	fx_fini(&f);
}

Test(crl, high_water_refuses_an_older_crl_later)
{
	struct fx f;
	fx_init(&f);
	X509 *x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
	X509_CRL *c2 = mkcrl(f.lcert, f.lk, 2, f.now - 10, NULL);
	X509_CRL *c3 = mkcrl(f.lcert, f.lk, 3, f.now - 10, X509_get0_serialNumber(x));
	X509_CRL *c3b = mkcrl(f.lcert, f.lk, 3, f.now - 8, NULL);
	X509_CRL *c4old = mkcrl(f.lcert, f.lk, 4, f.now - 100, NULL);
	X509_CRL *c5 = mkcrl(f.lcert, f.lk, 5, f.now - 5, NULL);
	struct vopt o3 = { .crl = { c3 }, .state = true }, o2 = { .crl = { c2 }, .state = true },
		    o3b = { .crl = { c3b }, .state = true }, o4 = { .crl = { c4old }, .state = true },
		    o5 = { .crl = { c5 }, .state = true };
	struct lca_verify_res r = verify(&f, x, &o3);
	cr_expect_eq(r.code, LCA_V_REVOKED, "%s", r.reason);
	struct stat st;
	cr_assert_eq(stat(f.state, &st), 0, "state file not written");
	cr_expect_eq(st.st_mode & 0777, 0600);
	r = verify(&f, x, &o3);
	cr_expect_eq(r.code, LCA_V_REVOKED, "the same CRL again: %s", r.reason);
	r = verify(&f, x, &o2);
	cr_expect_eq(r.code, LCA_V_CRL, "older CRL: %s", r.reason);
	cr_expect(strstr(r.reason, "older"), "%s", r.reason);
	r = verify(&f, x, &o3b);
	cr_expect_eq(r.code, LCA_V_CRL, "same number, other content: %s", r.reason);
	cr_expect(strstr(r.reason, "differs"), "%s", r.reason);
	r = verify(&f, x, &o4);
	cr_expect_eq(r.code, LCA_V_CRL, "higher number, earlier thisUpdate: %s", r.reason);
	cr_expect(strstr(r.reason, "before"), "%s", r.reason);
	r = verify(&f, x, &o5);
	cr_expect(r.ok, "a newer CRL that does not list x: %s", r.reason);
	r = verify(&f, x, &o3);
	cr_expect_eq(r.code, LCA_V_CRL, "back to 3 after 5: %s", r.reason);
	/* the library call directly: another key's CRL is refused, not recorded */
	struct lca_err e;
	cr_expect_eq(lca_crl_highwater(f.state, c5, f.rk, true, &e), -EINVAL);
	cr_expect_eq(lca_crl_highwater(f.state, c5, f.lk, true, &e), 0, "%s", e.msg);
	cr_expect_eq(lca_crl_highwater(f.state, c2, f.lk, false, &e), -ESTALE);
	X509_CRL_free(c2);
	X509_CRL_free(c3);
	X509_CRL_free(c3b);
	X509_CRL_free(c4old);
	X509_CRL_free(c5);
	X509_free(x);
	fx_fini(&f);
}

Test(crl, whole_chain_revocation)
{
	struct fx f;
	fx_init(&f);
	X509 *x = mkleaf(&f, f.lcert, f.lk, DN "10.77.0.11@203.0.113.7", GENUINE_SAN, NULL);
	X509_CRL *lcrl = mkcrl(f.lcert, f.lk, 1, f.now - 10, NULL);
	X509_CRL *rclean = mkcrl(f.root, f.rk, 1, f.now - 10, NULL);
	X509_CRL *rrev = mkcrl(f.root, f.rk, 2, f.now - 5, X509_get0_serialNumber(f.lcert));
	struct vopt leafonly = { .crl = { lcrl, rrev } }, none = { .crl = { lcrl }, .chain = true },
		    clean = { .crl = { lcrl, rclean }, .chain = true },
		    rev = { .crl = { rclean, lcrl, rrev }, .chain = true };
	struct lca_verify_res r = verify(&f, x, &leafonly);
	cr_expect(r.ok, "leaf-only check ignores the root's CRL: %s", r.reason);
	r = verify(&f, x, &none);
	cr_expect_eq(r.code, LCA_V_CRL, "no CRL for the LCA: %s", r.reason);
	cr_expect(strstr(r.reason, "depth 1"), "%s", r.reason);
	r = verify(&f, x, &clean);
	cr_expect(r.ok, "%s", r.reason);
	cr_expect(strstr(r.reason, "no certificate of the chain revoked"), "%s", r.reason);
	r = verify(&f, x, &rev);
	cr_expect_eq(r.code, LCA_V_REVOKED, "%s", r.reason);
	cr_expect(strstr(r.reason, "LCA"), "%s", r.reason);
	X509_CRL_free(lcrl);
	X509_CRL_free(rclean);
	X509_CRL_free(rrev);
	X509_free(x);
	fx_fini(&f);
}
