/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The context layer: one packet context type for XDP and tc, so that every
 * action path of the datapath is written once (lib/datapath.h).
 *
 * struct xdnat_ctx carries the hook's own context and which hook it is.
 * Everything that takes it is always-inline and every entry point passes a
 * constant hook (ctx_xdp() / ctx_skb()), so the compiler keeps only that
 * hook's side of each branch below: one library, both hooks in one object
 * (the loader chooses XDP or tc at attach time, so both must be there).
 *
 * The real differences between the hooks live here and nowhere else, each
 * with its reason.  Where the TTL is decremented follows from one of them:
 * whoever forwards the packet decrements it -- the datapath when it sends the
 * packet itself (ctx_resolves_neigh()), the stack when the packet is passed.
 */
#ifndef XDNAT_LIB_CTX_H
#define XDNAT_LIB_CTX_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/compat.h"
#include "lib/maps.h"

enum xdnat_hook {
	XDNAT_HOOK_XDP,
	XDNAT_HOOK_TC,
};

struct xdnat_ctx {
	void *raw;            /* struct xdp_md * or struct __sk_buff * */
	enum xdnat_hook hook; /* a constant in every entry point */
};

static __always_inline struct xdnat_ctx ctx_xdp(struct xdp_md *md)
{
	return (struct xdnat_ctx){ .raw = md, .hook = XDNAT_HOOK_XDP };
}

static __always_inline struct xdnat_ctx ctx_skb(struct __sk_buff *skb)
{
	return (struct xdnat_ctx){ .raw = skb, .hook = XDNAT_HOOK_TC };
}

#define CTX_XDP(c) ((struct xdp_md *)(c).raw)
#define CTX_SKB(c) ((struct __sk_buff *)(c).raw)
#define ctx_is_xdp(c) ((c).hook == XDNAT_HOOK_XDP)

/* Verdicts: hand to the stack, drop. */
static __always_inline int ctx_pass(struct xdnat_ctx c)
{
	return ctx_is_xdp(c) ? XDP_PASS : TC_ACT_OK;
}

static __always_inline int ctx_drop(struct xdnat_ctx c)
{
	return ctx_is_xdp(c) ? XDP_DROP : TC_ACT_SHOT;
}

static __always_inline void *ctx_data(struct xdnat_ctx c)
{
	return ctx_is_xdp(c) ? (void *)(long)CTX_XDP(c)->data : (void *)(long)CTX_SKB(c)->data;
}

static __always_inline void *ctx_data_end(struct xdnat_ctx c)
{
	return ctx_is_xdp(c) ? (void *)(long)CTX_XDP(c)->data_end :
			       (void *)(long)CTX_SKB(c)->data_end;
}

/* Whole frame length.  A tc skb may be longer than its linear part (GSO,
 * paged data); an XDP frame is linear (no multi-buffer programs here). */
static __always_inline __u32 ctx_len(struct xdnat_ctx c)
{
	void *data, *end;

	if (!ctx_is_xdp(c))
		return CTX_SKB(c)->len;
	/* Opaque copies: with ALU32 (-mcpu=v3) clang would otherwise compute
	 * the difference on 32-bit copies of the packet pointers and may
	 * reuse such a copy as the pointer, which the verifier rejects. */
	data = ctx_data(c);
	end = ctx_data_end(c);
	asm volatile("" : "+r"(data), "+r"(end));
	return (__u32)(end - data);
}

static __always_inline __u32 ctx_ingress_ifindex(struct xdnat_ctx c)
{
	return ctx_is_xdp(c) ? CTX_XDP(c)->ingress_ifindex : CTX_SKB(c)->ingress_ifindex;
}

/* Headers the datapath looks at: Ethernet, outer IPv4, inner IPv4 with
 * options, and for ICMP errors 8 bytes of ICMP, the quoted IPv4 header and
 * 8 bytes. */
#define XDNAT_PULL_LEN (14 + 60 + 60 + 8 + 60 + 8)

/* Make the first @len bytes (or the whole packet) directly accessible.
 * tc: an skb's headers may sit in paged fragments.  XDP: always linear. */
static __always_inline void ctx_pull(struct xdnat_ctx c, __u32 len)
{
	struct __sk_buff *skb = CTX_SKB(c);

	if (ctx_is_xdp(c))
		return;
	if ((void *)(long)skb->data + len > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, len < skb->len ? len : skb->len);
}

/* A GRO'd tc skb is many datagrams: the stack segments it, so it gets no
 * ICMP error as a whole.  XDP frames are single datagrams. */
static __always_inline int ctx_is_gso(struct xdnat_ctx c)
{
	return !ctx_is_xdp(c) && CTX_SKB(c)->gso_segs > 1;
}

enum ctx_room {
	CTX_ROOM_PLAIN,      /* room for headers we write ourselves */
	CTX_ROOM_ENCAP_IPIP, /* an outer IPv4 header (IP-in-IP) goes in */
	CTX_ROOM_DECAP_IPIP, /* the outer IPv4 header comes out */
	CTX_ROOM_ENCAP_UDP,  /* RFC 3519: outer IPv4 + UDP + 4-byte tunnel header in */
	CTX_ROOM_DECAP_UDP,  /* ... and out (the same for the GSO type: L3 decap) */
};

