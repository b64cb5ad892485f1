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
 * address (configured on lo by xdnat-host).
 */
#include "lib/compat.h"
#include "lib/encap.h"
#include <linux/pkt_cls.h>

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

SEC("tc")
int xdnat_host_egress(struct __sk_buff *skb)
{
	struct iphdr *ip, *outer, *inner;
	struct ethhdr *eth;
	void *data, *data_end;
	__u32 bytes;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		goto pass;
	if ((void *)(long)skb->data + XDNAT_HOST_PULL_LEN > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, XDNAT_HOST_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->saddr != cfg.gaddr)
		goto pass;
	bytes = bpf_ntohs(ip->tot_len);
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4)) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	outer = data + sizeof(struct ethhdr);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	xdnat_write_outer(outer, inner, cfg.lan_addr, cfg.router_addr);
	hcount(XDNAT_HR_ENCAP, bytes);
	return TC_ACT_OK;
pass:
	hcount(XDNAT_HR_PASS, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int xdnat_host_ingress(struct __sk_buff *skb)
{
	struct iphdr *outer, *inner;
	struct ethhdr *eth;
	void *data, *data_end;
	__u32 bytes;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		goto pass;
	if ((void *)(long)skb->data + XDNAT_HOST_PULL_LEN > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, XDNAT_HOST_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	outer = (void *)(eth + 1);
	inner = (void *)(outer + 1);
	if ((void *)(outer + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    outer->protocol != IPPROTO_IPIP || outer->saddr != cfg.router_addr ||
	    outer->daddr != cfg.lan_addr)
		goto pass;
	bytes = skb->len;
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		/* The router's stack fragmented the tunnel packet (too big for
		 * the LAN, no DF): the kernel reassembles it and xdnat-host,
		 * which reads IP-in-IP on a raw socket, unwraps it. */
		hcount(XDNAT_HR_PASS_FRAGMENT, bytes);
		return TC_ACT_OK;
	}
	if (outer->ihl != 5 || skb->len < sizeof(*eth) ||
	    xdnat_ip_check(outer, data_end, skb->len - sizeof(*eth)) != XDNAT_IP_OK ||
	    (void *)(inner + 1) > data_end || inner->version != 4 || inner->ihl < 5 ||
	    inner->daddr != cfg.gaddr ||
	    bpf_ntohs(outer->tot_len) != bpf_ntohs(inner->tot_len) + sizeof(*outer)) {
		hcount(XDNAT_HR_DROP_MALFORMED, bytes);
		return TC_ACT_SHOT;
	}
	bytes = bpf_ntohs(inner->tot_len);
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4) &&
	    bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0)) {
		hcount(XDNAT_HR_DROP_INTERNAL, bytes);
		return TC_ACT_SHOT;
	}
	hcount(XDNAT_HR_DECAP, bytes);
	return TC_ACT_OK;
pass:
	hcount(XDNAT_HR_PASS, skb->len);
	return TC_ACT_OK;
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
