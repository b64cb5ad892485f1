/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Classification: which host a WAN packet is for, and whether a host's
 * tunnel packet may leave.  Hook-independent.
 */
#ifndef XDNAT_LIB_CLASSIFY_H
#define XDNAT_LIB_CLASSIFY_H

#include "lib/frag.h"
#include "lib/peers.h"
#include "lib/ike.h"
#include "lib/icmp.h"

/*
 * Inbound ICMP error (@icmp: its 8-byte header, validated): find the host
 * whose packet it quotes.  The quoted header went out from this global
 * address, so its source port (TCP/UDP), echo identifier, or -- for ESP/AH --
 * the SPI of the host's outbound SA (learnt on the LAN side) names the host.
 */
static __always_inline enum xdnat_act
classify_icmp_error(struct iphdr *ip, struct icmphdr *icmp, void *data_end, __u32 gidx,
		    struct xdnat_pkt *p)
{
	struct iphdr *e = (void *)(icmp + 1);
	__u32 off, host_id;
	void *el4;

	if ((void *)(e + 1) > data_end ||
	    (void *)(e + 1) > (void *)ip + bpf_ntohs(ip->tot_len) ||
	    e->version != 4 || e->ihl < 5) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	/* Not about a packet from this global address, or about a later
	 * fragment (no ports): nothing of a host's. */
	if (e->saddr != ip->daddr || xdnat_ip_is_later_fragment(e)) {
		p->reason = XDNAT_R_ICMP_ERR_UNKNOWN;
		return XDNAT_ACT_UNKNOWN;
	}
	/* RFC 792: the quote holds the header and at least 8 more bytes. */
	off = (ip->ihl & 0xf) * 4 + sizeof(*icmp) + (e->ihl & 0xf) * 4;
	el4 = (void *)ip + off;
	if (off + 8 > bpf_ntohs(ip->tot_len) || el4 + 8 > data_end) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	switch (e->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		host_id = owner_by_port(gidx, bpf_ntohs(((struct udphdr *)el4)->source));
		break;
	case IPPROTO_ICMP:
		if (((struct icmphdr *)el4)->type != ICMP_ECHO)
			goto unknown;
		host_id = owner_by_port(gidx, bpf_ntohs(((struct icmphdr *)el4)->un.echo.id));
		break;
	case IPPROTO_ESP:
		host_id = owner_by_out_spi(((struct ip_esp_hdr *)el4)->spi, e->daddr);
		break;
	case IPPROTO_AH:
		host_id = owner_by_out_spi(((struct ip_auth_hdr *)el4)->spi, e->daddr);
		break;
	default:
		goto unknown;
	}
	return host_verdict(host_id, gidx, XDNAT_R_ICMP_ERR_TO_HOST, XDNAT_R_ICMP_ERR_UNKNOWN, p);
unknown:
	p->reason = XDNAT_R_ICMP_ERR_UNKNOWN;
	return XDNAT_ACT_UNKNOWN;
}

/*
 * Find the host an IPv4 packet addressed to global address @gidx belongs to,
 * by its outermost SPI, destination port or echo-reply identifier; ICMP
 * errors by the packet they quote; later fragments by their first fragment.
 * @ip has been validated with xdnat_ip_check().  On XDNAT_ACT_FORWARD,
 * p->reason is the forwarding reason (wan_to_host, frag_to_host, ...).
 */
