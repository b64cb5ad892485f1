// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl: inspect and change a running xdnat router through its pinned
 * maps (iproute2-style OBJECT COMMAND syntax, -j for JSON).
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <bpf/bpf.h>
#include "xdnat.h"
#include "store.h"
#include "rsip_server.h"
#include "lca.h"
#include "ctl_sock.h"
#include "counters.h"
#include "opts.h"
#include <time.h>
#include <openssl/pem.h>

static const char *const reason_names[] = XDNAT_REASON_NAMES;
_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) == XDNAT_R_MAX,
	       "XDNAT_REASON_NAMES and enum xdnat_reason differ");

static bool json;
static bool direct;   /* --direct: never ask the running xdnatd */
/* Counter totals across reboots (counters.h), from --state-dir's database
 * when it has them; read once, by the first command that shows counters. */
static const char *ctr_state_dir, *ctr_instance;
static struct xd_ctr_state ctr;
static int ctr_have;  /* 0: not read yet, 1: baselines, -1: none */

static const struct xd_ctr_state *ctr_get(struct xd_maps *m)
{
	if (!ctr_have)
		ctr_have = xd_ctr_read(ctr_state_dir, ctr_instance, m, &ctr) ? -1 : 1;
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

#define CTL_CLIENT_TIMEOUT_MS 10000

/*
 * Print a response of xdnatd's control socket: with -j its object without
 * the "ok" member (the same as the direct path prints), else its text.
 * Exit status 0, or 1 with the daemon's error on stderr.
 */
static int print_response(const char *resp)
{
	static const char okp[] = "{\"ok\":true";
	const char *v;
	size_t vl;
	char *msg = NULL;

	if (ctl_json_member(resp, "ok", &v, &vl)) {
		xd_err("xdnatd sent a malformed response: %.200s", resp);
		return 1;
	}
	if (vl == 4 && !memcmp(v, "true", 4)) {
		if (json) {
			/* The daemon always begins with {"ok":true. */
			if (!strncmp(resp, okp, sizeof(okp) - 1))
				printf("{%s", resp + sizeof(okp) - 1 +
				       (resp[sizeof(okp) - 1] == ',' ? 1 : 0));
			else
				fputs(resp, stdout);
			return 0;
		}
		if (!ctl_json_member(resp, "text", &v, &vl) && !ctl_json_string(v, vl, &msg)) {
			fputs(msg, stdout);
			free(msg);
			return 0;
		}
		xd_err("xdnatd sent a malformed response: %.200s", resp);
		return 1;
	}
	if (!ctl_json_member(resp, "error", &v, &vl) && !ctl_json_string(v, vl, &msg)) {
		xd_err("%s", msg);
		free(msg);
	} else {
		xd_err("xdnatd refused the request: %.200s", resp);
	}
	return 1;
}

/*
 * Run command @argv (@argc words) in the running xdnatd over its control
 * socket.  Returns 0 or 1 (the exit status) when xdnatd answered or cannot
 * be asked (permission), -1 when no xdnatd listens (the caller falls back
 * to the state database; @mutating: and says so on stderr).
 */
static int via_daemon(const char *instance, int argc, char **argv, bool mutating)
{
	char line[CTL_MAX_REQ], path[128];
	size_t off = 0;
	char *resp = NULL;
	int rc;

	ctl_sock_path(instance, path, sizeof(path));
	if (direct)
		return -1;
	off = (size_t)snprintf(line, sizeof(line), "%s", json ? "" : "--text");
	for (int i = 0; i < argc; i++) {
		for (const char *c = argv[i]; *c; c++)
			if (*c <= ' ' || *c > '~') {
				xd_err("'%s' cannot be sent to xdnatd: only printable ASCII without spaces",
				       argv[i]);
				return 1;
			}
		rc = snprintf(line + off, sizeof(line) - off, "%s%s", off ? " " : "", argv[i]);
		if (rc < 0 || (size_t)rc >= sizeof(line) - off) {
			xd_err("request too long for xdnatd's control socket");
			return 1;
		}
		off += (size_t)rc;
	}
	rc = ctl_client_request(instance, line, CTL_CLIENT_TIMEOUT_MS, &resp);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		if (mutating)
			fprintf(stderr, "xdnatctl: no xdnatd answers on %s: changing the state "
				"database directly\n", path);
		return -1;
	}
	if (rc == -EACCES || rc == -EPERM) {
		xd_err("%s: permission denied (the control socket is for root only)", path);
		return 1;
	}
	if (rc) {
		xd_err("xdnatd's control socket %s: %s", path, strerror(-rc));
		return 1;
	}
	rc = print_response(resp);
	free(resp);
	return rc;
}

/* Global options (opts.h): getopt, --help and xdnatctl(8) come from this
 * table.  -p and -s are retired: iproute2 and bpftool use them for
 * --pretty and --statistics. */
