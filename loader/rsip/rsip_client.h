/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * RSIP client (the host side of RFC 3103/3104) over TCP, authenticated as
 * described in rsip_auth.h.  Every call is one request/response exchange.
 * Returns 0 on success, a positive RSIP error code when the router refused
 * (ERROR_RESPONSE), or a negative errno for local or transport failures
 * (after which the connection is closed; reconnect with rsip_client_register).
 */
#ifndef XDNAT_RSIP_CLIENT_H
#define XDNAT_RSIP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include "rsip_auth.h"

struct rsip_client {
	int fd;
	uint32_t server_be;
	uint16_t port;
	char name[RSIP_KEYID_MAX + 1];
	uint8_t secret[RSIP_SECRET_LEN];
	unsigned timeout_ms;
	uint32_t src_be;             /* local address to connect from (0: any) */
	/* session */
	struct rsip_keys keys;
	uint32_t client_id;
	uint32_t counter;
	uint32_t reg_lease;
	/* Certificates (issue 4): a CSR to send with the next ASSIGN or EXTEND
	 * request (rsip_client_attach_csr), and what the router sent back. */
	const uint8_t *csr;
	size_t csr_len;
	bool csr_next;
	uint8_t *cert, *cacert;      /* DER, malloc'ed; NULL: none (yet) */
	size_t cert_len, cacert_len;
	bool cert_new;               /* set when a response brought a certificate */
	/* The shared IKE ports the router announced in its last authenticated
	 * REGISTER_RESPONSE (XDNAT_VS_SHARED_IKE; n = 0: none). */
	struct rsip_shared_ike shared_ike;
};

struct rsip_grant {
	uint32_t bind_id;
	uint32_t gaddr_be;
	uint32_t first, count;       /* ports or SPIs */
	uint32_t lease;              /* seconds */
	uint32_t tunnel_be;          /* router's tunnel endpoint (0: not given) */
};

void rsip_client_init(struct rsip_client *c, uint32_t server_be, uint16_t port, const char *name,
		      const uint8_t secret[RSIP_SECRET_LEN], unsigned timeout_ms);
/* Connect (if needed) and REGISTER; authenticates the router and takes its
 * shared-IKE announcement into c->shared_ike (a malformed one: -EPROTO). */
int rsip_client_register(struct rsip_client *c);
/* gaddr_be 0: any global address; n ports (1..255). */
int rsip_client_assign_ports(struct rsip_client *c, uint32_t gaddr_be, uint8_t n, uint32_t lease,
			     struct rsip_grant *g);
/* nspis 0: one SPI block of the router's size. */
int rsip_client_assign_spi(struct rsip_client *c, uint32_t gaddr_be, uint16_t nspis, uint32_t lease,
			   struct rsip_grant *g);
int rsip_client_extend(struct rsip_client *c, uint32_t bind_id, uint32_t lease, uint32_t *granted);
int rsip_client_free(struct rsip_client *c, uint32_t bind_id);
int rsip_client_deregister(struct rsip_client *c);
void rsip_client_close(struct rsip_client *c);
/* Send @csr (DER PKCS#10, kept by the caller) with the next ASSIGN/EXTEND
 * request only; the certificate comes back in c->cert (c->cert_new set). */
void rsip_client_attach_csr(struct rsip_client *c, const uint8_t *csr, size_t len);
void rsip_client_free_certs(struct rsip_client *c);
bool rsip_client_connected(const struct rsip_client *c);

#endif
