// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: keys, root/LCA certificates, host issuance, store, CRL. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "lca.h"

struct lca {
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) *chain;        /* above the LCA; may be empty */
	X509_STORE *store;            /* self-check: LCA (+ chain) trusted */
	X509_EXTENSION *crldp;        /* prebuilt, NULL without URL */
	struct lca_ns ns;
	sqlite3 *db;
	uint32_t crl_period, max_lease;
	bool selfcheck;
};

/* ---- keys and files ----------------------------------------------------- */

int lca_keytype_parse(const char *s, enum lca_keytype *t)
{
	static const struct { const char *n; enum lca_keytype t; } m[] = {
		{ "p256", LCA_KEY_EC_P256 }, { "p384", LCA_KEY_EC_P384 },
		{ "ed25519", LCA_KEY_ED25519 }, { "rsa3072", LCA_KEY_RSA3072 },
	};
	for (size_t i = 0; s && i < sizeof(m) / sizeof(m[0]); i++)
		if (!strcmp(s, m[i].n)) {
			*t = m[i].t;
			return 0;
		}
	return -EINVAL;
}

EVP_PKEY *lca_keygen(enum lca_keytype t, struct lca_err *e)
{
	EVP_PKEY *k = NULL;

	switch (t) {
	case LCA_KEY_EC_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
	case LCA_KEY_EC_P384: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"); break;
	case LCA_KEY_ED25519: k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
	case LCA_KEY_RSA3072: k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072); break;
	}
	if (!k)
		lca_fail(e, -EIO, "key generation failed");
	return k;
}

const EVP_MD *lca_sign_md(EVP_PKEY *key)
{
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519)
		return NULL;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) > 256)
		return EVP_sha384();
	return EVP_sha256();
}

static FILE *open_out(const char *path, bool secret, struct lca_err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | (secret ? O_EXCL : O_TRUNC) | O_CLOEXEC,
		      secret ? 0600 : 0644);
	if (fd < 0) {
		lca_fail(e, -errno, "%s: %s%s", path, strerror(errno),
			 secret && errno == EEXIST ? " (refusing to overwrite a key)" : "");
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		lca_fail(e, -errno, "%s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

static int close_out(FILE *f, int ok, const char *path, struct lca_err *e)
{
	int ferr = ferror(f);
	if (fclose(f) != 0 || ferr || !ok) {
		if (!ok)
			return lca_fail(e, -EIO, "%s: cannot write PEM", path);
		return lca_fail(e, -EIO, "%s: write failed", path);
	}
	return 0;
}

int lca_write_key(const char *path, EVP_PKEY *key, struct lca_err *e)
{
	FILE *f = open_out(path, true, e);
	if (!f)
		return -EIO;
	int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	return close_out(f, ok, path, e);
}

int lca_write_cert(const char *path, X509 *x, struct lca_err *e)
{
	FILE *f = open_out(path, false, e);
	if (!f)
		return -EIO;
	return close_out(f, PEM_write_X509(f, x), path, e);
}

int lca_write_csr(const char *path, X509_REQ *r, struct lca_err *e)
{
	FILE *f = open_out(path, false, e);
	if (!f)
		return -EIO;
	return close_out(f, PEM_write_X509_REQ(f, r), path, e);
}

EVP_PKEY *lca_read_key(const char *path, struct lca_err *e)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		lca_fail(e, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		lca_fail(e, -EINVAL, "%s: not a PEM private key (or encrypted)", path);
	return k;
}

X509 *lca_read_cert(const char *path, struct lca_err *e)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		lca_fail(e, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		lca_fail(e, -EINVAL, "%s: not a PEM certificate", path);
	return x;
}

STACK_OF(X509) *lca_read_certs(const char *path, struct lca_err *e)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		lca_fail(e, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while (sk && (x = PEM_read_X509(f, NULL, NULL, NULL)))
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			break;
		}
	unsigned long last = ERR_peek_last_error();
	fclose(f);
	/* the loop ends on "no start line" at EOF: that is success */
	if (sk && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
		ERR_clear_error();
	if (!sk || sk_X509_num(sk) == 0 || ERR_peek_error()) {
		lca_fail(e, -EINVAL, "%s: no or malformed PEM certificates", path);
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	return sk;
}

int lca_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
		  struct lca_err *e)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	if (!f)
		return lca_fail(e, -errno, "%s: %s", path, strerror(errno));
	unsigned char *b = malloc(max + 1);
	if (!b) {
		if (f != stdin)
			fclose(f);
		return lca_fail(e, -ENOMEM, "out of memory");
	}
	size_t n = fread(b, 1, max + 1, f);
	int err = ferror(f);
	if (f != stdin)
		fclose(f);
	if (err) {
		free(b);
		return lca_fail(e, -EIO, "%s: read error", path);
	}
	if (n > max) {
		free(b);
		return lca_fail(e, -EFBIG, "%s: larger than %zu bytes", path, max);
	}
	*buf = b;
	*len = n;
	return 0;
}

/* ---- CSR checks --------------------------------------------------------- */

/* Printable UTF-8 text of an ASN1 string, no control characters. */
static int string_ok(const ASN1_STRING *s, size_t max)
{
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, s);
	if (n < 0)
		return 0;
	int ok = (size_t)n <= max;
	for (int i = 0; ok && i < n; i++)
		if (u[i] < 0x20 || u[i] == 0x7f)
			ok = 0;
	OPENSSL_free(u);
	return ok;
}

static int check_key(EVP_PKEY *k, struct lca_err *e)
{
	int id = EVP_PKEY_get_base_id(k);

	if (id == EVP_PKEY_EC) {
		char grp[64] = "";
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &gl))
			return lca_fail(e, -EPERM, "CSR: EC key with explicit or unknown curve parameters; "
					"allowed: P-256, P-384");
		if (strcmp(grp, "prime256v1") && strcmp(grp, "secp384r1"))
			return lca_fail(e, -EPERM, "CSR: EC curve %s not allowed; allowed: P-256, P-384", grp);
	} else if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(k);
		if (bits < 2048 || bits > 8192)
			return lca_fail(e, -EPERM, "CSR: RSA key of %d bits; allowed: 2048 to 8192", bits);
	} else if (id != EVP_PKEY_ED25519) {
		const char *n = OBJ_nid2sn(id);
		return lca_fail(e, -EPERM, "CSR: key type %s not allowed; allowed: EC P-256/P-384, "
				"Ed25519, RSA 2048-8192", n ? n : "unknown");
	}
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	int ok = c && EVP_PKEY_public_check(c) == 1;
	EVP_PKEY_CTX_free(c);
	if (!ok)
		return lca_fail(e, -EINVAL, "CSR: public key fails its validity check");
	return 0;
}

