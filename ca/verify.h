/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Remote-side verifier: may a peer that sends from `src` with these ports
 * and SPIs be the host named by this certificate chain?  Answers yes/no with
 * the first reason that failed, in this order:
 *   crl       with CRLs: per issuer only the newest (highest CRL number)
 *             is used, and it must not be older than the newest one seen
 *             before (the high-water state file, see lca_crl_highwater)
 *   chain     the chain verifies to a trust anchor (OpenSSL, X509_STRICT)
 *   name constraints  they hold on every certificate (OpenSSL, part of the
 *             chain check, reported separately); the leaf's issuer is an
 *             LCA with the complete constraint set (exactly one
 *             IPv4 /32 that equals src, a URI host, an e-mail domain, a DNS
 *             domain and a directoryName; nothing else; pathlen 0)
 *   identity  the leaf names only what the LCA issues (lca_check_identity)
 *   revoked   with a CRL: not revoked (and the CRL is valid and current);
 *             with check_chain, every certificate below the anchor
 *   address   src is an iPAddress SAN of the leaf and the globalAddress of
 *             its allocation extension
 *   ports/spis every port and SPI in use lies inside the certified ranges
 */
#ifndef XDNAT_LCA_VERIFY_H
#define XDNAT_LCA_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "lca.h"

enum lca_vcode {
	LCA_V_OK = 0,
	LCA_V_CHAIN,             /* untrusted, bad signature, malformed chain */
	LCA_V_EXPIRED,           /* a certificate is expired or not yet valid */
	LCA_V_NAME_CONSTRAINTS,  /* outside the LCA's namespace, or LCA unconstrained */
	LCA_V_REVOKED,
	LCA_V_CRL,               /* CRL missing for the issuer, stale or badly signed */
	LCA_V_EXTENSION,         /* allocation extension absent or malformed */
	LCA_V_ADDRESS,           /* src is not the certified global address */
	LCA_V_PORTS,
	LCA_V_SPIS,
	LCA_V_IDENTITY,          /* a name the LCA never issues, or not in canonical form */
};
const char *lca_vcode_name(enum lca_vcode c);

struct lca_verify_req {
	STACK_OF(X509) *anchors;     /* trusted roots (at least one) */
	X509 *leaf;                  /* the host certificate */
	STACK_OF(X509) *untrusted;   /* the LCA certificate (and anything between) */
	STACK_OF(X509_CRL) *crls;    /* optional: CRLs to check the leaf (and, with
	                              * check_chain, the LCA) against; any order */
	bool check_chain;            /* revocation of every certificate, not only the leaf */
	bool require_crl;            /* check the leaf's revocation even without CRLs
	                              * (then: refused, no CRL) */
	const char *crl_state;       /* high-water state file; NULL: none kept */
	uint32_t src_be;             /* where the traffic comes from */
	const struct lca_range *ports;
	unsigned n_ports;
	const struct lca_range *spis;
	unsigned n_spis;
	int64_t at;                  /* verification time; 0: now */
	bool allow_unconstrained;    /* do not require a name-constrained issuer */
};

struct lca_verify_res {
	bool ok;
	enum lca_vcode code;
	char reason[512];
	char subject[256];
	char identity[300];           /* the URI or e-mail SAN */
	char serial[64];
	bool have_alloc;
	struct lca_alloc alloc;
};

/* 0 when a verdict was reached (see res->ok), negative errno if the
 * request itself is unusable (reason in res->reason). */
int lca_verify(const struct lca_verify_req *req, struct lca_verify_res *res);

/* CRLs from a PEM (one or more) or DER file. */
STACK_OF(X509_CRL) *lca_read_crls(const char *path, struct lca_err *e);

/*
 * The identity rules: does this host certificate carry exactly the names the
 * LCA of ns issues (lca.c lca_issue), in their canonical form?
 *   SAN      exactly one iPAddress, 4 bytes, = G; exactly one of
 *            DNS   <a-b-c-d> "." <domain>, for LAN a.b.c.d (canonical,
 *                  lower case as the constraint, no trailing dot)
 *            URI   "xdnat://" <domain> "/" <LAN>  (earlier profile; byte for byte: no
 *                  userinfo, port, query, fragment, %-escapes, case or
 *                  trailing-dot variants; LAN a canonical dotted quad,
 *                  unicast, not G)
 *            email <user> "@" <domain>, user of [A-Za-z0-9._-], no leading,
 *                  trailing or double dot
 *            and no other name type (otherName, x400Address,
 *            directoryName, ediPartyName, registeredID are refused)
 *   subject  the LCA's DN base followed by one CN: <LAN>@<G> for a DNS or
 *            URI identity, the e-mail address for an e-mail identity
 * 0 if so (identity copied to id), -EPERM with the reason in e.
 */
int lca_check_identity(X509 *leaf, const struct lca_ns *ns, char *id, size_t idlen,
		       struct lca_err *e);

/*
 * The LCA certificate rules a verifier needs: name constraints (critical
 * or not: OpenSSL enforces both) that permit exactly one IPv4 /32, one URI host, one e-mail domain, one
 * DNS domain and one directoryName and nothing else (no excluded subtrees
 * needed, none refused), CA with pathlen 0, keyCertSign.  Fills ns
 * (lca_ns_release it) or -EPERM with what is missing.
 */
int lca_check_lca(X509 *lca, struct lca_ns *ns, struct lca_err *e);

/*
 * CRL high-water mark.  The state file keeps, per CRL signer (SHA-256 of its
 * public key), the highest CRL number seen, its thisUpdate and the SHA-256
 * of its DER.  lca_crl_highwater() verifies crl's signature with key, then
 * refuses (-ESTALE, reason in e) a CRL with a lower number than the one
 * recorded, the same number but other content, or a thisUpdate before the
 * recorded one; otherwise records it when it is newer (record: written
 * atomically, mode 0600, under an flock of STATE.lock).  -EINVAL for a CRL
 * without a CRL number or a bad signature, -EIO if the state cannot be read
 * or written.
 */
int lca_crl_highwater(const char *state, X509_CRL *crl, EVP_PKEY *key, bool record,
		      struct lca_err *e);
/* /var/lib/xdnat/crl-seen for root, else $XDG_STATE_HOME (or
 * ~/.local/state)/xdnat/crl-seen; the directory is created 0700 on first
 * write.  NULL if no home is known. */
const char *lca_crl_state_default(void);
/* Of several CRLs from one signer, the newest (highest CRL number); -EINVAL
 * if two differ but carry the same number, a higher number has an earlier
 * thisUpdate, or one has no number.  *best borrowed from sk. */
int lca_crl_newest(STACK_OF(X509_CRL) *sk, X509_CRL **best, struct lca_err *e);

#endif
