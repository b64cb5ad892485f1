// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Local CA unit tests (ca/): allocation extension DER codec, CSR checks,
 * issuance round trip through the remote verifier, store, revocation, CRL,
 * name constraints against forged certificates.  Built with ASan/UBSan. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca.h"
#include "verify.h"

#define G_BE   htonl(0xcb007107)   /* 203.0.113.7 */
#define LAN_BE htonl(0x0a4d000b)   /* 10.77.0.11 */

/* 203.0.113.7, ports 20000-20999, SPIs 0xa1000000-0xa1000fff, by hand */
static const unsigned char vec[] = {
	0x30, 0x24,
	0x04, 0x04, 0xcb, 0x00, 0x71, 0x07,
	0x30, 0x0a, 0x30, 0x08, 0x02, 0x02, 0x4e, 0x20, 0x02, 0x02, 0x52, 0x07,
	0x30, 0x10, 0x30, 0x0e, 0x02, 0x05, 0x00, 0xa1, 0x00, 0x00, 0x00,
	0x02, 0x05, 0x00, 0xa1, 0x00, 0x0f, 0xff,
};

static struct lca_alloc vec_alloc(void)
{
	struct lca_alloc a = { .gaddr_len = 4, .n_ports = 1, .n_spis = 1 };
	uint32_t g = G_BE;
	memcpy(a.gaddr, &g, 4);
	a.ports[0] = (struct lca_range){ 20000, 20999 };
	a.spis[0] = (struct lca_range){ 0xa1000000, 0xa1000fff };
	return a;
}

Test(ext, encode_matches_the_documented_der)
{
	struct lca_alloc a = vec_alloc();
	unsigned char *der = NULL;
	size_t len = 0;
	struct lca_err e;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), 0, "%s", e.msg);
	cr_assert_eq(len, sizeof(vec));
	cr_assert_arr_eq(der, vec, sizeof(vec));
	OPENSSL_free(der);
}

Test(ext, decode_round_trip_many_ranges)
{
	struct lca_alloc a = vec_alloc(), b;
	a.n_ports = LCA_MAX_RANGES;
	for (unsigned i = 0; i < LCA_MAX_RANGES; i++)
		a.ports[i] = (struct lca_range){ i * 2000, i * 2000 + 999 };
	a.n_spis = 2;
	a.spis[0] = (struct lca_range){ 256, 256 };
	a.spis[1] = (struct lca_range){ 0xffffff00, 0xffffffff };
	unsigned char *der = NULL;
	size_t len = 0;
	struct lca_err e;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_alloc_decode(der, len, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	OPENSSL_free(der);
	/* and empty lists */
	a.n_ports = a.n_spis = 0;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_alloc_decode(der, len, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(b.n_ports + b.n_spis, 0);
	OPENSSL_free(der);
}

Test(ext, decode_refuses_every_truncation_and_trailing_data)
{
	struct lca_alloc a;
	struct lca_err e;
	for (size_t n = 0; n < sizeof(vec); n++)
		cr_expect_eq(lca_alloc_decode(vec, n, &a, &e), -EINVAL, "prefix of %zu accepted", n);
	unsigned char buf[sizeof(vec) + 1];
	memcpy(buf, vec, sizeof(vec));
	buf[sizeof(vec)] = 0;
	cr_assert_eq(lca_alloc_decode(buf, sizeof(buf), &a, &e), -EINVAL);
	cr_assert(strstr(e.msg, "after the DER"), "%s", e.msg);
	cr_assert_eq(lca_alloc_decode(vec, sizeof(vec), &a, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_alloc_decode(NULL, 0, &a, &e), -EINVAL);
}

struct bad_der {
	const char *name;
	unsigned char d[64];
	size_t len;
};

Test(ext, decode_refuses_ber_and_out_of_range_values)
{
	static const struct bad_der bad[] = {
		{ "long-form length", { 0x30, 0x81, 0x06, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0 }, 13 },
		{ "indefinite length", { 0x30, 0x80, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0, 0, 0 }, 14 },
		{ "padded integer", { 0x30, 0x12, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0x0a, 0x30, 0x08,
				      0x02, 0x02, 0x00, 0x20, 0x02, 0x02, 0x00, 0x21, 0x30, 0 }, 22 },
		{ "negative port", { 0x30, 0x12, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0x0a, 0x30, 0x08,
				     0x02, 0x02, 0xce, 0x20, 0x02, 0x02, 0x4e, 0x20, 0x30, 0 }, 22 },
		{ "port over 65535", { 0x30, 0x13, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0x0b, 0x30, 0x09,
				       0x02, 0x01, 0x01, 0x02, 0x04, 0x01, 0x00, 0x00, 0x00, 0x30, 0 }, 23 },
		{ "first > last", { 0x30, 0x12, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0x0a, 0x30, 0x08,
				    0x02, 0x02, 0x52, 0x07, 0x02, 0x02, 0x4e, 0x20, 0x30, 0 }, 22 },
		{ "SPI below 256", { 0x30, 0x10, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0x08,
				     0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x7f }, 20 },
		{ "SPI over 32 bits", { 0x30, 0x16, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0x0e,
					0x30, 0x0c, 0x02, 0x02, 0x01, 0x00, 0x02, 0x06, 0x01, 0, 0, 0,
					0, 0 }, 26 },
		{ "address of 5 bytes", { 0x30, 0x0b, 0x04, 0x05, 0xcb, 0, 0x71, 7, 1, 0x30, 0, 0x30, 0 }, 13 },
		{ "address 0.0.0.0", { 0x30, 0x0a, 0x04, 0x04, 0, 0, 0, 0, 0x30, 0, 0x30, 0 }, 12 },
		{ "missing spiRanges", { 0x30, 0x08, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0 }, 10 },
		{ "extra field", { 0x30, 0x0d, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0, 0x02, 0x01, 0 }, 15 },
		{ "SET instead of SEQUENCE", { 0x31, 0x0a, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0 }, 12 },
		{ "address as INTEGER", { 0x30, 0x0a, 0x02, 0x04, 0x4b, 0, 0x71, 7, 0x30, 0, 0x30, 0 }, 12 },
		{ "overlapping ranges", { 0x30, 0x1c, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0x14,
					  0x30, 0x08, 0x02, 0x02, 0x4e, 0x20, 0x02, 0x02, 0x52, 0x07,
					  0x30, 0x08, 0x02, 0x02, 0x4e, 0x21, 0x02, 0x02, 0x52, 0x08,
					  0x30, 0 }, 32 },
		{ "length past the end", { 0x30, 0x7f, 0x04, 0x04, 0xcb, 0, 0x71, 7, 0x30, 0, 0x30, 0 }, 12 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lca_alloc a;
		struct lca_err e = { "" };
		int r = lca_alloc_decode(bad[i].d, bad[i].len, &a, &e);
		cr_expect_eq(r, -EINVAL, "%s: accepted (%d)", bad[i].name, r);
		cr_expect(e.msg[0], "%s: no reason given", bad[i].name);
	}
}

Test(ext, decode_survives_every_bit_flip)
{
	/* each flip either fails cleanly or decodes to something that
	 * re-encodes to exactly the flipped input (ASan/UBSan watch) */
	for (size_t i = 0; i < sizeof(vec) * 8; i++) {
		unsigned char b[sizeof(vec)];
		memcpy(b, vec, sizeof(vec));
		b[i / 8] ^= (unsigned char)(1u << (i % 8));
		struct lca_alloc a;
		struct lca_err e;
		if (lca_alloc_decode(b, sizeof(b), &a, &e) == 0) {
			unsigned char *der = NULL;
			size_t len = 0;
			cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), 0);
			cr_assert(len == sizeof(b) && !memcmp(der, b, len), "bit %zu", i);
			OPENSSL_free(der);
		}
	}
}

Test(ext, encode_refuses_bad_allocations)
{
	struct lca_alloc a = vec_alloc();
	unsigned char *der = NULL;
	size_t len;
	struct lca_err e;
	a.n_ports = LCA_MAX_RANGES + 1;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), -EINVAL);
	a = vec_alloc();
	a.ports[0] = (struct lca_range){ 5, 4 };
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), -EINVAL);
	a = vec_alloc();
	a.ports[0].last = 65536;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), -EINVAL);
	a = vec_alloc();
	a.gaddr_len = 6;
	cr_assert_eq(lca_alloc_encode(&a, &der, &len, &e), -EINVAL);
	cr_assert_null(der);
}

