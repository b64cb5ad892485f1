/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Next hop: bpf_fib_lookup behind the next-hop caches.
 */
#ifndef XDNAT_LIB_NEXTHOP_H
#define XDNAT_LIB_NEXTHOP_H

#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/l1.h"
#include <linux/if_ether.h>
#include <linux/in.h>

static __always_inline void fib_prepare(struct bpf_fib_lookup *fib, __u32 ifindex,
					__be32 src, __be32 dst, __u8 tos, __u16 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->tos = tos;
	fib->l4_protocol = IPPROTO_IPIP;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
}

/*
 * Next hop for a packet leaving on @want_ifindex.  Returns the fib result,
 * folding "routed out of another NIC" and "unreachable" into a drop reason.
 */
static __always_inline int fib_next_hop_uncached(void *ctx, struct bpf_fib_lookup *fib,
						 __u32 want_ifindex, __u32 *reason)
{
	int rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);

	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		/* The kernel sets the egress NIC before it looks for the
		 * neighbour, so "routed out of another NIC" is known for both:
		 * an unresolved neighbour must not bypass it. */
		if (fib->ifindex != want_ifindex) {
			*reason = XDNAT_R_DROP_NO_ROUTE;
			return -1;
		}
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			*reason = XDNAT_R_PASS_NO_NEIGH;
		return rc;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		*reason = XDNAT_R_PASS_TOO_BIG;
		return rc;
	default:
		*reason = XDNAT_R_DROP_NO_ROUTE;
		return -1;
	}
}

/*
 * The caches' clock: jiffies (a plain load) where libbpf can read the
 * kernel's CONFIG_HZ, else the coarse monotonic clock, which costs more.
 */
extern unsigned long CONFIG_HZ __kconfig __weak;

static __always_inline __u64 nh_now(void)
{
	return CONFIG_HZ ? bpf_jiffies64() : bpf_ktime_get_coarse_ns();
}

/*
 * Is an entry stamped @stamp still within nh_cache_ms (at least one tick)?
 * In jiffies the lifetime is floor(ms * HZ / 1000) ticks, compared without
 * a division on the hot path; an age beyond 2^32 ticks (a stamp from the
 * other clock, left by an earlier load) is never fresh.
 */
static __always_inline int nh_fresh(__u64 now, __u64 stamp)
{
	__u64 age = now - stamp, ms = cfg.nh_cache_ms, ticks;

	if (!CONFIG_HZ)
		return age < ms * 1000000ull;
	ticks = ms * CONFIG_HZ;
	return age < (1ull << 32) && (age + 1) * 1000 <= (ticks > 1000 ? ticks : 1000);
}

/*
 * fib_next_hop_uncached() behind the next-hop cache (see maps/xdnat_abi.h):
 * the same results, with the lookup done once per nh_cache_ms per
 * source/destination/egress interface.  Only successes are cached.
 */
static __always_inline int fib_next_hop(void *ctx, struct bpf_fib_lookup *fib,
					__u32 want_ifindex, __u32 *reason)
{
	struct xdnat_nh_key k = { .dst = fib->ipv4_dst, .src = fib->ipv4_src, .oif = want_ifindex };
	int cached = cfg.nh_cache_ms != 0;
	struct xdnat_nh *nh, fresh = {};
	struct xdnat_l1_nh *e = NULL;
	struct xdnat_l1 *l1;
	__u64 now = 0;
	__u16 tot_len = fib->tot_len;
	int rc;

	if (cached) {
		now = nh_now();
		/* this CPU's copy first (lib/l1.h), then the shared cache */
		l1 = l1_get();
		if (l1) {
			e = l1_nh(l1, k.dst, k.src);
			if (e->dst == k.dst && e->src == k.src && e->oif == k.oif &&
			    nh_fresh(now, e->stamp) && tot_len <= e->mtu) {
				__builtin_memcpy(fib->dmac, e->dmac, ETH_ALEN);
				__builtin_memcpy(fib->smac, e->smac, ETH_ALEN);
				fib->ifindex = want_ifindex;
				return BPF_FIB_LKUP_RET_SUCCESS;
			}
		}
		nh = bpf_map_lookup_elem(&xdnat_nh_cache, &k);
		if (nh && nh_fresh(now, nh->stamp) && tot_len <= nh->mtu) {
			__builtin_memcpy(fib->dmac, nh->dmac, ETH_ALEN);
			__builtin_memcpy(fib->smac, nh->smac, ETH_ALEN);
			fib->ifindex = want_ifindex;
			if (e)
				l1_nh_fill(e, &k, nh->dmac, nh->smac, nh->mtu, nh->stamp);
			return BPF_FIB_LKUP_RET_SUCCESS;
		}
	}
	rc = fib_next_hop_uncached(ctx, fib, want_ifindex, reason);
	if (cached && rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(fresh.dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(fresh.smac, fib->smac, ETH_ALEN);
		/* On success the kernel reports the path MTU in the tot_len union;
		 * never cache less than what just fitted. */
		fresh.mtu = fib->mtu_result > tot_len ? fib->mtu_result : tot_len;
		fresh.stamp = now;
		bpf_map_update_elem(&xdnat_nh_cache, &k, &fresh, BPF_ANY);
		if (e)
			l1_nh_fill(e, &k, fresh.dmac, fresh.smac, fresh.mtu, now);
	}
	return rc;
}

/*
 * Next hop to a host on the LAN, @hp its per-CPU entry (NULL: none): the
 * cached next hop when it is fresh, for the host's current address, and the
 * packet fits its MTU; otherwise the full lookup, whose success refreshes
 * the entry.
 */
static __always_inline int host_next_hop(void *ctx, struct bpf_fib_lookup *fib,
					 struct xdnat_host_pcpu *hp, __u32 *reason)
{
	__u64 now;
	__u16 tot_len = fib->tot_len;
	int rc;

	/* hp->nh, never a pointer derived before the NULL check: clang may
	 * compute it unconditionally, which the verifier refuses. */
	if (!cfg.nh_cache_ms)
		return fib_next_hop_uncached(ctx, fib, cfg.lan_ifindex, reason);
	now = nh_now();
	if (hp && hp->nh.lan_addr == fib->ipv4_dst && nh_fresh(now, hp->nh.stamp) &&
	    tot_len <= hp->nh.mtu) {
		__builtin_memcpy(fib->dmac, hp->nh.dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, hp->nh.smac, ETH_ALEN);
		fib->ifindex = cfg.lan_ifindex;
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	rc = fib_next_hop_uncached(ctx, fib, cfg.lan_ifindex, reason);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS && hp) {
		/* This CPU's own copy: the programs on a CPU run one at a time
		 * and nothing else writes it, so no reader sees it half done. */
		__builtin_memcpy(hp->nh.dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(hp->nh.smac, fib->smac, ETH_ALEN);
		hp->nh.mtu = fib->mtu_result > tot_len ? fib->mtu_result : tot_len;
		hp->nh.lan_addr = fib->ipv4_dst;
		hp->nh.stamp = now;
	}
	return rc;
}

#endif /* XDNAT_LIB_NEXTHOP_H */
