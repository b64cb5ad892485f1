/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP action paths (to be merged with the tc ones).
 */
#ifndef XDNAT_LIB_PATH_XDP_H
#define XDNAT_LIB_PATH_XDP_H

#include "lib/classify.h"
#include "lib/counters.h"
#include "lib/nexthop.h"

/* ------------------------------------------------------------------ XDP */

static __always_inline int xdp_finish(enum xdnat_act act, const struct xdnat_pkt *p)
{
	count(p->reason, p->bytes);
	if (act == XDNAT_ACT_PASS)
		return XDP_PASS;
	if (act == XDNAT_ACT_UNKNOWN && !unknown_is_drop())
		return XDP_PASS;
	return XDP_DROP;
}

/*
 * Answer the frame in @ctx (a DF datagram too big for the next hop) with
 * ICMP fragmentation-needed carrying @mtu, in place, and send it back out of
 * the NIC it came in on.  @tunnel: the frame is a tunnel packet from a host
 * ([eth][outer][inner]) and so is the answer.  The outer/inner headers were
 * validated by the classifier.
 */

static __always_inline int xdp_frag_needed(struct xdp_md *ctx, const struct xdnat_pkt *p,
					   int tunnel, __u16 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = sizeof(struct ethhdr) + (tunnel ? sizeof(struct iphdr) : 0);
	struct iphdr *ip = data + l3, *outer = data + sizeof(struct ethhdr);
	__be32 src, dst, tun_dst;
	struct ethhdr saved;
	__u32 quote, keep, len;

	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (!icmp_error_allowed(ip, data_end)) {
		count(XDNAT_R_DROP_TOO_BIG, p->bytes);
		return XDP_DROP;
	}
	saved = *(struct ethhdr *)data;
	quote = icmp_quote_len(ip);
	src = tunnel ? cfg.lan_addr : ip->daddr;
	dst = ip->saddr;
	tun_dst = outer->saddr;
	/* The quote stays where it is; 28 bytes of new headers go in front. */
	keep = l3 + sizeof(struct iphdr) + 8 + quote;
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct iphdr) + 8)))
		goto internal;
	len = (void *)(long)ctx->data_end - (void *)(long)ctx->data;
	if (len > keep && bpf_xdp_adjust_tail(ctx, -(int)(len - keep)))
		goto internal;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (xdnat_write_frag_needed(data, data_end, &saved, tunnel, cfg.lan_addr, tun_dst,
				    src, dst, mtu, quote))
		goto internal;
	count(XDNAT_R_TOO_BIG_ICMP, p->bytes);
	/* Through the devmap rather than XDP_TX: a veth drops XDP_TX frames
	 * of skb-backed packets its peer sent (seen on 6.18), redirect works. */
	return bpf_redirect_map(&xdnat_txports, tunnel ? XDNAT_TXPORT_LAN : XDNAT_TXPORT_WAN, 0);
internal:
	count(XDNAT_R_DROP_INTERNAL, p->bytes);
	return XDP_DROP;
}

static __always_inline int wan_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *inner, *outer;
	struct ethhdr *eth, saved;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc;

	p.wire_len = data_end - data;
	act = wan_classify(data, data_end, &p);
	if (act == XDNAT_ACT_HOLD) {
		if (hold_frame(ctx, &p, ctx->ingress_ifindex))
			return xdp_finish(XDNAT_ACT_UNKNOWN, &p);
		count(p.reason, p.bytes);
		return XDP_DROP;
	}
	if (act != XDNAT_ACT_FORWARD)
		return xdp_finish(act, &p);

	eth = data;
	inner = data + sizeof(*eth);
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;
	saved = *eth;
	fib_prepare(&fib, ctx->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
		    p.bytes + sizeof(struct iphdr));
	rc = host_next_hop(ctx, &fib, p.host_id, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return XDP_DROP;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)) &&
	    fib.mtu_result > XDNAT_TUNNEL_OVERHEAD)
		/* Tunnel MTU policy: DF and too big for the LAN once wrapped:
		 * tell the sender the tunnel MTU. */
		return xdp_frag_needed(ctx, &p, 0, fib.mtu_result - XDNAT_TUNNEL_OVERHEAD);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr))) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	outer = data + sizeof(*eth);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	*eth = saved;
	xdnat_write_outer(outer, inner, cfg.lan_addr, p.host_lan);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		/* Unresolved neighbour, or too big for the LAN without DF: the
		 * stack forwards the tunnel packet (resolving, fragmenting the
		 * outer header; the host reassembles) on our behalf. */
		count(reason, p.bytes);
		return XDP_PASS;
	}
	set_macs(eth, &fib);
	count(p.reason, p.bytes);
	count_host(p.host_id, 1, p.bytes);
	return bpf_redirect_map(&xdnat_txports, XDNAT_TXPORT_LAN, 0);
}

static __always_inline int lan_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *outer, *inner;
	struct ethhdr *eth, saved;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc;

	p.wire_len = data_end - data;
	act = lan_classify(data, data_end, &p);
	if (act != XDNAT_ACT_FORWARD) {
		/* Hairpin to an unallocated port of a global address: the
		 * router's own services see it only through the unknown policy. */
		return xdp_finish(act == XDNAT_ACT_UNKNOWN ? XDNAT_ACT_DROP : act, &p);
	}

	eth = data;
	outer = data + sizeof(*eth);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;

	if (p.reason == XDNAT_R_HAIRPIN) {
		fib_prepare(&fib, ctx->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
			    bpf_ntohs(outer->tot_len));
		rc = host_next_hop(ctx, &fib, p.dst_id, &reason);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			/* No stack fallback for a tunnel packet: drop and count. */
			count(reason == XDNAT_R_PASS_NO_NEIGH || reason == XDNAT_R_PASS_TOO_BIG ?
			      reason : XDNAT_R_DROP_NO_ROUTE, p.bytes);
			return XDP_DROP;
		}
		xdnat_ttl_dec(inner);
		xdnat_rewrite_outer(outer, cfg.lan_addr, p.host_lan);
		set_macs(eth, &fib);
		count(XDNAT_R_HAIRPIN, p.bytes);
		count_host(p.host_id, 0, p.bytes);
		count_host(p.dst_id, 1, p.bytes);
		return XDP_TX;
	}

	fib_prepare(&fib, ctx->ingress_ifindex, inner->saddr, inner->daddr, inner->tos,
		    p.bytes);
	fib.l4_protocol = inner->protocol;
	rc = fib_next_hop(ctx, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return XDP_DROP;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)))
		/* The stack would answer to the global address, i.e. itself:
		 * answer the host through its tunnel instead. */
		return xdp_frag_needed(ctx, &p, 1, fib.mtu_result);

	saved = *eth;
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr))) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	inner = data + sizeof(*eth);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	*eth = saved;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		/* The stack forwards it (and decrements the TTL itself). */
		count(reason, p.bytes);
		return XDP_PASS;
	}
	xdnat_ttl_dec(inner);
	set_macs(eth, &fib);
	count(p.reason, p.bytes); /* host_to_wan, or ike_from_host/shared_unchecked */
	count_host(p.host_id, 0, p.bytes);
	return bpf_redirect_map(&xdnat_txports, XDNAT_TXPORT_WAN, 0);
}

#endif /* XDNAT_LIB_PATH_XDP_H */