Test(ranges, parse_merge_cover)
{
	struct lca_range r[LCA_MAX_RANGES];
	unsigned n = 0;
	struct lca_err e;
	cr_assert_eq(lca_parse_ranges("30000,20000-20499,20500-20999,0x10", 0, 65535, r, &n, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(n, 3);
	cr_assert_eq(r[0].first, 16);
	cr_assert_eq(r[1].first, 20000);
	cr_assert_eq(r[1].last, 20999);
	cr_assert_eq(r[2].first, 30000);
	cr_assert(lca_ranges_cover(r, n, 20100, 20999));
	cr_assert_not(lca_ranges_cover(r, n, 20100, 21000));
	cr_assert(lca_ranges_overlap(r, n, 20999, 25000));
	cr_assert_not(lca_ranges_overlap(r, n, 21000, 29999));
	const char *bad[] = { "", ",", "1-", "-1", "2-1", "65536", "1,,2", "0x", "a", "1 ", "-",
			      "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(lca_parse_ranges(bad[i], 0, 65535, r, &n, &e), -EINVAL, "'%s'", bad[i]);
	char many[400] = "";
	for (int i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s%d", i ? "," : "", i * 3);
	cr_assert_eq(lca_parse_ranges(many, 0, 65535, r, &n, &e), -EINVAL);
}

/* ---- a CA to test against ----------------------------------------------- */

struct fx {
	EVP_PKEY *rk, *lk;
	X509 *root, *lcert;
	sqlite3 *db;
	struct lca *ca;
	char dbpath[64];
	int64_t now;
};

static void fx_open_ca(struct fx *f)
{
	struct lca_err e;
	cr_assert_eq(sqlite3_open(f->dbpath, &f->db), SQLITE_OK);
	struct lca_config cfg = { .crl_url = "http://203.0.113.7/lca.crl" };
	cr_assert_eq(lca_open_mem(&cfg, f->lk, f->lcert, NULL, f->db, &f->ca, &e), 0, "%s", e.msg);
}

static void fx_init(struct fx *f)
{
	struct lca_err e;
	struct lca_ns ns;
	memset(f, 0, sizeof(*f));
	f->now = time(NULL);
	cr_assert_not_null(f->rk = lca_keygen(LCA_KEY_EC_P256, &e));
	cr_assert_not_null(f->lk = lca_keygen(LCA_KEY_EC_P256, &e));
	cr_assert_not_null(f->root = lca_root_create(f->rk, "O=test, CN=test root", f->now - 3600,
						     f->now + 86400, &e), "%s", e.msg);
	cr_assert_eq(lca_ns_init(&ns, G_BE, NULL, NULL, &e), 0, "%s", e.msg);
	X509_REQ *req = lca_csr_create(f->lk, &ns, &e);
	cr_assert_not_null(req, "%s", e.msg);
	f->lcert = lca_cert_sign(req, f->root, f->rk, &ns, f->now - 3600, f->now + 86400, &e);
	cr_assert_not_null(f->lcert, "%s", e.msg);
	X509_REQ_free(req);
	lca_ns_release(&ns);
	snprintf(f->dbpath, sizeof(f->dbpath), "/tmp/test_ca-%d-%ld.db", (int)getpid(), random());
	fx_open_ca(f);
}

static void fx_fini(struct fx *f)
{
	char side[80];
	lca_close(f->ca);
	sqlite3_close(f->db);
	unlink(f->dbpath);
	snprintf(side, sizeof(side), "%s-journal", f->dbpath);
	unlink(side);
	X509_free(f->lcert);
	X509_free(f->root);
	EVP_PKEY_free(f->lk);
	EVP_PKEY_free(f->rk);
}

/* DER CSR for key (subject CN=host), optionally with extra request exts. */
static unsigned char *csr_der(EVP_PKEY *k, const char *cn, const char *bc, int *len)
{
	X509_REQ *r = X509_REQ_new();
	cr_assert_not_null(r);
	X509_NAME *n = X509_REQ_get_subject_name(r);
	cr_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					     -1, 0));
	cr_assert(X509_REQ_set_pubkey(r, k));
	if (bc) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *x = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, bc);
		cr_assert(x && sk_X509_EXTENSION_push(exts, x));
		cr_assert(X509_REQ_add_extensions(r, exts));
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	const EVP_MD *md = EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	cr_assert(X509_REQ_sign(r, k, md) > 0);
	unsigned char *der = NULL;
	*len = i2d_X509_REQ(r, &der);
	cr_assert_gt(*len, 0);
	X509_REQ_free(r);
	return der;
}

static struct lca_range g_ports = { 20000, 20999 }, g_spis = { 0xa1000000, 0xa1000fff };

static struct lca_issue_req req_for(const struct fx *f, const unsigned char *csr, int len)
{
	return (struct lca_issue_req){ .csr = csr, .csr_len = (size_t)len, .host_id = "h1",
				       .lan_be = LAN_BE, .ports = &g_ports, .n_ports = 1,
				       .spis = &g_spis, .n_spis = 1, .not_before = f->now - 60,
				       .not_after = f->now + 3600 };
}

static X509 *der_x509(const unsigned char *d, size_t len)
{
	const unsigned char *p = d;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	cr_assert_not_null(x);
	return x;
}

static struct lca_verify_res verify_x(const struct fx *f, X509 *leaf, uint32_t src,
				      const char *ports, const char *spis,
				      STACK_OF(X509_CRL) *crls, int64_t at)
{
	STACK_OF(X509) *anc = sk_X509_new_null(), *unt = sk_X509_new_null();
	cr_assert(anc && unt && sk_X509_push(anc, f->root) && sk_X509_push(unt, f->lcert));
	struct lca_range pr[LCA_MAX_RANGES], sr[LCA_MAX_RANGES];
	struct lca_verify_req q = { .anchors = anc, .leaf = leaf, .untrusted = unt, .crls = crls,
				    .src_be = src, .at = at };
	struct lca_err e;
	if (ports) {
		cr_assert_eq(lca_parse_ranges(ports, 0, 65535, pr, &q.n_ports, &e), 0);
		q.ports = pr;
	}
	if (spis) {
		cr_assert_eq(lca_parse_ranges(spis, 0, UINT32_MAX, sr, &q.n_spis, &e), 0);
		q.spis = sr;
	}
	struct lca_verify_res r;
	cr_assert_eq(lca_verify(&q, &r), 0, "%s", r.reason);
	sk_X509_free(anc);
	sk_X509_free(unt);
	return r;
}

Test(issue, round_trip_verifies_and_is_stored)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	unsigned char *csr = csr_der(hk, "ignored", NULL, &len);
	struct lca_issue_req rq = req_for(&f, csr, len);
	struct lca_issued a, b;
	cr_assert_eq(lca_issue(f.ca, &rq, &a, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_issue(f.ca, &rq, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(strlen(a.serial), 40, "serial %s", a.serial);
	cr_assert_str_neq(a.serial, b.serial);
	cr_assert_str_eq(a.identity, "10-77-0-11.7.113.0.203.in-addr.arpa");

	X509 *x = der_x509(a.der, a.der_len);
	cr_assert_eq(X509_check_private_key(x, hk), 1, "not the CSR's key");
	char subj[256];
	lca_dn_str(X509_get_subject_name(x), subj, sizeof(subj));
	cr_assert_str_eq(subj, "O=xdnat, OU=203.0.113.7, CN=10.77.0.11@203.0.113.7");
	cr_assert_eq(X509_cmp_time(X509_get0_notAfter(x), (time_t[]){ f.now + 3599 }), 1);
	cr_assert_eq(X509_cmp_time(X509_get0_notAfter(x), (time_t[]){ f.now + 3601 }), -1);
	struct lca_alloc al;
	cr_assert_eq(lca_alloc_from_cert(x, &al, &e), 0, "%s", e.msg);
	cr_assert_eq(al.n_ports, 1);
	cr_assert_eq(al.ports[0].last, 20999);
	cr_assert_eq(al.spis[0].first, 0xa1000000);
	cr_assert_geq(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1), 0);

	struct lca_verify_res r = verify_x(&f, x, G_BE, "20000,20500-20999", "0xa1000080", NULL, 0);
	cr_assert(r.ok, "%s", r.reason);
	cr_assert_str_eq(r.identity, a.identity);
	r = verify_x(&f, x, G_BE, "21000", NULL, NULL, 0);
	cr_assert_eq(r.code, LCA_V_PORTS, "%s", r.reason);
	r = verify_x(&f, x, G_BE, NULL, "0xa1001000", NULL, 0);
	cr_assert_eq(r.code, LCA_V_SPIS, "%s", r.reason);
	r = verify_x(&f, x, htonl(0xcb007108), NULL, NULL, NULL, 0);
	cr_assert_eq(r.code, LCA_V_NAME_CONSTRAINTS, "%s", r.reason);
	r = verify_x(&f, x, G_BE, NULL, NULL, NULL, f.now + 7200);
	cr_assert_eq(r.code, LCA_V_EXPIRED, "%s", r.reason);

	/* restart: the store still lists both */
	lca_close(f.ca);
	sqlite3_close(f.db);
	fx_open_ca(&f);
	char *buf = NULL;
	size_t blen = 0;
	FILE *m = open_memstream(&buf, &blen);
	cr_assert_eq(lca_list_print(f.db, "h1", true, m, f.now, &e), 0, "%s", e.msg);
	fclose(m);
	cr_assert(strstr(buf, a.serial) && strstr(buf, b.serial), "%s", buf);
	cr_assert(strstr(buf, "\"status\":\"valid\""), "%s", buf);
	free(buf);

	X509_free(x);
	lca_issued_free(&a);
	lca_issued_free(&b);
	OPENSSL_free(csr);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

Test(issue, email_identity_and_pem_csr)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_ED25519, &e);
	X509_REQ *r = X509_REQ_new();
	cr_assert(X509_REQ_set_pubkey(r, hk) && X509_REQ_sign(r, hk, NULL) > 0);
	BIO *b = BIO_new(BIO_s_mem());
	cr_assert(PEM_write_bio_X509_REQ(b, r));
	char *pem;
	long plen = BIO_get_mem_data(b, &pem);
	struct lca_issue_req rq = req_for(&f, (unsigned char *)pem, (int)plen);
	rq.user = "alice.smith";
	struct lca_issued o;
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), 0, "%s", e.msg);
	cr_assert_str_eq(o.identity, "alice.smith@7.113.0.203.in-addr.arpa");
	X509 *x = der_x509(o.der, o.der_len);
	struct lca_verify_res v = verify_x(&f, x, G_BE, "20001", NULL, NULL, 0);
	cr_assert(v.ok, "%s", v.reason);
	cr_assert_str_eq(v.identity, o.identity);
	X509_free(x);
	lca_issued_free(&o);
	BIO_free(b);
	X509_REQ_free(r);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

