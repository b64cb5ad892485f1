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
	char prev_serial[64];        /* the one it replaced ("" if none) */
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

/*
 * After a new certificate is on disk (and copied into --swan-dir):
 *
 * host_swan_reload: make the running charon use it for the next
 * authentication.  Through vici (swanctl, SWANCTL_DIR=SWAN_DIR/swanctl,
 * --uri @vici_uri or swanctl's default socket): --load-creds --clear
 * (the new certificate, no stale ones) and --load-conns (a connection holds
 * its own copy of `certs = host.crt` from the time it was loaded; without
 * this the next IKE_AUTH sends the old certificate).  Connections are
 * reloaded only when SWAN_DIR/swanctl/swanctl.conf exists (else swanctl
 * would unload them all).  Existing IKE_SAs and CHILD_SAs are not touched.
 * @quiet: charon not answering is no warning (at start-up it may not run
 * yet).  0, or a negative errno (logged).
 *
 * host_cert_hook: run @cmd (/bin/sh -c) with XDNAT_CERT, XDNAT_CERT_CHAIN,
 * XDNAT_KEY, XDNAT_CERT_SERIAL, XDNAT_CERT_PREVIOUS_SERIAL,
 * XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY, XDNAT_SWAN_DIR (if any) in its
 * environment; killed after @timeout_s.  Its exit status, or a negative
 * errno.
 */
int host_swan_reload(const char *swan_dir, const char *vici_uri, bool quiet);
int host_cert_hook(const struct host_cert *h, const char *cmd, const char *swan_dir,
		   unsigned timeout_s);

#endif