static const struct xo_opt ctl_opts[] = {
	XO_HEAD("Options:"),
	{ "json", 'j', NULL, .help = "JSON output" },
	{ "instance", 'i', "NAME", .help = "router instance (default: " XDNAT_DEFAULT_INSTANCE ")" },
	{ "pin-base", 0, "DIR", 'p', .help = "bpffs directory of the pins (default: "
					      XDNAT_PIN_BASE ")" },
	{ "state-dir", 0, "DIR", 's', .help = "xdnatd's --state-dir (default: " XDNAT_STATE_DIR ")" },
	{ "direct", 'D', NULL, .help = "rsip and cert commands: use the state database even when "
				       "xdnatd runs (an eviction may then race with an allocation "
				       "in the daemon)" },
	{ "batch", 'b', "FILE", .help = "run the host/ports/spi/stats/config/lookup commands in FILE "
					"('-': stdin), one per line, '#' comments; stops at the "
					"first failing line and names it" },
	XO_OPT_VERSION,
	XO_OPT_HELP,
	{ 0 }
};

static const struct xo_prog ctl_prog = {
	.name = "xdnatctl", .opts = ctl_opts, .col = 24, .in_order = true,
	.retired = "p=pin-base s=state-dir",
	.synopsis =
"Usage: xdnatctl [-j] [-i INSTANCE] [--pin-base DIR] OBJECT COMMAND [ARGS]\n"
"  or:  xdnatctl [-i INSTANCE] [--pin-base DIR] -b FILE\n"
"\n"
"Inspect and change a running xdnatd through its pinned maps.\n"
"\n"
"  host add ID lan ADDR [global ADDR] [ports A-B]... [spi A-B]...\n"
"                    register host ID (1..max-hosts-1) whose tunnel endpoint\n"
"                    is ADDR, sharing global address ADDR (default: the first),\n"
"                    optionally with port and SPI blocks\n"
"  host del ID       remove the host and free all its blocks\n"
"  host show [ID]    hosts, their blocks and per-host counters\n"
"  ports add ID A-B  give host ID the ports A..B of its global address\n"
"  ports del ID A-B  take them back (all must be the host's)\n"
"  spi add ID A-B    give host ID the SPIs A..B (decimal or 0x hex); the\n"
"                    range must consist of whole SPI blocks (see config)\n"
"  spi del ID A-B    take them back\n"
"  ike list          shared IKE ports (xdnatd --shared-ike-ports) and the\n"
"                    default host of each (docs/SHARED-IKE.md)\n"
"  ike default PORT HOST|none [global ADDR]\n"
"                    IKE_SA_INIT from remote initiators to shared port\n"
"                    PORT of ADDR (default: the first) goes to HOST;\n"
"                    none: dropped (counter ike_no_default)\n"
"  stats             packet and byte counters per verdict reason; with a\n"
"                    state database (--state-dir) that keeps them, the\n"
"                    totals since it first saw the router, across reboots\n"
"  config            the running configuration\n"
"  lookup port N [global ADDR]   which host owns port N\n"
"  lookup spi N                  which host owns SPI N\n"
"  reload-programs   make xdnatd re-execute its binary: the new programs\n"
"                    replace the running ones atomically (pinned BPF links),\n"
"                    hosts and blocks stay; waits until both hooks run them\n"
"\n"
"RSIP control plane (through the running xdnatd's control socket\n"
"/run/xdnat/INSTANCE.ctl, root only; without a running xdnatd, on the state\n"
"database directly):\n"
"  enroll NAME [lan ADDR] [secret-file PATH]\n"
"                    allow host NAME to obtain blocks over RSIP; prints its\n"
"                    new secret (64 hex digits), or writes it to PATH (0600);\n"
"                    lan ADDR: accept it only from that LAN address.\n"
"                    Enrolling again replaces the secret.\n"
"  unenroll NAME     forget host NAME (it cannot register any more)\n"
"  rsip list         enrolled hosts, registrations and bindings with the\n"
"                    lease (or quarantine) time remaining\n"
"  rsip evict NAME   take all of host NAME's blocks at once: out of the maps\n"
"                    (needs the router's pins), into xdnatd's quarantine;\n"
"                    its registration ends (unenroll it to keep it out);\n"
"                    the certificates that bind them are revoked first\n"
"  daemon stats      the running xdnatd's counters: per verdict reason, RSIP\n"
"                    hosts and bindings, control requests (needs xdnatd)\n"
"  daemon ping       does xdnatd answer on its control socket?\n"
"\n"
"Local CA (docs/LCA.md; state database, no running xdnatd needed):\n"
"  cert list [HOST]  issued host certificates: serial, host, identity, ports,\n"
"                    SPIs, validity and status (valid, expired, revoked)\n"
"  cert show SERIAL  one certificate, with its PEM\n"
"  cert revoke SERIAL [REASON]\n"
"                    revoke it (REASON: unspecified, keyCompromise,\n"
"                    affiliationChanged, superseded, cessationOfOperation;\n"
"                    default unspecified); a running xdnatd publishes the new\n"
"                    CRL and notifies the host's peers within a second;\n"
"                    unless REASON is superseded, cessationOfOperation or\n"
"                    affiliationChanged, it also revokes the host's other\n"
"                    certificates and refuses the host new ones until it is\n"
"                    enrolled again\n",
	.epilog = "\n"
"Blocks of different hosts never overlap: a command that would overlap, or\n"
"names a block that is not the host's, changes nothing and exits 1.\n"
"Exit status: 0 success, 1 error (nothing changed), 2 usage error (bad\n"
"syntax or malformed value).\n",
};

