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

/*
 * Fill the 32 bytes of RFC 3519 UDP tunnelling in front of @inner: outer IPv4
 * @saddr -> @daddr (TOS, DF and ID from the inner header as for IP-in-IP),
 * UDP @sport -> @dport with checksum 0 ("none", RFC 768: the inner packet
 * carries its own checks), and the tunnel-data header (type 4, next header IPv4).  The home
 * agent sends from 434 to the care-of port, the mobile node the other way.
 * The caller checked that the 32 bytes and the inner IPv4 header are in the
 * buffer.
 */
static __always_inline void
xdnat_write_outer_udp(struct iphdr *outer, const struct iphdr *inner, __be32 saddr,
		      __be32 daddr, __be16 sport, __be16 dport)
{
	struct udphdr *uh = (void *)(outer + 1);
	struct xdnat_mip_tunnel_hdr *th = (void *)(uh + 1);
	__u16 len = bpf_ntohs(inner->tot_len) + XDNAT_COA_OVERHEAD;

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = inner->tos;
	outer->tot_len = bpf_htons(len);
	outer->id = inner->id;
	outer->frag_off = inner->frag_off & bpf_htons(IP_DF);
	outer->ttl = XDNAT_OUTER_TTL;
	outer->protocol = IPPROTO_UDP;
	outer->check = 0;
	outer->saddr = saddr;
	outer->daddr = daddr;
	outer->check = xdnat_ip_csum20(outer);
	uh->source = sport;
	uh->dest = dport;
	uh->len = bpf_htons(len - sizeof(struct iphdr));
	uh->check = 0;
	th->type = XDNAT_MIP_TUNNEL_DATA;
	th->next_header = XDNAT_MIP_NH_IPV4;
	th->reserved = 0;
}

#endif /* XDNAT_LIB_ENCAP_H */
