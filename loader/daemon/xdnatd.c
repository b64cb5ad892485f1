// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatd: attaches the xdnat router programs to a WAN and a LAN interface,
 * pins their maps under PIN_BASE/INSTANCE/ and keeps them attached until
 * SIGTERM/SIGINT.  XDP programs are attached through pinned BPF links: a
 * crashed daemon leaves them forwarding, and a restarted one swaps its
 * freshly loaded programs in atomically while the pinned maps keep their
 * contents.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "xdnat.h"
#include "xdnat_router.skel.h"
#include <ini.h>
#include "httpd.h"
#include "metrics.h"
#include "counters.h"
#include "fragq.h"
#include "rsip_server.h"
#include "ca_plane.h"
#include "ca_notify.h"
#include "ctl_sock.h"
#include "neigh.h"
#include "lca.h"
#include "notice.h"
#include <ifaddrs.h>
#include <pthread.h>
#include <time.h>

#define RUN_DIR "/run/xdnat"
#define TC_HANDLE 0x4555 /* RSIP's port, to recognise our filters */
#define TC_PRIO 1
#define NEIGH_SCAN_MS 1000

enum attach_mode { MODE_AUTO, MODE_XDP, MODE_TC };

struct opts {
	const char *wan, *lan, *instance, *pin_base;
	uint32_t gaddrs[XDNAT_MAX_GADDRS];
	uint32_t n_gaddrs;
	uint32_t lan_addr;
	bool lan_addr_set;
	enum attach_mode mode;
	bool unknown_drop, keep_maps, no_sysctl, no_neigh;
	uint32_t max_hosts, spi_bits, nh_cache_ms;
	struct xd_run router_ports[32];            /* --router-ports */
	unsigned n_router_ports;
	uint16_t shared_ike[XDNAT_MAX_SHARED_PORTS]; /* --shared-ike-ports */
	unsigned n_shared_ike;
	/* RSIP control plane */
	bool rsip;
	uint32_t rsip_port, rsip_max_clients, rsip_idle;
	struct rsip_config rcfg;
	const char *config;        /* --config FILE */
	bool check_only;           /* --check-config */
	bool in_config, gaddrs_from_config;
	char *owned[128];          /* values read from the configuration file */
	int n_owned;
	/* Prometheus endpoint; 0 port = off */
	uint32_t metrics_addr;
	uint16_t metrics_port;
	bool metrics_explicit;
	/* Counter totals in the state database: with --rsip or --state-dir */
	bool state_dir_set;
	uint32_t counters_interval;  /* seconds between saves */
	/* Local CA (docs/LCA.md): off without --ca-key and --ca-cert */
	const char *ca_key, *ca_cert, *ca_chain, *crl_url;
	uint32_t crl_period;
	uint32_t crl_addr;
	uint16_t crl_port;
	bool crl_listen_set;
	char crl_url_buf[96];
	uint32_t notify_port;      /* revocation notices; 0: off */
	bool notify_set;
};

#define METRICS_DEFAULT "127.0.0.1:9477"
/* Sysctl values saved before the first run changed them, handed on to the
 * process that replaces us on reload-programs so it restores the originals. */
#define SAVED_SYSCTLS_ENV "XDNATD_SAVED_SYSCTLS"


struct sysctl_saved {
	char path[128];
	char old[32];
	bool changed;
};

struct daemon {
	struct opts o;
	struct xdnat_router *skel;
	struct xdnat_router_cfg cfg;
	char pin_dir[256];
	int wan_ifindex, lan_ifindex;
	int lock_fd;
	bool tc_mode;
	int link_fd[2];            /* XDP mode: WAN, LAN */
	bool tc_attached[2], tc_hook_created[2];
	struct sysctl_saved sysctls[8];
	int n_sysctls;
	struct xd_neigh *neigh;    /* the hosts' neighbour entries (neigh.h) */
	uint32_t *neigh_want;      /* per host id: its LAN address, 0: none */
	bool maps_reused;          /* pins came from an earlier run: never remove on error */
	bool neigh_unsupported;
	struct xd_maps maps;       /* RSIP: the pinned maps, as the server's backend */
	struct rsip_server rsip;
	bool rsip_on;
	struct xd_maps mmaps;      /* metrics: our own view of the pinned maps */
	bool mmaps_open;
	struct xd_metrics_ctx mctx;
	struct xd_store *ctr_db;   /* counter totals (counters.h); NULL: off */
	struct xd_maps cmaps;
	uint64_t ctr_saved_ms;
	struct xd_httpd *httpd;
	struct xd_ca *ca;          /* Local CA, with the RSIP server */
	struct xd_httpd *crl_httpd;
	pthread_mutex_t crl_mu;    /* the CRL is served from libmicrohttpd's thread */
	uint8_t *crl;
	size_t crl_len;
	struct xd_notifier *notifier;  /* revocation notices to the hosts' IPsec peers */
	struct ctl_sock *ctl;      /* RUN_DIR/INSTANCE.ctl for xdnatctl, with RSIP */
	char self_exe[4096];       /* binary to re-execute on reload-programs */
	int argc;                  /* our command line, re-read on SIGHUP */
	char **argv;
};

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
"  -N, --no-neigh           do not create managed neighbour entries for the\n"
"                           hosts' LAN addresses (an operator's are never\n"
"                           changed; README: Neighbour entries)\n"
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

