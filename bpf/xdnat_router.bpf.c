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
#include "xdnat_compat.h"
#include "xdnat_parse.h"
#include <linux/pkt_cls.h>

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load; the verifier folds these constants. */
const volatile struct xdnat_router_cfg cfg = {
	.spi_block_bits = XDNAT_DEFAULT_SPI_BITS,
};

/* max_entries of the sized maps are set by the loader from cfg. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdnat_router_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDNAT_PORTS_PER_GADDR);
	__uint(map_flags, BPF_F_MMAPABLE); /* xdnatctl edits blocks in place */
	__type(key, __u32);
	__type(value, struct xdnat_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1u << (32 - XDNAT_DEFAULT_SPI_BITS));
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct xdnat_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_spis SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, __u32);
	__type(value, struct xdnat_host);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, __be32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_lan_idx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, __u32);
	__type(value, struct xdnat_host_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_hstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDNAT_R_MAX);
	__type(key, __u32);
	__type(value, struct xdnat_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, XDNAT_TXPORT_MAX);
	__type(key, __u32);
	__type(value, __u32);
	/* Not pinned: xdnatd refills it on every start, and the kernel reports
	 * a used devmap with other flags, so libbpf would refuse to reuse it. */
} xdnat_txports SEC(".maps");

/* Per-host next hop (WAN->LAN), pinned so that removing a host clears it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, __u32);
	__type(value, struct xdnat_host_nh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_host_nh SEC(".maps");

/* Next-hop cache: private to this load, like the devmap (not pinned). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDNAT_NH_CACHE_ENTRIES);
	__type(key, struct xdnat_nh_key);
	__type(value, struct xdnat_nh);
} xdnat_nh_cache SEC(".maps");

/* Later fragments follow their first fragment (see maps/xdnat_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDNAT_FRAG_ENTRIES);
	__type(key, struct xdnat_frag_key);
	__type(value, struct xdnat_frag_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_frags SEC(".maps");

/* Outbound ESP/AH SA -> host, for ICMP errors that quote an SA's packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDNAT_OUT_SPI_ENTRIES);
	__type(key, struct xdnat_out_spi_key);
	__type(value, struct xdnat_owner);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_out_spis SEC(".maps");

/* {host, remote} of inbound ESP/AH: the peers the Local CA notifies. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDNAT_PEER_ENTRIES);
	__type(key, struct xdnat_peer_key);
	__type(value, struct xdnat_peer_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_peers SEC(".maps");

/* Slow path for later fragments that arrive before their first fragment:
 * the frame goes to xdnatd, which re-injects it.  Not pinned: it belongs to
 * the loaded program and its reader (entries vanish with the reader). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} xdnat_frag_events SEC(".maps");

enum xdnat_act {
	XDNAT_ACT_PASS,
	XDNAT_ACT_DROP,
	XDNAT_ACT_FORWARD,
	XDNAT_ACT_UNKNOWN, /* pass or drop per XDNAT_F_UNKNOWN_DROP */
	XDNAT_ACT_HOLD,    /* later fragment, first unseen: to the slow path */
};

/* What classification found out about one packet. */
struct xdnat_pkt {
	__u32 reason;   /* enum xdnat_reason */
	__u32 host_id;  /* owner (WAN, hairpin) or sender (LAN) */
	__u32 dst_id;   /* hairpin receiver: counted only once the packet is sent */
	__be32 host_lan;
	__u32 bytes;    /* inner IPv4 total length (frame length before
			 * the IP header is validated), for the counters */
	__u32 wire_len; /* whole frame; an skb may be longer than its linear part */
};