static void usage(FILE *f)
{
	xo_help(&ctl_prog, f);
}

static int usage_err(const char *fmt, const char *arg)
{
	fprintf(stderr, "xdnatctl: ");
	fprintf(stderr, fmt, arg ? arg : "");
	fprintf(stderr, "\nTry 'xdnatctl --help'.\n");
	return 2;
}

static int parse_id(const char *s, uint32_t *id)
{
	if (xd_parse_u32(s, 1, XDNAT_LIMIT_MAX_HOSTS, id)) {
		xd_err("'%s' is not a host id", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static int parse_ports(const char *s, uint32_t *a, uint32_t *b)
{
	if (xd_parse_range(s, 1, 65535, a, b)) {
		xd_err("'%s' is not a port range A-B within 1-65535", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static int parse_spis(const char *s, uint32_t *a, uint32_t *b)
{
	if (xd_parse_range(s, 0, 0xffffffffu, a, b)) {
		xd_err("'%s' is not an SPI range A-B", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static int cmd_host_add(struct xd_maps *m, int argc, char **argv)
{
	uint32_t id, lan = 0, gidx = 0, a, b;
	bool have_lan = false;
	int i, rc;

	if (argc < 1 || parse_id(argv[0], &id))
		return argc < 1 ? usage_err("host add: missing ID%s", NULL) : 2;
	/* Parse and check every argument before changing anything. */
	for (i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			return usage_err("host add: '%s' needs a value", argv[i]);
		if (!strcmp(argv[i], "lan")) {
			if (xd_parse_ipv4(argv[i + 1], &lan)) {
				xd_err("'%s' is not an IPv4 address", argv[i + 1]);
				return 2;
			}
			have_lan = true;
		} else if (!strcmp(argv[i], "global")) {
			uint32_t g;
			int gi;

			if (xd_parse_ipv4(argv[i + 1], &g)) {
				xd_err("'%s' is not an IPv4 address", argv[i + 1]);
				return 2;
			}
			gi = xd_gaddr_index(m, g);
			if (gi < 0) {
				xd_err("%s is not one of this router's global addresses", argv[i + 1]);
				return 1;
			}
			gidx = (uint32_t)gi;
		} else if (!strcmp(argv[i], "ports")) {
			if (parse_ports(argv[i + 1], &a, &b))
				return 2;
		} else if (!strcmp(argv[i], "spi")) {
			if (parse_spis(argv[i + 1], &a, &b))
				return 2;
		} else {
			return usage_err("host add: unknown keyword '%s'", argv[i]);
		}
	}
	if (!have_lan)
		return usage_err("host add: 'lan ADDR' is required%s", NULL);
	if (xd_host_add(m, id, lan, gidx))
		return 1;
	for (i = 1; i < argc; i += 2) {
		if (!strcmp(argv[i], "ports")) {
			parse_ports(argv[i + 1], &a, &b);
			rc = xd_ports_add(m, id, a, b);
		} else if (!strcmp(argv[i], "spi")) {
			parse_spis(argv[i + 1], &a, &b);
			rc = xd_spis_add(m, id, a, b);
		} else {
			continue;
		}
		if (rc) {
			/* All or nothing: a host with half its blocks is a surprise. */
			if (xd_host_del(m, id))
				xd_err("could not roll back host %u", id);
			return 1;
		}
	}
	return 0;
}

static void print_runs(struct xd_json *j, const char *key, const struct xd_run *r, size_t n,
		       bool hex)
{
	char buf[48];

	if (json)
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
		if (json)
			xd_json_str(j, NULL, buf);
		else
			printf(" %s", buf);
	}
	if (json)
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
	if (json) {
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
	if (json) {
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
		return usage_err("host show: unexpected '%s'", argv[1]);
	if (argc == 1) {
		if (parse_id(argv[0], &only))
			return 2;
		if (xd_host_get(m, only, &h)) {
			xd_err("no host %u", only);
			return 1;
		}
	}
	if (json) {
		xd_json_begin(&j, stdout);
		xd_json_arr_open(&j, "hosts");
	}
	for (id = only ? only : 1; id < m->cfg.max_hosts; id++) {
		if (xd_host_get(m, id, &h) == 0 && show_host(m, &j, id, &h))
			rc = 1;
		if (only)
			break;
	}
	if (json) {
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
	if (json) {
		xd_json_begin(&j, stdout);
		if (cs)
			xd_json_str(&j, "since", since);
		xd_json_obj_open(&j, "counters");
	} else {
		/* Totals across reboots: say from when. */
		if (cs)
			printf("totals since %s (state database %s/%s.db)\n", since, ctr_state_dir,
			       ctr_instance);
		printf("%-20s %14s %16s\n", "reason", "packets", "bytes");
	}
	for (uint32_t r = 0; r < XDNAT_R_MAX; r++) {
		struct xdnat_counter c;
		int rc = xd_reason_stats(m, r, &c);

		if (rc) {
			xd_err("cannot read counter %s: %s", reason_names[r], strerror(-rc));
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
		if (json) {
			xd_json_obj_open(&j, reason_names[r]);
			xd_json_u64(&j, "packets", c.packets);
			xd_json_u64(&j, "bytes", c.bytes);
			xd_json_obj_close(&j);
		} else {
			printf("%-20s %14llu %16llu\n", reason_names[r],
			       (unsigned long long)c.packets, (unsigned long long)c.bytes);
		}
	}
	if (json) {
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
	if (json) {
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
		return usage_err("lookup: expected 'port N' or 'spi N'%s", NULL);
	port = !strcmp(argv[0], "port");
	if (!port && strcmp(argv[0], "spi"))
		return usage_err("lookup: unknown object '%s'", argv[0]);
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
		return usage_err("lookup: unexpected '%s'", argv[2]);
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
	if (json) {
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

static int cmd_blocks(struct xd_maps *m, bool ports, int argc, char **argv)
{
	uint32_t id, a, b;
	bool add;

	if (argc != 3)
		return usage_err("%s: expected 'add|del ID A-B'", ports ? "ports" : "spi");
	if (!strcmp(argv[0], "add"))
		add = true;
	else if (!strcmp(argv[0], "del"))
		add = false;
	else
		return usage_err("unknown command '%s'", argv[0]);
	if (parse_id(argv[1], &id))
		return 2;
	if (ports ? parse_ports(argv[2], &a, &b) : parse_spis(argv[2], &a, &b))
		return 2;
	if (ports)
		return (add ? xd_ports_add(m, id, a, b) : xd_ports_del(m, id, a, b)) ? 1 : 0;
	return (add ? xd_spis_add(m, id, a, b) : xd_spis_del(m, id, a, b)) ? 1 : 0;
}

static int write_secret(const char *path, const char *hex)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(hex);

	if (fd < 0) {
		xd_err("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fchmod(fd, 0600) || write(fd, hex, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
		xd_err("cannot write %s: %s", path, strerror(errno));
		close(fd);
		return -EIO;
	}
	return close(fd) ? -errno : 0;
}

static int cmd_rsip(const char *state_dir, const char *instance, int argc, char **argv)
{
	uint8_t secret[RSIP_SECRET_LEN];
	char hex[2 * RSIP_SECRET_LEN + 1];
	const char *file = NULL;
	uint32_t lan = 0;
	struct xd_store *db;
	char err[256];
	int rc;

	if (!strcmp(argv[0], "rsip") && (argc != 2 || strcmp(argv[1], "list")))
		return usage_err("rsip: expected 'list' or 'evict NAME'%s", NULL);
	if (!strcmp(argv[0], "unenroll") && argc != 2)
		return usage_err("unenroll: expected NAME%s", NULL);
	if (!strcmp(argv[0], "enroll")) {
		if (argc < 2 || argc % 2)
			return usage_err("enroll: expected NAME [lan ADDR] [secret-file PATH]%s", NULL);
		for (int i = 2; i < argc; i += 2) {
			if (!strcmp(argv[i], "lan")) {
				if (xd_parse_ipv4(argv[i + 1], &lan)) {
					xd_err("'%s' is not an IPv4 address", argv[i + 1]);
					return 2;
				}
			} else if (!strcmp(argv[i], "secret-file")) {
				file = argv[i + 1];
			} else {
				return usage_err("enroll: unknown argument '%s'", argv[i]);
			}
		}
	}
	if (!strcmp(argv[0], "rsip") && (rc = via_daemon(instance, argc, argv, false)) >= 0)
		return rc;
	if (xd_store_open(state_dir, instance, 0, &db, err, sizeof(err))) {
		xd_err("%s", err);
		return 1;
	}
	if (!strcmp(argv[0], "rsip")) {
		rc = rsip_list(db, json, stdout, rsip_now_ms()) ? 1 : 0;
	} else if (!strcmp(argv[0], "unenroll")) {
		rc = db->ops->unenroll(db, argv[1]) ? 1 : 0;
		if (rc)
			xd_err("%s", xd_store_error(db));
	} else {
		rc = xd_store_enroll_new(db, argv[1], lan, secret) ? 1 : 0;
		if (rc)
			xd_err("cannot enrol %s: %s", argv[1], xd_store_error(db));
		if (!rc) {
			rsip_secret_hex(secret, hex);
			if (file)
				rc = write_secret(file, hex) ? 1 : 0;
			else
				printf("%s\n", hex);
			memset(hex, 0, sizeof(hex));
			memset(secret, 0, sizeof(secret));
		}
	}
	xd_store_close(db);
	return rc;
}

/* Revoke what binds a block before it leaves (the seed's rule); xdnatd
 * signs the next CRL. */
static int evict_release(void *ctx, const char *name, int kind, uint32_t first, uint32_t last,
			 int reason)
{
	struct lca_err e = { { 0 } };
	unsigned n = 0;
	struct xd_store *st = ctx;
	int rc = st->ops->cert_revoke_overlapping(st, kind, first, last, reason,
						  (int64_t)(rsip_now_ms() / 1000), &n, &e);

	if (rc)
		xd_err("cannot revoke the certificates of '%s': %s", name, e.msg);
	else if (n && !json)
		printf("revoked %u certificate%s of %s binding %s %u-%u\n", n, n == 1 ? "" : "s", name,
		       kind == RSIP_KIND_PORTS ? "ports" : "SPIs", first, last);
	return rc;
}

struct cert_show {
	bool found;
};

static int cb_cert_show(void *arg, const struct lca_record *r)
{
	struct cert_show *c = arg;
	const unsigned char *p = r->der;
	X509 *x = d2i_X509(NULL, &p, (long)r->der_len);

	c->found = true;
	if (lca_list_print_one(r, json, stdout, (int64_t)(rsip_now_ms() / 1000)))
		return -EIO;
	if (!json && x)
		PEM_write_X509(stdout, x);
	X509_free(x);
	return 0;
}

/* cert list [HOST] | show SERIAL | revoke SERIAL [REASON] */
static int cmd_cert(const char *state_dir, const char *instance, int argc, char **argv)
{
	struct lca_err e = { { 0 } };
	struct xd_store *db;
	char err[256];
	int rc = 1, reason = LCA_REASON_UNSPECIFIED;

	if (argc < 2 || (!strcmp(argv[1], "list") && argc > 3) ||
	    (!strcmp(argv[1], "show") && argc != 3) ||
	    (!strcmp(argv[1], "revoke") && (argc < 3 || argc > 4)) ||
	    (strcmp(argv[1], "list") && strcmp(argv[1], "show") && strcmp(argv[1], "revoke")))
		return usage_err("cert: expected 'list [HOST]', 'show SERIAL' or 'revoke SERIAL "
				 "[REASON]'%s", NULL);
	if (!strcmp(argv[1], "revoke") && argc == 4 && lca_reason_parse(argv[3], &reason))
		return usage_err("cert revoke: unknown reason '%s'", argv[3]);
	if (!strcmp(argv[1], "revoke") && (rc = via_daemon(instance, argc, argv, true)) >= 0)
		return rc;
	rc = 1;
	if (xd_store_open(state_dir, instance, 0, &db, err, sizeof(err))) {
		xd_err("%s", err);
		return 1;
	}
	if (db->ops->ca_init(db, &e)) {
		xd_err("%s", e.msg);
		goto out;
	}
	if (!strcmp(argv[1], "list")) {
		rc = db->ops->cert_list_print(db, argc == 3 ? argv[2] : NULL, json, stdout,
					      (int64_t)(rsip_now_ms() / 1000), &e) ? 1 : 0;
	} else if (!strcmp(argv[1], "show")) {
		struct cert_show c = { 0 };
		int r = db->ops->cert_get(db, argv[2], cb_cert_show, &c, &e);

		if (r == -ENOENT || (!r && !c.found))
			xd_err("no certificate with serial %s", argv[2]);
		rc = r || !c.found ? 1 : 0;
	} else {
		rc = db->ops->cert_revoke(db, argv[2], reason, (int64_t)(rsip_now_ms() / 1000), &e);
		if (rc == -EALREADY || rc == -ENOENT || rc)
			xd_err("%s", e.msg);
		else if (json)
			printf("{\"serial\": \"%s\", \"revoked\": true, \"reason\": \"%s\"}\n", argv[2],
			       lca_reason_name(reason));
		else
			printf("revoked %s (%s)\n", argv[2], lca_reason_name(reason));
		rc = rc ? 1 : 0;
	}
	if (rc && e.msg[0] && !strcmp(argv[1], "list"))
		xd_err("%s", e.msg);
out:
	xd_store_close(db);
	return rc;
}

/* rsip evict NAME: the operator takes all of a host's blocks at once. */
static int cmd_evict(const char *base, const char *state_dir, const char *instance, int argc,
		     char **argv)
{
	struct rsip_freed fr[64];
	struct rsip_server s;
	struct rsip_backend be;
	struct rsip_cert_ops certs = { .release = evict_release };
	struct xd_store *st;
	struct xd_maps m;
	struct xd_json j;
	unsigned n = 0;
	char err[256];
	int rc;

	if (argc != 3)
		return usage_err("rsip evict: expected NAME%s", NULL);
	if ((rc = via_daemon(instance, argc, argv, true)) >= 0)
		return rc;
	if (xd_store_open(state_dir, instance, 0, &st, err, sizeof(err))) {
		xd_err("%s", err);
		return 1;
	}
	if (xd_maps_open(base, instance, &m)) {
		xd_err("evict needs the maps of the running router: nothing changed");
		xd_store_close(st);
		return 1;
	}
	{
		struct lca_err e = { { 0 } };

		if (st->ops->ca_init(st, &e)) {
			xd_err("%s", e.msg);
			xd_maps_close(&m);
			xd_store_close(st);
			return 1;
		}
	}
	rsip_backend_maps(&be, &m);
	certs.ctx = st;
	rsip_server_attach(&s, st, &be, &certs);
	rc = rsip_server_evict(&s, argv[2], fr, sizeof(fr) / sizeof(fr[0]), &n);
	if (rc == -ENOENT)
		xd_err("no enrolled host '%s'", argv[2]);
	else if (rc)
		xd_err("cannot evict '%s': nothing changed", argv[2]);
	if (!rc && json) {
		xd_json_begin(&j, stdout);
		xd_json_str(&j, "host", argv[2]);
		xd_json_u64(&j, "quarantine_s", s.cfg.quarantine);
		xd_json_u64(&j, "freed_count", n);
		xd_json_arr_open(&j, "freed");
		for (unsigned i = 0; i < n && i < sizeof(fr) / sizeof(fr[0]); i++) {
			xd_json_obj_open(&j, NULL);
			xd_json_u64(&j, "bind_id", fr[i].bind_id);
			xd_json_str(&j, "kind", fr[i].kind == RSIP_KIND_SPI ? "spi" : "ports");
			xd_json_u64(&j, "first", fr[i].first);
			xd_json_u64(&j, "last", fr[i].last);
			xd_json_obj_close(&j);
		}
		xd_json_arr_close(&j);
		xd_json_end(&j);
	} else if (!rc) {
		printf("evicted %s: %u binding%s out of the maps, quarantined %us\n", argv[2], n,
		       n == 1 ? "" : "s", s.cfg.quarantine);
		for (unsigned i = 0; i < n && i < sizeof(fr) / sizeof(fr[0]); i++)
			printf(fr[i].kind == RSIP_KIND_SPI ? "  bind %u spi 0x%x-0x%x\n" : "  bind %u ports %u-%u\n",
			       fr[i].bind_id, fr[i].first, fr[i].last);
	}
	rsip_server_detach(&s);
	xd_maps_close(&m);
	xd_store_close(st);
	return rc ? 1 : 0;
}

/* ike list | ike default PORT HOST|none [global ADDR] */
static int cmd_ike(struct xd_maps *m, int argc, char **argv)
{
	struct xd_shared sh[XDNAT_MAX_GADDRS * XDNAT_MAX_SHARED_PORTS * 2];
	char a[INET_ADDRSTRLEN];
	uint32_t port, host = 0, gidx = 0;
	size_t n = 0;
	struct xd_json j;

	if (argc == 1 && !strcmp(argv[0], "list")) {
		if (xd_shared_list(m, sh, sizeof(sh) / sizeof(sh[0]), &n))
			return 1;
		if (json) {
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
	if (argc < 3 || strcmp(argv[0], "default"))
		return usage_err("ike: expected 'list' or 'default PORT HOST|none [global ADDR]'%s",
				 NULL);
	if (xd_parse_u32(argv[1], 1, 65535, &port)) {
		xd_err("'%s' is not a port", argv[1]);
		return 2;
	}
	if (strcmp(argv[2], "none") && parse_id(argv[2], &host))
		return 2;
	if (argc == 5 && !strcmp(argv[3], "global")) {
		uint32_t g;
		int gi;

		if (xd_parse_ipv4(argv[4], &g) || (gi = xd_gaddr_index(m, g)) < 0) {
			xd_err("%s is not one of this router's global addresses", argv[4]);
			return 1;
		}
		gidx = (uint32_t)gi;
	} else if (argc != 3) {
		return usage_err("ike default: unexpected '%s'", argv[3]);
	}
	return xd_shared_default(m, gidx, (uint16_t)port, host) ? 1 : 0;
}

/* One map command (OBJECT COMMAND ARGS); argv[0] is the object. */
static int run_command(struct xd_maps *m, int argc, char **argv)
{
	const char *obj = argv[0], *cmd = argc > 1 ? argv[1] : NULL;
	int rc;

	if (!strcmp(obj, "host") && (!cmd || (strcmp(cmd, "add") && strcmp(cmd, "del") &&
					      strcmp(cmd, "show") && strcmp(cmd, "list"))))
		return usage_err("host: expected add, del or show%s", NULL);
	if (!strcmp(obj, "host") && !strcmp(cmd, "add")) {
		rc = cmd_host_add(m, argc - 2, argv + 2);
	} else if (!strcmp(obj, "host") && !strcmp(cmd, "del")) {
		uint32_t id;

		if (argc != 3)
			rc = usage_err("host del: expected ID%s", NULL);
		else
			rc = parse_id(argv[2], &id) ? 2 : xd_host_del(m, id) ? 1 : 0;
	} else if (!strcmp(obj, "host")) {
		rc = cmd_host_show(m, argc - 2, argv + 2);
	} else if (!strcmp(obj, "ports") || !strcmp(obj, "spi")) {
		rc = cmd_blocks(m, !strcmp(obj, "ports"), argc - 1, argv + 1);
	} else if (!strcmp(obj, "stats")) {
		rc = argc == 1 ? cmd_stats(m) : usage_err("stats: unexpected '%s'", argv[1]);
	} else if (!strcmp(obj, "config")) {
		rc = argc == 1 ? cmd_config(m) : usage_err("config: unexpected '%s'", argv[1]);
	} else if (!strcmp(obj, "ike")) {
		rc = cmd_ike(m, argc - 1, argv + 1);
	} else {
		rc = cmd_lookup(m, argc - 1, argv + 1);
	}
	return rc;
}

/*
 * -b FILE: one command per line ('#' starts a comment), against maps opened
 * once, so thousands of changes per second are possible.  Stops at the first
 * failing line, naming it; earlier lines stay applied.
 */
static int run_batch(struct xd_maps *m, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0, done = 0;
	int rc = 0;

	if (!f) {
		xd_err("cannot open %s: %s", path, strerror(errno));
		return 1;
	}
	while (getline(&line, &cap, f) > 0) {
		char *args[64], *save = NULL, *tok;
		int n = 0;

		lineno++;
		line[strcspn(line, "#")] = '\0';
		for (tok = strtok_r(line, " \t\r\n", &save); tok && n < 64;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			args[n++] = tok;
		if (!n)
			continue;
		if (tok) {
			xd_err("%s:%u: too many words", path, lineno);
			rc = 2;
			break;
		}
		if (strcmp(args[0], "host") && strcmp(args[0], "ports") && strcmp(args[0], "spi") &&
		    strcmp(args[0], "stats") && strcmp(args[0], "config") && strcmp(args[0], "lookup") &&
		    strcmp(args[0], "ike")) {
			xd_err("%s:%u: '%s' cannot be used in a batch", path, lineno, args[0]);
			rc = 2;
			break;
		}
		rc = run_command(m, n, args);
		if (rc) {
			xd_err("%s:%u: failed; %u earlier command%s applied, the rest not run",
			       path, lineno, done, done == 1 ? "" : "s");
			break;
		}
		done++;
	}
	if (ferror(f) && !rc) {
		xd_err("reading %s: %s", path, strerror(errno));
		rc = 1;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Program id now behind the instance's WAN or LAN hook: the pinned XDP
 * link's program, or the pinned tc program.  0 if none. */
static uint32_t hook_prog_id(const char *pin_dir, const char *side)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/link_%s", pin_dir, side);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);
		uint32_t id = bpf_obj_get_info_by_fd(fd, &li, &len) ? 0 : li.prog_id;

		close(fd);
		return id;
	}
	snprintf(path, sizeof(path), "%s/prog_%s", pin_dir, side);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);
		uint32_t id = bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;

		close(fd);
		return id;
	}
	return 0;
}

/*
 * reload-programs: ask the running xdnatd (SIGUSR2) to re-execute its
 * binary, whose programs replace the running ones through the pinned links;
 * wait until both hooks run new programs.
 */
static int cmd_reload(const char *base, const char *instance)
{
	char lock[300], pin_dir[256], buf[64], comm[64] = "";
	uint32_t old_wan, old_lan, wan = 0, lan = 0;
	long pid;
	int fd, i;
	ssize_t n;

	if (xd_pin_dir(base, instance, pin_dir, sizeof(pin_dir)))
		return 1;
	snprintf(lock, sizeof(lock), "/run/xdnat/%s.lock", instance);
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || (buf[n] = '\0', (pid = strtol(buf, NULL, 10)) <= 0)) {
		xd_err("no running xdnatd for instance '%s' (%s)", instance, lock);
		return 1;
	}
	snprintf(lock, sizeof(lock), "/proc/%ld/comm", pid);
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	comm[n > 0 ? n : 0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "xdnatd")) {
		xd_err("instance '%s': pid %ld is not a running xdnatd", instance, pid);
		return 1;
	}
	old_wan = hook_prog_id(pin_dir, "wan");
	old_lan = hook_prog_id(pin_dir, "lan"); /* 0 in one-arm mode: one hook */
	if (!old_wan) {
		xd_err("instance '%s' has no pinned link or program in %s", instance, pin_dir);
		return 1;
	}
	if (kill((pid_t)pid, SIGUSR2)) {
		xd_err("cannot signal xdnatd (pid %ld): %s", pid, strerror(errno));
		return 1;
	}
	for (i = 0; i < 200; i++) { /* 20 s */
		wan = hook_prog_id(pin_dir, "wan");
		lan = hook_prog_id(pin_dir, "lan");
		if (wan && wan != old_wan && (!old_lan || (lan && lan != old_lan)))
			break;
		usleep(100 * 1000);
	}
	if (!wan || wan == old_wan || (old_lan && (!lan || lan == old_lan))) {
		xd_err("xdnatd did not replace its programs within 20 s (WAN %u -> %u, LAN %u -> %u); "
		       "see its log", old_wan, wan, old_lan, lan);
		return 1;
	}
	if (json) {
		struct xd_json j;

		xd_json_begin(&j, stdout);
		xd_json_u64(&j, "wan_old", old_wan);
		xd_json_u64(&j, "wan_new", wan);
		xd_json_u64(&j, "lan_old", old_lan);
		xd_json_u64(&j, "lan_new", lan);
		xd_json_end(&j);
	} else {
		printf("programs replaced: WAN %u -> %u, LAN %u -> %u\n", old_wan, wan, old_lan, lan);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct xo_state st = { .prog = &ctl_prog };
	const char *instance = XDNAT_DEFAULT_INSTANCE, *base = XDNAT_PIN_BASE;
	const char *state_dir = XDNAT_STATE_DIR, *batch = NULL;
	struct xd_maps m;
	const char *obj;
	int c, rc;

	xd_progname = "xdnatctl";
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		switch (c) {
		case 'j': json = true; break;
		case 'i': instance = optarg; break;
		case 'p': base = optarg; break;
		case 'b': batch = optarg; break;
		case 's': state_dir = optarg; break;
		case 'D': direct = true; break;
		case 'h': usage(stdout); return 0;
		case XO_ID_VERSION: xo_version(&ctl_prog); return 0;
		default: return 2; /* xo_getopt said why */
		}
	}
	argc -= optind;
	argv += optind;
	ctr_state_dir = state_dir;
	ctr_instance = instance;
	if (batch) {
		if (argc)
			return usage_err("--batch: unexpected '%s' (commands come from the file)",
					 argv[0]);
		if (xd_maps_open(base, instance, &m))
			return 1;
		rc = run_batch(&m, batch);
		xd_maps_close(&m);
		return rc;
	}
	if (argc < 1)
		return usage_err("missing OBJECT%s", NULL);
	obj = argv[0];
	if (strcmp(obj, "host") && strcmp(obj, "ports") && strcmp(obj, "spi") &&
	    strcmp(obj, "stats") && strcmp(obj, "config") && strcmp(obj, "lookup") &&
	    strcmp(obj, "ike") && strcmp(obj, "help") && strcmp(obj, "enroll") && strcmp(obj, "unenroll") &&
	    strcmp(obj, "rsip") && strcmp(obj, "reload-programs") && strcmp(obj, "cert") &&
	    strcmp(obj, "daemon"))
		return usage_err("unknown object '%s'", obj);
	if (!strcmp(obj, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(obj, "cert"))
		return cmd_cert(state_dir, instance, argc, argv);
	if (!strcmp(obj, "daemon")) {
		char path[128];

		if (argc != 2 || (strcmp(argv[1], "stats") && strcmp(argv[1], "ping")))
			return usage_err("daemon: expected 'stats' or 'ping'%s", NULL);
		direct = false;
		rc = via_daemon(instance, argc - 1, argv + 1, false);
		if (rc < 0) {
			ctl_sock_path(instance, path, sizeof(path));
			xd_err("no xdnatd answers on %s (it opens it with --rsip)", path);
			rc = 1;
		}
		return rc;
	}
	if (!strcmp(obj, "rsip") && argc > 1 && !strcmp(argv[1], "evict"))
		return cmd_evict(base, state_dir, instance, argc, argv);
	if (!strcmp(obj, "enroll") || !strcmp(obj, "unenroll") || !strcmp(obj, "rsip"))
		return cmd_rsip(state_dir, instance, argc, argv);
	if (!strcmp(obj, "reload-programs"))
		return argc == 1 ? cmd_reload(base, instance) :
				   usage_err("reload-programs: unexpected '%s'", argv[1]);
	if (xd_maps_open(base, instance, &m))
		return 1;
	rc = run_command(&m, argc, argv);
	xd_maps_close(&m);
	return rc;
}
