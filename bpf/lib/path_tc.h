/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tc action paths (to be merged with the XDP ones).
 */
#ifndef XDNAT_LIB_PATH_TC_H
#define XDNAT_LIB_PATH_TC_H

#include "lib/classify.h"
#include "lib/counters.h"
#include "lib/nexthop.h"
#include <linux/pkt_cls.h>

/* ------------------------------------------------------------------- tc */

/* Make the first @len bytes (or the whole packet) directly accessible. */
static __always_inline void tc_pull(struct __sk_buff *skb, __u32 len)
{
	if ((void *)(long)skb->data + len > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, len < skb->len ? len : skb->len);
}

/* Headers we look at: Ethernet, outer IPv4, inner IPv4 with options, and
 * for ICMP errors 8 bytes of ICMP, the quoted IPv4 header and 8 bytes. */
#define XDNAT_TC_PULL_LEN (14 + 60 + 60 + 8 + 60 + 8)

static __always_inline int tc_finish(enum xdnat_act act, const struct xdnat_pkt *p)
{
	count(p->reason, p->bytes);
	if (act == XDNAT_ACT_PASS)
		return TC_ACT_OK;
	if (act == XDNAT_ACT_UNKNOWN && !unknown_is_drop())
		return TC_ACT_OK;
	return TC_ACT_SHOT;
}

/* Redirect out of @ifindex; with no resolved neighbour let the kernel do it. */
static __always_inline int tc_redirect(struct __sk_buff *skb, int rc,
				       const struct bpf_fib_lookup *fib, __u32 ifindex)
{
	struct ethhdr *eth;

	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		eth = (void *)(long)skb->data;
		if ((void *)(eth + 1) > (void *)(long)skb->data_end)
			return TC_ACT_SHOT;
		set_macs(eth, fib);
		return bpf_redirect(ifindex, 0);
	}
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

/* tc twin of xdp_frag_needed(): same layout, built with skb helpers. */
static __always_inline int tc_frag_needed(struct __sk_buff *skb, const struct xdnat_pkt *p,
					  int tunnel, __u16 mtu)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 l3 = sizeof(struct ethhdr) + (tunnel ? sizeof(struct iphdr) : 0);
	struct iphdr *ip = data + l3, *outer = data + sizeof(struct ethhdr);
	__be32 src, dst, tun_dst;
	struct ethhdr saved;
	__u32 quote, keep;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	if (!icmp_error_allowed(ip, data_end)) {
		count(XDNAT_R_DROP_TOO_BIG, p->bytes);
		return TC_ACT_SHOT;
	}
	saved = *(struct ethhdr *)data;
	quote = icmp_quote_len(ip);
	src = tunnel ? cfg.lan_addr : ip->daddr;
	dst = ip->saddr;
	tun_dst = outer->saddr;
	keep = l3 + sizeof(struct iphdr) + 8 + quote;
	/* 28 bytes after the Ethernet header: [eth][28][(outer)][ip]..., then
	 * the (outer) header slides into the slot in front of the new one. */
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr) + 8, BPF_ADJ_ROOM_MAC, 0) ||
	    bpf_skb_change_tail(skb, keep, 0))
		goto internal;
	tc_pull(skb, keep);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (xdnat_write_frag_needed(data, data_end, &saved, tunnel, cfg.lan_addr, tun_dst,
				    src, dst, mtu, quote))
		goto internal;
	count(XDNAT_R_TOO_BIG_ICMP, p->bytes);
	return bpf_redirect(skb->ifindex, 0);
internal:
	count(XDNAT_R_DROP_INTERNAL, p->bytes);
	return TC_ACT_SHOT;
}

