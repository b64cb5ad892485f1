/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-packet classification state shared by all the stages.
 */
#ifndef XDNAT_LIB_PKT_H
#define XDNAT_LIB_PKT_H

#include <linux/types.h>

enum xdnat_act {
	XDNAT_ACT_PASS,
	XDNAT_ACT_DROP,
	XDNAT_ACT_FORWARD,
	XDNAT_ACT_UNKNOWN, /* pass or drop per XDNAT_F_UNKNOWN_DROP */
	XDNAT_ACT_HOLD,    /* later fragment, first unseen: to the slow path */
	XDNAT_ACT_MIP,     /* UDP to the home agent port of G (lib/roam.h) */
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

#endif /* XDNAT_LIB_PKT_H */
