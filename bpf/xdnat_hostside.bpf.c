// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdnat host side (skeleton: xdnat_hostside), attached with tc to the host's LAN NIC:
 *   egress:  IPv4 from the global address -> IP-in-IP to the router;
 *   ingress: IP-in-IP from the router to us, inner destination the global
 *            address -> outer header removed; outer fragments go to the
 *            stack for reassembly (xdnat-host finishes them, slow path).
 * Away from home, xdnat_host_roam_egress/_ingress (below) do the same over
 * RFC 3519 UDP tunnelling to the home agent instead.
 * The host's stack and applications see plain packets to/from the global
 * address (configured on lo by xdnat-host).  Written over the context layer
 * (lib/ctx.h) like the router; only the tc entry points exist (the egress
 * hook has no XDP).
 */
#include "lib/ctx.h"
#include "lib/encap.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct xdnat_hostside_cfg cfg;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDNAT_HR_MAX);
	__type(key, __u32);
	__type(value, struct xdnat_counter);
} xdnat_hoststats SEC(".maps");

static __always_inline void hcount(__u32 reason, __u32 bytes)
{
	struct xdnat_counter *c = bpf_map_lookup_elem(&xdnat_hoststats, &reason);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

#define XDNAT_HOST_PULL_LEN (14 + 20 + 20)

/* Egress: a packet from the global address goes to the router in IP-in-IP. */
static __always_inline int host_egress(struct xdnat_ctx c)
{
	struct iphdr *ip, *outer, *inner;
	struct ethhdr *eth;
	void *data_end;
	__u32 bytes;

	if (!ctx_is_ipv4(c))
		goto pass;
	ctx_pull(c, XDNAT_HOST_PULL_LEN);
	eth = ctx_data(c);
	data_end = ctx_data_end(c);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->saddr != cfg.gaddr)
		goto pass;
	bytes = bpf_ntohs(ip->tot_len);
	if (ctx_adjust_room(c, sizeof(struct iphdr), CTX_ROOM_ENCAP_IPIP))
		goto internal;
	outer = ctx_data(c) + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > ctx_data_end(c))
		goto internal;
	xdnat_write_outer(outer, inner, cfg.lan_addr, cfg.router_addr);
	hcount(XDNAT_HR_ENCAP, bytes);
	return ctx_pass(c);
internal:
	hcount(XDNAT_HR_DROP_INTERNAL, bytes);
	return ctx_drop(c);
pass:
	hcount(XDNAT_HR_PASS, ctx_len(c));
	return ctx_pass(c);
}

/* Ingress: IP-in-IP from the router to us loses its outer header. */
static __always_inline int host_ingress(struct xdnat_ctx c)
{
	struct iphdr *outer, *inner;
	struct ethhdr *eth;
	void *data_end;
	__u32 bytes, len = ctx_len(c);

	if (!ctx_is_ipv4(c))
		goto pass;
	ctx_pull(c, XDNAT_HOST_PULL_LEN);
	eth = ctx_data(c);
	data_end = ctx_data_end(c);
	outer = (void *)(eth + 1);
	inner = (void *)(outer + 1);
	if ((void *)(outer + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    outer->protocol != IPPROTO_IPIP || outer->saddr != cfg.router_addr ||
	    outer->daddr != cfg.lan_addr)
		goto pass;
	bytes = len;
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		/* The router's stack fragmented the tunnel packet (too big for
		 * the LAN, no DF): the kernel reassembles it and xdnat-host,
		 * which reads IP-in-IP on a raw socket, unwraps it. */
		hcount(XDNAT_HR_PASS_FRAGMENT, bytes);
		return ctx_pass(c);
	}
	if (outer->ihl != 5 || len < sizeof(*eth) ||
	    xdnat_ip_check(outer, data_end, len - sizeof(*eth)) != XDNAT_IP_OK ||
	    (void *)(inner + 1) > data_end || inner->version != 4 || inner->ihl < 5 ||
	    inner->daddr != cfg.gaddr ||
	    bpf_ntohs(outer->tot_len) != bpf_ntohs(inner->tot_len) + sizeof(*outer)) {
		hcount(XDNAT_HR_DROP_MALFORMED, bytes);
		return ctx_drop(c);
	}
	bytes = bpf_ntohs(inner->tot_len);
	if (ctx_adjust_room(c, -(int)sizeof(struct iphdr), CTX_ROOM_DECAP_IPIP)) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return ctx_drop(c);
	}
	hcount(XDNAT_HR_DECAP, bytes);
	return ctx_pass(c);
pass:
	hcount(XDNAT_HR_PASS, len);
	return ctx_pass(c);
}

SEC("tc")
int xdnat_host_egress(struct __sk_buff *skb)
{
	return host_egress(ctx_skb(skb));
}

