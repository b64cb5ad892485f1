// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The Local CA: key generation, PEM files, a host's CSR. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "lca_priv.h"

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
	/* A signing key others can read is as good as published: refuse it
	 * (xdnat-host does the same for its own key). */
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		lca_fail(e, -EPERM, "%s: private key is not a regular file of mode 0600 or 0400 "
			 "(mode %04o: readable or writable by group or others); chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		fclose(f);
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
