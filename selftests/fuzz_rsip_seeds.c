// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the seed corpus of selftests/fuzz_rsip_wire.c: valid RSIP messages
 * of every type, built with the real encoder (loader/rsip/rsip_wire.c) and sealed
 * with the fuzzer's fixed test secret where xdnat authenticates them, plus a
 * few well-formed messages the server refuses and one stream of several
 * messages.  Deterministic, so the committed files only change when the
 * encoder does:
 *
 *   make fuzz-seeds        # rewrites selftests/fuzz/rsip_wire/
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rsip_auth.h"
#include "rsip_wire.h"

/* Same values as selftests/fuzz_rsip_wire.c. */
static const uint8_t test_secret[RSIP_SECRET_LEN] = {
	0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
static const uint8_t test_cn[RSIP_NONCE_LEN] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
static const uint8_t test_sn[RSIP_NONCE_LEN] = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 };

static const char *dir;
static struct rsip_builder b;
static struct rsip_keys keys;
static uint8_t stream[3 * RSIP_MAX_MSG];
static size_t stream_len;

static void out(const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	FILE *f;

	if (!len) {
		fprintf(stderr, "fuzz_rsip_seeds: %s did not encode\n", name);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "fuzz_rsip_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Finish @b as @auth (0: unauthenticated) and write it. */
static void emit(const char *name, int auth)
{
	size_t len;

	switch (auth) {
	case XDNAT_AUTH_HELLO: len = rsip_seal_hello(&b, test_secret, "fuzz-host", test_cn); break;
	case XDNAT_AUTH_WELCOME: len = rsip_seal_welcome(&b, keys.s2c, test_sn); break;
	case XDNAT_AUTH_MAC: len = rsip_seal_mac(&b, keys.c2s); break;
	default: len = rsip_finish(&b);
	}
	out(name, b.buf, len);
	if (stream_len + len <= sizeof(stream) && (!strncmp(name, "02-", 3) || !strncmp(name, "08-", 3) ||
						    !strncmp(name, "12-", 3))) {
		memcpy(stream + stream_len, b.buf, len);
		stream_len += len;
	}
}

int main(int argc, char **argv)
{
	uint16_t ports[5] = { 40000, 40001, 40002, 40003, 40004 }, range = 30000;
	uint32_t spis[3] = { 0x10000, 0x10001, 0x10002 }, spi = 0x20000;
	uint8_t v6[17] = { RSIP_ADDR_IPV6, 0x20, 0x01, 0x0d, 0xb8 };
	uint8_t mask[5] = { RSIP_ADDR_IPV4_NETMASK, 255, 255, 255, 0 };
	uint8_t fqdn[] = "\x04host.example";
	uint8_t der[24] = { 0x30, 0x16, 0x02, 0x01, 0x01 };
	static uint8_t big[RSIP_MAX_MSG];
	uint16_t many_ports[128];
	uint32_t many_spis[65];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	rsip_derive(test_secret, test_cn, test_sn, &keys);

	rsip_build_error(&b, RSIP_E_BAD_BIND_ID, true, 3, 7, 9);
	emit("01-error-response", 0);
	rsip_begin(&b, RSIP_ERROR_RESPONSE);
	rsip_put_u16(&b, RSIP_P_ERROR, RSIP_E_LOCAL_ADDRPORT_UNAVAILABLE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 4);
	emit("01-error-response-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_REGISTER_REQUEST);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 1);
	emit("02-register-request-hello", XDNAT_AUTH_HELLO);
	rsip_begin(&b, RSIP_REGISTER_REQUEST);
	emit("02-register-request-bare", 0);

	rsip_begin(&b, RSIP_REGISTER_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 600);
	rsip_put_flow(&b, RSIP_FLOW_MACRO, RSIP_FLOW_NONE);
	rsip_put_u8(&b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSAP_IP);
	rsip_put_u8(&b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSIPSEC);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 1);
	emit("03-register-response-welcome", XDNAT_AUTH_WELCOME);
	{
		/* xdnatd --shared-ike-ports 500,4500,4501 (docs/SHARED-IKE.md). */
		const struct rsip_shared_ike sh = { .n = 3, .port = { 500, 4500, 4501 },
			.framing = { XDNAT_IKE_FRAMING_IKE, XDNAT_IKE_FRAMING_RFC3948,
				     XDNAT_IKE_FRAMING_RFC3948 } };

		rsip_begin(&b, RSIP_REGISTER_RESPONSE);
		rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
		rsip_put_u32(&b, RSIP_P_LEASE_TIME, 600);
		rsip_put_flow(&b, RSIP_FLOW_MACRO, RSIP_FLOW_NONE);
		rsip_put_u8(&b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSAP_IP);
		rsip_put_u8(&b, RSIP_P_RSIP_METHOD, RSIP_METHOD_RSIPSEC);
		rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
		rsip_put_shared_ike(&b, &sh);
		rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 1);
		emit("03-register-response-shared-ike-welcome", XDNAT_AUTH_WELCOME);
	}

	rsip_begin(&b, RSIP_DEREGISTER_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 9);
	emit("04-deregister-request-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_DEREGISTER_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 9);
	emit("05-deregister-response-mac", XDNAT_AUTH_MAC);

	/* RSA-IP and LISTEN: well-formed, refused by xdnatd. */
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSA_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, 0, true);
	rsip_put_addr4(&b, 0, true);
	emit("06-assign-request-rsa-ip", 0);
	rsip_begin(&b, RSIP_ASSIGN_RESPONSE_RSA_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	emit("07-assign-response-rsa-ip", 0);

	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 100, NULL, 0);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 0, NULL, 0);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 2);
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CSR, der, sizeof(der));
	emit("08-assign-request-rsap-ip-csr-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 3);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_raw(&b, RSIP_P_ADDRESS, mask, sizeof(mask));
	rsip_put_ports(&b, 5, ports, 5);
	rsip_put_raw(&b, RSIP_P_ADDRESS, v6, sizeof(v6));
	rsip_put_ports(&b, 16, &range, 1);
	emit("08-assign-request-rsap-ip-list-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_ASSIGN_RESPONSE_RSAP_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_ports(&b, 100, &range, 1);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 0, NULL, 0);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_addr4(&b, htonl(0x0a000001), false);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 2);
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CERT, der, sizeof(der));
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CACERT, der, sizeof(der));
	emit("09-assign-response-rsap-ip-cert-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_EXTEND_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 5);
	emit("10-extend-request-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_EXTEND_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 5);
	emit("11-extend-response-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_FREE_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 6);
	emit("12-free-request-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_FREE_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 6);
	emit("13-free-response-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_QUERY_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u16(&b, RSIP_P_INDICATOR, 1);
	rsip_put_addr4(&b, htonl(0x0a000005), false);
	rsip_put_u16(&b, RSIP_P_INDICATOR, 2);
	rsip_put_addr4(&b, htonl(0x0a000000), false);
	rsip_put_raw(&b, RSIP_P_ADDRESS, mask, sizeof(mask));
	rsip_put_raw(&b, RSIP_P_ADDRESS, fqdn, sizeof(fqdn) - 1);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 7);
	emit("14-query-request-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_QUERY_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u16(&b, RSIP_P_INDICATOR, 1);
	rsip_put_addr4(&b, htonl(0x0a000005), false);
	rsip_put_u16(&b, RSIP_P_INDICATOR, 4);
	rsip_put_addr4(&b, htonl(0xc6336400), false);
	rsip_put_raw(&b, RSIP_P_ADDRESS, mask, sizeof(mask));
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 7);
	emit("15-query-response-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_LISTEN_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 1, &range, 1);
	emit("16-listen-request", 0);
	rsip_begin(&b, RSIP_LISTEN_RESPONSE);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	emit("17-listen-response", 0);

	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, 0, true);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 1, &range, 1);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_spi(&b, 1000, NULL, 0);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 8);
	emit("22-assign-request-rsipsec-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_addr4(&b, htonl(0xc6336401), false);
	rsip_put_spi(&b, 3, spis, 3);
	emit("22-assign-request-rsipsec-list-mac", XDNAT_AUTH_MAC);

	rsip_begin(&b, RSIP_ASSIGN_RESPONSE_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_addr4(&b, 0, true);
	rsip_put_spi(&b, 65535, &spi, 1);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	rsip_put_addr4(&b, htonl(0x0a000001), false);
	rsip_put_u32(&b, RSIP_P_MESSAGE_COUNTER, 8);
	emit("23-assign-response-rsipsec-mac", XDNAT_AUTH_MAC);

	/* At the limits: 127 ports, 64 SPIs, 64 parameters, 8 Vendor
	 * Specific parameters, 4096 bytes.  One step past each is an error. */
	for (unsigned i = 0; i < 128; i++)
		many_ports[i] = (uint16_t)(50000 + 2 * i);
	for (unsigned i = 0; i < 65; i++)
		many_spis[i] = 0x30000 + 3 * i;
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_ports(&b, 127, many_ports, 127);
	rsip_put_addr4(&b, 0, true);
	rsip_put_ports(&b, 0, NULL, 0);
	emit("08-assign-request-rsap-ip-127-ports-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_ASSIGN_RESPONSE_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_addr4(&b, 0, true);
	rsip_put_spi(&b, 64, many_spis, 64);
	rsip_put_u32(&b, RSIP_P_LEASE_TIME, 60);
	rsip_put_u8(&b, RSIP_P_TUNNEL_TYPE, RSIP_TUNNEL_IPIP);
	emit("23-assign-response-rsipsec-64-spis-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_QUERY_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	for (unsigned i = 0; i < 31; i++) {
		rsip_put_u16(&b, RSIP_P_INDICATOR, 1);
		rsip_put_addr4(&b, htonl(0x0a000100 + i), false);
	}
	emit("14-query-request-64-params-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_EXTEND_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	for (uint16_t i = 0; i < 7; i++)
		rsip_put_vendor(&b, i == 0 ? XDNAT_RSIP_VENDOR_ID : 1000 + i, i, der, i);
	emit("10-extend-request-8-vendor-mac", XDNAT_AUTH_MAC);
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, 0, true);
	rsip_put_addr4(&b, 0, true);
	memset(big, 0x5a, sizeof(big));
	rsip_put_vendor(&b, XDNAT_RSIP_VENDOR_ID, XDNAT_VS_CSR, big,
			RSIP_MAX_MSG - b.len - 2 * RSIP_PARAM_HDR_LEN - 8 - RSIP_MAC_LEN);
	emit("22-assign-request-rsipsec-4096-bytes-mac", XDNAT_AUTH_MAC);

	/* One past each limit (decode or validate refuses them). */
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSAP_IP);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_addr4(&b, htonl(0xc0000201), false);
	rsip_put_ports(&b, 128, many_ports, 128);
	emit("bad-128-ports", 0);
	rsip_begin(&b, RSIP_ASSIGN_REQUEST_RSIPSEC);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_spi(&b, 65, many_spis, 65);
	emit("bad-65-spis", 0);
	rsip_begin(&b, RSIP_QUERY_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	for (unsigned i = 0; i < 32; i++) {
		rsip_put_u16(&b, RSIP_P_INDICATOR, 1);
		rsip_put_addr4(&b, htonl(0x0a000100 + i), false);
	}
	emit("bad-65-params", 0);
	rsip_begin(&b, RSIP_FREE_REQUEST);
	rsip_put_u32(&b, RSIP_P_CLIENT_ID, 7);
	rsip_put_u32(&b, RSIP_P_BIND_ID, 9);
	for (uint16_t i = 0; i < 8; i++)
		rsip_put_vendor(&b, 2000 + i, i, der, i);
	emit("bad-9-vendor-mac", XDNAT_AUTH_MAC);

	/* REGISTER, ASSIGN, FREE back to back: the server's framing loop. */
	out("99-stream-register-assign-free", stream, stream_len);
	return 0;
}
