// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdnat router datapath: the entry points.  The datapath itself is the
 * library in bpf/lib/ (lib/datapath.h), written once for both hooks.
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
 * loader attaches one of them.
 */
#include "lib/datapath.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdnat_wan_xdp(struct xdp_md *ctx)
{
	return wan_path(ctx_xdp(ctx));
}

SEC("xdp")
int xdnat_lan_xdp(struct xdp_md *ctx)
{
	return lan_path(ctx_xdp(ctx));
}

SEC("tc")
int xdnat_wan_tc(struct __sk_buff *skb)
{
	return wan_path(ctx_skb(skb));
}

SEC("tc")
int xdnat_lan_tc(struct __sk_buff *skb)
{
	return lan_path(ctx_skb(skb));
}

SEC("xdp")
int xdnat_onearm_xdp(struct xdp_md *ctx)
{
	return onearm_path(ctx_xdp(ctx));
}

SEC("tc")
int xdnat_onearm_tc(struct __sk_buff *skb)
{
	return onearm_path(ctx_skb(skb));
}
