/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Local CA (docs/LCA.md).  Trust: operator root CA -> LCA (this router,
 * name-constrained to its global address G) -> host certificates.
 *
 * Namespace of one LCA, written into the LCA certificate as permitted name
 * constraints (non-critical: strongSwan 5.9.8 cannot parse a critical
 * iPAddress constraint; docs/LCA.md "Certificate profile and why") and read
 * back from it (the certificate is the single source of truth):
 *   iPAddress      G/32
 *   URI            host <domain>          (default: G's reverse DNS name,
 *   rfc822Name     mailbox @<domain>        e.g. 7.113.0.203.in-addr.arpa)
 *   dNSName        <domain> and below
 *   directoryName  <dn base>              (default "O=xdnat, OU=<G>")
 * Host identity (seed: "global address + local address"):
 *   subject  <dn base>, CN=<LAN>@<G>           or CN=<user>@<domain>
 *   SAN      IP:<G>, DNS:<a-b-c-d>.<domain>  or IP:<G>, email:<user>@<domain>
 *            (LAN a.b.c.d; only these SAN types are ever issued)
 * The LAN address is never an iPAddress SAN (it is outside G/32) and the CN
 * always contains '@' so OpenSSL does not mistake it for a DNS name.
 *
 * Conventions: functions return 0 or a negative errno (-EINVAL bad input,
 * -EPERM policy refusal, -ENOENT not found, -EALREADY, -ENOMEM, -EIO crypto
 * or database failure) and put a one-line reason in struct lca_err (may be
 * NULL).  Times are Unix seconds.  Nothing here is thread-safe: use one
 * struct lca per thread, or a lock.
 */
#ifndef XDNAT_LCA_H
#define XDNAT_LCA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sqlite3.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "lca_ext.h"

#define LCA_CSR_MAX        16384   /* bytes, PEM or DER */
#define LCA_SERIAL_BITS    159     /* top bit set: always 20 bytes, 40 hex digits */
#define LCA_SERIAL_STRLEN  41
#define LCA_ID_MAX         128     /* host_id, user */
#define LCA_URL_MAX        512
#define LCA_DEFAULT_MAX_LEASE (400 * 86400)
#define LCA_DEFAULT_CRL_PERIOD 86400
#define LCA_BACKDATE_S     300     /* host notBefore = lease start - 5 min (clock skew) */

/* ---- keys, files -------------------------------------------------------- */

enum lca_keytype { LCA_KEY_EC_P256, LCA_KEY_EC_P384, LCA_KEY_ED25519, LCA_KEY_RSA3072 };
int lca_keytype_parse(const char *s, enum lca_keytype *t);  /* p256 p384 ed25519 rsa3072 */
EVP_PKEY *lca_keygen(enum lca_keytype t, struct lca_err *e);

/* PEM files.  Keys are written 0600 and never over an existing file, and
 * read only from a regular file no one but the owner can access. */
int lca_write_key(const char *path, EVP_PKEY *key, struct lca_err *e);
int lca_write_cert(const char *path, X509 *x, struct lca_err *e);
int lca_write_csr(const char *path, X509_REQ *r, struct lca_err *e);
EVP_PKEY *lca_read_key(const char *path, struct lca_err *e);
X509 *lca_read_cert(const char *path, struct lca_err *e);
/* Every certificate in a PEM file (at least one). */
STACK_OF(X509) *lca_read_certs(const char *path, struct lca_err *e);
/* Whole file into memory, at most max bytes. */
int lca_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
		  struct lca_err *e);
/* A CSR in PEM or DER from memory, at most LCA_CSR_MAX bytes, signature
 * checked, nothing after the DER. */
X509_REQ *lca_parse_csr(const unsigned char *buf, size_t len, struct lca_err *e);
/* The digest to sign with for this key (NULL for Ed25519). */
const EVP_MD *lca_sign_md(EVP_PKEY *key);

/* ---- namespace, root and LCA certificates ------------------------------ */