static const struct option long_opts[] = {
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
#define lopts long_opts

/* Apply one option (from the command line or the configuration file). */
static int apply_opt(struct opts *o, int c, char *optarg)
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

/*
 * Configuration file: INI (parsed by libinih).  Keys are the long option
 * names; [router] takes the datapath options, [rsip] the control plane's
 * ("enabled", and "port", "max-clients", "idle" for --rsip-port etc.),
 * [metrics] "listen".  Booleans: yes/no, true/false, on/off, 1/0.
 * The command line overrides the file.
 */
struct config_ctx {
	struct opts *o;
	const char *path;
	FILE *f;
	int line;
	int errors;
	char where[512];
};

static char *config_reader(char *str, int num, void *stream)
{
	struct config_ctx *x = stream;
	char *r = fgets(str, num, x->f);

	if (r)
		x->line++;
	return r;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static const char *const router_keys[] = {
	"wan", "lan", "global", "lan-addr", "mode", "unknown", "instance", "pin-base",
	"max-hosts", "spi-block-bits", "keep-maps", "no-sysctl", "no-neigh", "verbose",
	"nexthop-cache", "shared-ike-ports", "router-ports", NULL,
};
static const char *const rsip_keys[] = {
	"state-dir", "port-range", "reserve-ports", "port-block", "max-ports",
	"max-spi-blocks", "lease", "max-lease", "quarantine", "reg-lease", "counters-interval", NULL,
};

static const char *const ca_keys[] = {
	"key", "cert", "chain", "crl-url", "crl-period", "crl-listen", "notify-port", NULL,
};

/* xdnatd --help-config: the reference of xdnatd.conf(5), from the same
 * tables the parser uses. */
static void usage_config(void)
{
	printf("Usage: xdnatd --config FILE [OPTIONS]\n"
	       "\n"
	       "The configuration file of xdnatd: INI sections of 'key = value' lines;\n"
	       "'#' and ';' start comments.  Every key takes the value of the xdnatd\n"
	       "option named in parentheses and is checked the same way (see xdnatd(8)\n"
	       "for values and defaults); options on the command line override the file.\n"
	       "Errors name the file, the line and the key, and every error of a file is\n"
	       "reported at once.  'xdnatd --config FILE --check-config' validates a file\n"
	       "(and that its interfaces exist) without changing anything; SIGHUP makes a\n"
	       "running xdnatd re-read it.\n"
	       "\n"
	       "Booleans (keep-maps, no-sysctl, no-neigh, verbose, enabled) take yes/no,\n"
	       "true/false, on/off or 1/0.  global takes a list separated by commas.\n"
	       "\n[router]\n");
	for (int i = 0; router_keys[i]; i++)
		printf("  %-16s (--%s)\n", router_keys[i], router_keys[i]);
	printf("\n[rsip]\n  %-16s (--rsip)\n", "enabled");
	printf("  %-16s (--rsip-port)\n  %-16s (--rsip-max-clients)\n  %-16s (--rsip-idle)\n",
	       "port", "max-clients", "idle");
	for (int i = 0; rsip_keys[i]; i++)
		printf("  %-16s (--%s)\n", rsip_keys[i], rsip_keys[i]);
	printf("\n[metrics]\n  %-16s (--metrics)\n", "listen");
	printf("\n[ca]\n");
	for (int i = 0; ca_keys[i]; i++)
		printf("  %-16s (--%s%s)\n", ca_keys[i], i < 3 ? "ca-" : "", ca_keys[i]);
	printf("\nExample:\n"
	       "  [router]\n"
	       "  wan = eth0\n"
	       "  lan = eth1\n"
	       "  global = 203.0.113.5, 203.0.113.6\n"
	       "  unknown = drop\n"
	       "  keep-maps = yes\n"
	       "\n"
	       "  [rsip]\n"
	       "  enabled = yes\n"
	       "  lease = 600\n"
	       "  quarantine = 120\n"
	       "\n"
	       "  [metrics]\n"
	       "  listen = 127.0.0.1:9477\n");
}

/* Which long option a section/key names, or NULL. */
static const struct option *config_option(const char *section, const char *key, char *buf,
					  size_t len)
{
	const char *name = NULL;

	if (!strcmp(section, "router")) {
		for (int i = 0; router_keys[i]; i++)
			if (!strcmp(key, router_keys[i]))
				name = key;
	} else if (!strcmp(section, "rsip")) {
		for (int i = 0; rsip_keys[i]; i++)
			if (!strcmp(key, rsip_keys[i]))
				name = key;
		if (!strcmp(key, "enabled"))
			name = "rsip";
		else if (!strcmp(key, "port") || !strcmp(key, "max-clients") || !strcmp(key, "idle")) {
			snprintf(buf, len, "rsip-%s", key);
			name = buf;
		}
	} else if (!strcmp(section, "metrics") && !strcmp(key, "listen")) {
		name = "metrics";
	} else if (!strcmp(section, "ca")) {
		for (int i = 0; ca_keys[i]; i++) {
			if (strcmp(key, ca_keys[i]))
				continue;
			snprintf(buf, len, "%s%s", i < 3 ? "ca-" : "", key);
			name = buf;
		}
	}
	if (!name)
		return NULL;
	for (int i = 0; lopts[i].name; i++)
		if (!strcmp(lopts[i].name, name))
			return &lopts[i];
	return NULL;
}

static int config_handler(void *user, const char *section, const char *key, const char *value)
{
	struct config_ctx *x = user;
	const struct option *opt;
	const char *saved = xd_progname;
	char buf[32], *val;
	int rc = 0;

	snprintf(x->where, sizeof(x->where), "xdnatd: %s:%d", x->path, x->line);
	opt = config_option(section, key, buf, sizeof(buf));
	if (!opt) {
		if (*section)
			fprintf(stderr, "%s: unknown key '%s' in section [%s] (see xdnatd.conf(5))\n",
				x->where, key, section);
		else
			fprintf(stderr, "%s: key '%s' outside a section: put it under [router], "
				"[rsip] or [metrics]\n", x->where, key);
		x->errors++;
		return 1; /* keep going: report every error at once */
	}
	if (opt->has_arg == no_argument) {
		bool on;

		if (parse_bool(value, &on)) {
			fprintf(stderr, "%s: %s: '%s' is not yes or no\n", x->where, key, value);
			x->errors++;
			return 1;
		}
		/* Booleans only switch on; "no" keeps the default (off). */
		if (on) {
			x->o->in_config = true;
			rc = opt->val == 'v' ? (xd_verbose = 1, 0) : apply_opt(x->o, opt->val, NULL);
			x->o->in_config = false;
		}
	} else {
		val = strdup(value);
		if (!val || x->o->n_owned == sizeof(x->o->owned) / sizeof(x->o->owned[0])) {
			free(val);
			fprintf(stderr, "%s: too many keys\n", x->where);
			x->errors++;
			return 0;
		}
		x->o->owned[x->o->n_owned++] = val;
		xd_progname = x->where; /* option errors then name file and line */
		x->o->in_config = true;
		rc = apply_opt(x->o, opt->val, val);
		x->o->in_config = false;
		xd_progname = saved;
	}
	if (rc)
		x->errors++;
	return 1;
}

static int load_config(struct opts *o, const char *path)
{
	struct config_ctx x = { .o = o, .path = path };
	int rc;

	x.f = fopen(path, "r");
	if (!x.f) {
		xd_err("cannot read configuration %s: %s", path, strerror(errno));
		return -errno;
	}
	rc = ini_parse_stream(config_reader, &x, config_handler, &x);
	fclose(x.f);
	if (rc > 0) {
		fprintf(stderr, "xdnatd: %s:%d: syntax error (expected [section] or key = value)\n",
			path, rc);
		return -EINVAL;
	}
	if (rc < 0) {
		xd_err("cannot parse %s", path);
		return -EINVAL;
	}
	return x.errors ? -EINVAL : 0;
}

static void free_opts(struct opts *o)
{
	for (int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
	o->n_owned = 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
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
			usage_config();
			exit(0);
		}
	}
	if (config) {
		o->config = config;
		if (load_config(o, config))
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
			if (apply_opt(o, c, optarg))
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

/* ---------------------------------------------------------------- lock */

static int take_lock(struct daemon *d)
{
	char path[300], pid[32];
	int fd;

	if (mkdir(RUN_DIR, 0755) && errno != EEXIST) {
		xd_err("cannot create %s: %s", RUN_DIR, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), RUN_DIR "/%s.lock", d->o.instance);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		xd_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t n = read(fd, pid, sizeof(pid) - 1);

		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		xd_err("instance '%s' is already running (pid %s, lock %s)", d->o.instance,
		       *pid ? pid : "?", path);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0) {
		int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

		if (write(fd, pid, (size_t)n) != n)
			xd_warn("cannot record pid in %s", path);
	}
	d->lock_fd = fd;
	return 0;
}

/* ------------------------------------------------------------ sysctls */

/* The value our predecessor (reload-programs) found before changing @path. */
static bool saved_sysctl(const char *path, char *old, size_t len)
{
	const char *env = getenv(SAVED_SYSCTLS_ENV);
	size_t n = strlen(path);

	while (env && *env) {
		const char *end = strchr(env, ';');
		size_t l = end ? (size_t)(end - env) : strlen(env);

		if (l > n && !strncmp(env, path, n) && env[n] == '=' && l - n - 1 < len) {
			memcpy(old, env + n + 1, l - n - 1);
			old[l - n - 1] = '\0';
			return true;
		}
		env = end ? end + 1 : NULL;
	}
	return false;
}

/* The current value of @path, or @fallback. */
static const char *cur_or(const char *path, const char *fallback)
{
	static char buf[32];

	return xd_sysctl_get(path, buf, sizeof(buf)) ? fallback : buf;
}

static int set_sysctl(struct daemon *d, const char *path, const char *val)
{
	struct sysctl_saved *s;
	int rc;

	if (d->n_sysctls == (int)(sizeof(d->sysctls) / sizeof(d->sysctls[0])))
		return -ENOSPC;
	s = &d->sysctls[d->n_sysctls];
	snprintf(s->path, sizeof(s->path), "%s", path);
	rc = xd_sysctl_get(path, s->old, sizeof(s->old));
	if (rc) {
		xd_err("cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	d->n_sysctls++;
	if (saved_sysctl(path, s->old, sizeof(s->old)))
		s->changed = true; /* our predecessor changed it: restore its original */
	if (!strcmp(s->old, val) || !strcmp(cur_or(path, s->old), val))
		return 0;
	rc = xd_sysctl_set(path, val);
	if (rc == 0)
		s->changed = true;
	return rc;
}

static void restore_sysctls(struct daemon *d)
{
	for (int i = d->n_sysctls - 1; i >= 0; i--) {
		if (d->sysctls[i].changed && xd_sysctl_set(d->sysctls[i].path, d->sysctls[i].old))
			xd_warn("could not restore %s to %s", d->sysctls[i].path, d->sysctls[i].old);
	}
	d->n_sysctls = 0;
}

/*
 * ip_forward: the stack forwards what XDP hands it when a next hop is not
 * resolved yet.  accept_local: those packets carry the router's own
 * addresses (the global address from the LAN, the tunnel source towards the
 * LAN), which the kernel otherwise drops as martians.
 */
static int setup_sysctls(struct daemon *d)
{
	const char *ifs[2] = { d->o.wan, d->o.lan };
	char path[128];
	int rc = set_sysctl(d, "/proc/sys/net/ipv4/ip_forward", "1");

	for (int i = 0; i < 2 && !rc; i++) {
		if (i == 1 && !strcmp(ifs[0], ifs[1]))
			break;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/accept_local", ifs[i]);
		rc = set_sysctl(d, path, "1");
	}
	return rc;
}

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

static void detach_all(struct daemon *d)
{
	detach_xdp(d, 0);
	detach_xdp(d, 1);
	detach_tc(d, 0, d->wan_ifindex);
	if (d->lan_ifindex != d->wan_ifindex)
		detach_tc(d, 1, d->lan_ifindex);
}

static int attach_all(struct daemon *d)
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
			detach_all(d);
			if (d->o.mode == MODE_XDP || rc == -EBUSY || rc == -EEXIST)
				return rc;
			xd_warn("native XDP unavailable on %s (%s): falling back to tc, which is slower",
				d->o.wan, strerror(-rc));
		}
		d->tc_mode = true;
		rc = attach_tc(d, 0, s->progs.xdnat_onearm_tc, d->wan_ifindex, d->o.wan);
		if (rc)
			detach_all(d);
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
		detach_all(d);
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
		detach_all(d);
	return rc;
}

/* ---------------------------------------------------------------- load */

static int load(struct daemon *d)
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
	s->rodata->cfg = d->cfg;
	if ((rc = bpf_map__set_max_entries(s->maps.xdnat_ports, d->o.n_gaddrs * XDNAT_PORTS_PER_GADDR)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_spis, spi_entries)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_hosts, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_lan_idx, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_hstats, d->o.max_hosts)) ||
	    (rc = bpf_map__set_max_entries(s->maps.xdnat_host_nh, d->o.max_hosts))) {
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

static void unpin_maps(struct daemon *d)
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
static void neigh_scan(struct daemon *d)
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

static void neigh_cleanup(struct daemon *d)
{
	if (d->neigh && !d->o.no_neigh && xd_neigh_remove_ours(d->neigh))
		xd_warn("could not remove xdnatd's neighbour entries on %s", d->o.lan);
	xd_neigh_close(d->neigh);
	d->neigh = NULL;
}

/* ---------------------------------------------------------- RSIP server */

/* The LAN's network (for QUERY: which destinations are local). */
static void lan_network(const char *ifname, uint32_t addr_be, uint32_t *net, uint32_t *mask)
{
	struct ifaddrs *ifa, *i;

	*net = addr_be;
	*mask = 0xffffffffu;
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, ifname) ||
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != addr_be || !i->ifa_netmask)
			continue;
		*mask = ((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr;
		*net = addr_be & *mask;
	}
	freeifaddrs(ifa);
}