Test(issue, key_types)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	struct { const char *alg, *param; int want; } k[] = {
		{ "EC", "P-384", 0 }, { "ED25519", NULL, 0 }, { "RSA", "2048", 0 },
		{ "RSA", "1024", -EPERM }, { "EC", "P-521", -EPERM }, { "EC", "secp256k1", -EPERM },
		{ "ED448", NULL, -EPERM },
	};
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		EVP_PKEY *hk = !strcmp(k[i].alg, "RSA")
				       ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(k[i].param))
				       : k[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, k[i].alg, k[i].param)
						    : EVP_PKEY_Q_keygen(NULL, NULL, k[i].alg);
		cr_assert_not_null(hk, "%s %s", k[i].alg, k[i].param);
		X509_REQ *r = X509_REQ_new();
		int ed = !strncmp(k[i].alg, "ED", 2);
		cr_assert(X509_REQ_set_pubkey(r, hk) && X509_REQ_sign(r, hk, ed ? NULL : EVP_sha256()) > 0);
		unsigned char *der = NULL;
		int len = i2d_X509_REQ(r, &der);
		struct lca_issue_req rq = req_for(&f, der, len);
		struct lca_issued o;
		int got = lca_issue(f.ca, &rq, &o, &e);
		cr_expect_eq(got, k[i].want, "%s %s: %d %s", k[i].alg, k[i].param ? k[i].param : "",
			     got, got ? e.msg : "");
		if (k[i].want)
			cr_expect(strstr(e.msg, "not allowed") || strstr(e.msg, "allowed:"), "%s", e.msg);
		lca_issued_free(&o);
		OPENSSL_free(der);
		X509_REQ_free(r);
		EVP_PKEY_free(hk);
	}
	fx_fini(&f);
}

