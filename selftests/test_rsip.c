// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* RSIP codec and authentication (loader/rsip/rsip_wire.c, rsip_auth.c). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "rsip_auth.h"
#include "rsip_wire.h"

static size_t build(struct rsip_builder *b, uint8_t type)
{
	uint16_t port = 30000;
	uint32_t spi = 0x10000;

	rsip_begin(b, type);
	switch (type) {
	case RSIP_ERROR_RESPONSE:
		rsip_put_u16(b, RSIP_P_ERROR, RSIP_E_BAD_BIND_ID);
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		break;
	case RSIP_REGISTER_REQUEST:
		break;
	case RSIP_REGISTER_RESPONSE:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 600);
		rsip_put_flow(b, RSIP_FLOW_MACRO, RSIP_FLOW_NONE);
		rsip_put_u8(b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSAP_IP);
		rsip_put_u8(b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSIPSEC);
		rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		break;
	case RSIP_DEREGISTER_REQUEST: case RSIP_DEREGISTER_RESPONSE:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		break;
	case RSIP_ASSIGN_REQUEST_RSAP_IP:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_addr4(b, 0, true);
		rsip_put_ports(b, 100, NULL, 0);
		rsip_put_addr4(b, 0, true);
		rsip_put_ports(b, 0, NULL, 0);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 60);
		rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		break;
	case RSIP_ASSIGN_RESPONSE_RSAP_IP:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(b, RSIP_P_BIND_ID, 9);
		rsip_put_addr4(b, htonl(0xc0000201), false);
		rsip_put_ports(b, 100, &port, 1);
		rsip_put_addr4(b, 0, true);
		rsip_put_ports(b, 0, NULL, 0);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 60);
		rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		rsip_put_addr4(b, htonl(0x0a000001), false);
		break;
	case RSIP_EXTEND_REQUEST: case RSIP_EXTEND_RESPONSE:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(b, RSIP_P_BIND_ID, 9);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 60);
		break;
	case RSIP_FREE_REQUEST: case RSIP_FREE_RESPONSE:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(b, RSIP_P_BIND_ID, 9);
		break;
	case RSIP_QUERY_REQUEST: case RSIP_QUERY_RESPONSE:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u16(b, RSIP_P_INDICATOR, 1);
		rsip_put_addr4(b, htonl(0x0a000005), false);
		break;
	case RSIP_ASSIGN_REQUEST_RSIPSEC:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_addr4(b, 0, true);
		rsip_put_addr4(b, 0, true);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 60);
		rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		rsip_put_spi(b, 1000, NULL, 0);
		break;
	case RSIP_ASSIGN_RESPONSE_RSIPSEC:
		rsip_put_u32(b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(b, RSIP_P_BIND_ID, 9);
		rsip_put_addr4(b, htonl(0xc0000201), false);
		rsip_put_addr4(b, 0, true);
		rsip_put_spi(b, 65535, &spi, 1);
		rsip_put_u32(b, RSIP_P_LEASE_TIME, 60);
		rsip_put_u8(b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		break;
	}
	rsip_put_u32(b, RSIP_P_MESSAGE_COUNTER, 42);
	return rsip_finish(b);
}

static const uint8_t types[] = {
	RSIP_ERROR_RESPONSE, RSIP_REGISTER_REQUEST, RSIP_REGISTER_RESPONSE, RSIP_DEREGISTER_REQUEST,
	RSIP_DEREGISTER_RESPONSE, RSIP_ASSIGN_REQUEST_RSAP_IP, RSIP_ASSIGN_RESPONSE_RSAP_IP,
	RSIP_EXTEND_REQUEST, RSIP_EXTEND_RESPONSE, RSIP_FREE_REQUEST, RSIP_FREE_RESPONSE,
	RSIP_QUERY_REQUEST, RSIP_QUERY_RESPONSE, RSIP_ASSIGN_REQUEST_RSIPSEC, RSIP_ASSIGN_RESPONSE_RSIPSEC,
};

