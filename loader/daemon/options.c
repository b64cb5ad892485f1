// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd's options: one table (opts.h) gives the command line, the keys of
 * the configuration file (config.c), --help and so xdnatd(8) and
 * xdnatd.conf(5); then the checks across options.
 */
#include "xdnatd.h"
#include "opts.h"

#define OFF(f) offsetof(struct opts, f)

/* Ids of the options xdnatd applies itself (XO_CALL). */
enum {
	OPT_STATE_DIR = 256, OPT_PORT_RANGE, OPT_RESERVE, OPT_CRL_URL, OPT_CRL_LISTEN,
	OPT_NOTIFY_PORT, OPT_SHARED_IKE, OPT_ROUTER_PORTS, OPT_METRICS, OPT_CHECK_CONFIG,
	OPT_HELP_CONFIG, OPT_STORE_BACKEND,
};

static const struct xo_opt xdnatd_opts[] = {
	XO_HEAD("Required:"),
	{ "wan", 'w', "IFNAME", .type = XO_STR, .off = OFF(wan), .ini = "router",
	  .help = "interface towards the Internet" },
	{ "lan", 'l', "IFNAME", .type = XO_STR, .off = OFF(lan), .ini = "router",
	  .help = "interface towards the hosts; the same as --wan for one-arm mode (one NIC, "
		  "e.g. a cloud VM: the LAN address must then differ from the globals)" },
	{ "global", 'g', "ADDR[,...]", .ini = "router",
	  .help = "shared global IPv4 address(es), up to " XO_STR(XDNAT_MAX_GADDRS) "; the order "
		  "gives the global address index (0, 1, ...)" },
	XO_HEAD("Options:"),
	{ "lan-addr", 'a', "ADDR", .ini = "router",
	  .help = "router's LAN address, the tunnel endpoint (default: the first IPv4 address "
		  "of --lan); may be a virtual address that VRRP moves between routers and that "
		  "--lan does not hold yet (README: Running several routers)" },
	{ "mode", 'm', "auto|xdp|tc", .ini = "router",
	  .help = "attach with native XDP, tc (cls_bpf), or XDP falling back to tc with a "
		  "warning (default: auto)" },
	{ "unknown", 'u', "pass|drop", .ini = "router",
	  .help = "packets to an unallocated port or SPI, later fragments, unknown protocols: "
		  "hand to the router's own stack, or drop (default: pass)" },
	{ "instance", 'i', "NAME", .type = XO_STR, .off = OFF(instance), .ini = "router",
	  .help = "instance name; pins go to PIN_BASE/NAME (default: " XDNAT_DEFAULT_INSTANCE ")" },
	{ "pin-base", 'p', "DIR", .type = XO_STR, .off = OFF(pin_base), .ini = "router",
	  .help = "bpffs directory for pins (default: " XDNAT_PIN_BASE ")" },
	{ "max-hosts", 'H', "N", .type = XO_U32, .off = OFF(max_hosts), .min = 2,
	  .max = XDNAT_LIMIT_MAX_HOSTS, .ini = "router",
	  .help = "host table size, ids 1..N-1 (default: " XO_STR(XDNAT_DEFAULT_MAX_HOSTS) ")" },
	{ "spi-block-bits", 'b', "N", .type = XO_U32, .off = OFF(spi_bits),
	  .min = XDNAT_MIN_SPI_BITS, .max = XDNAT_MAX_SPI_BITS, .ini = "router",
	  .help = "SPIs per block = 2^N, " XO_STR(XDNAT_MIN_SPI_BITS) ".." XO_STR(XDNAT_MAX_SPI_BITS)
		  " (default: " XO_STR(XDNAT_DEFAULT_SPI_BITS) "); the SPI table has 2^(32-N) "
		  "entries" },
	{ "keep-maps", 'k', NULL, .type = XO_FLAG, .off = OFF(keep_maps), .ini = "router",
	  .help = "on exit, leave the maps pinned (hosts and blocks survive a restart); "
		  "programs are detached" },
	{ "no-sysctl", 'S', NULL, .type = XO_FLAG, .off = OFF(no_sysctl), .ini = "router",
	  .help = "do not set net.ipv4.ip_forward=1 and accept_local=1 on both interfaces "
		  "(see README)" },
	{ "no-neigh", 'N', NULL, .type = XO_FLAG, .off = OFF(no_neigh), .ini = "router",
	  .help = "do not create managed neighbour entries for the hosts' LAN addresses (an "
		  "operator's are never changed; README: Neighbour entries)" },
	XO_HEAD("RSIP control plane (RFC 3103/3104; see docs/CONTROL-PLANE.md):"),
	{ "rsip", 0, NULL, .type = XO_FLAG, .off = OFF(rsip), .ini = "rsip.enabled",
	  .help = "serve RSIP on the LAN side: hosts enrolled with 'xdnatctl enroll' obtain "
		  "port and SPI blocks" },
	{ "rsip-port", 0, "N", .type = XO_U32, .off = OFF(rsip_port), .min = 1, .max = 65535,
	  .ini = "rsip.port",
	  .help = "TCP port on the LAN address (default: " XO_STR(RSIP_DEFAULT_PORT) ")" },
	{ "state-dir", 0, "DIR", OPT_STATE_DIR, .ini = "rsip",
	  .help = "state database DIR/INSTANCE.db (default: " XDNAT_STATE_DIR "); with --rsip "
		  "or --state-dir, the counters' totals are kept there across reboots" },
	{ "counters-interval", 0, "S", .type = XO_U32, .off = OFF(counters_interval), .min = 1,
	  .max = 86400, .ini = "rsip",
	  .help = "save the counters' totals every S seconds (default: "
		  XO_STR(XD_CTR_DEFAULT_INTERVAL) "; also on start and at exit)" },
	{ "port-range", 0, "A-B", OPT_PORT_RANGE, .ini = "rsip",
	  .help = "ports handed out (default: 1024-65535)" },
	{ "reserve-ports", 0, "L", OPT_RESERVE, .ini = "rsip",
	  .help = "comma-separated ports never handed out (the router's own services; the "
		  "RSIP port always is)" },
	{ "port-block", 0, "N", .type = XO_U32, .off = OFF(rcfg.default_ports), .min = 1,
	  .max = 255, .ini = "rsip",
	  .help = "ports per request that names no number, 1-255 (default: 250)" },
	{ "max-ports", 0, "N", .type = XO_U32, .off = OFF(rcfg.max_ports_per_host), .min = 1,
	  .max = 65535, .ini = "rsip", .help = "ports per host at most (default: 4096)" },
	{ "max-spi-blocks", 0, "N", .type = XO_U32, .off = OFF(rcfg.max_spi_blocks_per_host),
	  .min = 1, .max = 1u << 24, .ini = "rsip",
	  .help = "SPI blocks per host at most (default: 4)" },
	{ "lease", 0, "S", .type = XO_U32, .off = OFF(rcfg.lease_default), .min = 1,
	  .max = 0x7fffffff, .ini = "rsip",
	  .help = "lease granted when none is asked (default: 600)" },
	{ "max-lease", 0, "S", .type = XO_U32, .off = OFF(rcfg.lease_max), .min = 1,
	  .max = 0x7fffffff, .ini = "rsip", .help = "longest lease granted (default: 3600)" },
	{ "quarantine", 0, "S", .type = XO_U32, .off = OFF(rcfg.quarantine), .min = 0,
	  .max = 0x7fffffff, .ini = "rsip",
	  .help = "a freed or expired block is handed out again only after S seconds "
		  "(default: 120)" },
	{ "reg-lease", 0, "S", .type = XO_U32, .off = OFF(rcfg.reg_lease), .min = 1,
	  .max = 0x7fffffff, .ini = "rsip",
	  .help = "an idle registration without bindings is forgotten after S seconds "
		  "(default: 600)" },
	{ "rsip-max-clients", 0, "N", .type = XO_U32, .off = OFF(rsip_max_clients), .min = 1,
	  .max = 1u << 20, .ini = "rsip.max-clients",
	  .help = "concurrent connections (default: 4096; kept below the open-files limit; at the "
		  "cap the oldest connection without a session is closed for a new one)" },
	{ "rsip-per-address", 0, "N", .type = XO_U32, .off = OFF(rsip_per_addr), .min = 1,
	  .max = 1u << 20, .ini = "rsip.per-address",
	  .help = "concurrent connections from one LAN address (default: 8)" },
	{ "rsip-preauth", 0, "S", .type = XO_U32, .off = OFF(rsip_preauth), .min = 1, .max = 3600,
	  .ini = "rsip.preauth",
	  .help = "close connections without an authenticated REGISTER after S seconds (default: 5)" },
	{ "rsip-idle", 0, "S", .type = XO_U32, .off = OFF(rsip_idle), .min = 1, .max = 0x7fffffff,
	  .ini = "rsip.idle", .help = "close connections that send no complete message for S "
		  "seconds (default: 900)" },
	XO_HEAD("State store (docs/CLUSTER.md).  By default the state is an SQLite file in "
		"--state-dir; several routers that share one global address keep it in an etcd v3 "
		"cluster instead, reached through etcd's JSON gateway:"),
	{ "store-backend", 0, "sqlite|etcd", OPT_STORE_BACKEND, .ini = "store.backend",
	  .help = "where allocations, enrolments, registrations and the Local CA's certificates, "
		  "serials and CRLs are kept (default: sqlite)" },
	{ "store-endpoints", 0, "URL[,URL...]", .type = XO_STR, .off = OFF(store.endpoints),
	  .ini = "store.endpoints",
	  .help = "the etcd members' client URLs, http://HOST:PORT or https://HOST:PORT, up to "
		  XO_STR(XD_STORE_MAX_ENDPOINTS) "; a member that cannot be reached is skipped for "
		  "the next" },
	{ "store-prefix", 0, "/PATH", .type = XO_STR, .off = OFF(store.prefix), .ini = "store.prefix",
	  .help = "etcd key prefix; the keys are PATH/INSTANCE/... (default: "
		  XD_STORE_DEFAULT_PREFIX ")" },
	{ "store-cacert", 0, "FILE", .type = XO_STR, .off = OFF(store.cacert), .ini = "store.cacert",
	  .help = "the CA certificates (PEM) that sign the members' server certificates "
		  "(https:// endpoints; default: the system's)" },
	{ "store-cert", 0, "FILE", .type = XO_STR, .off = OFF(store.cert), .ini = "store.cert",
	  .help = "this router's client certificate (PEM) for members that require one "
		  "(etcd --client-cert-auth); needs --store-key" },
	{ "store-key", 0, "FILE", .type = XO_STR, .off = OFF(store.key), .ini = "store.key",
	  .help = "the client certificate's private key (PEM)" },
	{ "store-timeout", 0, "MS", .type = XO_U32, .off = OFF(store.timeout_ms), .min = 10,
	  .max = 600000, .ini = "store.timeout",
	  .help = "every request to etcd ends within MS milliseconds, all members tried: an "
		  "unreachable cluster or one without quorum is an error naming the endpoints "
		  "(allocations and issuance are refused), never a hang (default: "
		  XO_STR(XD_STORE_DEFAULT_TIMEOUT) ")" },
	{ "store-max-txn-ops", 0, "N", .type = XO_U32, .off = OFF(store.max_txn_ops),
	  .min = XD_STORE_MAX_TXN_OPS_MIN, .max = XD_STORE_MAX_TXN_OPS_MAX, .ini = "store.max-txn-ops",
	  .help = "the most operations etcd takes in one transaction: set it to the members' "
		  "--max-txn-ops.  One store transaction is one etcd Txn, and RSIP commits the "
		  "requests of many hosts in one (group commit): a batch takes no further request "
		  "once the next might not fit, and a request that alone needs more fails with "
		  "an error reply (default: " XO_STR(XD_STORE_DEFAULT_MAX_TXN_OPS) ", etcd's)" },
	{ "router-id", 0, "NAME", .type = XO_STR, .off = OFF(store.router_id), .ini = "store.router-id",
	  .help = "this router's name among the routers that share the store: its counter "
		  "baselines are kept under it; 1-" XO_STR(XD_STORE_ID_MAX) " of [A-Za-z0-9_.-] "
		  "(default: the host name's first label)" },
	{ "elect-ttl", 0, "S", .type = XO_U32, .off = OFF(elect_ttl), .min = 2, .max = 3600,
	  .ini = "store.elect-ttl",
	  .help = "TTL of the etcd lease behind this router's roles (expiry worker, signer); a "
		  "router that cannot renew it stops acting S/2 after its last renewal, and "
		  "another takes over when etcd expires it, S after (default: 10)" },
	XO_HEAD("Roaming hosts (Mobile IPv4 home agent, docs/ROAMING.md; needs --rsip):"),
	{ "mobile", 0, NULL, .type = XO_FLAG, .off = OFF(mobile), .ini = "mobile.enabled",
	  .help = "answer Mobile IPv4 registrations (RFC 5944, NAT traversal RFC 3519) on UDP "
		  "434 of the global addresses: an enrolled host holding blocks registers its "
		  "care-of address while away and keeps its blocks, identity and certificate; "
		  "UDP 434 becomes a router port" },
	{ "mobile-lifetime", 0, "S", .type = XO_U32, .off = OFF(mobile_lifetime), .min = 10,
	  .max = 65534, .ini = "mobile.lifetime",
	  .help = "longest registration granted, seconds (default: "
		  XO_STR(MIP_DEFAULT_MAX_LIFETIME) "); the host's RSIP leases are renewed to its end" },
	{ "mobile-keepalive", 0, "S", .type = XO_U32, .off = OFF(mobile_keepalive), .min = 1,
	  .max = 65535, .ini = "mobile.keepalive",
	  .help = "NAT keepalive interval announced to hosts behind a NAT (RFC 3519 UDP Tunnel "
		  "Reply), seconds (default: " XO_STR(MIP_DEFAULT_KEEPALIVE) ")" },
	XO_HEAD("Local CA (docs/LCA.md; needs --rsip).  Hosts that send a CSR with their RSIP "
		"requests get a certificate for their identity, ports and SPIs, valid for the "
		"lease; a block is never freed while a valid certificate binds it (FREE, lease "
		"expiry, DE-REGISTER and eviction revoke first)."),
	{ "ca-key", 0, "FILE", .type = XO_STR, .off = OFF(ca_key), .ini = "ca.key",
	  .help = "the LCA's private key (PEM); with --ca-cert turns the CA on (xdnat-ca "
		  "init-lca makes both)" },
	{ "ca-cert", 0, "FILE", .type = XO_STR, .off = OFF(ca_cert), .ini = "ca.cert",
	  .help = "the LCA certificate (PEM, name-constrained)" },
	{ "ca-chain", 0, "FILE", .type = XO_STR, .off = OFF(ca_chain), .ini = "ca.chain",
	  .help = "the certificates above it, up to the root (PEM)" },
	{ "crl-url", 0, "URL", OPT_CRL_URL, .ini = "ca",
	  .help = "CRL distribution point written into every certificate (default: "
		  "http://G:PORT/crl/lca.crl, G the first global address, PORT --crl-listen's)" },
	{ "crl-period", 0, "S", .type = XO_U32, .off = OFF(crl_period), .min = 60,
	  .max = 366 * 86400, .ini = "ca",
	  .help = "CRL nextUpdate - thisUpdate (default: 86400); a new CRL is made after every "
		  "revocation and half-way" },
	{ "crl-listen", 0, "ADDR:PORT", OPT_CRL_LISTEN, .ini = "ca",
	  .help = "serve GET /crl/lca.crl here (default: G:8080; the port is reserved, and "
		  "reachable from the WAN with --unknown pass)" },
	{ "crl-max-conns", 0, "N", .type = XO_U32, .off = OFF(crl_max_conns), .min = 1,
	  .max = 65536, .ini = "ca",
	  .help = "the CRL server's connections at once (default: " XO_STR(CRL_DEFAULT_MAX_CONNS)
		  "; lowered to fit the open-files limit)" },
	{ "crl-per-address", 0, "N", .type = XO_U32, .off = OFF(crl_per_ip), .min = 0,
	  .max = 65536, .ini = "ca",
	  .help = "the CRL server's connections from one address at once, so that slow clients "
		  "from one address cannot hold every connection; 0: no limit (default: "
		  XO_STR(CRL_DEFAULT_PER_IP) ")" },
	{ "crl-timeout", 0, "S", .type = XO_U32, .off = OFF(crl_timeout), .min = 1, .max = 3600,
	  .ini = "ca",
	  .help = "the CRL server closes a connection idle for S seconds (default: "
		  XO_STR(CRL_DEFAULT_TIMEOUT) ")" },
	{ "notify-port", 0, "N", OPT_NOTIFY_PORT, .ini = "ca",
	  .help = "revocation notices: when a host's certificate is revoked, every remote that "
		  "sent it ESP/AH (the datapath records them) gets an LCA-signed notice by UDP to "
		  "port N, from G:N (N is reserved), resent with back-off until acknowledged "
		  "(xdnat-peer); not for renewals (superseded: no SA ends); 0: off (default: " XO_STR(LCA_NOTICE_PORT) ")" },
	XO_HEAD(""),
	{ "router-ports", 0, "PORT|A-B[,...]|none", OPT_ROUTER_PORTS, .ini = "router",
	  .help = "the router's own services on the global addresses (e.g. 22,8080): never "
		  "handed to a host, passed to this router's stack even with --unknown drop, so "
		  "they stay reachable under a flood of junk (default: none)" },
	{ "shared-ike-ports", 0, "on|off|PORT[,PORT...]", OPT_SHARED_IKE, .ini = "router",
	  .help = "UDP ports no host owns, shared by every host's IKE daemon: IKE and "
		  "ESP-in-UDP are steered by SPI (on = 500,4500; 500 carries plain IKE, the others "
		  "RFC 3948 framing; see docs/SHARED-IKE.md; default: off)" },
	{ "nexthop-cache", 0, "MS", .type = XO_U32, .off = OFF(nh_cache_ms), .min = 0,
	  .max = 60000, .ini = "router",
	  .help = "reuse a FIB lookup result (next-hop MACs, path MTU) for MS milliseconds: "
		  "neighbour and route changes take up to MS to apply; 0 looks up every packet "
		  "(default: " XO_STR(XDNAT_DEFAULT_NH_CACHE_MS) ", at most 60000)" },
	{ "metrics", 0, "unix[:PATH]|ADDR:PORT|off", OPT_METRICS, .ini = "metrics.listen",
	  .help = "serve Prometheus text metrics at /metrics: on a UNIX socket, only root (and "
		  "--metrics-group) can read it (default: unix, the socket " RUN_DIR
		  "/INSTANCE.metrics, mode 0600), or on TCP ADDR:PORT, where every local user (and "
		  "whoever reaches ADDR) can (e.g. 127.0.0.1:9477; README: Metrics)" },
	{ "metrics-group", 0, "GROUP", .type = XO_STR, .off = OFF(metrics_group),
	  .ini = "metrics.group",
	  .help = "the UNIX socket is mode 0660 with group GROUP (e.g. for a local scraper)" },
	{ "config", 'c', "FILE", .help = "read options from FILE (INI, see xdnatd.conf(5)); "
					"command-line options override it" },
	{ "help-config", 0, NULL, OPT_HELP_CONFIG,
	  .help = "the reference of FILE's sections and keys" },
	{ "check-config", 0, NULL, .type = XO_FLAG, .off = OFF(check_only),
	  .help = "validate the options and FILE completely (also that the interfaces exist), "
		  "change nothing, exit" },
	{ "verbose", 'v', NULL, .ini = "router", .help = "log every system change" },
	XO_OPT_VERSION,
	XO_OPT_HELP,
	{ 0 }
};

