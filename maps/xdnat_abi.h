/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdnat map ABI: the single definition of every key, value, pin name and
 * constant shared by the BPF programs (bpf/) and user space (loader/,
 * selftests/).  Both sides include this file; the _Static_asserts at the end
 * keep the layouts from drifting.
 *
 * Fast-path lookups are O(1) in the number of hosts:
 *   port  -> host  ARRAY indexed by gaddr_index * 65536 + port
 *   SPI   -> host  ARRAY indexed by spi >> spi_block_bits
 *   host  -> LAN address, global address index   ARRAY indexed by host id
 *   LAN address -> host id                       HASH (LAN ingress only)
 */
#ifndef XDNAT_ABI_H
#define XDNAT_ABI_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <linux/types.h>
#include <stddef.h>
#endif

/* Limits.  Host id 0 means "nobody": an all-zero map entry is unallocated. */
#define XDNAT_MAX_GADDRS          16      /* global (shared) IPv4 addresses */
#define XDNAT_PORTS_PER_GADDR     65536
#define XDNAT_DEFAULT_MAX_HOSTS   4096    /* host ids 1 .. max_hosts-1 */
#define XDNAT_LIMIT_MAX_HOSTS     (1u << 20)
#define XDNAT_DEFAULT_SPI_BITS    16      /* SPIs per block = 1 << bits */
#define XDNAT_MIN_SPI_BITS        8       /* keeps the SPI array <= 2^24 */
#define XDNAT_MAX_SPI_BITS        24
#define XDNAT_SPI_RESERVED_MAX    255     /* RFC 4303: SPIs 1-255 reserved */
#define XDNAT_OUTER_TTL           64
#define XDNAT_TUNNEL_OVERHEAD     20      /* outer IPv4 header, no options */
#define XDNAT_HOST_NONE           0u

/* Map and pin names (also the file names under the pin directory). */
#define XDNAT_PIN_BASE            "/sys/fs/bpf/xdnat"
#define XDNAT_DEFAULT_INSTANCE    "default"
#define XDNAT_MAP_INFO            "xdnat_info"
#define XDNAT_MAP_PORTS           "xdnat_ports"
#define XDNAT_MAP_SPIS            "xdnat_spis"
#define XDNAT_MAP_HOSTS           "xdnat_hosts"
#define XDNAT_MAP_LAN_IDX         "xdnat_lan_idx"
#define XDNAT_MAP_HSTATS          "xdnat_hstats"
#define XDNAT_MAP_STATS           "xdnat_stats"
#define XDNAT_MAP_TXPORTS         "xdnat_txports"
#define XDNAT_MAP_HOST_NH         "xdnat_host_nh"
#define XDNAT_MAP_FRAGS           "xdnat_frags"      /* first fragment -> host (LRU) */
#define XDNAT_MAP_OUT_SPIS        "xdnat_out_spis"   /* outbound SA SPI -> host (LRU) */
#define XDNAT_MAP_FRAG_EVENTS     "xdnat_frag_events" /* slow path: held fragments */
#define XDNAT_MAP_PEERS           "xdnat_peers"      /* {host, remote} of inbound ESP/AH (LRU) */
#define XDNAT_PIN_LINK_WAN        "link_wan"
#define XDNAT_PIN_LINK_LAN        "link_lan"
#define XDNAT_LOCK_FILE           "xdnatd.lock"

/*
 * Fragments (WAN ingress).  A first fragment (MF set, offset 0) that maps to
 * a host teaches xdnat_frags {src, dst, proto, IP ID} -> host; later
 * fragments (offset != 0) follow that entry for XDNAT_FRAG_TIMEOUT_NS (the
 * reassembly time of RFC 791/Linux ipfrag_time).  A later fragment with no
 * entry goes to the slow path: the whole frame is copied to user space
 * through xdnat_frag_events (perf event array) and dropped in XDP; xdnatd
 * holds it up to XDNAT_FRAG_HOLD_MS and re-injects it into the WAN XDP
 * program once its first fragment has taught the table.
 */
#define XDNAT_FRAG_ENTRIES        65536
#define XDNAT_FRAG_TIMEOUT_NS     (30ull * 1000000000ull)
#define XDNAT_FRAG_HOLD_MAX       2048    /* largest frame the slow path holds */
#define XDNAT_FRAG_HOLD_MS        1000
#define XDNAT_FRAG_HOLD_FRAMES    256     /* frames xdnatd holds at most */
#define XDNAT_OUT_SPI_ENTRIES     65536

