/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Roaming hosts (issue 18): a host registered away from home is reached at
 * its care-of endpoint through RFC 3519 UDP tunnelling out of the WAN NIC,
 * and reverse-tunnels (RFC 3024) its own traffic to G:434.  The maps and the
 * wire format are in maps/xdnat_abi.h ("the care-of endpoint").
 *
 *   coa_active()     the switch: is the host at a care-of endpoint?
 *   roam_classify()  UDP to G:434: tunnel data from a registered endpoint,
 *                    checked like a LAN tunnel packet, or registration
 *                    traffic for the stack
 *   roam_to_coa()    WAN -> care-of endpoint (encapsulate, send on the WAN)
 *   roam_from_coa()  reverse tunnel -> WAN (decapsulate, send on the WAN)
 *   roam_hairpin_from_coa(), roam_hairpin_to_coa()
 *                    host away <-> another host of this router (hairpin)
 */
#ifndef XDNAT_LIB_ROAM_H
#define XDNAT_LIB_ROAM_H

#include "lib/ctx.h"
#include "lib/classify.h"
#include "lib/counters.h"
#include "lib/nexthop.h"

/* Read host @host_id's endpoint word once; true if it is active (*ep set). */
static __always_inline int coa_active(__u32 host_id, struct xdnat_coa_ep *ep)
{
	struct xdnat_coa *c = bpf_map_lookup_elem(&xdnat_coa, &host_id);
	union {
		__u64 word;
		struct xdnat_coa_ep ep;
	} v;

	if (!c)
		return 0;
	/* One 8-byte load: address, port and flags of one registration. */
	v.word = *(volatile __u64 *)&c->word;
	if (!(v.ep.flags & XDNAT_COA_F_ACTIVE))
		return 0;
	*ep = v.ep;
	return 1;
}

/*
 * WAN ingress, UDP to home agent port 434 of global address @ip->daddr (a
 * router port).  Tunnel data (RFC 3519 type 4) from the registered
 * care-of endpoint of a host, whose inner packet keeps the LAN rules, is
 * XDNAT_ACT_FORWARD with p->reason ROAM_FROM_COA (p->bytes: inner length);
 * other messages go to the stack (registration socket).
 */
static __always_inline enum xdnat_act
roam_classify(void *data, void *data_end, struct xdnat_pkt *p)
{
	struct iphdr *outer = data + sizeof(struct ethhdr);
	struct udphdr *uh = (void *)(outer + 1);
	struct xdnat_mip_tunnel_hdr *th = (void *)(uh + 1);
	struct iphdr *inner = (void *)(th + 1);
	struct xdnat_coa_key k = {};
	struct xdnat_coa_ep ep;
	struct xdnat_host *h;
	enum xdnat_act act;
	__u32 *idp, sender;

	/* Validated by wan_classify: Ethernet, outer IPv4 header and length. */
	if ((void *)(outer + 1) > data_end)
		goto malformed;
	if (outer->ihl != 5 || (void *)(th + 1) > data_end ||
	    bpf_ntohs(outer->tot_len) < sizeof(*outer) + sizeof(*uh) + sizeof(*th) ||
	    th->type != XDNAT_MIP_TUNNEL_DATA) {
		/* Registration request (type 1) and everything not tunnel data:
		 * the home agent's socket reads it (and refuses what is bad). */
		p->reason = XDNAT_R_PASS_MIP_REG;
		return XDNAT_ACT_PASS;
	}
	/* Tunnel data: from here on never to the stack, which could only
	 * drop it as an unknown message type. */
	k.addr = outer->saddr;
	k.port = uh->source;
	idp = bpf_map_lookup_elem(&xdnat_coa_idx, &k);
	sender = idp ? *idp : XDNAT_HOST_NONE;
	if (!sender || !coa_active(sender, &ep) || ep.addr != outer->saddr ||
	    ep.port != uh->source) {
		p->reason = XDNAT_R_DROP_COA_UNKNOWN;
		return XDNAT_ACT_DROP;
	}
	h = bpf_map_lookup_elem(&xdnat_hosts, &sender);
	if (!h || !(h->flags & XDNAT_HOST_F_VALID)) {
		p->reason = XDNAT_R_DROP_COA_UNKNOWN;
		return XDNAT_ACT_DROP;
	}
	p->host_id = sender;
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->reason = XDNAT_R_FRAGMENT;
		return XDNAT_ACT_DROP;
	}
	if (th->next_header != XDNAT_MIP_NH_IPV4 ||
	    bpf_ntohs(uh->len) != bpf_ntohs(outer->tot_len) - sizeof(*outer) ||
	    xdnat_ip_check(inner, data_end,
			   p->wire_len - sizeof(struct ethhdr) - XDNAT_COA_OVERHEAD) != XDNAT_IP_OK ||
	    bpf_ntohs(outer->tot_len) != bpf_ntohs(inner->tot_len) + XDNAT_COA_OVERHEAD)
		goto malformed;
	act = host_inner_check(inner, data_end, sender, h, p);
	if (act != XDNAT_ACT_FORWARD)
		return act;
	/* Hairpin (to a host of this router: p->dst_id) keeps its reason. */
	if (p->reason != XDNAT_R_HAIRPIN)
		p->reason = XDNAT_R_ROAM_FROM_COA;
	return XDNAT_ACT_FORWARD;