const struct xo_prog xdd_prog = {
	.name = "xdnatd",
	.opts = xdnatd_opts,
	.retired = "R=rsip M=metrics",   /* xdnat-host's -R and -M mean other things */
	.col = 27,
	.synopsis =
"Usage: xdnatd --wan IFNAME --lan IFNAME --global ADDR[,ADDR...] [OPTIONS]\n"
"  or:  xdnatd --config FILE [OPTIONS]\n"
"\n"
"Attach the xdnat router datapath: packets from the WAN to a global address\n"
"are steered by their outermost ESP/AH SPI, TCP/UDP destination port or ICMP\n"
"echo identifier to the LAN host that owns it and tunnelled to it (IP-in-IP)\n"
"unmodified; IP-in-IP from registered hosts is checked (source address and\n"
"port must be the host's) and forwarded to the WAN.  Hosts and blocks are\n"
"managed with xdnatctl.  Runs in the foreground until SIGTERM or SIGINT.\n",
	.epilog =
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
"Exit status: 0 after a clean stop, 1 on error (nothing is left attached;\n"
"also an invalid configuration file), 2 on a usage error (unknown option,\n"
"missing or malformed argument, options that do not go together).\n"
"A daemon killed with SIGKILL leaves the programs attached and forwarding;\n"
"starting it again with the same instance takes them over.\n",
};

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

