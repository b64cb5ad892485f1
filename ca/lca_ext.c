// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The allocation extension codec (lca_ext.h) and shared helpers. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include "lca_ext.h"

int lca_fail(struct lca_err *e, int ret, const char *fmt, ...)
{
	unsigned long oe = ERR_peek_error();
	char ossl[256] = "";

	if (oe)
		ERR_error_string_n(oe, ossl, sizeof(ossl));
	ERR_clear_error();
	if (!e)
		return ret;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (ossl[0] && n >= 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, " (openssl: %s)", ossl);
	return ret;
}

/* ---- ASN.1 templates ---------------------------------------------------- */

typedef struct {
	ASN1_INTEGER *first;
	ASN1_INTEGER *last;
} LCA_RANGE;

typedef struct {
	ASN1_OCTET_STRING *gaddr;
	STACK_OF(LCA_RANGE) *ports;
	STACK_OF(LCA_RANGE) *spis;
} LCA_ALLOC;

DEFINE_STACK_OF(LCA_RANGE)

ASN1_SEQUENCE(LCA_RANGE) = {
	ASN1_SIMPLE(LCA_RANGE, first, ASN1_INTEGER),
	ASN1_SIMPLE(LCA_RANGE, last, ASN1_INTEGER),
} ASN1_SEQUENCE_END(LCA_RANGE)

ASN1_SEQUENCE(LCA_ALLOC) = {
	ASN1_SIMPLE(LCA_ALLOC, gaddr, ASN1_OCTET_STRING),
	ASN1_SEQUENCE_OF(LCA_ALLOC, ports, LCA_RANGE),
	ASN1_SEQUENCE_OF(LCA_ALLOC, spis, LCA_RANGE),
} ASN1_SEQUENCE_END(LCA_ALLOC)

DECLARE_ASN1_FUNCTIONS(LCA_RANGE)
DECLARE_ASN1_FUNCTIONS(LCA_ALLOC)
IMPLEMENT_ASN1_FUNCTIONS(LCA_RANGE)
IMPLEMENT_ASN1_FUNCTIONS(LCA_ALLOC)

int lca_alloc_nid(void)
{
	int nid = OBJ_txt2nid(LCA_OID_ALLOCATION);

	if (nid != NID_undef)
		return nid;
	/* OBJ_create is not thread-safe against itself before OpenSSL 3.2;
	 * the CA calls this once at start-up (lca_open, xdnat_verify). */
	nid = OBJ_create(LCA_OID_ALLOCATION, LCA_SN_ALLOCATION, LCA_LN_ALLOCATION);
	return nid;
}

/* ---- semantic checks ---------------------------------------------------- */

static int check_list(const struct lca_range *r, unsigned n, uint32_t min, uint32_t max,
		      const char *what, struct lca_err *e)
{
	if (n > LCA_MAX_RANGES)
		return lca_fail(e, -EINVAL, "%s: %u ranges, at most %d allowed", what, n,
				LCA_MAX_RANGES);
	for (unsigned i = 0; i < n; i++) {
		if (r[i].first > r[i].last)
			return lca_fail(e, -EINVAL, "%s range %u: first %u > last %u", what, i,
					r[i].first, r[i].last);
		if (r[i].first < min || r[i].last > max)
			return lca_fail(e, -EINVAL, "%s range %u: %u-%u outside %u-%u", what, i,
					r[i].first, r[i].last, min, max);
		if (i && r[i].first <= r[i - 1].last)
			return lca_fail(e, -EINVAL, "%s range %u overlaps or is not after range %u",
					what, i, i - 1);
	}
	return 0;
}

int lca_alloc_check(const struct lca_alloc *a, struct lca_err *e)
{
	if (a->gaddr_len != 4 && a->gaddr_len != 16)
		return lca_fail(e, -EINVAL, "global address: %u bytes, want 4 or 16", a->gaddr_len);
	if (a->gaddr_len == 4) {
		static const uint8_t zero[4], ones[4] = { 255, 255, 255, 255 };
		if (!memcmp(a->gaddr, zero, 4) || !memcmp(a->gaddr, ones, 4))
			return lca_fail(e, -EINVAL, "global address 0.0.0.0/255.255.255.255 refused");
	}
	int err = check_list(a->ports, a->n_ports, 0, 65535, "port", e);
	if (err)
		return err;
	return check_list(a->spis, a->n_spis, LCA_SPI_MIN, UINT32_MAX, "SPI", e);
}

/* ---- encode ------------------------------------------------------------- */

static int push_ranges(STACK_OF(LCA_RANGE) *sk, const struct lca_range *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		LCA_RANGE *lr = LCA_RANGE_new();
		if (!lr)
			return -ENOMEM;
		if (!ASN1_INTEGER_set_uint64(lr->first, r[i].first) ||
		    !ASN1_INTEGER_set_uint64(lr->last, r[i].last) ||
		    !sk_LCA_RANGE_push(sk, lr)) {
			LCA_RANGE_free(lr);
			return -ENOMEM;
		}
	}
	return 0;
}