/*
 * Insert (@delta > 0) or remove (< 0) bytes right after the Ethernet
 * header, which stays in front.  Returns 0 or a negative error.
 *  XDP: only the head moves, so the Ethernet header is copied across.
 *  tc:  bpf_skb_adjust_room() in MAC mode; the ENCAP/DECAP flags keep the
 *       GSO type right, so a GRO'd skb is segmented as tunnel packets (or
 *       no longer as tunnel packets).  Kernels before 6.3 reject the DECAP
 *       flag: then without it.
 */
static __always_inline int ctx_adjust_room(struct xdnat_ctx c, int delta, enum ctx_room mode)
{
	struct __sk_buff *skb = CTX_SKB(c);
	struct ethhdr saved, *eth;

	if (ctx_is_xdp(c)) {
		eth = ctx_data(c);
		if ((void *)(eth + 1) > ctx_data_end(c))
			return -1;
		saved = *eth;
		if (bpf_xdp_adjust_head(CTX_XDP(c), -delta))
			return -1;
		eth = ctx_data(c);
		if ((void *)(eth + 1) > ctx_data_end(c))
			return -1;
		*eth = saved;
		return 0;
	}
	if (mode == CTX_ROOM_ENCAP_IPIP)
		return bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_MAC,
					   BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
	/* UDP tunnel: the 4-byte tunnel-data header stands where a tunnel's
	 * inner MAC header would (ENCAP_L2(4)), so GSO segments the inner
	 * packet and repeats all 32 bytes in front of each segment. */
	if (mode == CTX_ROOM_ENCAP_UDP)
		return bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_MAC,
					   BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
					   BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
					   BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct xdnat_mip_tunnel_hdr)));
	if ((mode == CTX_ROOM_DECAP_IPIP || mode == CTX_ROOM_DECAP_UDP) &&
	    !bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4))
		return 0;
	return bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_MAC, 0);
}

/* Cut the frame to its first @len bytes (no-op when not longer). */
static __always_inline int ctx_trim(struct xdnat_ctx c, __u32 len)
{
	__u32 cur = ctx_len(c);

	if (cur <= len)
		return 0;
	if (ctx_is_xdp(c))
		return bpf_xdp_adjust_tail(CTX_XDP(c), -(int)(cur - len));
	return bpf_skb_change_tail(CTX_SKB(c), len, 0);
}

/*
 * Can the datapath send a packet whose next hop has no resolved neighbour?
 * tc: yes, bpf_redirect_neigh() resolves it.  XDP: no, the stack forwards
 * such packets (and decrements their TTL).
 */
static __always_inline int ctx_resolves_neigh(struct xdnat_ctx c)
{
	return !ctx_is_xdp(c);
}

static __always_inline void ctx_set_macs(struct ethhdr *eth, const struct bpf_fib_lookup *fib)
{
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

/*
 * Send out of NIC @slot (@ifindex), to the next hop of @fib (@rc: its
 * bpf_fib_lookup result, SUCCESS or, where ctx_resolves_neigh(), NO_NEIGH).
 *  XDP: through the devmap, which batches the transmissions.
 *  tc:  bpf_redirect, or bpf_redirect_neigh to resolve the neighbour.
 */
static __always_inline int ctx_forward(struct xdnat_ctx c, struct ethhdr *eth, __u32 slot,
				       __u32 ifindex, int rc, const struct bpf_fib_lookup *fib)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		ctx_set_macs(eth, fib);
	if (ctx_is_xdp(c))
		return bpf_redirect_map(&xdnat_txports, slot, 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return bpf_redirect(ifindex, 0);
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

/*
 * Hairpin: back out of the LAN NIC it came in on.
 *  XDP: XDP_TX, no devmap lookup for the same NIC.
 *  tc:  a redirect like any other.
 */
static __always_inline int ctx_hairpin(struct xdnat_ctx c, struct ethhdr *eth, int rc,
				       const struct bpf_fib_lookup *fib)
{
	if (ctx_is_xdp(c)) {
		ctx_set_macs(eth, fib);
		return XDP_TX;
	}
	return ctx_forward(c, eth, XDNAT_TXPORT_LAN, cfg.lan_ifindex, rc, fib);
}

/*
 * An answer (ICMP error) back out of the NIC the frame came in on, slot
 * @slot of the devmap.
 *  XDP: through the devmap, not XDP_TX: a veth drops XDP_TX frames of
 *       skb-backed packets its peer sent (seen on 6.18), redirect works.
 *  tc:  bpf_redirect to the ingress device.
 */
static __always_inline int ctx_redirect_back(struct xdnat_ctx c, __u32 slot)
{
	if (ctx_is_xdp(c))
		return bpf_redirect_map(&xdnat_txports, slot, 0);
	return bpf_redirect(CTX_SKB(c)->ifindex, 0);
}

#endif /* XDNAT_LIB_CTX_H */
