/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnat-host's certificate (issue 4, docs/LCA.md): the key pair is made
 * here and never leaves the host (STATE_DIR/NAME.key, mode 0600, reused
 * across runs); the CSR goes to the router over RSIP; the router's answer
 * is written where an IKE daemon can use it:
 *   STATE_DIR/NAME.crt        the host certificate (PEM)
 *   STATE_DIR/NAME-chain.pem  the LCA certificate (PEM), to send along
 * and announced in the info file (XDNAT_CERT, XDNAT_CERT_CHAIN, XDNAT_KEY,
 * XDNAT_CERT_SERIAL, XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY).
 */
#ifndef XDNAT_HOST_CERT_H
#define XDNAT_HOST_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define XDNAT_HOST_STATE_DIR "/var/lib/xdnat-host"

struct host_cert {
	char key_path[512], crt_path[512], chain_path[512];
	void *key;                   /* EVP_PKEY */
	unsigned char *csr;          /* DER */
	size_t csr_len;
	bool have;                   /* a certificate is on disk */
	char serial[64], identity[300];
	int64_t not_after;
};

/* Load STATE_DIR/NAME.key or make one (@keytype: p256 (NULL), p384,
 * ed25519, rsa3072) and the CSR.  Errors printed. */
int host_cert_init(struct host_cert *h, const char *state_dir, const char *name, const char *keytype);
/* Write the certificate (and the LCA certificate, if given) atomically. */
int host_cert_store(struct host_cert *h, const uint8_t *der, size_t len, const uint8_t *ca,
		    size_t ca_len);
/* Remove the certificate files (the key stays). */
void host_cert_remove(struct host_cert *h);
/* The info-file lines (nothing without a certificate). */
void host_cert_info(const struct host_cert *h, FILE *f);
void host_cert_free(struct host_cert *h);

#endif