Test(issue, bad_csr_signature_and_garbage)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	unsigned char *csr = csr_der(hk, "h1", NULL, &len);
	struct lca_issued o;
	/* the signature BIT STRING is last: flip a byte in it */
	unsigned char *bad = malloc((size_t)len + 1);
	memcpy(bad, csr, (size_t)len);
	bad[len - 5] ^= 0x01;
	struct lca_issue_req rq = req_for(&f, bad, len);
	int r = lca_issue(f.ca, &rq, &o, &e);
	cr_assert(r == -EINVAL && (strstr(e.msg, "signature") || strstr(e.msg, "not a PEM or DER")),
		  "%d %s", r, e.msg);
	/* a CSR signed by another key than the one it carries */
	X509_REQ *rr = X509_REQ_new();
	EVP_PKEY *other = lca_keygen(LCA_KEY_EC_P256, &e);
	cr_assert(X509_REQ_set_pubkey(rr, hk) && X509_REQ_sign(rr, other, EVP_sha256()) > 0);
	unsigned char *sw = NULL;
	int swl = i2d_X509_REQ(rr, &sw);
	rq = req_for(&f, sw, swl);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "signature does not verify"), "%s", e.msg);
	/* trailing bytes after the DER */
	memcpy(bad, csr, (size_t)len);
	bad[len] = 0;
	rq = req_for(&f, bad, len + 1);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "after the DER"), "%s", e.msg);
	/* garbage, empty, oversized */
	rq = req_for(&f, (const unsigned char *)"hello world", 11);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	rq = req_for(&f, csr, 0);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	unsigned char *huge = calloc(1, LCA_CSR_MAX + 1);
	rq = req_for(&f, huge, LCA_CSR_MAX + 1);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "limit"), "%s", e.msg);
	/* nothing was stored */
	unsigned n = 99;
	cr_assert_eq(lca_revoke_host(f.ca, "h1", LCA_REASON_CESSATION, f.now, &n, &e), 0);
	cr_assert_eq(n, 0);
	free(huge);
	free(bad);
	OPENSSL_free(sw);
	X509_REQ_free(rr);
	EVP_PKEY_free(other);
	OPENSSL_free(csr);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

