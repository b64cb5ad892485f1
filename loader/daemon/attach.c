// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading the router's BPF programs and attaching them: XDP through pinned
 * links (atomic swap on restart), or tc (cls_bpf) as the fallback; and the
 * hosts' neighbour entries the XDP path needs.
 */
#include "xdnatd.h"
#include "xdnat_router.skel.h"

/* ------------------------------------------------------------- attach */

static void link_pin_path(struct daemon *d, int which, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", d->pin_dir, which ? XDNAT_PIN_LINK_LAN : XDNAT_PIN_LINK_WAN);
}

/*
 * Attach @prog as XDP on @ifindex through a pinned link.  A link pinned by an
 * earlier run of this instance is updated in place (atomic program swap).
 */
static int attach_xdp(struct daemon *d, int which, struct bpf_program *prog, int ifindex,
		      const char *ifname, bool quiet)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_DRV_MODE);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char path[300];
	int fd, rc;

	link_pin_path(d, which, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_XDP ||
		    (int)info.xdp.ifindex != ifindex) {
			xd_err("%s is pinned by instance '%s' but not an XDP link on %s: "
			       "another configuration of this instance still holds it; "
			       "stop it or remove %s", path, d->o.instance, ifname, path);
			close(fd);
			return -EEXIST;
		}
		if (bpf_link_update(fd, bpf_program__fd(prog), NULL)) {
			rc = -errno;
			xd_err("cannot replace the program of %s: %s", path, strerror(-rc));
			close(fd);
			return rc;
		}
		xd_info("took over XDP link on %s from an earlier run", ifname);
		d->link_fd[which] = fd;
		return 0;
	}
	if (bpf_xdp_query(ifindex, 0, &q) == 0 && q.attach_mode != XDP_ATTACHED_NONE) {
		xd_err("%s already has an XDP program attached (id %u): another xdnatd "
		       "instance or tool uses it; detach it (ip link set dev %s xdp off) or "
		       "choose another interface", ifname,
		       q.prog_id ? q.prog_id : q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id, ifname);
		return -EBUSY;
	}
	fd = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &lopts);
	if (fd < 0) {
		rc = -errno;
		if (!quiet)
			xd_err("cannot attach native XDP to %s: %s", ifname, strerror(-rc));
		return rc;
	}
	if (bpf_obj_pin(fd, path)) {
		rc = -errno;
		xd_err("cannot pin XDP link at %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	d->link_fd[which] = fd;
	return 0;
}

static void detach_xdp(struct daemon *d, int which)
{
	char path[300];

	if (d->link_fd[which] < 0)
		return;
	link_pin_path(d, which, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		xd_warn("cannot unpin %s: %s", path, strerror(errno));
	close(d->link_fd[which]); /* last reference: detaches */
	d->link_fd[which] = -1;
}

static int attach_tc(struct daemon *d, int which, struct bpf_program *prog, int ifindex,
		     const char *ifname)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, topts, .handle = TC_HANDLE, .priority = TC_PRIO);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIO);
	int rc;

	rc = bpf_tc_hook_create(&hook);
	if (rc && rc != -EEXIST) {
		xd_err("cannot create clsact qdisc on %s: %s", ifname, strerror(-rc));
		return rc;
	}
	d->tc_hook_created[which] = rc == 0;
	/* A filter with our handle is either ours from a crashed run (same
	 * instance: the lock proves no other daemon of it runs) or another
	 * instance's, which the lock cannot see: refuse only the latter. */
	if (bpf_tc_query(&hook, &q) == 0) {
		char path[300];
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int pfd;

		snprintf(path, sizeof(path), "%s/prog_%s", d->pin_dir, which ? "lan" : "wan");
		pfd = bpf_obj_get(path);
		if (pfd < 0 || bpf_obj_get_info_by_fd(pfd, &info, &len) || info.id != q.prog_id) {
			xd_err("%s already has an xdnat tc filter (prog id %u) of another instance",
			       ifname, q.prog_id);
			if (pfd >= 0)
				close(pfd);
			return -EBUSY;
		}
		close(pfd);
		unlink(path);
	}
	topts.flags = BPF_TC_F_REPLACE;
	topts.prog_fd = bpf_program__fd(prog);
	rc = bpf_tc_attach(&hook, &topts);
	if (rc) {
		xd_err("cannot attach tc program to %s: %s", ifname, strerror(-rc));
		return rc;
	}
	d->tc_attached[which] = true;
	{
		char path[300];

		snprintf(path, sizeof(path), "%s/prog_%s", d->pin_dir, which ? "lan" : "wan");
		if (bpf_program__pin(prog, path))
			xd_warn("cannot pin %s: a restart will not recognise this filter", path);
	}
	return 0;
}