int lca_alloc_encode(const struct lca_alloc *a, unsigned char **der, size_t *len,
		     struct lca_err *e)
{
	int err = lca_alloc_check(a, e);
	if (err)
		return err;
	LCA_ALLOC *la = LCA_ALLOC_new();
	if (!la)
		return lca_fail(e, -ENOMEM, "out of memory");
	err = -ENOMEM;
	if (!ASN1_OCTET_STRING_set(la->gaddr, a->gaddr, a->gaddr_len) ||
	    push_ranges(la->ports, a->ports, a->n_ports) ||
	    push_ranges(la->spis, a->spis, a->n_spis))
		goto out;
	unsigned char *buf = NULL;
	int n = i2d_LCA_ALLOC(la, &buf);
	if (n <= 0)
		goto out;
	*der = buf;
	*len = (size_t)n;
	err = 0;
out:
	LCA_ALLOC_free(la);
	return err ? lca_fail(e, err, "cannot encode the allocation extension") : 0;
}

/* ---- decode ------------------------------------------------------------- */

static int get_ranges(const STACK_OF(LCA_RANGE) *sk, struct lca_range *r, unsigned *n,
		      const char *what, struct lca_err *e)
{
	int cnt = sk_LCA_RANGE_num(sk);

	if (cnt < 0 || cnt > LCA_MAX_RANGES)
		return lca_fail(e, -EINVAL, "%s: %d ranges, at most %d allowed", what, cnt,
				LCA_MAX_RANGES);
	for (int i = 0; i < cnt; i++) {
		const LCA_RANGE *lr = sk_LCA_RANGE_value(sk, i);
		uint64_t f, l;
		/* get_uint64 refuses negative numbers and anything over 64 bits */
		if (!ASN1_INTEGER_get_uint64(&f, lr->first) ||
		    !ASN1_INTEGER_get_uint64(&l, lr->last) || f > UINT32_MAX || l > UINT32_MAX)
			return lca_fail(e, -EINVAL, "%s range %d: integer out of range", what, i);
		r[i].first = (uint32_t)f;
		r[i].last = (uint32_t)l;
	}
	*n = (unsigned)cnt;
	return 0;
}

int lca_alloc_decode(const unsigned char *der, size_t len, struct lca_alloc *a,
		     struct lca_err *e)
{
	if (!der || len == 0)
		return lca_fail(e, -EINVAL, "allocation extension: empty");
	if (len > LCA_EXT_MAX_DER)
		return lca_fail(e, -EINVAL, "allocation extension: %zu bytes, limit %d", len,
				LCA_EXT_MAX_DER);
	const unsigned char *p = der;
	LCA_ALLOC *la = d2i_LCA_ALLOC(NULL, &p, (long)len);
	if (!la)
		return lca_fail(e, -EINVAL, "allocation extension: not a valid XdnatAllocation");
	int err = -EINVAL;
	unsigned char *re = NULL;
	if ((size_t)(p - der) != len) {
		lca_fail(e, err, "allocation extension: %zu bytes after the DER value",
			 len - (size_t)(p - der));
		goto out;
	}
	/* DER, not BER: the canonical encoding of what we read must be the input */
	int rn = i2d_LCA_ALLOC(la, &re);
	if (rn <= 0 || (size_t)rn != len || memcmp(re, der, len)) {
		lca_fail(e, err, "allocation extension: not DER (non-canonical encoding)");
		goto out;
	}
	struct lca_alloc t;
	memset(&t, 0, sizeof(t));
	int gl = ASN1_STRING_length(la->gaddr);
	if (gl != 4 && gl != 16) {
		lca_fail(e, err, "allocation extension: globalAddress has %d bytes, want 4 or 16", gl);
		goto out;
	}
	memcpy(t.gaddr, ASN1_STRING_get0_data(la->gaddr), (size_t)gl);
	t.gaddr_len = (uint8_t)gl;
	if ((err = get_ranges(la->ports, t.ports, &t.n_ports, "port", e)) ||
	    (err = get_ranges(la->spis, t.spis, &t.n_spis, "SPI", e)))
		goto out;
	if ((err = lca_alloc_check(&t, e)))
		goto out;
	*a = t;
	err = 0;
out:
	OPENSSL_free(re);
	LCA_ALLOC_free(la);
	return err;
}

int lca_alloc_from_cert(const X509 *x, struct lca_alloc *a, struct lca_err *e)
{
	int nid = lca_alloc_nid();
	if (nid == NID_undef)
		return lca_fail(e, -ENOMEM, "cannot register the allocation OID");
	int idx = X509_get_ext_by_NID(x, nid, -1);
	if (idx < 0)
		return lca_fail(e, -ENOENT, "certificate has no xdnat allocation extension (%s)",
				LCA_OID_ALLOCATION);
	if (X509_get_ext_by_NID(x, nid, idx) >= 0)
		return lca_fail(e, -EINVAL, "certificate has the allocation extension twice");
	X509_EXTENSION *ext = X509_get_ext(x, idx);
	if (X509_EXTENSION_get_critical(ext))
		return lca_fail(e, -EINVAL, "allocation extension marked critical");
	const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
	return lca_alloc_decode(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), a, e);
}

