// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host mobile: this host's end of the UDP tunnel (RFC 3519) to the
 * router, with --tun a TUN device carrying G (packets from it are wrapped
 * here, in user space), with --dev the hostside tc programs on the foreign
 * NIC and G on lo (xdnat_host_roam_egress/_ingress wrap and unwrap); and
 * the --route CIDRs through it with source G.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "host_mobile_int.h"
#include "xdnat_hostside.skel.h"

void mob_tun_down(struct mob *m)
{
	if (m->tunfd >= 0)
		close(m->tunfd);   /* the device (and its routes) go with it */
	m->tunfd = -1;
}

int mob_tun_up(struct mob *m)
{
	struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
	char g[INET_ADDRSTRLEN + 3];

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", m->tun_name);
	m->tunfd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (m->tunfd < 0 || ioctl(m->tunfd, TUNSETIFF, &ifr)) {
		xd_err("mobile: cannot create TUN %s: %s", m->tun_name, strerror(errno));
		return -EIO;
	}
	xd_ipstr(m->ha, g);
	strcat(g, "/32");
	{
		/* The tunnel's MTU: the path's less the 32-byte RFC 3519 headers. */
		const char *a[] = { "ip", "link", "set", m->tun_name, "up", "mtu", "1468", NULL };
		const char *b[] = { "ip", "addr", "add", g, "dev", m->tun_name, NULL };

		if (ip_cmd(a) || ip_cmd(b))
			return -EIO;
	}
	g[strlen(g) - 3] = '\0';
	for (int i = 0; i < m->n_routes; i++) {
		const char *r[] = { "ip", "route", "replace", m->routes[i], "dev", m->tun_name, "src", g,
				    NULL };

		if (ip_cmd(r))
			return -EIO;
	}
	return 0;
}

/* --dev: route the --route CIDRs via the foreign network's gateway towards
 * G (now), with source G (the egress program wraps them). */
int mob_routes_up(struct mob *m)
{
	char g[INET_ADDRSTRLEN], out[512], *via;

	xd_ipstr(m->ha, g);
	if (mob_route_get(m->ha, true, out, sizeof(out)))
		return -EIO;
	via = mob_route_field(out, " via ");
	/* Route MTU 32 bytes below the link's: our packets fit once wrapped,
	 * and TCP's MSS tells remotes the same. */
	uint32_t lmtu = 0;
	char mtu[16];

	if (xd_if_mtu(m->dev, &lmtu) || lmtu < 576 + XDNAT_COA_OVERHEAD) {
		xd_err("mobile: cannot use the MTU of %s", m->dev);
		return -EIO;
	}
	snprintf(mtu, sizeof(mtu), "%u", lmtu - XDNAT_COA_OVERHEAD);
	for (int i = 0; i < m->n_routes; i++) {
		const char *r1[] = { "ip", "route", "replace", m->routes[i], "via", via ? via : "", "dev",
				     m->dev, "src", g, "mtu", mtu, NULL };
		const char *r2[] = { "ip", "route", "replace", m->routes[i], "dev", m->dev, "src", g,
				     "mtu", mtu, NULL };

		if (ip_cmd(via ? r1 : r2))
			return -EIO;
	}
	m->routes_on = true;
	return 0;
}

void mob_routes_down(struct mob *m)
{
	if (!m->routes_on)
		return;
	for (int i = 0; i < m->n_routes; i++) {
		/* flush: no error when the link's going down took it already */
		const char *r[] = { "ip", "route", "flush", "exact", m->routes[i], "dev", m->dev, NULL };

		ip_cmd(r);
	}
	m->routes_on = false;
}

/* --dev: the hostside programs on the foreign NIC, G on lo, the routes via
 * the NIC's gateway towards G with source G (the egress program wraps
 * them). */