static int check_csr_fields(X509_REQ *r, struct lca_err *e)
{
	if (X509_REQ_get_version(r) != X509_REQ_VERSION_1)
		return lca_fail(e, -EINVAL, "CSR: version %ld, want 1", X509_REQ_get_version(r) + 1);
	const X509_NAME *sn = X509_REQ_get_subject_name(r);
	int cnt = X509_NAME_entry_count(sn);
	if (cnt > 16)
		return lca_fail(e, -EINVAL, "CSR: subject has %d attributes, limit 16", cnt);
	for (int i = 0; i < cnt; i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(sn, i);
		if (!string_ok(X509_NAME_ENTRY_get_data(ne), 256))
			return lca_fail(e, -EINVAL, "CSR: subject attribute %d is over 256 bytes, "
					"not text, or has control characters", i);
	}
	int na = X509_REQ_get_attr_count(r);
	if (na > 8)
		return lca_fail(e, -EINVAL, "CSR: %d attributes, limit 8", na);
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(r);
	/* X509_REQ_get_extensions returns NULL for "none" and for malformed */
	if (!exts && X509_REQ_get_attr_by_NID(r, NID_ext_req, -1) >= 0)
		return lca_fail(e, -EINVAL, "CSR: malformed extension request");
	int err = 0;
	if (sk_X509_EXTENSION_num(exts) > 16)
		err = lca_fail(e, -EINVAL, "CSR: %d requested extensions, limit 16",
			       sk_X509_EXTENSION_num(exts));
	for (int i = 0; !err && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *x = sk_X509_EXTENSION_value(exts, i);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(x)) != NID_basic_constraints)
			continue;
		BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(x);
		if (!bc)
			err = lca_fail(e, -EINVAL, "CSR: malformed basicConstraints request");
		else if (bc->ca)
			err = lca_fail(e, -EPERM, "CSR: asks for a CA certificate; hosts get end-entity "
				       "certificates only");
		BASIC_CONSTRAINTS_free(bc);
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return err;
}

static int parse_csr(const unsigned char *buf, size_t len, X509_REQ **out, struct lca_err *e)
{
	X509_REQ *r = NULL;

	*out = NULL;
	if (!buf || len == 0)
		return lca_fail(e, -EINVAL, "CSR: empty");
	if (len > LCA_CSR_MAX)
		return lca_fail(e, -EINVAL, "CSR: %zu bytes, limit %d", len, LCA_CSR_MAX);
	if (len > 10 && !memcmp(buf, "-----BEGIN", 10)) {
		BIO *b = BIO_new_mem_buf(buf, (int)len);
		if (b)
			r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		BIO_free(b);
	} else {
		const unsigned char *p = buf;
		r = d2i_X509_REQ(NULL, &p, (long)len);
		if (r && (size_t)(p - buf) != len) {
			X509_REQ_free(r);
			return lca_fail(e, -EINVAL, "CSR: %zu bytes after the DER request",
					len - (size_t)(p - buf));
		}
	}
	if (!r)
		return lca_fail(e, -EINVAL, "CSR: not a PEM or DER certificate request");
	EVP_PKEY *pk = X509_REQ_get0_pubkey(r);
	int err;
	if (!pk)
		err = lca_fail(e, -EINVAL, "CSR: unreadable public key");
	else if ((err = check_key(pk, e)))
		;
	else if (X509_REQ_verify(r, pk) != 1)
		err = lca_fail(e, -EINVAL, "CSR: signature does not verify with its own key "
			       "(altered, or not signed by the key it carries)");
	else
		err = check_csr_fields(r, e);
	if (err) {
		X509_REQ_free(r);
		return err;
	}
	*out = r;
	return 0;
}

X509_REQ *lca_parse_csr(const unsigned char *buf, size_t len, struct lca_err *e)
{
	X509_REQ *r;
	parse_csr(buf, len, &r, e);
	return r;
}

/* ---- names -------------------------------------------------------------- */

static const char *const dn_attrs[] = { "C", "ST", "L", "O", "OU", "CN", "DC" };

static X509_NAME *parse_dn(const char *s, struct lca_err *e)
{
	X509_NAME *n = X509_NAME_new();
	char *copy = strdup(s);
	if (!n || !copy) {
		X509_NAME_free(n);
		free(copy);
		lca_fail(e, -ENOMEM, "out of memory");
		return NULL;
	}
	int err = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		char *eq = strchr(tok, '=');
		if (!eq) {
			err = lca_fail(e, -EINVAL, "DN '%s': '%s' is not ATTR=value", s, tok);
			break;
		}
		*eq = 0;
		char *val = eq + 1;
		size_t vl = strlen(val);
		while (vl && val[vl - 1] == ' ')
			val[--vl] = 0;
		bool known = false;
		for (size_t i = 0; i < sizeof(dn_attrs) / sizeof(dn_attrs[0]); i++)
			known |= !strcmp(tok, dn_attrs[i]);
		if (!known) {
			err = lca_fail(e, -EINVAL, "DN '%s': attribute '%s' not one of C ST L O OU CN DC",
				       s, tok);
			break;
		}
		if (vl == 0 || vl > 64) {
			err = lca_fail(e, -EINVAL, "DN '%s': value of %s empty or over 64 bytes", s, tok);
			break;
		}
		for (size_t i = 0; i < vl; i++)
			if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f || val[i] == '=' ||
			    val[i] == '+' || val[i] == '\\' || val[i] == '"')
				err = lca_fail(e, -EINVAL, "DN '%s': bad character in value of %s", s, tok);
		if (!err && !X509_NAME_add_entry_by_txt(n, tok, MBSTRING_UTF8,
							(const unsigned char *)val, -1, -1, 0))
			err = lca_fail(e, -EINVAL, "DN '%s': cannot add %s", s, tok);
	}
	free(copy);
	if (!err && X509_NAME_entry_count(n) == 0)
		err = lca_fail(e, -EINVAL, "DN '%s' is empty", s);
	if (err) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

void lca_dn_str(const X509_NAME *n, char *buf, size_t len)
{
	size_t off = 0;
	if (len)
		buf[0] = 0;
	for (int i = 0; n && i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(n, i);
		const char *sn = OBJ_nid2sn(OBJ_obj2nid(X509_NAME_ENTRY_get_object(ne)));
		unsigned char *u = NULL;
		if (ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(ne)) < 0)
			continue;
		int w = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, "%s%s=%s",
				 i ? ", " : "", sn ? sn : "?", u);
		OPENSSL_free(u);
		if (w > 0)
			off += (size_t)w;
	}
}

static void ip_str(uint32_t be, char *buf, size_t len)
{
	struct in_addr a = { .s_addr = be };
	if (!inet_ntop(AF_INET, &a, buf, (socklen_t)len) && len)
		buf[0] = 0;
}

static int domain_ok(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || (d[i] == '.' && d[i + 1] != '.')))
			return 0;
	return 1;
}

int lca_ns_init(struct lca_ns *ns, uint32_t g_be, const char *domain, const char *dn,
		struct lca_err *e)
{
	char g[INET_ADDRSTRLEN];
	memset(ns, 0, sizeof(*ns));
	uint32_t h = ntohl(g_be);
	if (h == 0 || h == UINT32_MAX)
		return lca_fail(e, -EINVAL, "global address 0.0.0.0/255.255.255.255 refused");
	ns->g_be = g_be;
	ip_str(g_be, g, sizeof(g));
	if (domain) {
		if (!domain_ok(domain))
			return lca_fail(e, -EINVAL, "domain '%s' is not a DNS name", domain);
		snprintf(ns->domain, sizeof(ns->domain), "%s", domain);
	} else {
		snprintf(ns->domain, sizeof(ns->domain), "%u.%u.%u.%u.in-addr.arpa", h & 255,
			 (h >> 8) & 255, (h >> 16) & 255, h >> 24);
	}
	char def[64];
	snprintf(def, sizeof(def), "O=xdnat, OU=%s", g);
	ns->dn = parse_dn(dn ? dn : def, e);
	return ns->dn ? 0 : -EINVAL;
}

void lca_ns_release(struct lca_ns *ns)
{
	X509_NAME_free(ns->dn);
	ns->dn = NULL;
}

