// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Neighbour upkeep: the hosts' LAN addresses stay resolved for the XDP path.
 */
#include "xdnatd.h"
#include "xdnat_router.skel.h"

/* ------------------------------------------------------ neighbour upkeep */

/*
 * Keep a managed neighbour entry (the kernel resolves it and keeps it
 * reachable) for every host's LAN address, so the XDP path finds the MAC
 * instead of handing packets to the stack.
 */
void xdd_neigh_scan(struct daemon *d)
{
	int hosts_fd = bpf_map__fd(d->skel->maps.xdnat_hosts);
	char addr[INET_ADDRSTRLEN];

	if (d->o.no_neigh || d->neigh_unsupported || !d->primed)
		return;
	for (uint32_t id = 1; id < d->o.max_hosts; id++) {
		struct xdnat_host h;
		uint32_t want = 0;

		if (bpf_map_lookup_elem(hosts_fd, &id, &h) == 0 && (h.flags & XDNAT_HOST_F_VALID))
			want = h.lan_addr;
		if (want == d->primed[id])
			continue;
		if (d->primed[id]) {
			const char *del[] = { "ip", "neigh", "del", xd_ipstr(d->primed[id], addr),
					      "dev", d->o.lan, NULL };

			if (xd_run(del))
				xd_info("could not remove neighbour %s", addr);
			d->primed[id] = 0;
		}
		if (want) {
			const char *add[] = { "ip", "neigh", "replace", xd_ipstr(want, addr), "dev",
					      d->o.lan, "managed", NULL };

			if (xd_run(add)) {
				xd_warn("managed neighbours unavailable (kernel < 5.16?): the first "
					"packets to a host go through the stack until ARP resolves");
				d->neigh_unsupported = true;
				return;
			}
			d->primed[id] = want;
		}
	}
}

void xdd_neigh_cleanup(struct daemon *d)
{
	char addr[INET_ADDRSTRLEN];

	if (!d->primed)
		return;
	for (uint32_t id = 1; id < d->o.max_hosts; id++) {
		if (d->primed[id]) {
			const char *del[] = { "ip", "neigh", "del", xd_ipstr(d->primed[id], addr),
					      "dev", d->o.lan, NULL };

			(void)xd_run(del);
		}
	}
}
