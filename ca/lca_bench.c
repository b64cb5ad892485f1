// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Issuance benchmark (lca.h lca_bench, `xdnat-ca bench`): lca_issue against
 * raw OpenSSL signing of a certificate of the same shape. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/x509v3.h>
#include "lca.h"

/* Everything one run sets up; bench_free releases it. */
struct bench {
	char dbpath[32];               /* the temporary SQLite file of the full run */
	struct lca_ns ns;
	EVP_PKEY *rk, *lk, *hk;        /* root, LCA and host keys */
	X509 *root, *lcert;
	X509_REQ *lreq, *hreq;
	unsigned char *csr;            /* the host's CSR, DER */
	int csr_len;
	sqlite3 *db, *mem;
	struct lca *ca, *ca_fast;      /* full; in-memory store without self-check */
	struct lca_range pr, sr;
	struct lca_alloc a;            /* what the raw certificates carry */
	X509_EXTENSION *san, *crldp;
	X509_NAME *subj;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Raw OpenSSL: the same certificate shape (subject, SANs, key usage, key
 * ids, CRL DP, allocation extension), built from an already parsed key and
 * signed; no CSR parsing, no checks, no self-verification, no store. */
static int raw_one(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *host, const X509_NAME *subj,
		   X509_EXTENSION *san, X509_EXTENSION *crldp, const struct lca_alloc *a)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	BIGNUM *bn = BN_new();
	ASN1_INTEGER *ai = NULL;
	int ok = x && bn && X509_set_version(x, X509_VERSION_3) &&
		 BN_rand(bn, LCA_SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
		 (ai = BN_to_ASN1_INTEGER(bn, NULL)) && X509_set_serialNumber(x, ai) &&
		 X509_set_subject_name(x, subj) &&
		 X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) &&
		 X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
		 X509_gmtime_adj(X509_getm_notAfter(x), 3600) && X509_set_pubkey(x, host);
	X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
	const char *conf[][2] = { { "basicConstraints", "critical,CA:FALSE" },
				  { "keyUsage", "critical,digitalSignature" },
				  { "subjectKeyIdentifier", "hash" },
				  { "authorityKeyIdentifier", "keyid:always" } };
	for (size_t i = 0; ok && i < 4; i++) {
		X509_EXTENSION *ex = X509V3_EXT_nconf(NULL, &ctx, conf[i][0], conf[i][1]);
		ok = ex && X509_add_ext(x, ex, -1);
		X509_EXTENSION_free(ex);
	}
	ok = ok && X509_add_ext(x, san, -1) && X509_add_ext(x, crldp, -1) &&
	     !lca_alloc_add(x, a, NULL) && X509_sign(x, ca_key, lca_sign_md(ca_key)) > 0;
	unsigned char *der = NULL;
	ok = ok && i2d_X509(x, &der) > 0;
	OPENSSL_free(der);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_free(x);
	return ok ? 0 : -1;
}

/* A demo root, an LCA (key type kt) for 203.0.113.7 and a host CSR (EC P-256). */
static int bench_keys(struct bench *b, enum lca_keytype kt, int64_t now, struct lca_err *e)
{
	if (lca_ns_init(&b->ns, htonl(0xcb007107), NULL, NULL, e) ||
	    !(b->rk = lca_keygen(kt, e)) || !(b->lk = lca_keygen(kt, e)) ||
	    !(b->hk = lca_keygen(LCA_KEY_EC_P256, e)) ||
	    !(b->root = lca_root_create(b->rk, "O=bench, CN=bench root", now - 60, now + 86400,
					e)) ||
	    !(b->lreq = lca_csr_create(b->lk, &b->ns, e)) ||
	    !(b->lcert = lca_cert_sign(b->lreq, b->root, b->rk, &b->ns, now - 60, now + 86400, e)))
		return -1;
	b->hreq = X509_REQ_new();
	if (!b->hreq || !X509_REQ_set_pubkey(b->hreq, b->hk) ||
	    X509_REQ_sign(b->hreq, b->hk, EVP_sha256()) <= 0 ||
	    (b->csr_len = i2d_X509_REQ(b->hreq, &b->csr)) <= 0)
		return lca_fail(e, -EIO, "cannot build the bench CSR");
	return 0;
}

/* The two LCAs: full (SQLite WAL, synchronous=FULL, self-check) and fast
 * (in-memory store, no self-check). */
