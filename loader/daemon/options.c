// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* xdnatd's command line: --help, the options and their checks. */
#include "xdnatd.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xdnatd --wan IFNAME --lan IFNAME --global ADDR[,ADDR...] [OPTIONS]\n"
"\n"
"Attach the xdnat router datapath: packets from the WAN to a global address\n"
"are steered by their outermost ESP/AH SPI, TCP/UDP destination port or ICMP\n"
"echo identifier to the LAN host that owns it and tunnelled to it (IP-in-IP)\n"
"unmodified; IP-in-IP from registered hosts is checked (source address and\n"
"port must be the host's) and forwarded to the WAN.  Hosts and blocks are\n"
"managed with xdnatctl.  Runs in the foreground until SIGTERM or SIGINT.\n"
"\n"
"Required:\n"
"  -w, --wan IFNAME         interface towards the Internet\n"
"  -l, --lan IFNAME         interface towards the hosts; the same as --wan\n"
"                           for one-arm mode (one NIC, e.g. a cloud VM: the\n"
"                           LAN address must then differ from the globals)\n"
"  -g, --global ADDR[,...]  shared global IPv4 address(es), up to %d; the\n"
"                           order gives the global address index (0, 1, ...)\n"
"\n"
"Options:\n"
"  -a, --lan-addr ADDR      router's LAN address, the tunnel endpoint\n"
"                           (default: the first IPv4 address of --lan)\n"
"  -m, --mode auto|xdp|tc   attach with native XDP, tc (cls_bpf), or XDP\n"
"                           falling back to tc with a warning (default: auto)\n"
"  -u, --unknown pass|drop  packets to an unallocated port or SPI, later\n"
"                           fragments, unknown protocols: hand to the\n"
"                           router's own stack, or drop (default: pass)\n"
"  -i, --instance NAME      instance name; pins go to PIN_BASE/NAME\n"
"                           (default: %s)\n"
"  -p, --pin-base DIR       bpffs directory for pins (default: %s)\n"
"  -H, --max-hosts N        host table size, ids 1..N-1 (default: %d)\n"
"  -b, --spi-block-bits N   SPIs per block = 2^N, %d..%d (default: %d);\n"
"                           the SPI table has 2^(32-N) entries\n"
"  -k, --keep-maps          on exit, leave the maps pinned (hosts and\n"
"                           blocks survive a restart); programs are detached\n"
"  -S, --no-sysctl          do not set net.ipv4.ip_forward=1 and\n"
"                           accept_local=1 on both interfaces (see README)\n"
"  -N, --no-neigh           do not keep hosts' LAN neighbours resolved\n"
"                           (ip neigh ... managed)\n"
"\n"
"RSIP control plane (RFC 3103/3104; see docs/CONTROL-PLANE.md):\n"
"  -R, --rsip               serve RSIP on the LAN side: hosts enrolled with\n"
"                           'xdnatctl enroll' obtain port and SPI blocks\n"
"      --rsip-port N        TCP port on the LAN address (default: %d)\n"
"      --state-dir DIR      state database DIR/INSTANCE.db (default: %s);\n"
"                           with --rsip or --state-dir, the counters' totals\n"
"                           are kept there across reboots\n"
"      --counters-interval S  save the counters' totals every S seconds\n"
"                           (default: %d; also on start and at exit)\n"
"      --port-range A-B     ports handed out (default: 1024-65535)\n"
"      --reserve-ports L    comma-separated ports never handed out (the\n"
"                           router's own services; the RSIP port always is)\n"
"      --port-block N       ports per request that names no number, 1-255\n"
"                           (default: 250)\n"
"      --max-ports N        ports per host at most (default: 4096)\n"
"      --max-spi-blocks N   SPI blocks per host at most (default: 4)\n"
"      --lease S            lease granted when none is asked (default: 600)\n"
"      --max-lease S        longest lease granted (default: 3600)\n"
"      --quarantine S       a freed or expired block is handed out again\n"
"                           only after S seconds (default: 120)\n"
"      --reg-lease S        an idle registration without bindings is\n"
"                           forgotten after S seconds (default: 600)\n"
"      --rsip-max-clients N concurrent connections (default: 256)\n"
"      --rsip-idle S        close connections idle for S seconds (default: 900)\n"
"\n"
"Local CA (docs/LCA.md; needs --rsip).  Hosts that send a CSR with their\n"
"RSIP requests get a certificate for their identity, ports and SPIs, valid\n"
"for the lease; a block is never freed while a valid certificate binds it\n"
"(FREE, lease expiry, DE-REGISTER and eviction revoke first).\n"
"      --ca-key FILE        the LCA's private key (PEM); with --ca-cert\n"
"                           turns the CA on (xdnat-ca init-lca makes both)\n"
"      --ca-cert FILE       the LCA certificate (PEM, name-constrained)\n"
"      --ca-chain FILE      the certificates above it, up to the root (PEM)\n"
"      --crl-url URL        CRL distribution point written into every\n"
"                           certificate (default: http://G:PORT/crl/lca.crl,\n"
"                           G the first global address, PORT --crl-listen's)\n"
"      --crl-period S       CRL nextUpdate - thisUpdate (default: 86400); a new\n"
"                           CRL is made after every revocation and half-way\n"
"      --crl-listen ADDR:PORT\n"
"                           serve GET /crl/lca.crl here (default: G:8080; the\n"
"                           port is reserved, and reachable from the WAN with\n"
"                           --unknown pass)\n"
"      --notify-port N      revocation notices: when a host's certificate is\n"
"                           revoked, every remote that sent it ESP/AH (the\n"
"                           datapath records them) gets an LCA-signed notice\n"
"                           by UDP to port N, from G:N (N is reserved), resent\n"
"                           with back-off until acknowledged (xdnat-peer);\n"
"                           0: off (default: 4556)\n"
"\n"
"      --router-ports PORT|A-B[,...]|none\n"
"                           the router's own services on the global\n"
"                           addresses (e.g. 22,8080): never handed to a host,\n"
"                           passed to this router's stack even with\n"
"                           --unknown drop, so they stay reachable under a\n"
"                           flood of junk (default: none)\n"
"      --shared-ike-ports on|off|PORT[,PORT...]\n"
"                           UDP ports no host owns, shared by every host's\n"
"                           IKE daemon: IKE and ESP-in-UDP are steered by SPI\n"
"                           (on = 500,4500; 500 carries plain IKE, the others\n"
"                           RFC 3948 framing; see docs/SHARED-IKE.md;\n"
"                           default: off)\n"
"      --nexthop-cache MS   reuse a FIB lookup result (next-hop MACs, path\n"
"                           MTU) for MS milliseconds: neighbour and route\n"
"                           changes take up to MS to apply; 0 looks up every\n"
"                           packet (default: %u, at most 60000)\n"
"  -M, --metrics ADDR:PORT|off\n"
"                           serve Prometheus text metrics at /metrics\n"
"                           (default: " METRICS_DEFAULT ", loopback only)\n"
"  -c, --config FILE        read options from FILE (INI, see xdnatd.conf(5));\n"
"                           command-line options override it\n"
"      --help-config        the reference of FILE's sections and keys\n"
"      --check-config       validate the options and FILE completely (also\n"
"                           that the interfaces exist), change nothing, exit\n"
"  -v, --verbose            log every system change\n"
"  -h, --help               this help\n"
"\n"
"Signals: SIGTERM/SIGINT detach and exit.  SIGHUP re-reads --config; if it is\n"
"valid and keeps the interfaces, global addresses, instance, table sizes and\n"
"state directory, xdnatd applies it the way reload-programs does, without\n"
"losing packets; otherwise it logs why and keeps running unchanged.\n"
"SIGUSR2 (xdnatctl reload-programs)\n"
"re-executes the xdnatd binary, whose new programs replace the running ones\n"
"atomically through the pinned BPF links while the pinned maps keep every\n"
"host and block: no packet is lost.\n"
"\n"
"Exit status: 0 after a clean stop, 1 on error (nothing is left attached).\n"
"A daemon killed with SIGKILL leaves the programs attached and forwarding;\n"
"starting it again with the same instance takes them over.\n",
		XDNAT_MAX_GADDRS, XDNAT_DEFAULT_INSTANCE, XDNAT_PIN_BASE,
		XDNAT_DEFAULT_MAX_HOSTS, XDNAT_MIN_SPI_BITS, XDNAT_MAX_SPI_BITS,
		XDNAT_DEFAULT_SPI_BITS, RSIP_DEFAULT_PORT, XDNAT_STATE_DIR, XD_CTR_DEFAULT_INTERVAL,
		XDNAT_DEFAULT_NH_CACHE_MS);
}