/*
 * Remote IPsec peers (xdnat_peers, LRU hash, pinned): every inbound ESP/AH
 * packet delivered to a host records {host id, source address}, refreshed at
 * most once per XDNAT_PEER_REFRESH_NS.  xdnatd reads it when the Local CA
 * revokes a host's certificate, to notify those peers (docs/LCA.md).
 */
#define XDNAT_PEER_ENTRIES        65536
#define XDNAT_PEER_REFRESH_NS     1000000000ull

struct xdnat_peer_key {
	__u32 host_id;
	__be32 remote;
};

struct xdnat_peer_val {
	__u64 seen_ns;     /* bpf_ktime_get_coarse_ns() of the last refresh */
};

/*
 * Next-hop cache (xdnat_nh_cache, LRU hash, private to each program load):
 * a bpf_fib_lookup costs more than the rest of the WAN->LAN path, so a
 * successful result (MACs and path MTU for a source/destination/egress
 * interface) is reused for nh_cache_ms.  Neighbour and route changes are
 * therefore seen within that time; a packet larger than the cached MTU
 * always takes the full lookup (fragmentation-needed handling).
 */
#define XDNAT_NH_CACHE_ENTRIES    65536
#define XDNAT_DEFAULT_NH_CACHE_MS 1000

/*
 * The same cache for the WAN->LAN direction, where the destination is a
 * host: an array indexed by host id (xdnat_host_nh, sized like the host
 * table), so the hot path pays an array lookup instead of a hash.  An entry
 * counts only for the LAN address it was learnt for; xdnatctl/RSIP clear it
 * when a host is removed.  Written by the programs (once per lifetime per
 * host): MACs and MTU first, the LAN address and stamp last.
 */
struct xdnat_host_nh {
	__u8 dmac[6];
	__u8 smac[6];
	__u16 mtu;
	__u16 pad;
	__be32 lan_addr;   /* the host address the entry is for; 0: empty */
	__u64 stamp;       /* when learnt: jiffies, or ns on kernels whose
			    * configuration libbpf cannot read (no CONFIG_HZ) */
};

struct xdnat_nh_key {
	__be32 dst;
	__be32 src;
	__u32 oif;
};

struct xdnat_nh {
	__u8 dmac[6];
	__u8 smac[6];
	__u16 mtu;
	__u16 pad;
	__u64 stamp;       /* when learnt: jiffies, or ns on kernels whose
			    * configuration libbpf cannot read (no CONFIG_HZ) */
};

struct xdnat_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 protocol;
	__u8 pad;          /* zero */
};

struct xdnat_frag_val {
	__u32 host_id;
	__u32 reserved;
	__u64 learnt_ns;   /* bpf_ktime_get_ns() of the first fragment */
};

/* Outbound ESP/AH SA: the remote's SPI and address -> sending host.  Learnt
 * on LAN ingress; routes inbound ICMP errors quoting that SA's packets. */
struct xdnat_out_spi_key {
	__be32 spi;
	__be32 remote;
};

/* Metadata in front of each held frame in xdnat_frag_events. */
struct xdnat_frag_event {
	__u32 len;         /* frame bytes that follow */
	__u32 ifindex;     /* ingress device */
};

/* Slots of the XDP devmap used for redirects. */
enum xdnat_txport {
	XDNAT_TXPORT_WAN = 0,
	XDNAT_TXPORT_LAN = 1,
	XDNAT_TXPORT_MAX,
};

/* Router configuration flags (xdnat_router_cfg.flags / xdnat_info.flags). */
#define XDNAT_F_UNKNOWN_DROP      (1u << 0) /* unallocated port/SPI: drop, not pass */
#define XDNAT_F_TC_MODE           (1u << 1) /* programs attached with tc, not XDP */

/*
 * Router configuration.  The BPF programs get it in .rodata (set before
 * load); xdnatd publishes the same struct in the xdnat_info map so that
 * xdnatctl and bpftool can read the running configuration.
 */