static __always_inline void count(__u32 reason, __u32 bytes)
{
	struct xdnat_counter *c = bpf_map_lookup_elem(&xdnat_stats, &reason);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void count_host(__u32 host_id, int to_host, __u32 bytes)
{
	struct xdnat_host_stats *s = bpf_map_lookup_elem(&xdnat_hstats, &host_id);

	if (!s)
		return;
	if (to_host) {
		s->to_host_packets++;
		s->to_host_bytes += bytes;
	} else {
		s->from_host_packets++;
		s->from_host_bytes += bytes;
	}
}

/* Index of @addr among the global addresses, or -1.  At most 16 compares. */
static __always_inline int gaddr_index(__be32 addr)
{
	for (__u32 i = 0; i < XDNAT_MAX_GADDRS; i++) {
		if (i >= cfg.n_gaddrs)
			break;
		if (cfg.gaddrs[i] == addr)
			return i;
	}
	return -1;
}

static __always_inline __u32 owner_by_port(__u32 gidx, __u16 port)
{
	__u32 key = gidx * XDNAT_PORTS_PER_GADDR + port;
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_ports, &key);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

static __always_inline __u32 owner_by_spi(__u32 spi)
{
	__u32 key = spi >> (cfg.spi_block_bits & 31);
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_spis, &key);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

/* The verdict for a packet whose owner is @host_id (0: nobody). */
static __always_inline enum xdnat_act
host_verdict(__u32 host_id, __u32 gidx, __u32 fwd_reason, __u32 unknown_reason,
	     struct xdnat_pkt *p)
{
	struct xdnat_host *h;

	if (host_id == XDNAT_HOST_NONE)
		goto unknown;
	if (host_id == XDNAT_HOST_ROUTER) {
		/* Reserved for the router's own services: its stack answers,
		 * whatever the unknown policy (reachable under floods). */
		p->reason = XDNAT_R_PASS_ROUTER_PORT;
		return XDNAT_ACT_PASS;
	}
	h = bpf_map_lookup_elem(&xdnat_hosts, &host_id);
	if (!h || !(h->flags & XDNAT_HOST_F_VALID))
		goto unknown;
	if (h->gaddr_index != gidx) {
		p->reason = XDNAT_R_DROP_WRONG_GADDR;
		return XDNAT_ACT_DROP;
	}
	p->reason = fwd_reason;
	p->host_id = host_id;
	p->host_lan = h->lan_addr;
	return XDNAT_ACT_FORWARD;
unknown:
	p->reason = unknown_reason;
	return XDNAT_ACT_UNKNOWN;
}

static __always_inline void frag_key(struct xdnat_frag_key *k, const struct iphdr *ip)
{
	k->saddr = ip->saddr;
	k->daddr = ip->daddr;
	k->id = ip->id;
	k->protocol = ip->protocol;
	k->pad = 0;
}

/*
 * A later fragment carries no port or SPI: it goes where its first fragment
 * went, if that was seen less than XDNAT_FRAG_TIMEOUT_NS ago.  Otherwise it
 * is held for the slow path.
 */
static __always_inline enum xdnat_act
classify_later_fragment(struct iphdr *ip, __u32 gidx, struct xdnat_pkt *p)
{
	struct xdnat_frag_key k;
	struct xdnat_frag_val *v;

	frag_key(&k, ip);
	v = bpf_map_lookup_elem(&xdnat_frags, &k);
	if (v && bpf_ktime_get_ns() - v->learnt_ns < XDNAT_FRAG_TIMEOUT_NS)
		return host_verdict(v->host_id, gidx, XDNAT_R_FRAG_TO_HOST, XDNAT_R_FRAGMENT, p);
	p->reason = XDNAT_R_FRAG_HELD;
	return XDNAT_ACT_HOLD;
}

/* A first fragment that maps to a host teaches the fragment table. */
static __always_inline void learn_first_fragment(const struct iphdr *ip, __u32 host_id)
{
	struct xdnat_frag_val v = { .host_id = host_id };
	struct xdnat_frag_key k;

	frag_key(&k, ip);
	v.learnt_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&xdnat_frags, &k, &v, BPF_ANY);
}

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
static __always_inline void learn_peer_sampled(__u32 host_id, __be32 remote, const __u8 *seqp)
{
	__u32 seq = bpf_ntohl(*(const __be32 *)seqp);

	if (seq < 8 || !(seq & 1023))
		learn_peer(host_id, remote);
}

/* ESP-in-UDP (RFC 3948) delivered to a host: UDP header, then SPI and
 * sequence number; a zero first word is the non-ESP marker (IKE). */
static __always_inline void learn_esp_udp_peer(struct iphdr *ip, void *data_end,
					       const struct xdnat_pkt *p)
{
	__u8 *hdr = xdnat_l4(ip, data_end, 16);

	if (hdr && *(__be32 *)(hdr + 8))
		learn_peer_sampled(p->host_id, ip->saddr, hdr + 12);
}

static __always_inline __u32 owner_by_out_spi(__be32 spi, __be32 remote)
{
	struct xdnat_out_spi_key k = { .spi = spi, .remote = remote };
	struct xdnat_owner *o = bpf_map_lookup_elem(&xdnat_out_spis, &k);

	return o ? o->host_id : XDNAT_HOST_NONE;
}

#define XDNAT_ICMP_UNREACH   3
#define XDNAT_ICMP_TIMXCEED  11
#define XDNAT_ICMP_PARAMPROB 12
#define XDNAT_ICMP_FRAG_NEEDED_CODE 4

/*
 * Inbound ICMP error (@icmp: its 8-byte header, validated): find the host
 * whose packet it quotes.  The quoted header went out from this global
 * address, so its source port (TCP/UDP), echo identifier, or -- for ESP/AH --
 * the SPI of the host's outbound SA (learnt on the LAN side) names the host.
 */
