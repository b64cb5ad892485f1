// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Mobile IPv4 registration messages: see mip_wire.h. */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "mip_wire.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32n(const uint8_t *p)   /* stays in network order */
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The extensions of either message.  @known says which types this message
 * understands; the callback stores them.  Known extensions after the
 * authenticator are not authenticated: poorly formed. */
struct ext_ctx {
	struct mip_rrq *q;
	struct mip_rrp *p;
};

static int one_ext(struct ext_ctx *c, const uint8_t *buf, size_t off, uint8_t type, uint8_t len,
		   bool after_auth)
{
	const uint8_t *v = buf + off + 2;
	bool *have_auth = c->q ? &c->q->have_auth : &c->p->have_auth;

	switch (type) {
	case MIP_EXT_MH_AUTH:
		if (*have_auth || len < 4 + 1)
			return MIP_BAD;
		*have_auth = true;
		if (c->q) {
			c->q->spi = __builtin_bswap32(get32n(v));
			c->q->auth = v + 4;
			c->q->auth_len = (size_t)len - 4;
			c->q->auth_off = off + 2 + 4;
		} else {
			c->p->spi = __builtin_bswap32(get32n(v));
			c->p->auth = v + 4;
			c->p->auth_len = (size_t)len - 4;
			c->p->auth_off = off + 2 + 4;
		}
		return MIP_OK;
	case MIP_EXT_NAI:
		if (after_auth)
			return MIP_BAD;
		if (!c->q)               /* a reply's NAI: skippable, ignored */
			return MIP_OK;
		if (c->q->nai || len < 1 || len > MIP_NAI_MAX)
			return MIP_BAD;
		c->q->nai = (const char *)v;
		c->q->nai_len = len;
		return MIP_OK;
	case MIP_EXT_UDP_TUN_REQ:
		if (!c->q)
			return MIP_OK;   /* skippable in a reply */
		if (after_auth || c->q->have_tunreq || len != 6)
			return MIP_BAD;
		if (v[0] != 0)           /* an unknown sub-type: skipped */
			return MIP_OK;
		c->q->have_tunreq = true;
		c->q->tunreq_flags = v[2];
		c->q->tunreq_encap = v[3];
		return MIP_OK;
	case MIP_EXT_UDP_TUN_REP:
		if (!c->p)
			return MIP_DROP; /* type < 128 not understood in a request */
		if (after_auth || c->p->have_tunrep || len != 6 || v[0] != 0)
			return MIP_BAD;
		c->p->have_tunrep = true;
		c->p->tunrep_code = v[1];
		c->p->tunrep_flags = get16(v + 2);
		c->p->keepalive = get16(v + 4);
		return MIP_OK;
	default:
		/* RFC 5944 1.9: an unknown extension below 128 discards the
		 * message silently; 128 and above are skipped. */
		return type < 128 ? MIP_DROP : MIP_OK;
	}
}

static int parse_exts(struct ext_ctx *c, const uint8_t *buf, size_t len, size_t off)
{
	bool after_auth = false;

	while (off < len) {
		uint8_t type, elen;
		int rc;

		if (len - off < 2)
			return MIP_DROP;
		type = buf[off];
		elen = buf[off + 1];
		if ((size_t)elen > len - off - 2)
			return MIP_DROP;
		rc = one_ext(c, buf, off, type, elen, after_auth);
		if (rc)
			return rc;
		if (type == MIP_EXT_MH_AUTH)
			after_auth = true;
		off += 2 + (size_t)elen;
	}
	return MIP_OK;
}

int mip_rrq_parse(const uint8_t *buf, size_t len, struct mip_rrq *q)
{
	struct ext_ctx c = { .q = q };

	memset(q, 0, sizeof(*q));
	if (!buf || len < MIP_RRQ_LEN || len > MIP_MAX_MSG || buf[0] != MIP_T_RRQ)
		return MIP_DROP;
	q->flags = buf[1];
	q->lifetime = get16(buf + 2);
	q->home = get32n(buf + 4);
	q->ha = get32n(buf + 8);
	q->coa = get32n(buf + 12);
	q->id = get64(buf + 16);
	return parse_exts(&c, buf, len, MIP_RRQ_LEN);
}

int mip_rrp_parse(const uint8_t *buf, size_t len, struct mip_rrp *p)
{
	struct ext_ctx c = { .p = p };

	memset(p, 0, sizeof(*p));
	if (!buf || len < MIP_RRP_LEN || len > MIP_MAX_MSG || buf[0] != MIP_T_RRP)
		return MIP_DROP;
	p->code = buf[1];
	p->lifetime = get16(buf + 2);
	p->home = get32n(buf + 4);
	p->ha = get32n(buf + 8);
	p->id = get64(buf + 12);
	return parse_exts(&c, buf, len, MIP_RRP_LEN);
}

/* On any failure the output is random, never a predictable value. */
static void hmac256(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
		    uint8_t out[MIP_AUTH_LEN])
{
	unsigned outlen = MIP_AUTH_LEN;

	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, len, out, &outlen) || outlen != MIP_AUTH_LEN) {
		if (RAND_bytes(out, MIP_AUTH_LEN) != 1)
			for (size_t i = 0; i < MIP_AUTH_LEN; i++)
				out[i] = (uint8_t)(0x5a ^ (i * 7));
	}
}

void mip_derive_key(const uint8_t secret[32], uint8_t key[MIP_KEY_LEN])
{
	hmac256(secret, 32, (const uint8_t *)MIP_KEY_LABEL, strlen(MIP_KEY_LABEL), key);
}