static int ia5_copy(const ASN1_IA5STRING *s, char *buf, size_t len)
{
	int n = ASN1_STRING_length(s);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	if (n <= 0 || (size_t)n >= len || memchr(d, 0, (size_t)n))
		return -EINVAL;
	memcpy(buf, d, (size_t)n);
	buf[n] = 0;
	return 0;
}

int lca_ns_from_cert(X509 *lca, struct lca_ns *ns, struct lca_err *e)
{
	int crit = 0;
	memset(ns, 0, sizeof(*ns));
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(lca, NID_name_constraints, &crit, NULL);
	if (!nc)
		return lca_fail(e, crit == -2 ? -EINVAL : -EPERM,
				"LCA certificate: %s name constraints extension",
				crit == -2 ? "more than one" : "no (or malformed)");
	int err = 0, nip = 0;
	if (!crit)
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints not critical");
	for (int i = 0; !err && i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
		GENERAL_NAME *gn = st->base;
		if (gn->type == GEN_IPADD) {
			const unsigned char *d = ASN1_STRING_get0_data(gn->d.ip);
			if (ASN1_STRING_length(gn->d.ip) == 8 && !memcmp(d + 4, "\xff\xff\xff\xff", 4)) {
				memcpy(&ns->g_be, d, 4);
				nip++;
			}
		} else if (gn->type == GEN_URI && !ns->domain[0]) {
			char d[254];
			if (!ia5_copy(gn->d.uniformResourceIdentifier, d, sizeof(d)) && domain_ok(d))
				memcpy(ns->domain, d, sizeof(d));
		} else if (gn->type == GEN_DIRNAME && !ns->dn) {
			if (!(ns->dn = X509_NAME_dup(gn->d.directoryName)))
				err = lca_fail(e, -ENOMEM, "out of memory");
		}
	}
	NAME_CONSTRAINTS_free(nc);
	if (!err && nip != 1)
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints permit %d IPv4 /32 "
			       "addresses; need exactly one (the global address)", nip);
	if (!err && !ns->domain[0])
		err = lca_fail(e, -EPERM, "LCA certificate: name constraints permit no URI host "
			       "(the host identity namespace)");
	if (err)
		lca_ns_release(ns);
	return err;
}

/* ---- certificate building blocks --------------------------------------- */

static int rand_serial(X509 *x, char *hex, size_t hexlen)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, LCA_SERIAL_BITS, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
	ASN1_INTEGER *ai = ok ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ok = ai && X509_set_serialNumber(x, ai);
	if (ok && hex) {
		char *h = BN_bn2hex(bn);
		ok = h && strlen(h) < hexlen;
		if (ok)
			strcpy(hex, h);
		OPENSSL_free(h);
	}
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok ? 0 : -EIO;
}

static int set_times(X509 *x, int64_t nb, int64_t na)
{
	return ASN1_TIME_adj(X509_getm_notBefore(x), (time_t)nb, 0, 0) &&
	       ASN1_TIME_adj(X509_getm_notAfter(x), (time_t)na, 0, 0) ? 0 : -EIO;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, val);
	int ok = ex && X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -EIO;
}

static int add_subtree(STACK_OF(GENERAL_SUBTREE) *sk, int type, void *val)
{
	GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
	if (!st)
		return -ENOMEM;
	GENERAL_NAME_set0_value(st->base, type, val);
	if (!sk_GENERAL_SUBTREE_push(sk, st)) {
		GENERAL_SUBTREE_free(st);
		return -ENOMEM;
	}
	return 0;
}

static ASN1_IA5STRING *ia5(const char *s)
{
	ASN1_IA5STRING *a = ASN1_IA5STRING_new();
	if (a && !ASN1_STRING_set(a, s, -1)) {
		ASN1_IA5STRING_free(a);
		return NULL;
	}
	return a;
}

static NAME_CONSTRAINTS *make_nc(const struct lca_ns *ns)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	if (!nc || !(nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()))
		goto fail;
	unsigned char ip[8];
	memcpy(ip, &ns->g_be, 4);
	memset(ip + 4, 0xff, 4);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	if (!os || !ASN1_OCTET_STRING_set(os, ip, 8) ||
	    add_subtree(nc->permittedSubtrees, GEN_IPADD, os)) {
		ASN1_OCTET_STRING_free(os);
		goto fail;
	}
	const int types[] = { GEN_URI, GEN_EMAIL, GEN_DNS };
	for (size_t i = 0; i < 3; i++) {
		ASN1_IA5STRING *s = ia5(ns->domain);
		if (!s || add_subtree(nc->permittedSubtrees, types[i], s)) {
			ASN1_IA5STRING_free(s);
			goto fail;
		}
	}
	if (ns->dn) {
		X509_NAME *dn = X509_NAME_dup(ns->dn);
		if (!dn || add_subtree(nc->permittedSubtrees, GEN_DIRNAME, dn)) {
			X509_NAME_free(dn);
			goto fail;
		}
	}
	return nc;
fail:
	NAME_CONSTRAINTS_free(nc);
	return NULL;
}