Test(issue, hostile_fields_are_refused)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	struct lca_issued o;
	struct lca_issue_req rq;

	unsigned char *c1 = csr_der(hk, "evil\x01name", NULL, &len);
	rq = req_for(&f, c1, len);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "control"), "%s", e.msg);
	char longcn[300];
	memset(longcn, 'a', sizeof(longcn) - 1);
	longcn[sizeof(longcn) - 1] = 0;
	/* X509_NAME refuses CN > 64 by its own table: use O via a raw name */
	X509_REQ *r = X509_REQ_new();
	X509_NAME *nm = X509_REQ_get_subject_name(r);
	for (int i = 0; i < 17; i++)
		cr_assert(X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_UTF8,
						     (const unsigned char *)"x", -1, -1, 0));
	cr_assert(X509_REQ_set_pubkey(r, hk) && X509_REQ_sign(r, hk, EVP_sha256()) > 0);
	unsigned char *c2 = NULL;
	int l2 = i2d_X509_REQ(r, &c2);
	rq = req_for(&f, c2, l2);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "limit 16"), "%s", e.msg);

	unsigned char *c3 = csr_der(hk, "h1", "critical,CA:TRUE", &len);
	rq = req_for(&f, c3, len);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EPERM);
	cr_assert(strstr(e.msg, "CA certificate"), "%s", e.msg);

	unsigned char *ok = csr_der(hk, "h1", "critical,CA:FALSE", &len);
	rq = req_for(&f, ok, len);
	rq.host_id = "has space";
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	rq = req_for(&f, ok, len);
	rq.user = "../../etc";
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	rq.user = "a,URI:xdnat://evil.example/";
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	rq = req_for(&f, ok, len);
	rq.lan_be = G_BE;
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	rq = req_for(&f, ok, len);
	rq.not_after = rq.not_before + LCA_DEFAULT_MAX_LEASE + 1;
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	cr_assert(strstr(e.msg, "lease"), "%s", e.msg);
	rq = req_for(&f, ok, len);
	rq.n_ports = rq.n_spis = 0;
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	struct lca_range lowspi = { 1, 300 };
	rq = req_for(&f, ok, len);
	rq.spis = &lowspi;
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), -EINVAL);
	/* the sane request still works */
	rq = req_for(&f, ok, len);
	cr_assert_eq(lca_issue(f.ca, &rq, &o, &e), 0, "%s", e.msg);
	lca_issued_free(&o);

	OPENSSL_free(ok);
	OPENSSL_free(c3);
	OPENSSL_free(c2);
	OPENSSL_free(c1);
	X509_REQ_free(r);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

/* A certificate forged with the LCA key, outside the namespace. */
static X509 *forge(const struct fx *f, const char *cn, const char *san)
{
	struct lca_err e;
	X509 *x = X509_new();
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	X509_NAME *n = X509_NAME_new();
	cr_assert(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"xdnat", -1, -1, 0));
	cr_assert(X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"203.0.113.7", -1, -1, 0));
	cr_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
	cr_assert(X509_set_version(x, X509_VERSION_3) && ASN1_INTEGER_set(X509_get_serialNumber(x), 77) &&
		  X509_set_subject_name(x, n) && X509_set_issuer_name(x, X509_get_subject_name(f->lcert)) &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -60) && X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
		  X509_set_pubkey(x, hk));
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, f->lcert, x, NULL, NULL, 0);
	const char *exts[][2] = { { "basicConstraints", "critical,CA:FALSE" },
				  { "authorityKeyIdentifier", "keyid:always" },
				  { "subjectAltName", san } };
	for (int i = 0; i < 3; i++) {
		X509_EXTENSION *ex = X509V3_EXT_nconf(NULL, &ctx, exts[i][0], exts[i][1]);
		cr_assert(ex && X509_add_ext(x, ex, -1), "%s", exts[i][1]);
		X509_EXTENSION_free(ex);
	}
	struct lca_alloc a = vec_alloc();
	cr_assert_eq(lca_alloc_add(x, &a, &e), 0);
	cr_assert(X509_sign(x, f->lk, EVP_sha256()) > 0);
	X509_NAME_free(n);
	EVP_PKEY_free(hk);
	return x;
}

Test(constraints, forged_identities_outside_the_namespace_fail)
{
	struct fx f;
	fx_init(&f);
	struct { const char *cn, *san; enum lca_vcode want; } c[] = {
		/* control: a forged but in-namespace identity passes */
		{ "10.9.9.9@203.0.113.7", "IP:203.0.113.7,URI:xdnat://7.113.0.203.in-addr.arpa/10.9.9.9", LCA_V_OK },
		{ "x@203.0.113.7", "IP:198.51.100.9", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,IP:10.77.0.11", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,IP:2001:db8::1", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,URI:xdnat://203.0.113.7/10.77.0.11", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,URI:https://bank.example/", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,DNS:www.bank.example", LCA_V_NAME_CONSTRAINTS },
		{ "x@203.0.113.7", "IP:203.0.113.7,email:ceo@bank.example", LCA_V_NAME_CONSTRAINTS },
		{ "www.bank.example", "IP:203.0.113.7", LCA_V_NAME_CONSTRAINTS },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		X509 *x = forge(&f, c[i].cn, c[i].san);
		struct lca_verify_res r = verify_x(&f, x, G_BE, NULL, NULL, NULL, 0);
		cr_expect_eq(r.code, c[i].want, "%s: got %s (%s)", c[i].san, lca_vcode_name(r.code),
			     r.reason);
		X509_free(x);
	}
	fx_fini(&f);
}

Test(constraints, lca_check_and_namespace)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	STACK_OF(X509) *chain = sk_X509_new_null();
	cr_assert(sk_X509_push(chain, f.root));
	cr_assert_eq(lca_cert_check(f.lcert, f.lk, chain, 0, &e), 0, "%s", e.msg);
	cr_assert_neq(lca_cert_check(f.lcert, f.rk, chain, 0, &e), 0);
	cr_assert(strstr(e.msg, "does not match"), "%s", e.msg);
	/* the root has no pathlen 0 and no name constraints: not usable as an LCA */
	cr_assert_eq(lca_cert_check(f.root, f.rk, NULL, 0, &e), -EPERM);
	cr_assert(strstr(e.msg, "pathlen"), "%s", e.msg);
	const struct lca_ns *ns = lca_namespace(f.ca);
	cr_assert_eq(ns->g_be, G_BE);
	cr_assert_str_eq(ns->domain, "7.113.0.203.in-addr.arpa");
	sk_X509_free(chain);
	struct lca_ns n2;
	cr_assert_eq(lca_ns_init(&n2, G_BE, "gw.example.net", "O=Example, OU=gw1", &e), 0, "%s", e.msg);
	lca_ns_release(&n2);
	cr_assert_eq(lca_ns_init(&n2, G_BE, "bad..domain", NULL, &e), -EINVAL);
	cr_assert_eq(lca_ns_init(&n2, G_BE, NULL, "O=a+b", &e), -EINVAL);
	cr_assert_eq(lca_ns_init(&n2, G_BE, NULL, "XX=a", &e), -EINVAL);
	cr_assert_eq(lca_ns_init(&n2, 0, NULL, NULL, &e), -EINVAL);
	fx_fini(&f);
}

