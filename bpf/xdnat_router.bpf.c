// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdnat router datapath.
 *
 *   WAN ingress: packet to a global address -> owner by outermost ESP/AH SPI,
 *                TCP/UDP destination port or ICMP echo-reply identifier ->
 *                prepend IPv4 (proto 4, router LAN addr -> host LAN addr) ->
 *                redirect to the LAN NIC.  The inner packet is not changed.
 *   LAN ingress: IP-in-IP from a registered host to the router -> inner
 *                source must be the host's global address and its source
 *                port/ICMP id one of the host's -> strip, TTL-1, redirect to
 *                the WAN NIC.  Inner destination on a global address: hairpin.
 *
 * Each hook exists as XDP (native) and as tc (cls_bpf direct-action); the
 * classification is shared, only head adjustment and redirection differ.
 */
#include "lib/compat.h"
#include "lib/path_xdp.h"
#include "lib/path_tc.h"

char LICENSE[] SEC("license") = "GPL";

/* ------------------------------------------------------------ entry points */

SEC("xdp")
int xdnat_wan_xdp(struct xdp_md *ctx)
{
	return wan_xdp(ctx);
}

SEC("xdp")
int xdnat_lan_xdp(struct xdp_md *ctx)
{
	return lan_xdp(ctx);
}

SEC("tc")
int xdnat_wan_tc(struct __sk_buff *skb)
{
	return wan_tc(skb);
}

SEC("tc")
int xdnat_lan_tc(struct __sk_buff *skb)
{
	return lan_tc(skb);
}

/*
 * One-arm mode (a cloud VM with one NIC): WAN and LAN share the interface.
 * IP-in-IP to the router's LAN address comes from hosts and takes the LAN
 * path; everything else takes the WAN path.  Both send back out of the same
 * NIC (the devmap's WAN and LAN slots hold the same ifindex).
 */
static __always_inline int is_host_tunnel(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	return (void *)(ip + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP) &&
	       ip->daddr == cfg.lan_addr && ip->protocol == IPPROTO_IPIP;
}

SEC("xdp")
int xdnat_onearm_xdp(struct xdp_md *ctx)
{
	if (is_host_tunnel((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return lan_xdp(ctx);
	return wan_xdp(ctx);
}

SEC("tc")
int xdnat_onearm_tc(struct __sk_buff *skb)
{
	tc_pull(skb, sizeof(struct ethhdr) + sizeof(struct iphdr));
	if (is_host_tunnel((void *)(long)skb->data, (void *)(long)skb->data_end))
		return lan_tc(skb);
	return wan_tc(skb);
}