struct lca_ns {
	uint32_t g_be;                 /* G, network byte order */
	char domain[254];
	X509_NAME *dn;                 /* owned; NULL: no directoryName subtree */
};
/* domain NULL: G's in-addr.arpa name; dn NULL: "O=xdnat, OU=<G>".  A DN is
 * "ATTR=value, ATTR=value" with ATTR in C ST L O OU CN DC, values without
 * ',' '=' '+' or control characters. */
int lca_ns_init(struct lca_ns *ns, uint32_t g_be, const char *domain, const char *dn,
		struct lca_err *e);
void lca_ns_release(struct lca_ns *ns);
/* Read the namespace from an LCA certificate's name constraints: the
 * permitted subtrees must be exactly one IPv4 /32, a URI, a DNS and an
 * e-mail subtree for one domain, and a directoryName; the error names
 * what is missing or extra. */
int lca_ns_from_cert(X509 *lca, struct lca_ns *ns, struct lca_err *e);
/* "O=xdnat, OU=203.0.113.7" into buf. */
void lca_dn_str(const X509_NAME *n, char *buf, size_t len);

/* Self-signed root CA (demo and tests): CA:TRUE, keyCertSign+cRLSign. */
X509 *lca_root_create(EVP_PKEY *key, const char *subject_dn, int64_t not_before,
		      int64_t not_after, struct lca_err *e);
/* The LCA's CSR for an operator CA: subject <dn>, CN=xdnat LCA <G>; it
 * requests the CA extensions and the name constraints of ns. */
X509_REQ *lca_csr_create(EVP_PKEY *key, const struct lca_ns *ns, struct lca_err *e);
/* Issue an LCA certificate from its CSR (what an operator CA does; used with
 * the demo root): CA:TRUE pathlen 0, and name constraints from ns (never
 * from the CSR). */
X509 *lca_cert_sign(X509_REQ *csr, X509 *issuer, EVP_PKEY *issuer_key, const struct lca_ns *ns,
		    int64_t not_before, int64_t not_after, struct lca_err *e);
/* The same with a CRL distribution point (the issuer's CRL, so the root can
 * revoke the LCA); crl_url NULL: none. */
X509 *lca_cert_sign_dp(X509_REQ *csr, X509 *issuer, EVP_PKEY *issuer_key, const struct lca_ns *ns,
		       const char *crl_url, int64_t not_before, int64_t not_after,
		       struct lca_err *e);
/* Import check: cert matches key, basicConstraints critical CA:TRUE
 * pathlen 0, keyUsage critical exactly keyCertSign + cRLSign, the complete
 * name constraints (lca_ns_from_cert), and, if chain is given, verifies up to
 * a self-signed certificate in it at time `at` (0: now). */
int lca_cert_check(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain, int64_t at,
		   struct lca_err *e);

/* ---- the running CA ----------------------------------------------------- */

struct lca;

struct lca_config {
	const char *key_path;       /* LCA private key (PEM) */
	const char *cert_path;      /* LCA certificate (PEM) */
	const char *chain_path;     /* optional: the certificates above the LCA */
	const char *crl_url;        /* CRL distribution point in host certs; NULL: none */
	uint32_t crl_period_s;      /* CRL nextUpdate - thisUpdate; 0: one day */
	uint32_t max_lease_s;       /* longest validity issued; 0: 400 days */
	bool no_selfcheck;          /* skip verifying each new certificate */
};

/* Load key and certificates, check them (lca_cert_check), derive the
 * namespace and create the ca_ tables in db if missing.  db stays the
 * caller's (it may be the control plane's database); it must outlive ca. */
int lca_open(const struct lca_config *cfg, sqlite3 *db, struct lca **out, struct lca_err *e);
/* The same from objects in memory (references are taken). */
int lca_open_mem(const struct lca_config *cfg, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
		 sqlite3 *db, struct lca **out, struct lca_err *e);
