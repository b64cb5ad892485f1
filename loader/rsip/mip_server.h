/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Mobile IPv4 home agent of xdnatd (docs/ROAMING.md): registrations of
 * roaming hosts on UDP 434 of G (RFC 5944, wire format in mip_wire.h), with
 * RFC 3519 NAT traversal.  One table of mobility bindings, in memory, in
 * xdnatd's one thread: every change to the datapath (a host's endpoint
 * becomes its care-of endpoint, or its LAN address again) is made here, by
 * the one writer, through struct mip_dp.
 *
 * Who may register: an enrolled host (its NAI is its enrolment name) that
 * holds blocks over RSIP (a map host id).  What it keeps while away: its
 * host id, port and SPI blocks and certificate; every accepted registration
 * renews its RSIP leases to at least the registration's end (the RSIP TCP
 * session to its LAN address is gone while it roams).
 *
 * Why in memory and not in the store: a registration lives at most
 * max_lifetime seconds and the host renews it well before; after a restart
 * xdnatd adopts the care-of endpoints it finds in the maps (mip_dp.get) for
 * one max_lifetime, so a restart neither cuts roaming hosts off nor leaves
 * stale endpoints forever.  The replay state (the last Identification) is
 * lost with it, but an Identification is a timestamp that must be within
 * skew_s of the router's clock, so a request recorded before the restart is
 * refused after it anyway (except in the first skew_s seconds).
 */
#ifndef XDNAT_MIP_SERVER_H
#define XDNAT_MIP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "mip_wire.h"
#include "xdnat.h"

struct xd_store;
struct rsip_server;

/* How a roaming host's traffic is tunnelled to it. */
enum mip_encap { MIP_ENCAP_NONE = 0, MIP_ENCAP_UDP = 1, MIP_ENCAP_IPIP_DIRECT = 2 };

/* The datapath: a host's endpoint.  xdnatd implements it on the pinned
 * maps; the unit tests with a fake. */
struct mip_dp {
	void *ctx;
	/* Host @host_id's packets go to @addr_be:@port_be (UDP, RFC 3519) or
	 * to @addr_be (IP-in-IP) out of the WAN NIC. */
	int (*set)(void *ctx, uint32_t host_id, enum mip_encap encap, uint32_t addr_be,
		   uint16_t port_be);
	/* Back to the host's LAN address. */
	int (*clear)(void *ctx, uint32_t host_id);
	/* The care-of endpoint in the maps (restart): 1 found, 0 none. */
	int (*get)(void *ctx, uint32_t host_id, enum mip_encap *encap, uint32_t *addr_be,
		   uint16_t *port_be);
	bool ipip;   /* the datapath can tunnel IP-in-IP without UDP */
};

struct mip_config {
	uint32_t gaddrs[XDNAT_MAX_GADDRS];
	uint32_t n_gaddrs;
	uint16_t max_lifetime;      /* seconds; requests asking more get this */
	uint16_t keepalive_s;       /* announced in the UDP Tunnel Reply */
	uint32_t skew_s;            /* Identification timestamps: +- this */
	uint32_t lease_grace_s;     /* leases renewed to registration end + this */
};
void mip_config_defaults(struct mip_config *c);
#define MIP_DEFAULT_MAX_LIFETIME 600
#define MIP_DEFAULT_KEEPALIVE    20    /* below common NAT UDP timeouts (30 s) */
#define MIP_DEFAULT_LEASE_GRACE  60

/* One host's mobility binding (and its replay state, kept after it ends). */
struct mip_binding {
	char name[MIP_NAI_MAX + 1];
	uint32_t host_id;
	bool active;
	bool adopted;               /* found in the maps at start */
	enum mip_encap encap;
	uint32_t home, coa;         /* as registered (network order) */
	uint32_t tun_addr;          /* where the tunnel goes: the NAT's address */
	uint16_t tun_port;          /* and port (network order); 0 for IP-in-IP */
	bool nat;                   /* source address != care-of address */
	uint16_t lifetime;
	uint64_t registered_ms, expires_ms;
	uint64_t last_id;           /* highest Identification accepted */
};

/* Why requests were refused or dropped, for /metrics. */
enum mip_stat {
	MIP_ST_ACCEPTED, MIP_ST_DEREGISTERED, MIP_ST_DROPPED_MALFORMED, MIP_ST_RATE_LIMITED,
	MIP_ST_EXPIRED, MIP_ST_N
};

struct mip_server {
	struct mip_config cfg;
	struct xd_store *st;          /* enrolments and registrations */
	struct rsip_server *rsip;     /* leases (NULL: not renewed) */
	struct mip_dp dp;
	uint64_t (*now_ms)(void);     /* wall clock (Identification timestamps) */
	struct mip_binding *b;
	size_t n, cap;
	uint64_t stat[MIP_ST_N];
	uint64_t refused[256];        /* by reply code */
	/* Refusals: one reply per source address per second (a small table,
	 * overwritten on collision), and at most MIP_REFUSE_PER_S in all. */
	struct { uint32_t addr; uint64_t ms; } rl[256];
	uint64_t rl_window_ms;
	unsigned rl_in_window;
	/* Log lines for refusals: at most one per 10 s with a count. */
	uint64_t log_next_ms;
	unsigned long log_suppressed;
	int fd;                       /* UDP socket on G:434; -1 none */
};
#define MIP_REFUSE_PER_S 100

void mip_server_init(struct mip_server *s, const struct mip_config *cfg, struct xd_store *st,
		     struct rsip_server *rsip, const struct mip_dp *dp);
void mip_server_free(struct mip_server *s);

/*
 * Handle the datagram @in (@len bytes) that @src_be:@sport_be sent to
 * @dst_be:434.  Writes the reply (at most MIP_MAX_MSG) to @out and returns
 * its length; 0: send nothing.
 */
size_t mip_server_handle(struct mip_server *s, uint32_t src_be, uint16_t sport_be, uint32_t dst_be,
			 const uint8_t *in, size_t len, uint8_t *out);

/* End the registrations whose lifetime is over.  Returns ms until the next
 * end (at most 1000). */
int mip_server_tick(struct mip_server *s);

/* Adopt the care-of endpoints the maps hold for host ids the store gives
 * registered hosts (after a restart). */
void mip_server_adopt(struct mip_server *s);

/* The listing of xdnatctl mobile show (JSON or a table). */
void mip_server_show(const struct mip_server *s, bool json, FILE *f);
/* Counters in the Prometheus text format. */
void mip_server_metrics(const struct mip_server *s, FILE *f);

/* The socket: UDP @addr_be:@port, bound to @ifname if not NULL.  Errors
 * are printed. */
int mip_server_listen(struct mip_server *s, uint32_t addr_be, uint16_t port);
/* Read and answer every datagram waiting on the socket. */
void mip_server_input(struct mip_server *s);
void mip_server_close(struct mip_server *s);

#endif