/*
 * Shared IKE ports: mark them in the pinned port map on every global
 * address (before the hooks run and before RSIP hands out ports), and free
 * the ones an earlier run shared that are no longer configured.  Default
 * hosts set with xdnatctl survive a restart.
 */
static int apply_shared_ike(struct daemon *d)
{
	struct xd_maps m;
	int rc;

	if (xd_maps_open(d->o.pin_base, d->o.instance, &m))
		return -EIO;
	rc = xd_shared_ports_apply(&m, d->o.shared_ike, d->o.n_shared_ike);
	/* The router's own service ports, the same way (after the shared ones,
	 * which they must not overlap). */
	if (!rc)
		rc = xd_router_ports_apply(&m, d->o.router_ports, d->o.n_router_ports);
	xd_maps_close(&m);
	if (!rc && d->o.n_shared_ike) {
		char list[64] = "";
		size_t l = 0;

		for (unsigned i = 0; i < d->o.n_shared_ike; i++)
			l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%u", i ? "," : "",
					      d->o.shared_ike[i]);
		printf("xdnatd: shared IKE ports %s (IKE and ESP-in-UDP steered by SPI)\n", list);
	}
	return rc;
}

static int start_rsip(struct daemon *d)
{
	struct rsip_config *c = &d->o.rcfg;
	struct rsip_backend be;
	char a[INET_ADDRSTRLEN];

	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->maps))
		return -EIO;
	c->instance = d->o.instance;
	memcpy(c->gaddrs, d->o.gaddrs, sizeof(c->gaddrs));
	c->n_gaddrs = d->o.n_gaddrs;
	c->router_lan = d->o.lan_addr;
	c->max_hosts = d->o.max_hosts;
	c->spi_bits = d->o.spi_bits;
	/* Announce the shared IKE ports to the hosts (docs/SHARED-IKE.md):
	 * 500 carries plain IKE, every other shared port RFC 3948 framing,
	 * as the datapath treats them. */
	_Static_assert(XDNAT_MAX_SHARED_PORTS <= RSIP_SHARED_IKE_MAX, "shared ports fit the wire");
	memset(&c->shared_ike, 0, sizeof(c->shared_ike));
	for (unsigned i = 0; i < d->o.n_shared_ike; i++) {
		c->shared_ike.port[i] = d->o.shared_ike[i];
		c->shared_ike.framing[i] = d->o.shared_ike[i] == XDNAT_IKE_PORT ?
			XDNAT_IKE_FRAMING_IKE : XDNAT_IKE_FRAMING_RFC3948;
	}
	c->shared_ike.n = d->o.n_shared_ike;
	lan_network(d->o.lan, d->o.lan_addr, &c->local_net, &c->local_mask);
	rsip_backend_maps(&be, &d->maps);
	if (rsip_server_open(&d->rsip, c, &be)) {
		xd_maps_close(&d->maps);
		return -EIO;
	}
	/* LAN side only: the router's LAN address, bound to the LAN device. */
	if (rsip_server_listen(&d->rsip, d->o.lan_addr, (uint16_t)d->o.rsip_port, d->o.lan,
			       d->o.rsip_max_clients, d->o.rsip_idle)) {
		rsip_server_close(&d->rsip);
		xd_maps_close(&d->maps);
		return -EIO;
	}
	d->rsip_on = true;
	printf("xdnatd: RSIP server on %s:%u (dev %s), state %s/%s.db\n", xd_ipstr(d->o.lan_addr, a),
	       d->o.rsip_port, d->o.lan, c->state_dir, d->o.instance);
	return 0;
}