static int bench_open(struct bench *b, struct lca_err *e)
{
	if (sqlite3_open(b->dbpath, &b->db) != SQLITE_OK ||
	    sqlite3_exec(b->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", 0, 0, 0) ||
	    sqlite3_open(":memory:", &b->mem) != SQLITE_OK)
		return lca_fail(e, -EIO, "cannot open the bench databases");
	struct lca_config cfg = { .crl_url = "http://203.0.113.7/lca.crl" };
	if (lca_open_mem(&cfg, b->lk, b->lcert, NULL, b->db, &b->ca, e))
		return -1;
	struct lca_config cfg2 = cfg;
	cfg2.no_selfcheck = true;
	if (lca_open_mem(&cfg2, b->lk, b->lcert, NULL, b->mem, &b->ca_fast, e))
		return -1;
	return 0;
}

/* What raw_one puts into every certificate. */
static int bench_raw_parts(struct bench *b, struct lca_err *e)
{
	b->a = (struct lca_alloc){ .gaddr_len = 4, .n_ports = 1, .n_spis = 1 };
	memcpy(b->a.gaddr, &b->ns.g_be, 4);
	b->a.ports[0] = b->pr;
	b->a.spis[0] = b->sr;
	b->subj = X509_NAME_dup(b->ns.dn);
	b->san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
				     "IP:203.0.113.7,DNS:10-77-0-11.7.113.0.203.in-addr.arpa");
	b->crldp = X509V3_EXT_conf_nid(NULL, NULL, NID_crl_distribution_points,
				       "URI:http://203.0.113.7/lca.crl");
	if (!b->subj || !b->san || !b->crldp ||
	    !X509_NAME_add_entry_by_txt(b->subj, "CN", MBSTRING_ASC,
					(const unsigned char *)"10.77.0.11@203.0.113.7", -1, -1, 0))
		return lca_fail(e, -EIO, "cannot build the raw certificate parts");
	return 0;
}

static void bench_free(struct bench *b)
{
	X509_NAME_free(b->subj);
	X509_EXTENSION_free(b->san);
	X509_EXTENSION_free(b->crldp);
	OPENSSL_free(b->csr);
	lca_close(b->ca);
	lca_close(b->ca_fast);
	sqlite3_close(b->db);
	sqlite3_close(b->mem);
	char side[sizeof(b->dbpath) + 8];
	unlink(b->dbpath);
	snprintf(side, sizeof(side), "%s-wal", b->dbpath);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", b->dbpath);
	unlink(side);
	X509_REQ_free(b->hreq);
	X509_REQ_free(b->lreq);
	X509_free(b->lcert);
	X509_free(b->root);
	EVP_PKEY_free(b->hk);
	EVP_PKEY_free(b->lk);
	EVP_PKEY_free(b->rk);
	lca_ns_release(&b->ns);
}

/* n raw certificates; their rate in *rate. */
static int bench_raw(const struct bench *b, long n, double *rate, struct lca_err *e)
{
	double t0 = now_s();
	for (long i = 0; i < n; i++)
		if (raw_one(b->lcert, b->lk, b->hk, b->subj, b->san, b->crldp, &b->a))
			return lca_fail(e, -EIO, "raw signing failed");
	*rate = n / (now_s() - t0);
	return 0;
}

/* n certificates from ca for rq; their rate in *rate. */
static int bench_issue(struct lca *ca, const struct lca_issue_req *rq, long n, double *rate,
		       struct lca_err *e)
{
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		struct lca_issued out;
		int err = lca_issue(ca, rq, &out, e);
		if (err)
			return err;
		lca_issued_free(&out);
	}
	*rate = n / (now_s() - t0);
	return 0;
}

int lca_bench(enum lca_keytype kt, long n, struct lca_bench_res *res, struct lca_err *e)
{
	struct bench b = { .dbpath = "/tmp/xdnat-ca-bench-XXXXXX",
			   .pr = { 20000, 20999 }, .sr = { 0xa1000000, 0xa1000fff } };
	int64_t now = time(NULL);
	int fd = mkstemp(b.dbpath);
	if (fd < 0)
		return lca_fail(e, -errno, "mkstemp: %s", strerror(errno));
	close(fd);
	int err = -1;
	if (bench_keys(&b, kt, now, e) || bench_open(&b, e) || bench_raw_parts(&b, e))
		goto out;
	struct lca_issue_req rq = { .csr = b.csr, .csr_len = (size_t)b.csr_len,
				    .host_id = "bench", .lan_be = htonl(0x0a4d000b),
				    .ports = &b.pr, .n_ports = 1, .spis = &b.sr, .n_spis = 1,
				    .not_before = now, .not_after = now + 3600 };
	if (bench_raw(&b, n, &res->raw, e) || bench_issue(b.ca_fast, &rq, n, &res->fast, e) ||
	    bench_issue(b.ca, &rq, n, &res->full, e))
		goto out;
	err = 0;
out:
	bench_free(&b);
	return err;
}
