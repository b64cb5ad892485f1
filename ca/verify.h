/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Remote-side verifier: may a peer that sends from `src` with these ports
 * and SPIs be the host named by this certificate chain?  Answers yes/no with
 * the first reason that failed, in this order:
 *   chain     the chain verifies to a trust anchor (OpenSSL, X509_STRICT)
 *   name constraints  they hold on every certificate (OpenSSL, part of the
 *             chain check, reported separately), and the leaf's issuer is an
 *             LCA constrained to exactly one /32 that equals src
 *   revoked   with a CRL: not revoked (and the CRL is valid and current)
 *   address   src is an iPAddress SAN of the leaf and the globalAddress of
 *             its allocation extension
 *   ports/spis every port and SPI in use lies inside the certified ranges
 */
#ifndef XDNAT_LCA_VERIFY_H
#define XDNAT_LCA_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "lca_ext.h"

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
};
const char *lca_vcode_name(enum lca_vcode c);

struct lca_verify_req {
	STACK_OF(X509) *anchors;     /* trusted roots (at least one) */
	X509 *leaf;                  /* the host certificate */
	STACK_OF(X509) *untrusted;   /* the LCA certificate (and anything between) */
	STACK_OF(X509_CRL) *crls;    /* optional: CRLs to check the leaf against */
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

#endif
