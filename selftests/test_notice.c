// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Revocation notices (ca/notice.[ch]): an LCA-signed notice verifies against
 * the root and decodes to what was signed, CRL included; a notice is refused
 * when any byte changes, when truncated, with other trust anchors, when it
 * is not DER, or when it is signed by an LCA of another root.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include "lca.h"
#include "notice.h"

struct fx {
	EVP_PKEY *rk, *lk;
	X509 *root, *lcert;
	sqlite3 *db;
	struct lca *ca;
	STACK_OF(X509) *anchors;
};

static void mk(struct fx *f, uint32_t g_be)
{
	struct lca_err e = { { 0 } };
	struct lca_config cfg = { .crl_period_s = 3600 };
	int64_t now = time(NULL);
	struct lca_ns ns;
	X509_REQ *req;

	memset(f, 0, sizeof(*f));
	cr_assert(f->rk = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert(f->lk = lca_keygen(LCA_KEY_EC_P256, &e), "%s", e.msg);
	cr_assert(f->root = lca_root_create(f->rk, "O=test, CN=root", now - 60, now + 86400, &e));
	cr_assert_eq(lca_ns_init(&ns, g_be, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert(req = lca_csr_create(f->lk, &ns, &e), "%s", e.msg);
	cr_assert(f->lcert = lca_cert_sign(req, f->root, f->rk, &ns, now - 60, now + 86400, &e), "%s", e.msg);
	X509_REQ_free(req);
	lca_ns_release(&ns);
	cr_assert_eq(sqlite3_open(":memory:", &f->db), SQLITE_OK);
	cr_assert_eq(lca_open_mem(&cfg, f->lk, f->lcert, NULL, f->db, &f->ca, &e), 0, "%s", e.msg);
	f->anchors = sk_X509_new_null();
	cr_assert(f->anchors && sk_X509_push(f->anchors, f->root));
}

static void rm(struct fx *f)
{
	lca_close(f->ca);
	sqlite3_close(f->db);
	sk_X509_free(f->anchors);
	X509_free(f->root);
	X509_free(f->lcert);
	EVP_PKEY_free(f->rk);
	EVP_PKEY_free(f->lk);
}

static const struct lca_notice_entry ent[2] = {
	{ "4A1B2C3D4E5F60718293A4B5C6D7E8F901234567", 1700000000, 5,
	  "xdnat://1.2.0.192.in-addr.arpa/10.0.0.2" },
	{ "7F00000000000000000000000000000000000001", 1700000001, 3,
	  "xdnat://1.2.0.192.in-addr.arpa/10.0.0.3" },
};

Test(notice, round_trip_and_tampering)
{
	struct fx f, other;
	struct lca_err e = { { 0 } };
	struct lca_notice *n = calloc(1, sizeof(*n));
	unsigned char *crl = NULL, *der = NULL;
	size_t crl_len = 0, len = 0;
	int64_t now = time(NULL);

	cr_assert(n);
	mk(&f, htonl(0xc0000201));
	cr_assert_eq(lca_crl(f.ca, now, &crl, &crl_len, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_notice_make(f.ca, ent, 2, crl, crl_len, now, &der, &len, &e), 0, "%s", e.msg);
	cr_assert_eq(lca_notice_verify(der, len, f.anchors, 0, n, &e), 0, "%s", e.msg);
	cr_assert_eq(n->g_be, htonl(0xc0000201));
	cr_assert_eq(n->crl_number, 1);
	cr_assert_eq(n->produced_at, now);
	cr_assert_eq(n->n, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_str_eq(n->e[i].serial, ent[i].serial);
		cr_assert_str_eq(n->e[i].identity, ent[i].identity);
		cr_assert_eq(n->e[i].reason, ent[i].reason);
		cr_assert_eq(n->e[i].revoked_at, ent[i].revoked_at);
	}
	cr_assert_not_null(n->crl);
	/* xdnat-peer's CRL high-water needs the key that signed the carried CRL */
	cr_assert_not_null(n->crl_key);
	cr_assert_eq(X509_CRL_verify(n->crl, n->crl_key), 1);
	lca_notice_release(n);
	cr_assert_null(n->crl_key);
	/* Every bit flip of every byte either is refused or leaves exactly what
	 * was signed: CMS_verify tolerates changes to the envelope's
	 * unauthenticated version numbers and algorithm identifiers, never to
	 * the content, the signed attributes, the signature or the chain. */
	{
		unsigned tolerated = 0;

		for (size_t i = 0; i < len; i++) {
			for (int b = 0; b < 8; b += 3) {
				der[i] ^= (unsigned char)(1u << b);
				if (lca_notice_verify(der, len, f.anchors, 0, n, &e) == 0) {
					tolerated++;
					cr_assert(n->g_be == htonl(0xc0000201) && n->crl_number == 1 &&
						  n->n == 2 && !strcmp(n->e[0].serial, ent[0].serial) &&
						  !strcmp(n->e[1].identity, ent[1].identity) &&
						  n->e[1].reason == ent[1].reason,
						  "byte %zu bit %d: accepted with other content", i, b);
					lca_notice_release(n);
				}
				der[i] ^= (unsigned char)(1u << b);
			}
		}
		cr_assert_lt(tolerated, 64, "%u flips accepted", tolerated);
	}
	for (size_t l = 0; l < len; l += 13)
		cr_assert_neq(lca_notice_verify(der, l, f.anchors, 0, n, &e), 0, "truncated to %zu", l);
	/* Another root: refused; the other LCA's notice under our root: refused. */
	mk(&other, htonl(0xc0000202));
	cr_assert_eq(lca_notice_verify(der, len, other.anchors, 0, n, &e), -EPERM);
	{
		unsigned char *d2 = NULL;
		size_t l2 = 0;

		cr_assert_eq(lca_notice_make(other.ca, ent, 1, NULL, 0, now, &d2, &l2, &e), 0, "%s", e.msg);
		cr_assert_eq(lca_notice_verify(d2, l2, f.anchors, 0, n, &e), -EPERM);
		cr_assert_eq(lca_notice_verify(d2, l2, other.anchors, 0, n, &e), 0, "%s", e.msg);
		cr_assert_null(n->crl);
		lca_notice_release(n);
		OPENSSL_free(d2);
	}
	/* A notice carrying another LCA's CRL. */
	{
		unsigned char *c2 = NULL, *d3 = NULL;
		size_t cl2 = 0, l3 = 0;

		cr_assert_eq(lca_crl(other.ca, now, &c2, &cl2, &e), 0);
		cr_assert_eq(lca_notice_make(f.ca, ent, 1, c2, cl2, now, &d3, &l3, &e), 0, "%s", e.msg);
		cr_assert_eq(lca_notice_verify(d3, l3, f.anchors, 0, n, &e), -EPERM);
		cr_assert(strstr(e.msg, "CRL"), "%s", e.msg);
		OPENSSL_free(c2);
		OPENSSL_free(d3);
	}
	/* Garbage, empty, bounds. */
	cr_assert_neq(lca_notice_verify((const unsigned char *)"\x30\x03\x02\x01\x01", 5, f.anchors, 0, n, &e), 0);
	cr_assert_neq(lca_notice_verify(der, 0, f.anchors, 0, n, &e), 0);
	cr_assert_eq(lca_notice_make(f.ca, ent, 0, NULL, 0, now, &der, &len, &e) < 0, 1);
	OPENSSL_free(der);
	OPENSSL_free(crl);
	free(n);
	rm(&f);
	rm(&other);
}
