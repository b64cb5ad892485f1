// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnat-host's certificate: see host_cert.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "host_cert.h"
#include "lca.h"
#include "xdnat.h"

int host_cert_init(struct host_cert *h, const char *dir, const char *name, const char *keytype)
{
	struct lca_err e = { { 0 } };
	enum lca_keytype t = LCA_KEY_EC_P256;
	EVP_PKEY *k;
	int n;

	memset(h, 0, sizeof(*h));
	if (keytype && lca_keytype_parse(keytype, &t)) {
		xd_err("--key-type: '%s' is not one of p256, p384, ed25519, rsa3072", keytype);
		return -EINVAL;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		xd_err("cannot create the state directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	n = snprintf(h->key_path, sizeof(h->key_path), "%s/%s.key", dir, name);
	if (n < 0 || (size_t)n >= sizeof(h->key_path) - 16) {
		xd_err("--state-dir: path too long");
		return -ENAMETOOLONG;
	}
	snprintf(h->crt_path, sizeof(h->crt_path), "%s/%s.crt", dir, name);
	snprintf(h->chain_path, sizeof(h->chain_path), "%s/%s-chain.pem", dir, name);
	if (access(h->key_path, F_OK) == 0) {
		struct stat st;

		if (stat(h->key_path, &st) || (st.st_mode & 077)) {
			xd_err("%s: the private key must not be readable by group or others (chmod 600)",
			       h->key_path);
			return -EPERM;
		}
		k = lca_read_key(h->key_path, &e);
	} else {
		k = lca_keygen(t, &e);
		if (k && lca_write_key(h->key_path, k, &e)) {
			EVP_PKEY_free(k);
			k = NULL;
		}
		if (k)
			xd_info("made a new key pair: %s", h->key_path);
	}
	if (!k) {
		xd_err("host key: %s", e.msg);
		return -EIO;
	}
	h->key = k;
	if (lca_host_csr(k, name, &h->csr, &h->csr_len, &e)) {
		xd_err("certificate request: %s", e.msg);
		host_cert_free(h);
		return -EIO;
	}
	return 0;
}

/* Write PEM certificate(s) to @path through a temporary file. */
static int write_pem(const char *path, X509 *x)
{
	char tmp[600];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		xd_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	ok = PEM_write_X509(f, x);
	if (fclose(f) || !ok || rename(tmp, path)) {
		xd_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

int host_cert_store(struct host_cert *h, const uint8_t *der, size_t len, const uint8_t *ca,
		    size_t ca_len)
{
	const unsigned char *p = der, *q = ca;
	X509 *x = d2i_X509(NULL, &p, (long)len), *c = NULL;
	struct tm tm;
	int rc = -EIO;

	if (!x || p != der + len) {
		xd_err("the router sent a certificate that does not parse");
		goto out;
	}
	if (X509_check_private_key(x, h->key) != 1) {
		xd_err("the router's certificate is not for our key");
		goto out;
	}
	if (ca && ca_len) {
		c = d2i_X509(NULL, &q, (long)ca_len);
		if (!c || q != ca + ca_len) {
			xd_err("the router sent an LCA certificate that does not parse");
			goto out;
		}
	}
	if (write_pem(h->crt_path, x) || (c && write_pem(h->chain_path, c)))
		goto out;
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		snprintf(h->serial, sizeof(h->serial), "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	h->not_after = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 ? (int64_t)timegm(&tm) : 0;
	h->identity[0] = 0;
	{
		GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

		for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == GEN_URI || g->type == GEN_EMAIL) {
				const ASN1_IA5STRING *s = g->d.ia5;

				snprintf(h->identity, sizeof(h->identity), "%.*s", s->length,
					 (const char *)s->data);
				break;
			}
		}
		GENERAL_NAMES_free(gens);
	}
	h->have = true;
	rc = 0;
out:
	X509_free(x);
	X509_free(c);
	return rc;
}

void host_cert_remove(struct host_cert *h)
{
	if (!h->have)
		return;
	if (unlink(h->crt_path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", h->crt_path, strerror(errno));
	if (unlink(h->chain_path) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", h->chain_path, strerror(errno));
	h->have = false;
}

void host_cert_info(const struct host_cert *h, FILE *f)
{
	if (!h->have)
		return;
	fprintf(f, "XDNAT_CERT=%s\nXDNAT_CERT_CHAIN=%s\nXDNAT_KEY=%s\nXDNAT_CERT_SERIAL=%s\n"
		"XDNAT_CERT_NOT_AFTER=%lld\nXDNAT_CERT_IDENTITY=%s\n", h->crt_path, h->chain_path,
		h->key_path, h->serial, (long long)h->not_after, h->identity);
}

void host_cert_free(struct host_cert *h)
{
	EVP_PKEY_free(h->key);
	h->key = NULL;
	OPENSSL_free(h->csr);
	h->csr = NULL;
}