static __always_inline enum xdnat_act
classify_inbound(struct iphdr *ip, void *data_end, __u32 gidx, struct xdnat_pkt *p)
{
	__u32 host_id, unknown_reason;
	struct udphdr *uh = NULL;
	struct icmphdr *icmp;
	enum xdnat_act act;

	if (xdnat_ip_is_later_fragment(ip))
		return classify_later_fragment(ip, gidx, p);

	switch (ip->protocol) {
	case IPPROTO_ESP:
	case IPPROTO_AH: {
		struct ip_auth_hdr *ah;
		struct ip_esp_hdr *esp;
		__u32 spi;

		/* ESP: the SPI is the first word; AH: the second. */
		if (ip->protocol == IPPROTO_ESP) {
			esp = xdnat_l4(ip, data_end, offsetofend(struct ip_esp_hdr, spi));
			if (!esp)
				goto malformed;
			spi = bpf_ntohl(esp->spi);
		} else {
			ah = xdnat_l4(ip, data_end, offsetofend(struct ip_auth_hdr, spi));
			if (!ah)
				goto malformed;
			spi = bpf_ntohl(ah->spi);
		}
		if (spi <= XDNAT_SPI_RESERVED_MAX) {
			p->reason = XDNAT_R_DROP_SPI_RESERVED;
			return XDNAT_ACT_DROP;
		}
		host_id = owner_by_spi(spi);
		unknown_reason = XDNAT_R_UNKNOWN_SPI;
		break;
	}
	case IPPROTO_TCP:
	case IPPROTO_UDP: {
		__u32 key;
		struct xdnat_owner *slot;

		uh = xdnat_l4(ip, data_end, XDNAT_PORTS_LEN);
		if (!uh)
			goto malformed;
		key = gidx * XDNAT_PORTS_PER_GADDR + bpf_ntohs(uh->dest);
		slot = bpf_map_lookup_elem(&xdnat_ports, &key);
		host_id = slot ? slot->host_id : XDNAT_HOST_NONE;
		unknown_reason = XDNAT_R_UNKNOWN_PORT;
		if (slot && ip->protocol == IPPROTO_UDP && is_shared_port(host_id)) {
			act = classify_shared_inbound(ip, data_end, gidx, slot, p);
			if (act == XDNAT_ACT_FORWARD && p->reason == XDNAT_R_ESP_UDP_TO_HOST)
				learn_esp_udp_peer(ip, data_end, p);
			goto learn;
		}
		break;
	}
	case IPPROTO_ICMP:
		icmp = xdnat_l4(ip, data_end, sizeof(*icmp));
		if (!icmp)
			goto malformed;
		if (icmp->type == ICMP_DEST_UNREACH || icmp->type == ICMP_TIME_EXCEEDED ||
		    icmp->type == ICMP_PARAMETERPROB)
			return classify_icmp_error(ip, icmp, data_end, gidx, p);
		if (icmp->type != ICMP_ECHOREPLY) {
			/* Echo requests and the rest are for the router. */
			p->reason = XDNAT_R_PASS_ICMP_LOCAL;
			return XDNAT_ACT_PASS;
		}
		host_id = owner_by_port(gidx, bpf_ntohs(icmp->un.echo.id));
		unknown_reason = XDNAT_R_UNKNOWN_ICMP_ID;
		break;
	default:
		p->reason = XDNAT_R_UNKNOWN_PROTO;
		return XDNAT_ACT_UNKNOWN;
	}

	act = host_verdict(host_id, gidx, XDNAT_R_WAN_TO_HOST, unknown_reason, p);
	if (act == XDNAT_ACT_FORWARD && (ip->protocol == IPPROTO_ESP || ip->protocol == IPPROTO_AH)) {
		struct ip_auth_hdr *ah;
		struct ip_esp_hdr *esp;

		if (ip->protocol == IPPROTO_AH) {
			ah = xdnat_l4(ip, data_end, sizeof(*ah));
			if (ah)
				learn_peer_sampled(p->host_id, ip->saddr, &ah->seq_no);
		} else {
			esp = xdnat_l4(ip, data_end, sizeof(*esp));
			if (esp)
				learn_peer_sampled(p->host_id, ip->saddr, &esp->seq_no);
		}
	} else if (act == XDNAT_ACT_FORWARD && ip->protocol == IPPROTO_UDP && uh &&
		   uh->source == bpf_htons(XDNAT_IKE_NATT_PORT)) {
		/* From a peer's NAT-T port to a host's own port: ESP-in-UDP
		 * (RFC 3948) when the first word (the SPI) is not the non-ESP
		 * marker.  Such peers are notified like ESP peers. */
		learn_esp_udp_peer(ip, data_end, p);
	}
learn:
	if (act == XDNAT_ACT_FORWARD && (ip->frag_off & bpf_htons(IP_MF)))
		learn_first_fragment(ip, p->host_id);
	return act;
malformed:
	p->reason = XDNAT_R_DROP_MALFORMED;
	return XDNAT_ACT_DROP;
}

/*
 * WAN ingress up to the decision.  On XDNAT_ACT_FORWARD, p->host_lan is the
 * tunnel destination.
 */