bool mip_verify(const uint8_t *buf, size_t len, size_t auth_off, uint32_t spi,
		const uint8_t *auth, size_t auth_len, const uint8_t key[MIP_KEY_LEN])
{
	uint8_t mac[MIP_AUTH_LEN];
	bool ok;

	if (spi != MIP_SPI_XDNAT || auth_len != MIP_AUTH_LEN || auth_off > len ||
	    len - auth_off < MIP_AUTH_LEN || auth != buf + auth_off)
		return false;
	hmac256(key, MIP_KEY_LEN, buf, auth_off, mac);
	ok = CRYPTO_memcmp(mac, auth, MIP_AUTH_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

/* ------------------------------------------------------------ building */

static void put(struct mip_builder *b, const void *p, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void put16(struct mip_builder *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(b, x, 2);
}

static void put64(struct mip_builder *b, uint64_t v)
{
	uint8_t x[8];

	for (int i = 7; i >= 0; i--, v >>= 8)
		x[i] = (uint8_t)v;
	put(b, x, 8);
}

static void start(struct mip_builder *b, uint8_t *buf, size_t cap)
{
	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->overflow = false;
}

void mip_build_rrq(struct mip_builder *b, uint8_t *buf, size_t cap, uint8_t flags,
		   uint16_t lifetime, uint32_t home, uint32_t ha, uint32_t coa, uint64_t id)
{
	uint8_t h[2] = { MIP_T_RRQ, flags };

	start(b, buf, cap);
	put(b, h, 2);
	put16(b, lifetime);
	put(b, &home, 4);
	put(b, &ha, 4);
	put(b, &coa, 4);
	put64(b, id);
}

void mip_build_rrp(struct mip_builder *b, uint8_t *buf, size_t cap, uint8_t code,
		   uint16_t lifetime, uint32_t home, uint32_t ha, uint64_t id)
{
	uint8_t h[2] = { MIP_T_RRP, code };

	start(b, buf, cap);
	put(b, h, 2);
	put16(b, lifetime);
	put(b, &home, 4);
	put(b, &ha, 4);
	put64(b, id);
}

void mip_put_nai(struct mip_builder *b, const char *nai, size_t len)
{
	uint8_t h[2] = { MIP_EXT_NAI, (uint8_t)len };

	if (len < 1 || len > MIP_NAI_MAX) {
		b->overflow = true;
		return;
	}
	put(b, h, 2);
	put(b, nai, len);
}

void mip_put_tunreq(struct mip_builder *b, uint8_t flags, uint8_t encap)
{
	uint8_t e[8] = { MIP_EXT_UDP_TUN_REQ, 6, 0, 0, flags, encap, 0, 0 };

	put(b, e, sizeof(e));
}

void mip_put_tunrep(struct mip_builder *b, uint8_t code, uint16_t flags, uint16_t keepalive)
{
	uint8_t e[8] = { MIP_EXT_UDP_TUN_REP, 6, 0, code, (uint8_t)(flags >> 8), (uint8_t)flags,
			 (uint8_t)(keepalive >> 8), (uint8_t)keepalive };

	put(b, e, sizeof(e));
}

size_t mip_seal(struct mip_builder *b, const uint8_t key[MIP_KEY_LEN])
{
	uint8_t h[6] = { MIP_EXT_MH_AUTH, 4 + MIP_AUTH_LEN, (uint8_t)(MIP_SPI_XDNAT >> 24),
			 (uint8_t)(MIP_SPI_XDNAT >> 16), (uint8_t)(MIP_SPI_XDNAT >> 8),
			 (uint8_t)MIP_SPI_XDNAT };
	uint8_t mac[MIP_AUTH_LEN];

	put(b, h, sizeof(h));
	if (b->overflow || b->cap - b->len < MIP_AUTH_LEN)
		return 0;
	hmac256(key, MIP_KEY_LEN, b->buf, b->len, mac);
	put(b, mac, sizeof(mac));
	return b->overflow ? 0 : b->len;
}

size_t mip_finish(struct mip_builder *b)
{
	return b->overflow ? 0 : b->len;
}

uint64_t mip_id_from_unix_ms(uint64_t ms, uint32_t low)
{
	uint64_t s = ms / 1000 + MIP_NTP_OFFSET;

	return (s & 0xffffffffu) << 32 | low;
}

int64_t mip_id_unix_s(uint64_t id)
{
	/* NTP era 0 (until 2036); later ones wrap the high word. */
	return (int64_t)(id >> 32) - (int64_t)MIP_NTP_OFFSET;
}

const char *mip_code_name(uint8_t code)
{
	switch (code) {
	case MIP_C_ACCEPTED: return "accepted";
	case MIP_C_ACCEPTED_NO_SIMUL: return "accepted_no_simultaneous";
	case MIP_C_UNSPECIFIED: return "unspecified";
	case MIP_C_ADMIN_PROHIBITED: return "admin_prohibited";
	case MIP_C_NO_RESOURCES: return "insufficient_resources";
	case MIP_C_MN_AUTH_FAILED: return "mn_auth_failed";
	case MIP_C_FA_AUTH_FAILED: return "fa_auth_failed";
	case MIP_C_ID_MISMATCH: return "id_mismatch";
	case MIP_C_POORLY_FORMED: return "poorly_formed";
	case MIP_C_TOO_MANY_BINDINGS: return "too_many_bindings";
	case MIP_C_UNKNOWN_HA: return "unknown_ha";
	case MIP_C_REV_TUNNEL_UNAVAIL: return "reverse_tunnel_unavailable";
	case MIP_C_REV_TUNNEL_MANDATORY: return "reverse_tunnel_mandatory";
	case MIP_C_ENCAP_UNAVAIL: return "encapsulation_unavailable";
	default: return "other";
	}
}
