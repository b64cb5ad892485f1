/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing and header writing shared by the XDP and tc programs.
 * Everything here works on plain data/data_end pointers, so the same code
 * serves struct xdp_md and struct __sk_buff; only head adjustment and
 * redirection differ between the two hooks.
 */
#ifndef XDNAT_PARSE_H
#define XDNAT_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdnat_abi.h"

#define XDNAT_IP_MF      0x2000
#define XDNAT_IP_DF      0x4000
#define XDNAT_IP_OFFMASK 0x1fff
#define XDNAT_ICMP_ECHOREPLY 0
#define XDNAT_ICMP_ECHO      8

/* Result of validating an IPv4 header that starts at @ip. */
enum xdnat_ip_check {
	XDNAT_IP_OK = 0,
	XDNAT_IP_SHORT,  /* fewer than 20 bytes: not even a daddr to look at */
	XDNAT_IP_BAD,    /* version, IHL or total length inconsistent */
};

/*
 * Validate version, IHL and total length.  @room is the number of packet
 * bytes from @ip to the end of the whole packet, which for a tc skb may be
 * more than the linear part ending at @data_end; only the fixed header must
 * be linear.  Trailing bytes past tot_len (Ethernet padding) are allowed.
 */
static __always_inline enum xdnat_ip_check
xdnat_ip_check(struct iphdr *ip, void *data_end, __u32 room)
{
	__u32 hlen, tot;

	if ((void *)(ip + 1) > data_end)
		return XDNAT_IP_SHORT;
	if (ip->version != 4 || ip->ihl < 5)
		return XDNAT_IP_BAD;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || tot > room)
		return XDNAT_IP_BAD;
	return XDNAT_IP_OK;
}

static __always_inline int xdnat_ip_is_later_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(XDNAT_IP_OFFMASK)) != 0;
}

/*
 * Pointer to @len bytes of L4 header, or NULL when the datagram (by its
 * total length) or the buffer is shorter.  The caller validated @ip.
 */
static __always_inline void *
xdnat_l4(struct iphdr *ip, void *data_end, __u32 len)
{
	__u32 hlen = (ip->ihl & 0xf) * 4;
	void *l4 = (void *)ip + hlen;

	if (hlen + len > bpf_ntohs(ip->tot_len))
		return NULL;
	if (l4 + len > data_end)
		return NULL;
	return l4;
}

static __always_inline __u16 xdnat_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Checksum of a 20-byte IPv4 header whose check field is zero. */
static __always_inline __u16 xdnat_ip_csum20(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return xdnat_csum_fold(sum);
}

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
	outer->frag_off = inner->frag_off & bpf_htons(XDNAT_IP_DF);
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

/* Forwarding TTL decrement with incremental checksum (as ip_decrease_ttl). */
static __always_inline void xdnat_ttl_dec(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

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
#define XDNAT_ICMP_QUOTE_MAX (60 + 8)

static __always_inline int
xdnat_write_frag_needed(void *data, void *data_end, const struct ethhdr *saved, int tunnel,
			__be32 tun_src, __be32 tun_dst, __be32 src, __be32 dst,
			__u16 mtu, __u32 quote)
{
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	struct iphdr *ip = tunnel ? outer + 1 : outer;
	__u8 *icmp = (void *)(ip + 1);
	__u16 *w = (void *)icmp;
	__u32 sum = 0;

	if ((void *)(icmp + 8) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, saved->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, saved->h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0xc0; /* internetwork control, as Linux sends ICMP errors */
	ip->tot_len = bpf_htons(sizeof(struct iphdr) + 8 + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = XDNAT_OUTER_TTL;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = src;
	ip->daddr = dst;
	ip->check = xdnat_ip_csum20(ip);

	icmp[0] = 3; /* destination unreachable */
	icmp[1] = 4; /* fragmentation needed and DF set */
	*(__u16 *)(icmp + 2) = 0;
	*(__u16 *)(icmp + 4) = 0;
	*(__be16 *)(icmp + 6) = bpf_htons(mtu);
#pragma unroll
	for (__u32 i = 0; i < (8 + XDNAT_ICMP_QUOTE_MAX) / 2; i++) {
		if (i >= (8 + quote) / 2)
			break;
		if ((void *)(w + i + 1) > data_end)
			return -1;
		sum += w[i];
	}
	*(__u16 *)(icmp + 2) = xdnat_csum_fold(sum);
	if (tunnel)
		xdnat_write_outer(outer, ip, tun_src, tun_dst);
	return 0;
}

#endif /* XDNAT_PARSE_H */