static bool held_only_h2(void *arg, const struct lca_record *r, const struct lca_alloc *a)
{
	(void)arg;
	(void)a;
	return !strcmp(r->host_id, "h2");
}

Test(revoke, serial_host_overlap_reconcile_crl)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	unsigned char *csr = csr_der(hk, "h", NULL, &len);
	struct lca_issued a, b, c;
	struct lca_issue_req rq = req_for(&f, csr, len);
	cr_assert_eq(lca_issue(f.ca, &rq, &a, &e), 0, "%s", e.msg);
	struct lca_range p2 = { 30000, 30999 }, s2 = { 0xb2000000, 0xb2000fff };
	rq.host_id = "h2";
	rq.ports = &p2;
	rq.spis = &s2;
	cr_assert_eq(lca_issue(f.ca, &rq, &b, &e), 0, "%s", e.msg);
	rq.host_id = "h3";
	struct lca_range p3 = { 40000, 40099 };
	rq.ports = &p3;
	rq.n_spis = 0;
	cr_assert_eq(lca_issue(f.ca, &rq, &c, &e), 0, "%s", e.msg);

	cr_assert_eq(lca_range_bound(f.ca, LCA_KIND_PORTS, 20500, 20500, f.now, &e), 1);
	cr_assert_eq(lca_range_bound(f.ca, LCA_KIND_PORTS, 21000, 29999, f.now, &e), 0);
	cr_assert_eq(lca_range_bound(f.ca, LCA_KIND_SPI, 0xb2000fff, 0xb2001000, f.now, &e), 1);

	/* freeing h1's ports revokes its certificate, not the others */
	unsigned n = 0;
	cr_assert_eq(lca_revoke_overlapping(f.ca, LCA_KIND_PORTS, 20000, 20999, LCA_REASON_CESSATION,
					    f.now, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(lca_range_bound(f.ca, LCA_KIND_PORTS, 20000, 20999, f.now, &e), 0);
	cr_assert_eq(lca_revoke(f.ca, a.serial, LCA_REASON_CESSATION, f.now, &e), -EALREADY);
	cr_assert_eq(lca_revoke(f.ca, "00FF", LCA_REASON_CESSATION, f.now, &e), -ENOENT);
	cr_assert_eq(lca_revoke(f.ca, b.serial, 2, f.now, &e), -EINVAL);   /* reason 2: CA compromise */

	/* after a "restart": only h2's allocation is still held */
	n = 0;
	cr_assert_eq(lca_reconcile(f.ca, f.now, held_only_h2, NULL, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);   /* h3 */

	unsigned char *der = NULL;
	size_t dl = 0;
	cr_assert_eq(lca_crl(f.ca, f.now, &der, &dl, &e), 0, "%s", e.msg);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)dl);
	cr_assert_not_null(crl);
	cr_assert_eq(X509_CRL_verify(crl, X509_get0_pubkey(f.lcert)), 1);
	cr_assert_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	cr_assert(sk_X509_CRL_push(crls, crl));

	X509 *xa = der_x509(a.der, a.der_len), *xb = der_x509(b.der, b.der_len);
	struct lca_verify_res r = verify_x(&f, xa, G_BE, NULL, NULL, crls, 0);
	cr_assert_eq(r.code, LCA_V_REVOKED, "%s", r.reason);
	r = verify_x(&f, xb, G_BE, "30000", "0xb2000001", crls, 0);
	cr_assert(r.ok, "%s", r.reason);
	/* a stale CRL is not accepted as proof */
	r = verify_x(&f, xb, G_BE, NULL, NULL, crls, f.now + 2 * 86400);
	cr_assert_neq(r.code, LCA_V_OK);

	/* CRL numbers increase */
	unsigned char *der2 = NULL;
	cr_assert_eq(lca_crl(f.ca, f.now, &der2, &dl, &e), 0);
	p = der2;
	X509_CRL *crl2 = d2i_X509_CRL(NULL, &p, (long)dl);
	ASN1_INTEGER *n1 = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	ASN1_INTEGER *n2 = X509_CRL_get_ext_d2i(crl2, NID_crl_number, NULL, NULL);
	cr_assert_eq(ASN1_INTEGER_get(n2), ASN1_INTEGER_get(n1) + 1);
	/* ... and so does thisUpdate, even within one second (the second CRL
	 * got now + 1) and when the clock lags that (a third at now - 5):
	 * never a tie a verifier could resolve in favour of the older CRL. */
	cr_assert_eq(ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_lastUpdate(crl2)), -1);
	unsigned char *der3 = NULL;
	cr_assert_eq(lca_crl(f.ca, f.now - 5, &der3, &dl, &e), 0, "%s", e.msg);
	p = der3;
	X509_CRL *crl3 = d2i_X509_CRL(NULL, &p, (long)dl);
	cr_assert_not_null(crl3);
	cr_assert_eq(ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl2), X509_CRL_get0_lastUpdate(crl3)), -1);
	X509_CRL_free(crl3);
	OPENSSL_free(der3);
	/* a time well before the last CRL (clock stepped back, --now in the past) */
	der3 = NULL;
	cr_assert_eq(lca_crl(f.ca, f.now - 3600, &der3, &dl, &e), -EINVAL);
	cr_assert_null(der3);

	ASN1_INTEGER_free(n1);
	ASN1_INTEGER_free(n2);
	X509_CRL_free(crl2);
	OPENSSL_free(der2);
	X509_free(xa);
	X509_free(xb);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	OPENSSL_free(der);
	lca_issued_free(&a);
	lca_issued_free(&b);
	lca_issued_free(&c);
	OPENSSL_free(csr);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

