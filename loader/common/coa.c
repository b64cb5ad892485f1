// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Roaming hosts' care-of endpoints (maps/xdnat_abi.h, "the care-of
 * endpoint"): the one writer's side of xdnat_coa and xdnat_coa_idx.
 *
 * Order of the writes, so that the datapath never accepts what it should
 * not and never loses the switch:
 *   set:   index the new endpoint -> write xdnat_coa (THE switch: from here
 *          WAN traffic goes there and reverse tunnelling from there is
 *          accepted) -> unindex the previous endpoint.
 *   clear: write xdnat_coa inactive (the switch home) -> unindex.
 * A reverse-tunnelled packet needs both an index entry and a matching active
 * xdnat_coa entry, so the windows in between accept only the old or the new
 * endpoint, never a third.
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "xdnat.h"
#include "pins_priv.h"

static int need_coa_maps(struct xd_maps *m)
{
	if (m->coa < 0 || m->coa_idx < 0) {
		xd_err("this instance has no care-of endpoint maps (started by an older xdnatd)");
		return -EOPNOTSUPP;
	}
	return 0;
}

int xd_coa_get(struct xd_maps *m, uint32_t id, struct xdnat_coa *c)
{
	int rc = need_coa_maps(m);

	if (rc)
		return rc;
	if (id == XDNAT_HOST_NONE || id >= m->cfg.max_hosts)
		return -ERANGE;
	if (bpf_map_lookup_elem(m->coa, &id, c))
		return -errno;
	return 0;
}

static void unindex(struct xd_maps *m, uint32_t id, const struct xdnat_coa_ep *ep)
{
	struct xdnat_coa_key k = { .addr = ep->addr, .port = ep->port };
	char a[INET_ADDRSTRLEN];
	uint32_t owner;

	if (!ep->addr)
		return;
	/* Only this host's entry: another host may hold the key since. */
	if (bpf_map_lookup_elem(m->coa_idx, &k, &owner) || owner != id)
		return;
	if (bpf_map_delete_elem(m->coa_idx, &k) && errno != ENOENT)
		xd_warn("cannot unindex care-of endpoint %s:%u of host %u: %s",
			xd_ipstr(ep->addr, a), ntohs(ep->port), id, strerror(errno));
}

int xd_coa_set(struct xd_maps *m, uint32_t id, uint32_t addr_be, uint16_t port_be,
	       uint16_t flags, uint32_t generation)
{
	struct xdnat_coa_key k = { .addr = addr_be, .port = port_be };
	struct xdnat_coa old, c = { .ep = { .addr = addr_be, .port = port_be, .flags = flags },
				    .generation = generation };
	char a[INET_ADDRSTRLEN];
	struct xdnat_host h;
	uint32_t owner;
	int rc;

	if ((rc = need_coa_maps(m)) || (rc = xd_need_host(m, id, &h)))
		return rc;
	if (addr_be == 0 || addr_be == 0xffffffffu || port_be == 0 ||
	    (ntohl(addr_be) >> 28) >= 0xe || xd_gaddr_index(m, addr_be) >= 0) {
		xd_err("%s:%u cannot be a care-of endpoint", xd_ipstr(addr_be, a), ntohs(port_be));
		return -EINVAL;
	}
	if (flags & ~XDNAT_COA_F_ACTIVE) {
		xd_err("unknown care-of endpoint flags 0x%x", flags);
		return -EINVAL;
	}
	if ((rc = xd_coa_get(m, id, &old)))
		return rc;
	if (bpf_map_lookup_elem(m->coa_idx, &k, &owner) == 0 && owner != id) {
		struct xdnat_coa theirs;

		/* A stale entry (its host moved on) is taken over; a live one
		 * is refused: two hosts cannot share one NAT binding. */
		if (xd_coa_get(m, owner, &theirs) == 0 && theirs.ep.addr == addr_be &&
		    theirs.ep.port == port_be) {
			xd_err("care-of endpoint %s:%u belongs to host %u", xd_ipstr(addr_be, a),
			       ntohs(port_be), owner);
			return -EEXIST;
		}
	}
	if (bpf_map_update_elem(m->coa_idx, &k, &id, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot index care-of endpoint %s:%u: %s", xd_ipstr(addr_be, a),
		       ntohs(port_be), strerror(-rc));
		return rc;
	}
	if (bpf_map_update_elem(m->coa, &id, &c, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot write the care-of endpoint of host %u: %s", id, strerror(-rc));
		if (old.ep.addr != addr_be || old.ep.port != port_be)
			unindex(m, id, &c.ep);
		return rc;
	}
	if (old.ep.addr != addr_be || old.ep.port != port_be)
		unindex(m, id, &old.ep);
	return 0;
}

int xd_coa_clear(struct xd_maps *m, uint32_t id)
{
	struct xdnat_coa old, zero = {};
	int rc;

	if ((rc = need_coa_maps(m)))
		return rc;
	if (id == XDNAT_HOST_NONE || id >= m->cfg.max_hosts) {
		xd_err("host id %u out of range (1-%u)", id, m->cfg.max_hosts - 1);
		return -ERANGE;
	}
	if ((rc = xd_coa_get(m, id, &old)))
		return rc;
	if (!old.ep.addr && !old.ep.flags)
		return 0;
	if (bpf_map_update_elem(m->coa, &id, &zero, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot clear the care-of endpoint of host %u: %s", id, strerror(-rc));
		return rc;
	}
	unindex(m, id, &old.ep);
	return 0;
}
