/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What verify.c and verify_crl.c share; not part of the library's API. */
#ifndef XDNAT_LCA_VERIFY_PRIV_H
#define XDNAT_LCA_VERIFY_PRIV_H

#include <openssl/x509.h>
#include "verify.h"

/* Set the verdict (code c, reason from fmt) in r; returns 0. */
int lca_verdict(struct lca_verify_res *r, enum lca_vcode c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Per signer among the anchors and untrusted certificates, the newest CRL of
 * q->crls, high-water-checked against q->crl_state (not recorded: see
 * lca_record_crls).  *out: the CRLs to use; 0, a verdict (r->code set, *out
 * NULL), or a negative errno. */
int lca_pick_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) **out,
		  struct lca_verify_res *r);

/* After the chain verified: record in q->crl_state the CRLs of crls whose
 * signer is in chain.  0 (r->code LCA_V_CRL for a stale one) or -errno. */
int lca_record_crls(const struct lca_verify_req *q, STACK_OF(X509_CRL) *crls,
		    STACK_OF(X509) *chain, struct lca_verify_res *r);

#endif