Test(codec, every_message_round_trips)
{
	static struct rsip_builder b, b2;
	static struct rsip_msg m;
	struct rsip_fields f;

	for (size_t i = 0; i < sizeof(types); i++) {
		size_t len = build(&b, types[i]);

		cr_assert(len > 0, "%s did not encode", rsip_msg_name(types[i]));
		cr_assert_eq(rsip_decode(b.buf, len, &m), RSIP_E_OK, "%s", rsip_msg_name(types[i]));
		cr_assert_eq(m.type, types[i]);
		cr_assert_eq(rsip_validate(&m, &f), RSIP_E_OK, "%s", rsip_msg_name(types[i]));
		cr_assert_geq(f.counter, 0);
		cr_assert_eq(rsip_param_u32(&m.params[f.counter]), 42);
		/* Re-encode the decoded parameters: identical bytes. */
		rsip_begin(&b2, m.type);
		for (unsigned k = 0; k < m.n_params; k++)
			rsip_put_raw(&b2, m.params[k].code, m.params[k].val, m.params[k].len);
		cr_assert_eq(rsip_finish(&b2), len);
		cr_assert(!memcmp(b.buf, b2.buf, len), "%s", rsip_msg_name(types[i]));
	}
}

Test(codec, typed_values)
{
	static struct rsip_builder b;
	static struct rsip_msg m;
	struct rsip_fields f;
	struct rsip_ports p;
	struct rsip_spi s;
	size_t len = build(&b, RSIP_ASSIGN_RESPONSE_RSAP_IP);

	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_param_ports(&m.params[f.slot[RSIP_S_AP_PORTS_LOCAL]], &p), 0);
	cr_assert_eq(p.number, 100);
	cr_assert_eq(p.count, 1);
	cr_assert_eq(p.port[0], 30000);
	cr_assert_eq(rsip_param_u32(&m.params[f.slot[RSIP_S_AP_BIND]]), 9);
	cr_assert_geq(f.slot[RSIP_S_AP_ADDR_TUNNEL], 0);
	len = build(&b, RSIP_ASSIGN_RESPONSE_RSIPSEC);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_param_spi(&m.params[f.slot[RSIP_S_SP_SPI]], &s), 0);
	cr_assert_eq(s.number, 65535);
	cr_assert_eq(s.spi[0], 0x10000);
}

struct bad {
	const char *what;
	uint8_t bytes[40];
	size_t len;
	uint16_t decode_err;   /* 0: decodes; then validate_err */
	uint16_t validate_err;
};

