// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer harness for the RSIP codec (loader/rsip/rsip_wire.c) and the parsing
 * side of its authentication (loader/rsip/rsip_auth.c): the bytes a LAN host
 * sends to xdnatd's RSIP port.  Built and run by `make fuzz` and
 * selftests/e2e_fuzz_rsip.sh; seed corpus in selftests/fuzz/rsip_wire/
 * (selftests/fuzz_rsip_seeds.c writes it).
 *
 * Each input is used three ways:
 *   1. as one message: rsip_decode() of the whole input;
 *   2. as a TCP byte stream, framed the way the server's conn_read() frames
 *      it (rsip_frame_len() on what has arrived, then the message), and the
 *      way the client frames a response (rsip_frame_len() on 4 bytes);
 *   3. every message that decodes is checked:
 *      - the error codes are the ones the API documents;
 *      - rsip_validate()'s slot, counter, vendor and repeat indices point at
 *        parameters of the right code;
 *      - every typed view (address, ports, SPI, vendor, u8/u16/u32) is taken
 *        of every parameter, and stays within its bounds;
 *      - round trip: re-encoding the decoded parameters, raw and through the
 *        typed encoders, gives the same bytes, and decoding those gives the
 *        same message (decode(encode(decode(x))) == decode(x));
 *      - the shared-IKE announcement (XDNAT_VS_SHARED_IKE) is parsed as
 *        xdnat-host parses it, and re-encoded when it is accepted;
 *      - the auth parameter is parsed as the server does (HELLO name and
 *        nonce) and its MAC checked under a fixed test secret; then the
 *        message is sealed (HELLO, WELCOME, MAC) with that secret and must
 *        decode, parse and verify, and fail to verify once tampered with;
 *   and every decode error is answered with the ERROR_RESPONSE the server
 *   would send, which must itself decode and validate.
 * A broken invariant aborts (libFuzzer reports it as a crash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsip_auth.h"
#include "rsip_wire.h"

#define CHECK(c)                                                                  \
	do {                                                                      \
		if (!(c)) {                                                       \
			fprintf(stderr, "fuzz_rsip_wire: %s:%d: invariant broken: %s\n", \
				__FILE__, __LINE__, #c);                          \
			abort();                                                  \
		}                                                                 \
	} while (0)

static const uint8_t test_secret[RSIP_SECRET_LEN] = {
	0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const uint8_t test_cn[RSIP_NONCE_LEN] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
static const uint8_t test_sn[RSIP_NONCE_LEN] = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 };
#define TEST_HOST "fuzz-host"

/* Large, so static (the harness is single-threaded). */
static struct rsip_msg m1, m2;
static struct rsip_builder b1, b2;
static struct rsip_keys keys;

static bool decode_err_ok(uint16_t e)
{
	return e == RSIP_E_OK || e == RSIP_E_BAD_MESSAGE || e == RSIP_E_UNSUPPORTED_RSIP_VERSION ||
	       e == RSIP_E_BAD_PARAM || e == RSIP_E_ILLEGAL_PARAM || e == RSIP_E_UNSUPPORTED_MESSAGE;
}

static bool validate_err_ok(uint16_t e)
{
	return e == RSIP_E_OK || e == RSIP_E_UNSUPPORTED_MESSAGE || e == RSIP_E_MISSING_PARAM ||
	       e == RSIP_E_DUPLICATE_PARAM || e == RSIP_E_EXTRA_PARAM;
}

/* Same message: header and every parameter (code, length, offset, value). */
static void same_msg(const struct rsip_msg *a, const uint8_t *abuf, const struct rsip_msg *b,
		     const uint8_t *bbuf)
{
	CHECK(a->version == b->version && a->type == b->type && a->length == b->length);
	CHECK(a->n_params == b->n_params);
	for (unsigned i = 0; i < a->n_params; i++) {
		const struct rsip_param *p = &a->params[i], *q = &b->params[i];

		CHECK(p->code == q->code && p->len == q->len);
		CHECK(p->val - abuf == q->val - bbuf);
		CHECK(!p->len || !memcmp(p->val, q->val, p->len));
	}
}

/* Typed views of one parameter, and its re-encoding through the typed
 * encoder of its code into @b. */
static void typed(const struct rsip_param *p, struct rsip_builder *b)
{
	struct rsip_addr a;
	struct rsip_ports ports;
	struct rsip_spi s;
	struct rsip_vendor v;
	uint16_t ea = rsip_param_addr(p, &a), ep = rsip_param_ports(p, &ports);
	uint16_t es = rsip_param_spi(p, &s), ev = rsip_param_vendor(p, &v);

	/* A view of the wrong code refuses; of the right code it agrees with
	 * the decoder (which accepted the parameter). */
	CHECK((ea == RSIP_E_OK) == (p->code == RSIP_P_ADDRESS));
	CHECK((ep == RSIP_E_OK) == (p->code == RSIP_P_PORTS));
	CHECK((es == RSIP_E_OK) == (p->code == RSIP_P_SPI));
	CHECK((ev == RSIP_E_OK) == (p->code == RSIP_P_VENDOR_SPECIFIC));
	(void)rsip_param_u8(p);
	(void)rsip_param_u16(p);
	(void)rsip_param_u32(p);

	switch (p->code) {
	case RSIP_P_ADDRESS:
		CHECK(a.len == p->len - 1u);
		CHECK(a.type >= RSIP_ADDR_IPV4 && a.type <= RSIP_ADDR_FQDN);
		if (a.type == RSIP_ADDR_IPV4 && (a.len == 0 || a.len == 4)) {
			uint32_t be = 0;

			memcpy(&be, a.bytes, a.len);
			rsip_put_addr4(b, be, a.len == 0);
		} else {
			uint8_t raw[1 + sizeof(a.bytes)];

			raw[0] = a.type;
			memcpy(raw + 1, a.bytes, a.len);
			rsip_put_raw(b, RSIP_P_ADDRESS, raw, 1u + a.len);
		}
		break;
	case RSIP_P_PORTS:
		CHECK(ports.count <= 127 && (ports.count <= 1 || ports.count == ports.number));
		CHECK(ports.count != 1 || (uint32_t)ports.port[0] + ports.number - 1 <= 65535);
		rsip_put_ports(b, ports.number, ports.port, ports.count);
		break;
	case RSIP_P_SPI:
		CHECK(s.count <= 64 && (s.count <= 1 || s.count == s.number));
		CHECK(s.count != 1 || (uint64_t)s.spi[0] + s.number - 1 <= 0xffffffffull);
		rsip_put_spi(b, s.number, s.spi, s.count);
		break;
	case RSIP_P_VENDOR_SPECIFIC: {
		struct rsip_shared_ike sh;

		CHECK(v.len == p->len - 4u && v.val == p->val + 4);
		if (v.vendor == XDNAT_RSIP_VENDOR_ID && v.subtype == XDNAT_VS_SHARED_IKE) {
			/* The shared-IKE announcement as xdnat-host parses it;
			 * accepted ones re-encode through its encoder. */
			uint16_t e = rsip_shared_ike_parse(&v, &sh);

			CHECK(e == RSIP_E_OK || e == RSIP_E_BAD_PARAM || e == RSIP_E_ILLEGAL_PARAM);
			CHECK((e == RSIP_E_OK) == (sh.n > 0));
			CHECK(sh.n <= RSIP_SHARED_IKE_MAX && (!sh.n || v.len == 1 + 3 * sh.n));
			for (unsigned i = 0; i < sh.n; i++)
				CHECK(sh.port[i] && (sh.framing[i] == XDNAT_IKE_FRAMING_IKE ||
						     sh.framing[i] == XDNAT_IKE_FRAMING_RFC3948));
			if (e == RSIP_E_OK) {
				rsip_put_shared_ike(b, &sh);
				break;
			}
		}
		rsip_put_vendor(b, v.vendor, v.subtype, v.val, v.len);
		break;
	}
	case RSIP_P_FLOW_POLICY:
		CHECK(p->len == 2);
		rsip_put_flow(b, p->val[0], p->val[1]);
		break;
	case RSIP_P_TUNNEL_TYPE:
	case RSIP_P_RSIP_METHOD:
		CHECK(p->len == 1);
		rsip_put_u8(b, p->code, rsip_param_u8(p));
		break;
	case RSIP_P_ERROR:
		(void)rsip_error_name(rsip_param_u16(p)); /* as xdnat-host logs it */
		/* fall through */
	case RSIP_P_INDICATOR:
		CHECK(p->len == 2);
		rsip_put_u16(b, p->code, rsip_param_u16(p));
		break;
	case RSIP_P_LEASE_TIME:
	case RSIP_P_CLIENT_ID:
	case RSIP_P_BIND_ID:
	case RSIP_P_MESSAGE_COUNTER:
		CHECK(p->len == 4);
		rsip_put_u32(b, p->code, rsip_param_u32(p));
		break;
	default:
		CHECK(!"decoder accepted an unknown parameter code");
	}
}

static void check_fields(const struct rsip_msg *m, const struct rsip_fields *f)
{
	for (unsigned s = 0; s < RSIP_MAX_SLOTS; s++) {
		CHECK(f->slot[s] >= -1 && f->slot[s] < (int)m->n_params);
		if (f->slot[s] >= 0) {
			uint8_t c = m->params[f->slot[s]].code;

			CHECK(c != RSIP_P_MESSAGE_COUNTER && c != RSIP_P_VENDOR_SPECIFIC);
		}
	}
	CHECK(f->counter >= -1 && f->counter < (int)m->n_params);
	if (f->counter >= 0)
		CHECK(m->params[f->counter].code == RSIP_P_MESSAGE_COUNTER);
	CHECK(f->n_vendor <= sizeof(f->vendor) / sizeof(f->vendor[0]));
	for (unsigned i = 0; i < f->n_vendor; i++)
		CHECK(f->vendor[i] >= 0 && f->vendor[i] < (int)m->n_params &&
		      m->params[f->vendor[i]].code == RSIP_P_VENDOR_SPECIFIC);
	CHECK(f->n_repeat <= m->n_params);
	for (unsigned i = 0; i < f->n_repeat; i++)
		CHECK(f->repeat[i] >= 0 && f->repeat[i] < (int)m->n_params);
}

/* The auth parameter as xdnatd and xdnat-host read it. */
static void parse_auth(const struct rsip_msg *m, const uint8_t *buf, size_t len)
{
	const uint8_t *pre = NULL;
	size_t prelen = 0;
	int auth = rsip_auth_param(m, &pre, &prelen);

	switch (auth) {
	case 0:
		return;
	case XDNAT_AUTH_HELLO:
		/* do_register(): name, then the client nonce. */
		CHECK(prelen == 1u + pre[0] + RSIP_NONCE_LEN && pre[0] >= 1);
		CHECK(pre + prelen + RSIP_MAC_LEN == buf + len);
		if (rsip_valid_name((const char *)pre + 1, pre[0]) && pre[0] == strlen(TEST_HOST) &&
		    !memcmp(pre + 1, TEST_HOST, pre[0]))
			(void)rsip_verify(buf, len, test_secret, RSIP_SECRET_LEN, RSIP_HELLO_LABEL);
		break;
	case XDNAT_AUTH_WELCOME:
		CHECK(prelen == RSIP_NONCE_LEN && pre + prelen + RSIP_MAC_LEN == buf + len);
		(void)rsip_verify(buf, len, keys.s2c, RSIP_MAC_LEN, NULL);
		break;
	case XDNAT_AUTH_MAC:
		CHECK(prelen == 0 && pre + RSIP_MAC_LEN == buf + len);
		(void)rsip_verify(buf, len, keys.c2s, RSIP_MAC_LEN, NULL);
		break;
	default:
		CHECK(!"unknown auth subtype");
	}
}

/* Seal @m's parameters (its own auth parameter dropped) with the test secret
 * as @kind: the result decodes, carries that auth parameter and verifies,
 * and stops verifying when one byte changes. */
static void reseal(const struct rsip_msg *m, int kind, unsigned flip)
{
	const uint8_t *pre;
	size_t prelen, len;
	unsigned n = m->n_params;
	const uint8_t *key = kind == XDNAT_AUTH_HELLO ? test_secret :
			     kind == XDNAT_AUTH_WELCOME ? keys.s2c : keys.c2s;
	const char *label = kind == XDNAT_AUTH_HELLO ? RSIP_HELLO_LABEL : NULL;
	size_t keylen = kind == XDNAT_AUTH_HELLO ? RSIP_SECRET_LEN : RSIP_MAC_LEN;
	uint16_t e;

	if (rsip_auth_param(m, &pre, &prelen))
		n--;
	rsip_begin(&b2, m->type);
	for (unsigned i = 0; i < n; i++)
		rsip_put_raw(&b2, m->params[i].code, m->params[i].val, m->params[i].len);
	if (kind == XDNAT_AUTH_HELLO)
		len = rsip_seal_hello(&b2, test_secret, TEST_HOST, test_cn);
	else if (kind == XDNAT_AUTH_WELCOME)
		len = rsip_seal_welcome(&b2, keys.s2c, test_sn);
	else
		len = rsip_seal_mac(&b2, keys.c2s);
	if (!len) {
		CHECK(b2.overflow);
		return;
	}
	e = rsip_decode(b2.buf, len, &m2);
	if (n + 1 > RSIP_MAX_PARAMS) {
		CHECK(e == RSIP_E_BAD_MESSAGE);
		return;
	}
	CHECK(e == RSIP_E_OK);
	CHECK(rsip_auth_param(&m2, &pre, &prelen) == kind);
	CHECK(rsip_verify(b2.buf, len, key, keylen, label));
	CHECK(!rsip_verify(b2.buf, len, kind == XDNAT_AUTH_MAC ? keys.s2c : keys.c2s, RSIP_MAC_LEN,
			   label));
	b2.buf[flip % len] ^= 0x01;
	CHECK(!rsip_verify(b2.buf, len, key, keylen, label));
}

/* One framed message of @len bytes (an exact-size copy: ASan sees any read
 * past it). */
static void one_message(const uint8_t *buf, size_t len)
{
	struct rsip_fields f;
	uint16_t e = rsip_decode(buf, len, &m1), ev;
	size_t n;

	CHECK(decode_err_ok(e));
	(void)rsip_msg_name(m1.type);
	(void)rsip_error_name(e);
	if (e != RSIP_E_OK) {
		/* The server's answer to it must be a valid message. */
		bool has_counter = len & 1;

		n = rsip_build_error(&b2, e, has_counter, (uint32_t)len, has_counter ? 7 : 0,
				     len & 2 ? 9 : 0);
		CHECK(n > 0);
		CHECK(rsip_decode(b2.buf, n, &m2) == RSIP_E_OK);
		CHECK(rsip_validate(&m2, &f) == RSIP_E_OK);
		CHECK(rsip_param_u16(&m2.params[f.slot[RSIP_S_ERR_ERROR]]) == e);
		return;
	}
	CHECK(m1.version == RSIP_VERSION && m1.length == len && len <= RSIP_MAX_MSG);
	CHECK(m1.n_params <= RSIP_MAX_PARAMS);

	ev = rsip_validate(&m1, &f);
	CHECK(validate_err_ok(ev));
	if (ev == RSIP_E_OK) {
		struct rsip_shared_ike sh;
		uint16_t es;

		check_fields(&m1, &f);
		/* As xdnat-host looks for the shared-IKE announcement. */
		es = rsip_shared_ike_find(&m1, &f, &sh);
		CHECK(es == RSIP_E_OK || es == RSIP_E_BAD_PARAM || es == RSIP_E_ILLEGAL_PARAM ||
		      es == RSIP_E_DUPLICATE_PARAM);
		CHECK(sh.n <= RSIP_SHARED_IKE_MAX && (es == RSIP_E_OK || !sh.n));
	}

	/* Round trip, raw: the decoder consumed every byte, in order. */
	rsip_begin(&b1, m1.type);
	for (unsigned i = 0; i < m1.n_params; i++)
		rsip_put_raw(&b1, m1.params[i].code, m1.params[i].val, m1.params[i].len);
	n = rsip_finish(&b1);
	CHECK(n == len && !memcmp(b1.buf, buf, len));
	CHECK(rsip_decode(b1.buf, n, &m2) == RSIP_E_OK);
	same_msg(&m1, buf, &m2, b1.buf);
	{
		struct rsip_fields f2;

		CHECK(rsip_validate(&m2, &f2) == ev);
		CHECK(ev != RSIP_E_OK || !memcmp(&f, &f2, sizeof(f)));
	}

	/* Round trip through the typed views and encoders. */
	rsip_begin(&b1, m1.type);
	for (unsigned i = 0; i < m1.n_params; i++)
		typed(&m1.params[i], &b1);
	n = rsip_finish(&b1);
	CHECK(n == len && !memcmp(b1.buf, buf, len));
	CHECK(rsip_decode(b1.buf, n, &m2) == RSIP_E_OK);
	same_msg(&m1, buf, &m2, b1.buf);

	parse_auth(&m1, buf, len);
	reseal(&m1, XDNAT_AUTH_HELLO + (int)(len % 3), (unsigned)len * 7u + m1.n_params);
}

static void message_copy(const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	CHECK(copy);
	memcpy(copy, p, len);
	one_message(copy, len);
	free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	rsip_derive(test_secret, test_cn, test_sn, &keys);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	uint16_t err;

	/* 1. The whole input as one message (libFuzzer's buffer is exact-size). */
	one_message(data, size);

	/* 2a. As a stream, framed like the server's conn_read(). */
	while (size - off >= RSIP_HDR_LEN) {
		size_t need = rsip_frame_len(data + off, size - off, &err);

		if (!need) {
			CHECK(err == RSIP_E_UNSUPPORTED_RSIP_VERSION || err == RSIP_E_BAD_MESSAGE);
			break; /* the server answers with err and hangs up */
		}
		CHECK(err == RSIP_E_OK && need >= RSIP_HDR_LEN && need <= RSIP_MAX_MSG);
		if (size - off < need)
			break; /* wait for more */
		if (off || need != size)
			message_copy(data + off, need);
		off += need;
	}
	/* Fewer than 4 bytes: nothing framed, no error. */
	if (size - off < RSIP_HDR_LEN)
		CHECK(rsip_frame_len(data + off, size - off, &err) == 0 && err == RSIP_E_OK);

	/* 2b. The client reads 4 bytes, frames on them alone, then the rest. */
	if (size >= RSIP_HDR_LEN) {
		size_t need = rsip_frame_len(data, RSIP_HDR_LEN, &err);

		CHECK((need == 0) == (err != RSIP_E_OK));
		if (need && need <= size && need != size)
			message_copy(data, need);
	}
	return 0;
}