void lca_close(struct lca *ca);
const struct lca_ns *lca_namespace(const struct lca *ca);
X509 *lca_cert(const struct lca *ca);
/* The LCA's key and the certificates above it (borrowed). */
EVP_PKEY *lca_key(const struct lca *ca);
STACK_OF(X509) *lca_chain(const struct lca *ca);
/* A host's CSR (DER, OPENSSL_free) with subject CN=@cn: the LCA writes
 * every field of the certificate itself, so nothing else is asked for. */
int lca_host_csr(EVP_PKEY *key, const char *cn, unsigned char **der, size_t *len,
		 struct lca_err *e);

/* The ca_ tables (idempotent).  lca_open calls it. */
int lca_store_init(sqlite3 *db, struct lca_err *e);

struct lca_issue_req {
	const unsigned char *csr;   /* PEM or DER, from the host */
	size_t csr_len;
	const char *host_id;        /* the caller's key for the host (stored), 1..128 printable */
	uint32_t lan_be;            /* the host's LAN address (identity, and stored) */
	const char *user;           /* NULL: identity G + LAN; else user@<domain> */
	const struct lca_range *ports;  /* sorted or not; merged here */
	unsigned n_ports;
	const struct lca_range *spis;
	unsigned n_spis;
	int64_t not_before, not_after;  /* the lease */
};

struct lca_issued {
	char serial[LCA_SERIAL_STRLEN]; /* uppercase hex, as `openssl x509 -serial` */
	char identity[300];             /* DNS name or e-mail */
	unsigned char *der;             /* the certificate; lca_issued_free() */
	size_t der_len;
};
void lca_issued_free(struct lca_issued *r);

/* Check the CSR and the request, issue, verify the result against the LCA
 * (name constraints included) and record it, all or nothing. */
int lca_issue(struct lca *ca, const struct lca_issue_req *req, struct lca_issued *out,
	      struct lca_err *e);

/* RFC 5280 CRLReason values the control plane uses. */
enum lca_reason {
	LCA_REASON_UNSPECIFIED = 0,
	LCA_REASON_KEY_COMPROMISE = 1,
	LCA_REASON_AFFILIATION_CHANGED = 3,   /* operator eviction */
	LCA_REASON_SUPERSEDED = 4,            /* renewal, new allocation */
	LCA_REASON_CESSATION = 5,             /* FREE, DEREGISTER, lease expiry */
};
int lca_reason_parse(const char *s, int *reason);
const char *lca_reason_name(int reason);

/* Revoke one certificate; -ENOENT unknown serial, -EALREADY revoked. */
int lca_revoke(struct lca *ca, const char *serial, int reason, int64_t when, struct lca_err *e);
/* Revoke every unrevoked, unexpired certificate of host_id. *n: how many. */
int lca_revoke_host(struct lca *ca, const char *host_id, int reason, int64_t when, unsigned *n,
		    struct lca_err *e);
enum lca_kind { LCA_KIND_PORTS = 1, LCA_KIND_SPI = 2 };
/* Seed rule: call before freeing [first, last] of a kind: revokes every
 * unrevoked, unexpired certificate whose allocation intersects it. */
int lca_revoke_overlapping(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
			   int reason, int64_t when, unsigned *n, struct lca_err *e);
/* The same on a database without the LCA key (xdnatctl): xdnatd signs the
 * next CRL. */
int lca_db_revoke(sqlite3 *db, const char *serial, int reason, int64_t when, struct lca_err *e);
int lca_db_revoke_overlapping(sqlite3 *db, enum lca_kind kind, uint32_t first, uint32_t last,
			      int reason, int64_t when, unsigned *n, struct lca_err *e);
/* Does an unrevoked certificate valid at `now` bind any of [first, last]?
 * 1 yes, 0 no, <0 error. */
int lca_range_bound(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
		    int64_t now, struct lca_err *e);