static __always_inline enum xdnat_act
classify_icmp_error(struct iphdr *ip, __u8 *icmp, void *data_end, __u32 gidx,
		    struct xdnat_pkt *p)
{
	struct iphdr *e = (void *)(icmp + 8);
	__u32 off, host_id;
	__u8 *el4;

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
	off = (ip->ihl & 0xf) * 4 + 8 + (e->ihl & 0xf) * 4;
	el4 = (__u8 *)ip + off;
	if (off + 8 > bpf_ntohs(ip->tot_len) || (void *)(el4 + 8) > data_end) {
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	}
	switch (e->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		host_id = owner_by_port(gidx, bpf_ntohs(*(__be16 *)el4));
		break;
	case IPPROTO_ICMP:
		if (el4[0] != XDNAT_ICMP_ECHO)
			goto unknown;
		host_id = owner_by_port(gidx, bpf_ntohs(*(__be16 *)(el4 + 4)));
		break;
	case IPPROTO_ESP:
		host_id = owner_by_out_spi(*(__be32 *)el4, e->daddr);
		break;
	case IPPROTO_AH:
		host_id = owner_by_out_spi(*(__be32 *)(el4 + 4), e->daddr);
		break;
	default:
		goto unknown;
	}
	return host_verdict(host_id, gidx, XDNAT_R_ICMP_ERR_TO_HOST, XDNAT_R_ICMP_ERR_UNKNOWN, p);
unknown:
	p->reason = XDNAT_R_ICMP_ERR_UNKNOWN;
	return XDNAT_ACT_UNKNOWN;
}

/* ------------------------------------------------ shared IKE ports (issue 8) */

static __always_inline int is_shared_port(__u32 owner)
{
	return owner == XDNAT_HOST_SHARED_IKE || owner == XDNAT_HOST_SHARED_NATT;
}

enum ike_kind {
	IKE_MALFORMED,  /* truncated UDP/marker/IKE header */
	IKE_KEEPALIVE,  /* NAT-T keepalive: one 0xff byte (RFC 3948 2.3) */
	IKE_ESP,        /* ESP-in-UDP: non-zero first word (RFC 3948 2.1) */
	IKE_MSG,        /* IKEv2 header */
	IKE_OTHER,      /* an IKE header of another major version (IKEv1) */
};

/* What a datagram on a shared port says about its host. */
struct ike_view {
	__u32 esp_spi;    /* IKE_ESP: the SPI */
	__u32 spii_hi;    /* IKE_MSG: top 32 bits of the initiator's SPI */
	__u32 spir_hi;    /*          and of the responder's */
	__u32 spir_zero;  /*          responder SPI all zero (IKE_SA_INIT) */
	__u32 initiator;  /*          Initiator flag: sent by the SA's initiator */
};

/*
 * Parse the UDP datagram @ip on a shared port whose slot holds @kind
 * (XDNAT_HOST_SHARED_*).  The bytes routed by must lie inside both the IP
 * datagram (tot_len) and the UDP datagram (its length field, which in a
 * first fragment covers the whole datagram).
 */
static __always_inline enum ike_kind
ike_parse(struct iphdr *ip, void *data_end, __u32 kind, struct ike_view *v)
{
	__u8 *u = xdnat_l4(ip, data_end, 8), *ike;
	__u32 ulen;

	if (!u)
		return IKE_MALFORMED;
	ulen = bpf_ntohs(*(__be16 *)(u + 4));
	if (kind == XDNAT_HOST_SHARED_NATT) {
		if (ulen == 9) {
			u = xdnat_l4(ip, data_end, 9);
			return u && u[8] == 0xff ? IKE_KEEPALIVE : IKE_MALFORMED;
		}
		u = xdnat_l4(ip, data_end, 12);
		if (!u || ulen < 12)
			return IKE_MALFORMED;
		v->esp_spi = bpf_ntohl(*(__be32 *)(u + 8));
		if (v->esp_spi)
			return IKE_ESP;
		u = xdnat_l4(ip, data_end, 12 + XDNAT_IKE_HDR_LEN);
		if (!u || ulen < 12 + XDNAT_IKE_HDR_LEN)
			return IKE_MALFORMED;
		ike = u + 12;
	} else {
		u = xdnat_l4(ip, data_end, 8 + XDNAT_IKE_HDR_LEN);
		if (!u || ulen < 8 + XDNAT_IKE_HDR_LEN)
			return IKE_MALFORMED;
		ike = u + 8;
	}
	if ((ike[17] >> 4) != XDNAT_IKE_MAJOR_VERSION)
		return IKE_OTHER;
	v->initiator = ike[19] & XDNAT_IKE_FLAG_INITIATOR;
	v->spii_hi = bpf_ntohl(*(__be32 *)ike);
	v->spir_hi = bpf_ntohl(*(__be32 *)(ike + 8));
	v->spir_zero = !(*(__u32 *)(ike + 8) | *(__u32 *)(ike + 12));
	return IKE_MSG;
}

/*
 * Inbound UDP to a shared port (@slot): ESP-in-UDP by its SPI; IKEv2 by the
 * host's IKE SPI (responder SPI when the sender is the initiator, else the
 * initiator SPI); IKE_SA_INIT from a remote initiator to the slot's
 * default host, or dropped.
 */