/* Apply an option xdnatd handles itself (XO_CALL), from the command line
 * or the configuration file. */
int xdd_apply_opt(struct opts *o, int id, char *arg)
{
	struct rsip_config *rc = &o->rcfg;

	switch (id) {
	case OPT_STATE_DIR: rc->state_dir = arg; o->state_dir_set = true; break;
	case OPT_PORT_RANGE:
		if (xd_parse_range(arg, 1, 65535, &rc->port_min, &rc->port_max)) {
			xd_err("--port-range: '%s' is not a range A-B within 1-65535", arg);
			return -EINVAL;
		}
		break;
	case OPT_RESERVE: return parse_reserved(rc, arg) ? -EINVAL : 0;
	case OPT_CRL_URL:
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)) {
			xd_err("--crl-url: '%s' is not an http:// or https:// URL", arg);
			return -EINVAL;
		}
		o->crl_url = arg;
		break;
	case OPT_CRL_LISTEN:
		if (xd_parse_listen(arg, &o->crl_addr, &o->crl_port) || !o->crl_port) {
			xd_err("--crl-listen: '%s' is not ADDR:PORT (IPv4, port 1-65535)", arg);
			return -EINVAL;
		}
		o->crl_listen_set = true;
		break;
	case OPT_NOTIFY_PORT:
		if (xd_parse_u32(arg, 0, 65535, &o->notify_port)) {
			xd_err("--notify-port: '%s' is not a number from 0 to 65535", arg);
			return -EINVAL;
		}
		o->notify_set = true;
		break;
	case OPT_ROUTER_PORTS: return parse_router_ports(o, arg) ? -EINVAL : 0;
	case OPT_SHARED_IKE: return parse_shared_ike(o, arg) ? -EINVAL : 0;
	case OPT_METRICS:
		o->metrics_explicit = true;
		o->metrics_unix = false;
		o->metrics_path = NULL;
		o->metrics_port = 0;
		if (!strcmp(arg, "off")) {
			break;
		} else if (!strncmp(arg, "unix", 4) && (!arg[4] || arg[4] == ':')) {
			o->metrics_unix = true;
			if (arg[4] && (arg[5] != '/' || strlen(arg + 5) >= 108)) {
				xd_err("--metrics: '%s': unix:PATH needs an absolute PATH of at "
				       "most 107 bytes", arg);
				return -EINVAL;
			}
			o->metrics_path = arg[4] ? arg + 5 : NULL;
		} else if (xd_parse_listen(arg, &o->metrics_addr, &o->metrics_port) ||
			   !o->metrics_port) {
			xd_err("--metrics: '%s' is not unix[:PATH], ADDR:PORT (IPv4, port 1-65535) "
			       "or 'off'", arg);
			return -EINVAL;
		}
		break;
	case 'g':
		/* The command line replaces the configuration file's list. */
		if (o->gaddrs_from_config && !o->in_config)
			o->n_gaddrs = 0;
		o->gaddrs_from_config = o->in_config;
		return parse_gaddrs(o, arg) ? -EINVAL : 0;
	case 'a':
		if (xd_parse_ipv4(arg, &o->lan_addr)) {
			xd_err("--lan-addr: '%s' is not an IPv4 address", arg);
			return -EINVAL;
		}
		o->lan_addr_set = true;
		break;
	case 'm':
		if (!strcmp(arg, "auto"))
			o->mode = MODE_AUTO;
		else if (!strcmp(arg, "xdp"))
			o->mode = MODE_XDP;
		else if (!strcmp(arg, "tc"))
			o->mode = MODE_TC;
		else {
			xd_err("--mode: '%s' is not one of auto, xdp, tc", arg);
			return -EINVAL;
		}
		break;
	case 'u':
		if (strcmp(arg, "pass") && strcmp(arg, "drop")) {
			xd_err("--unknown: '%s' is not one of pass, drop", arg);
			return -EINVAL;
		}
		o->unknown_drop = !strcmp(arg, "drop");
		break;
	case OPT_STORE_BACKEND:
		if (xd_store_parse_backend(arg, &o->store.backend)) {
			xd_err("--store-backend: '%s' is not one of sqlite, etcd", arg);
			return -EINVAL;
		}
		break;
	case 'v': xd_verbose = 1; break;
	default:
		return -EINVAL;
	}
	return 0;
}

