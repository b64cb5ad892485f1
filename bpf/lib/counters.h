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

#endif /* XDNAT_LIB_COUNTERS_H */
