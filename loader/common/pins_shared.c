// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ports no single host owns: the shared IKE ports (one default host per
 * port for remote IKE_SA_INIT) and the router's own service ports.  The same
 * one-writer rule as pins.c applies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdnat.h"
#include "pins_priv.h"

/* ---- shared IKE ports (issue 8, docs/SHARED-IKE.md) ---- */

static bool slot_shared(uint32_t owner)
{
	return owner == XDNAT_HOST_SHARED_IKE || owner == XDNAT_HOST_SHARED_NATT;
}

uint32_t xd_shared_kind(uint16_t port)
{
	/* RFC 3948/7296: only 500 carries IKE without the non-ESP marker;
	 * strongSwan frames IKE with the marker on every other port. */
	return port == XDNAT_IKE_PORT ? XDNAT_HOST_SHARED_IKE : XDNAT_HOST_SHARED_NATT;
}

int xd_shared_ports_apply(struct xd_maps *m, const uint16_t *ports, unsigned n)
{
	struct owner_view v = {};
	uint32_t g, i, slots;
	int rc;

	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	slots = m->cfg.n_gaddrs * XDNAT_PORTS_PER_GADDR;
	if (slots > v.n) {
		xd_unview(&v);
		return -ERANGE;
	}
	/* Check first: a port a host owns is not taken away from it. */
	for (g = 0; g < m->cfg.n_gaddrs; g++) {
		for (i = 0; i < n; i++) {
			uint32_t o = v.slots[g * XDNAT_PORTS_PER_GADDR + ports[i]].host_id;

			if (o != XDNAT_HOST_NONE && !slot_shared(o)) {
				xd_err("shared IKE port %u of global address %u belongs to host %u: "
				       "take it back first (xdnatctl ports del)", ports[i], g, o);
				xd_unview(&v);
				return -EBUSY;
			}
		}
	}
	/* Ports no longer shared become free again (default host forgotten). */
	for (i = 0; i < slots; i++) {
		bool want = false;

		if (!slot_shared(v.slots[i].host_id))
			continue;
		for (uint32_t k = 0; k < n; k++)
			want |= ports[k] == i % XDNAT_PORTS_PER_GADDR;
		if (!want) {
			__atomic_store_n(&v.slots[i].default_host, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&v.slots[i].host_id, XDNAT_HOST_NONE, __ATOMIC_RELAXED);
		}
	}
	for (g = 0; g < m->cfg.n_gaddrs; g++) {
		for (i = 0; i < n; i++) {
			struct xdnat_owner *s = &v.slots[g * XDNAT_PORTS_PER_GADDR + ports[i]];

			if (s->host_id != xd_shared_kind(ports[i]))
				__atomic_store_n(&s->host_id, xd_shared_kind(ports[i]), __ATOMIC_RELAXED);
		}
	}
	xd_unview(&v);
	return 0;
}

int xd_shared_default(struct xd_maps *m, uint32_t gidx, uint16_t port, uint32_t host)
{
	struct owner_view v = {};
	struct xdnat_owner *s;
	struct xdnat_host h;
	int rc;

	if (gidx >= m->cfg.n_gaddrs)
		return -EINVAL;
	if (host) {
		if ((rc = xd_need_host(m, host, &h)))
			return rc;
		if (h.gaddr_index != gidx) {
			xd_err("host %u shares global address %u, not %u", host, h.gaddr_index, gidx);
			return -EINVAL;
		}
	}
	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	s = &v.slots[gidx * XDNAT_PORTS_PER_GADDR + port];
	if (!slot_shared(s->host_id)) {
		xd_err("port %u is not a shared IKE port (xdnatd --shared-ike-ports)", port);
		rc = -ENOENT;
	} else {
		__atomic_store_n(&s->default_host, host, __ATOMIC_RELAXED);
	}
	xd_unview(&v);
	return rc;
}

int xd_shared_list(struct xd_maps *m, struct xd_shared *out, size_t max, size_t *n)
{
	struct owner_view v = {};
	uint32_t slots;
	int rc;

	*n = 0;
	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	slots = m->cfg.n_gaddrs * XDNAT_PORTS_PER_GADDR;
	for (uint32_t i = 0; i < slots && i < v.n; i++) {
		if (!slot_shared(v.slots[i].host_id))
			continue;
		if (*n == max) {
			rc = -E2BIG;
			break;
		}
		out[*n].gidx = i / XDNAT_PORTS_PER_GADDR;
		out[*n].port = (uint16_t)(i % XDNAT_PORTS_PER_GADDR);
		out[*n].kind = v.slots[i].host_id;
		out[*n].default_host = v.slots[i].default_host;
		(*n)++;
	}
	xd_unview(&v);
	return rc;
}

/* ---- the router's own service ports (xdnatd --router-ports) ---- */

static bool in_runs(uint32_t port, const struct xd_run *runs, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		if (port >= runs[k].first && port <= runs[k].last)
			return true;
	return false;
}

int xd_router_ports_apply(struct xd_maps *m, const struct xd_run *runs, unsigned n)
{
	struct owner_view v = {};
	uint32_t g, i, slots;
	int rc;

	if ((rc = xd_view_map(m->ports, &v)))
		return rc;
	slots = m->cfg.n_gaddrs * XDNAT_PORTS_PER_GADDR;
	if (slots > v.n) {
		xd_unview(&v);
		return -ERANGE;
	}
	/* Check first: a port a host (or the shared IKE mode) holds stays. */
	for (g = 0; g < m->cfg.n_gaddrs; g++)
		for (i = 0; i < XDNAT_PORTS_PER_GADDR; i++) {
			uint32_t o = v.slots[g * XDNAT_PORTS_PER_GADDR + i].host_id;

			if (o != XDNAT_HOST_NONE && o != XDNAT_HOST_ROUTER && in_runs(i, runs, n)) {
				if (slot_shared(o))
					xd_err("router port %u is a shared IKE port", i);
				else
					xd_err("router port %u of global address %u belongs to host %u: "
					       "take it back first (xdnatctl ports del)", i, g, o);
				xd_unview(&v);
				return -EBUSY;
			}
		}
	for (i = 0; i < slots; i++) {
		bool want = in_runs(i % XDNAT_PORTS_PER_GADDR, runs, n);
		uint32_t o = v.slots[i].host_id;

		if (want && o == XDNAT_HOST_NONE)
			__atomic_store_n(&v.slots[i].host_id, XDNAT_HOST_ROUTER, __ATOMIC_RELAXED);
		else if (!want && o == XDNAT_HOST_ROUTER) /* no longer configured */
			__atomic_store_n(&v.slots[i].host_id, XDNAT_HOST_NONE, __ATOMIC_RELAXED);
	}
	xd_unview(&v);
	return 0;
}