static X509_NAME *lca_subject(const struct lca_ns *ns)
{
	char g[INET_ADDRSTRLEN], cn[64];
	ip_str(ns->g_be, g, sizeof(g));
	snprintf(cn, sizeof(cn), "xdnat LCA %s", g);
	X509_NAME *n = ns->dn ? X509_NAME_dup(ns->dn) : X509_NAME_new();
	if (n && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					     (unsigned char *)cn, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

X509 *lca_root_create(EVP_PKEY *key, const char *subject_dn, int64_t not_before,
		      int64_t not_after, struct lca_err *e)
{
	X509_NAME *sn = parse_dn(subject_dn, e);
	if (!sn)
		return NULL;
	X509 *x = X509_new();
	X509V3_CTX ctx;
	int err = -EIO;
	if (!x || !X509_set_version(x, X509_VERSION_3) || rand_serial(x, NULL, 0) ||
	    !X509_set_subject_name(x, sn) || !X509_set_issuer_name(x, sn) ||
	    set_times(x, not_before, not_after) || !X509_set_pubkey(x, key))
		goto out;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_conf_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (X509_sign(x, key, lca_sign_md(key)) <= 0)
		goto out;
	err = 0;
out:
	X509_NAME_free(sn);
	if (err) {
		X509_free(x);
		lca_fail(e, err, "cannot create the root certificate");
		return NULL;
	}
	return x;
}

static int add_ca_exts(X509 *x, X509V3_CTX *ctx, const struct lca_ns *ns, bool with_keyids)
{
	if (add_conf_ext(x, ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_conf_ext(x, ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"))
		return -EIO;
	if (with_keyids && (add_conf_ext(x, ctx, NID_subject_key_identifier, "hash") ||
			    add_conf_ext(x, ctx, NID_authority_key_identifier, "keyid:always")))
		return -EIO;
	NAME_CONSTRAINTS *nc = make_nc(ns);
	int ok = nc && X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) == 1;
	NAME_CONSTRAINTS_free(nc);
	return ok ? 0 : -EIO;
}

X509_REQ *lca_csr_create(EVP_PKEY *key, const struct lca_ns *ns, struct lca_err *e)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *sn = lca_subject(ns);
	/* build the requested extensions on a scratch certificate */
	X509 *tmp = X509_new();
	X509V3_CTX ctx;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int err = -EIO;
	if (!r || !sn || !tmp || !X509_REQ_set_version(r, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(r, sn) || !X509_REQ_set_pubkey(r, key))
		goto out;
	X509V3_set_ctx(&ctx, NULL, tmp, NULL, NULL, 0);
	if (add_ca_exts(tmp, &ctx, ns, false))
		goto out;
	exts = sk_X509_EXTENSION_new_null();
	for (int i = 0; exts && i < X509_get_ext_count(tmp); i++)
		if (!sk_X509_EXTENSION_push(exts, X509_get_ext(tmp, i)))
			goto out;
	if (!exts || !X509_REQ_add_extensions(r, exts) || X509_REQ_sign(r, key, lca_sign_md(key)) <= 0)
		goto out;
	err = 0;
out:
	sk_X509_EXTENSION_free(exts);   /* entries belong to tmp */
	X509_free(tmp);
	X509_NAME_free(sn);
	if (err) {
		X509_REQ_free(r);
		lca_fail(e, err, "cannot create the LCA certificate request");
		return NULL;
	}
	return r;
}

X509 *lca_cert_sign(X509_REQ *csr, X509 *issuer, EVP_PKEY *issuer_key, const struct lca_ns *ns,
		    int64_t not_before, int64_t not_after, struct lca_err *e)
{
	EVP_PKEY *pk = X509_REQ_get0_pubkey(csr);
	if (!pk || X509_REQ_verify(csr, pk) != 1) {
		lca_fail(e, -EINVAL, "LCA CSR: signature does not verify");
		return NULL;
	}
	X509 *x = X509_new();
	X509V3_CTX ctx;
	if (!x || !X509_set_version(x, X509_VERSION_3) || rand_serial(x, NULL, 0) ||
	    !X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(issuer)) ||
	    set_times(x, not_before, not_after) || !X509_set_pubkey(x, pk))
		goto fail;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (add_ca_exts(x, &ctx, ns, true) || X509_sign(x, issuer_key, lca_sign_md(issuer_key)) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	lca_fail(e, -EIO, "cannot issue the LCA certificate");
	return NULL;
}

static int verify_with(X509_STORE *st, X509 *leaf, STACK_OF(X509) *untrusted, int64_t at,
		       unsigned long flags, struct lca_err *e, const char *what)
{
	X509_STORE_CTX *c = X509_STORE_CTX_new();
	if (!c || !X509_STORE_CTX_init(c, st, leaf, untrusted)) {
		X509_STORE_CTX_free(c);
		return lca_fail(e, -ENOMEM, "out of memory");
	}
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(c);
	X509_VERIFY_PARAM_set_flags(p, flags);
	if (at)
		X509_VERIFY_PARAM_set_time(p, (time_t)at);
	int r = X509_verify_cert(c);
	int verr = X509_STORE_CTX_get_error(c);
	X509_STORE_CTX_free(c);
	if (r != 1)
		return lca_fail(e, -EPERM, "%s does not verify: %s", what,
				X509_verify_cert_error_string(verr));
	return 0;
}

static bool self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

int lca_cert_check(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain, int64_t at,
		   struct lca_err *e)
{
	if (X509_check_private_key(cert, key) != 1)
		return lca_fail(e, -EINVAL, "LCA certificate does not match the LCA key");
	if (X509_check_ca(cert) < 1)
		return lca_fail(e, -EPERM, "LCA certificate is not a CA certificate");
	uint32_t ku = X509_get_key_usage(cert);
	if (!(ku & KU_KEY_CERT_SIGN) || !(ku & KU_CRL_SIGN))
		return lca_fail(e, -EPERM, "LCA certificate lacks keyCertSign or cRLSign key usage");
	struct lca_ns ns;
	int err = lca_ns_from_cert(cert, &ns, e);
	if (err)
		return err;
	lca_ns_release(&ns);
	if (!chain || sk_X509_num(chain) == 0)
		return 0;
	X509_STORE *st = X509_STORE_new();
	if (!st)
		return lca_fail(e, -ENOMEM, "out of memory");
	int anchors = 0;
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (self_signed(sk_X509_value(chain, i))) {
			if (!X509_STORE_add_cert(st, sk_X509_value(chain, i))) {
				X509_STORE_free(st);
				return lca_fail(e, -ENOMEM, "out of memory");
			}
			anchors++;
		}
	if (!anchors)
		err = lca_fail(e, -EINVAL, "the chain file has no self-signed root");
	else
		err = verify_with(st, cert, chain, at, X509_V_FLAG_X509_STRICT, e,
				  "LCA certificate");
	X509_STORE_free(st);
	return err;
}

/* ---- open/close ----------------------------------------------------------- */

static int url_ok(const char *u)
{
	size_t n = strlen(u);
	if (n < 8 || n > LCA_URL_MAX || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= 0x20 || u[i] >= 0x7f || u[i] == ',' || u[i] == '"' || u[i] == '\\')
			return 0;
	return 1;
}

static X509_EXTENSION *make_crldp(const char *url)
{
	char v[LCA_URL_MAX + 8];
	snprintf(v, sizeof(v), "URI:%s", url);
	return X509V3_EXT_conf_nid(NULL, NULL, NID_crl_distribution_points, v);
}

int lca_open_mem(const struct lca_config *cfg, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
		 sqlite3 *db, struct lca **out, struct lca_err *e)
{
	if (lca_alloc_nid() == NID_undef)
		return lca_fail(e, -ENOMEM, "cannot register the allocation OID");
	if (!db)
		return lca_fail(e, -EINVAL, "no database");
	if (cfg->crl_url && !url_ok(cfg->crl_url))
		return lca_fail(e, -EINVAL, "CRL URL '%s': want http:// or https://, printable, "
				"no commas or quotes, at most %d bytes", cfg->crl_url, LCA_URL_MAX);
	int err = lca_cert_check(cert, key, chain, 0, e);
	if (err)
		return err;
	struct lca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return lca_fail(e, -ENOMEM, "out of memory");
	ca->db = db;
	ca->crl_period = cfg->crl_period_s ? cfg->crl_period_s : LCA_DEFAULT_CRL_PERIOD;
	ca->max_lease = cfg->max_lease_s ? cfg->max_lease_s : LCA_DEFAULT_MAX_LEASE;
	ca->selfcheck = !cfg->no_selfcheck;
	if (!EVP_PKEY_up_ref(key) || !X509_up_ref(cert)) {
		free(ca);
		return lca_fail(e, -EIO, "cannot reference the key");
	}
	ca->key = key;
	ca->cert = cert;
	ca->chain = chain ? X509_chain_up_ref(chain) : sk_X509_new_null();
	ca->store = X509_STORE_new();
	if (!ca->chain || !ca->store || !X509_STORE_add_cert(ca->store, cert)) {
		err = lca_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((err = lca_ns_from_cert(cert, &ca->ns, e)))
		goto fail;
	if (cfg->crl_url && !(ca->crldp = make_crldp(cfg->crl_url))) {
		err = lca_fail(e, -EINVAL, "CRL URL '%s' rejected", cfg->crl_url);
		goto fail;
	}
	if ((err = lca_store_init(db, e)))
		goto fail;
	*out = ca;
	return 0;
fail:
	lca_close(ca);
	return err;
}

int lca_open(const struct lca_config *cfg, sqlite3 *db, struct lca **out, struct lca_err *e)
{
	EVP_PKEY *key = lca_read_key(cfg->key_path, e);
	if (!key)
		return -EINVAL;
	X509 *cert = lca_read_cert(cfg->cert_path, e);
	STACK_OF(X509) *chain = NULL;
	int err = -EINVAL;
	if (cert && (!cfg->chain_path || (chain = lca_read_certs(cfg->chain_path, e))))
		err = lca_open_mem(cfg, key, cert, chain, db, out, e);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	return err;
}

void lca_close(struct lca *ca)
{
	if (!ca)
		return;
	X509_EXTENSION_free(ca->crldp);
	X509_STORE_free(ca->store);
	sk_X509_pop_free(ca->chain, X509_free);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	lca_ns_release(&ca->ns);
	free(ca);
}

const struct lca_ns *lca_namespace(const struct lca *ca) { return &ca->ns; }
X509 *lca_cert(const struct lca *ca) { return ca->cert; }
EVP_PKEY *lca_key(const struct lca *ca) { return ca->key; }

/* Revocation only writes the store: the next CRL (signed by the process
 * that holds the key) lists it. */
int lca_db_revoke(sqlite3 *db, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	struct lca tmp = { .db = db };
	return lca_revoke(&tmp, serial, reason, when, e);
}

int lca_db_revoke_overlapping(sqlite3 *db, enum lca_kind kind, uint32_t first, uint32_t last,
			      int reason, int64_t when, unsigned *n, struct lca_err *e)
{
	struct lca tmp = { .db = db };
	return lca_revoke_overlapping(&tmp, kind, first, last, reason, when, n, e);
}
STACK_OF(X509) *lca_chain(const struct lca *ca) { return ca->chain; }

int lca_host_csr(EVP_PKEY *key, const char *cn, unsigned char **der, size_t *len,
		 struct lca_err *e)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char *buf = NULL;
	int l = -1;
	if (!cn || !*cn || strlen(cn) > LCA_ID_MAX) {
		X509_REQ_free(r);
		X509_NAME_free(n);
		return lca_fail(e, -EINVAL, "CSR: the common name must have 1 to %d characters",
				LCA_ID_MAX);
	}
	if (r && n && X509_REQ_set_version(r, X509_REQ_VERSION_1) &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
	    X509_REQ_set_subject_name(r, n) && X509_REQ_set_pubkey(r, key) &&
	    X509_REQ_sign(r, key, lca_sign_md(key)) > 0)
		l = i2d_X509_REQ(r, &buf);
	X509_NAME_free(n);
	X509_REQ_free(r);
	if (l <= 0)
		return lca_fail(e, -EIO, "cannot create the certificate request");
	*der = buf;
	*len = (size_t)l;
	return 0;
}

/* ---- store ---------------------------------------------------------------- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS ca_certs ("
	" serial TEXT PRIMARY KEY,"          /* uppercase hex */
	" host_id TEXT NOT NULL,"
	" identity TEXT NOT NULL,"
	" lan TEXT NOT NULL,"
	" ports TEXT NOT NULL,"
	" spis TEXT NOT NULL,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" issued_at INTEGER NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('valid','revoked')),"
	" revoked_at INTEGER,"
	" reason INTEGER,"
	" der BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS ca_certs_host ON ca_certs(host_id);"
	"CREATE TABLE IF NOT EXISTS ca_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

static int db_fail(sqlite3 *db, struct lca_err *e, const char *what)
{
	return lca_fail(e, -EIO, "database: %s: %s", what, sqlite3_errmsg(db));
}

int lca_store_init(sqlite3 *db, struct lca_err *e)
{
	char *msg = NULL;
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		int r = lca_fail(e, -EIO, "database: creating the ca_ tables: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

/* SAVEPOINTs nest inside a caller's transaction and work without one. */
static int sp_begin(sqlite3 *db, struct lca_err *e)
{
	return sqlite3_exec(db, "SAVEPOINT lca", NULL, NULL, NULL) == SQLITE_OK
		       ? 0 : db_fail(db, e, "savepoint");
}

static int sp_end(sqlite3 *db, int err, struct lca_err *e)
{
	if (err) {
		sqlite3_exec(db, "ROLLBACK TO lca", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL);
		return err;
	}
	if (sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL) != SQLITE_OK) {
		err = db_fail(db, e, "commit");
		sqlite3_exec(db, "ROLLBACK TO lca", NULL, NULL, NULL);
		sqlite3_exec(db, "RELEASE lca", NULL, NULL, NULL);
	}
	return err;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : "";
}

#define REC_COLS "serial, host_id, identity, lan, ports, spis, not_before, not_after, " \
		 "issued_at, status, revoked_at, reason, der"

static void row_to_rec(sqlite3_stmt *s, struct lca_record *r)
{
	memset(r, 0, sizeof(*r));
	r->serial = col_text(s, 0);
	r->host_id = col_text(s, 1);
	r->identity = col_text(s, 2);
	r->lan = col_text(s, 3);
	r->ports = col_text(s, 4);
	r->spis = col_text(s, 5);
	r->not_before = sqlite3_column_int64(s, 6);
	r->not_after = sqlite3_column_int64(s, 7);
	r->issued_at = sqlite3_column_int64(s, 8);
	r->revoked = !strcmp(col_text(s, 9), "revoked");
	r->revoked_at = sqlite3_column_int64(s, 10);
	r->reason = sqlite3_column_int(s, 11);
	r->der = sqlite3_column_blob(s, 12);
	r->der_len = (size_t)sqlite3_column_bytes(s, 12);
}

static int query(sqlite3 *db, const char *sql, const char *a1, lca_list_fn fn, void *arg,
		 struct lca_err *e, unsigned *rows)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, e, "query");
	if (a1 && sqlite3_bind_text(s, 1, a1, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
		sqlite3_finalize(s);
		return db_fail(db, e, "bind");
	}
	int rc, ret = 0;
	unsigned n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct lca_record r;
		row_to_rec(s, &r);
		n++;
		if ((ret = fn(arg, &r)))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = db_fail(db, e, "reading certificates");
	sqlite3_finalize(s);
	if (rows)
		*rows = n;
	return ret;
}

int lca_list(sqlite3 *db, const char *host_id, lca_list_fn fn, void *arg, struct lca_err *e)
{
	return query(db, host_id ? "SELECT " REC_COLS " FROM ca_certs WHERE host_id = ?1 "
				   "ORDER BY issued_at, rowid"
				 : "SELECT " REC_COLS " FROM ca_certs ORDER BY issued_at, rowid",
		     host_id, fn, arg, e, NULL);
}

int lca_get(sqlite3 *db, const char *serial, lca_list_fn fn, void *arg, struct lca_err *e)
{
	unsigned n = 0;
	int err = query(db, "SELECT " REC_COLS " FROM ca_certs WHERE serial = upper(?1)", serial,
			fn, arg, e, &n);
	if (!err && n == 0)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial);
	return err;
}

const char *lca_record_status(const struct lca_record *r, int64_t now)
{
	if (r->revoked)
		return "revoked";
	if (now > r->not_after)
		return "expired";
	if (now < r->not_before)
		return "not-yet-valid";
	return "valid";
}

/* ---- issuance --------------------------------------------------------------- */

static int text_ok(const char *s, size_t max, bool user)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (user ? !(isalnum(c) || c == '.' || c == '_' || c == '-') : (c < 0x21 || c > 0x7e))
			return 0;
	}
	return !(user && (s[0] == '.' || s[n - 1] == '.' || strstr(s, "..")));
}

