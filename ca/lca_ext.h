/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The xdnat allocation extension (docs/LCA.md has the ASN.1 module) and the
 * small helpers every part of ca/ shares: error messages, range lists.
 *
 *   XdnatAllocation ::= SEQUENCE {
 *       globalAddress  OCTET STRING (SIZE (4 | 16)),
 *       portRanges     SEQUENCE SIZE (0..32) OF PortRange,
 *       spiRanges      SEQUENCE SIZE (0..32) OF SpiRange }
 *   PortRange ::= SEQUENCE { first INTEGER (0..65535),       last INTEGER (0..65535) }
 *   SpiRange  ::= SEQUENCE { first INTEGER (256..4294967295), last INTEGER (256..4294967295) }
 *
 * The decoder accepts DER only (it re-encodes and compares), and then the
 * semantic rules: first <= last, ranges sorted and disjoint, bounds above.
 */
#ifndef XDNAT_LCA_EXT_H
#define XDNAT_LCA_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

/* 32473 is the IANA Private Enterprise Number reserved for documentation
 * (RFC 5612).  PLACEHOLDER: a deployment that needs a globally meaningful
 * OID replaces it with its own PEN; the arc below it stays the same. */
#define LCA_OID_ARC        "1.3.6.1.4.1.32473.7"
#define LCA_OID_ALLOCATION LCA_OID_ARC ".1"
#define LCA_SN_ALLOCATION  "xdnatAllocation"
#define LCA_LN_ALLOCATION  "xdnat port and SPI allocation"

#define LCA_MAX_RANGES  32
#define LCA_SPI_MIN     256u      /* 0..255 are reserved by IANA (RFC 4303) */
#define LCA_EXT_MAX_DER 4096      /* nothing legitimate comes close */

struct lca_err {
	char msg[512];
};

struct lca_range {
	uint32_t first, last;
};

struct lca_alloc {
	uint8_t gaddr[16];
	uint8_t gaddr_len;               /* 4 (IPv4) or 16 (IPv6) */
	unsigned n_ports, n_spis;
	struct lca_range ports[LCA_MAX_RANGES];
	struct lca_range spis[LCA_MAX_RANGES];
};

/* Set e->msg from the format, followed by the first OpenSSL error on the
 * queue if any (which is then cleared).  e may be NULL.  Returns ret, so
 * callers write `return lca_fail(e, -EINVAL, "...")`. */
int lca_fail(struct lca_err *e, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* NID of the allocation extension, registered with OpenSSL on first use.
 * Returns NID_undef only if OpenSSL cannot allocate. */
int lca_alloc_nid(void);

/* Semantic rules above; IPv4 address 0.0.0.0 and 255.255.255.255 refused. */
int lca_alloc_check(const struct lca_alloc *a, struct lca_err *e);
/* DER; *der is OPENSSL_malloc'ed: OPENSSL_free() it. */
int lca_alloc_encode(const struct lca_alloc *a, unsigned char **der, size_t *len,
		     struct lca_err *e);
/* Strict: DER only, nothing after it, semantic rules.  -EINVAL on anything
 * else, with the reason in e. */
int lca_alloc_decode(const unsigned char *der, size_t len, struct lca_alloc *a,
		     struct lca_err *e);
/* The extension of a certificate: -ENOENT if absent, -EINVAL if present
 * more than once, critical or malformed. */
int lca_alloc_from_cert(const X509 *x, struct lca_alloc *a, struct lca_err *e);
/* Add it to a certificate (non-critical). */
int lca_alloc_add(X509 *x, const struct lca_alloc *a, struct lca_err *e);

/* Parse "N", "N-M" lists separated by commas (decimal or 0x hex) into
 * sorted, merged ranges within [min, max]. */
int lca_parse_ranges(const char *s, uint32_t min, uint32_t max, struct lca_range *r,
		     unsigned *n, struct lca_err *e);
/* Is every value of [first, last] inside the union of r[0..n)? */
bool lca_ranges_cover(const struct lca_range *r, unsigned n, uint32_t first, uint32_t last);
/* Does any range intersect [first, last]? */
bool lca_ranges_overlap(const struct lca_range *r, unsigned n, uint32_t first, uint32_t last);
/* "1024-2047,4096" (ports decimal, spi=true: hex).  Returns snprintf's count. */
int lca_ranges_fmt(char *buf, size_t len, const struct lca_range *r, unsigned n, bool hex);

/* Write s as a JSON string literal (with quotes). */
void lca_json_str(FILE *f, const char *s);

#endif
