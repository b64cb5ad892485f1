/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Definitions shared by the benchmark's BPF programs (bench/ *.bpf.c files) and
 * its driver (bench/xdnat_bench.c).
 */
#ifndef XDNAT_BENCH_COMMON_H
#define XDNAT_BENCH_COMMON_H

#include <linux/types.h>

#define BENCH_MAX_FLOWS   65536u  /* flows per generator / sink, power of 2 */
#define BENCH_COST_FLOWS  4096u   /* flow values per cost case, power of 2 */
#define BENCH_COST_CASES  16u
#define BENCH_SAVE_LEN    64u     /* bytes the cost harness saves and restores */
#define BENCH_MIN_FRAME   64u

/*
 * One live flow.  The generator writes daddr, the flow key (dport or SPI)
 * and the flow index into every frame; the sink looks the index up again
 * and checks what arrived against expect_*.
 */
struct bench_flow {
	__be32 gaddr;       /* inner destination: a global address */
	__u32 key;          /* host order: UDP/TCP destination port, or ESP/AH SPI */
	__be32 lan;         /* host that must receive it: outer (xdnat) or NAT destination */
	__u16 sport;        /* UDP/TCP source port (host order) */
	__u8 proto;         /* IPPROTO_UDP / TCP / ESP / AH */
	__u8 reserved;
};

/* Frame layout the generator and the cost harness assume: Ethernet, IPv4
 * without options, then L4.  Offsets from the start of the frame. */
#define BENCH_OFF_IP      14u
#define BENCH_OFF_L4      34u

/* How the generator/sink find the flow index: 4 bytes at this L4 offset. */
#define BENCH_UDP_TAG     8u      /* after the UDP header */
#define BENCH_TCP_TAG     20u     /* after the TCP header */
#define BENCH_ESP_TAG     8u      /* after SPI + sequence number */
#define BENCH_AH_TAG      24u     /* after the 12-byte AH header + 12-byte ICV */

/* Sink: what it expects to receive. */
enum bench_sink_mode {
	BENCH_SINK_DIRECT = 0, /* the generator's frame as sent */
	BENCH_SINK_TUNNEL = 1, /* IP-in-IP, router LAN address -> flow's host, inner untouched */
	BENCH_SINK_NAT = 2,    /* destination NATed to the flow's host, source to the router */
};

enum bench_sink_ctr {
	BENCH_SINK_OK = 0,
	BENCH_SINK_BAD_FRAME,  /* not IPv4, truncated, wrong protocol */
	BENCH_SINK_BAD_FLOW,   /* flow index out of range */
	BENCH_SINK_BAD_DST,    /* delivered to the wrong host */
	BENCH_SINK_BAD_SRC,    /* tunnel/NAT source not the router */
	BENCH_SINK_BAD_INNER,  /* inner packet changed (destination, key) */
	BENCH_SINK_CTR_MAX,
};

#define BENCH_SINK_CTR_NAMES { "ok", "bad_frame", "bad_flow", "bad_dst", "bad_src", "bad_inner" }

/* Cost harness: which packet field it varies per iteration. */
enum bench_vary {
	BENCH_VARY_NONE = 0,
	BENCH_VARY_DPORT,      /* WAN: destination address + TCP/UDP destination port */
	BENCH_VARY_ESP_SPI,    /* WAN: destination address + ESP SPI */
	BENCH_VARY_AH_SPI,     /* WAN: destination address + AH SPI */
	BENCH_VARY_LAN,        /* LAN: outer source (host), inner source address and port */
};

/*
 * The minimal encapsulating router (bench_minimal): one hash lookup by
 * {global address, UDP/TCP destination port} gives the tunnel endpoint and
 * its MACs; then an outer IPv4 header and a redirect.  No classification,
 * no checks, no counters: the floor an IP-in-IP router with a table pays.
 */
struct bench_min_key {
	__be32 daddr;
	__be16 dport;
	__u16 pad;          /* zero */
};

struct bench_min_val {
	__be32 lan;         /* tunnel destination */
	__u8 dmac[6];
	__u8 smac[6];
};

struct bench_vary_val {
	__u32 a;  /* port / SPI (host order) */
	__be32 b; /* LAN: the host's LAN address (outer source) */
	__be32 c; /* WAN: destination global address; LAN: inner source */
	__u32 reserved;
};

#endif