static __always_inline enum xdnat_act
classify_shared_inbound(struct iphdr *ip, void *data_end, __u32 gidx,
			const struct xdnat_owner *slot, struct xdnat_pkt *p)
{
	struct ike_view v = {};
	enum xdnat_act act;

	switch (ike_parse(ip, data_end, slot->host_id, &v)) {
	case IKE_MALFORMED:
		p->reason = XDNAT_R_DROP_MALFORMED;
		return XDNAT_ACT_DROP;
	case IKE_ESP:
		if (v.esp_spi <= XDNAT_SPI_RESERVED_MAX) {
			p->reason = XDNAT_R_DROP_SPI_RESERVED;
			return XDNAT_ACT_DROP;
		}
		return host_verdict(owner_by_spi(v.esp_spi), gidx, XDNAT_R_ESP_UDP_TO_HOST,
				    XDNAT_R_UNKNOWN_SPI, p);
	case IKE_MSG:
		if (!v.initiator)
			return host_verdict(owner_by_spi(v.spii_hi), gidx, XDNAT_R_IKE_TO_HOST,
					    XDNAT_R_UNKNOWN_IKE_SPI, p);
		if (!v.spir_zero)
			return host_verdict(owner_by_spi(v.spir_hi), gidx, XDNAT_R_IKE_TO_HOST,
					    XDNAT_R_UNKNOWN_IKE_SPI, p);
		act = host_verdict(slot->default_host, gidx, XDNAT_R_IKE_TO_DEFAULT,
				   XDNAT_R_IKE_NO_DEFAULT, p);
		return act == XDNAT_ACT_UNKNOWN ? XDNAT_ACT_DROP : act;
	default:
		p->reason = XDNAT_R_UNKNOWN_SHARED;
		return XDNAT_ACT_UNKNOWN;
	}
}

/*
 * Outbound UDP from a shared port (@kind) of host @sender: the forwarding
 * reason, or a drop reason (drop_malformed, drop_spoof_ike).  The host's own
 * IKE SPI (initiator SPI when it initiated, else responder SPI) must be in
 * its blocks; ESP-in-UDP carries the remote's SPI and keepalives and
 * SPIr-zero answers (COOKIE, INVALID_KE) no SPI of the host's: unchecked.
 */