static int merge(const struct lca_range *in, unsigned n, uint32_t min, uint32_t max,
		 struct lca_range *out, unsigned *nout, const char *what, struct lca_err *e)
{
	struct lca_range t[LCA_MAX_RANGES];
	if (n > LCA_MAX_RANGES)
		return lca_fail(e, -EINVAL, "%u %s ranges, at most %d", n, what, LCA_MAX_RANGES);
	for (unsigned i = 0; i < n; i++) {
		if (in[i].first > in[i].last || in[i].first < min || in[i].last > max)
			return lca_fail(e, -EINVAL, "%s range %u-%u empty or outside %u-%u", what,
					in[i].first, in[i].last, min, max);
		t[i] = in[i];
	}
	/* insertion sort: n <= 32 */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && t[j].first < t[j - 1].first; j--) {
			struct lca_range x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	unsigned m = 0;
	for (unsigned i = 0; i < n; i++) {
		if (m && (uint64_t)t[i].first <= (uint64_t)out[m - 1].last + 1) {
			if (t[i].last > out[m - 1].last)
				out[m - 1].last = t[i].last;
		} else {
			out[m++] = t[i];
		}
	}
	*nout = m;
	return 0;
}

static GENERAL_NAME *gn_new(int type, void *val)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	if (g)
		GENERAL_NAME_set0_value(g, type, val);
	return g;
}

