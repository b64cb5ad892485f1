/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing on plain data/data_end pointers, valid for XDP and tc.
 */
#ifndef XDNAT_LIB_PARSE_H
#define XDNAT_LIB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/icmp.h>
#include <linux/udp.h>
#include <sys/socket.h> /* AF_INET */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdnat_abi.h"

/* IPv4 frag_off bits, as the kernel's include/net/ip.h (not in the uapi). */
#ifndef IP_MF
#define IP_MF     0x2000
#define IP_DF     0x4000
#define IP_OFFSET 0x1fff
#endif

/* The first 4 bytes of TCP and UDP alike: the ports.  Reading them needs
 * no more of the header than that (a short first fragment). */
#define XDNAT_PORTS_LEN offsetofend(struct udphdr, dest)
#ifndef offsetofend
#define offsetofend(T, m) (__builtin_offsetof(T, m) + sizeof(((T *)0)->m))
#endif

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
	return (ip->frag_off & bpf_htons(IP_OFFSET)) != 0;
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

#endif /* XDNAT_LIB_PARSE_H */