struct xdnat_router_cfg {
	__u32 wan_ifindex;
	__u32 lan_ifindex;
	__be32 lan_addr;                 /* router's LAN address: outer tunnel source */
	__u32 flags;                     /* XDNAT_F_* */
	__u32 n_gaddrs;                  /* valid entries of gaddrs[] */
	__u32 spi_block_bits;            /* SPIs per block = 1 << spi_block_bits */
	__u32 max_hosts;                 /* entries of the host arrays */
	__u32 nh_cache_ms;               /* next-hop cache lifetime; 0: fib every packet */
	__be32 gaddrs[XDNAT_MAX_GADDRS]; /* global addresses, index = gaddr index */
};

/*
 * xdnat_ports / xdnat_spis value: the owning host, 0 if unallocated.
 * 8 bytes because the kernel stores array elements 8-byte aligned anyway;
 * with the padding explicit, the mmap view user space uses is a plain array.
 */
struct xdnat_owner {
	__u32 host_id;
	union {
		__u32 reserved;
		__u32 default_host; /* shared IKE port slots (below): the host that
				     * gets IKE_SA_INIT from remote initiators, 0: drop */
	};
};

/*
 * Shared IKE ports (issue 8, docs/SHARED-IKE.md).  An operator-configured
 * set of UDP ports (default 500 and 4500) belongs to no host: its
 * xdnat_ports slots hold one of these owner values instead of a host id
 * (host ids stay below XDNAT_LIMIT_MAX_HOSTS), so the allocator and
 * xdnatctl see them as taken, and the datapath demultiplexes by SPI:
 *   XDNAT_HOST_SHARED_IKE   IKE without a marker (RFC 7296; port 500)
 *   XDNAT_HOST_SHARED_NATT  RFC 3948 framing: a non-zero first word is an
 *                           ESP SPI, a zero word (non-ESP marker) precedes
 *                           IKE; a 1-byte 0xff payload is a NAT keepalive
 * IKE routing rule: the top 32 bits of the 8-byte IKE SPI a host chooses
 * (the first 4 bytes on the wire) lie in one of its SPI blocks.  A message
 * with the Initiator flag carries the host's SPI as responder SPI (zero in
 * IKE_SA_INIT: the slot's default_host gets it), one without it as
 * initiator SPI.
 */
#define XDNAT_HOST_ROUTER         0xfffffffdu /* the router's own service (xdnatd
						* --router-ports): to its stack */
#define XDNAT_HOST_SHARED_IKE     0xfffffffeu
#define XDNAT_HOST_SHARED_NATT    0xffffffffu
#define XDNAT_MAX_SHARED_PORTS    8
#define XDNAT_IKE_PORT            500
#define XDNAT_IKE_NATT_PORT       4500
#define XDNAT_IKE_HDR_LEN         28      /* SPIi, SPIr, next, version, type, flags, id, len */
#define XDNAT_IKE_FLAG_INITIATOR  0x08
#define XDNAT_IKE_MAJOR_VERSION   2

#define XDNAT_HOST_F_VALID        (1u << 0)

/* xdnat_hosts value, indexed by host id. */
struct xdnat_host {
	__be32 lan_addr;   /* tunnel endpoint on the LAN */
	__u32 gaddr_index; /* which global address the host shares */
	__u32 flags;       /* XDNAT_HOST_F_* */
	__u32 reserved;
};

/* xdnat_hstats value (per CPU), indexed by host id. */
struct xdnat_host_stats {
	__u64 to_host_packets;   /* WAN (or hairpin) -> host */
	__u64 to_host_bytes;     /* inner IPv4 bytes */
	__u64 from_host_packets; /* host -> WAN (or hairpin) */
	__u64 from_host_bytes;
};

/* xdnat_stats value (per CPU), indexed by enum xdnat_reason. */
struct xdnat_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * Why a packet got its verdict.  One counter each; names (XDNAT_REASON_NAMES)
 * are what xdnatctl prints.  Keep the two lists in the same order.
 */
