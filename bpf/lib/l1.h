/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU direct-mapped caches in front of the LAN path's two hash lookups
 * (LAN address -> host id in xdnat_lan_idx, next hop in xdnat_nh_cache):
 * one inlined per-CPU array lookup and one slot compare instead of a jhash
 * and a bucket walk.  Each CPU owns its copy (no tearing, no atomics).
 *
 * A slot is a hint, never the truth: a host slot is used only when the
 * host entry it names still has that LAN address and is valid (the LAN
 * address of a valid host is unique, so that check is exact), and a
 * next-hop slot carries the stamp and MTU of the cache entry it was copied
 * from, so it expires with it.  A miss or a stale slot falls back to the
 * hash map and refills the slot.
 */
#ifndef XDNAT_LIB_L1_H
#define XDNAT_LIB_L1_H

#include <linux/if_ether.h>
#include "lib/maps.h"

static __always_inline struct xdnat_l1 *l1_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&xdnat_l1, &zero);
}

/* Fibonacci hashing: the top @bits bits of v * 2^32/phi. */
static __always_inline __u32 l1_slot(__u32 v, __u32 bits)
{
	return (v * 0x9e3779b1u) >> (32 - bits);
}

static __always_inline __u32 *l1_host(struct xdnat_l1 *l1, __be32 lan_addr)
{
	return &l1->host[l1_slot(lan_addr, XDNAT_L1_HOST_BITS) & (XDNAT_L1_HOSTS - 1)];
}

static __always_inline struct xdnat_l1_nh *l1_nh(struct xdnat_l1 *l1, __be32 dst, __be32 src)
{
	return &l1->nh[l1_slot(dst ^ (src * 31), XDNAT_L1_NH_BITS) & (XDNAT_L1_NHS - 1)];
}

static __always_inline void l1_nh_fill(struct xdnat_l1_nh *e, const struct xdnat_nh_key *k,
				       const __u8 *dmac, const __u8 *smac, __u16 mtu, __u64 stamp)
{
	e->dst = k->dst;
	e->src = k->src;
	e->oif = k->oif;
	e->mtu = mtu;
	__builtin_memcpy(e->dmac, dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, smac, ETH_ALEN);
	e->stamp = stamp;
}

#endif /* XDNAT_LIB_L1_H */