/* ------------------------------------------------------------- Local CA */

static int crl_http(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
	struct daemon *d = ctx;
	int status = 503;

	(void)path;
	pthread_mutex_lock(&d->crl_mu);
	if (d->crl && (*body = malloc(d->crl_len))) {
		memcpy(*body, d->crl, d->crl_len);
		*len = d->crl_len;
		*ctype = "application/pkix-crl";
		status = 200;
	}
	pthread_mutex_unlock(&d->crl_mu);
	return status;
}

/*
 * Revocation notices: every remote the datapath saw sending ESP/AH to a host
 * whose certificate was just revoked gets one notice with those of the
 * revoked certificates it dealt with.
 */
static void notify_peers(struct daemon *d, const struct xd_ca_revoked *rv, unsigned n)
{
	int fd = bpf_map__fd(d->skel->maps.xdnat_peers);
	struct xdnat_peer_key k, next;
	uint32_t remotes[256];
	unsigned nr = 0, guard = 0;
	struct lca_notice_entry *e = calloc(n, sizeof(*e));
	size_t crl_len = 0;
	const uint8_t *crl = xd_ca_crl(d->ca, &crl_len);
	int rc;

	if (!e) {
		xd_warn("out of memory: no revocation notices");
		return;
	}
	for (rc = bpf_map_get_next_key(fd, NULL, &next); !rc && guard++ < XDNAT_PEER_ENTRIES;
	     rc = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		for (unsigned i = 0; i < n; i++) {
			bool dup = false;

			if (!rv[i].dp_host_id || rv[i].dp_host_id != k.host_id)
				continue;
			for (unsigned j = 0; j < nr; j++)
				dup |= remotes[j] == k.remote;
			if (!dup && nr < sizeof(remotes) / sizeof(remotes[0]))
				remotes[nr++] = k.remote;
		}
	}
	for (unsigned r = 0; r < nr; r++) {
		struct lca_err err = { { 0 } };
		unsigned char *der = NULL;
		size_t len = 0;
		unsigned m = 0;
		char what[96], a[INET_ADDRSTRLEN];

		for (unsigned i = 0; i < n; i++) {
			struct xdnat_peer_key pk = { .host_id = rv[i].dp_host_id, .remote = remotes[r] };
			struct xdnat_peer_val pv;

			if (!rv[i].dp_host_id || bpf_map_lookup_elem(fd, &pk, &pv))
				continue;
			snprintf(e[m].serial, sizeof(e[m].serial), "%.40s", rv[i].serial);
			snprintf(e[m].identity, sizeof(e[m].identity), "%s", rv[i].identity);
			e[m].revoked_at = rv[i].revoked_at;
			e[m].reason = rv[i].reason;
			m++;
		}
		if (!m)
			continue;
		if (lca_notice_make(xd_ca_lca(d->ca), e, m, crl, crl_len, (int64_t)time(NULL), &der, &len,
				    &err)) {
			xd_warn("revocation notice to %s: %s", xd_ipstr(remotes[r], a), err.msg);
			continue;
		}
		snprintf(what, sizeof(what), "%u certificate%s, first %.16s...", m, m == 1 ? "" : "s",
			 e[0].serial);
		if (!xd_notifier_queue(d->notifier, remotes[r], der, len, what))
			printf("xdnatd: revocation notice (%s) to %s\n", what, xd_ipstr(remotes[r], a));
		OPENSSL_free(der);
	}
	fflush(stdout);
	free(e);
}