enum xdnat_reason {
	/* forwarded */
	XDNAT_R_WAN_TO_HOST = 0,    /* WAN packet tunnelled to its host */
	XDNAT_R_HOST_TO_WAN,        /* host packet decapsulated to the WAN */
	XDNAT_R_HAIRPIN,            /* host packet to a global address, re-tunnelled */
	/* handed to the router's own stack */
	XDNAT_R_PASS_NOT_IPV4,      /* ARP, IPv6, ... */
	XDNAT_R_PASS_VLAN,          /* 802.1Q/802.1ad tagged: left to the stack */
	XDNAT_R_PASS_NOT_GLOBAL,    /* WAN: destination is not a global address */
	XDNAT_R_PASS_ICMP_LOCAL,    /* WAN: ICMP to a global address other than echo reply */
	XDNAT_R_PASS_LAN_OTHER,     /* LAN: not IP-in-IP to the router */
	XDNAT_R_PASS_NO_NEIGH,      /* next hop unresolved: stack forwards and resolves */
	XDNAT_R_PASS_TOO_BIG,       /* exceeds egress MTU: stack fragments or answers */
	/* unallocated: passed or dropped per XDNAT_F_UNKNOWN_DROP */
	XDNAT_R_UNKNOWN_PORT,
	XDNAT_R_UNKNOWN_SPI,
	XDNAT_R_UNKNOWN_ICMP_ID,
	XDNAT_R_UNKNOWN_PROTO,
	XDNAT_R_FRAGMENT,           /* non-first fragment: no port or SPI to map by */
	/* dropped */
	XDNAT_R_DROP_MALFORMED,     /* truncated or inconsistent headers */
	XDNAT_R_DROP_SPI_RESERVED,  /* SPI 0-255 */
	XDNAT_R_DROP_WRONG_GADDR,   /* SPI/port owner shares another global address */
	XDNAT_R_DROP_UNREGISTERED,  /* LAN: tunnel from an unknown LAN address */
	XDNAT_R_DROP_SPOOF_SRC,     /* LAN: inner source is not the host's global address */
	XDNAT_R_DROP_SPOOF_PORT,    /* LAN: source port/ICMP id not in the host's blocks */
	XDNAT_R_DROP_TTL,           /* LAN: inner TTL would reach 0 */
	XDNAT_R_DROP_NO_ROUTE,      /* FIB says unreachable, or not via the expected NIC */
	XDNAT_R_DROP_INTERNAL,      /* helper failure (adjust_head, redirect) */
	/* robustness (issue 5): fragments, ICMP errors, oversize */
	XDNAT_R_FRAG_TO_HOST,       /* later fragment tunnelled by the fragment table */
	XDNAT_R_FRAG_HELD,          /* later fragment, first unseen: copied to the slow path */
	XDNAT_R_ICMP_ERR_TO_HOST,   /* ICMP error tunnelled to the host of the quoted packet */
	XDNAT_R_ICMP_ERR_UNKNOWN,   /* ICMP error quoting nothing of a host: unknown policy */
	XDNAT_R_TOO_BIG_ICMP,       /* DF packet too big for the tunnel/WAN: frag-needed sent */
	/* shared IKE ports (issue 8) */
	XDNAT_R_IKE_TO_HOST,        /* IKEv2 tunnelled by the host's IKE SPI */
	XDNAT_R_IKE_TO_DEFAULT,     /* IKE_SA_INIT from a remote initiator: port's default host */
	XDNAT_R_ESP_UDP_TO_HOST,    /* ESP-in-UDP (RFC 3948) tunnelled by its SPI */
	XDNAT_R_IKE_NO_DEFAULT,     /* IKE_SA_INIT from a remote initiator, no default host: drop */
	XDNAT_R_UNKNOWN_IKE_SPI,    /* host IKE SPI in no valid host's block: unknown policy */
	XDNAT_R_UNKNOWN_SHARED,     /* NAT keepalive, not IKEv2: names no host; unknown policy */
	XDNAT_R_IKE_FROM_HOST,      /* LAN: IKE from a shared port, host's SPI verified */
	XDNAT_R_SHARED_UNCHECKED,   /* LAN: from a shared port, nothing of the host's to check
				     * (ESP-in-UDP: the remote's SPI; keepalive; SPIr 0) */
	XDNAT_R_DROP_SPOOF_IKE,     /* LAN: shared port, host's IKE SPI not its own, or not IKEv2 */
	XDNAT_R_PASS_ROUTER_PORT,   /* WAN: a port/SPI of the router's own services: its stack */
	XDNAT_R_DROP_TOO_BIG,       /* DF and too big, but RFC 1812 forbids an ICMP error about
				     * it (ICMP error, later fragment, non-unicast address) */
	XDNAT_R_MAX,
};