Test(store, shares_a_database_and_a_callers_transaction)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	/* the control plane's own tables coexist; a rolled-back caller
	 * transaction takes the issuance record with it */
	cr_assert_eq(sqlite3_exec(f.db, "CREATE TABLE hosts (name TEXT)", 0, 0, 0), SQLITE_OK);
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	unsigned char *csr = csr_der(hk, "h", NULL, &len);
	struct lca_issue_req rq = req_for(&f, csr, len);
	struct lca_issued a;
	cr_assert_eq(sqlite3_exec(f.db, "BEGIN", 0, 0, 0), SQLITE_OK);
	cr_assert_eq(lca_issue(f.ca, &rq, &a, &e), 0, "%s", e.msg);
	cr_assert_eq(sqlite3_exec(f.db, "ROLLBACK", 0, 0, 0), SQLITE_OK);
	cr_assert_eq(lca_revoke(f.ca, a.serial, LCA_REASON_CESSATION, f.now, &e), -ENOENT);
	lca_issued_free(&a);
	cr_assert_eq(lca_issue(f.ca, &rq, &a, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_revoke(f.ca, a.serial, LCA_REASON_CESSATION, f.now, &e), 0, "%s", e.msg);
	lca_issued_free(&a);
	OPENSSL_free(csr);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

/* ---- the profile of issue 16 ----------------------------------------------- */

/* f.lcert with its nameConstraints (or another extension) replaced by conf
 * (NULL: removed), re-signed by the root. */
static X509 *lca_variant(const struct fx *f, int nid, const char *conf)
{
	X509 *x = X509_dup(f->lcert);
	cr_assert_not_null(x);
	int i = X509_get_ext_by_NID(x, nid, -1);
	if (i >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, i));
	if (conf) {
		X509V3_CTX ctx;
		X509V3_set_ctx(&ctx, f->root, x, NULL, NULL, 0);
		X509_EXTENSION *ex = X509V3_EXT_nconf_nid(NULL, &ctx, nid, conf);
		cr_assert_not_null(ex, "%s", conf);
		cr_assert(X509_add_ext(x, ex, -1));
		X509_EXTENSION_free(ex);
	}
	cr_assert_gt(X509_sign(x, f->rk, EVP_sha256()), 0);
	return x;
}

static void expect_refused(const struct fx *f, int nid, const char *conf, const char *want)
{
	struct lca_err e;
	X509 *x = lca_variant(f, nid, conf);
	cr_assert_eq(lca_cert_check(x, f->lk, NULL, 0, &e), -EPERM, "accepted: %s", conf ? conf : "(none)");
	cr_assert(strstr(e.msg, want), "'%s': want '%s' in: %s", conf ? conf : "(none)", want, e.msg);
	X509_free(x);
}

Test(profile, lca_certificate_has_the_profile)
{
	struct fx f;
	fx_init(&f);
	int crit = -1;
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(f.lcert, NID_name_constraints, &crit, NULL);
	cr_assert_not_null(nc);
	cr_assert_eq(crit, 0, "name constraints must be non-critical (strongSwan 5.9.8)");
	cr_assert_eq(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 5);
	NAME_CONSTRAINTS_free(nc);
	cr_assert_eq(X509_get_key_usage(f.lcert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	cr_assert_lt(X509_get_ext_by_NID(f.lcert, NID_crl_distribution_points, -1), 0);
	/* with a distribution point for the root's CRL */
	struct lca_err e;
	struct lca_ns ns;
	cr_assert_eq(lca_ns_from_cert(f.lcert, &ns, &e), 0, "%s", e.msg);
	X509_REQ *req = lca_csr_create(f.lk, &ns, &e);
	X509 *dp = lca_cert_sign_dp(req, f.root, f.rk, &ns, "http://198.51.100.1/root.crl",
				    f.now - 60, f.now + 3600, &e);
	cr_assert_not_null(dp, "%s", e.msg);
	cr_assert_geq(X509_get_ext_by_NID(dp, NID_crl_distribution_points, -1), 0);
	cr_assert_eq(lca_cert_check(dp, f.lk, NULL, 0, &e), 0, "%s", e.msg);
	cr_assert_null(lca_cert_sign_dp(req, f.root, f.rk, &ns, "ftp://x/", f.now, f.now + 60, &e));
	X509_free(dp);
	X509_REQ_free(req);
	lca_ns_release(&ns);
	fx_fini(&f);
}

Test(profile, import_check_names_what_is_missing)
{
	struct fx f;
	fx_init(&f);
	const char *ip = "permitted;IP:203.0.113.7/255.255.255.255";
	const char *d = "7.113.0.203.in-addr.arpa";
	char c[512];
	snprintf(c, sizeof(c), "%s,permitted;URI:%s,permitted;email:%s", ip, d, d);
	expect_refused(&f, NID_name_constraints, c, "dNSName");
	snprintf(c, sizeof(c), "%s,permitted;URI:%s,permitted;DNS:%s", ip, d, d);
	expect_refused(&f, NID_name_constraints, c, "rfc822Name");
	snprintf(c, sizeof(c), "permitted;URI:%s,permitted;DNS:%s,permitted;email:%s", d, d, d);
	expect_refused(&f, NID_name_constraints, c, "iPAddress");
	snprintf(c, sizeof(c), "%s,permitted;DNS:%s,permitted;email:%s", ip, d, d);
	expect_refused(&f, NID_name_constraints, c, "URI");
	expect_refused(&f, NID_name_constraints, NULL, "name constraints");
	expect_refused(&f, NID_basic_constraints, "critical,CA:TRUE", "pathlen");
	expect_refused(&f, NID_basic_constraints, "CA:TRUE,pathlen:0", "not critical");
	expect_refused(&f, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign",
		       "exactly keyCertSign and cRLSign");
	expect_refused(&f, NID_key_usage, "keyCertSign,cRLSign", "not critical");
	expect_refused(&f, NID_key_usage, NULL, "no keyUsage");
	fx_fini(&f);
}

Test(profile, host_identity_is_a_dns_name_and_not_before_is_backdated)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	EVP_PKEY *hk = lca_keygen(LCA_KEY_EC_P256, &e);
	int len;
	unsigned char *csr = csr_der(hk, "h", NULL, &len);
	struct lca_issue_req rq = req_for(&f, csr, len);
	rq.not_before = f.now;
	struct lca_issued a;
	cr_assert_eq(lca_issue(f.ca, &rq, &a, &e), 0, "%s", e.msg);
	X509 *x = der_x509(a.der, a.der_len);
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int types = 0;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		cr_assert(g->type == GEN_IPADD || g->type == GEN_DNS, "SAN type %d issued", g->type);
		types |= 1 << g->type;
	}
	GENERAL_NAMES_free(gens);
	cr_assert_eq(types, (1 << GEN_IPADD) | (1 << GEN_DNS));
	int days = 0, secs = 0;
	ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)f.now);
	cr_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), t));
	cr_assert_eq(days * 86400 + secs, LCA_BACKDATE_S);
	ASN1_TIME_free(t);
	X509_free(x);
	lca_issued_free(&a);
	OPENSSL_free(csr);
	EVP_PKEY_free(hk);
	fx_fini(&f);
}