static int parse_gaddrs(struct opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		uint32_t a;

		if (xd_parse_ipv4(tok, &a)) {
			xd_err("--global: '%s' is not an IPv4 address", tok);
			rc = -EINVAL;
			break;
		}
		if (a == 0 || a == 0xffffffffu || (ntohl(a) >> 28) == 0xe) {
			xd_err("--global: %s cannot be a global address", tok);
			rc = -EINVAL;
			break;
		}
		for (uint32_t i = 0; i < o->n_gaddrs; i++) {
			if (o->gaddrs[i] == a) {
				xd_err("--global: %s given twice", tok);
				rc = -EINVAL;
				goto out;
			}
		}
		if (o->n_gaddrs == XDNAT_MAX_GADDRS) {
			xd_err("--global: at most %d global addresses", XDNAT_MAX_GADDRS);
			rc = -E2BIG;
			break;
		}
		o->gaddrs[o->n_gaddrs++] = a;
	}
out:
	free(copy);
	return rc;
}

enum {
	OPT_RSIP_PORT = 256, OPT_STATE_DIR, OPT_PORT_RANGE, OPT_RESERVE, OPT_PORT_BLOCK,
	OPT_MAX_PORTS, OPT_MAX_SPI, OPT_LEASE, OPT_MAX_LEASE, OPT_QUARANTINE, OPT_REG_LEASE,
	OPT_MAX_CLIENTS, OPT_IDLE, OPT_NH_CACHE, OPT_CHECK_CONFIG, OPT_HELP_CONFIG,
	OPT_CA_KEY = 0x300, OPT_CA_CERT, OPT_CA_CHAIN, OPT_CRL_URL, OPT_CRL_PERIOD, OPT_CRL_LISTEN,
	OPT_NOTIFY_PORT,
	OPT_SHARED_IKE, OPT_ROUTER_PORTS, OPT_CTR_INTERVAL,
};
#define OPTSTRING "w:l:g:a:m:u:i:p:H:b:kSNvhRM:c:"


