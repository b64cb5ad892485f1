/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The router's action paths, written once over the context layer
 * (lib/ctx.h) for XDP and tc:
 *
 *   wan_path()    WAN ingress: classify, next hop, encapsulate, send
 *   lan_path()    LAN ingress: verify the host's tunnel packet, next hop,
 *                 decapsulate (or re-address a hairpin), send
 *   onearm_path() both on one NIC
 *
 * A packet the datapath cannot send itself (unresolved neighbour where the
 * hook cannot resolve it, too big without DF) is handed to the stack, which
 * forwards it; tunnel packets from hosts never are on their own (the stack
 * has no IP-in-IP device).
 */
#ifndef XDNAT_LIB_DATAPATH_H
#define XDNAT_LIB_DATAPATH_H

#include "lib/ctx.h"
#include "lib/classify.h"
#include "lib/counters.h"
#include "lib/nexthop.h"

/* Verdict for a packet the datapath does not forward. */
static __always_inline int finish(struct xdnat_ctx c, enum xdnat_act act,
				  const struct xdnat_pkt *p)
{
	count(p->reason, p->bytes);
	if (act == XDNAT_ACT_PASS || (act == XDNAT_ACT_UNKNOWN && !unknown_is_drop()))
		return ctx_pass(c);
	return ctx_drop(c);
}

/* Does the datapath send a packet with next-hop result @rc itself?  If not,
 * the stack forwards it (and decrements the TTL). */
static __always_inline int sends_itself(struct xdnat_ctx c, int rc)
{
	return rc == BPF_FIB_LKUP_RET_SUCCESS ||
	       (rc == BPF_FIB_LKUP_RET_NO_NEIGH && ctx_resolves_neigh(c));
}

/*
 * Answer the frame (a DF datagram too big for the next hop) with ICMP
 * fragmentation-needed carrying @mtu, in place, and send it back out of the
 * NIC it came in on.  @tunnel: the frame is a tunnel packet from a host
 * ([eth][outer][inner]) and so is the answer.  The outer/inner headers were
 * validated by the classifier.
 */
static __always_inline int frag_needed(struct xdnat_ctx c, const struct xdnat_pkt *p,
				       int tunnel, __u16 mtu)
{
	void *data = ctx_data(c), *data_end = ctx_data_end(c);
	__u32 l3 = sizeof(struct ethhdr) + (tunnel ? sizeof(struct iphdr) : 0);
	struct iphdr *ip = data + l3, *outer = data + sizeof(struct ethhdr);
	__be32 src, dst, tun_dst;
	struct ethhdr saved;
	__u32 quote, keep;

	if ((void *)(ip + 1) > data_end)
		return ctx_drop(c);
	if (!icmp_error_allowed(ip, data_end)) {
		count(XDNAT_R_DROP_TOO_BIG, p->bytes);
		return ctx_drop(c);
	}
	saved = *(struct ethhdr *)data;
	quote = icmp_quote_len(ip);
	src = tunnel ? cfg.lan_addr : ip->daddr;
	dst = ip->saddr;
	tun_dst = outer->saddr;
	/* 28 bytes of new headers after the Ethernet header: [eth][28][(outer)]
	 * [ip]..., the (outer) header slides into the slot in front of the new
	 * one and the quote stays where it is. */
	keep = l3 + sizeof(struct iphdr) + sizeof(struct icmphdr) + quote;
	if (ctx_adjust_room(c, sizeof(struct iphdr) + 8 /* ICMP header */, CTX_ROOM_PLAIN) ||
	    ctx_trim(c, keep))
		goto internal;
	ctx_pull(c, keep);
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	if (xdnat_write_frag_needed(data, data_end, &saved, tunnel, cfg.lan_addr, tun_dst,
				    src, dst, mtu, quote))
		goto internal;
	count(XDNAT_R_TOO_BIG_ICMP, p->bytes);
	return ctx_redirect_back(c, tunnel ? XDNAT_TXPORT_LAN : XDNAT_TXPORT_WAN);
internal:
	count(XDNAT_R_DROP_INTERNAL, p->bytes);
	return ctx_drop(c);
}

/* Roaming hosts: uses finish(), sends_itself() and frag_needed() above. */
#include "lib/roam.h"