/* New revocations (from any process on the store): a new CRL, published. */
static void ca_tick(struct daemon *d)
{
	struct xd_ca_revoked rv[32];
	unsigned n = 0;
	int rc = xd_ca_poll(d->ca, (int64_t)time(NULL), rv, sizeof(rv) / sizeof(rv[0]), &n);

	for (unsigned i = 0; i < n; i++)
		printf("xdnatd: certificate %s of '%s' (%s) revoked: %s\n", rv[i].serial, rv[i].host,
		       rv[i].identity, lca_reason_name(rv[i].reason));
	if (n)
		fflush(stdout);
	if (n && d->notifier)
		notify_peers(d, rv, n);
	if (rc == 1) {
		size_t len;
		const uint8_t *crl = xd_ca_crl(d->ca, &len);
		uint8_t *copy = malloc(len);

		if (!copy) {
			xd_warn("out of memory: the published CRL is not the newest");
			return;
		}
		memcpy(copy, crl, len);
		pthread_mutex_lock(&d->crl_mu);
		free(d->crl);
		d->crl = copy;
		d->crl_len = len;
		pthread_mutex_unlock(&d->crl_mu);
	}
}

static void stop_ca(struct daemon *d)
{
	if (!d->ca)
		return;
	xd_httpd_free(d->crl_httpd);
	d->crl_httpd = NULL;
	xd_notifier_close(d->notifier);
	d->notifier = NULL;
	memset(&d->rsip.certs, 0, sizeof(d->rsip.certs));
	xd_ca_close(d->ca);
	d->ca = NULL;
	free(d->crl);
	d->crl = NULL;
	pthread_mutex_destroy(&d->crl_mu);
}

static int start_ca(struct daemon *d)
{
	struct xd_ca_config cc = {
		.key_path = d->o.ca_key, .cert_path = d->o.ca_cert, .chain_path = d->o.ca_chain,
		.crl_url = d->o.crl_url, .crl_period_s = d->o.crl_period,
	};
	char a[INET_ADDRSTRLEN];
	unsigned n = 0;

	if (xd_ca_open(&cc, d->rsip.st, &d->ca))
		return -EINVAL;
	pthread_mutex_init(&d->crl_mu, NULL);
	xd_ca_rsip_ops(d->ca, &d->rsip.certs);
	/* Before recovery: the notices owed from before a crash go out too. */
	if (d->o.notify_port && xd_notifier_open(d->o.gaddrs[0], (uint16_t)d->o.notify_port,
						 &d->notifier))
		xd_warn("revocation notices are off (--notify-port 0 silences this)");
	/* Recovery: what lapsed while we were down is revoked (the store's
	 * allocations are the truth), then a fresh CRL. */
	if (xd_ca_reconcile(d->ca, (int64_t)time(NULL), &n)) {
		stop_ca(d);
		return -EIO;
	}
	if (n)
		printf("xdnatd: local CA: %u certificate%s revoked: their allocations lapsed while "
		       "xdnatd was down\n", n, n == 1 ? "" : "s");
	ca_tick(d);
	d->crl_httpd = xd_httpd_new(d->o.crl_addr, d->o.crl_port);
	if (!d->crl_httpd || xd_httpd_route(d->crl_httpd, "/crl/lca.crl", crl_http, d) ||
	    xd_httpd_start(d->crl_httpd)) {
		xd_err("cannot serve the CRL on %s:%u (--crl-listen)", xd_ipstr(d->o.crl_addr, a),
		       d->o.crl_port);
		stop_ca(d);
		return -EADDRNOTAVAIL;
	}
	printf("xdnatd: Local CA on, CRL at %s (served on %s:%u)\n", d->o.crl_url,
	       xd_ipstr(d->o.crl_addr, a), d->o.crl_port);
	return 0;
}

