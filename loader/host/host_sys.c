// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host's changes to this host (host_agent.h), each recorded so that
 * agent_teardown undoes exactly what was done: G on lo, sysctls (the
 * namespace's ephemeral ports among them), the tc programs, the routes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "host_agent.h"
#include "xdnat_hostside.skel.h"

static int set_sysctl(struct agent *a, const char *path, const char *val)
{
	int i = a->n_sysctls, rc;

	if (i == (int)(sizeof(a->sysctls) / sizeof(a->sysctls[0])))
		return -ENOSPC;
	snprintf(a->sysctls[i].path, sizeof(a->sysctls[i].path), "%s", path);
	rc = xd_sysctl_get(path, a->sysctls[i].old, sizeof(a->sysctls[i].old));
	if (rc) {
		xd_err("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	a->n_sysctls++;
	if (!strcmp(a->sysctls[i].old, val))
		return 0;
	rc = xd_sysctl_set(path, val);
	a->sysctls[i].changed = rc == 0;
	return rc;
}

static int attach(struct agent *a)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex,
		    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, eg, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	LIBBPF_OPTS(bpf_tc_opts, in, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	int rc;

	a->skel = xdnat_hostside__open();
	if (!a->skel) {
		xd_err("cannot open the BPF object: %s", strerror(errno));
		return -errno;
	}
	a->skel->rodata->cfg.gaddr = a->gaddr;
	a->skel->rodata->cfg.lan_addr = a->lan_addr;
	a->skel->rodata->cfg.router_addr = a->router;
	rc = xdnat_hostside__load(a->skel);
	if (rc) {
		xd_err("cannot load the BPF programs: %s", strerror(-rc));
		return rc;
	}
	hook.attach_point = BPF_TC_INGRESS;
	rc = bpf_tc_hook_create(&hook);
	if (rc && rc != -EEXIST) {
		xd_err("cannot create clsact qdisc on %s: %s", a->dev, strerror(-rc));
		return rc;
	}
	a->hook_created = rc == 0;
	hook.attach_point = BPF_TC_EGRESS;
	eg.prog_fd = bpf_program__fd(a->skel->progs.xdnat_host_egress);
	rc = bpf_tc_attach(&hook, &eg);
	if (rc) {
		xd_err("cannot attach tc egress program to %s: %s", a->dev, strerror(-rc));
		return rc;
	}
	a->egress_attached = true;
	hook.attach_point = BPF_TC_INGRESS;
	in.prog_fd = bpf_program__fd(a->skel->progs.xdnat_host_ingress);
	rc = bpf_tc_attach(&hook, &in);
	if (rc) {
		xd_err("cannot attach tc ingress program to %s: %s", a->dev, strerror(-rc));
		return rc;
	}
	a->ingress_attached = true;
	return 0;
}

static void detach(struct agent *a)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a->ifindex);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIO);

	if (a->egress_attached) {
		hook.attach_point = BPF_TC_EGRESS;
		if (bpf_tc_detach(&hook, &o))
			xd_warn("cannot detach the egress program from %s", a->dev);
	}
	if (a->ingress_attached) {
		hook.attach_point = BPF_TC_INGRESS;
		if (bpf_tc_detach(&hook, &o))
			xd_warn("cannot detach the ingress program from %s", a->dev);
	}
	if (a->hook_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	xdnat_hostside__destroy(a->skel);
	a->skel = NULL;
}

static int add_routes(struct agent *a)
{
	char via[INET_ADDRSTRLEN], src[INET_ADDRSTRLEN], mtu[16];

	xd_ipstr(a->router, via);
	xd_ipstr(a->gaddr, src);
	if (!a->tunnel_mtu) {
		/* In this network namespace: /sys/class/net shows the one that
		 * mounted /sys (wrong under nsenter --net). */
		uint32_t lan_mtu = 0;
		int rc = xd_if_mtu(a->dev, &lan_mtu);

		if (rc || lan_mtu < 596) {
			xd_err("cannot use the MTU of %s (%s); give --tunnel-mtu", a->dev,
			       rc ? strerror(-rc) : "below 596");
			return -EIO;
		}
		a->tunnel_mtu = lan_mtu - XDNAT_TUNNEL_OVERHEAD;
	}
	snprintf(mtu, sizeof(mtu), "%u", a->tunnel_mtu);
	for (int i = 0; i < a->n_routes; i++) {
		struct route *r = &a->routes[i];
		const char *show[] = { "ip", "-o", "route", "show", "exact", r->cidr, NULL };
		const char *add[] = { "ip", "route", a->replace_routes ? "replace" : "add", r->cidr,
				      "via", via, "dev", a->dev, "src", src, "mtu", mtu,
				      NULL };

		if (xd_run_capture(show, r->saved, sizeof(r->saved))) {
			xd_err("cannot read the routing table");
			return -EIO;
		}
		r->saved[strcspn(r->saved, "\n")] = '\0';
		if (*r->saved && !a->replace_routes) {
			xd_err("a route to %s exists already (%s): pass --replace-routes to replace "
			       "it for the lifetime of xdnat-host, or --route for other prefixes",
			       r->cidr, r->saved);
			return -EEXIST;
		}
		if (xd_run(add))
			return -EIO;
		r->added = true;
	}
	return 0;
}

static void del_routes(struct agent *a)
{
	for (int i = a->n_routes - 1; i >= 0; i--) {
		struct route *r = &a->routes[i];
		const char *del[] = { "ip", "route", "del", r->cidr, "dev", a->dev, NULL };

		if (!r->added)
			continue;
		if (xd_run(del))
			xd_warn("could not remove the route to %s", r->cidr);
		if (*r->saved) {
			/* Put back what we replaced: "ip route replace" + its saved words. */
			const char *argv[64] = { "ip", "route", "replace" };
			char copy[256], *save = NULL, *tok;
			int n = 3;

			snprintf(copy, sizeof(copy), "%s", r->saved);
			for (tok = strtok_r(copy, " \t", &save); tok && n < 63;
			     tok = strtok_r(NULL, " \t", &save))
				argv[n++] = tok;
			argv[n] = NULL;
			if (xd_run(argv))
				xd_warn("could not restore route '%s'", r->saved);
		}
		r->added = false;
	}
}

/*
 * The namespace's ephemeral ports = exactly the ports this host holds:
 * ip_local_port_range spans its runs (it holds one range only) and the ports
 * between them go into ip_local_reserved_ports, added to what is reserved
 * already; both are restored on exit.
 */
static int set_port_range(struct agent *a)
{
	static const char reserved[] = "/proc/sys/net/ipv4/ip_local_reserved_ports";
	const struct xd_run *r = a->port_runs;
	int n = a->n_port_runs, rc;
	char range[32], val[1024], old[1024];
	size_t len = 0;

	if (r[n - 1].last == r[0].first) {
		xd_err("--ports: the kernel needs a range of at least two ports");
		return -EINVAL;
	}
	snprintf(range, sizeof(range), "%u\t%u", r[0].first, r[n - 1].last);
	if ((rc = set_sysctl(a, "/proc/sys/net/ipv4/ip_local_port_range", range)))
		return rc;
	if (n == 1)
		return 0;
	if ((rc = xd_sysctl_get(reserved, old, sizeof(old)))) {
		xd_err("cannot read %s: %s", reserved, strerror(-rc));
		return rc;
	}
	len = (size_t)snprintf(val, sizeof(val), "%s", old);
	for (int i = 1; i < n && len < sizeof(val); i++)
		len += (size_t)snprintf(val + len, sizeof(val) - len, "%s%u-%u", len ? "," : "",
					r[i - 1].last + 1, r[i].first - 1);
	if (len >= sizeof(val)) {
		xd_err("%s: too long with this host's gaps", reserved);
		return -E2BIG;
	}
	return set_sysctl(a, reserved, val);
}

int agent_setup(struct agent *a)
{
	char g[INET_ADDRSTRLEN + 3], path[128];
	const char *addaddr[] = { "ip", "addr", "add", g, "dev", "lo", NULL };
	const char *show[] = { "ip", "-o", "addr", "show", "dev", "lo", "to", g, NULL };
	char out[256] = "";
	int rc;

	snprintf(g, sizeof(g), "%s/32", xd_ipstr(a->gaddr, (char[INET_ADDRSTRLEN]){0}));
	if (xd_run_capture(show, out, sizeof(out)))
		return -EIO;
	if (!*out) {
		if (xd_run(addaddr))
			return -EIO;
		a->addr_added = true;
	}
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_announce", a->dev);
	if ((rc = set_sysctl(a, path, "2")))
		return rc;
	/* G lives on lo; without arp_ignore=1 the host would answer ARP for the
	 * router's address on the LAN. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_ignore", a->dev);
	if ((rc = set_sysctl(a, path, "1")))
		return rc;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", a->dev);
	if ((rc = set_sysctl(a, path, "0")))
		return rc;
	if ((rc = set_sysctl(a, "/proc/sys/net/ipv4/conf/all/rp_filter", "0")))
		return rc;
	if (a->ports_set && (rc = set_port_range(a)))
		return rc;
	if ((rc = attach(a)))
		return rc;
	return add_routes(a);
}

void agent_teardown(struct agent *a)
{
	char g[INET_ADDRSTRLEN + 3];
	const char *deladdr[] = { "ip", "addr", "del", g, "dev", "lo", NULL };

	del_routes(a);
	detach(a);
	for (int i = a->n_sysctls - 1; i >= 0; i--)
		if (a->sysctls[i].changed && xd_sysctl_set(a->sysctls[i].path, a->sysctls[i].old))
			xd_warn("could not restore %s", a->sysctls[i].path);
	if (a->addr_added) {
		snprintf(g, sizeof(g), "%s/32", xd_ipstr(a->gaddr, (char[INET_ADDRSTRLEN]){0}));
		if (xd_run(deladdr))
			xd_warn("could not remove %s from lo", g);
	}
}

/* --swan-dir: the strongSwan fragment from the blocks we hold. */
int agent_write_swan(struct agent *a)
{
	a->swan.gaddr = a->gaddr;
	a->swan.lan_addr = a->lan_addr;
	a->swan.port_first = a->port_first;
	a->swan.port_last = a->port_last;
	a->swan.spi_first = a->spi_first;
	a->swan.spi_last = a->spi_last;
	a->swan.shared_ike = a->shared_ike;
	a->swan.ike_port = a->ike_port;
	a->swan.ike_port_nat_t = a->ike_port_natt;
	if (a->cert.key) {   /* enrolled over RSIP: the LCA's certificate, our key */
		a->swan.key_path = a->cert.key_path;
		a->swan.cert_path = a->cert.crt_path;
		a->swan.chain_path = a->cert.chain_path;
	}
	return swan_conf_write(&a->swan);
}