/* Parse a number option into @field or fail with the option's name. */
#define NUM(field, lo, hi) do { \
		uint32_t v_; \
		if (xd_parse_u32(optarg, (lo), (hi), &v_)) { \
			xd_err("--%s: '%s' is not a number from %u to %u", \
			       lopts[option_index_of(lopts, c)].name, optarg, (unsigned)(lo), (unsigned)(hi)); \
			return -EINVAL; \
		} \
		(field) = v_; \
	} while (0)

static int option_index_of(const struct option *l, int val)
{
	int i;

	for (i = 0; l[i].name; i++)
		if (l[i].val == val)
			return i;
	return 0;
}

static int parse_reserved(struct rsip_config *rc, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t p;

		if (xd_parse_u32(tok, 1, 65535, &p)) {
			xd_err("--reserve-ports: '%s' is not a port", tok);
			ret = -EINVAL;
			break;
		}
		if (rc->n_reserved == RSIP_MAX_RESERVED) {
			xd_err("--reserve-ports: at most %d ports", RSIP_MAX_RESERVED - 1);
			ret = -E2BIG;
			break;
		}
		rc->reserved[rc->n_reserved++] = (uint16_t)p;
	}
	free(copy);
	return ret;
}

/* --router-ports PORT|A-B[,...] or "none". */
static int parse_router_ports(struct opts *o, const char *arg)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	o->n_router_ports = 0;
	if (!strcmp(arg, "none"))
		return 0;
	copy = strdup(arg);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct xd_run r;

		if (xd_parse_range(tok, 1, 65535, &r.first, &r.last)) {
			xd_err("--router-ports: '%s' is not a port or range A-B within 1-65535", tok);
			rc = -EINVAL;
			break;
		}
		if (o->n_router_ports == sizeof(o->router_ports) / sizeof(o->router_ports[0])) {
			xd_err("--router-ports: at most %zu entries",
			       sizeof(o->router_ports) / sizeof(o->router_ports[0]));
			rc = -E2BIG;
			break;
		}
		o->router_ports[o->n_router_ports++] = r;
	}
	free(copy);
	return rc;
}

