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
/* Shared IKE ports (issue 8, docs/SHARED-IKE.md): a router running with
 * xdnatd --shared-ike-ports announces them in its REGISTER_RESPONSE, before
 * the WELCOME (so its MAC covers them):
 *   REGISTER_RESPONSE  VS(sub=SHARED_IKE: n(1) n x { port(2) framing(1) })
 * n = 1..RSIP_SHARED_IKE_MAX, the value exactly 1 + 3n bytes, ports
 * non-zero and distinct, framing XDNAT_IKE_FRAMING_*.  At most one per
 * message.  No such parameter: the router shares no port. */
#define XDNAT_VS_SHARED_IKE      7
/* The exact size of an SPI binding (issue 13), whose RSIP Number field stops
 * at 65535: ASSIGN_RESPONSE_RSIPSEC  VS(sub=SPI_COUNT: count(4), network
 * order), covered by the MAC.  Older routers send none. */
#define XDNAT_VS_SPI_COUNT       8
#define XDNAT_IKE_FRAMING_IKE     1  /* plain IKE (RFC 7296), as on UDP 500 */
#define XDNAT_IKE_FRAMING_RFC3948 2  /* non-ESP marker / ESP-in-UDP (RFC 3948) */
#define RSIP_SHARED_IKE_MAX      16  /* wire bound; xdnatd shares at most 8 */

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

/* The shared IKE ports a router announces (XDNAT_VS_SHARED_IKE). */
struct rsip_shared_ike {
	unsigned n;                            /* 0: none announced */
	uint16_t port[RSIP_SHARED_IKE_MAX];    /* host order, as on the wire */
	uint8_t framing[RSIP_SHARED_IKE_MAX];  /* XDNAT_IKE_FRAMING_* */
};

/* Append the SHARED_IKE parameter (nothing when s->n is 0; sets
 * b->overflow when s->n is above RSIP_SHARED_IKE_MAX). */
void rsip_put_shared_ike(struct rsip_builder *b, const struct rsip_shared_ike *s);
/* Parse the value of a SHARED_IKE parameter (vendor and subtype are the
 * caller's to check).  RSIP_E_OK, RSIP_E_BAD_PARAM (length, count, a zero
 * or repeated port) or RSIP_E_ILLEGAL_PARAM (unknown framing); *s is
 * emptied (n = 0) on error. */
uint16_t rsip_shared_ike_parse(const struct rsip_vendor *v, struct rsip_shared_ike *s);
/* Find and parse the SHARED_IKE parameter among a validated message's
 * Vendor Specific parameters: RSIP_E_OK with s->n = 0 if there is none,
 * the parse error if it is malformed, RSIP_E_DUPLICATE_PARAM if there are
 * two. */
uint16_t rsip_shared_ike_find(const struct rsip_msg *m, const struct rsip_fields *f,
			      struct rsip_shared_ike *s);

#define RSIP_HELLO_LABEL "xdnat-rsip-1 hello"

#endif