int xdd_set_opt(struct opts *o, const struct xo_opt *e, char *arg)
{
	if (e->type != XO_CALL)
		return xo_apply(e, arg, o);
	return xdd_apply_opt(o, e->id ? e->id : e->key, arg);
}

void xdd_free_opts(struct opts *o)
{
	for (int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
	o->n_owned = 0;
}

static int defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->instance = XDNAT_DEFAULT_INSTANCE;
	o->pin_base = XDNAT_PIN_BASE;
	o->max_hosts = XDNAT_DEFAULT_MAX_HOSTS;
	o->nh_cache_ms = XDNAT_DEFAULT_NH_CACHE_MS;
	o->spi_bits = XDNAT_DEFAULT_SPI_BITS;
	rsip_config_defaults(&o->rcfg);
	o->rsip_port = RSIP_DEFAULT_PORT;
	o->rsip_max_clients = 4096;
	o->rsip_per_addr = RSIP_DEFAULT_PER_ADDR;
	o->rsip_preauth = RSIP_DEFAULT_PREAUTH_S;
	o->rsip_idle = 900;
	o->counters_interval = XD_CTR_DEFAULT_INTERVAL;
	o->elect_ttl = XD_ELECT_TTL_DEFAULT;
	o->crl_max_conns = CRL_DEFAULT_MAX_CONNS;
	o->crl_per_ip = CRL_DEFAULT_PER_IP;
	o->crl_timeout = CRL_DEFAULT_TIMEOUT;
	o->mobile_lifetime = MIP_DEFAULT_MAX_LIFETIME;
	o->mobile_keepalive = MIP_DEFAULT_KEEPALIVE;
	o->metrics_unix = true;
	return 0;
}