int mob_dev_up(struct mob *m)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = 0, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, eg, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	LIBBPF_OPTS(bpf_tc_opts, in, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	char g[INET_ADDRSTRLEN + 3], out[512];
	int rc;

	m->ifindex = xd_ifindex(m->dev);
	if (m->ifindex < 0) {
		xd_err("--dev: no interface '%s'", m->dev);
		return -ENODEV;
	}
	hook.ifindex = m->ifindex;
	m->skel = xdnat_hostside__open();
	if (!m->skel)
		return -errno;
	m->skel->rodata->cfg.gaddr = m->ha;
	rc = xdnat_hostside__load(m->skel);
	if (rc) {
		xd_err("mobile: cannot load the BPF programs: %s", strerror(-rc));
		return rc;
	}
	rc = bpf_tc_hook_create(&hook);
	if (rc && rc != -EEXIST) {
		xd_err("mobile: cannot create clsact on %s: %s", m->dev, strerror(-rc));
		return rc;
	}
	m->hook_created = rc == 0;
	hook.attach_point = BPF_TC_EGRESS;
	eg.prog_fd = bpf_program__fd(m->skel->progs.xdnat_host_roam_egress);
	if ((rc = bpf_tc_attach(&hook, &eg))) {
		xd_err("mobile: cannot attach tc egress on %s: %s", m->dev, strerror(-rc));
		return rc;
	}
	m->eg_on = true;
	hook.attach_point = BPF_TC_INGRESS;
	in.prog_fd = bpf_program__fd(m->skel->progs.xdnat_host_roam_ingress);
	if ((rc = bpf_tc_attach(&hook, &in))) {
		xd_err("mobile: cannot attach tc ingress on %s: %s", m->dev, strerror(-rc));
		return rc;
	}
	m->in_on = true;
	xd_ipstr(m->ha, g);
	strcat(g, "/32");
	{
		const char *show[] = { "ip", "-o", "addr", "show", "to", g, NULL };
		const char *add[] = { "ip", "addr", "add", g, "dev", "lo", NULL };

		if (xd_run_capture(show, out, sizeof(out)))
			return -EIO;
		if (!*out) {
			if (ip_cmd(add))
				return -EIO;
			m->g_on_lo = true;
		}
	}
	/* Wrap from now on: a packet from G never leaves this NIC unwrapped
	 * (before the registration the router drops it, drop_coa_unknown;
	 * it never reaches a remote from the care-of address). */
	if (xd_if_first_ipv4(m->dev, &m->coa))
		m->coa = 0;
	mob_dev_set(m, true);
	return m->home_router ? 0 : mob_routes_up(m);   /* --home-router: when away */
}

/* After every accepted registration: the egress program's source. */
void mob_dev_set(struct mob *m, bool active)
{
	struct xdnat_host_roam r = { .gaddr = m->ha, .ha_addr = m->ha, .local_addr = m->coa,
				     .local_port = htons((uint16_t)m->lport),
				     .flags = active ? XDNAT_COA_F_ACTIVE : 0 };
	__u32 zero = 0;

	if (m->skel && bpf_map_update_elem(bpf_map__fd(m->skel->maps.xdnat_host_roam), &zero, &r,
					   BPF_ANY))
		xd_warn("mobile: cannot configure the tunnel programs: %s", strerror(errno));
}

void mob_dev_down(struct mob *m)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = m->ifindex);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIO);
	char g[INET_ADDRSTRLEN + 3];

	mob_routes_down(m);
	xd_ipstr(m->ha, g);
	strcat(g, "/32");
	if (m->eg_on) {
		hook.attach_point = BPF_TC_EGRESS;
		bpf_tc_detach(&hook, &o);
	}
	if (m->in_on) {
		hook.attach_point = BPF_TC_INGRESS;
		bpf_tc_detach(&hook, &o);
	}
	if (m->hook_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	xdnat_hostside__destroy(m->skel);
	m->skel = NULL;
	if (m->g_on_lo) {
		const char *del[] = { "ip", "addr", "del", g, "dev", "lo", NULL };

		ip_cmd(del);
	}
}

/* A packet from the TUN (from G): into tunnel data to G:434. */
void mob_from_tun(struct mob *m)
{
	uint8_t buf[4 + 65536] = { MIP_T_TUNNEL_DATA, 4, 0, 0 };
	ssize_t n = read(m->tunfd, buf + 4, sizeof(buf) - 4);

	if (n < 20 || (buf[4] >> 4) != 4)
		return;
	if (mob_send_ha(m, buf, (size_t)n + 4) < 0 && errno != EAGAIN)
		xd_warn("mobile: tunnel send: %s", strerror(errno));
}