SEC("tc")
int xdnat_host_ingress(struct __sk_buff *skb)
{
	return host_ingress(ctx_skb(skb));
}

/*
 * Away from home (maps/xdnat_abi.h, struct xdnat_host_roam): the host's end
 * of the RFC 3519 UDP tunnel to its home agent, on the NIC of the foreign
 * network.  Same counters as above (roam_* reasons).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdnat_host_roam);
} xdnat_host_roam SEC(".maps");

#define XDNAT_ROAM_PULL_LEN (14 + 20 + 8 + 4 + 20)

static __always_inline struct xdnat_host_roam *roam_cfg(void)
{
	__u32 zero = 0;
	struct xdnat_host_roam *r = bpf_map_lookup_elem(&xdnat_host_roam, &zero);

	return r && (r->flags & XDNAT_COA_F_ACTIVE) ? r : NULL;
}

SEC("tc")
int xdnat_host_roam_egress(struct __sk_buff *skb)
{
	struct xdnat_host_roam *r = roam_cfg();
	struct iphdr *ip, *outer, *inner;
	void *data, *data_end;
	struct ethhdr *eth;
	__u32 bytes;

	if (!r || skb->protocol != bpf_htons(ETH_P_IP))
		goto pass;
	if ((void *)(long)skb->data + XDNAT_HOST_PULL_LEN > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, XDNAT_HOST_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->saddr != r->gaddr)
		goto pass;
	bytes = bpf_ntohs(ip->tot_len);
	/* Like the router's encapsulation (lib/ctx.h): GSO repeats the 32
	 * bytes in front of every segment. */
	if (bpf_skb_adjust_room(skb, XDNAT_COA_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct xdnat_mip_tunnel_hdr)))) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	outer = data + sizeof(struct ethhdr);
	inner = (void *)outer + XDNAT_COA_OVERHEAD;
	if ((void *)(inner + 1) > data_end) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	xdnat_write_outer_udp(outer, inner, r->local_addr, r->ha_addr, r->local_port,
			      bpf_htons(XDNAT_MIP_PORT));
	hcount(XDNAT_HR_ROAM_ENCAP, bytes);
	return TC_ACT_OK;
pass:
	hcount(XDNAT_HR_PASS, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int xdnat_host_roam_ingress(struct __sk_buff *skb)
{
	struct xdnat_host_roam *r = roam_cfg();
	struct xdnat_mip_tunnel_hdr *th;
	struct iphdr *outer, *inner;
	void *data, *data_end;
	struct udphdr *uh;
	struct ethhdr *eth;
	__u32 bytes;

	if (!r || skb->protocol != bpf_htons(ETH_P_IP))
		goto pass;
	if ((void *)(long)skb->data + XDNAT_ROAM_PULL_LEN > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, XDNAT_ROAM_PULL_LEN < skb->len ? XDNAT_ROAM_PULL_LEN : skb->len);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	outer = (void *)(eth + 1);
	uh = (void *)(outer + 1);
	th = (void *)(uh + 1);
	inner = (void *)(th + 1);
	if ((void *)(th + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    outer->protocol != IPPROTO_UDP || outer->ihl != 5 || outer->saddr != r->ha_addr ||
	    outer->daddr != r->local_addr || (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) ||
	    uh->source != bpf_htons(XDNAT_MIP_PORT) || uh->dest != r->local_port ||
	    th->type != XDNAT_MIP_TUNNEL_DATA)
		goto pass; /* registration replies go to the agent's socket */
	bytes = skb->len;
	if (th->next_header != XDNAT_MIP_NH_IPV4 || skb->len < sizeof(*eth) ||
	    xdnat_ip_check(outer, data_end, skb->len - sizeof(*eth)) != XDNAT_IP_OK ||
	    xdnat_ip_check(inner, data_end, skb->len - sizeof(*eth) - XDNAT_COA_OVERHEAD) !=
		    XDNAT_IP_OK ||
	    inner->daddr != r->gaddr ||
	    bpf_ntohs(outer->tot_len) != bpf_ntohs(inner->tot_len) + XDNAT_COA_OVERHEAD) {
		hcount(XDNAT_HR_ROAM_DROP, bytes);
		return TC_ACT_SHOT;
	}
	bytes = bpf_ntohs(inner->tot_len);
	if (bpf_skb_adjust_room(skb, -(int)XDNAT_COA_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4) &&
	    bpf_skb_adjust_room(skb, -(int)XDNAT_COA_OVERHEAD, BPF_ADJ_ROOM_MAC, 0)) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	hcount(XDNAT_HR_ROAM_DECAP, bytes);
	return TC_ACT_OK;
pass:
	hcount(XDNAT_HR_PASS, skb->len);
	return TC_ACT_OK;
}