/* Reserve @port for the router (never handed to a host), once. */
static void reserve_port(struct rsip_config *rc, uint32_t port)
{
	for (uint32_t i = 0; i < rc->n_reserved; i++)
		if (rc->reserved[i] == port)
			return;
	if (rc->n_reserved < RSIP_MAX_RESERVED)
		rc->reserved[rc->n_reserved++] = (uint16_t)port;
}

/* The Local CA's defaults, which depend on other options: its CRL and
 * notice ports are the router's services on the global addresses (marked
 * as router ports, remote peers reach them even with --unknown drop). */
static int ca_defaults(struct opts *o)
{
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
	reserve_port(&o->rcfg, o->crl_port);
	if (!o->notify_set)
		o->notify_port = LCA_NOTICE_PORT;
	if (o->notify_port)
		reserve_port(&o->rcfg, o->notify_port);
	add_router_port(o, o->crl_port);
	if (o->notify_port)
		add_router_port(o, (uint16_t)o->notify_port);
	return 0;
}

/* [store]: checked here, applied by main (xd_store_configure) so that a
 * SIGHUP's re-read cannot change the running process's store. */
static int store_check(struct opts *o)
{
	char err[300];

	if (o->store.backend != XD_STORE_ETCD &&
	    (o->store.endpoints || o->store.cacert || o->store.cert || o->store.key)) {
		xd_err("--store-endpoints, --store-cacert, --store-cert and --store-key ([store] "
		       "endpoints, cacert, cert, key) need --store-backend etcd");
		return -EINVAL;
	}
	if (xd_store_cfg_check(&o->store, err, sizeof(err))) {
		xd_err("%s", err);
		return -EINVAL;
	}
	return 0;
}

