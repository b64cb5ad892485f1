// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP message authentication: see rsip_auth.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "rsip_auth.h"
#include "xdnat.h"

bool rsip_valid_name(const char *name, size_t len)
{
	if (!name || len == 0 || len > RSIP_KEYID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int rsip_random(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rsip_secret_parse(const char *hex, uint8_t out[RSIP_SECRET_LEN])
{
	size_t n = strlen(hex);
	uint8_t tmp[RSIP_SECRET_LEN];

	if (n && hex[n - 1] == '\n')
		n--;
	if (n != 2 * RSIP_SECRET_LEN)
		return -EINVAL;
	for (size_t i = 0; i < RSIP_SECRET_LEN; i++) {
		int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);

		if (h < 0 || l < 0)
			return -EINVAL;
		tmp[i] = (uint8_t)(h << 4 | l);
	}
	memcpy(out, tmp, sizeof(tmp));
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return 0;
}

void rsip_secret_hex(const uint8_t s[RSIP_SECRET_LEN], char out[2 * RSIP_SECRET_LEN + 1])
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < RSIP_SECRET_LEN; i++) {
		out[2 * i] = d[s[i] >> 4];
		out[2 * i + 1] = d[s[i] & 15];
	}
	out[2 * RSIP_SECRET_LEN] = '\0';
}

int rsip_secret_load(const char *path, uint8_t out[RSIP_SECRET_LEN])
{
	char buf[2 * RSIP_SECRET_LEN + 8];
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		xd_err("cannot open secret file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		xd_err("cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		xd_err("secret file %s is accessible by group or others (mode %03o): chmod 600 it",
		       path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		xd_err("cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	buf[n] = '\0';
	rc = rsip_secret_parse(buf, out);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc)
		xd_err("%s does not hold a secret (64 hex digits, as written by xdnatctl enroll)", path);
	return rc;
}

/*
 * HMAC-SHA256(key, label | a | b).  On failure @out is filled with random
 * bytes, never a predictable value (an all-zero MAC would verify against a
 * forged all-zero one), and false is returned.
 */
static void mac_failed(uint8_t out[RSIP_MAC_LEN])
{
	if (RAND_bytes(out, RSIP_MAC_LEN) != 1)
		for (size_t i = 0; i < RSIP_MAC_LEN; i++) /* still not all-zero */
			out[i] = (uint8_t)(0xa5 ^ i);
}

static bool hmac3(const uint8_t *key, size_t keylen, const char *label, const uint8_t *a,
		  size_t alen, const uint8_t *b, size_t blen, uint8_t out[RSIP_MAC_LEN])
{
	uint8_t buf[64 + RSIP_MAX_MSG];
	size_t l = label ? strlen(label) : 0, n = 0;
	unsigned outlen = RSIP_MAC_LEN;

	if (l > 64 || alen + blen > RSIP_MAX_MSG) {
		/* Callers never get here: the sizes are compile-time bounded. */
		mac_failed(out);
		return false;
	}
	if (l)
		memcpy(buf, label, l);
	n = l;
	if (alen)
		memcpy(buf + n, a, alen);
	n += alen;
	if (blen)
		memcpy(buf + n, b, blen);
	n += blen;
	if (!HMAC(EVP_sha256(), key, (int)keylen, buf, n, out, &outlen) || outlen != RSIP_MAC_LEN) {
		mac_failed(out);
		OPENSSL_cleanse(buf, n);
		return false;
	}
	OPENSSL_cleanse(buf, n);
	return true;
}

void rsip_derive(const uint8_t secret[RSIP_SECRET_LEN], const uint8_t cn[RSIP_NONCE_LEN],
		 const uint8_t sn[RSIP_NONCE_LEN], struct rsip_keys *k)
{
	hmac3(secret, RSIP_SECRET_LEN, "xdnat-rsip-1 c2s", cn, RSIP_NONCE_LEN, sn, RSIP_NONCE_LEN, k->c2s);
	hmac3(secret, RSIP_SECRET_LEN, "xdnat-rsip-1 s2c", cn, RSIP_NONCE_LEN, sn, RSIP_NONCE_LEN, k->s2c);
}

/* Finish @b whose last parameter ends with RSIP_MAC_LEN reserved bytes. */
static size_t seal(struct rsip_builder *b, const uint8_t *key, size_t keylen, const char *label)
{
	size_t len = rsip_finish(b);

	if (!len)
		return 0;
	if (!hmac3(key, keylen, label, b->buf, len - RSIP_MAC_LEN, NULL, 0,
		   b->buf + len - RSIP_MAC_LEN))
		return 0;
	return len;
}

size_t rsip_seal_hello(struct rsip_builder *b, const uint8_t secret[RSIP_SECRET_LEN],
		       const char *name, const uint8_t cn[RSIP_NONCE_LEN])
{
	uint8_t v[1 + RSIP_KEYID_MAX + RSIP_NONCE_LEN + RSIP_MAC_LEN] = { 0 };
	size_t l = strlen(name);

	if (!rsip_valid_name(name, l))
		return 0;
	v[0] = (uint8_t)l;
	memcpy(v + 1, name, l);
	memcpy(v + 1 + l, cn, RSIP_NONCE_LEN);
	rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_AUTH_HELLO, v, 1 + l + RSIP_NONCE_LEN + RSIP_MAC_LEN);
	return seal(b, secret, RSIP_SECRET_LEN, RSIP_HELLO_LABEL);
}

size_t rsip_seal_welcome(struct rsip_builder *b, const uint8_t key[RSIP_MAC_LEN],
			 const uint8_t sn[RSIP_NONCE_LEN])
{
	uint8_t v[RSIP_NONCE_LEN + RSIP_MAC_LEN] = { 0 };

	memcpy(v, sn, RSIP_NONCE_LEN);
	rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_AUTH_WELCOME, v, sizeof(v));
	return seal(b, key, RSIP_MAC_LEN, NULL);
}