/* Add @port to --router-ports unless a listed range covers it. */
static void add_router_port(struct opts *o, uint16_t port)
{
	for (unsigned i = 0; i < o->n_router_ports; i++)
		if (port >= o->router_ports[i].first && port <= o->router_ports[i].last)
			return;
	if (o->n_router_ports < sizeof(o->router_ports) / sizeof(o->router_ports[0]))
		o->router_ports[o->n_router_ports++] = (struct xd_run){ port, port };
	else
		xd_warn("--router-ports is full: port %u is not marked as the router's", port);
}

/* --shared-ike-ports on|off|PORT[,PORT...] (on: 500,4500). */
static int parse_shared_ike(struct opts *o, const char *arg)
{
	char *copy, *save = NULL, *tok;
	int ret = 0;

	o->n_shared_ike = 0;
	if (!strcmp(arg, "off") || !strcmp(arg, "no"))
		return 0;
	if (!strcmp(arg, "on") || !strcmp(arg, "yes")) {
		o->shared_ike[o->n_shared_ike++] = XDNAT_IKE_PORT;
		o->shared_ike[o->n_shared_ike++] = XDNAT_IKE_NATT_PORT;
		return 0;
	}
	if (!(copy = strdup(arg)))
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		uint32_t p;

		if (xd_parse_u32(tok, 1, 65535, &p)) {
			xd_err("--shared-ike-ports: '%s' is not a port (or on, off)", tok);
			ret = -EINVAL;
			break;
		}
		for (unsigned i = 0; i < o->n_shared_ike; i++)
			if (o->shared_ike[i] == p) {
				xd_err("--shared-ike-ports: %u given twice", p);
				ret = -EINVAL;
				goto out;
			}
		if (o->n_shared_ike == XDNAT_MAX_SHARED_PORTS) {
			xd_err("--shared-ike-ports: at most %d ports", XDNAT_MAX_SHARED_PORTS);
			ret = -E2BIG;
			break;
		}
		o->shared_ike[o->n_shared_ike++] = (uint16_t)p;
	}
out:
	free(copy);
	return ret;
}

const struct option xdd_long_opts[] = {
	{ "wan", required_argument, NULL, 'w' },
	{ "lan", required_argument, NULL, 'l' },
	{ "global", required_argument, NULL, 'g' },
	{ "lan-addr", required_argument, NULL, 'a' },
	{ "mode", required_argument, NULL, 'm' },
	{ "unknown", required_argument, NULL, 'u' },
	{ "instance", required_argument, NULL, 'i' },
	{ "pin-base", required_argument, NULL, 'p' },
	{ "max-hosts", required_argument, NULL, 'H' },
	{ "spi-block-bits", required_argument, NULL, 'b' },
	{ "keep-maps", no_argument, NULL, 'k' },
	{ "no-sysctl", no_argument, NULL, 'S' },
	{ "no-neigh", no_argument, NULL, 'N' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "config", required_argument, NULL, 'c' },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help-config", no_argument, NULL, OPT_HELP_CONFIG },
	{ "rsip", no_argument, NULL, 'R' },
	{ "rsip-port", required_argument, NULL, OPT_RSIP_PORT },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "counters-interval", required_argument, NULL, OPT_CTR_INTERVAL },
	{ "port-range", required_argument, NULL, OPT_PORT_RANGE },
	{ "reserve-ports", required_argument, NULL, OPT_RESERVE },
	{ "port-block", required_argument, NULL, OPT_PORT_BLOCK },
	{ "max-ports", required_argument, NULL, OPT_MAX_PORTS },
	{ "max-spi-blocks", required_argument, NULL, OPT_MAX_SPI },
	{ "lease", required_argument, NULL, OPT_LEASE },
	{ "max-lease", required_argument, NULL, OPT_MAX_LEASE },
	{ "quarantine", required_argument, NULL, OPT_QUARANTINE },
	{ "reg-lease", required_argument, NULL, OPT_REG_LEASE },
	{ "rsip-max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "rsip-idle", required_argument, NULL, OPT_IDLE },
	{ "metrics", required_argument, NULL, 'M' },
	{ "nexthop-cache", required_argument, NULL, OPT_NH_CACHE },
	{ "ca-key", required_argument, NULL, OPT_CA_KEY },
	{ "ca-cert", required_argument, NULL, OPT_CA_CERT },
	{ "ca-chain", required_argument, NULL, OPT_CA_CHAIN },
	{ "crl-url", required_argument, NULL, OPT_CRL_URL },
	{ "crl-period", required_argument, NULL, OPT_CRL_PERIOD },
	{ "crl-listen", required_argument, NULL, OPT_CRL_LISTEN },
	{ "notify-port", required_argument, NULL, OPT_NOTIFY_PORT },
	{ "shared-ike-ports", required_argument, NULL, OPT_SHARED_IKE },
	{ "router-ports", required_argument, NULL, OPT_ROUTER_PORTS },
	{ 0 }
};
#define lopts xdd_long_opts

