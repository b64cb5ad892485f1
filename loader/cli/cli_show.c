// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl's views of the pinned maps: host show, stats, config, lookup,
 * ike list.  Reads only: changes go to xdnatd (cli_change.c).
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "counters.h"

/* Counter totals across reboots (counters.h), from --state-dir's database
 * when it has them; read once, by the first command that shows counters. */
static struct xd_ctr_state ctr;
static int ctr_have;  /* 0: not read yet, 1: baselines, -1: none */

/* 0: not read yet, 1: baselines, -1: none */

static const struct xd_ctr_state *ctr_get(struct xd_maps *m)
{
	if (!ctr_have)
		ctr_have = xd_ctr_read(cli.state_dir, cli.instance, m, &ctr) ? -1 : 1;
	return ctr_have > 0 ? &ctr : NULL;
}

/* "since" of the totals: UTC, ISO 8601. */
static void ctr_since(const struct xd_ctr_state *s, char *buf, size_t len)
{
	time_t t = (time_t)(s->since_ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

static void print_runs(struct xd_json *j, const char *key, const struct xd_run *r, size_t n,
		       bool hex)
{
	char buf[48];

	if (cli.json)
		xd_json_arr_open(j, key);
	else
		printf("    %s:", key);
	for (size_t i = 0; i < n; i++) {
		if (hex)
			snprintf(buf, sizeof(buf), "0x%x-0x%x", r[i].first, r[i].last);
		else if (r[i].first == r[i].last)
			snprintf(buf, sizeof(buf), "%u", r[i].first);
		else
			snprintf(buf, sizeof(buf), "%u-%u", r[i].first, r[i].last);
		if (cli.json)
			xd_json_str(j, NULL, buf);
		else
			printf(" %s", buf);
	}
	if (cli.json)
		xd_json_arr_close(j);
	else
		printf("%s\n", n ? "" : " none");
}

static int show_host(struct xd_maps *m, struct xd_json *j, uint32_t id, const struct xdnat_host *h)
{
	struct xd_run *pr = NULL, *sr = NULL;
	size_t pn = 0, sn = 0;
	struct xdnat_host_stats st = {};
	char lan[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	const struct xd_ctr_state *cs;
	const char *name = NULL;
	int rc;

	if ((rc = xd_ports_of(m, id, &pr, &pn)) || (rc = xd_spis_of(m, id, &sr, &sn)) ||
	    (rc = xd_host_stats(m, id, &st))) {
		xd_err("cannot read host %u: %s", id, strerror(-rc));
		free(pr);
		free(sr);
		return rc;
	}
	xd_ipstr(h->lan_addr, lan);
	xd_ipstr(h->gaddr_index < XDNAT_MAX_GADDRS ? m->cfg.gaddrs[h->gaddr_index] : 0, g);
	if ((cs = ctr_get(m))) {
		uint64_t cur[XD_CTR_NVAL] = { st.to_host_packets, st.to_host_bytes,
					      st.from_host_packets, st.from_host_bytes }, tot[XD_CTR_NVAL];
		char key[XD_CTR_KEY_MAX];

		xd_ctr_host_key(cs, id, key, sizeof(key), &name);
		xd_ctr_total(cs, key, cur, tot);
		st.to_host_packets = tot[0];
		st.to_host_bytes = tot[1];
		st.from_host_packets = tot[2];
		st.from_host_bytes = tot[3];
	}
	if (cli.json) {
		xd_json_obj_open(j, NULL);
		xd_json_u64(j, "id", id);
		if (name)
			xd_json_str(j, "name", name);
		xd_json_str(j, "lan", lan);
		xd_json_str(j, "global", g);
	} else {
		printf("host %u%s%s lan %s global %s\n", id, name ? " name " : "", name ? name : "",
		       lan, g);
	}
	print_runs(j, "ports", pr, pn, false);
	print_runs(j, "spis", sr, sn, true);
	if (cli.json) {
		xd_json_u64(j, "to_host_packets", st.to_host_packets);
		xd_json_u64(j, "to_host_bytes", st.to_host_bytes);
		xd_json_u64(j, "from_host_packets", st.from_host_packets);
		xd_json_u64(j, "from_host_bytes", st.from_host_bytes);
		if (cs) {
			char since[32];

			ctr_since(cs, since, sizeof(since));
			xd_json_str(j, "since", since);
		}
		xd_json_obj_close(j);
	} else {
		char since[48] = "";

		if (cs) {
			memcpy(since, " (since ", 8);
			ctr_since(cs, since + 8, sizeof(since) - 9);
			strcat(since, ")");
		}
		printf("    to host: %llu packets %llu bytes; from host: %llu packets %llu bytes%s\n",
		       (unsigned long long)st.to_host_packets, (unsigned long long)st.to_host_bytes,
		       (unsigned long long)st.from_host_packets, (unsigned long long)st.from_host_bytes,
		       since);
	}
	free(pr);
	free(sr);
	return 0;
}

static int cmd_host_show(struct xd_maps *m, int argc, char **argv)
{
	struct xd_json j;
	struct xdnat_host h;
	uint32_t id, only = 0;
	int rc = 0;

	if (argc > 1)
		return cli_usage_err("host show: unexpected '%s'", argv[1]);
	if (argc == 1) {
		if (cli_parse_id(argv[0], &only))
			return 2;
		if (xd_host_get(m, only, &h)) {
			xd_err("no host %u", only);
			return 1;
		}
	}
	if (cli.json) {
		xd_json_begin(&j, stdout);
		xd_json_arr_open(&j, "hosts");
	}
	for (id = only ? only : 1; id < m->cfg.max_hosts; id++) {
		if (xd_host_get(m, id, &h) == 0 && show_host(m, &j, id, &h))
			rc = 1;
		if (only)
			break;
	}
	if (cli.json) {
		xd_json_arr_close(&j);
		xd_json_end(&j);
	}
	return rc;
}

static int cmd_stats(struct xd_maps *m)
{
	const struct xd_ctr_state *cs = ctr_get(m);
	struct xd_json j;
	char since[32] = "";

	if (cs)
		ctr_since(cs, since, sizeof(since));
	if (cli.json) {
		xd_json_begin(&j, stdout);
		if (cs)
			xd_json_str(&j, "since", since);
		xd_json_obj_open(&j, "counters");
	} else {
		/* Totals across reboots: say from when. */
		if (cs)
			printf("totals since %s (state database %s/%s.db)\n", since, cli.state_dir,
			       cli.instance);
		printf("%-20s %14s %16s\n", "reason", "packets", "bytes");
	}
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++) {
		struct xdnat_counter c;
		int rc = xd_reason_stats(m, r, &c);

		if (rc) {
			xd_err("cannot read counter %s: %s", xdnat_reason_names[r], strerror(-rc));
			return 1;
		}
		if (cs) {
			uint64_t cur[XD_CTR_NVAL] = { c.packets, c.bytes }, tot[XD_CTR_NVAL];
			char key[XD_CTR_KEY_MAX];

			xd_ctr_reason_key(r, key, sizeof(key));
			xd_ctr_total(cs, key, cur, tot);
			c.packets = tot[0];
			c.bytes = tot[1];
		}
		if (cli.json) {
			xd_json_obj_open(&j, xdnat_reason_names[r]);
			xd_json_u64(&j, "packets", c.packets);
			xd_json_u64(&j, "bytes", c.bytes);
			xd_json_obj_close(&j);
		} else {
			printf("%-20s %14llu %16llu\n", xdnat_reason_names[r],
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
		}
	}
	if (cli.json) {
		xd_json_obj_close(&j);
		xd_json_end(&j);
	}
	return 0;
}

static int cmd_config(struct xd_maps *m)
{
	const struct xdnat_router_cfg *c = &m->cfg;
	char wan[IF_NAMESIZE] = "?", lan[IF_NAMESIZE] = "?", a[INET_ADDRSTRLEN];
	struct xd_json j;

	/* Names resolve only in the router's network namespace. */
	if (!if_indextoname(c->wan_ifindex, wan))
		strcpy(wan, "?");
	if (!if_indextoname(c->lan_ifindex, lan))
		strcpy(lan, "?");
	if (cli.json) {
		xd_json_begin(&j, stdout);
		xd_json_str(&j, "wan", wan);
		xd_json_u64(&j, "wan_ifindex", c->wan_ifindex);
		xd_json_str(&j, "lan", lan);
		xd_json_u64(&j, "lan_ifindex", c->lan_ifindex);
		xd_json_str(&j, "lan_addr", xd_ipstr(c->lan_addr, a));
		xd_json_arr_open(&j, "globals");
		for (uint32_t i = 0; i < c->n_gaddrs && i < XDNAT_MAX_GADDRS; i++)
			xd_json_str(&j, NULL, xd_ipstr(c->gaddrs[i], a));
		xd_json_arr_close(&j);
		xd_json_str(&j, "mode", c->flags & XDNAT_F_TC_MODE ? "tc" : "xdp");
		xd_json_str(&j, "unknown", c->flags & XDNAT_F_UNKNOWN_DROP ? "drop" : "pass");
		xd_json_u64(&j, "max_hosts", c->max_hosts);
		xd_json_u64(&j, "spi_block_bits", c->spi_block_bits);
		xd_json_end(&j);
		return 0;
	}
	printf("wan %s (ifindex %u)\nlan %s (ifindex %u) address %s\n", wan, c->wan_ifindex, lan,
	       c->lan_ifindex, xd_ipstr(c->lan_addr, a));
	for (uint32_t i = 0; i < c->n_gaddrs && i < XDNAT_MAX_GADDRS; i++)
		printf("global %u %s\n", i, xd_ipstr(c->gaddrs[i], a));
	printf("unknown %s\nmax-hosts %u\nspi-block-bits %u (0x%x SPIs per block)\n",
	       c->flags & XDNAT_F_UNKNOWN_DROP ? "drop" : "pass", c->max_hosts,
	       c->spi_block_bits, 1u << c->spi_block_bits);
	return 0;
}

static int cmd_lookup(struct xd_maps *m, int argc, char **argv)
{
	uint32_t v, gidx = 0, owner = 0;
	struct xd_run *runs = NULL;
	size_t n = 0;
	struct xd_json j;
	bool port;

	if (argc < 2)
		return cli_usage_err("lookup: expected 'port N' or 'spi N'%s", NULL);
	port = !strcmp(argv[0], "port");
	if (!port && strcmp(argv[0], "spi"))
		return cli_usage_err("lookup: unknown object '%s'", argv[0]);
	if (port ? xd_parse_u32(argv[1], 0, 65535, &v) : xd_parse_u32(argv[1], 0, 0xffffffffu, &v)) {
		xd_err("'%s' is not a valid %s", argv[1], argv[0]);
		return 2;
	}
	if (port && argc == 4 && !strcmp(argv[2], "global")) {
		uint32_t g;
		int gi;

		if (xd_parse_ipv4(argv[3], &g) || (gi = xd_gaddr_index(m, g)) < 0) {
			xd_err("%s is not one of this router's global addresses", argv[3]);
			return 1;
		}
		gidx = (uint32_t)gi;
	} else if (argc != 2) {
		return cli_usage_err("lookup: unexpected '%s'", argv[2]);
	}
	/* Scan the hosts for the owner: the CLI path, not the datapath. */
	for (uint32_t id = 1; id < m->cfg.max_hosts && !owner; id++) {
		struct xdnat_host h;

		if (xd_host_get(m, id, &h))
			continue;
		if (port && h.gaddr_index != gidx)
			continue;
		if (port ? xd_ports_of(m, id, &runs, &n) : xd_spis_of(m, id, &runs, &n))
			continue;
		for (size_t i = 0; i < n; i++)
			if (v >= runs[i].first && v <= runs[i].last)
				owner = id;
		free(runs);
		runs = NULL;
	}
	if (cli.json) {
		xd_json_begin(&j, stdout);
		xd_json_str(&j, "object", argv[0]);
		xd_json_u64(&j, "value", v);
		xd_json_u64(&j, "host", owner);
		xd_json_end(&j);
	} else if (owner) {
		printf("%s %u: host %u\n", argv[0], v, owner);
	} else {
		printf("%s %u: unallocated\n", argv[0], v);
	}
	return 0;
}

/* ike list (ike default is a change) */
static int cmd_ike(struct xd_maps *m, int argc, char **argv)
{
	struct xd_shared sh[XDNAT_MAX_GADDRS * XDNAT_MAX_SHARED_PORTS * 2];
	char a[INET_ADDRSTRLEN];
	size_t n = 0;
	struct xd_json j;

	if (argc == 1 && !strcmp(argv[0], "list")) {
		if (xd_shared_list(m, sh, sizeof(sh) / sizeof(sh[0]), &n))
			return 1;
		if (cli.json) {
			xd_json_begin(&j, stdout);
			xd_json_arr_open(&j, "shared_ike");
			for (size_t i = 0; i < n; i++) {
				xd_json_obj_open(&j, NULL);
				xd_json_str(&j, "global", xd_ipstr(m->cfg.gaddrs[sh[i].gidx], a));
				xd_json_u64(&j, "port", sh[i].port);
				xd_json_str(&j, "framing", sh[i].kind == XDNAT_HOST_SHARED_IKE ?
					    "ike" : "rfc3948");
				xd_json_u64(&j, "default_host", sh[i].default_host);
				xd_json_obj_close(&j);
			}
			xd_json_arr_close(&j);
			xd_json_end(&j);
			return 0;
		}
		if (!n)
			printf("no shared IKE ports (xdnatd --shared-ike-ports)\n");
		for (size_t i = 0; i < n; i++) {
			printf("%s udp %u: %s, ", xd_ipstr(m->cfg.gaddrs[sh[i].gidx], a), sh[i].port,
			       sh[i].kind == XDNAT_HOST_SHARED_IKE ? "IKE" : "RFC 3948 (marker/ESP)");
			if (sh[i].default_host)
				printf("IKE_SA_INIT of remote initiators to host %u\n",
				       sh[i].default_host);
			else
				printf("IKE_SA_INIT of remote initiators dropped\n");
		}
		return 0;
	}
	return cli_usage_err("ike: expected 'list' or 'default PORT HOST|none [global ADDR]'%s",
			     NULL);
}

bool cli_is_view(int argc, char **argv)
{
	const char *o = argv[0], *c = argc > 1 ? argv[1] : "";

	return (!strcmp(o, "host") && (!strcmp(c, "show") || !strcmp(c, "list"))) ||
	       !strcmp(o, "stats") || !strcmp(o, "config") || !strcmp(o, "lookup") ||
	       (!strcmp(o, "ike") && strcmp(c, "default"));
}

int cli_view(struct xd_maps *m, int argc, char **argv)
{
	const char *obj = argv[0];

	if (!strcmp(obj, "host"))
		return cmd_host_show(m, argc - 2, argv + 2);
	if (!strcmp(obj, "stats"))
		return argc == 1 ? cmd_stats(m) : cli_usage_err("stats: unexpected '%s'", argv[1]);
	if (!strcmp(obj, "config"))
		return argc == 1 ? cmd_config(m) : cli_usage_err("config: unexpected '%s'", argv[1]);
	if (!strcmp(obj, "ike"))
		return cmd_ike(m, argc - 1, argv + 1);
	return cmd_lookup(m, argc - 1, argv + 1);
}