static __always_inline __u32 shared_outbound(struct iphdr *inner, void *data_end, __u32 kind,
					     __u32 sender)
{
	struct ike_view v = {};
	__u32 spi_hi;

	switch (ike_parse(inner, data_end, kind, &v)) {
	case IKE_MALFORMED:
		return XDNAT_R_DROP_MALFORMED;
	case IKE_ESP:
	case IKE_KEEPALIVE:
		return XDNAT_R_SHARED_UNCHECKED;
	case IKE_MSG:
		if (v.initiator)
			spi_hi = v.spii_hi;
		else if (v.spir_zero)
			return XDNAT_R_SHARED_UNCHECKED;
		else
			spi_hi = v.spir_hi;
		return owner_by_spi(spi_hi) == sender ? XDNAT_R_IKE_FROM_HOST : XDNAT_R_DROP_SPOOF_IKE;
	default:
		return XDNAT_R_DROP_SPOOF_IKE;
	}
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
	enum xdnat_act act;
	__u8 *l4;

	if (xdnat_ip_is_later_fragment(ip))
		return classify_later_fragment(ip, gidx, p);

	switch (ip->protocol) {
	case IPPROTO_ESP:
	case IPPROTO_AH: {
		/* ESP: SPI at offset 0; AH: next hdr, len, reserved, then SPI. */
		__u32 off = ip->protocol == IPPROTO_AH ? 4 : 0;
		__u32 spi;

		l4 = xdnat_l4(ip, data_end, 8);
		if (!l4 && ip->protocol == IPPROTO_ESP)
			l4 = xdnat_l4(ip, data_end, 4);
		if (!l4 || (off && !xdnat_l4(ip, data_end, 8))) {
			p->reason = XDNAT_R_DROP_MALFORMED;
			return XDNAT_ACT_DROP;
		}
		spi = bpf_ntohl(*(__be32 *)(l4 + off));
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

		l4 = xdnat_l4(ip, data_end, 4);
		if (!l4) {
			p->reason = XDNAT_R_DROP_MALFORMED;
			return XDNAT_ACT_DROP;
		}
		key = gidx * XDNAT_PORTS_PER_GADDR + bpf_ntohs(*(__be16 *)(l4 + 2));
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
		l4 = xdnat_l4(ip, data_end, 8);
		if (!l4) {
			p->reason = XDNAT_R_DROP_MALFORMED;
			return XDNAT_ACT_DROP;
		}
		if (l4[0] == XDNAT_ICMP_UNREACH || l4[0] == XDNAT_ICMP_TIMXCEED ||
		    l4[0] == XDNAT_ICMP_PARAMPROB)
			return classify_icmp_error(ip, l4, data_end, gidx, p);
		if (l4[0] != XDNAT_ICMP_ECHOREPLY) {
			/* Echo requests and the rest are for the router. */
			p->reason = XDNAT_R_PASS_ICMP_LOCAL;
			return XDNAT_ACT_PASS;
		}
		host_id = owner_by_port(gidx, bpf_ntohs(*(__be16 *)(l4 + 4)));
		unknown_reason = XDNAT_R_UNKNOWN_ICMP_ID;
		break;
	default:
		p->reason = XDNAT_R_UNKNOWN_PROTO;
		return XDNAT_ACT_UNKNOWN;
	}

	act = host_verdict(host_id, gidx, XDNAT_R_WAN_TO_HOST, unknown_reason, p);
	if (act == XDNAT_ACT_FORWARD && (ip->protocol == IPPROTO_ESP || ip->protocol == IPPROTO_AH)) {
		__u8 *hdr;

		if (ip->protocol == IPPROTO_AH) {
			hdr = xdnat_l4(ip, data_end, 12);
			if (hdr)
				learn_peer_sampled(p->host_id, ip->saddr, hdr + 8);
		} else {
			hdr = xdnat_l4(ip, data_end, 8);
			if (hdr)
				learn_peer_sampled(p->host_id, ip->saddr, hdr + 4);
		}
	} else if (act == XDNAT_ACT_FORWARD && ip->protocol == IPPROTO_UDP &&
		   *(__be16 *)l4 == bpf_htons(XDNAT_IKE_NATT_PORT)) {
		/* From a peer's NAT-T port to a host's own port: ESP-in-UDP
		 * (RFC 3948) when the first word (the SPI) is not the non-ESP
		 * marker.  Such peers are notified like ESP peers. */
		learn_esp_udp_peer(ip, data_end, p);
	}
learn:
	if (act == XDNAT_ACT_FORWARD && (ip->frag_off & bpf_htons(XDNAT_IP_MF)))
		learn_first_fragment(ip, p->host_id);
	return act;
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
	return classify_inbound(ip, data_end, gidx, p);
}

/*
 * An ESP/AH packet from a host names the remote's SPI of one of the host's
 * outbound SAs: remember it, so that ICMP errors quoting such packets find
 * the host.  Written only when new or changed (a lookup is cheaper).
 */
static __always_inline void learn_out_spi(struct iphdr *inner, void *data_end, __u32 sender)
{
	__u32 off = inner->protocol == IPPROTO_AH ? 4 : 0;
	struct xdnat_out_spi_key k = { .remote = inner->daddr };
	struct xdnat_owner o = { .host_id = sender }, *cur;
	__u8 *l4 = xdnat_l4(inner, data_end, 8);

	if (!l4)
		return;
	k.spi = *(__be32 *)(l4 + (off & 4));
	if (bpf_ntohl(k.spi) <= XDNAT_SPI_RESERVED_MAX)
		return;
	cur = bpf_map_lookup_elem(&xdnat_out_spis, &k);
	if (!cur || cur->host_id != sender)
		bpf_map_update_elem(&xdnat_out_spis, &k, &o, BPF_ANY);
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
	__u32 *idp, sender, fwd_reason = XDNAT_R_HOST_TO_WAN;
	struct xdnat_host *h;
	int gidx;
	__u8 *l4;

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
	if (outer->frag_off & bpf_htons(XDNAT_IP_MF | XDNAT_IP_OFFMASK)) {
		p->reason = XDNAT_R_FRAGMENT;
		return XDNAT_ACT_DROP;
	}
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
			l4 = xdnat_l4(inner, data_end, 4);
			if (!l4) {
				p->reason = XDNAT_R_DROP_MALFORMED;
				return XDNAT_ACT_DROP;
			}
			port = bpf_ntohs(*(__be16 *)l4);
		} else if (inner->protocol == IPPROTO_ICMP) {
			l4 = xdnat_l4(inner, data_end, 8);
			if (!l4) {
				p->reason = XDNAT_R_DROP_MALFORMED;
				return XDNAT_ACT_DROP;
			}
			if (l4[0] == XDNAT_ICMP_ECHO || l4[0] == XDNAT_ICMP_ECHOREPLY)
				port = bpf_ntohs(*(__be16 *)(l4 + 4));
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

static __always_inline __u32 unknown_is_drop(void)
{
	return cfg.flags & XDNAT_F_UNKNOWN_DROP;
}

static __always_inline void fib_prepare(struct bpf_fib_lookup *fib, __u32 ifindex,
					__be32 src, __be32 dst, __u8 tos, __u16 tot_len)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = 2; /* AF_INET */
	fib->tos = tos;
	fib->l4_protocol = IPPROTO_IPIP;
	fib->tot_len = tot_len;
	fib->ifindex = ifindex;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
}

static __always_inline void set_macs(struct ethhdr *eth, const struct bpf_fib_lookup *fib)
{
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
}

/*
 * Next hop for a packet leaving on @want_ifindex.  Returns the fib result,
 * folding "routed out of another NIC" and "unreachable" into a drop reason.
 */
static __always_inline int fib_next_hop_uncached(void *ctx, struct bpf_fib_lookup *fib,
						 __u32 want_ifindex, __u32 *reason)
{
	int rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);

	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		/* The kernel sets the egress NIC before it looks for the
		 * neighbour, so "routed out of another NIC" is known for both:
		 * an unresolved neighbour must not bypass it. */
		if (fib->ifindex != want_ifindex) {
			*reason = XDNAT_R_DROP_NO_ROUTE;
			return -1;
		}
		if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
			*reason = XDNAT_R_PASS_NO_NEIGH;
		return rc;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		*reason = XDNAT_R_PASS_TOO_BIG;
		return rc;
	default:
		*reason = XDNAT_R_DROP_NO_ROUTE;
		return -1;
	}
}