/* What no single option can check. */
static int check_opts(struct opts *o)
{
	struct rsip_config *rc = &o->rcfg;

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
	if (o->metrics_group && !o->metrics_unix) {
		xd_err("--metrics-group is for the UNIX socket (--metrics unix[:PATH])");
		return -EINVAL;
	}
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
	if (store_check(o))
		return -EINVAL;
	if (o->mobile) {
		if (!o->rsip) {
			xd_err("--mobile registers RSIP hosts away from home: add --rsip ([rsip] enabled = yes)");
			return -EINVAL;
		}
		/* Registrations reach the stack even with --unknown drop. */
		reserve_port(rc, MIP_PORT);
		add_router_port(o, MIP_PORT);
	}
	return o->ca_key ? ca_defaults(o) : 0;
}

/* First pass over the command line: --help, --version and --help-config
 * answer and exit; --config is read before the other options, so that
 * they override it. */
static int first_pass(int argc, char **argv, struct opts *o)
{
	struct xo_state st = { .prog = &xdd_prog, .quiet = true };
	const char *config = NULL;
	int c;

	optind = 0;
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		if (c == 'c') {
			config = optarg;
		} else if (c == XO_ID_HELP) {
			xo_help(&xdd_prog, stdout);
			exit(0);
		} else if (c == XO_ID_VERSION) {
			xo_version(&xdd_prog);
			exit(0);
		} else if (c == OPT_HELP_CONFIG) {
			xdd_usage_config();
			exit(0);
		}
	}
	if (!config)
		return 0;
	o->config = config;
	return xdd_load_config(o, config) ? XDD_EXIT_ERROR : 0;
}

int xdd_parse_args(int argc, char **argv, struct opts *o)
{
	struct xo_state st = { .prog = &xdd_prog, .base = o };
	int c, rc;

	if (defaults(o))
		return XDD_EXIT_ERROR;
	rc = first_pass(argc, argv, o);
	if (rc)
		return rc;
	optind = 0;
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		if (c == XO_USAGE)
			return XDD_EXIT_USAGE;
		if (c == 'c' || c == OPT_HELP_CONFIG)
			continue;
		if (xdd_apply_opt(o, c, optarg)) {
			xo_try_help(&xdd_prog);
			return XDD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		xd_err("unexpected argument '%s'", argv[optind]);
		return xo_try_help(&xdd_prog);
	}
	return check_opts(o) ? XDD_EXIT_USAGE : 0;
}
