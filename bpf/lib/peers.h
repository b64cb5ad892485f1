/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Remote IPsec peers and outbound SAs learnt by the datapath.
 */
#ifndef XDNAT_LIB_PEERS_H
#define XDNAT_LIB_PEERS_H

#include "lib/owner.h"
#include "lib/parse.h"

/* Record @remote as an IPsec peer of @host_id: one lookup, and one update
 * at most once a second per peer. */
static __always_inline void learn_peer(__u32 host_id, __be32 remote)
{
	struct xdnat_peer_key k = { .host_id = host_id, .remote = remote };
	struct xdnat_peer_val *v = bpf_map_lookup_elem(&xdnat_peers, &k);
	struct xdnat_peer_val nv = { .seen_ns = bpf_ktime_get_coarse_ns() };

	if (v && nv.seen_ns - v->seen_ns < XDNAT_PEER_REFRESH_NS)
		return;
	bpf_map_update_elem(&xdnat_peers, &k, &nv, BPF_ANY);
}

/* Learning costs a hash lookup: do it on the first packets of every SA
 * (sequence numbers start at 1, also after a rekey) and on every 1024th,
 * which finds SAs older than the router.  @seqp: the ESP/AH sequence
 * number, validated by the caller. */
static __always_inline void learn_peer_sampled(__u32 host_id, __be32 remote,
					       const __be32 *seqp)
{
	__u32 seq = bpf_ntohl(*seqp);

	if (seq < 8 || !(seq & 1023))
		learn_peer(host_id, remote);
}

/* ESP-in-UDP (RFC 3948) delivered to a host: UDP header, then SPI and
 * sequence number; a zero first word is the non-ESP marker (IKE). */
static __always_inline void learn_esp_udp_peer(struct iphdr *ip, void *data_end,
					       const struct xdnat_pkt *p)
{
	struct udphdr *uh = xdnat_l4(ip, data_end, sizeof(*uh) + sizeof(struct ip_esp_hdr));
	struct ip_esp_hdr *esp;

	if (!uh)
		return;
	esp = (void *)(uh + 1);
	if (esp->spi)
		learn_peer_sampled(p->host_id, ip->saddr, &esp->seq_no);
}

static __always_inline __u32 owner_by_out_spi(__be32 spi, __be32 remote)
{
	struct xdnat_out_spi_key k = { .spi = spi, .remote = remote };
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_out_spis, &k);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

/*
 * An ESP/AH packet from a host names the remote's SPI of one of the host's
 * outbound SAs: remember it, so that ICMP errors quoting such packets find
 * the host.  Written only when new or changed (a lookup is cheaper).
 */
static __always_inline void learn_out_spi(struct iphdr *inner, void *data_end, __u32 sender)
{
	struct xdnat_out_spi_key k = { .remote = inner->daddr };
	struct xdnat_owner o = { .host_id = sender }, *cur;
	void *l4 = xdnat_l4(inner, data_end, offsetofend(struct ip_auth_hdr, spi));

	if (!l4)
		return;
	k.spi = inner->protocol == IPPROTO_AH ? ((struct ip_auth_hdr *)l4)->spi :
						((struct ip_esp_hdr *)l4)->spi;
	if (bpf_ntohl(k.spi) <= XDNAT_SPI_RESERVED_MAX)
		return;
	cur = bpf_map_lookup_elem(&xdnat_out_spis, &k);
	if (!cur || cur->host_id != sender)
		bpf_map_update_elem(&xdnat_out_spis, &k, &o, BPF_ANY);
}

#endif /* XDNAT_LIB_PEERS_H */