/*
 * The caches' clock: jiffies (a plain load) where libbpf can read the
 * kernel's CONFIG_HZ, else the coarse monotonic clock, which costs more.
 */
extern unsigned long CONFIG_HZ __kconfig __weak;

static __always_inline __u64 nh_now(void)
{
	return CONFIG_HZ ? bpf_jiffies64() : bpf_ktime_get_coarse_ns();
}

/*
 * Is an entry stamped @stamp still within nh_cache_ms (at least one tick)?
 * In jiffies the lifetime is floor(ms * HZ / 1000) ticks, compared without
 * a division on the hot path; an age beyond 2^32 ticks (a stamp from the
 * other clock, left by an earlier load) is never fresh.
 */
static __always_inline int nh_fresh(__u64 now, __u64 stamp)
{
	__u64 age = now - stamp, ms = cfg.nh_cache_ms, ticks;

	if (!CONFIG_HZ)
		return age < ms * 1000000ull;
	ticks = ms * CONFIG_HZ;
	return age < (1ull << 32) && (age + 1) * 1000 <= (ticks > 1000 ? ticks : 1000);
}

/*
 * fib_next_hop_uncached() behind the next-hop cache (see maps/xdnat_abi.h):
 * the same results, with the lookup done once per nh_cache_ms per
 * source/destination/egress interface.  Only successes are cached.
 */
