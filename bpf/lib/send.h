/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * How the router sends a packet it forwards, per hook (the context layer's
 * sending half: it needs the router's devmap and configuration).
 */
#ifndef XDNAT_LIB_SEND_H
#define XDNAT_LIB_SEND_H

#include "lib/ctx.h"
#include "lib/maps.h"

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

#endif /* XDNAT_LIB_SEND_H */
