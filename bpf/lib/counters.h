/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-reason and per-host counters (per-CPU maps).
 */
#ifndef XDNAT_LIB_COUNTERS_H
#define XDNAT_LIB_COUNTERS_H

#include "lib/maps.h"

static __always_inline void count(__u32 reason, __u32 bytes)
{
	struct xdnat_counter *c = bpf_map_lookup_elem(&xdnat_stats, &reason);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/* Host @host_id's per-CPU entry (counters, next hop), or NULL. */
static __always_inline struct xdnat_host_pcpu *host_pcpu(__u32 host_id)
{
	return bpf_map_lookup_elem(&xdnat_hstats, &host_id);
}

static __always_inline void count_host_at(struct xdnat_host_pcpu *hp, int to_host, __u32 bytes)
{
	if (!hp)
		return;
	if (to_host) {
		hp->stats.to_host_packets++;
		hp->stats.to_host_bytes += bytes;
	} else {
		hp->stats.from_host_packets++;
		hp->stats.from_host_bytes += bytes;
	}
}

static __always_inline void count_host(__u32 host_id, int to_host, __u32 bytes)
{
	count_host_at(host_pcpu(host_id), to_host, bytes);
}

#endif /* XDNAT_LIB_COUNTERS_H */