static int add_san(X509 *x, uint32_t g_be, int type, const char *name)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
	ASN1_IA5STRING *s = ia5(name);
	GENERAL_NAME *g1 = NULL, *g2 = NULL;
	int ok = gens && ip && s && ASN1_OCTET_STRING_set(ip, (unsigned char *)&g_be, 4);
	if (ok && (g1 = gn_new(GEN_IPADD, ip)))
		ip = NULL;
	if (ok && g1 && (g2 = gn_new(type, s)))
		s = NULL;
	ok = ok && g1 && g2 && sk_GENERAL_NAME_push(gens, g1);
	if (ok)
		g1 = NULL;
	ok = ok && sk_GENERAL_NAME_push(gens, g2);
	if (ok)
		g2 = NULL;
	ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAME_free(g1);
	GENERAL_NAME_free(g2);
	ASN1_OCTET_STRING_free(ip);
	ASN1_IA5STRING_free(s);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -EIO;
}

static int store_cert(struct lca *ca, const struct lca_issue_req *rq, const struct lca_issued *o,
		      const struct lca_alloc *a, struct lca_err *e)
{
	char lan[INET_ADDRSTRLEN], ports[LCA_MAX_RANGES * 14], spis[LCA_MAX_RANGES * 24];
	ip_str(rq->lan_be, lan, sizeof(lan));
	lca_ranges_fmt(ports, sizeof(ports), a->ports, a->n_ports, false);
	lca_ranges_fmt(spis, sizeof(spis), a->spis, a->n_spis, true);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(ca->db,
			       "INSERT INTO ca_certs (serial, host_id, identity, lan, ports, spis, "
			       "not_before, not_after, issued_at, status, der) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'valid', ?10)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(ca->db, e, "prepare insert");
	int ok = sqlite3_bind_text(s, 1, o->serial, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 2, rq->host_id, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 3, o->identity, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 4, lan, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 5, ports, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_text(s, 6, spis, -1, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 7, rq->not_before) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 8, rq->not_after) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 9, (int64_t)time(NULL)) == SQLITE_OK &&
		 sqlite3_bind_blob(s, 10, o->der, (int)o->der_len, SQLITE_STATIC) == SQLITE_OK &&
		 sqlite3_step(s) == SQLITE_DONE;
	int err = ok ? 0 : db_fail(ca->db, e, "storing the certificate");
	sqlite3_finalize(s);
	return err;
}

void lca_issued_free(struct lca_issued *r)
{
	if (!r)
		return;
	OPENSSL_free(r->der);
	r->der = NULL;
	r->der_len = 0;
}

int lca_issue(struct lca *ca, const struct lca_issue_req *rq, struct lca_issued *out,
	      struct lca_err *e)
{
	struct lca_alloc a;
	char g[INET_ADDRSTRLEN], lan[INET_ADDRSTRLEN], cn[LCA_ID_MAX + 300];
	int err;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	if (!text_ok(rq->host_id, LCA_ID_MAX, false))
		return lca_fail(e, -EINVAL, "host id: 1 to %d printable ASCII characters, no spaces",
				LCA_ID_MAX);
	if (rq->user && !text_ok(rq->user, 64, true))
		return lca_fail(e, -EINVAL, "user: 1 to 64 of [A-Za-z0-9._-], no leading, trailing "
				"or double dot");
	uint32_t lh = ntohl(rq->lan_be);
	if (lh == 0 || lh == UINT32_MAX || (lh >> 24) == 127 || (lh >> 28) == 14)
		return lca_fail(e, -EINVAL, "LAN address must be a unicast address");
	if (rq->lan_be == ca->ns.g_be)
		return lca_fail(e, -EINVAL, "LAN address equals the global address");
	if (rq->not_after <= rq->not_before || rq->not_before < 0)
		return lca_fail(e, -EINVAL, "lease: not_after must be after not_before");
	if (rq->not_after - rq->not_before > (int64_t)ca->max_lease)
		return lca_fail(e, -EINVAL, "lease of %lld s exceeds the limit of %u s",
				(long long)(rq->not_after - rq->not_before), ca->max_lease);
	if ((err = merge(rq->ports, rq->n_ports, 0, 65535, a.ports, &a.n_ports, "port", e)) ||
	    (err = merge(rq->spis, rq->n_spis, LCA_SPI_MIN, UINT32_MAX, a.spis, &a.n_spis, "SPI", e)))
		return err;
	if (a.n_ports + a.n_spis == 0)
		return lca_fail(e, -EINVAL, "no port or SPI range to certify");
	memcpy(a.gaddr, &ca->ns.g_be, 4);
	a.gaddr_len = 4;

	X509_REQ *req;
	if ((err = parse_csr(rq->csr, rq->csr_len, &req, e)))
		return err;