#define XDNAT_REASON_NAMES { \
	"wan_to_host", "host_to_wan", "hairpin", \
	"pass_not_ipv4", "pass_vlan", "pass_not_global", "pass_icmp_local", \
	"pass_lan_other", "pass_no_neigh", "pass_too_big", \
	"unknown_port", "unknown_spi", "unknown_icmp_id", "unknown_proto", \
	"fragment", \
	"drop_malformed", "drop_spi_reserved", "drop_wrong_gaddr", \
	"drop_unregistered", "drop_spoof_src", "drop_spoof_port", "drop_ttl", \
	"drop_no_route", "drop_internal", \
	"frag_to_host", "frag_held", "icmp_err_to_host", "icmp_err_unknown", \
	"too_big_icmp", \
	"ike_to_host", "ike_to_default", "esp_udp_to_host", "ike_no_default", \
	"unknown_ike_spi", "unknown_shared", "ike_from_host", "shared_unchecked", \
	"drop_spoof_ike", \
	"pass_router_port", "drop_too_big", \
}

/* Host-side (xdnat-host) tc program configuration, in .rodata. */
struct xdnat_hostside_cfg {
	__be32 gaddr;        /* the shared global address (on lo) */
	__be32 lan_addr;     /* this host's LAN address: outer source */
	__be32 router_addr;  /* the router's LAN address: outer destination */
	__u32 reserved;
};

#define XDNAT_HOSTSIDE_MAP_STATS  "xdnat_hoststats"
enum xdnat_host_reason {
	XDNAT_HR_ENCAP = 0,      /* egress packets from the global address tunnelled */
	XDNAT_HR_DECAP,          /* ingress tunnel packets from the router unwrapped */
	XDNAT_HR_PASS,           /* other traffic, untouched */
	XDNAT_HR_DROP_MALFORMED, /* tunnel packet with a bad inner header */
	XDNAT_HR_DROP_INTERNAL,  /* helper failure */
	XDNAT_HR_PASS_FRAGMENT,  /* outer fragment of a tunnel packet: the stack
				  * reassembles it, xdnat-host unwraps it */
	XDNAT_HR_MAX,
};
#define XDNAT_HOST_REASON_NAMES { \
	"encap", "decap", "pass", "drop_malformed", "drop_internal", "pass_fragment", \
}

#ifndef __BPF__
_Static_assert(sizeof(struct xdnat_router_cfg) == 32 + 4 * XDNAT_MAX_GADDRS, "router cfg layout");
_Static_assert(offsetof(struct xdnat_router_cfg, gaddrs) == 32, "gaddrs offset");
_Static_assert(sizeof(struct xdnat_nh_key) == 12, "nh key layout");
_Static_assert(sizeof(struct xdnat_host_nh) == 32, "host nh layout");
_Static_assert(sizeof(struct xdnat_nh) == 24, "nh value layout");
_Static_assert(sizeof(struct xdnat_owner) == 8, "owner layout = kernel array element stride");
_Static_assert(offsetof(struct xdnat_owner, default_host) == 4, "default host in the owner slot");
_Static_assert(XDNAT_HOST_ROUTER >= XDNAT_LIMIT_MAX_HOSTS, "router marker is no host id");
_Static_assert(XDNAT_HOST_SHARED_IKE >= XDNAT_LIMIT_MAX_HOSTS &&
	       XDNAT_HOST_SHARED_NATT >= XDNAT_LIMIT_MAX_HOSTS, "shared markers are no host ids");
_Static_assert(sizeof(struct xdnat_host) == 16, "host layout");
_Static_assert(offsetof(struct xdnat_host, gaddr_index) == 4, "host gaddr_index offset");
_Static_assert(sizeof(struct xdnat_host_stats) == 32, "host stats layout");
_Static_assert(sizeof(struct xdnat_counter) == 16, "counter layout");
_Static_assert(sizeof(struct xdnat_hostside_cfg) == 16, "hostside cfg layout");
_Static_assert(XDNAT_R_MAX < 64, "reason enum bound");
_Static_assert(sizeof(struct xdnat_frag_key) == 12, "frag key layout (no holes)");
_Static_assert(sizeof(struct xdnat_frag_val) == 16, "frag value layout");
_Static_assert(sizeof(struct xdnat_out_spi_key) == 8, "out spi key layout");
_Static_assert(sizeof(struct xdnat_frag_event) == 8, "frag event layout");
_Static_assert(sizeof(struct xdnat_peer_key) == 8, "peer key layout");
_Static_assert(sizeof(struct xdnat_peer_val) == 8, "peer value layout");
#endif

#endif /* XDNAT_ABI_H */