/* Apply one option (from the command line or the configuration file). */
int xdd_apply_opt(struct opts *o, int c, char *optarg)
{
	struct rsip_config *rc = &o->rcfg;

	switch (c) {
	case 'R': o->rsip = true; break;
	case OPT_RSIP_PORT: NUM(o->rsip_port, 1, 65535); break;
	case OPT_STATE_DIR: rc->state_dir = optarg; o->state_dir_set = true; break;
	case OPT_CTR_INTERVAL: NUM(o->counters_interval, 1, 86400); break;
	case OPT_PORT_RANGE:
		if (xd_parse_range(optarg, 1, 65535, &rc->port_min, &rc->port_max)) {
			xd_err("--port-range: '%s' is not a range A-B within 1-65535", optarg);
			return -EINVAL;
		}
		break;
	case OPT_RESERVE:
		if (parse_reserved(rc, optarg))
			return -EINVAL;
		break;
	case OPT_PORT_BLOCK: NUM(rc->default_ports, 1, 255); break;
	case OPT_MAX_PORTS: NUM(rc->max_ports_per_host, 1, 65535); break;
	case OPT_MAX_SPI: NUM(rc->max_spi_blocks_per_host, 1, 1u << 24); break;
	case OPT_LEASE: NUM(rc->lease_default, 1, 0x7fffffff); break;
	case OPT_MAX_LEASE: NUM(rc->lease_max, 1, 0x7fffffff); break;
	case OPT_QUARANTINE: NUM(rc->quarantine, 0, 0x7fffffff); break;
	case OPT_REG_LEASE: NUM(rc->reg_lease, 1, 0x7fffffff); break;
	case OPT_MAX_CLIENTS: NUM(o->rsip_max_clients, 1, 65536); break;
	case OPT_IDLE: NUM(o->rsip_idle, 1, 0x7fffffff); break;
	case OPT_NH_CACHE: NUM(o->nh_cache_ms, 0, 60000); break;
	case OPT_CA_KEY: o->ca_key = optarg; break;
	case OPT_CA_CERT: o->ca_cert = optarg; break;
	case OPT_CA_CHAIN: o->ca_chain = optarg; break;
	case OPT_CRL_URL:
		if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) {
			xd_err("--crl-url: '%s' is not an http:// or https:// URL", optarg);
			return -EINVAL;
		}
		o->crl_url = optarg;
		break;
	case OPT_CRL_PERIOD: NUM(o->crl_period, 60, 366 * 86400); break;
	case OPT_CRL_LISTEN:
		if (xd_parse_listen(optarg, &o->crl_addr, &o->crl_port) || !o->crl_port) {
			xd_err("--crl-listen: '%s' is not ADDR:PORT (IPv4, port 1-65535)", optarg);
			return -EINVAL;
		}
		o->crl_listen_set = true;
		break;
	case OPT_NOTIFY_PORT:
		NUM(o->notify_port, 0, 65535);
		o->notify_set = true;
		break;
	case OPT_ROUTER_PORTS:
		if (parse_router_ports(o, optarg))
			return -EINVAL;
		break;
	case OPT_SHARED_IKE:
		if (parse_shared_ike(o, optarg))
			return -EINVAL;
		break;
	case 'M':
		o->metrics_explicit = true;
		if (!strcmp(optarg, "off")) {
			o->metrics_port = 0;
		} else if (xd_parse_listen(optarg, &o->metrics_addr, &o->metrics_port) ||
			   !o->metrics_port) {
			xd_err("--metrics: '%s' is not ADDR:PORT (IPv4, port 1-65535) or 'off'",
			       optarg);
			return -EINVAL;
		}
		break;
	case 'w': o->wan = optarg; break;
	case 'l': o->lan = optarg; break;
	case 'g':
		/* The command line replaces the configuration file's list. */
		if (o->gaddrs_from_config && !o->in_config)
			o->n_gaddrs = 0;
		o->gaddrs_from_config = o->in_config;
		if (parse_gaddrs(o, optarg))
			return -EINVAL;
		break;
	case 'a':
		if (xd_parse_ipv4(optarg, &o->lan_addr)) {
			xd_err("--lan-addr: '%s' is not an IPv4 address", optarg);
			return -EINVAL;
		}
		o->lan_addr_set = true;
		break;
	case 'm':
		if (!strcmp(optarg, "auto"))
			o->mode = MODE_AUTO;
		else if (!strcmp(optarg, "xdp"))
			o->mode = MODE_XDP;
		else if (!strcmp(optarg, "tc"))
			o->mode = MODE_TC;
		else {
			xd_err("--mode: '%s' is not one of auto, xdp, tc", optarg);
			return -EINVAL;
		}
		break;
	case 'u':
		if (!strcmp(optarg, "pass"))
			o->unknown_drop = false;
		else if (!strcmp(optarg, "drop"))
			o->unknown_drop = true;
		else {
			xd_err("--unknown: '%s' is not one of pass, drop", optarg);
			return -EINVAL;
		}
		break;
	case 'i': o->instance = optarg; break;
	case 'p': o->pin_base = optarg; break;
	case 'H':
		if (xd_parse_u32(optarg, 2, XDNAT_LIMIT_MAX_HOSTS, &o->max_hosts)) {
			xd_err("--max-hosts: '%s' is not a number from 2 to %u", optarg,
			       XDNAT_LIMIT_MAX_HOSTS);
			return -EINVAL;
		}
		break;
	case 'b':
		if (xd_parse_u32(optarg, XDNAT_MIN_SPI_BITS, XDNAT_MAX_SPI_BITS, &o->spi_bits)) {
			xd_err("--spi-block-bits: '%s' is not a number from %d to %d", optarg,
			       XDNAT_MIN_SPI_BITS, XDNAT_MAX_SPI_BITS);
			return -EINVAL;
		}
		break;
	case 'k': o->keep_maps = true; break;
	case 'S': o->no_sysctl = true; break;
	case 'N': o->no_neigh = true; break;
	case 'v': xd_verbose = 1; break;
	default:
		return -EINVAL;
	}
	return 0;
}