static __always_inline int wan_tc(struct __sk_buff *skb)
{
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *outer, *inner;
	enum xdnat_act act;
	__u32 reason = 0;
	void *data, *data_end;
	int rc;

	tc_pull(skb, XDNAT_TC_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	p.wire_len = skb->len;
	act = wan_classify(data, data_end, &p);
	if (act == XDNAT_ACT_HOLD) {
		if (hold_frame(skb, &p, skb->ingress_ifindex))
			return tc_finish(XDNAT_ACT_UNKNOWN, &p);
		count(p.reason, p.bytes);
		return TC_ACT_SHOT;
	}
	if (act != XDNAT_ACT_FORWARD)
		return tc_finish(act, &p);

	inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > data_end)
		return TC_ACT_SHOT;
	fib_prepare(&fib, skb->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
		    p.bytes + sizeof(struct iphdr));
	rc = host_next_hop(skb, &fib, p.host_id, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return TC_ACT_SHOT;
	}
	/* A GRO'd skb is many datagrams: the stack segments it. */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)) &&
	    skb->gso_segs <= 1 && fib.mtu_result > XDNAT_TUNNEL_OVERHEAD)
		return tc_frag_needed(skb, &p, 0, fib.mtu_result - XDNAT_TUNNEL_OVERHEAD);
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4)) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return TC_ACT_SHOT;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return TC_ACT_SHOT;
	}
	xdnat_write_outer(outer, inner, cfg.lan_addr, p.host_lan);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		/* The stack fragments the tunnel packet or answers it. */
		count(reason, p.bytes);
		return TC_ACT_OK;
	}
	count(p.reason, p.bytes);
	count_host(p.host_id, 1, p.bytes);
	return tc_redirect(skb, rc, &fib, cfg.lan_ifindex);
}

static __always_inline int lan_tc(struct __sk_buff *skb)
{
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *outer, *inner;
	enum xdnat_act act;
	__u32 reason = 0;
	void *data, *data_end;
	int rc;

	tc_pull(skb, XDNAT_TC_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	p.wire_len = skb->len;
	act = lan_classify(data, data_end, &p);
	if (act != XDNAT_ACT_FORWARD)
		return tc_finish(act == XDNAT_ACT_UNKNOWN ? XDNAT_ACT_DROP : act, &p);

	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return TC_ACT_SHOT;

	if (p.reason == XDNAT_R_HAIRPIN) {
		fib_prepare(&fib, skb->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
			    bpf_ntohs(outer->tot_len));
		rc = host_next_hop(skb, &fib, p.dst_id, &reason);
		if (rc < 0 || rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
			count(rc < 0 ? reason : XDNAT_R_PASS_TOO_BIG, p.bytes);
			return TC_ACT_SHOT;
		}
		xdnat_ttl_dec(inner);
		xdnat_rewrite_outer(outer, cfg.lan_addr, p.host_lan);
		count(XDNAT_R_HAIRPIN, p.bytes);
		count_host(p.host_id, 0, p.bytes);
		count_host(p.dst_id, 1, p.bytes);
		return tc_redirect(skb, rc, &fib, cfg.lan_ifindex);
	}

	fib_prepare(&fib, skb->ingress_ifindex, inner->saddr, inner->daddr, inner->tos, p.bytes);
	fib.l4_protocol = inner->protocol;
	rc = fib_next_hop(skb, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return TC_ACT_SHOT;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)) &&
	    skb->gso_segs <= 1)
		return tc_frag_needed(skb, &p, 1, fib.mtu_result);
	if (rc != BPF_FIB_LKUP_RET_FRAG_NEEDED)
		xdnat_ttl_dec(inner); /* else the stack forwards and decrements */
	/* Kernels before 6.3 reject the DECAP flag; without it GRO'd tunnel
	 * packets keep their tunnel GSO type, so prefer it where known. */
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4) &&
	    bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0)) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return TC_ACT_SHOT;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) {
		count(XDNAT_R_PASS_TOO_BIG, p.bytes);
		return TC_ACT_OK;
	}
	count(p.reason, p.bytes); /* host_to_wan, or ike_from_host/shared_unchecked */
	count_host(p.host_id, 0, p.bytes);
	return tc_redirect(skb, rc, &fib, cfg.wan_ifindex);
}

#endif /* XDNAT_LIB_PATH_TC_H */
