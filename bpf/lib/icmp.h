/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors the router sends (fragmentation needed) and RFC 1812 rules.
 */
#ifndef XDNAT_LIB_ICMP_H
#define XDNAT_LIB_ICMP_H

#include "lib/encap.h"

/*
 * ICMP "fragmentation needed and DF set" (RFC 792 type 3 code 4, with the
 * next-hop MTU of RFC 1191), written into a frame laid out as
 *
 *   [Ethernet][outer IPv4 slot, if @tunnel][IPv4 slot][ICMP slot][quote]
 *
 * where the quote (@quote bytes: the offending header and 8 more bytes) is
 * already in place.  @saved is the offending frame's Ethernet header: the
 * answer goes back to where it came from.  With @tunnel the answer is
 * wrapped in IP-in-IP @tun_src -> @tun_dst (back to a host).  Returns 0, or
 * -1 if the frame is shorter than the layout.
 */
#define XDNAT_ICMP_QUOTE_MAX (60 + 8) /* IPv4 header with options + 8 */

static __always_inline int
xdnat_write_frag_needed(void *data, void *data_end, const struct ethhdr *saved, int tunnel,
			__be32 tun_src, __be32 tun_dst, __be32 src, __be32 dst,
			__u16 mtu, __u32 quote)
{
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	struct iphdr *ip = tunnel ? outer + 1 : outer;
	struct icmphdr *icmp = (void *)(ip + 1);
	__u16 *w = (void *)icmp;
	__u32 sum = 0;

	if ((void *)(icmp + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, saved->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, saved->h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = IPTOS_PREC_INTERNETCONTROL; /* as Linux sends ICMP errors */
	ip->tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(*icmp) + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = XDNAT_OUTER_TTL;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = src;
	ip->daddr = dst;
	ip->check = xdnat_ip_csum20(ip);

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(mtu);
#pragma unroll
	for (__u32 i = 0; i < (sizeof(*icmp) + XDNAT_ICMP_QUOTE_MAX) / 2; i++) {
		if (i >= (sizeof(*icmp) + quote) / 2)
			break;
		if ((void *)(w + i + 1) > data_end)
			return -1;
		sum += w[i];
	}
	icmp->checksum = xdnat_csum_fold(sum);
	if (tunnel)
		xdnat_write_outer(outer, ip, tun_src, tun_dst);
	return 0;
}

/* Bytes of the offending datagram an ICMP error quotes: header + 8. */
static __always_inline __u32 icmp_quote_len(const struct iphdr *ip)
{
	return (ip->ihl & 0xf) * 4 + 8;
}

/*
 * RFC 1812 4.3.2.7 (and RFC 1122): no ICMP error about an ICMP error, a
 * later fragment, or a datagram whose source is not a unicast host or whose
 * destination is broadcast/multicast.  The frag-needed builders below drop
 * those instead (drop_too_big).
 */
static __always_inline int icmp_error_allowed(struct iphdr *ip, void *data_end)
{
	__u32 src = bpf_ntohl(ip->saddr), dst = bpf_ntohl(ip->daddr);
	__u8 *type;

	if ((src >> 24) == 0 || (src >> 24) == 127 || (src >> 28) >= 0xe ||
	    (dst >> 28) >= 0xe || xdnat_ip_is_later_fragment(ip))
		return 0;
	if (ip->protocol == IPPROTO_ICMP) {
		type = xdnat_l4(ip, data_end, sizeof(*type));
		if (!type || *type == ICMP_DEST_UNREACH || *type == ICMP_SOURCE_QUENCH ||
		    *type == ICMP_REDIRECT || *type == ICMP_TIME_EXCEEDED ||
		    *type == ICMP_PARAMETERPROB)
			return 0;
	}
	return 1;
}

#endif /* XDNAT_LIB_ICMP_H */