malformed:
	p->reason = XDNAT_R_DROP_MALFORMED;
	return XDNAT_ACT_DROP;
}

/*
 * WAN -> host @p->host_id at care-of endpoint @ep: [eth][inner] becomes
 * [eth][IPv4 G -> coa][UDP 434 -> port][type 4][inner], sent out of the WAN
 * NIC to the care-of address's next hop.  Too big for that path: with DF,
 * fragmentation-needed to the sender with the tunnel's MTU (path MTU - 32),
 * as for the LAN tunnel; without DF (or a GSO skb) the stack forwards the
 * encapsulated packet and fragments (or segments) it.
 */
static __always_inline int roam_to_coa(struct xdnat_ctx c, struct xdnat_pkt *p,
				       const struct xdnat_coa_ep *ep)
{
	void *data = ctx_data(c), *data_end = ctx_data_end(c);
	struct iphdr *inner = data + sizeof(struct ethhdr), *outer;
	struct bpf_fib_lookup fib;
	__u32 reason = 0;
	__be32 gaddr;
	int rc;

	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);
	gaddr = inner->daddr; /* the global address the packet came to: the home agent */
	fib_prepare(&fib, ctx_ingress_ifindex(c), gaddr, ep->addr, inner->tos,
		    p->bytes + XDNAT_COA_OVERHEAD);
	fib.l4_protocol = IPPROTO_UDP;
	rc = fib_next_hop(c.raw, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p->bytes);
		return ctx_drop(c);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(IP_DF)) &&
	    !ctx_is_gso(c) && fib.mtu_result > XDNAT_COA_OVERHEAD)
		return frag_needed(c, p, 0, fib.mtu_result - XDNAT_COA_OVERHEAD);

	if (ctx_adjust_room(c, XDNAT_COA_OVERHEAD, CTX_ROOM_ENCAP_UDP)) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	outer = data + sizeof(struct ethhdr);
	inner = (void *)outer + XDNAT_COA_OVERHEAD;
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	xdnat_write_outer_udp(outer, inner, gaddr, ep->addr, bpf_htons(XDNAT_MIP_PORT), ep->port);
	if (!sends_itself(c, rc)) {
		/* Unresolved neighbour, or too big without DF: the stack
		 * forwards the tunnel packet (accept_local lets it take G). */
		count(reason, p->bytes);
		return ctx_pass(c);
	}
	count(XDNAT_R_ROAM_TO_COA, p->bytes);
	count_host(p->host_id, 1, p->bytes);
	return ctx_forward(c, data, XDNAT_TXPORT_WAN, cfg.wan_ifindex, rc, &fib);
}

/*
 * Reverse tunnel (classified by roam_classify): strip the 32 bytes, TTL-1,
 * send the inner packet out of the WAN NIC as the LAN path does.  Too big
 * for the path with DF: dropped and counted (drop_too_big): an ICMP error
 * back through the UDP tunnel is left out, the host's tunnel MTU (its
 * path MTU - 32) keeps its packets small enough.  Without DF (or GSO) the
 * stack forwards and fragments (segments) it.
 */
static __always_inline int roam_from_coa(struct xdnat_ctx c, struct xdnat_pkt *p)
{
	void *data = ctx_data(c), *data_end = ctx_data_end(c);
	struct iphdr *inner = data + sizeof(struct ethhdr) + XDNAT_COA_OVERHEAD;
	struct bpf_fib_lookup fib;
	__u32 reason = 0;
	int rc, self;

	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);
	fib_prepare(&fib, ctx_ingress_ifindex(c), inner->saddr, inner->daddr, inner->tos, p->bytes);
	fib.l4_protocol = inner->protocol;
	rc = fib_next_hop(c.raw, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p->bytes);
		return ctx_drop(c);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(IP_DF)) &&
	    !ctx_is_gso(c)) {
		count(XDNAT_R_DROP_TOO_BIG, p->bytes);
		return ctx_drop(c);
	}
	self = sends_itself(c, rc);
	if (ctx_adjust_room(c, -(int)XDNAT_COA_OVERHEAD, CTX_ROOM_DECAP_UDP)) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	if (!self) {
		count(reason, p->bytes);
		return ctx_pass(c);
	}
	xdnat_ttl_dec(inner);
	count(XDNAT_R_ROAM_FROM_COA, p->bytes);
	count_host(p->host_id, 0, p->bytes);
	return ctx_forward(c, data, XDNAT_TXPORT_WAN, cfg.wan_ifindex, rc, &fib);
}

/* Count a hairpin between hosts @p->host_id and @p->dst_id once it leaves. */
static __always_inline void count_hairpin(const struct xdnat_pkt *p)
{
	count(XDNAT_R_HAIRPIN, p->bytes);
	count_host(p->host_id, 0, p->bytes);
	count_host(p->dst_id, 1, p->bytes);
}