struct lca_record {
	const char *serial, *host_id, *identity, *lan, *ports, *spis;
	int64_t not_before, not_after, issued_at;
	bool revoked;
	int64_t revoked_at;
	int reason;
	const unsigned char *der;
	size_t der_len;
};
/* "valid", "expired", "not-yet-valid" or "revoked" at now. */
const char *lca_record_status(const struct lca_record *r, int64_t now);

/* After a restart: for every unrevoked certificate still valid at now, ask
 * held(arg, record, alloc) whether its allocation is still held; revoke
 * (cessationOfOperation) those that are not.  *n: how many revoked. */
typedef bool (*lca_held_fn)(void *arg, const struct lca_record *r, const struct lca_alloc *a);
int lca_reconcile(struct lca *ca, int64_t now, lca_held_fn held, void *arg, unsigned *n,
		  struct lca_err *e);

/* Every stored certificate, oldest first (host_id NULL: all hosts).  The
 * record lives only during the callback; a non-zero return stops and is
 * returned. */
typedef int (*lca_list_fn)(void *arg, const struct lca_record *r);
int lca_list(sqlite3 *db, const char *host_id, lca_list_fn fn, void *arg, struct lca_err *e);
/* One certificate by serial (case-insensitive): -ENOENT if unknown. */
int lca_get(sqlite3 *db, const char *serial, lca_list_fn fn, void *arg, struct lca_err *e);
/* A table or (json) a JSON array on f. */
int lca_list_print(sqlite3 *db, const char *host_id, bool json, FILE *f, int64_t now,
		   struct lca_err *e);

/* One record as a line of the table or (json) one JSON object. */
int lca_list_print_one(const struct lca_record *r, bool json, FILE *f, int64_t now);

/* ---- the certificate store ------------------------------------------------
 * Where the CA keeps certificates, revocations and its CRL state: the ca_
 * tables of an SQLite database (lca_certdb_sqlite; the functions above that
 * take a sqlite3 * wrap it), or another backend that fills these operations
 * (the etcd store: loader/store/store_etcd_ca.c).  Every backend gives
 * a serial and a CRL number once: a second insert of a serial fails, and
 * next_crl is atomic (an SQLite transaction, an etcd compare-and-swap), so
 * two signers sharing a store never reuse either. */
struct lca_certdb;
struct lca_certdb_ops {
	int (*init)(struct lca_certdb *db, struct lca_err *e);        /* idempotent */
	/* A new certificate (r->revoked false); -EEXIST if the serial is known. */
	int (*insert)(struct lca_certdb *db, const struct lca_record *r, struct lca_err *e);
	/* Oldest first (issued_at, then insertion); host_id NULL: all hosts. */
	int (*list)(struct lca_certdb *db, const char *host_id, lca_list_fn fn, void *arg,
		    struct lca_err *e);
	/* One by serial, case-insensitive: -ENOENT if unknown. */
	int (*get)(struct lca_certdb *db, const char *serial, lca_list_fn fn, void *arg,
		   struct lca_err *e);
	/* valid -> revoked (@when, @reason); -EALREADY if it is not valid. */
	int (*revoke)(struct lca_certdb *db, const char *serial, int reason, int64_t when,
		      struct lca_err *e);
	/* Take the next CRL number and thisUpdate (see lca_crl) of @who ("": the
	 * LCA, "root_": the demo root), atomically. */
	int (*next_crl)(struct lca_certdb *db, const char *who, int64_t now, int64_t *num,
			int64_t *this_update, struct lca_err *e);
	/* Keep @der as the latest signed CRL unless one numbered higher is
	 * kept; crl_get: it (*der malloc'd, free()), -ENOENT before the first. */
	int (*crl_put)(struct lca_certdb *db, int64_t num, const unsigned char *der, size_t len,
		       struct lca_err *e);
	int (*crl_get)(struct lca_certdb *db, unsigned char **der, size_t *len, int64_t *num,
		       struct lca_err *e);
	/* A group of writes, all or nothing, nested in the caller's: end()
	 * commits when @err is 0, else undoes; returns @err or the commit's. */
	int (*begin)(struct lca_certdb *db, struct lca_err *e);
	int (*end)(struct lca_certdb *db, int err, struct lca_err *e);
	void (*free)(struct lca_certdb *db);
};
struct lca_certdb {
	const struct lca_certdb_ops *ops;
};
/* The ca_ tables of @db (which stays the caller's and must outlive the
 * wrapper; free with ops->free). */
