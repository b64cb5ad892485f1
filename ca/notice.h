/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Revocation notices (docs/LCA.md, "Revocation notices"): when the Local CA
 * revokes host certificates, xdnatd tells every remote system that had
 * ESP/AH traffic with those hosts.  A notice is a DER CMS SignedData
 * (RFC 5652) signed by the LCA key, with the LCA certificate (and the
 * chain above it) and the new CRL inside, over this eContent:
 *
 *   id-xdnat-revocation-notice OBJECT IDENTIFIER ::= { id-xdnat 2 }
 *                                              -- 1.3.6.1.4.1.32473.7.2
 *   XdnatRevocationNotice ::= SEQUENCE {
 *       version        INTEGER (1),
 *       globalAddress  OCTET STRING (SIZE (4)),   -- G of the LCA
 *       crlNumber      INTEGER,                    -- of the CRL carried along
 *       producedAt     GeneralizedTime,
 *       revoked        SEQUENCE SIZE (1..256) OF RevokedHost }
 *   RevokedHost ::= SEQUENCE {
 *       serialNumber   INTEGER,                    -- of the host certificate
 *       revocationDate GeneralizedTime,
 *       reason         ENUMERATED,                 -- RFC 5280 CRLReason
 *       identity       UTF8String }                -- its URI or e-mail SAN
 *
 * Transport: one UDP datagram to the peer's port (default 4556) from G and
 * the same port; the peer answers a valid notice with the 16 bytes
 * "xdnat-notice-ack" followed by the SHA-256 of the notice.
 */
#ifndef XDNAT_NOTICE_H
#define XDNAT_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "lca.h"

#define LCA_OID_NOTICE       LCA_OID_ARC ".2"
#define LCA_NOTICE_PORT      4556
#define LCA_NOTICE_MAX       256          /* revoked entries per notice */
#define LCA_NOTICE_MAX_DER   60000        /* fits one UDP datagram */
#define LCA_NOTICE_ACK       "xdnat-notice-ack"
#define LCA_NOTICE_ACK_LEN   (16 + 32)

struct lca_notice_entry {
	char serial[LCA_SERIAL_STRLEN];   /* uppercase hex */
	int64_t revoked_at;
	int reason;
	char identity[300];
};

struct lca_notice {
	uint32_t g_be;
	int64_t crl_number;
	int64_t produced_at;
	unsigned n;
	struct lca_notice_entry e[LCA_NOTICE_MAX];
	X509_CRL *crl;                    /* the CRL carried along (owned), or NULL */
	EVP_PKEY *crl_key;                /* the LCA's key that signed it (owned), or NULL */
	char signer[256];                 /* the LCA's subject */
};

/* Sign a notice for @n entries with the LCA of @ca; @crl (DER, may be NULL)
 * is carried along and gives the CRL number.  *der: OPENSSL_free(). */
int lca_notice_make(struct lca *ca, const struct lca_notice_entry *e, unsigned n,
		    const unsigned char *crl, size_t crl_len, int64_t now, unsigned char **der,
		    size_t *len, struct lca_err *err);

/*
 * Verify a notice against @anchors (trusted roots): DER only, the CMS
 * signature, the signer's chain up to an anchor at time @at (0: now), the
 * signer being a name-constrained LCA whose G is the notice's
 * globalAddress, the content type and a strict decoding of the content;
 * the CRL, if any, must be signed by the same LCA.  0 and *out filled
 * (lca_notice_release() it), or -EINVAL/-EPERM with the reason in err.
 */
int lca_notice_verify(const unsigned char *der, size_t len, STACK_OF(X509) *anchors, int64_t at,
		      struct lca_notice *out, struct lca_err *err);
void lca_notice_release(struct lca_notice *n);

#endif