static __always_inline int fib_next_hop(void *ctx, struct bpf_fib_lookup *fib,
					__u32 want_ifindex, __u32 *reason)
{
	struct xdnat_nh_key k = { .dst = fib->ipv4_dst, .src = fib->ipv4_src, .oif = want_ifindex };
	int cached = cfg.nh_cache_ms != 0;
	struct xdnat_nh *nh, fresh = {};
	__u64 now = 0;
	__u16 tot_len = fib->tot_len;
	int rc;

	if (cached) {
		now = nh_now();
		nh = bpf_map_lookup_elem(&xdnat_nh_cache, &k);
		if (nh && nh_fresh(now, nh->stamp) && tot_len <= nh->mtu) {
			__builtin_memcpy(fib->dmac, nh->dmac, ETH_ALEN);
			__builtin_memcpy(fib->smac, nh->smac, ETH_ALEN);
			fib->ifindex = want_ifindex;
			return BPF_FIB_LKUP_RET_SUCCESS;
		}
	}
	rc = fib_next_hop_uncached(ctx, fib, want_ifindex, reason);
	if (cached && rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(fresh.dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(fresh.smac, fib->smac, ETH_ALEN);
		/* On success the kernel reports the path MTU in the tot_len union;
		 * never cache less than what just fitted. */
		fresh.mtu = fib->mtu_result > tot_len ? fib->mtu_result : tot_len;
		fresh.stamp = now;
		bpf_map_update_elem(&xdnat_nh_cache, &k, &fresh, BPF_ANY);
	}
	return rc;
}

/*
 * Next hop to host @host_id on the LAN: the per-host cache entry when it is
 * fresh, for the host's current address, and the packet fits its MTU;
 * otherwise the full lookup, whose success refreshes the entry.
 */
static __always_inline int host_next_hop(void *ctx, struct bpf_fib_lookup *fib, __u32 host_id,
					 __u32 *reason)
{
	struct xdnat_host_nh *nh;
	__u64 now;
	__u16 tot_len = fib->tot_len;
	int rc;

	if (!cfg.nh_cache_ms)
		return fib_next_hop_uncached(ctx, fib, cfg.lan_ifindex, reason);
	now = nh_now();
	nh = bpf_map_lookup_elem(&xdnat_host_nh, &host_id);
	if (nh && nh->lan_addr == fib->ipv4_dst && nh_fresh(now, nh->stamp) && tot_len <= nh->mtu) {
		__builtin_memcpy(fib->dmac, nh->dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, nh->smac, ETH_ALEN);
		fib->ifindex = cfg.lan_ifindex;
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	rc = fib_next_hop_uncached(ctx, fib, cfg.lan_ifindex, reason);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS && nh) {
		__builtin_memcpy(nh->dmac, fib->dmac, ETH_ALEN);
		__builtin_memcpy(nh->smac, fib->smac, ETH_ALEN);
		nh->mtu = fib->mtu_result > tot_len ? fib->mtu_result : tot_len;
		/* Readers trust the entry by its address: write that last. */
		asm volatile("" ::: "memory");
		nh->lan_addr = fib->ipv4_dst;
		nh->stamp = now;
	}
	return rc;
}

/*
 * Slow path of a later fragment whose first fragment is unknown: copy the
 * whole frame to xdnatd (perf event), which re-injects it once the fragment
 * table knows the datagram.  Without a reader (or for frames too big to
 * hold) the unknown policy applies, counted as "fragment".  @ctx is the
 * xdp_md or __sk_buff: the helper copies the frame from either.
 */
static __always_inline int hold_frame(void *ctx, struct xdnat_pkt *p, __u32 ifindex)
{
	struct xdnat_frag_event ev = { .len = p->wire_len, .ifindex = ifindex };
	__u64 flags = BPF_F_CURRENT_CPU | ((__u64)(ev.len & 0xffff) << 32);

	if (ev.len > XDNAT_FRAG_HOLD_MAX ||
	    bpf_perf_event_output(ctx, &xdnat_frag_events, flags, &ev, sizeof(ev))) {
		p->reason = XDNAT_R_FRAGMENT;
		return -1;
	}
	return 0;
}

/* Bytes of the offending datagram an ICMP error quotes: header + 8. */
static __always_inline __u32 icmp_quote_len(const struct iphdr *ip)
{
	return (ip->ihl & 0xf) * 4 + 8;
}

/* ------------------------------------------------------------------ XDP */

static __always_inline int xdp_finish(enum xdnat_act act, const struct xdnat_pkt *p)
{
	count(p->reason, p->bytes);
	if (act == XDNAT_ACT_PASS)
		return XDP_PASS;
	if (act == XDNAT_ACT_UNKNOWN && !unknown_is_drop())
		return XDP_PASS;
	return XDP_DROP;
}

/*
 * Answer the frame in @ctx (a DF datagram too big for the next hop) with
 * ICMP fragmentation-needed carrying @mtu, in place, and send it back out of
 * the NIC it came in on.  @tunnel: the frame is a tunnel packet from a host
 * ([eth][outer][inner]) and so is the answer.  The outer/inner headers were
 * validated by the classifier.
 */
/*
 * RFC 1812 4.3.2.7 (and RFC 1122): no ICMP error about an ICMP error, a
 * later fragment, or a datagram whose source is not a unicast host or whose
 * destination is broadcast/multicast.  The frag-needed builders below drop
 * those instead (drop_too_big).
 */
static __always_inline int icmp_error_allowed(struct iphdr *ip, void *data_end)
{
	__u32 src = bpf_ntohl(ip->saddr), dst = bpf_ntohl(ip->daddr);
	__u8 *l4;

	if ((src >> 24) == 0 || (src >> 24) == 127 || (src >> 28) >= 0xe ||
	    (dst >> 28) >= 0xe || xdnat_ip_is_later_fragment(ip))
		return 0;
	if (ip->protocol == IPPROTO_ICMP) {
		l4 = xdnat_l4(ip, data_end, 1);
		if (!l4 || l4[0] == 3 || l4[0] == 4 || l4[0] == 5 || l4[0] == 11 || l4[0] == 12)
			return 0;
	}
	return 1;
}

static __always_inline int xdp_frag_needed(struct xdp_md *ctx, const struct xdnat_pkt *p,
					   int tunnel, __u16 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = sizeof(struct ethhdr) + (tunnel ? sizeof(struct iphdr) : 0);
	struct iphdr *ip = data + l3, *outer = data + sizeof(struct ethhdr);
	__be32 src, dst, tun_dst;
	struct ethhdr saved;
	__u32 quote, keep, len;

	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (!icmp_error_allowed(ip, data_end)) {
		count(XDNAT_R_DROP_TOO_BIG, p->bytes);
		return XDP_DROP;
	}
	saved = *(struct ethhdr *)data;
	quote = icmp_quote_len(ip);
	src = tunnel ? cfg.lan_addr : ip->daddr;
	dst = ip->saddr;
	tun_dst = outer->saddr;
	/* The quote stays where it is; 28 bytes of new headers go in front. */
	keep = l3 + sizeof(struct iphdr) + 8 + quote;
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(struct iphdr) + 8)))
		goto internal;
	len = (void *)(long)ctx->data_end - (void *)(long)ctx->data;
	if (len > keep && bpf_xdp_adjust_tail(ctx, -(int)(len - keep)))
		goto internal;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (xdnat_write_frag_needed(data, data_end, &saved, tunnel, cfg.lan_addr, tun_dst,
				    src, dst, mtu, quote))
		goto internal;
	count(XDNAT_R_TOO_BIG_ICMP, p->bytes);
	/* Through the devmap rather than XDP_TX: a veth drops XDP_TX frames
	 * of skb-backed packets its peer sent (seen on 6.18), redirect works. */
	return bpf_redirect_map(&xdnat_txports, tunnel ? XDNAT_TXPORT_LAN : XDNAT_TXPORT_WAN, 0);
internal:
	count(XDNAT_R_DROP_INTERNAL, p->bytes);
	return XDP_DROP;
}