/*
 * Hairpin from a host away (reverse tunnel, classified by roam_classify) to
 * host @p->dst_id: to its care-of endpoint if it is away too (the 32 bytes
 * rewritten in place, back out of the WAN NIC), else IP-in-IP to its LAN
 * address (the 32 bytes swapped for 20).  Like the LAN hairpin, a packet
 * the datapath cannot send itself is dropped: the stack has no tunnel.
 */
static __always_inline int roam_hairpin_from_coa(struct xdnat_ctx c, struct xdnat_pkt *p)
{
	void *data = ctx_data(c), *data_end = ctx_data_end(c);
	struct iphdr *outer = data + sizeof(struct ethhdr), *inner;
	struct xdnat_coa_ep coa;
	struct bpf_fib_lookup fib;
	__u32 reason = 0;
	int rc;

	inner = (void *)outer + XDNAT_COA_OVERHEAD;
	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);
	if (coa_active(p->dst_id, &coa)) {
		fib_prepare(&fib, ctx_ingress_ifindex(c), inner->daddr, coa.addr, inner->tos,
			    p->bytes + XDNAT_COA_OVERHEAD);
		fib.l4_protocol = IPPROTO_UDP;
		rc = fib_next_hop(c.raw, &fib, cfg.wan_ifindex, &reason);
		if (!sends_itself(c, rc)) {
			count(reason, p->bytes);
			return ctx_drop(c);
		}
		xdnat_ttl_dec(inner);
		xdnat_write_outer_udp(outer, inner, inner->daddr, coa.addr,
				      bpf_htons(XDNAT_MIP_PORT), coa.port);
		count_hairpin(p);
		return ctx_forward(c, data, XDNAT_TXPORT_WAN, cfg.wan_ifindex, rc, &fib);
	}
	fib_prepare(&fib, ctx_ingress_ifindex(c), cfg.lan_addr, p->host_lan, inner->tos,
		    p->bytes + sizeof(struct iphdr));
	rc = host_next_hop(c.raw, &fib, p->dst_id, &reason);
	if (!sends_itself(c, rc)) {
		count(reason, p->bytes);
		return ctx_drop(c);
	}
	/* Out of the UDP tunnel, into IP-in-IP: two steps, so that a tc GSO
	 * skb changes tunnel type with them. */
	if (ctx_adjust_room(c, -(int)XDNAT_COA_OVERHEAD, CTX_ROOM_DECAP_UDP) ||
	    ctx_adjust_room(c, sizeof(struct iphdr), CTX_ROOM_ENCAP_IPIP)) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	xdnat_ttl_dec(inner);
	xdnat_write_outer(outer, inner, cfg.lan_addr, p->host_lan);
	count_hairpin(p);
	return ctx_forward(c, data, XDNAT_TXPORT_LAN, cfg.lan_ifindex, rc, &fib);
}

/*
 * Hairpin from a host on the LAN (its IP-in-IP packet, checked by
 * lan_classify) to host @p->dst_id, away at @coa: the 20 bytes of IP-in-IP
 * swapped for the 32 of the UDP tunnel, out of the WAN NIC.
 */
static __always_inline int roam_hairpin_to_coa(struct xdnat_ctx c, struct xdnat_pkt *p,
					       const struct xdnat_coa_ep *coa)
{
	void *data = ctx_data(c), *data_end = ctx_data_end(c);
	struct iphdr *outer = data + sizeof(struct ethhdr), *inner;
	struct bpf_fib_lookup fib;
	__u32 reason = 0;
	int rc;

	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return ctx_drop(c);
	fib_prepare(&fib, ctx_ingress_ifindex(c), inner->daddr, coa->addr, inner->tos,
		    p->bytes + XDNAT_COA_OVERHEAD);
	fib.l4_protocol = IPPROTO_UDP;
	rc = fib_next_hop(c.raw, &fib, cfg.wan_ifindex, &reason);
	if (!sends_itself(c, rc)) {
		count(reason, p->bytes);
		return ctx_drop(c);
	}
	if (ctx_adjust_room(c, -(int)sizeof(struct iphdr), CTX_ROOM_DECAP_IPIP) ||
	    ctx_adjust_room(c, XDNAT_COA_OVERHEAD, CTX_ROOM_ENCAP_UDP)) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	data = ctx_data(c);
	data_end = ctx_data_end(c);
	outer = data + sizeof(struct ethhdr);
	inner = (void *)outer + XDNAT_COA_OVERHEAD;
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p->bytes);
		return ctx_drop(c);
	}
	xdnat_ttl_dec(inner);
	xdnat_write_outer_udp(outer, inner, inner->daddr, coa->addr, bpf_htons(XDNAT_MIP_PORT),
			      coa->port);
	count_hairpin(p);
	return ctx_forward(c, data, XDNAT_TXPORT_WAN, cfg.wan_ifindex, rc, &fib);
}

#endif /* XDNAT_LIB_ROAM_H */
