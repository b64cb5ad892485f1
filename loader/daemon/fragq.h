/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xdnatd's slow path for fragments that arrive before their first fragment. */
#ifndef XDNAT_FRAGQ_H
#define XDNAT_FRAGQ_H
#include <stdint.h>

struct xdnat_router;

struct xd_fragq_stats {
	uint64_t held;       /* frames received from the datapath */
	uint64_t reinjected; /* sent through the WAN program again */
	uint64_t expired;    /* first fragment never came */
	uint64_t evicted;    /* pushed out by newer frames (table full) */
	uint64_t lost;       /* perf buffer overruns */
	uint64_t failed;     /* re-injection refused by the kernel */
};

int xd_fragq_start(struct xdnat_router *skel, int wan_ifindex);
void xd_fragq_stop(struct xd_fragq_stats *st);
#endif