	ip_str(ca->ns.g_be, g, sizeof(g));
	ip_str(rq->lan_be, lan, sizeof(lan));
	int san_type;
	if (rq->user) {
		snprintf(out->identity, sizeof(out->identity), "%s@%s", rq->user, ca->ns.domain);
		snprintf(cn, sizeof(cn), "%s", out->identity);
		san_type = GEN_EMAIL;
	} else {
		snprintf(out->identity, sizeof(out->identity), "xdnat://%s/%s", ca->ns.domain, lan);
		snprintf(cn, sizeof(cn), "%s@%s", lan, g);
		san_type = GEN_URI;
	}
	X509 *x = X509_new();
	X509_NAME *sn = ca->ns.dn ? X509_NAME_dup(ca->ns.dn) : X509_NAME_new();
	X509V3_CTX ctx;
	err = -EIO;
	if (!x || !sn ||
	    !X509_NAME_add_entry_by_NID(sn, NID_commonName, MBSTRING_UTF8, (unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    rand_serial(x, out->serial, sizeof(out->serial)) || !X509_set_subject_name(x, sn) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    set_times(x, rq->not_before, rq->not_after) ||
	    !X509_set_pubkey(x, X509_REQ_get0_pubkey(req))) {
		lca_fail(e, err, "cannot build the certificate");
		goto out;
	}
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (add_conf_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_conf_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
	    add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
	    add_san(x, ca->ns.g_be, san_type, out->identity) ||
	    (ca->crldp && !X509_add_ext(x, ca->crldp, -1))) {
		lca_fail(e, err, "cannot add the certificate extensions");
		goto out;
	}
	if ((err = lca_alloc_add(x, &a, e)))
		goto out;
	if (X509_sign(x, ca->key, lca_sign_md(ca->key)) <= 0) {
		err = lca_fail(e, -EIO, "signing failed");
		goto out;
	}
	/* Never hand out what a verifier would refuse: chain to the LCA,
	 * name constraints included (they are checked on trust anchors too). */
	int64_t at = time(NULL);     /* now, clamped into the lease */
	at = at < rq->not_before ? rq->not_before : at > rq->not_after ? rq->not_after : at;
	if (ca->selfcheck &&
	    (err = verify_with(ca->store, x, ca->chain, at,
			       X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT, e,
			       "the new certificate")))
		goto out;
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	if (n <= 0) {
		err = lca_fail(e, -EIO, "cannot encode the certificate");
		goto out;
	}
	out->der = der;
	out->der_len = (size_t)n;
	if ((err = sp_begin(ca->db, e)))
		goto out;
	err = sp_end(ca->db, store_cert(ca, rq, out, &a, e), e);
out:
	if (err)
		lca_issued_free(out);
	X509_NAME_free(sn);
	X509_free(x);
	X509_REQ_free(req);
	return err;
}

/* ---- revocation ----------------------------------------------------------- */

static const struct { int r; const char *n; } reasons[] = {
	{ LCA_REASON_UNSPECIFIED, "unspecified" },
	{ LCA_REASON_KEY_COMPROMISE, "keyCompromise" },
	{ LCA_REASON_AFFILIATION_CHANGED, "affiliationChanged" },
	{ LCA_REASON_SUPERSEDED, "superseded" },
	{ LCA_REASON_CESSATION, "cessationOfOperation" },
};

int lca_reason_parse(const char *s, int *reason)
{
	for (size_t i = 0; s && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (!strcasecmp(s, reasons[i].n)) {
			*reason = reasons[i].r;
			return 0;
		}
	return -EINVAL;
}

const char *lca_reason_name(int reason)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].r == reason)
			return reasons[i].n;
	return "unknown";
}

static int reason_ok(int r)
{
	return strcmp(lca_reason_name(r), "unknown") != 0;
}

static int mark_revoked(sqlite3 *db, const char *serial, int reason, int64_t when,
			struct lca_err *e)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(db, "UPDATE ca_certs SET status = 'revoked', revoked_at = ?2, "
			       "reason = ?3 WHERE serial = ?1 AND status = 'valid'",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, e, "prepare revoke");
	int ok = sqlite3_bind_text(s, 1, serial, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
		 sqlite3_bind_int64(s, 2, when) == SQLITE_OK &&
		 sqlite3_bind_int(s, 3, reason) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
	int changed = sqlite3_changes(db);
	sqlite3_finalize(s);
	if (!ok)
		return db_fail(db, e, "revoking");
	return changed ? 0 : -EALREADY;
}

struct rev_one {
	bool found, revoked;
	char serial[LCA_SERIAL_STRLEN];
};

static int cb_one(void *arg, const struct lca_record *r)
{
	struct rev_one *o = arg;
	o->found = true;
	o->revoked = r->revoked;
	snprintf(o->serial, sizeof(o->serial), "%s", r->serial);
	return 0;
}

int lca_revoke(struct lca *ca, const char *serial, int reason, int64_t when, struct lca_err *e)
{
	struct rev_one o = { 0 };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if (!serial || strlen(serial) >= LCA_SERIAL_STRLEN)
		return lca_fail(e, -ENOENT, "no certificate with serial %s", serial ? serial : "(null)");
	int err = lca_get(ca->db, serial, cb_one, &o, e);
	if (err)
		return err;
	if (o.revoked)
		return lca_fail(e, -EALREADY, "certificate %s is already revoked", o.serial);
	if ((err = sp_begin(ca->db, e)))
		return err;
	return sp_end(ca->db, mark_revoked(ca->db, o.serial, reason, when, e), e);
}

/* Collect serials first, then update: no writes while a SELECT is open. */
struct sel {
	struct lca *ca;
	int64_t now;
	enum lca_kind kind;
	uint32_t first, last;
	lca_held_fn held;
	void *arg;
	char (*serials)[LCA_SERIAL_STRLEN];
	size_t n, cap;
	int err;
	struct lca_err *e;
};

static int sel_push(struct sel *s, const char *serial)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		void *p = realloc(s->serials, cap * sizeof(*s->serials));
		if (!p)
			return lca_fail(s->e, -ENOMEM, "out of memory");
		s->serials = p;
		s->cap = cap;
	}
	snprintf(s->serials[s->n++], LCA_SERIAL_STRLEN, "%s", serial);
	return 0;
}

static int revoke_selected(struct lca *ca, struct sel *s, int reason, int64_t when, unsigned *n,
			   struct lca_err *e)
{
	unsigned cnt = 0;
	int err = sp_begin(ca->db, e);
	bool sp_ok = !err;
	for (size_t i = 0; !err && i < s->n; i++) {
		int r = mark_revoked(ca->db, s->serials[i], reason, when, e);
		if (r == 0)
			cnt++;
		else if (r != -EALREADY)
			err = r;
	}
	if (sp_ok)
		err = sp_end(ca->db, err, e);
	free(s->serials);
	s->serials = NULL;
	if (n)
		*n = err ? 0 : cnt;
	return err;
}

static bool live(const struct lca_record *r, int64_t now)
{
	return !r->revoked && now <= r->not_after;
}

static int cb_host(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	return live(r, s->now) ? sel_push(s, r->serial) : 0;
}

int lca_revoke_host(struct lca *ca, const char *host_id, int reason, int64_t when, unsigned *n,
		    struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = when, .e = e };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if (!host_id)
		return lca_fail(e, -EINVAL, "no host id");
	int err = lca_list(ca->db, host_id, cb_host, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, reason, when, n, e);
}

static int rec_alloc(const struct lca_record *r, struct lca_alloc *a, struct lca_err *e)
{
	const unsigned char *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);
	if (!x)
		return lca_fail(e, -EIO, "stored certificate %s is unreadable", r->serial);
	int err = lca_alloc_from_cert(x, a, e);
	X509_free(x);
	return err;
}

static int cb_overlap(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	struct lca_alloc a;
	if (!live(r, s->now))   /* a lease that starts later still binds its ranges */
		return 0;
	int err = rec_alloc(r, &a, s->e);
	if (err)
		return err;
	bool hit = s->kind == LCA_KIND_PORTS ? lca_ranges_overlap(a.ports, a.n_ports, s->first, s->last)
					     : lca_ranges_overlap(a.spis, a.n_spis, s->first, s->last);
	return hit ? sel_push(s, r->serial) : 0;
}

int lca_revoke_overlapping(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
			   int reason, int64_t when, unsigned *n, struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = when, .kind = kind, .first = first, .last = last, .e = e };
	if (!reason_ok(reason))
		return lca_fail(e, -EINVAL, "unknown revocation reason %d", reason);
	if ((kind != LCA_KIND_PORTS && kind != LCA_KIND_SPI) || first > last)
		return lca_fail(e, -EINVAL, "bad range");
	int err = lca_list(ca->db, NULL, cb_overlap, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, reason, when, n, e);
}

int lca_range_bound(struct lca *ca, enum lca_kind kind, uint32_t first, uint32_t last,
		    int64_t now, struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = now, .kind = kind, .first = first, .last = last, .e = e };
	if ((kind != LCA_KIND_PORTS && kind != LCA_KIND_SPI) || first > last)
		return lca_fail(e, -EINVAL, "bad range");
	int err = lca_list(ca->db, NULL, cb_overlap, &s, e);
	size_t n = s.n;
	free(s.serials);
	return err ? err : n > 0;
}