static int64_t crl_info(const unsigned char *der, size_t len, int64_t *number)
{
	const unsigned char *p = der;
	X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)len);
	cr_assert_not_null(c);
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL);
	cr_assert(n && ASN1_INTEGER_get_int64(number, n));
	ASN1_INTEGER_free(n);
	struct tm tm;
	cr_assert_eq(ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(c), &tm), 1);
	X509_CRL_free(c);
	return (int64_t)timegm(&tm);
}

Test(profile, crls_never_go_back)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	unsigned char *d[3];
	size_t l[3];
	int64_t n[3], t[3];
	/* three within the same second of the clock: numbers and times
	 * strictly increase */
	int64_t t0 = time(NULL);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(lca_crl(f.ca, time(NULL), &d[i], &l[i], &e), 0, "%s", e.msg);
		t[i] = crl_info(d[i], l[i], &n[i]);
		OPENSSL_free(d[i]);
	}
	for (int i = 0; i < 2; i++) {
		cr_assert_lt(n[i], n[i + 1]);
		cr_assert_lt(t[i], t[i + 1], "thisUpdate %lld then %lld", (long long)t[i],
			     (long long)t[i + 1]);
	}
	cr_assert_geq(t[0], t0);
	/* an hour back: refused, and the number did not move */
	cr_assert_eq(lca_crl(f.ca, t0 - 3600, &d[0], &l[0], &e), -EINVAL);
	cr_assert(strstr(e.msg, "never goes back"), "%s", e.msg);
	cr_assert_eq(lca_crl(f.ca, t0 + 10, &d[0], &l[0], &e), 0, "%s", e.msg);
	int64_t n4;
	cr_assert_eq(crl_info(d[0], l[0], &n4), t0 + 10);
	cr_assert_eq(n4, n[2] + 1);
	OPENSSL_free(d[0]);
	fx_fini(&f);
}

Test(profile, root_revokes_the_lca)
{
	struct fx f;
	fx_init(&f);
	struct lca_err e;
	unsigned char *der = NULL;
	size_t len = 0;
	cr_assert_eq(lca_root_revoke(f.db, f.root, f.lcert, LCA_REASON_KEY_COMPROMISE, f.now, &e), 0,
		     "%s", e.msg);
	cr_assert_eq(lca_root_revoke(f.db, f.root, f.lcert, LCA_REASON_KEY_COMPROMISE, f.now, &e),
		     -EALREADY);
	cr_assert_eq(lca_root_revoke(f.db, f.lcert, f.root, 0, f.now, &e), -EPERM, "not issued by it");
	cr_assert_neq(lca_root_crl(f.db, f.root, f.lk, f.now, 0, &der, &len, &e), 0, "wrong key");
	cr_assert_eq(lca_root_crl(f.db, f.root, f.rk, f.now, 0, &der, &len, &e), 0, "%s", e.msg);
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	cr_assert_not_null(crl);
	cr_assert_eq(X509_CRL_verify(crl, f.rk), 1);
	X509_REVOKED *rv = NULL;
	cr_assert_eq(X509_CRL_get0_by_cert(crl, &rv, f.lcert), 1, "the LCA is not listed");
	X509_CRL_free(crl);
	OPENSSL_free(der);
	/* the LCA's own CRL numbering is independent */
	cr_assert_eq(lca_crl(f.ca, f.now, &der, &len, &e), 0, "%s", e.msg);
	int64_t n;
	crl_info(der, len, &n);
	cr_assert_eq(n, 1);
	OPENSSL_free(der);
	fx_fini(&f);
}

Test(profile, private_keys_others_can_read_are_refused)
{
	struct lca_err e;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/test_ca-key-%d.pem", (int)getpid());
	unlink(path);
	EVP_PKEY *k = lca_keygen(LCA_KEY_EC_P256, &e);
	cr_assert_eq(lca_write_key(path, k, &e), 0, "%s", e.msg);
	EVP_PKEY *r = lca_read_key(path, &e);
	cr_assert_not_null(r, "%s", e.msg);
	EVP_PKEY_free(r);
	const mode_t bad[] = { 0640, 0604, 0644, 0660 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(chmod(path, bad[i]), 0);
		cr_assert_null(lca_read_key(path, &e), "mode %o accepted", bad[i]);
		cr_assert(strstr(e.msg, "chmod 600"), "%s", e.msg);
	}
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_not_null(r = lca_read_key(path, &e), "%s", e.msg);
	EVP_PKEY_free(r);
	unlink(path);
	EVP_PKEY_free(k);
}