static __always_inline int wan_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *inner, *outer;
	struct ethhdr *eth, saved;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc;

	p.wire_len = data_end - data;
	act = wan_classify(data, data_end, &p);
	if (act == XDNAT_ACT_HOLD) {
		if (hold_frame(ctx, &p, ctx->ingress_ifindex))
			return xdp_finish(XDNAT_ACT_UNKNOWN, &p);
		count(p.reason, p.bytes);
		return XDP_DROP;
	}
	if (act != XDNAT_ACT_FORWARD)
		return xdp_finish(act, &p);

	eth = data;
	inner = data + sizeof(*eth);
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;
	saved = *eth;
	fib_prepare(&fib, ctx->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
		    p.bytes + sizeof(struct iphdr));
	rc = host_next_hop(ctx, &fib, p.host_id, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return XDP_DROP;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)) &&
	    fib.mtu_result > XDNAT_TUNNEL_OVERHEAD)
		/* Tunnel MTU policy: DF and too big for the LAN once wrapped:
		 * tell the sender the tunnel MTU. */
		return xdp_frag_needed(ctx, &p, 0, fib.mtu_result - XDNAT_TUNNEL_OVERHEAD);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr))) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	outer = data + sizeof(*eth);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	*eth = saved;
	xdnat_write_outer(outer, inner, cfg.lan_addr, p.host_lan);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		/* Unresolved neighbour, or too big for the LAN without DF: the
		 * stack forwards the tunnel packet (resolving, fragmenting the
		 * outer header; the host reassembles) on our behalf. */
		count(reason, p.bytes);
		return XDP_PASS;
	}
	set_macs(eth, &fib);
	count(p.reason, p.bytes);
	count_host(p.host_id, 1, p.bytes);
	return bpf_redirect_map(&xdnat_txports, XDNAT_TXPORT_LAN, 0);
}

static __always_inline int lan_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xdnat_pkt p = {};
	struct bpf_fib_lookup fib;
	struct iphdr *outer, *inner;
	struct ethhdr *eth, saved;
	enum xdnat_act act;
	__u32 reason = 0;
	int rc;

	p.wire_len = data_end - data;
	act = lan_classify(data, data_end, &p);
	if (act != XDNAT_ACT_FORWARD) {
		/* Hairpin to an unallocated port of a global address: the
		 * router's own services see it only through the unknown policy. */
		return xdp_finish(act == XDNAT_ACT_UNKNOWN ? XDNAT_ACT_DROP : act, &p);
	}

	eth = data;
	outer = data + sizeof(*eth);
	inner = (void *)(outer + 1);
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;

	if (p.reason == XDNAT_R_HAIRPIN) {
		fib_prepare(&fib, ctx->ingress_ifindex, cfg.lan_addr, p.host_lan, inner->tos,
			    bpf_ntohs(outer->tot_len));
		rc = host_next_hop(ctx, &fib, p.dst_id, &reason);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
			/* No stack fallback for a tunnel packet: drop and count. */
			count(reason == XDNAT_R_PASS_NO_NEIGH || reason == XDNAT_R_PASS_TOO_BIG ?
			      reason : XDNAT_R_DROP_NO_ROUTE, p.bytes);
			return XDP_DROP;
		}
		xdnat_ttl_dec(inner);
		xdnat_rewrite_outer(outer, cfg.lan_addr, p.host_lan);
		set_macs(eth, &fib);
		count(XDNAT_R_HAIRPIN, p.bytes);
		count_host(p.host_id, 0, p.bytes);
		count_host(p.dst_id, 1, p.bytes);
		return XDP_TX;
	}

	fib_prepare(&fib, ctx->ingress_ifindex, inner->saddr, inner->daddr, inner->tos,
		    p.bytes);
	fib.l4_protocol = inner->protocol;
	rc = fib_next_hop(ctx, &fib, cfg.wan_ifindex, &reason);
	if (rc < 0) {
		count(reason, p.bytes);
		return XDP_DROP;
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && (inner->frag_off & bpf_htons(XDNAT_IP_DF)))
		/* The stack would answer to the global address, i.e. itself:
		 * answer the host through its tunnel instead. */
		return xdp_frag_needed(ctx, &p, 1, fib.mtu_result);

	saved = *eth;
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr))) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	inner = data + sizeof(*eth);
	if ((void *)(inner + 1) > data_end) {
		count(XDNAT_R_DROP_INTERNAL, p.bytes);
		return XDP_DROP;
	}
	*eth = saved;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		/* The stack forwards it (and decrements the TTL itself). */
		count(reason, p.bytes);
		return XDP_PASS;
	}
	xdnat_ttl_dec(inner);
	set_macs(eth, &fib);
	count(p.reason, p.bytes); /* host_to_wan, or ike_from_host/shared_unchecked */
	count_host(p.host_id, 0, p.bytes);
	return bpf_redirect_map(&xdnat_txports, XDNAT_TXPORT_WAN, 0);
}

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