static __always_inline enum xdnat_act
wan_classify(void *data, void *data_end, struct xdnat_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	int gidx;

	p->bytes = p->wire_len;
	if ((void *)(eth + 1) > data_end || p->wire_len < sizeof(*eth)) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		p->reason = XDNAT_R_PASS_VLAN;
		return XDNAT_ACT_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		p->reason = XDNAT_R_PASS_NOT_IPV4;
		return XDNAT_ACT_PASS;
	}
	if ((void *)(ip + 1) > data_end) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	if (gaddr_index(ip->saddr) >= 0) {
		/* Only we send from a global address: arriving from outside it is
		 * forged, and the stack (accept_local=1) must not forward it. */
		p->reason = XDNAT_R_DROP_SPOOF_SRC;
		return XDNAT_ACT_DROP;
	}
	gidx = gaddr_index(ip->daddr);
	if (gidx < 0) {
		p->reason = XDNAT_R_PASS_NOT_GLOBAL;
		return XDNAT_ACT_PASS;
	}
	if (xdnat_ip_check(ip, data_end, p->wire_len - sizeof(*eth)) != XDNAT_IP_OK) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	p->bytes = bpf_ntohs(ip->tot_len);
	if (ip->protocol == IPPROTO_UDP && !xdnat_ip_is_later_fragment(ip)) {
		struct udphdr *uh = xdnat_l4(ip, data_end, XDNAT_PORTS_LEN);

		/* The home agent's port (a router port): reverse tunnelling
		 * or registration, lib/roam.h decides.  One compare for other
		 * UDP. */
		if (uh && uh->dest == bpf_htons(XDNAT_MIP_PORT) &&
		    owner_by_port(gidx, XDNAT_MIP_PORT) == XDNAT_HOST_ROUTER)
			return XDNAT_ACT_MIP;
	}
	return classify_inbound(ip, data_end, gidx, p);
}

/*
 * The rules a host's own packet (@inner, validated with xdnat_ip_check) must
 * keep to leave through the router, wherever it came from (LAN tunnel or
 * reverse tunnel from a care-of endpoint): source the host's global address,
 * source port / ICMP id / IKE SPI the host's own, TTL left.  On
 * XDNAT_ACT_FORWARD with p->reason == XDNAT_R_HAIRPIN it is for another
 * host (p->host_lan, p->dst_id), otherwise for the WAN.
 */
static __always_inline enum xdnat_act
host_inner_check(struct iphdr *inner, void *data_end, __u32 sender, struct xdnat_host *h,
		 struct xdnat_pkt *p)
{
	__u32 fwd_reason = XDNAT_R_HOST_TO_WAN;
	int gidx;

	p->bytes = bpf_ntohs(inner->tot_len);
	if (h->gaddr_index >= XDNAT_MAX_GADDRS || h->gaddr_index >= cfg.n_gaddrs ||
	    inner->saddr != cfg.gaddrs[h->gaddr_index & (XDNAT_MAX_GADDRS - 1)]) {
		p->reason = XDNAT_R_DROP_SPOOF_SRC;
		return XDNAT_ACT_DROP;
	}

	/* Source port / echo identifier must be the sender's own.  ESP/AH carry
	 * the remote's SPI, and later fragments no port: nothing to check. */
	if (!xdnat_ip_is_later_fragment(inner)) {
		__s32 port = -1;

		if (inner->protocol == IPPROTO_TCP || inner->protocol == IPPROTO_UDP) {
			struct udphdr *uh = xdnat_l4(inner, data_end, XDNAT_PORTS_LEN);

			if (!uh) {
				p->reason = XDNAT_R_DROP_MALFORMED;
				return XDNAT_ACT_DROP;
			}
			port = bpf_ntohs(uh->source);
		} else if (inner->protocol == IPPROTO_ICMP) {
			struct icmphdr *icmp = xdnat_l4(inner, data_end, sizeof(*icmp));

			if (!icmp) {
				p->reason = XDNAT_R_DROP_MALFORMED;
				return XDNAT_ACT_DROP;
			}
			if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
				port = bpf_ntohs(icmp->un.echo.id);
		}
		if (port >= 0) {
			__u32 owner = owner_by_port(h->gaddr_index, port);

			if (inner->protocol == IPPROTO_UDP && is_shared_port(owner)) {
				/* A shared IKE port: the IKE SPI is checked instead. */
				fwd_reason = shared_outbound(inner, data_end, owner, sender);
				if (fwd_reason == XDNAT_R_DROP_MALFORMED ||
				    fwd_reason == XDNAT_R_DROP_SPOOF_IKE) {
					p->reason = fwd_reason;
					return XDNAT_ACT_DROP;
				}
			} else if (owner != sender) {
				p->reason = XDNAT_R_DROP_SPOOF_PORT;
				return XDNAT_ACT_DROP;
			}
		}
		if (inner->protocol == IPPROTO_ESP || inner->protocol == IPPROTO_AH)
			learn_out_spi(inner, data_end, sender);
	}
	if (inner->ttl <= 1) {
		p->reason = XDNAT_R_DROP_TTL;
		return XDNAT_ACT_DROP;
	}