void xdd_free_opts(struct opts *o)
{
	for (int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
	o->n_owned = 0;
}

int xdd_parse_args(int argc, char **argv, struct opts *o)
{
	struct rsip_config *rc = &o->rcfg;
	const char *config = NULL;
	int c;

	memset(o, 0, sizeof(*o));
	o->instance = XDNAT_DEFAULT_INSTANCE;
	o->pin_base = XDNAT_PIN_BASE;
	o->max_hosts = XDNAT_DEFAULT_MAX_HOSTS;
	o->nh_cache_ms = XDNAT_DEFAULT_NH_CACHE_MS;
	o->spi_bits = XDNAT_DEFAULT_SPI_BITS;
	rsip_config_defaults(rc);
	o->rsip_port = RSIP_DEFAULT_PORT;
	if (xd_parse_listen(METRICS_DEFAULT, &o->metrics_addr, &o->metrics_port))
		return -EINVAL;
	o->rsip_max_clients = 256;
	o->rsip_idle = 900;
	o->counters_interval = XD_CTR_DEFAULT_INTERVAL;

	/* The file first, so that the command line overrides it. */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, OPTSTRING, lopts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == OPT_HELP_CONFIG) {
			xdd_usage_config();
			exit(0);
		}
	}
	if (config) {
		o->config = config;
		if (xdd_load_config(o, config))
			return -EINVAL;
	}
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, OPTSTRING, lopts, NULL)) != -1) {
		switch (c) {
		case 'c': break;
		case OPT_CHECK_CONFIG: o->check_only = true; break;
		case 'v': xd_verbose = 1; break;
		case '?':
			fprintf(stderr, "Try 'xdnatd --help'.\n");
			return -EINVAL;
		default:
			if (xdd_apply_opt(o, c, optarg))
				return -EINVAL;
		}
	}
	if (optind < argc) {
		xd_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!o->wan || !o->lan || !o->n_gaddrs) {
		xd_err("wan, lan and global are required (options --wan, --lan, --global or "
		       "[router] keys of --config; see --help)");
		return -EINVAL;
	}
	if (!xd_valid_instance(o->instance)) {
		xd_err("--instance: '%s' is not a valid name (1-32 of [A-Za-z0-9_.-])", o->instance);
		return -EINVAL;
	}
	if (rc->lease_default > rc->lease_max) {
		xd_err("--lease %u exceeds --max-lease %u", rc->lease_default, rc->lease_max);
		return -EINVAL;
	}
	if (rc->port_max - rc->port_min + 1 < rc->default_ports) {
		xd_err("--port-range is smaller than --port-block");
		return -EINVAL;
	}
	/* The control port itself is never handed out. */
	if (o->rsip_port != RSIP_DEFAULT_PORT && rc->n_reserved < RSIP_MAX_RESERVED)
		rc->reserved[rc->n_reserved++] = (uint16_t)o->rsip_port;
	if (!o->ca_key != !o->ca_cert) {
		xd_err("--ca-key and --ca-cert ([ca] key, cert) go together");
		return -EINVAL;
	}
	if (!o->ca_key && (o->ca_chain || o->crl_url || o->crl_listen_set || o->crl_period ||
			   o->notify_set)) {
		xd_err("--ca-chain, --crl-url, --crl-period, --crl-listen and --notify-port need "
		       "--ca-key and --ca-cert");
		return -EINVAL;
	}
	if (o->ca_key) {
		char g[INET_ADDRSTRLEN];

		if (!o->rsip) {
			xd_err("the Local CA certifies RSIP allocations: add --rsip ([rsip] enabled = yes)");
			return -EINVAL;
		}
		if (!o->crl_listen_set) {
			o->crl_addr = o->gaddrs[0];
			o->crl_port = 8080;
		}
		if (!o->crl_url) {
			snprintf(o->crl_url_buf, sizeof(o->crl_url_buf), "http://%s:%u/crl/lca.crl",
				 xd_ipstr(o->crl_addr ? o->crl_addr : o->gaddrs[0], g), o->crl_port);
			o->crl_url = o->crl_url_buf;
		}
		/* The CRL's port belongs to the router, never to a host. */
		bool have = false;

		for (uint32_t i = 0; i < rc->n_reserved; i++)
			have |= rc->reserved[i] == o->crl_port;
		if (!have && rc->n_reserved < RSIP_MAX_RESERVED)
			rc->reserved[rc->n_reserved++] = o->crl_port;
		if (!o->notify_set)
			o->notify_port = LCA_NOTICE_PORT;
		have = !o->notify_port;
		for (uint32_t i = 0; i < rc->n_reserved; i++)
			have |= rc->reserved[i] == o->notify_port;
		if (!have && rc->n_reserved < RSIP_MAX_RESERVED)
			rc->reserved[rc->n_reserved++] = (uint16_t)o->notify_port;
		/* ... and a service of the router on the global addresses: marked
		 * as router ports, remote peers reach it even with --unknown drop
		 * and under floods. */
		add_router_port(o, o->crl_port);
		if (o->notify_port)
			add_router_port(o, (uint16_t)o->notify_port);
	}
	return 0;
}