int lca_alloc_add(X509 *x, const struct lca_alloc *a, struct lca_err *e)
{
	int nid = lca_alloc_nid();
	if (nid == NID_undef)
		return lca_fail(e, -ENOMEM, "cannot register the allocation OID");
	unsigned char *der = NULL;
	size_t len = 0;
	int err = lca_alloc_encode(a, &der, &len, e);
	if (err)
		return err;
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	err = -ENOMEM;
	if (!os || !ASN1_OCTET_STRING_set(os, der, (int)len))
		goto out;
	ext = X509_EXTENSION_create_by_NID(NULL, nid, 0, os);
	if (!ext || !X509_add_ext(x, ext, -1))
		goto out;
	err = 0;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	return err ? lca_fail(e, err, "cannot add the allocation extension") : 0;
}

/* ---- ranges ------------------------------------------------------------- */

static int parse_u32(const char *s, size_t n, uint32_t *v)
{
	char buf[24];
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	int base = 10;
	const char *d = buf;
	if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		base = 16;
		d = buf + 2;
	}
	for (const char *c = d; *c; c++)
		if (!(base == 16 ? (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
					   (*c >= 'A' && *c <= 'F')
				 : (*c >= '0' && *c <= '9')))
			return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long x = strtoull(d, &end, base);
	if (errno || *end || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct lca_range *x = a, *y = b;
	return x->first < y->first ? -1 : x->first > y->first;
}

int lca_parse_ranges(const char *s, uint32_t min, uint32_t max, struct lca_range *r,
		     unsigned *n, struct lca_err *e)
{
	struct lca_range t[LCA_MAX_RANGES];
	unsigned cnt = 0;

	if (!s || !*s)
		return lca_fail(e, -EINVAL, "empty range list");
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *dash = memchr(p, '-', len);
		uint32_t f, l;
		if (dash) {
			if (parse_u32(p, (size_t)(dash - p), &f) ||
			    parse_u32(dash + 1, len - (size_t)(dash - p) - 1, &l))
				return lca_fail(e, -EINVAL, "bad range '%.*s' in '%s'", (int)len, p, s);
		} else {
			if (parse_u32(p, len, &f))
				return lca_fail(e, -EINVAL, "bad value '%.*s' in '%s'", (int)len, p, s);
			l = f;
		}
		if (f > l || f < min || l > max)
			return lca_fail(e, -EINVAL, "range '%.*s' empty or outside %u-%u", (int)len, p,
					min, max);
		if (cnt == LCA_MAX_RANGES)
			return lca_fail(e, -EINVAL, "more than %d ranges in '%s'", LCA_MAX_RANGES, s);
		t[cnt].first = f;
		t[cnt].last = l;
		cnt++;
		if (!end)
			break;
		p = end + 1;
	}
	qsort(t, cnt, sizeof(t[0]), cmp_range);
	unsigned m = 0;
	for (unsigned i = 0; i < cnt; i++) {
		if (m && (uint64_t)t[i].first <= (uint64_t)r[m - 1].last + 1) {
			if (t[i].last > r[m - 1].last)
				r[m - 1].last = t[i].last;
		} else {
			r[m++] = t[i];
		}
	}
	*n = m;
	return 0;
}

bool lca_ranges_cover(const struct lca_range *r, unsigned n, uint32_t first, uint32_t last)
{
	uint64_t need = first;   /* lowest value not yet known to be covered */

	/* ranges may be unsorted here (caller-built); loop until no progress */
	for (bool progress = true; progress && need <= last;) {
		progress = false;
		for (unsigned i = 0; i < n; i++)
			if (r[i].first <= need && r[i].last >= need) {
				need = (uint64_t)r[i].last + 1;
				progress = true;
			}
	}
	return need > last;
}

bool lca_ranges_overlap(const struct lca_range *r, unsigned n, uint32_t first, uint32_t last)
{
	for (unsigned i = 0; i < n; i++)
		if (r[i].first <= last && first <= r[i].last)
			return true;
	return false;
}

int lca_ranges_fmt(char *buf, size_t len, const struct lca_range *r, unsigned n, bool hex)
{
	size_t off = 0;
	if (len)
		buf[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		char one[48];
		if (r[i].first == r[i].last)
			snprintf(one, sizeof(one), hex ? "0x%x" : "%u", r[i].first);
		else
			snprintf(one, sizeof(one), hex ? "0x%x-0x%x" : "%u-%u", r[i].first, r[i].last);
		int w = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, "%s%s",
				 i ? "," : "", one);
		if (w < 0)
			return w;
		off += (size_t)w;
	}
	return off > INT_MAX ? INT_MAX : (int)off;
}

void lca_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
