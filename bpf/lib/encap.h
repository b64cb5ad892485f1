/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The IP-in-IP outer header (RFC 2003) the router and the hosts write.
 */
#ifndef XDNAT_LIB_ENCAP_H
#define XDNAT_LIB_ENCAP_H

#include "lib/csum.h"

/*
 * Fill a 20-byte outer IPv4 header for IP-in-IP (RFC 2003): TOS/ECN and DF
 * follow the inner header, the ID is the inner one (deterministic, and
 * distinct per inner datagram), protocol 4.
 */
static __always_inline void
xdnat_write_outer(struct iphdr *outer, const struct iphdr *inner,
		  __be32 saddr, __be32 daddr)
{
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = inner->tos;
	outer->tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + sizeof(struct iphdr));
	outer->id = inner->id;
	outer->frag_off = inner->frag_off & bpf_htons(IP_DF);
	outer->ttl = XDNAT_OUTER_TTL;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = saddr;
	outer->daddr = daddr;
	outer->check = xdnat_ip_csum20(outer);
}

/* Rewrite the outer addresses of an existing tunnel header (hairpin). */
static __always_inline void
xdnat_rewrite_outer(struct iphdr *outer, __be32 saddr, __be32 daddr)
{
	outer->saddr = saddr;
	outer->daddr = daddr;
	outer->ttl = XDNAT_OUTER_TTL;
	outer->check = 0;
	outer->check = xdnat_ip_csum20(outer);
}

#endif /* XDNAT_LIB_ENCAP_H */