/* Hand-written malformed messages and the RFC error each must get. */
static const struct bad bads[] = {
	{ "short header", { 1, 2, 0 }, 3, RSIP_E_BAD_MESSAGE, 0 },
	{ "version 2", { 2, 2, 0, 4 }, 4, RSIP_E_UNSUPPORTED_RSIP_VERSION, 0 },
	{ "length > buffer", { 1, 2, 0, 9 }, 4, RSIP_E_BAD_MESSAGE, 0 },
	{ "length < buffer", { 1, 2, 0, 4, 0 }, 5, RSIP_E_BAD_MESSAGE, 0 },
	{ "truncated param header", { 1, 2, 0, 6, 11, 0 }, 6, RSIP_E_BAD_MESSAGE, 0 },
	{ "param overruns message", { 1, 2, 0, 9, 11, 0, 4, 0, 0 }, 9, RSIP_E_BAD_MESSAGE, 0 },
	{ "counter of 3 bytes", { 1, 2, 0, 10, 11, 0, 3, 0, 0, 1 }, 10, RSIP_E_BAD_PARAM, 0 },
	{ "unknown param code", { 1, 2, 0, 8, 99, 0, 1, 0 }, 8, RSIP_E_ILLEGAL_PARAM, 0 },
	{ "address type 9", { 1, 4, 0, 8, 1, 0, 1, 9 }, 8, RSIP_E_ILLEGAL_PARAM, 0 },
	{ "IPv4 of 3 bytes", { 1, 4, 0, 11, 1, 0, 4, 1, 1, 2, 3 }, 11, RSIP_E_BAD_PARAM, 0 },
	{ "ports odd length", { 1, 4, 0, 9, 2, 0, 2, 5, 0 }, 9, RSIP_E_BAD_PARAM, 0 },
	{ "port list != Number", { 1, 4, 0, 12, 2, 0, 5, 3, 0, 1, 0, 2 }, 12, RSIP_E_BAD_PARAM, 0 },
	{ "port range past 65535", { 1, 4, 0, 10, 2, 0, 3, 200, 0xff, 0xf0 }, 10, RSIP_E_ILLEGAL_PARAM, 0 },
	{ "tunnel type 7", { 1, 4, 0, 8, 6, 0, 1, 7 }, 8, RSIP_E_ILLEGAL_PARAM, 0 },
	{ "vendor of 3 bytes", { 1, 2, 0, 10, 12, 0, 3, 0, 1, 2 }, 10, RSIP_E_BAD_PARAM, 0 },
	{ "SPI bad length", { 1, 4, 0, 10, 22, 0, 3, 0, 1, 2 }, 10, RSIP_E_BAD_PARAM, 0 },
	{ "unknown type 99", { 1, 99, 0, 4 }, 4, RSIP_E_UNSUPPORTED_MESSAGE, 0 },
	{ "RSA-IP (not offered)", { 1, 6, 0, 4 }, 4, 0, RSIP_E_UNSUPPORTED_MESSAGE },
	{ "DE-REGISTER without Client ID", { 1, 4, 0, 4 }, 4, 0, RSIP_E_MISSING_PARAM },
	{ "two Client IDs", { 1, 4, 0, 18, 4, 0, 4, 0, 0, 0, 1, 4, 0, 4, 0, 0, 0, 1 }, 18, 0,
	  RSIP_E_DUPLICATE_PARAM },
	{ "two counters", { 1, 2, 0, 18, 11, 0, 4, 0, 0, 0, 1, 11, 0, 4, 0, 0, 0, 2 }, 18, 0,
	  RSIP_E_DUPLICATE_PARAM },
	{ "Bind ID in REGISTER", { 1, 2, 0, 11, 5, 0, 4, 0, 0, 0, 1 }, 11, 0, RSIP_E_EXTRA_PARAM },
};

Test(codec, malformed_messages_get_rfc_errors)
{
	static struct rsip_msg m;
	struct rsip_fields f;

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *t = &bads[i];
		/* Exact-size heap copy so ASan catches any over-read. */
		uint8_t *buf = malloc(t->len);
		uint16_t e;

		cr_assert(buf);
		memcpy(buf, t->bytes, t->len);
		e = rsip_decode(buf, t->len, &m);
		cr_assert_eq(e, t->decode_err, "%s: decode gave %s, want %s", t->what, rsip_error_name(e),
			     rsip_error_name(t->decode_err));
		if (!e) {
			e = rsip_validate(&m, &f);
			cr_assert_eq(e, t->validate_err, "%s: validate gave %s, want %s", t->what,
				     rsip_error_name(e), rsip_error_name(t->validate_err));
		}
		free(buf);
	}
}

Test(codec, oversized_frame_refused)
{
	uint8_t hdr[4] = { 1, 2, 0xff, 0xff };
	uint16_t e;

	cr_assert_eq(rsip_frame_len(hdr, 4, &e), 0);
	cr_assert_eq(e, RSIP_E_BAD_MESSAGE);
	hdr[2] = 0;
	hdr[3] = 8;
	cr_assert_eq(rsip_frame_len(hdr, 4, &e), 8);
}

Test(codec, encoder_overflow_is_reported)
{
	static struct rsip_builder b;
	uint8_t big[1000] = { 0 };

	rsip_begin(&b, RSIP_REGISTER_REQUEST);
	for (int i = 0; i < 10; i++)
		rsip_put_vendor(&b, 1, 1, big, sizeof(big));
	cr_assert(b.overflow);
	cr_assert_eq(rsip_finish(&b), 0);
}

/* Random bytes and random mutations of valid messages never crash. */
Test(codec, random_input_is_safe)
{
	static struct rsip_builder b;
	static struct rsip_msg m;
	struct rsip_fields f;
	unsigned seed = 12345;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = build(&b, types[iter % sizeof(types)]);
		uint8_t *buf = malloc(len);

		cr_assert(buf);
		memcpy(buf, b.buf, len);
		for (int k = 0; k < 1 + iter % 4; k++)
			buf[rand_r(&seed) % len] = (uint8_t)rand_r(&seed);
		if (rsip_decode(buf, len, &m) == RSIP_E_OK)
			(void)rsip_validate(&m, &f);
		free(buf);
	}
}

