/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xdnat-host: unwrap tunnel packets the stack reassembled from fragments. */
#ifndef XDNAT_HOST_REASM_H
#define XDNAT_HOST_REASM_H
#include <stdint.h>

struct xd_reasm_stats {
	uint64_t unwrapped; /* reassembled tunnel packets handed to the stack */
	uint64_t malformed; /* from the router, but not a datagram for us */
	uint64_t failed;    /* re-injection refused */
};

int xd_reasm_start(uint32_t gaddr_be, uint32_t router_be, uint32_t lan_be);
void xd_reasm_stop(struct xd_reasm_stats *st);
#endif