/* ---------------------------------------------------------------- main */

/* Counter totals across map generations (counters.h): with --rsip or
 * --state-dir.  The first save folds what an earlier generation left. */
static void save_counters(struct daemon *d)
{
	int rc;

	if (!d->ctr_db)
		return;
	rc = xd_ctr_save(d->ctr_db, &d->cmaps);
	if (rc)
		xd_warn("cannot save the counters' totals: %s", strerror(-rc));
	d->ctr_saved_ms = rsip_now_ms();
}

static void start_counters(struct daemon *d)
{
	if (!d->o.rsip && !d->o.state_dir_set)
		return;
	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->cmaps))
		return;
	char err[256];

	if (xd_store_open(d->o.rcfg.state_dir, d->o.instance, 0, &d->ctr_db, err, sizeof(err))) {
		xd_warn("%s", err);
		xd_maps_close(&d->cmaps);
		xd_warn("counter totals are not kept across reboots");
		return;
	}
	save_counters(d);
	printf("xdnatd: counter totals in %s/%s.db, saved every %u s\n", d->o.rcfg.state_dir,
	       d->o.instance, d->o.counters_interval);
}

static void stop_counters(struct daemon *d)
{
	if (!d->ctr_db)
		return;
	save_counters(d);
	xd_store_close(d->ctr_db);
	d->ctr_db = NULL;
	xd_maps_close(&d->cmaps);
}

static int start_metrics(struct daemon *d)
{
	char a[INET_ADDRSTRLEN];

	if (xd_maps_open(d->o.pin_base, d->o.instance, &d->mmaps))
		return -ENOENT;
	d->mmaps_open = true;
	d->httpd = xd_httpd_new(d->o.metrics_addr, d->o.metrics_port);
	d->mctx = (struct xd_metrics_ctx){
		.maps = &d->mmaps, .instance = d->o.instance,
		.state_dir = d->ctr_db ? d->o.rcfg.state_dir : NULL,
	};
	if (!d->httpd || xd_httpd_route(d->httpd, "/metrics", xd_metrics_http, &d->mctx) ||
	    xd_httpd_start(d->httpd)) {
		xd_httpd_free(d->httpd);
		d->httpd = NULL;
		if (d->o.metrics_explicit)
			return -EADDRNOTAVAIL;
		xd_warn("metrics endpoint disabled (use --metrics ADDR:PORT or --metrics off)");
		return -EADDRNOTAVAIL;
	}
	xd_info("metrics at http://%s:%u/metrics", xd_ipstr(d->o.metrics_addr, a),
		xd_httpd_port(d->httpd));
	return 0;
}

static void stop_metrics(struct daemon *d)
{
	xd_httpd_free(d->httpd);
	d->httpd = NULL;
	if (d->mmaps_open)
		xd_maps_close(&d->mmaps);
	d->mmaps_open = false;
}

/* Control socket (ctl_sock.h): after a revocation through it, the new CRL
 * and the notices go out before the answer does. */
static void ctl_changed(void *arg)
{
	struct daemon *d = arg;

	if (d->ca)
		ca_tick(d);
}

static void start_ctl(struct daemon *d)
{
	struct ctl_ops ops = {
		.rsip = &d->rsip, .maps = &d->maps, .instance = d->o.instance,
		.arg = d, .changed = ctl_changed,
	};
	char path[128];

	if (ctl_open(&ops, &d->ctl)) {
		xd_warn("no control socket: xdnatctl works on the state database directly");
		return;
	}
	ctl_sock_path(d->o.instance, path, sizeof(path));
	printf("xdnatd: control socket %s\n", path);
}

static void stop_ctl(struct daemon *d)
{
	ctl_close(d->ctl);
	d->ctl = NULL;
}

/*
 * reload-programs: hand over to a fresh copy of our binary (possibly a newer
 * build installed in its place).  Links, maps, sysctls and neighbours stay as
 * they are; the new process reuses the pins and swaps its programs in with
 * bpf_link_update.  Only what it would collide with is released here.
 */
static void reexec(struct daemon *d, char **argv)
{
	char saved[1024] = "";
	size_t off = 0;

	stop_metrics(d);
	stop_counters(d);
	stop_ctl(d);
	stop_ca(d);
	if (d->rsip_on) {
		rsip_server_close(&d->rsip);
		xd_maps_close(&d->maps);
		d->rsip_on = false;
	}
	xd_fragq_stop(NULL);
	for (int i = 0; i < d->n_sysctls; i++) {
		int n;

		if (!d->sysctls[i].changed)
			continue;
		n = snprintf(saved + off, sizeof(saved) - off, "%s%s=%s", off ? ";" : "",
			     d->sysctls[i].path, d->sysctls[i].old);
		if (n < 0 || (size_t)n >= sizeof(saved) - off) {
			xd_err("reload-programs: too many sysctls to hand over");
			return;
		}
		off += (size_t)n;
	}
	if (setenv(SAVED_SYSCTLS_ENV, saved, 1)) {
		xd_err("reload-programs: setenv: %s", strerror(errno));
		return;
	}
	/* The lock is O_CLOEXEC: released by exec, taken by the new process. */
	fflush(NULL);
	execv(d->self_exe, argv);
	xd_err("reload-programs: cannot execute %s: %s; exiting with the datapath "
	       "left forwarding (start xdnatd again to take it over)", d->self_exe,
	       strerror(errno));
}