Test(auth, hello_and_session_macs)
{
	static struct rsip_builder b;
	static struct rsip_msg m;
	uint8_t secret[RSIP_SECRET_LEN], other[RSIP_SECRET_LEN], cn[16], sn[16];
	struct rsip_keys k;
	const uint8_t *pre;
	size_t prelen, len;

	memset(secret, 0x11, sizeof(secret));
	memset(other, 0x22, sizeof(other));
	memset(cn, 1, sizeof(cn));
	memset(sn, 2, sizeof(sn));
	rsip_begin(&b, RSIP_REGISTER_REQUEST);
	len = rsip_seal_hello(&b, secret, "host-1", cn);
	cr_assert(len);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_auth_param(&m, &pre, &prelen), XDNAT_AUTH_HELLO);
	cr_assert_eq(pre[0], 6);
	cr_assert(!memcmp(pre + 1, "host-1", 6));
	cr_assert(rsip_verify(b.buf, len, secret, sizeof(secret), RSIP_HELLO_LABEL));
	cr_assert(!rsip_verify(b.buf, len, other, sizeof(other), RSIP_HELLO_LABEL), "wrong secret accepted");
	b.buf[5] ^= 1; /* tamper */
	cr_assert(!rsip_verify(b.buf, len, secret, sizeof(secret), RSIP_HELLO_LABEL), "tampering undetected");

	rsip_derive(secret, cn, sn, &k);
	cr_assert(memcmp(k.c2s, k.s2c, sizeof(k.c2s)), "both directions share a key");
	rsip_begin(&b, RSIP_FREE_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	len = rsip_seal_mac(&b, k.c2s);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_auth_param(&m, &pre, &prelen), XDNAT_AUTH_MAC);
	cr_assert(rsip_verify(b.buf, len, k.c2s, sizeof(k.c2s), NULL));
	cr_assert(!rsip_verify(b.buf, len, k.s2c, sizeof(k.s2c), NULL), "reflection accepted");
	cr_assert(!rsip_valid_name("a/b", 3));
	cr_assert(!rsip_valid_name("", 0));
}

Test(auth, secret_hex_round_trip)
{
	uint8_t s[RSIP_SECRET_LEN], t[RSIP_SECRET_LEN];
	char hex[2 * RSIP_SECRET_LEN + 2];

	cr_assert_eq(rsip_random(s, sizeof(s)), 0);
	rsip_secret_hex(s, hex);
	strcat(hex, "\n");
	cr_assert_eq(rsip_secret_parse(hex, t), 0);
	cr_assert(!memcmp(s, t, sizeof(s)));
	cr_assert_neq(rsip_secret_parse("abc", t), 0);
	hex[3] = 'z';
	cr_assert_neq(rsip_secret_parse(hex, t), 0);
}

/* ---- Shared IKE ports announcement (XDNAT_VS_SHARED_IKE) ---- */

/* A sealed REGISTER_RESPONSE carrying @s, as xdnatd builds it (build()
 * has put the Message Counter). */
static size_t welcome_with(struct rsip_builder *b, const struct rsip_shared_ike *s,
			   const struct rsip_keys *k, const uint8_t sn[RSIP_NONCE_LEN])
{
	build(b, RSIP_REGISTER_RESPONSE);
	rsip_put_shared_ike(b, s);
	return rsip_seal_welcome(b, k->s2c, sn);
}

