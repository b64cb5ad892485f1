/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Who owns a port or SPI block, and the verdict for that owner.
 */
#ifndef XDNAT_LIB_OWNER_H
#define XDNAT_LIB_OWNER_H

#include "lib/maps.h"
#include "lib/pkt.h"

/* Index of @addr among the global addresses, or -1.  At most 16 compares. */
static __always_inline int gaddr_index(__be32 addr)
{
	for (__u32 i = 0; i < XDNAT_MAX_GADDRS; i++) {
		if (i >= cfg.n_gaddrs)
			break;
		if (cfg.gaddrs[i] == addr)
			return i;
	}
	return -1;
}

static __always_inline __u32 owner_by_port(__u32 gidx, __u16 port)
{
	__u32 key = gidx * XDNAT_PORTS_PER_GADDR + port;
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_ports, &key);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

static __always_inline __u32 owner_by_spi(__u32 spi)
{
	__u32 key = spi >> (cfg.spi_block_bits & 31);
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_spis, &key);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

/* The verdict for a packet whose owner is @host_id (0: nobody). */
static __always_inline enum xdnat_act
host_verdict(__u32 host_id, __u32 gidx, __u32 fwd_reason, __u32 unknown_reason,
	     struct xdnat_pkt *p)
{
	struct xdnat_host *h;

	if (host_id == XDNAT_HOST_NONE)
		goto unknown;
	if (host_id == XDNAT_HOST_ROUTER) {
		/* Reserved for the router's own services: its stack answers,
		 * whatever the unknown policy (reachable under floods). */
		p->reason = XDNAT_R_PASS_ROUTER_PORT;
		return XDNAT_ACT_PASS;
	}
	h = bpf_map_lookup_elem(&xdnat_hosts, &host_id);
	if (!h || !(h->flags & XDNAT_HOST_F_VALID))
		goto unknown;
	if (h->gaddr_index != gidx) {
		p->reason = XDNAT_R_DROP_WRONG_GADDR;
		return XDNAT_ACT_DROP;
	}
	p->reason = fwd_reason;
	p->host_id = host_id;
	p->host_lan = h->lan_addr;
	return XDNAT_ACT_FORWARD;
unknown:
	p->reason = unknown_reason;
	return XDNAT_ACT_UNKNOWN;
}

#endif /* XDNAT_LIB_OWNER_H */
