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

/*
 * The maps: one list of (id, name, pinned).  The name is the map's C
 * identifier in bpf/lib/maps.h (checked there) and its pin file name under
 * the pin directory; pinned maps are reused across restarts and upgrades
 * (see XDNAT_ABI_VERSION).  Expanded into enum xdnat_map and, in user space,
 * into xdnat_maps[] (loader/common/abi_names.c), which the tools iterate.
 * The XDNAT_MAP_* strings are the same names for string concatenation;
 * test_datapath checks the list against the router object both ways.
 */
#define XDNAT_MAPS(X) \
	X(INFO,        xdnat_info,        1) \
	X(PORTS,       xdnat_ports,       1) \
	X(SPIS,        xdnat_spis,        1) \
	X(HOSTS,       xdnat_hosts,       1) \
	X(LAN_IDX,     xdnat_lan_idx,     1) \
	X(HSTATS,      xdnat_hstats,      1) \
	X(STATS,       xdnat_stats,       1) \
	X(TXPORTS,     xdnat_txports,     0) /* refilled on every start */ \
	X(NH_CACHE,    xdnat_nh_cache,    0) /* private to one load */ \
	X(FRAGS,       xdnat_frags,       1) \
	X(OUT_SPIS,    xdnat_out_spis,    1) \
	X(FRAG_EVENTS, xdnat_frag_events, 0) /* belongs to its reader */ \
	X(PEERS,       xdnat_peers,       1) \
	X(COA,         xdnat_coa,         1) \
	X(COA_IDX,     xdnat_coa_idx,     1) \
	X(L1,          xdnat_l1,          0) /* per-CPU LAN-path caches, private */

enum xdnat_map {
#define XDNAT_M_ENUM_(id, name, pinned) XDNAT_M_##id,
	XDNAT_MAPS(XDNAT_M_ENUM_)
#undef XDNAT_M_ENUM_
	XDNAT_M_MAX,
};

