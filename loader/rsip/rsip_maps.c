// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pinned maps (pins.c) as the RSIP server's datapath backend. */
#include <errno.h>
#include <bpf/bpf.h>
#include "rsip_server.h"

/* RSIP's hosts carry XDNAT_HOST_F_RSIP: cluster sync (loader/daemon/
 * cluster_sync.c) tells them from static hosts by it. */
static int b_host_add(void *c, uint32_t id, uint32_t lan, uint32_t g)
{
	struct xd_maps *m = c;
	struct xdnat_host h;
	int rc = xd_host_add(m, id, lan, g);

	if (rc || bpf_map_lookup_elem(m->hosts, &id, &h))
		return rc;
	h.flags |= XDNAT_HOST_F_RSIP;
	return bpf_map_update_elem(m->hosts, &id, &h, BPF_EXIST) ? -errno : 0;
}
static int b_host_del(void *c, uint32_t id) { return xd_host_del(c, id); }
static int b_host_get(void *c, uint32_t id, uint32_t *lan, uint32_t *g)
{
	struct xdnat_host h;
	int rc = xd_host_get(c, id, &h);

	if (rc)
		return rc == -ENOENT ? -ENOENT : rc;
	*lan = h.lan_addr;
	*g = h.gaddr_index;
	return 0;
}
static int b_ports_add(void *c, uint32_t id, uint32_t f, uint32_t l) { return xd_ports_add(c, id, f, l); }
static int b_ports_del(void *c, uint32_t id, uint32_t f, uint32_t l) { return xd_ports_del(c, id, f, l); }
static int b_spis_add(void *c, uint32_t id, uint32_t f, uint32_t l) { return xd_spis_add(c, id, f, l); }
static int b_spis_del(void *c, uint32_t id, uint32_t f, uint32_t l) { return xd_spis_del(c, id, f, l); }
static int64_t b_ports_busy(void *c, uint32_t g, uint32_t f, uint32_t l) { return xd_ports_first_owned(c, g, f, l); }
static int64_t b_spis_busy(void *c, uint32_t f, uint32_t l) { return xd_spis_first_owned(c, f, l); }
static int b_runs(void *c, uint32_t id, int kind, struct xd_run **r, size_t *n)
{
	return kind == RSIP_KIND_PORTS ? xd_ports_of(c, id, r, n) : xd_spis_of(c, id, r, n);
}

void rsip_backend_maps(struct rsip_backend *be, struct xd_maps *m)
{
	*be = (struct rsip_backend){
		.ctx = m, .host_add = b_host_add, .host_del = b_host_del, .host_get = b_host_get,
		.ports_add = b_ports_add, .ports_del = b_ports_del, .spis_add = b_spis_add,
		.spis_del = b_spis_del, .ports_busy = b_ports_busy, .spis_busy = b_spis_busy,
		.runs = b_runs,
	};
}
