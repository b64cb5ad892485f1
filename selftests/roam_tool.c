// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * roam-tool: the two ends of a roaming host's datapath for the tests, until
 * the Mobile IP control plane drives them (selftests/e2e_roam_datapath.sh).
 *
 *   roam-tool coa-set   [-i INSTANCE] [--pin-base DIR] HOST ADDR PORT [inactive]
 *   roam-tool coa-clear [-i INSTANCE] [--pin-base DIR] HOST
 *       the router side: xd_coa_set()/xd_coa_clear() on the instance's maps.
 *       The one-writer rule (loader/daemon/writer.h) holds only because no
 *       xdnatd of this build writes xdnat_coa/xdnat_coa_idx: once the
 *       control plane does, tests go through it instead.
 *   roam-tool host-away --dev DEV --global G --local ADDR --port PORT [--ha ADDR]
 *       the host side: load xdnat_hostside, fill xdnat_host_roam, attach
 *       xdnat_host_roam_egress/_ingress to DEV with tc, print "ready" and
 *       stay until SIGTERM/SIGINT, then detach
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdnat.h"
#include "xdnat_hostside.skel.h"

#define TC_HANDLE 0x3519
#define TC_PRIO   1

static void usage(FILE *f)
{
	fprintf(f,
		"usage: roam-tool coa-set [-i INSTANCE] [--pin-base DIR] HOST ADDR PORT [inactive]\n"
		"       roam-tool coa-clear [-i INSTANCE] [--pin-base DIR] HOST\n"
		"       roam-tool host-away --dev DEV --global G --local ADDR --port PORT [--ha ADDR]\n"
		"\n"
		"coa-set    reach host HOST at care-of endpoint ADDR:PORT (one update of\n"
		"           xdnat_coa; 'inactive' writes it without switching)\n"
		"coa-clear  reach host HOST on the LAN again\n"
		"host-away  the host's end of the RFC 3519 tunnel on DEV: packets from G\n"
		"           leave as tunnel data ADDR:PORT -> HA:434 (HA defaults to G),\n"
		"           tunnel data from HA:434 is unwrapped; runs until SIGTERM\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int router_side(int argc, char **argv, int set)
{
	const char *instance = XDNAT_DEFAULT_INSTANCE, *base = XDNAT_PIN_BASE;
	static const struct option lo[] = { { "instance", 1, 0, 'i' }, { "pin-base", 1, 0, 'b' },
					    { "help", 0, 0, 'h' }, { 0 } };
	uint32_t id, addr = 0, port = 0;
	struct xd_maps m;
	int c, rc;

	while ((c = getopt_long(argc, argv, "i:h", lo, NULL)) != -1) {
		if (c == 'i')
			instance = optarg;
		else if (c == 'b')
			base = optarg;
		else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || xd_parse_u32(argv[0], 1, XDNAT_LIMIT_MAX_HOSTS - 1, &id) ||
	    (set && (argc < 3 || argc > 4 || xd_parse_ipv4(argv[1], &addr) ||
		     xd_parse_u32(argv[2], 1, 65535, &port) ||
		     (argc == 4 && strcmp(argv[3], "inactive")))) ||
	    (!set && argc != 1)) {
		usage(stderr);
		return 2;
	}
	if ((rc = xd_maps_open(base, instance, &m)))
		return 1;
	rc = set ? xd_coa_set(&m, id, addr, htons((uint16_t)port),
			      argc == 4 ? 0 : XDNAT_COA_F_ACTIVE, 0)
		 : xd_coa_clear(&m, id);
	xd_maps_close(&m);
	return rc ? 1 : 0;
}

static int host_away(int argc, char **argv)
{
	static const struct option lo[] = { { "dev", 1, 0, 'd' }, { "global", 1, 0, 'g' },
					    { "local", 1, 0, 'l' }, { "port", 1, 0, 'p' },
					    { "ha", 1, 0, 'a' }, { "help", 0, 0, 'h' }, { 0 } };
	struct xdnat_host_roam cfg = { .flags = XDNAT_COA_F_ACTIVE };
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, eg, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	LIBBPF_OPTS(bpf_tc_opts, in, .handle = TC_HANDLE, .priority = TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	struct xdnat_hostside *s = NULL;
	const char *dev = NULL;
	uint32_t port = 0, zero = 0;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'g': if (xd_parse_ipv4(optarg, &cfg.gaddr)) goto usage; break;
		case 'l': if (xd_parse_ipv4(optarg, &cfg.local_addr)) goto usage; break;
		case 'a': if (xd_parse_ipv4(optarg, &cfg.ha_addr)) goto usage; break;
		case 'p': if (xd_parse_u32(optarg, 1, 65535, &port)) goto usage; break;
		case 'h': usage(stdout); return 0;
		default: goto usage;
		}
	}
	if (!dev || !cfg.gaddr || !cfg.local_addr || !port || optind != argc)
		goto usage;
	if (!cfg.ha_addr)
		cfg.ha_addr = cfg.gaddr;
	cfg.local_port = htons((uint16_t)port);
	hook.ifindex = (int)if_nametoindex(dev);
	if (!hook.ifindex) {
		xd_err("no interface %s", dev);
		return 1;
	}
	s = xdnat_hostside__open_and_load();
	if (!s) {
		xd_err("cannot load xdnat_hostside: %s", strerror(errno));
		return 1;
	}
	if (bpf_map_update_elem(bpf_map__fd(s->maps.xdnat_host_roam), &zero, &cfg, BPF_ANY)) {
		xd_err("cannot configure xdnat_host_roam: %s", strerror(errno));
		goto out;
	}
	rc = bpf_tc_hook_create(&hook);
	if (rc && rc != -EEXIST) {
		xd_err("cannot create the clsact qdisc on %s: %s", dev, strerror(-rc));
		rc = 1;
		goto out;
	}
	hook.attach_point = BPF_TC_EGRESS;
	eg.prog_fd = bpf_program__fd(s->progs.xdnat_host_roam_egress);
	if ((rc = bpf_tc_attach(&hook, &eg))) {
		xd_err("cannot attach the egress program: %s", strerror(-rc));
		rc = 1;
		goto destroy;
	}
	hook.attach_point = BPF_TC_INGRESS;
	in.prog_fd = bpf_program__fd(s->progs.xdnat_host_roam_ingress);
	if ((rc = bpf_tc_attach(&hook, &in))) {
		xd_err("cannot attach the ingress program: %s", strerror(-rc));
		rc = 1;
		goto destroy;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	rc = 0;
destroy:
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	bpf_tc_hook_destroy(&hook); /* the qdisc and both filters */
out:
	xdnat_hostside__destroy(s);
	return rc;
usage:
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	xd_progname = "roam-tool";
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "coa-set"))
		return router_side(argc - 1, argv + 1, 1);
	if (!strcmp(argv[1], "coa-clear"))
		return router_side(argc - 1, argv + 1, 0);
	if (!strcmp(argv[1], "host-away"))
		return host_away(argc - 1, argv + 1);
	usage(stderr);
	return 2;
}