static void detach_tc(struct daemon *d, int which, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, topts, .handle = TC_HANDLE, .priority = TC_PRIO);
	char path[300];
	int rc;

	if (!d->tc_attached[which])
		return;
	rc = bpf_tc_detach(&hook, &topts);
	if (rc && rc != -ENOENT)
		xd_warn("cannot detach tc filter from ifindex %d: %s", ifindex, strerror(-rc));
	snprintf(path, sizeof(path), "%s/prog_%s", d->pin_dir, which ? "lan" : "wan");
	unlink(path);
	if (d->tc_hook_created[which]) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	d->tc_attached[which] = false;
}

void xdd_detach_all(struct daemon *d)
{
	detach_xdp(d, 0);
	detach_xdp(d, 1);
	detach_tc(d, 0, d->wan_ifindex);
	if (d->lan_ifindex != d->wan_ifindex)
		detach_tc(d, 1, d->lan_ifindex);
}

int xdd_attach_all(struct daemon *d)
{
	struct xdnat_router *s = d->skel;
	bool one_arm = d->wan_ifindex == d->lan_ifindex;
	int rc;

	if (one_arm) {
		/* One NIC carries both sides: one program tells them apart by
		 * the tunnel's destination (our LAN address). */
		if (d->o.mode != MODE_TC) {
			rc = attach_xdp(d, 0, s->progs.xdnat_onearm_xdp, d->wan_ifindex, d->o.wan,
					d->o.mode == MODE_AUTO);
			if (!rc)
				return 0;
			xdd_detach_all(d);
			if (d->o.mode == MODE_XDP || rc == -EBUSY || rc == -EEXIST)
				return rc;
			xd_warn("native XDP unavailable on %s (%s): falling back to tc, which is slower",
				d->o.wan, strerror(-rc));
		}
		d->tc_mode = true;
		rc = attach_tc(d, 0, s->progs.xdnat_onearm_tc, d->wan_ifindex, d->o.wan);
		if (rc)
			xdd_detach_all(d);
		return rc;
	}
	if (d->o.mode != MODE_TC) {
		rc = attach_xdp(d, 0, s->progs.xdnat_wan_xdp, d->wan_ifindex, d->o.wan,
				d->o.mode == MODE_AUTO);
		if (!rc)
			rc = attach_xdp(d, 1, s->progs.xdnat_lan_xdp, d->lan_ifindex, d->o.lan,
					d->o.mode == MODE_AUTO);
		if (!rc)
			return 0;
		xdd_detach_all(d);
		if (d->o.mode == MODE_XDP || rc == -EBUSY || rc == -EEXIST)
			return rc;
		xd_warn("native XDP unavailable on %s/%s (%s): falling back to tc, which is slower",
			d->o.wan, d->o.lan, strerror(-rc));
	}
	d->tc_mode = true;
	rc = attach_tc(d, 0, s->progs.xdnat_wan_tc, d->wan_ifindex, d->o.wan);
	if (!rc)
		rc = attach_tc(d, 1, s->progs.xdnat_lan_tc, d->lan_ifindex, d->o.lan);
	if (rc)
		xdd_detach_all(d);
	return rc;
}

/* ---------------------------------------------------------------- load */