static int cb_reconcile(void *arg, const struct lca_record *r)
{
	struct sel *s = arg;
	struct lca_alloc a;
	if (!live(r, s->now))
		return 0;
	int err = rec_alloc(r, &a, s->e);
	if (err)
		return err;
	return s->held(s->arg, r, &a) ? 0 : sel_push(s, r->serial);
}

int lca_reconcile(struct lca *ca, int64_t now, lca_held_fn held, void *arg, unsigned *n,
		  struct lca_err *e)
{
	struct sel s = { .ca = ca, .now = now, .held = held, .arg = arg, .e = e };
	if (!held)
		return lca_fail(e, -EINVAL, "no callback");
	int err = lca_list(ca->db, NULL, cb_reconcile, &s, e);
	if (err) {
		free(s.serials);
		return err;
	}
	return revoke_selected(ca, &s, LCA_REASON_CESSATION, now, n, e);
}

/* ---- listing ------------------------------------------------------------------ */

struct printer {
	FILE *f;
	bool json;
	int64_t now;
	unsigned n;
};

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

static int cb_print(void *arg, const struct lca_record *r)
{
	struct printer *p = arg;
	char nb[32], na[32], ra[32] = "-";
	fmt_time(r->not_before, nb, sizeof(nb));
	fmt_time(r->not_after, na, sizeof(na));
	if (r->revoked)
		fmt_time(r->revoked_at, ra, sizeof(ra));
	const char *st = lca_record_status(r, p->now);
	if (p->json) {
		fprintf(p->f, "%s\n  {\"serial\":", p->n ? "," : "");
		lca_json_str(p->f, r->serial);
		fputs(",\"host_id\":", p->f);
		lca_json_str(p->f, r->host_id);
		fputs(",\"identity\":", p->f);
		lca_json_str(p->f, r->identity);
		fputs(",\"lan\":", p->f);
		lca_json_str(p->f, r->lan);
		fputs(",\"ports\":", p->f);
		lca_json_str(p->f, r->ports);
		fputs(",\"spis\":", p->f);
		lca_json_str(p->f, r->spis);
		fprintf(p->f, ",\"not_before\":\"%s\",\"not_after\":\"%s\",\"status\":\"%s\"", nb, na, st);
		if (r->revoked)
			fprintf(p->f, ",\"revoked_at\":\"%s\",\"reason\":\"%s\"", ra,
				lca_reason_name(r->reason));
		fputc('}', p->f);
	} else {
		fprintf(p->f, "%-40s  %-16s  %-8s  %-24s  %s  ports %s  spis %s  %s..%s%s%s\n",
			r->serial, r->host_id, st, r->identity, r->lan, r->ports[0] ? r->ports : "-",
			r->spis[0] ? r->spis : "-", nb, na, r->revoked ? "  revoked " : "",
			r->revoked ? lca_reason_name(r->reason) : "");
	}
	p->n++;
	return 0;
}

int lca_list_print(sqlite3 *db, const char *host_id, bool json, FILE *f, int64_t now,
		   struct lca_err *e)
{
	struct printer p = { .f = f, .json = json, .now = now };
	if (json)
		fputc('[', f);
	int err = lca_list(db, host_id, cb_print, &p, e);
	if (json)
		fputs(p.n ? "\n]\n" : "]\n", f);
	return err;
}

int lca_list_print_one(const struct lca_record *r, bool json, FILE *f, int64_t now)
{
	struct printer p = { .f = f, .json = json, .now = now };
	int err = cb_print(&p, r);
	if (json)
		fputc('\n', f);
	return err;
}

/* ---- CRL ------------------------------------------------------------------------ */

static int next_crl_number(sqlite3 *db, int64_t *num, struct lca_err *e)
{
	sqlite3_stmt *s = NULL;
	int err = 0;
	if (sqlite3_exec(db, "INSERT INTO ca_meta (k, v) VALUES ('crl_number', 1) "
			 "ON CONFLICT(k) DO UPDATE SET v = v + 1", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT v FROM ca_meta WHERE k = 'crl_number'", -1, &s, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		err = db_fail(db, e, "CRL number");
	else
		*num = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return err;
}

struct crl_fill {
	X509_CRL *crl;
	int64_t now;
	struct lca_err *e;
};

static int cb_crl(void *arg, const struct lca_record *r)
{
	struct crl_fill *c = arg;
	if (!r->revoked || r->not_after < c->now)
		return 0;
	BIGNUM *bn = NULL;
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = ASN1_TIME_new();
	ASN1_ENUMERATED *re = NULL;
	int ok = rv && t && BN_hex2bn(&bn, r->serial) > 0 && (ai = BN_to_ASN1_INTEGER(bn, NULL)) &&
		 X509_REVOKED_set_serialNumber(rv, ai) &&
		 ASN1_TIME_adj(t, (time_t)r->revoked_at, 0, 0) && X509_REVOKED_set_revocationDate(rv, t);
	if (ok && r->reason != LCA_REASON_UNSPECIFIED)
		ok = (re = ASN1_ENUMERATED_new()) && ASN1_ENUMERATED_set(re, r->reason) &&
		     X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, re, 0, 0) == 1;
	if (ok && X509_CRL_add0_revoked(c->crl, rv))
		rv = NULL;
	else
		ok = 0;
	ASN1_ENUMERATED_free(re);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	X509_REVOKED_free(rv);
	return ok ? 0 : lca_fail(c->e, -EIO, "cannot add %s to the CRL", r->serial);
}

int lca_crl(struct lca *ca, int64_t now, unsigned char **der, size_t *len, struct lca_err *e)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_new(), *t2 = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	int64_t n = 0;
	int err = -EIO;
	if (!crl || !t1 || !t2 || !num || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !ASN1_TIME_adj(t1, (time_t)now, 0, 0) ||
	    !ASN1_TIME_adj(t2, (time_t)(now + ca->crl_period), 0, 0) ||
	    !X509_CRL_set1_lastUpdate(crl, t1) || !X509_CRL_set1_nextUpdate(crl, t2)) {
		lca_fail(e, err, "cannot build the CRL");
		goto out;
	}
	struct crl_fill c = { .crl = crl, .now = now, .e = e };
	if ((err = lca_list(ca->db, NULL, cb_crl, &c, e)))
		goto out;
	if ((err = sp_begin(ca->db, e)))
		goto out;
	if ((err = sp_end(ca->db, next_crl_number(ca->db, &n, e), e)))
		goto out;
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
						  "keyid:always");
	int ok = aki && X509_CRL_add_ext(crl, aki, -1);
	X509_EXTENSION_free(aki);
	if (!ok || !ASN1_INTEGER_set_int64(num, n) ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 || !X509_CRL_sort(crl) ||
	    X509_CRL_sign(crl, ca->key, lca_sign_md(ca->key)) <= 0) {
		err = lca_fail(e, -EIO, "cannot sign the CRL");
		goto out;
	}
	unsigned char *buf = NULL;
	int bl = i2d_X509_CRL(crl, &buf);
	if (bl <= 0) {
		err = lca_fail(e, -EIO, "cannot encode the CRL");
		goto out;
	}
	*der = buf;
	*len = (size_t)bl;
	err = 0;
out:
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	X509_CRL_free(crl);
	return err;
}