struct lca_certdb *lca_certdb_sqlite(sqlite3 *db, struct lca_err *e);
/* lca_open and lca_open_mem over any store (@db stays the caller's). */
int lca_open_certdb(const struct lca_config *cfg, struct lca_certdb *db, struct lca **out,
		    struct lca_err *e);
int lca_open_mem_certdb(const struct lca_config *cfg, EVP_PKEY *key, X509 *cert,
			STACK_OF(X509) *chain, struct lca_certdb *db, struct lca **out,
			struct lca_err *e);
/* The store an open CA uses (borrowed). */
struct lca_certdb *lca_certdb_of(const struct lca *ca);
/* lca_list_print, lca_db_revoke and lca_db_revoke_overlapping on any store. */
int lca_certdb_list_print(struct lca_certdb *db, const char *host_id, bool json, FILE *f,
			  int64_t now, struct lca_err *e);
int lca_certdb_revoke(struct lca_certdb *db, const char *serial, int reason, int64_t when,
		      struct lca_err *e);
int lca_certdb_revoke_overlapping(struct lca_certdb *db, enum lca_kind kind, uint32_t first,
				  uint32_t last, int reason, int64_t when, unsigned *n,
				  struct lca_err *e);
/* The CRL time rule every store's next_crl applies: thisUpdate @now, or
 * @last + 1 when @now is not later than the last CRL's thisUpdate @last
 * (-1: none); -EINVAL when @now is more than a minute before @last. */
int lca_crl_next_time(int64_t last, int64_t now, int64_t *this_update, struct lca_err *e);
/* The latest CRL lca_crl made, from the store (any router's): -ENOENT none. */
int lca_crl_latest(struct lca *ca, unsigned char **der, size_t *len, int64_t *num,
		   struct lca_err *e);

/* A CRL signed by the LCA: every revoked certificate not yet expired at
 * now, thisUpdate now (the last CRL's thisUpdate + 1 when now is not later
 * than it; -EINVAL when now is more than a minute before it), nextUpdate
 * thisUpdate + crl_period, CRL number from the store (incremented).
 * The CRL is also kept in the store (lca_crl_latest).  *der: OPENSSL_free(). */
int lca_crl(struct lca *ca, int64_t now, unsigned char **der, size_t *len, struct lca_err *e);

/* The demo root's side (operators with their own CA use its tooling): record
 * that the root revokes an LCA certificate it issued (-EPERM: not issued by
 * root, -EALREADY), and sign the root's CRL (number and thisUpdate strictly
 * increasing, like lca_crl).  db: the root's own database. */
int lca_root_revoke(sqlite3 *db, X509 *root, X509 *cert, int reason, int64_t when,
		    struct lca_err *e);
int lca_root_crl(sqlite3 *db, X509 *root, EVP_PKEY *rk, int64_t now, uint32_t period,
		 unsigned char **der, size_t *len, struct lca_err *e);

/* Issuance benchmark (xdnat-ca bench): n certificates each, signed by an LCA
 * with a key of type kt for an EC P-256 host key: raw OpenSSL building and
 * signing the same shape, lca_issue with an in-memory store and no
 * self-check, and lca_issue in full (self-check, a temporary SQLite database
 * in /tmp, WAL, synchronous=FULL).  Rates in certificates per second. */
struct lca_bench_res {
	double raw, fast, full;
};
int lca_bench(enum lca_keytype kt, long n, struct lca_bench_res *res, struct lca_err *e);

#endif