	gidx = gaddr_index(inner->daddr);
	if (gidx >= 0) {
		struct xdnat_pkt dst = {};
		enum xdnat_act act = classify_inbound(inner, data_end, gidx, &dst);

		if (act == XDNAT_ACT_HOLD) {
			/* No slow path for hairpinned fragments. */
			p->reason = XDNAT_R_FRAGMENT;
			return XDNAT_ACT_DROP;
		}
		if (act != XDNAT_ACT_FORWARD) {
			/* A tunnel packet is never passed to the stack (it has no
			 * IP-in-IP device); the router's own services are reached
			 * on its LAN address, not through a global one. */
			p->reason = dst.reason;
			return act == XDNAT_ACT_PASS ? XDNAT_ACT_DROP : act;
		}
		p->reason = XDNAT_R_HAIRPIN;
		p->host_lan = dst.host_lan;
		/* host_id stays the sender's; the receiver is counted by the
		 * caller once the FIB lookup succeeded and the packet leaves. */
		p->dst_id = dst.host_id;
		return XDNAT_ACT_FORWARD;
	}
	p->reason = fwd_reason;
	return XDNAT_ACT_FORWARD;
}

/*
 * LAN ingress up to the decision.  Validates the tunnel and the anti-spoofing
 * rules; on XDNAT_ACT_FORWARD with p->reason == XDNAT_R_HAIRPIN the packet
 * goes back to the LAN (p->host_lan), otherwise to the WAN.
 */
static __always_inline enum xdnat_act
lan_classify(void *data, void *data_end, struct xdnat_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);
	struct iphdr *inner = (void *)(outer + 1);
	__u32 *idp, sender;
	struct xdnat_host *h;

	p->bytes = p->wire_len;
	if ((void *)(eth + 1) > data_end || p->wire_len < sizeof(*eth)) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		p->reason = XDNAT_R_PASS_VLAN;
		return XDNAT_ACT_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		p->reason = XDNAT_R_PASS_NOT_IPV4;
		return XDNAT_ACT_PASS;
	}
	if ((void *)(outer + 1) > data_end || outer->version != 4) {
		p->reason = XDNAT_R_PASS_LAN_OTHER;
		return XDNAT_ACT_PASS;
	}
	if (gaddr_index(outer->saddr) >= 0) {
		/* A global source outside the tunnel: the stack (accept_local=1)
		 * would forward it unchecked, so it never gets there. */
		p->reason = XDNAT_R_DROP_SPOOF_SRC;
		return XDNAT_ACT_DROP;
	}
	if (outer->daddr != cfg.lan_addr || outer->protocol != IPPROTO_IPIP) {
		p->reason = XDNAT_R_PASS_LAN_OTHER;
		return XDNAT_ACT_PASS;
	}
	/* From here on it is a tunnel packet to us: never hand it to the stack,
	 * which has no IP-in-IP device and would only drop it. */
	idp = bpf_map_lookup_elem(&xdnat_lan_idx, &outer->saddr);
	sender = idp ? *idp : XDNAT_HOST_NONE;
	h = sender ? bpf_map_lookup_elem(&xdnat_hosts, &sender) : NULL;
	if (!h || !(h->flags & XDNAT_HOST_F_VALID) || h->lan_addr != outer->saddr) {
		p->reason = XDNAT_R_DROP_UNREGISTERED;
		return XDNAT_ACT_DROP;
	}
	p->host_id = sender;
	if (outer->ihl != 5 ||
	    xdnat_ip_check(outer, data_end, p->wire_len - sizeof(*eth)) != XDNAT_IP_OK ||
	    xdnat_ip_check(inner, data_end,
			   p->wire_len - sizeof(*eth) - sizeof(*outer)) != XDNAT_IP_OK ||
	    bpf_ntohs(outer->tot_len) != bpf_ntohs(inner->tot_len) + sizeof(*outer)) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->reason = XDNAT_R_FRAGMENT;
		return XDNAT_ACT_DROP;
	}
	return host_inner_check(inner, data_end, sender, h, p);
}

static __always_inline __u32 unknown_is_drop(void)
{
	return cfg.flags & XDNAT_F_UNKNOWN_DROP;
}

#endif /* XDNAT_LIB_CLASSIFY_H */