/*
 * SIGHUP: is the configuration, read again, valid and applicable without a
 * restart?  Interfaces, global addresses, instance, pins, table sizes and
 * the state directory shape the pinned maps and the database; everything
 * else (policies, leases, metrics, RSIP, caches) is applied by re-executing.
 */
static bool reload_allowed(struct daemon *d)
{
	struct opts n;
	bool ok = false;
	const char *why = NULL;

	if (!d->o.config) {
		xd_warn("SIGHUP: no --config to re-read; nothing to do");
		return false;
	}
	if (parse_args(d->argc, d->argv, &n)) {
		xd_err("SIGHUP: %s is not valid (see above); keeping the running configuration",
		       d->o.config);
		goto out;
	}
	if (strcmp(n.wan, d->o.wan) || strcmp(n.lan, d->o.lan))
		why = "interfaces";
	else if (n.n_gaddrs != d->o.n_gaddrs ||
		 memcmp(n.gaddrs, d->o.gaddrs, n.n_gaddrs * sizeof(n.gaddrs[0])))
		why = "global addresses";
	else if (strcmp(n.instance, d->o.instance) || strcmp(n.pin_base, d->o.pin_base))
		why = "instance or pin base";
	else if (n.max_hosts != d->o.max_hosts || n.spi_bits != d->o.spi_bits)
		why = "max-hosts or spi-block-bits";
	else if (strcmp(n.rcfg.state_dir ? n.rcfg.state_dir : "",
			d->o.rcfg.state_dir ? d->o.rcfg.state_dir : ""))
		why = "state-dir";
	if (why)
		xd_err("SIGHUP: %s changes the %s, which needs a restart; keeping the running "
		       "configuration", d->o.config, why);
	else
		ok = true;
out:
	free_opts(&n);
	return ok;
}

static int wait_for_signal(struct daemon *d)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		xd_err("signalfd: %s", strerror(errno));
		return -errno;
	}
	uint64_t last_scan = rsip_now_ms();

	for (;;) {
		struct pollfd p[1 + 1 + 1024 + 1 + CTL_MAX_CONNS];
		struct signalfd_siginfo si;
		unsigned np = 1, nr = 0, nc = 0;
		int timeout = NEIGH_SCAN_MS, n;
		uint64_t now;

		p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (d->rsip_on) {
			int w = rsip_server_sweep(&d->rsip);

			if (w < timeout)
				timeout = w;
			nr = rsip_server_pollfds(&d->rsip, p + 1, sizeof(p) / sizeof(p[0]) - 1 -
						 (1 + CTL_MAX_CONNS));
			np += nr;
		}
		nc = ctl_pollfds(d->ctl, p + np, sizeof(p) / sizeof(p[0]) - np);
		np += nc;
		n = poll(p, np, timeout);
		if (n < 0 && errno != EINTR) {
			xd_err("poll: %s", strerror(errno));
			close(sfd);
			return -errno;
		}
		now = rsip_now_ms();
		if (now - last_scan >= NEIGH_SCAN_MS) {
			neigh_scan(d);
			last_scan = now;
		}
		if (n > 0 && d->rsip_on && nr)
			rsip_server_events(&d->rsip, p + 1, nr);
		/* Control requests run here, between the RSIP server's own. */
		if (n > 0 && nc)
			ctl_events(d->ctl, p + 1 + nr, nc);
		if (d->ctr_db && now - d->ctr_saved_ms >= (uint64_t)d->o.counters_interval * 1000)
			save_counters(d);
		if (d->ca)
			ca_tick(d);
		if (d->notifier) {
			int w = xd_notifier_run(d->notifier, rsip_now_ms());

			(void)w; /* at most 1 s: the loop's own period */
		}
		if (n <= 0 || !p[0].revents)
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			if (!reload_allowed(d))
				continue;
			fprintf(stderr, "xdnatd: SIGHUP, applying %s by re-executing %s\n",
				d->o.config, d->self_exe);
			close(sfd);
			return 2;
		}
		if (si.ssi_signo == SIGUSR2) {
			fprintf(stderr, "xdnatd: SIGUSR2, re-executing %s to replace the programs\n",
				d->self_exe);
			close(sfd);
			return 2;
		}
		fprintf(stderr, "xdnatd: %s, detaching\n", strsignal((int)si.ssi_signo));
		close(sfd);
		return 0;
	}
}

