/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnat-host's state and its parts: xdnat_host_agent.c (options, main,
 * the renewal loop), host_rsip.c (blocks from the router over RSIP, the info
 * file), host_sys.c (this host's configuration and its undoing).
 */
#ifndef XDNAT_HOST_AGENT_H
#define XDNAT_HOST_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include "xdnat.h"
#include "rsip_client.h"
#include "host_cert.h"
#include "swan_conf.h"

struct xdnat_hostside;

#define MAX_ROUTES 32
#define TC_HANDLE 0x4556
#define TC_PRIO 1

struct route {
	char cidr[24];
	char saved[256];   /* the route this one replaced, to restore */
	bool added;
};

struct agent {
	const char *dev;
	uint32_t gaddr, router, lan_addr;
	uint32_t port_first, port_last;
	bool lan_set, ports_set;
	struct route routes[MAX_ROUTES];
	int n_routes;
	bool replace_routes;
	uint32_t tunnel_mtu;  /* route MTU for global traffic; 0: LAN MTU - 20 */
	int ifindex;
	bool addr_added;
	struct { char path[128]; char old[1024]; bool changed; } sysctls[8];
	int n_sysctls;
	struct xdnat_hostside *skel;
	bool hook_created, egress_attached, ingress_attached;
	/* RSIP mode (no --ports): blocks come from the router */
	bool rsip;
	const char *name, *secret_file, *info_file;
	char name_buf[RSIP_KEYID_MAX + 1];
	char info_buf[256];
	uint32_t port_count, spi_count, lease, rsip_port;
	struct rsip_client cl;
	struct rsip_grant grants[64];
	int n_grants;
	int n_port_grants;           /* grants[0..n_port_grants) are ports */
	/* The ports this host holds as sorted, merged runs (one with --ports):
	 * the local port range spans them, the gaps are reserved. */
	struct xd_run port_runs[64];
	int n_port_runs;
	uint32_t spi_first, spi_last;
	bool info_written;
	/* Shared IKE ports (docs/SHARED-IKE.md): --shared-ike forces the mode
	 * (1), --no-shared-ike refuses it (-1); by default (0) it follows the
	 * router's announcement in its REGISTER_RESPONSE. */
	int shared_opt;
	bool shared_ike;           /* in effect: the IKE daemon uses the shared ports */
	uint16_t ike_port, ike_port_natt;  /* which ones (plain IKE, RFC 3948) */
	bool shared_offered;       /* the router announced shared IKE ports */
	/* certificate from the router's LCA (host_cert.h) */
	const char *state_dir, *key_type;
	bool no_cert;
	struct host_cert cert;
	const char *on_renew, *swan_vici;   /* --on-renew, --swan-vici */
	bool swan_no_reload;
	struct swan_conf swan;  /* --swan-dir: strongSwan fragment (swan_conf.h) */
};

#define MAX_GRANTS 64

/* host_mobile.c: xdnat-host mobile (roaming, docs/ROAMING.md). */
int host_mobile_main(int argc, char **argv);

/* host_rsip.c: register and obtain the global address, ports (as few runs
 * as the router can give) and SPIs; renew every lease (reconnecting if
 * needed); free everything and de-register (reconnecting after a router
 * restart).  Errors are said; 0, a positive RSIP error or -errno. */
int agent_acquire(struct agent *a);
int agent_renew(struct agent *a);
void agent_release(struct agent *a);
uint32_t agent_min_lease(const struct agent *a);
/* --info-file (default /run/xdnat/host-ID.env) for IKE daemons. */
int agent_write_info(struct agent *a);
/* For the ready line: what became of shared IKE ports. */
void agent_print_shared_ike(const struct agent *a);

/* host_sys.c: configure this host (G on lo, sysctls, tc programs, routes)
 * and undo it; agent_setup undoes nothing itself on failure: call
 * agent_teardown.  --swan-dir: the strongSwan fragment. */
int agent_setup(struct agent *a);
void agent_teardown(struct agent *a);
int agent_write_swan(struct agent *a);

#endif
