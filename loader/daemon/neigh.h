/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Neighbour entries for the hosts' LAN addresses, kept over rtnetlink
 * (libmnl; no `ip` process).  The XDP path needs a resolved neighbour for a
 * host to send to it directly (else it counts pass_no_neigh and hands the
 * packet to the stack).  The rules, also in README.md ("Neighbour entries"):
 *   - an entry the operator made (NUD_PERMANENT or NUD_NOARP) is never
 *     changed nor removed: it is used as it is;
 *   - any other existing entry (learnt by the kernel, or made by someone
 *     else) is left alone too;
 *   - a missing one is created (NLM_F_CREATE | NLM_F_EXCL, so it never
 *     replaces anything) as a managed entry (NTF_EXT_MANAGED, kernel >= 5.16:
 *     the kernel resolves it and keeps it resolved) tagged with protocol
 *     XD_NEIGH_PROTO, which is how xdnatd knows its own entries, even after a
 *     restart; where the kernel does not keep it managed, xdnatd refreshes it
 *     (NTF_USE, as a packet would) when it goes stale or failed;
 *   - an entry of its own that no host needs any more (host removed,
 *     address changed) is deleted, and so are all of them when xdnatd stops.
 */
#ifndef XDNAT_NEIGH_H
#define XDNAT_NEIGH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Neighbour "protocol" (NDA_PROTOCOL, `ip neigh` shows "proto 88") that
 * marks the entries xdnatd created. */
#define XD_NEIGH_PROTO 88

struct xd_neigh_stats {
	unsigned wanted;      /* addresses asked for in the last pass */
	unsigned operator_;   /* ... served by an operator's entry (permanent/noarp) */
	unsigned other;       /* ... by another existing entry, left alone */
	unsigned ours;        /* ... by an entry xdnatd made */
	unsigned created, refreshed, deleted, failed;   /* netlink changes in the pass */
};

struct xd_neigh;

/* A keeper for the neighbours of interface @ifindex (in this network
 * namespace); NULL with errno on failure. */
struct xd_neigh *xd_neigh_open(int ifindex);
/* One pass: make the entries for @want[0..n) (IPv4, network order; 0 and
 * repeats ignored) exist as described above.  0, or -errno when the table
 * could not be read; per-entry failures are counted in the stats. */
int xd_neigh_sync(struct xd_neigh *k, const uint32_t *want, size_t n);
const struct xd_neigh_stats *xd_neigh_last(const struct xd_neigh *k);
/* Delete every entry xdnatd made on the interface (never an operator's). */
int xd_neigh_remove_ours(struct xd_neigh *k);
void xd_neigh_close(struct xd_neigh *k);

#endif