static __always_inline int wan_path(struct xdnat_ctx c)
{
	struct xdnat_coa_ep coa;
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *inner, *outer;
	void *data, *data_end;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc;

	ctx_pull(c, XDNAT_PULL_LEN);
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	p.wire_len = ctx_len(c);
	act = wan_classify(data, data_end, &p);
	if (act == XDNAT_ACT_HOLD) {
		if (hold_frame(c.raw, &p, ctx_ingress_ifindex(c)))
			return finish(c, XDNAT_ACT_UNKNOWN, &p);
		count(p.reason, p.bytes);
		return ctx_drop(c);
	}
	if (act == XDNAT_ACT_MIP) {
		act = roam_classify(data, data_end, &p);
		if (act == XDNAT_ACT_FORWARD)
			return p.reason == XDNAT_R_HAIRPIN ? roam_hairpin_from_coa(c, &p) :
							    roam_from_coa(c, &p);
		return finish(c, act, &p);
	}
	if (act != XDNAT_ACT_FORWARD)
		return finish(c, act, &p);
	if (coa_active(p.host_id, &coa))
		return roam_to_coa(c, &p, &coa);

	inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);
	fib_prepare(&fib, ctx_ingress_ifindex(c), cfg.lan_addr, p.host_lan, inner->tos,
		    p.bytes + sizeof(struct iphdr));
	rc = host_next_hop(c.raw, &fib, p.host_id, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return ctx_drop(c);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(IP_DF)) &&
	    !ctx_is_gso(c) && fib.mtu_result > XDNAT_TUNNEL_OVERHEAD)
		/* Tunnel MTU policy: DF and too big for the LAN once wrapped:
		 * tell the sender the tunnel MTU. */
		return frag_needed(c, &p, 0, fib.mtu_result - XDNAT_TUNNEL_OVERHEAD);

	if (ctx_adjust_room(c, sizeof(struct iphdr), CTX_ROOM_ENCAP_IPIP)) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return ctx_drop(c);
	}
	xdnat_write_outer(outer, inner, cfg.lan_addr, p.host_lan);
	if (!sends_itself(c, rc)) {
		/* Unresolved neighbour, or too big for the LAN without DF (or
		 * GSO): the stack forwards the tunnel packet (resolving,
		 * fragmenting the outer header; the host reassembles). */
		count(reason, p.bytes);
		return ctx_pass(c);
	}
	count(p.reason, p.bytes);
	count_host(p.host_id, 1, p.bytes);
	return ctx_forward(c, data, XDNAT_TXPORT_LAN, cfg.lan_ifindex, rc, &fib);
}

static __always_inline int lan_path(struct xdnat_ctx c)
{
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *outer, *inner;
	void *data, *data_end;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc, self;

	ctx_pull(c, XDNAT_PULL_LEN);
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	p.wire_len = ctx_len(c);
	act = lan_classify(data, data_end, &p);
	if (act != XDNAT_ACT_FORWARD) {
		/* Hairpin to an unallocated port of a global address: the
		 * router's own services see it only through the unknown policy. */
		return finish(c, act == XDNAT_ACT_UNKNOWN ? XDNAT_ACT_DROP : act, &p);
	}

	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);

	if (p.reason == XDNAT_R_HAIRPIN) {
		struct xdnat_coa_ep coa;

		if (coa_active(p.dst_id, &coa))
			return roam_hairpin_to_coa(c, &p, &coa);
		fib_prepare(&fib, ctx_ingress_ifindex(c), cfg.lan_addr, p.host_lan, inner->tos,
			    bpf_ntohs(outer->tot_len));
		rc = host_next_hop(c.raw, &fib, p.dst_id, &reason);
		if (!sends_itself(c, rc)) {
			/* No stack fallback for a tunnel packet: drop and count. */
			count(reason, p.bytes);
			return ctx_drop(c);
		}
		xdnat_ttl_dec(inner);
		xdnat_rewrite_outer(outer, cfg.lan_addr, p.host_lan);
		count(XDNAT_R_HAIRPIN, p.bytes);
		count_host(p.host_id, 0, p.bytes);
		count_host(p.dst_id, 1, p.bytes);
		return ctx_hairpin(c, data, rc, &fib);
	}

	fib_prepare(&fib, ctx_ingress_ifindex(c), inner->saddr, inner->daddr, inner->tos, p.bytes);
	fib.l4_protocol = inner->protocol;
	rc = fib_next_hop(c.raw, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return ctx_drop(c);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(IP_DF)) &&
	    !ctx_is_gso(c))
		/* The stack would answer to the global address, i.e. itself:
		 * answer the host through its tunnel instead. */
		return frag_needed(c, &p, 1, fib.mtu_result);

	self = sends_itself(c, rc);
	if (ctx_adjust_room(c, -(int)sizeof(struct iphdr), CTX_ROOM_DECAP_IPIP)) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return ctx_drop(c);
	}
	if (!self) {
		/* The stack forwards it (and decrements the TTL itself). */
		count(reason, p.bytes);
		return ctx_pass(c);
	}
	xdnat_ttl_dec(inner);
	count(p.reason, p.bytes); /* host_to_wan, or ike_from_host/shared_unchecked */
	count_host(p.host_id, 0, p.bytes);
	return ctx_forward(c, data, XDNAT_TXPORT_WAN, cfg.wan_ifindex, rc, &fib);
}

/*
 * One-arm mode (a cloud VM with one NIC): WAN and LAN share the interface.
 * IP-in-IP to the router's LAN address comes from hosts and takes the LAN
 * path; everything else takes the WAN path.  Both send back out of the same
 * NIC (the devmap's WAN and LAN slots hold the same ifindex).
 */
static __always_inline int onearm_path(struct xdnat_ctx c)
{
	struct ethhdr *eth;
	struct iphdr *ip;

	ctx_pull(c, sizeof(*eth) + sizeof(*ip));
	eth = ctx_data(c);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) <= ctx_data_end(c) && eth->h_proto == bpf_htons(ETH_P_IP) &&
	    ip->daddr == cfg.lan_addr && ip->protocol == IPPROTO_IPIP)
		return lan_path(c);
	return wan_path(c);
}

#endif /* XDNAT_LIB_DATAPATH_H */
