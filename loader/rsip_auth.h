/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Authentication of RSIP messages between xdnat-host and xdnatd.
 *
 * RFC 3103 leaves authentication to the deployment; xdnat carries it in the
 * RFC's own extension point, the Vendor Specific parameter (code 12), always
 * as the LAST parameter of a message, whose last 32 bytes are an
 * HMAC-SHA256 over every byte of the message before them (header with the
 * Overall Length included).  Keys come from a 32-byte secret per host that
 * the operator creates with `xdnatctl enroll` and copies to the host.
 *
 *   REGISTER_REQUEST  ... | VS(sub=HELLO:   idlen(1) id client_nonce(16) mac)
 *                     mac = HMAC(secret, "xdnat-rsip-1 hello" | msg)
 *   REGISTER_RESPONSE ... | VS(sub=WELCOME: server_nonce(16) mac)
 *                     mac = HMAC(K_s2c, msg)
 *   every later message on the connection: ... | VS(sub=MAC: mac)
 *                     mac = HMAC(K_c2s or K_s2c, msg)
 *   K_c2s = HMAC(secret, "xdnat-rsip-1 c2s" | client_nonce | server_nonce)
 *   K_s2c = HMAC(secret, "xdnat-rsip-1 s2c" | client_nonce | server_nonce)
 *
 * The WELCOME MAC proves to the host that the router knows its secret and
 * answers this very request (the client nonce is fresh); requests after it
 * carry a Message Counter that must increase, under a key bound to the
 * server's fresh nonce, so they cannot be replayed on another connection or
 * reflected back.
 */
#ifndef XDNAT_RSIP_AUTH_H
#define XDNAT_RSIP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rsip_wire.h"

/* RFC 5612's enterprise number for documentation use, until xdnat has one. */
#define XDNAT_RSIP_VENDOR_ID     32473
#define XDNAT_AUTH_HELLO         1
#define XDNAT_AUTH_WELCOME       2
#define XDNAT_AUTH_MAC           3
/* Host certificates (issue 4, docs/LCA.md) ride in further Vendor Specific
 * parameters of the same vendor, before the auth parameter (so the MAC
 * covers them):
 *   ASSIGN_REQUEST_* / EXTEND_REQUEST  VS(sub=CSR:    DER PKCS#10 request)
 *   the matching response              VS(sub=CERT:   DER host certificate)
 *                                      VS(sub=CACERT: DER LCA certificate) */
#define XDNAT_VS_CSR             4
#define XDNAT_VS_CERT            5
#define XDNAT_VS_CACERT          6

#define RSIP_SECRET_LEN          32
#define RSIP_NONCE_LEN           16
#define RSIP_MAC_LEN             32
#define RSIP_KEYID_MAX           64

struct rsip_keys {
	uint8_t c2s[RSIP_MAC_LEN];
	uint8_t s2c[RSIP_MAC_LEN];
};

/* Host names (key ids): [A-Za-z0-9_.-]{1,64}. */
bool rsip_valid_name(const char *name, size_t len);

int rsip_random(void *buf, size_t len);
/* 64 hex digits <-> 32 bytes; parse ignores one trailing newline. */
int rsip_secret_parse(const char *hex, uint8_t out[RSIP_SECRET_LEN]);
void rsip_secret_hex(const uint8_t s[RSIP_SECRET_LEN], char out[2 * RSIP_SECRET_LEN + 1]);
/* Read a secret file (refuses group/world-readable files); errors printed. */
int rsip_secret_load(const char *path, uint8_t out[RSIP_SECRET_LEN]);

void rsip_derive(const uint8_t secret[RSIP_SECRET_LEN], const uint8_t cn[RSIP_NONCE_LEN],
		 const uint8_t sn[RSIP_NONCE_LEN], struct rsip_keys *k);

/* Append the auth parameter (HELLO, WELCOME or MAC), finish the message and
 * fill in its MAC.  Returns the message length, 0 on overflow. */
size_t rsip_seal_hello(struct rsip_builder *b, const uint8_t secret[RSIP_SECRET_LEN],
		       const char *name, const uint8_t cn[RSIP_NONCE_LEN]);
size_t rsip_seal_welcome(struct rsip_builder *b, const uint8_t key[RSIP_MAC_LEN],
			 const uint8_t sn[RSIP_NONCE_LEN]);
size_t rsip_seal_mac(struct rsip_builder *b, const uint8_t key[RSIP_MAC_LEN]);

/*
 * The auth parameter of a decoded message: the last parameter, Vendor
 * Specific with our vendor id.  Returns its subtype (XDNAT_AUTH_*) and the
 * value before the MAC in *pre and *prelen, or 0 if there is none or it is
 * malformed.
 */
int rsip_auth_param(const struct rsip_msg *m, const uint8_t **pre, size_t *prelen);
/* Check the MAC (last 32 bytes) of @buf (@len bytes) under @key with @label (NULL
 * for none).  Constant-time comparison. */
bool rsip_verify(const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen,
		 const char *label);

#define RSIP_HELLO_LABEL "xdnat-rsip-1 hello"

#endif
