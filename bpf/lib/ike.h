/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared IKE ports (issue 8, docs/SHARED-IKE.md).
 */
#ifndef XDNAT_LIB_IKE_H
#define XDNAT_LIB_IKE_H

#include "lib/owner.h"
#include "lib/parse.h"

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

/* IKE header (RFC 7296 3.1); the uapi has none. */
struct ike_hdr {
	__be32 spi_i[2];      /* initiator's SPI */
	__be32 spi_r[2];      /* responder's SPI, zero in IKE_SA_INIT */
	__u8 next_payload;
	__u8 version;         /* major << 4 | minor */
	__u8 exchange_type;
	__u8 flags;           /* XDNAT_IKE_FLAG_* */
	__be32 message_id;
	__be32 length;
};
_Static_assert(sizeof(struct ike_hdr) == XDNAT_IKE_HDR_LEN, "IKE header layout");

/* RFC 3948: a NAT-keepalive is one 0xff byte; ESP-in-UDP starts with the
 * SPI, IKE on port 4500 with a zero non-ESP marker. */
#define NATT_KEEPALIVE_BYTE 0xff
#define NATT_MARKER_LEN     4

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
	const __u32 udp = sizeof(struct udphdr), marker = NATT_MARKER_LEN;
	struct udphdr *uh = xdnat_l4(ip, data_end, udp);
	struct ip_esp_hdr *esp;
	struct ike_hdr *ike;
	__u8 *keepalive;
	__u32 ulen;

	if (!uh)
		return IKE_MALFORMED;
	ulen = bpf_ntohs(uh->len);
	if (kind == XDNAT_HOST_SHARED_NATT) {
		if (ulen == udp + 1) {
			keepalive = xdnat_l4(ip, data_end, udp + 1);
			return keepalive && keepalive[udp] == NATT_KEEPALIVE_BYTE ? IKE_KEEPALIVE :
										 IKE_MALFORMED;
		}
		uh = xdnat_l4(ip, data_end, udp + marker);
		if (!uh || ulen < udp + marker)
			return IKE_MALFORMED;
		esp = (void *)(uh + 1);
		v->esp_spi = bpf_ntohl(esp->spi);
		if (v->esp_spi)
			return IKE_ESP;
		uh = xdnat_l4(ip, data_end, udp + marker + sizeof(*ike));
		if (!uh || ulen < udp + marker + sizeof(*ike))
			return IKE_MALFORMED;
		ike = (void *)(uh + 1) + marker;
	} else {
		uh = xdnat_l4(ip, data_end, udp + sizeof(*ike));
		if (!uh || ulen < udp + sizeof(*ike))
			return IKE_MALFORMED;
		ike = (void *)(uh + 1);
	}
	if ((ike->version >> 4) != XDNAT_IKE_MAJOR_VERSION)
		return IKE_OTHER;
	v->initiator = ike->flags & XDNAT_IKE_FLAG_INITIATOR;
	v->spii_hi = bpf_ntohl(ike->spi_i[0]);
	v->spir_hi = bpf_ntohl(ike->spi_r[0]);
	v->spir_zero = !(ike->spi_r[0] | ike->spi_r[1]);
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

#endif /* XDNAT_LIB_IKE_H */