size_t rsip_seal_mac(struct rsip_builder *b, const uint8_t key[RSIP_MAC_LEN])
{
	uint8_t v[RSIP_MAC_LEN] = { 0 };

	rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_AUTH_MAC, v, sizeof(v));
	return seal(b, key, RSIP_MAC_LEN, NULL);
}

int rsip_auth_param(const struct rsip_msg *m, const uint8_t **pre, size_t *prelen)
{
	const struct rsip_param *p;
	struct rsip_vendor v;

	if (m->n_params == 0)
		return 0;
	p = &m->params[m->n_params - 1];
	if (p->code != RSIP_P_VENDOR_SPECIFIC || rsip_param_vendor(p, &v) != RSIP_E_OK ||
	    v.vendor != XDNAT_RSIP_VENDOR_ID || v.len < RSIP_MAC_LEN)
		return 0;
	*pre = v.val;
	*prelen = v.len - RSIP_MAC_LEN;
	switch (v.subtype) {
	case XDNAT_AUTH_HELLO:
		if (*prelen < 1 + 1 + RSIP_NONCE_LEN || *prelen != 1u + v.val[0] + RSIP_NONCE_LEN)
			return 0;
		return XDNAT_AUTH_HELLO;
	case XDNAT_AUTH_WELCOME:
		return *prelen == RSIP_NONCE_LEN ? XDNAT_AUTH_WELCOME : 0;
	case XDNAT_AUTH_MAC:
		return *prelen == 0 ? XDNAT_AUTH_MAC : 0;
	default:
		return 0;
	}
}

bool rsip_verify(const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen,
		 const char *label)
{
	uint8_t mac[RSIP_MAC_LEN];

	if (len < RSIP_HDR_LEN + RSIP_MAC_LEN)
		return false;
	if (!hmac3(key, keylen, label, buf, len - RSIP_MAC_LEN, NULL, 0, mac))
		return false;
	return CRYPTO_memcmp(mac, buf + len - RSIP_MAC_LEN, RSIP_MAC_LEN) == 0;
}

void rsip_put_shared_ike(struct rsip_builder *b, const struct rsip_shared_ike *s)
{
	uint8_t v[1 + 3 * RSIP_SHARED_IKE_MAX];

	if (!s->n)
		return;
	if (s->n > RSIP_SHARED_IKE_MAX) {
		b->overflow = true;
		return;
	}
	v[0] = (uint8_t)s->n;
	for (unsigned i = 0; i < s->n; i++) {
		v[1 + 3 * i] = (uint8_t)(s->port[i] >> 8);
		v[2 + 3 * i] = (uint8_t)s->port[i];
		v[3 + 3 * i] = s->framing[i];
	}
	rsip_put_vendor(b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_SHARED_IKE, v, 1 + 3 * s->n);
}

uint16_t rsip_shared_ike_parse(const struct rsip_vendor *v, struct rsip_shared_ike *s)
{
	unsigned n;
	uint16_t e = RSIP_E_OK;

	memset(s, 0, sizeof(*s));
	if (!v->val || v->len < 1)
		return RSIP_E_BAD_PARAM;
	n = v->val[0];
	if (n < 1 || n > RSIP_SHARED_IKE_MAX || v->len != 1 + 3 * n)
		return RSIP_E_BAD_PARAM;
	for (unsigned i = 0; i < n && !e; i++) {
		const uint8_t *q = v->val + 1 + 3 * i;

		s->port[i] = (uint16_t)((q[0] << 8) | q[1]);
		s->framing[i] = q[2];
		if (!s->port[i])
			e = RSIP_E_BAD_PARAM;
		for (unsigned j = 0; j < i && !e; j++)
			if (s->port[j] == s->port[i])
				e = RSIP_E_BAD_PARAM;
		if (!e && s->framing[i] != XDNAT_IKE_FRAMING_IKE &&
		    s->framing[i] != XDNAT_IKE_FRAMING_RFC3948)
			e = RSIP_E_ILLEGAL_PARAM;
	}
	if (e) {
		memset(s, 0, sizeof(*s));
		return e;
	}
	s->n = n;
	return RSIP_E_OK;
}

uint16_t rsip_shared_ike_find(const struct rsip_msg *m, const struct rsip_fields *f,
			      struct rsip_shared_ike *s)
{
	bool seen = false;

	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < f->n_vendor; i++) {
		struct rsip_vendor v;
		uint16_t e;

		if (f->vendor[i] < 0 || (unsigned)f->vendor[i] >= m->n_params ||
		    rsip_param_vendor(&m->params[f->vendor[i]], &v) != RSIP_E_OK ||
		    v.vendor != XDNAT_RSIP_VENDOR_ID || v.subtype != XDNAT_VS_SHARED_IKE)
			continue;
		if (seen) {
			memset(s, 0, sizeof(*s));
			return RSIP_E_DUPLICATE_PARAM;
		}
		seen = true;
		if ((e = rsip_shared_ike_parse(&v, s)))
			return e;
	}
	return RSIP_E_OK;
}
