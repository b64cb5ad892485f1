/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksums (RFC 1071) and the forwarding TTL decrement.
 */
#ifndef XDNAT_LIB_CSUM_H
#define XDNAT_LIB_CSUM_H

#include "lib/parse.h"

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

/* Forwarding TTL decrement with incremental checksum (as ip_decrease_ttl). */
static __always_inline void xdnat_ttl_dec(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

#endif /* XDNAT_LIB_CSUM_H */
