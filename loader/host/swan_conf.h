/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * strongSwan configuration from a host's allocation (issue 7,
 * docs/STRONGSWAN.md).  xdnat-host --swan-dir DIR lays out:
 *
 *   DIR/strongswan.d/xdnat.conf   charon.port / port_nat_t (from the port
 *                                 block), spi_min / spi_max (the SPI block),
 *                                 spi_mask / spi_label (IKE SPIs carry the
 *                                 SPI block's prefix); include it from
 *                                 strongswan.conf
 *   DIR/swanctl/conf.d/xdnat.conf a section "xdnat-local" to inherit from in
 *                                 swanctl.conf (local_addrs, local_port,
 *                                 local { auth, certs, id })
 *   DIR/swanctl/private/host.key  the host's key (EC P-256), made here once,
 *                                 never leaves the host
 *   DIR/host.csr                  its CSR, for the Local CA
 *   DIR/swanctl/x509/host.crt     the certificate the LCA issued (installed by
 *                                 swan_conf_install_cert or by the operator)
 *   DIR/swanctl/x509ca/ca-N.crt   trust anchors (and the LCA certificate)
 *
 * With a certificate obtained over RSIP (key_path set), the key, the
 * certificate and the LCA chain are copies of xdnat-host's (--state-dir) and
 * no CSR is written: the CSR travelled over RSIP.
 *
 * The IKE identity is the subject DN of host.crt (the LCA's unique name for
 * the host, docs/LCA.md); before a certificate is there, the LCA's default
 * "O=xdnat, OU=<G>, CN=<LAN>@<G>".  Never the shared global address: two
 * hosts with one identity make a peer's INITIAL_CONTACT handling delete each
 * other's SAs.
 */
#ifndef XDNAT_SWAN_CONF_H
#define XDNAT_SWAN_CONF_H

#include <stddef.h>
#include <stdint.h>

struct swan_conf {
	const char *dir;             /* DIR */
	uint32_t gaddr, lan_addr;    /* network byte order */
	uint32_t port_first, port_last;
	uint32_t spi_first, spi_last; /* both 0: no SPI block */
	const char *ca_file;         /* PEM certificates for x509ca/, or NULL */
	/* The key and certificates xdnat-host obtained over RSIP (host_cert.h),
	 * or NULL: then a key and CSR are made in DIR and the certificate is
	 * the operator's.  With key_path, DIR gets copies of the key (0600),
	 * the certificate (cert_path, once issued) and, without ca_file, the
	 * LCA chain (chain_path) as trust anchors to send along. */
	const char *key_path, *cert_path, *chain_path;
	/* The router shares UDP 500/4500 (xdnatd --shared-ike-ports,
	 * docs/SHARED-IKE.md): charon on 500/4500, IKE SPIs labelled with
	 * the largest aligned power-of-two run at the SPI block's start (the
	 * router routes IKE by their top 32 bits); needs an SPI block. */
	int shared_ike;
	/* The shared ports to use (the router's announcement, XDNAT_VS_SHARED_IKE
	 * in rsip_auth.h): charon.port and port_nat_t; 0: 500 and 4500. */
	uint16_t ike_port, ike_port_nat_t;
};

/* Path names inside DIR (no I/O). */
#define SWAN_CONF_CHARON  "strongswan.d/xdnat.conf"
#define SWAN_CONF_SWANCTL "swanctl/conf.d/xdnat.conf"
#define SWAN_CONF_KEY     "swanctl/private/host.key"
#define SWAN_CONF_CSR     "host.csr"
#define SWAN_CONF_CERT    "swanctl/x509/host.crt"

/* The charon settings for a port block and an SPI block: port = first,
 * port_nat_t = first + 1; spi_min/spi_max = the SPI range; spi_mask/
 * spi_label put the prefix all its SPIs share into the top 32 bits of every
 * IKE SPI charon allocates.  With shared_ike: port ike_port (500),
 * port_nat_t ike_port_nat_t (4500), and
 * the label of the aligned run at the block's start.  0 or -EINVAL (fewer
 * than 2 ports, SPIs < 256, shared_ike without SPIs). */
struct swan_charon {
	uint16_t port, port_nat_t;
	uint32_t spi_min, spi_max;
	uint64_t spi_mask, spi_label;
	int has_spis;
};
int swan_charon_settings(const struct swan_conf *c, struct swan_charon *out);

/* IKE identity (strongSwan DN syntax, "O=xdnat, OU=G, CN=LAN@G") of the
 * certificate at CERT_PATH, or the LCA default when CERT_PATH is NULL or
 * missing.  0, -ENOENT (no certificate, default written), or -EINVAL. */
int swan_identity(const char *cert_path, uint32_t gaddr, uint32_t lan_addr,
		  char *buf, size_t len);

/* Create the layout, the key and CSR if missing (or copy key_path,
 * cert_path, chain_path), copy the trust anchors, (re)write both fragments
 * atomically.  0 or a negative errno (reason
 * logged). */
int swan_conf_write(const struct swan_conf *c);

/* Install a certificate the LCA issued (DER), then rewrite the fragments
 * (the identity comes from it). */
int swan_conf_install_cert(const struct swan_conf *c, const uint8_t *der, size_t len);

/* Remove the fragments (ports and SPIs no longer ours); keeps key and
 * certificates. */
void swan_conf_remove(const struct swan_conf *c);

#endif