#ifndef __BPF__
struct xdnat_map_desc {
	const char *name;
	int pinned;
};
extern const struct xdnat_map_desc xdnat_maps[XDNAT_M_MAX];
#endif

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
#define XDNAT_MAP_FRAGS           "xdnat_frags"
#define XDNAT_MAP_OUT_SPIS        "xdnat_out_spis"
#define XDNAT_MAP_FRAG_EVENTS     "xdnat_frag_events"
#define XDNAT_MAP_PEERS           "xdnat_peers"
#define XDNAT_MAP_COA             "xdnat_coa"
#define XDNAT_MAP_COA_IDX         "xdnat_coa_idx"
#define XDNAT_MAP_L1              "xdnat_l1"
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
 * host: part of the host's per-CPU entry (struct xdnat_host_pcpu in
 * xdnat_hstats, indexed by host id), so the hot path pays no hash lookup
 * and finds it in the cache line of the host's counters.  An entry counts
 * only for the LAN address it was learnt for, so a host id's next owner on
 * another address never inherits it (and one on the same address gets that
 * address's next hop, refreshed like any neighbour change).  Written by the
 * programs, each CPU its own copy (once per lifetime per host and CPU): no
 * CPU ever reads an entry another is writing.  User space writes it only
 * when it resets the counters of a host id that is not allocated (no valid
 * xdnat_hosts entry, so no program writes it then).
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

/*
 * xdnat_l1 (per-CPU array of one entry, private to each load): direct-mapped
 * caches in front of the LAN path's hash lookups, LAN address -> host id and
 * the next hop of xdnat_nh_cache (bpf/lib/l1.h).  Hints only: every slot is
 * verified against the map it caches.
 */
#define XDNAT_L1_HOST_BITS        12
#define XDNAT_L1_HOSTS            (1u << XDNAT_L1_HOST_BITS)
#define XDNAT_L1_NH_BITS          8
#define XDNAT_L1_NHS              (1u << XDNAT_L1_NH_BITS)


struct xdnat_l1_nh {
	__be32 dst;
	__be32 src;
	__u32 oif;
	__u16 mtu;
	__u16 pad;
	__u8 dmac[6];
	__u8 smac[6];
	__u32 pad2;
	__u64 stamp;       /* the stamp of the xdnat_nh_cache entry it copies */
};

struct xdnat_l1 {
	/* a host id per slot (0: empty), verified by its xdnat_hosts entry:
	 * 4 bytes, so that a slot per host of the default --max-hosts fits */
	__u32 host[XDNAT_L1_HOSTS];
	struct xdnat_l1_nh nh[XDNAT_L1_NHS];
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

/*
 * Version of the map ABI: every key, value and map of this file.  Pinned
 * maps outlive xdnatd (restarts, reload-programs, upgrades); xdnatd reuses
 * them only when the xdnat_info they carry has this version, and otherwise
 * refuses to start, saying how to upgrade (stop, remove the pin directory,
 * start: the state database rebuilds the maps).  Bump it with any layout or
 * meaning change of a pinned map.  1: the maps before versioning (an
 * xdnat_info value without this field); 2: xdnat_host_nh a shared array;
 * 3: xdnat_host_nh per CPU; 4: xdnat_coa and xdnat_coa_idx (roaming hosts);
 * 5: the per-host next hop folded into the host's per-CPU entry of
 * xdnat_hstats (struct xdnat_host_pcpu), no xdnat_host_nh.
 */
#define XDNAT_ABI_VERSION         5

/*
 * Roaming hosts (issue 18; docs/ROAMING.md): the care-of endpoint.
 *
 * A host's endpoint is either its LAN address (IP-in-IP on the LAN) or, while
 * it is registered away from home (Mobile IPv4, RFC 5944, with the home agent
 * on UDP 434 of its global address G), a care-of endpoint: the care-of
 * address and UDP port as the home agent sees them (the public side of the
 * NAT the host sits behind).  Traffic to the host then leaves the WAN NIC in
 * RFC 3519 UDP tunnelling:
 *
 *   outer IPv4 (G -> coa_addr, proto 17) / UDP (434 -> coa_port, checksum 0: none)
 *   / tunnel-data header (type 4, next header 4 = IPv4, reserved 0)
 *   / the original packet, unmodified
 *
 * and the host reverse-tunnels (RFC 3024) its traffic the same way to G:434;
 * the router checks it like LAN traffic (inner source G, the host's ports and
 * SPIs) plus outer source = the registered coa_addr:coa_port, and forwards the
 * inner packet on the WAN.  UDP 434 of G must be a router port
 * (XDNAT_HOST_ROUTER in xdnat_ports, e.g. xdnatd --router-ports 434): the
 * datapath then takes tunnel data (type 4) out and passes everything else
 * (registration requests, type 1) to the stack, counted as pass_mip_reg.
 *
 * xdnat_coa (ARRAY, pinned, max_hosts entries, indexed by host id): the
 * switch.  WAN -> host looks it up once per packet (an inlined array
 * lookup: O(1), nothing grows with the number of hosts); XDNAT_COA_F_ACTIVE
 * in ep.flags sends the host's traffic to the care-of endpoint, clear sends
 * it to the LAN address of xdnat_hosts as before.  Moving away, between
 * care-of endpoints, or home again is ONE update of this entry.  The
 * datapath reads only the 8-byte, 8-byte-aligned word ep (address, port,
 * flags) with one load, so it never sees the address of one registration
 * with the port of another (the kernel copies array values with aligned
 * word moves).  generation is for the control plane (e.g. the registration
 * count or Identification it came from): the datapath ignores it.
 *
 * xdnat_coa_idx (HASH, pinned, max_hosts entries): {coa_addr, coa_port} ->
 * host id, for reverse tunnelling (the inner packet of an ESP SA names no
 * host).  A reverse-tunnelled packet is accepted only if the index names a
 * host AND that host's xdnat_coa entry is active with the same address and
 * port, so a stale index entry accepts nothing.
 *
 * Writers (the instance's one writer, loader/common/pins.c):
 *   xd_coa_set(m, host, addr, port, flags, generation): index the new
 *     endpoint, write xdnat_coa (the switch), unindex the previous one.
 *   xd_coa_clear(m, host): clear xdnat_coa (the switch home), unindex.
 *   xd_coa_get(m, host, &coa): read back (xdnatctl listing).
 *   xd_host_del() clears the host's care-of endpoint too.
 * Addresses and ports in network byte order, like every address here.
 */
#define XDNAT_MIP_PORT            434     /* RFC 5944 registration, RFC 3519 tunnel */
#define XDNAT_MIP_TUNNEL_DATA     4       /* RFC 3519 message type: tunnel data */
#define XDNAT_MIP_NH_IPV4         4       /* next header: IPv4 */
#define XDNAT_COA_OVERHEAD        (20 + 8 + 4) /* outer IPv4, UDP, tunnel-data header */

#define XDNAT_COA_F_ACTIVE        (1u << 0) /* send to the care-of endpoint */

/* RFC 3519 section 3.3 tunnel-data header, after the UDP header. */
struct xdnat_mip_tunnel_hdr {
	__u8 type;         /* XDNAT_MIP_TUNNEL_DATA */
	__u8 next_header;  /* XDNAT_MIP_NH_IPV4 */
	__be16 reserved;   /* sent 0, ignored on receipt */
};

/* The part of a care-of endpoint the datapath reads: one 8-byte word. */
struct xdnat_coa_ep {
	__be32 addr;       /* care-of address as the home agent sees it */
	__be16 port;       /* care-of UDP port as the home agent sees it */
	__u16 flags;       /* XDNAT_COA_F_* */
};

/* xdnat_coa value, indexed by host id.  All zero: at home. */
struct xdnat_coa {
	union {
		struct xdnat_coa_ep ep;
		__u64 word;        /* ep as the datapath loads it */
	};
	__u32 generation;  /* control plane's; not read by the datapath */
	__u32 reserved;
};

/* xdnat_coa_idx key -> __u32 host id. */
struct xdnat_coa_key {
	__be32 addr;
	__be16 port;
	__u16 pad;         /* zero */
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
	__u32 abi_version;               /* XDNAT_ABI_VERSION of the maps (xdnat_info) */
	__u32 reserved;
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
/* Installed for an RSIP registration (the store holds it; user space only):
 * a router that follows a shared store removes such hosts the store lost. */
#define XDNAT_HOST_F_RSIP         (1u << 1)

/* xdnat_hosts value, indexed by host id. */
struct xdnat_host {
	__be32 lan_addr;   /* tunnel endpoint on the LAN */
	__u32 gaddr_index; /* which global address the host shares */
	__u32 flags;       /* XDNAT_HOST_F_* */
	__u32 reserved;
};

/* A host's counters, summed over the CPUs of xdnat_hstats. */
struct xdnat_host_stats {
	__u64 to_host_packets;   /* WAN (or hairpin) -> host */
	__u64 to_host_bytes;     /* inner IPv4 bytes */
	__u64 from_host_packets; /* host -> WAN (or hairpin) */
	__u64 from_host_bytes;
};

/*
 * xdnat_hstats value (per CPU), indexed by host id: everything the datapath
 * writes per host, 64 bytes, so that a forwarded packet finds its host's
 * counters and next hop with one per-CPU lookup (one pointer, one value)
 * instead of two.
 */
struct xdnat_host_pcpu {
	struct xdnat_host_stats stats;
	struct xdnat_host_nh nh;  /* WAN->LAN next-hop cache (above) */
};

/* xdnat_stats value (per CPU), indexed by enum xdnat_reason. */
struct xdnat_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * Why a packet got its verdict: one counter each (xdnat_stats), under the
 * name xdnatctl, the metrics and the tests print.  The one list: expanded
 * here into enum xdnat_reason and in user space into xdnat_reason_names[]
 * (loader/common/abi_names.c).  Append only: the index is the ABI.
 */
#define XDNAT_REASONS(X) \
	/* forwarded */ \
	/* WAN packet tunnelled to its host */ \
	X(WAN_TO_HOST, wan_to_host) \
	/* host packet decapsulated to the WAN */ \
	X(HOST_TO_WAN, host_to_wan) \
	/* host packet to a global address, re-tunnelled */ \
	X(HAIRPIN, hairpin) \
	/* handed to the router's own stack */ \
	/* ARP, IPv6, ... */ \
	X(PASS_NOT_IPV4, pass_not_ipv4) \
	/* 802.1Q/802.1ad tagged: left to the stack */ \
	X(PASS_VLAN, pass_vlan) \
	/* WAN: destination is not a global address */ \
	X(PASS_NOT_GLOBAL, pass_not_global) \
	/* WAN: ICMP to a global address other than echo reply */ \
	X(PASS_ICMP_LOCAL, pass_icmp_local) \
	/* LAN: not IP-in-IP to the router */ \
	X(PASS_LAN_OTHER, pass_lan_other) \
	/* next hop unresolved: stack forwards and resolves */ \
	X(PASS_NO_NEIGH, pass_no_neigh) \
	/* exceeds egress MTU: stack fragments or answers */ \
	X(PASS_TOO_BIG, pass_too_big) \
	/* unallocated: passed or dropped per XDNAT_F_UNKNOWN_DROP */ \
	X(UNKNOWN_PORT, unknown_port) \
	X(UNKNOWN_SPI, unknown_spi) \
	X(UNKNOWN_ICMP_ID, unknown_icmp_id) \
	X(UNKNOWN_PROTO, unknown_proto) \
	/* non-first fragment: no port or SPI to map by */ \
	X(FRAGMENT, fragment) \
	/* dropped */ \
	/* truncated or inconsistent headers */ \
	X(DROP_MALFORMED, drop_malformed) \
	/* SPI 0-255 */ \
	X(DROP_SPI_RESERVED, drop_spi_reserved) \
	/* SPI/port owner shares another global address */ \
	X(DROP_WRONG_GADDR, drop_wrong_gaddr) \
	/* LAN: tunnel from an unknown LAN address */ \
	X(DROP_UNREGISTERED, drop_unregistered) \
	/* LAN: inner source is not the host's global address */ \
	X(DROP_SPOOF_SRC, drop_spoof_src) \
	/* LAN: source port/ICMP id not in the host's blocks */ \
	X(DROP_SPOOF_PORT, drop_spoof_port) \
	/* LAN: inner TTL would reach 0 */ \
	X(DROP_TTL, drop_ttl) \
	/* FIB says unreachable, or not via the expected NIC */ \
	X(DROP_NO_ROUTE, drop_no_route) \
	/* helper failure (adjust_head, redirect) */ \
	X(DROP_INTERNAL, drop_internal) \
	/* robustness (issue 5): fragments, ICMP errors, oversize */ \
	/* later fragment tunnelled by the fragment table */ \
	X(FRAG_TO_HOST, frag_to_host) \
	/* later fragment, first unseen: copied to the slow path */ \
	X(FRAG_HELD, frag_held) \
	/* ICMP error tunnelled to the host of the quoted packet */ \
	X(ICMP_ERR_TO_HOST, icmp_err_to_host) \
	/* ICMP error quoting nothing of a host: unknown policy */ \
	X(ICMP_ERR_UNKNOWN, icmp_err_unknown) \
	/* DF packet too big for the tunnel/WAN: frag-needed sent */ \
	X(TOO_BIG_ICMP, too_big_icmp) \
	/* shared IKE ports (issue 8) */ \
	/* IKEv2 tunnelled by the host's IKE SPI */ \
	X(IKE_TO_HOST, ike_to_host) \
	/* IKE_SA_INIT from a remote initiator: port's default host */ \
	X(IKE_TO_DEFAULT, ike_to_default) \
	/* ESP-in-UDP (RFC 3948) tunnelled by its SPI */ \
	X(ESP_UDP_TO_HOST, esp_udp_to_host) \
	/* IKE_SA_INIT from a remote initiator, no default host: drop */ \
	X(IKE_NO_DEFAULT, ike_no_default) \
	/* host IKE SPI in no valid host's block: unknown policy */ \
	X(UNKNOWN_IKE_SPI, unknown_ike_spi) \
	/* NAT keepalive, not IKEv2: names no host; unknown policy */ \
	X(UNKNOWN_SHARED, unknown_shared) \
	/* LAN: IKE from a shared port, host's SPI verified */ \
	X(IKE_FROM_HOST, ike_from_host) \
	/* LAN: from a shared port, nothing of the host's to check \
	 * (ESP-in-UDP: the remote's SPI; keepalive; SPIr 0) */ \
	X(SHARED_UNCHECKED, shared_unchecked) \
	/* LAN: shared port, host's IKE SPI not its own, or not IKEv2 */ \
	X(DROP_SPOOF_IKE, drop_spoof_ike) \
	/* WAN: a port/SPI of the router's own services: its stack */ \
	X(PASS_ROUTER_PORT, pass_router_port) \
	/* DF and too big, but RFC 1812 forbids an ICMP error about it \
	 * (ICMP error, later fragment, non-unicast address) */ \
	X(DROP_TOO_BIG, drop_too_big) \
	/* roaming hosts (issue 18): the care-of endpoint */ \
	/* WAN packet tunnelled in UDP (RFC 3519) to the host's care-of endpoint */ \
	X(ROAM_TO_COA, roam_to_coa) \
	/* reverse-tunnelled (RFC 3024) host packet decapsulated to the WAN */ \
	X(ROAM_FROM_COA, roam_from_coa) \
	/* UDP to G:434 that is not tunnel data: registration, to the stack */ \
	X(PASS_MIP_REG, pass_mip_reg) \
	/* tunnel data from an address/port that is no active care-of endpoint */ \
	X(DROP_COA_UNKNOWN, drop_coa_unknown) \
	/* end */

enum xdnat_reason {
#define XDNAT_R_ENUM_(id, name) XDNAT_R_##id,
	XDNAT_REASONS(XDNAT_R_ENUM_)
#undef XDNAT_R_ENUM_
	XDNAT_R_MAX,
};

/* Host-side (xdnat-host) tc program configuration, in .rodata. */
struct xdnat_hostside_cfg {
	__be32 gaddr;        /* the shared global address (on lo) */
	__be32 lan_addr;     /* this host's LAN address: outer source */
	__be32 router_addr;  /* the router's LAN address: outer destination */
	__u32 reserved;
};

#define XDNAT_HOSTSIDE_MAP_STATS  "xdnat_hoststats"

/*
 * Host side away from home (xdnat_host_roam_egress/_ingress in the same
 * object, tc on the NIC of the foreign network): the configuration is a
 * one-entry array, xdnat_host_roam, so that a move only rewrites it (no
 * reload).  With XDNAT_COA_F_ACTIVE, packets from @gaddr leave as RFC 3519
 * tunnel data @local_addr:@local_port -> @ha_addr:434 (the NAT maps the
 * source to the care-of endpoint the home agent registers), and tunnel data
 * from @ha_addr:434 to @local_addr:@local_port is unwrapped when its inner
 * destination is @gaddr.  @local_port is the port the host registered from.
 */
#define XDNAT_HOSTSIDE_MAP_ROAM   "xdnat_host_roam"
struct xdnat_host_roam {
	__be32 gaddr;        /* the shared global address (on lo) */
	__be32 ha_addr;      /* the home agent: G, where registrations went */
	__be32 local_addr;   /* this host's address on the foreign network */
	__be16 local_port;   /* its UDP port of registration and tunnel */
	__u16 flags;         /* XDNAT_COA_F_ACTIVE: away, tunnel on */
};
/* xdnat-host's counters: one list, like XDNAT_REASONS (names in
 * xdnat_host_reason_names[]). */
#define XDNAT_HOST_REASONS(X) \
	X(ENCAP, encap)                   /* egress packets from the global address tunnelled */ \
	X(DECAP, decap)                   /* ingress tunnel packets from the router unwrapped */ \
	X(PASS, pass)                     /* other traffic, untouched */ \
	X(DROP_MALFORMED, drop_malformed) /* tunnel packet with a bad inner header */ \
	X(DROP_INTERNAL, drop_internal)   /* helper failure */ \
	X(PASS_FRAGMENT, pass_fragment)   /* outer fragment of a tunnel packet: the stack \
					   * reassembles it, xdnat-host unwraps it */ \
	X(ROAM_ENCAP, roam_encap)         /* away: egress from G reverse-tunnelled (RFC 3519) */ \
	X(ROAM_DECAP, roam_decap)         /* away: tunnel data from the home agent unwrapped */ \
	X(ROAM_DROP, roam_drop)           /* away: tunnel data, bad next header or inner packet */

enum xdnat_host_reason {
#define XDNAT_HR_ENUM_(id, name) XDNAT_HR_##id,
	XDNAT_HOST_REASONS(XDNAT_HR_ENUM_)
#undef XDNAT_HR_ENUM_
	XDNAT_HR_MAX,
};

#ifndef __BPF__
/* The name tables, defined once (loader/common/abi_names.c) from the lists
 * above and used by every tool. */
extern const char *const xdnat_reason_names[XDNAT_R_MAX];
extern const char *const xdnat_host_reason_names[XDNAT_HR_MAX];
#endif

#ifndef __BPF__
_Static_assert(sizeof(struct xdnat_router_cfg) == 32 + 4 * XDNAT_MAX_GADDRS + 8, "router cfg layout");
_Static_assert(offsetof(struct xdnat_router_cfg, abi_version) == 32 + 4 * XDNAT_MAX_GADDRS,
	       "abi_version after the v1 layout");
_Static_assert(offsetof(struct xdnat_router_cfg, gaddrs) == 32, "gaddrs offset");
_Static_assert(sizeof(struct xdnat_nh_key) == 12, "nh key layout");
_Static_assert(sizeof(struct xdnat_host_nh) == 32, "host nh layout");
_Static_assert(sizeof(struct xdnat_nh) == 24, "nh value layout");
_Static_assert(sizeof(struct xdnat_l1_nh) == 40, "l1 nh slot layout");
_Static_assert(sizeof(struct xdnat_l1) <= 32768, "per-CPU value limit (PCPU_MIN_UNIT_SIZE)");
_Static_assert(sizeof(struct xdnat_owner) == 8, "owner layout = kernel array element stride");
_Static_assert(offsetof(struct xdnat_owner, default_host) == 4, "default host in the owner slot");
_Static_assert(XDNAT_HOST_ROUTER >= XDNAT_LIMIT_MAX_HOSTS, "router marker is no host id");
_Static_assert(XDNAT_HOST_SHARED_IKE >= XDNAT_LIMIT_MAX_HOSTS &&
	       XDNAT_HOST_SHARED_NATT >= XDNAT_LIMIT_MAX_HOSTS, "shared markers are no host ids");
_Static_assert(sizeof(struct xdnat_host) == 16, "host layout");
_Static_assert(offsetof(struct xdnat_host, gaddr_index) == 4, "host gaddr_index offset");
_Static_assert(sizeof(struct xdnat_host_stats) == 32, "host stats layout");
_Static_assert(sizeof(struct xdnat_host_pcpu) == 64, "per-CPU host entry: one cache line");
_Static_assert(sizeof(struct xdnat_counter) == 16, "counter layout");
_Static_assert(sizeof(struct xdnat_hostside_cfg) == 16, "hostside cfg layout");
_Static_assert(sizeof(struct xdnat_host_roam) == 16, "host roam cfg layout");
_Static_assert(XDNAT_R_MAX < 64, "reason enum bound");
_Static_assert(sizeof(struct xdnat_frag_key) == 12, "frag key layout (no holes)");
_Static_assert(sizeof(struct xdnat_frag_val) == 16, "frag value layout");
_Static_assert(sizeof(struct xdnat_out_spi_key) == 8, "out spi key layout");
_Static_assert(sizeof(struct xdnat_frag_event) == 8, "frag event layout");
_Static_assert(sizeof(struct xdnat_peer_key) == 8, "peer key layout");
_Static_assert(sizeof(struct xdnat_peer_val) == 8, "peer value layout");
_Static_assert(sizeof(struct xdnat_mip_tunnel_hdr) == 4, "RFC 3519 tunnel-data header");
_Static_assert(sizeof(struct xdnat_coa_ep) == 8, "care-of endpoint: one word");
_Static_assert(sizeof(struct xdnat_coa) == 16 && offsetof(struct xdnat_coa, generation) == 8,
	       "coa layout");
_Static_assert(sizeof(struct xdnat_coa_key) == 8, "coa key layout (no holes)");
#endif

#endif /* XDNAT_ABI_H */
