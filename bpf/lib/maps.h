/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Router configuration and maps (layouts in maps/xdnat_abi.h).
 */
#ifndef XDNAT_LIB_MAPS_H
#define XDNAT_LIB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xdnat_abi.h"

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

/* Per-host next hop (WAN->LAN), per CPU; pinned: stays warm across
 * reload-programs like the other maps. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); /* one writer per entry: no tearing */
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

/* Roaming hosts: care-of endpoint by host id, and its reverse index
 * (maps/xdnat_abi.h).  Sized to max_hosts by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, __u32);
	__type(value, struct xdnat_coa);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_coa SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDNAT_DEFAULT_MAX_HOSTS);
	__type(key, struct xdnat_coa_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdnat_coa_idx SEC(".maps");

/* Slow path for later fragments that arrive before their first fragment:
 * the frame goes to xdnatd, which re-injects it.  Not pinned: it belongs to
 * the loaded program and its reader (entries vanish with the reader). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} xdnat_frag_events SEC(".maps");

/* Every map of the list in maps/xdnat_abi.h exists here under its name. */
#define XDNAT_M_CHECK_(id, name, pinned) \
	_Static_assert(sizeof(name) > 0, "map " #name " of XDNAT_MAPS");
XDNAT_MAPS(XDNAT_M_CHECK_)
#undef XDNAT_M_CHECK_

#endif /* XDNAT_LIB_MAPS_H */