Test(shared_ike, round_trip_in_sealed_register_response)
{
	static struct rsip_builder b;
	static struct rsip_msg m;
	struct rsip_fields f;
	struct rsip_shared_ike s = { .n = 3, .port = { 500, 4500, 4501 },
				     .framing = { XDNAT_IKE_FRAMING_IKE, XDNAT_IKE_FRAMING_RFC3948,
						  XDNAT_IKE_FRAMING_RFC3948 } }, got;
	static const uint8_t want[] = { 12, 0, 14, 0x7e, 0xd9, 0, 7, 3, 0x01, 0xf4, 1,
					0x11, 0x94, 2, 0x11, 0x95, 2 };
	uint8_t secret[RSIP_SECRET_LEN], cn[RSIP_NONCE_LEN], sn[RSIP_NONCE_LEN];
	const uint8_t *pre;
	struct rsip_keys k;
	size_t prelen, len;
	int vi = -1;

	memset(secret, 0x33, sizeof(secret));
	memset(cn, 1, sizeof(cn));
	memset(sn, 2, sizeof(sn));
	rsip_derive(secret, cn, sn, &k);
	len = welcome_with(&b, &s, &k, sn);
	cr_assert(len);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_auth_param(&m, &pre, &prelen), XDNAT_AUTH_WELCOME);
	cr_assert(rsip_verify(b.buf, len, k.s2c, RSIP_MAC_LEN, NULL));
	/* The exact bytes on the wire: code 12, length 14, vendor 32473,
	 * sub-type 7, n = 3, then port(2) framing(1) each. */
	for (unsigned i = 0; i < m.n_params; i++)
		if (m.params[i].code == RSIP_P_VENDOR_SPECIFIC && m.params[i].len == sizeof(want) - 3 &&
		    !memcmp(m.params[i].val - 3, want, sizeof(want)))
			vi = (int)i;
	cr_assert_geq(vi, 0, "SHARED_IKE parameter not on the wire as documented");
	cr_assert_lt(vi, (int)m.n_params - 1, "the auth parameter must stay last (MAC covers it)");
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_OK);
	cr_assert_eq(got.n, 3);
	cr_assert(!memcmp(got.port, s.port, sizeof(s.port)));
	cr_assert(!memcmp(got.framing, s.framing, sizeof(s.framing)));
	/* Tampering with the announcement breaks the WELCOME MAC. */
	b.buf[(size_t)(m.params[vi].val - b.buf) + 6] ^= 1;
	cr_assert(!rsip_verify(b.buf, len, k.s2c, RSIP_MAC_LEN, NULL), "tampered announcement accepted");

	/* No announcement: nothing on the wire, find reports none. */
	s.n = 0;
	len = welcome_with(&b, &s, &k, sn);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(f.n_vendor, 1);
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_OK);
	cr_assert_eq(got.n, 0);

	/* The most the wire takes, and one more (the encoder refuses). */
	s.n = RSIP_SHARED_IKE_MAX;
	for (unsigned i = 0; i < s.n; i++) {
		s.port[i] = (uint16_t)(4500 + i);
		s.framing[i] = XDNAT_IKE_FRAMING_RFC3948;
	}
	len = welcome_with(&b, &s, &k, sn);
	cr_assert(len);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_OK);
	cr_assert_eq(got.n, RSIP_SHARED_IKE_MAX);
	cr_assert_eq(got.port[RSIP_SHARED_IKE_MAX - 1], 4500 + RSIP_SHARED_IKE_MAX - 1);
	s.n = RSIP_SHARED_IKE_MAX + 1;
	rsip_begin(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_shared_ike(&b, &s);
	cr_assert(b.overflow);
	cr_assert_eq(rsip_finish(&b), 0);
}

struct bad_vs {
	const char *what;
	uint8_t val[64];
	size_t len;
	uint16_t err;
};

static const struct bad_vs bad_shared[] = {
	{ "empty value", { 0 }, 0, RSIP_E_BAD_PARAM },
	{ "count 0", { 0 }, 1, RSIP_E_BAD_PARAM },
	{ "count 1, no entry", { 1 }, 1, RSIP_E_BAD_PARAM },
	{ "entry cut short", { 1, 0x01, 0xf4 }, 3, RSIP_E_BAD_PARAM },
	{ "trailing byte", { 1, 0x01, 0xf4, 1, 0 }, 5, RSIP_E_BAD_PARAM },
	{ "count 2, one entry", { 2, 0x01, 0xf4, 1 }, 4, RSIP_E_BAD_PARAM },
	{ "count 1, two entries", { 1, 0x01, 0xf4, 1, 0x11, 0x94, 2 }, 7, RSIP_E_BAD_PARAM },
	{ "count above the limit", { RSIP_SHARED_IKE_MAX + 1 }, 1 + 3 * (RSIP_SHARED_IKE_MAX + 1),
	  RSIP_E_BAD_PARAM },
	{ "count 255", { 255 }, 1, RSIP_E_BAD_PARAM },
	{ "port 0", { 1, 0, 0, 1 }, 4, RSIP_E_BAD_PARAM },
	{ "port twice", { 2, 0x11, 0x94, 2, 0x11, 0x94, 2 }, 7, RSIP_E_BAD_PARAM },
	{ "framing 0", { 1, 0x01, 0xf4, 0 }, 4, RSIP_E_ILLEGAL_PARAM },
	{ "framing 3", { 2, 0x01, 0xf4, 1, 0x11, 0x94, 3 }, 7, RSIP_E_ILLEGAL_PARAM },
};