/* Everything that can be checked before touching the system. */
static int validate(struct daemon *d)
{
	char addr[INET_ADDRSTRLEN];

	d->wan_ifindex = xd_ifindex(d->o.wan);
	if (d->wan_ifindex < 0) {
		xd_err("--wan: no interface '%s'", d->o.wan);
		return -EINVAL;
	}
	d->lan_ifindex = xd_ifindex(d->o.lan);
	if (d->lan_ifindex < 0) {
		xd_err("--lan: no interface '%s'", d->o.lan);
		return -EINVAL;
	}
	if (!d->o.lan_addr_set && xd_if_first_ipv4(d->o.lan, &d->o.lan_addr)) {
		xd_err("--lan: %s has no IPv4 address; give the router's LAN address with --lan-addr",
		       d->o.lan);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < d->o.n_gaddrs; i++) {
		if (d->o.gaddrs[i] == d->o.lan_addr) {
			xd_err("the LAN address %s is also given as a global address",
			       xd_ipstr(d->o.lan_addr, addr));
			return -EINVAL;
		}
	}
	if (xd_pin_dir(d->o.pin_base, d->o.instance, d->pin_dir, sizeof(d->pin_dir)))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon d = { .lock_fd = -1, .link_fd = { -1, -1 } };
	sigset_t set;
	int rc;

	xd_progname = "xdnatd";
	d.argc = argc;
	d.argv = argv;
	if (parse_args(argc, argv, &d.o)) {
		free_opts(&d.o);
		return 1;
	}
	rc = validate(&d);
	if (rc || d.o.check_only) {
		if (!rc)
			printf("xdnatd: configuration OK%s%s\n", d.o.config ? ": " : "",
			       d.o.config ? d.o.config : "");
		free_opts(&d.o);
		return rc ? 1 : 0;
	}

	d.cfg.wan_ifindex = d.wan_ifindex;
	d.cfg.lan_ifindex = d.lan_ifindex;
	d.cfg.lan_addr = d.o.lan_addr;
	d.cfg.flags = d.o.unknown_drop ? XDNAT_F_UNKNOWN_DROP : 0;
	d.cfg.n_gaddrs = d.o.n_gaddrs;
	d.cfg.spi_block_bits = d.o.spi_bits;
	d.cfg.max_hosts = d.o.max_hosts;
	d.cfg.nh_cache_ms = d.o.nh_cache_ms;
	memcpy(d.cfg.gaddrs, d.o.gaddrs, sizeof(d.o.gaddrs));

	/* Signals are read from a signalfd; block them from here on so a
	 * SIGTERM during start-up still leads to a clean detach. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	{
		ssize_t n = readlink("/proc/self/exe", d.self_exe, sizeof(d.self_exe) - 1);

		d.self_exe[n > 0 ? n : 0] = '\0';
	}

	if (take_lock(&d))
		return 1;
	{
		struct stat st;
		char base[256];

		snprintf(base, sizeof(base), "%s", d.o.pin_base);
		if (stat(base, &st) && mkdir(base, 0700) && errno != EEXIST) {
			xd_err("cannot create %s: %s (is bpffs mounted at /sys/fs/bpf?)", base,
			       strerror(errno));
			rc = 1;
			goto out_lock;
		}
	}
	if (mkdir(d.pin_dir, 0700) && errno != EEXIST) {
		xd_err("cannot create %s: %s", d.pin_dir, strerror(errno));
		rc = 1;
		goto out_lock;
	}
	{
		char info[300];

		snprintf(info, sizeof(info), "%s/" XDNAT_MAP_INFO, d.pin_dir);
		d.maps_reused = access(info, F_OK) == 0;
	}
	if (load(&d)) {
		rc = 1;
		goto out_skel;
	}
	if (apply_shared_ike(&d)) {
		rc = 1;
		goto out_skel;
	}
	if (!d.o.no_sysctl && setup_sysctls(&d)) {
		rc = 1;
		goto out_sysctl;
	}
	if (attach_all(&d)) {
		rc = 1;
		goto out_sysctl;
	}
	if (d.tc_mode) {
		__u32 zero = 0;

		d.cfg.flags |= XDNAT_F_TC_MODE;
		if (bpf_map_update_elem(bpf_map__fd(d.skel->maps.xdnat_info), &zero, &d.cfg, BPF_ANY))
			xd_warn("cannot record tc mode in %s: %s", XDNAT_MAP_INFO, strerror(errno));
	}
	if (!d.o.no_neigh) {
		d.neigh_want = calloc(d.o.max_hosts, sizeof(*d.neigh_want));
		d.neigh = d.neigh_want ? xd_neigh_open(d.lan_ifindex) : NULL;
		if (!d.neigh)
			xd_warn("cannot keep the hosts' neighbour entries (%s): the first packets to "
				"a host go through the stack until ARP resolves it", strerror(errno));
	}
	neigh_scan(&d);
	if (xd_fragq_start(d.skel, d.wan_ifindex))
		xd_warn("no fragment slow path: out-of-order fragments follow the unknown policy");
	if (d.o.rsip && start_rsip(&d)) {
		rc = 1;
		goto out_detach;
	}
	if (d.o.ca_key && start_ca(&d)) {
		rc = 1;
		goto out_detach;
	}
	if (d.rsip_on)
		start_ctl(&d);
	start_counters(&d);

	if (d.o.metrics_port && start_metrics(&d) && d.o.metrics_explicit) {
		rc = 1;
		goto out_detach;
	}

	printf("xdnatd: ready: instance %s, %s on %s (ifindex %d) and %s (ifindex %d), "
	       "%u global address%s, pins in %s\n", d.o.instance, d.tc_mode ? "tc" : "xdp",
	       d.o.wan, d.wan_ifindex, d.o.lan, d.lan_ifindex, d.o.n_gaddrs,
	       d.o.n_gaddrs == 1 ? "" : "es", d.pin_dir);
	fflush(stdout);

	rc = wait_for_signal(&d);
	if (rc == 2) {
		reexec(&d, argv); /* returns only on failure */
		rc = 1;
		goto out_keep;
	}
	rc = rc ? 1 : 0;
out_detach:
	stop_metrics(&d);
	stop_ctl(&d);
	stop_ca(&d);
	if (d.rsip_on) {
		rsip_server_close(&d.rsip);
		xd_maps_close(&d.maps);
	}
	detach_all(&d);
	/* After the detach: nothing counts any more. */
	stop_counters(&d);
	neigh_cleanup(&d);
out_sysctl:
	restore_sysctls(&d);
out_skel:
	/* A failed start leaves an earlier run's maps (still forwarding) alone. */
	if (rc ? !d.maps_reused : !d.o.keep_maps)
		unpin_maps(&d);
	{
		struct xd_fragq_stats fq = { 0 };

		xd_fragq_stop(&fq);
		if (fq.held)
			xd_info("fragment slow path: %llu held, %llu re-injected, %llu expired, "
				"%llu evicted", (unsigned long long)fq.held,
				(unsigned long long)fq.reinjected, (unsigned long long)fq.expired,
				(unsigned long long)fq.evicted);
	}
	xdnat_router__destroy(d.skel);
	goto out_lock;
out_keep:
	/* The datapath keeps forwarding without us, as after SIGKILL; the
	 * next start takes it over. */
	stop_metrics(&d);
	xdnat_router__destroy(d.skel);
out_lock:
	free_opts(&d.o);
	xd_neigh_close(d.neigh);
	free(d.neigh_want);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	return rc;
}