int xdd_load(struct daemon *d)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = d->pin_dir);
	struct xdnat_router *s;
	uint32_t spi_entries = 1u << (32 - d->o.spi_bits);
	__u32 zero = 0;
	int rc;

	s = xdnat_router__open_opts(&oopts);
	if (!s) {
		rc = -errno;
		xd_err("cannot open the BPF object: %s", strerror(-rc));
		return rc;
	}
	d->skel = s;
	d->cfg.abi_version = XDNAT_ABI_VERSION; /* published in xdnat_info */
	s->rodata->cfg = d->cfg;
	if ((rc = bpf_map__set_max_entries(s->maps.xdnat_ports, d->o.n_gaddrs * XDNAT_PORTS_PER_GADDR)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_spis, spi_entries)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_hosts, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_lan_idx, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_hstats, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_host_nh, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_coa, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_coa_idx, d->o.max_hosts))) {
		xd_err("cannot size maps: %s", strerror(-rc));
		return rc;
	}
	rc = xdnat_router__load(s);
	if (rc) {
		xd_err("cannot load the BPF programs: %s", strerror(-rc));
		if (rc == -EINVAL)
			xd_err("if maps are pinned in %s from a run with other --global, "
			       "--max-hosts or --spi-block-bits, they cannot be reused: "
			       "stop that instance or remove the directory", d->pin_dir);
		return rc;
	}
	if (bpf_map_update_elem(bpf_map__fd(s->maps.xdnat_info), &zero, &d->cfg, BPF_ANY)) {
		rc = -errno;
		xd_err("cannot publish the configuration: %s", strerror(-rc));
		return rc;
	}
	{
		__u32 k, v;

		k = XDNAT_TXPORT_WAN;
		v = d->wan_ifindex;
		if (!bpf_map_update_elem(bpf_map__fd(s->maps.xdnat_txports), &k, &v, BPF_ANY)) {
			k = XDNAT_TXPORT_LAN;
			v = d->lan_ifindex;
			if (!bpf_map_update_elem(bpf_map__fd(s->maps.xdnat_txports), &k, &v, BPF_ANY))
				return 0;
		}
		rc = -errno;
		/* tc mode does not use the devmap; XDP mode cannot work without. */
		if (d->o.mode == MODE_TC)
			return 0;
		xd_err("cannot set up the redirect ports: %s", strerror(-rc));
		return rc;
	}
}

void xdd_unpin_maps(struct daemon *d)
{
	if (d->skel && bpf_object__unpin_maps(d->skel->obj, NULL))
		xd_warn("cannot unpin all maps in %s", d->pin_dir);
	if (rmdir(d->pin_dir) && errno != ENOENT)
		xd_warn("cannot remove %s: %s", d->pin_dir, strerror(errno));
}

/* ------------------------------------------------------ neighbour upkeep */

/*
 * The hosts' LAN addresses need resolved neighbours for the XDP path to send
 * to them itself: neigh.c keeps them over netlink and never touches an entry
 * the operator made (neigh.h has the rules).
 */
void xdd_neigh_scan(struct daemon *d)
{
	int hosts_fd = bpf_map__fd(d->skel->maps.xdnat_hosts);
	int rc;

	if (d->o.no_neigh || !d->neigh)
		return;
	for (uint32_t id = 1; id < d->o.max_hosts; id++) {
		struct xdnat_host h;

		d->neigh_want[id] = bpf_map_lookup_elem(hosts_fd, &id, &h) == 0 &&
				    (h.flags & XDNAT_HOST_F_VALID) ? h.lan_addr : 0;
	}
	rc = xd_neigh_sync(d->neigh, d->neigh_want, d->o.max_hosts);
	if (rc && !d->neigh_unsupported) {
		xd_warn("cannot read the neighbour table of %s: %s", d->o.lan, strerror(-rc));
		d->neigh_unsupported = true;   /* said once; retried every pass */
	} else if (!rc) {
		d->neigh_unsupported = false;
	}
}

void xdd_neigh_cleanup(struct daemon *d)
{
	if (d->neigh && !d->o.no_neigh && xd_neigh_remove_ours(d->neigh))
		xd_warn("could not remove xdnatd's neighbour entries on %s", d->o.lan);
	xd_neigh_close(d->neigh);
	d->neigh = NULL;
}