Test(shared_ike, malformed_values_refused)
{
	struct rsip_shared_ike s;

	for (size_t i = 0; i < sizeof(bad_shared) / sizeof(bad_shared[0]); i++) {
		const struct bad_vs *t = &bad_shared[i];
		/* Exact-size heap copy so ASan catches any over-read. */
		uint8_t *val = malloc(t->len ? t->len : 1);
		struct rsip_vendor v = { .vendor = XDNAT_RSIP_VENDOR_ID, .subtype = XDNAT_VS_SHARED_IKE,
					 .len = (uint16_t)t->len, .val = val };
		uint16_t e;

		cr_assert(val);
		memcpy(val, t->val, t->len);
		memset(&s, 0xa5, sizeof(s));
		e = rsip_shared_ike_parse(&v, &s);
		cr_assert_eq(e, t->err, "%s: gave %s, want %s", t->what, rsip_error_name(e),
			     rsip_error_name(t->err));
		cr_assert_eq(s.n, 0, "%s: a refused announcement must leave nothing", t->what);
		free(val);
	}
}

Test(shared_ike, find_in_messages)
{
	static struct rsip_builder b;
	static struct rsip_msg m;
	struct rsip_fields f;
	struct rsip_shared_ike s = { .n = 2, .port = { 500, 4500 },
				     .framing = { XDNAT_IKE_FRAMING_IKE, XDNAT_IKE_FRAMING_RFC3948 } }, got;
	uint8_t badval[] = { 1, 0x01, 0xf4, 9 };
	size_t len;

	/* Repeated: DUPLICATE_PARAM. */
	build(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_shared_ike(&b, &s);
	rsip_put_shared_ike(&b, &s);
	len = rsip_finish(&b);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_DUPLICATE_PARAM);
	cr_assert_eq(got.n, 0);

	/* Malformed inside a well-formed message: the parse error. */
	build(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_SHARED_IKE, badval, sizeof(badval));
	len = rsip_finish(&b);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_ILLEGAL_PARAM);
	cr_assert_eq(got.n, 0);

	/* Another vendor's sub-type 7, and our other sub-types: not it. */
	build(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_vendor(&b, 9, XDNAT_VS_SHARED_IKE, badval, sizeof(badval));
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CERT, badval, sizeof(badval));
	len = rsip_finish(&b);
	cr_assert_eq(rsip_decode(b.buf, len, &m), 0);
	cr_assert_eq(rsip_validate(&m, &f), 0);
	cr_assert_eq(rsip_shared_ike_find(&m, &f, &got), RSIP_E_OK);
	cr_assert_eq(got.n, 0);

	/* Every truncation of a valid announcement is refused, never over-read. */
	build(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_shared_ike(&b, &s);
	len = rsip_finish(&b);
	for (size_t cut = 0; cut < 7; cut++) {
		uint8_t *val = malloc(cut ? cut : 1);
		struct rsip_vendor v = { .vendor = XDNAT_RSIP_VENDOR_ID, .subtype = XDNAT_VS_SHARED_IKE,
					 .len = (uint16_t)cut, .val = val };

		cr_assert(val);
		memcpy(val, b.buf + len - 7, cut);
		cr_assert_eq(rsip_shared_ike_parse(&v, &got), RSIP_E_BAD_PARAM, "cut at %zu", cut);
		free(val);
	}
}
