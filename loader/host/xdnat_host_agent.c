// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host: make a LAN host a user of a shared global address behind an
 * xdnat router, with stock Linux means, and undo it all on exit:
 *   - the global address as a /32 on lo;
 *   - routes to global destinations via the router with "src GLOBAL";
 *   - net.ipv4.ip_local_port_range of this network namespace = the port block;
 *   - arp_announce=2 and arp_ignore=1 (ARP must neither use nor answer for
 *     the global address, which the router owns) and rp_filter=0 on the LAN
 *     interface;
 *   - tc programs on the LAN interface: egress packets from the global
 *     address are tunnelled (IP-in-IP) to the router, tunnel packets from
 *     the router are unwrapped on ingress.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include "xdnat.h"
#include "rsip_client.h"
#include "store.h"
#include "rsip_wire.h"
#include "xdnat_hostside.skel.h"
#include "host_reasm.h"
#include "host_cert.h"
#include "swan_conf.h"

#define MAX_ROUTES 32
#define TC_HANDLE 0x4556
#define TC_PRIO 1

struct route {
	char cidr[24];
	char saved[256];   /* the route this one replaced, to restore */
	bool added;
};

struct agent {
	const char *dev;
	uint32_t gaddr, router, lan_addr;
	uint32_t port_first, port_last;
	bool lan_set, ports_set;
	struct route routes[MAX_ROUTES];
	int n_routes;
	bool replace_routes;
	uint32_t tunnel_mtu;  /* route MTU for global traffic; 0: LAN MTU - 20 */
	int ifindex;
	bool addr_added;
	struct { char path[128]; char old[1024]; bool changed; } sysctls[8];
	int n_sysctls;
	struct xdnat_hostside *skel;
	bool hook_created, egress_attached, ingress_attached;
	/* RSIP mode (no --ports): blocks come from the router */
	bool rsip;
	const char *name, *secret_file, *info_file;
	char name_buf[RSIP_KEYID_MAX + 1];
	char info_buf[256];
	uint32_t port_count, spi_count, lease, rsip_port;
	struct rsip_client cl;
	struct rsip_grant grants[64];
	int n_grants;
	int n_port_grants;           /* grants[0..n_port_grants) are ports */
	/* The ports this host holds as sorted, merged runs (one with --ports):
	 * the local port range spans them, the gaps are reserved. */
	struct xd_run port_runs[64];
	int n_port_runs;
	uint32_t spi_first, spi_last;
	bool info_written;
	/* Shared IKE ports (docs/SHARED-IKE.md): --shared-ike forces the mode
	 * (1), --no-shared-ike refuses it (-1); by default (0) it follows the
	 * router's announcement in its REGISTER_RESPONSE. */
	int shared_opt;
	bool shared_ike;           /* in effect: the IKE daemon uses the shared ports */
	uint16_t ike_port, ike_port_natt;  /* which ones (plain IKE, RFC 3948) */
	bool shared_offered;       /* the router announced shared IKE ports */
	/* certificate from the router's LCA (host_cert.h) */
	const char *state_dir, *key_type;
	bool no_cert;
	struct host_cert cert;
	const char *on_renew, *swan_vici;   /* --on-renew, --swan-vici */
	bool swan_no_reload;
	struct swan_conf swan;  /* --swan-dir: strongSwan fragment (swan_conf.h) */
};

#define MAX_GRANTS 64

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xdnat-host --dev IFNAME --router ADDR --secret-file PATH [OPTIONS]\n"
"       xdnat-host --dev IFNAME --router ADDR --global ADDR --ports A-B [OPTIONS]\n"
"\n"
"Configure this host to use a global address shared through an xdnat router\n"
"and keep it so until SIGTERM or SIGINT, then undo every change.  The router\n"
"obtains the global address, a port block and an SPI block from the router\n"
"over RSIP (RFC 3103/3104), renews their leases and frees them on exit; with\n"
"--ports it uses a static configuration instead (xdnatctl host add).\n"
"\n"
"Required:\n"
"  -d, --dev IFNAME        the host's LAN interface towards the router\n"
"  -g, --global ADDR       the shared global address\n"
"  -r, --router ADDR       the router's LAN address (tunnel endpoint)\n"
"\n"
"Options:\n"
"  -P, --ports A-B         this host's port block: becomes the namespace's\n"
"                          ip_local_port_range (recommended: without it,\n"
"                          outgoing connections pick ports the router drops)\n"
"  -a, --lan-addr ADDR     this host's LAN address (default: the first IPv4\n"
"                          address of --dev)\n"
"  -R, --route CIDR        route CIDR via the router with source ADDR; may be\n"
"                          repeated (default: \"default\")\n"
"  -x, --replace-routes    replace existing routes to those CIDRs (they are\n"
"                          restored on exit) instead of refusing\n"
"  -M, --tunnel-mtu N      MTU of those routes (default: the MTU of --dev\n"
"                          minus 20, the tunnel header), so TCP advertises an\n"
"                          MSS and sends segments that fit the tunnel\n"
"\n"
"RSIP mode (without --ports):\n"
"  -s, --secret-file PATH  this host's secret from 'xdnatctl enroll' (mode 0600)\n"
"  -n, --name NAME         the name it was enrolled under (default: hostname)\n"
"      --rsip-port N       the router's RSIP port (default: %d)\n"
"      --port-count N      ports to obtain, in requests of at most 255 (RSIP's\n"
"                          limit), each placed next to this host's ports when\n"
"                          the router can (default: 500).  Hosts starting\n"
"                          together can get runs that came apart: then the\n"
"                          agent asks once or twice more for one run, and\n"
"                          else uses them all: ip_local_port_range spans the\n"
"                          runs, the ports between go to ip_local_reserved_ports\n"
"      --spi-count N       SPIs to obtain, rounded up to whole router blocks;\n"
"                          0: none (default: 1, i.e. one block)\n"
"      --lease S           lease to ask for (default: the router's); renewed\n"
"                          at half its length\n"
"      --info-file PATH    write XDNAT_GLOBAL, _ROUTER, _PORTS (the first run),\n"
"                          _PORT_RUNS (all), _SPIS (shell syntax) for IKE\n"
"                          daemons (default: /run/xdnat/host-ID.env, ID = IFNAME\n"
"                          in the initial network namespace, NETNS-IFNAME in\n"
"                          one named by ip netns, netnsINODE-IFNAME otherwise)\n"
"      --shared-ike        use the router's shared IKE ports even if it does\n"
"                          not announce them (default: when the router\n"
"                          announces them, xdnatd --shared-ike-ports): the\n"
"                          info file also tells the IKE daemon to use them\n"
"                          (500/4500), with IKE SPIs labelled from the SPI\n"
"                          block (docs/SHARED-IKE.md)\n"
"      --no-shared-ike     keep to this host's own ports even if the router\n"
"                          announces shared IKE ports\n"
"  -g, --global ADDR       ask for this global address (default: any)\n"
"\n"
"Certificate (docs/LCA.md): unless --no-cert, a key pair is made here (never\n"
"sent anywhere) and its CSR goes with the last allocation request and with\n"
"every renewal; the router's Local CA returns a certificate for this host's\n"
"identity, ports and SPIs, valid for the lease.  It is written next to the\n"
"key and its paths go into --info-file (XDNAT_CERT, XDNAT_CERT_CHAIN,\n"
"XDNAT_KEY, XDNAT_CERT_SERIAL, XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY).\n"
"      --state-dir DIR     key and certificates: DIR/NAME.key (0600, reused),\n"
"                          DIR/NAME.crt, DIR/NAME-chain.pem (the LCA\n"
"                          certificate) (default: " XDNAT_HOST_STATE_DIR ")\n"
"      --key-type T        p256 (default), p384, ed25519 or rsa3072: for a new key\n"
"      --no-cert           ask for no certificate\n"
"      --on-renew CMD      after each new certificate that replaces one (every\n"
"                          renewal), once the files (and --swan-dir's copies)\n"
"                          are in place: run CMD with /bin/sh -c, with\n"
"                          XDNAT_CERT, XDNAT_CERT_CHAIN, XDNAT_KEY,\n"
"                          XDNAT_CERT_SERIAL, XDNAT_CERT_PREVIOUS_SERIAL,\n"
"                          XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY and\n"
"                          XDNAT_SWAN_DIR in its environment (killed after 30 s)\n"
"\n"
"strongSwan (docs/STRONGSWAN.md):\n"
"      --swan-dir DIR      write a strongSwan fragment from the allocation:\n"
"                          DIR/strongswan.d/xdnat.conf (charon.port, port_nat_t,\n"
"                          spi_min/max, spi_mask/label; 500/4500 with\n"
"                          --shared-ike), DIR/swanctl/ (private/host.key,\n"
"                          x509/host.crt, x509ca/: copies of the key, the\n"
"                          certificate and the LCA chain obtained over RSIP;\n"
"                          with --no-cert a key made here and host.csr;\n"
"                          conf.d/xdnat.conf with the IKE identity)\n"
"      --swan-ca FILE      PEM certificates for DIR/swanctl/x509ca/ (root, LCA)\n"
"                          instead of the LCA chain received over RSIP\n"
"      --swan-vici URI     charon's vici socket (default: swanctl's,\n"
"                          unix:///var/run/charon.vici); with each new\n"
"                          certificate xdnat-host runs, with\n"
"                          SWANCTL_DIR=DIR/swanctl, swanctl --load-creds --clear\n"
"                          and (if DIR/swanctl/swanctl.conf exists)\n"
"                          swanctl --load-conns, so the next authentication\n"
"                          uses the new certificate; SAs are not touched\n"
"      --swan-no-reload    do not (reload charon yourself, e.g. --on-renew)\n"
"\n"
"  -v, --verbose           show every command run\n"
"  -h, --help              this help\n"
"\n"
"Exit status: 0 after a clean stop, 1 on error (changes already made are\n"
"undone).\n", RSIP_DEFAULT_PORT);
}

static int parse_args(int argc, char **argv, struct agent *a)
{
	static const struct option lopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "global", required_argument, NULL, 'g' },
		{ "router", required_argument, NULL, 'r' },
		{ "ports", required_argument, NULL, 'P' },
		{ "lan-addr", required_argument, NULL, 'a' },
		{ "tunnel-mtu", required_argument, NULL, 'M' },
		{ "route", required_argument, NULL, 'R' },
		{ "replace-routes", no_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "secret-file", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "rsip-port", required_argument, NULL, 256 },
		{ "port-count", required_argument, NULL, 257 },
		{ "spi-count", required_argument, NULL, 258 },
		{ "lease", required_argument, NULL, 259 },
		{ "info-file", required_argument, NULL, 260 },
		{ "shared-ike", no_argument, NULL, 0x800 },
		{ "no-shared-ike", no_argument, NULL, 0x801 },
		{ "state-dir", required_argument, NULL, 261 },
		{ "key-type", required_argument, NULL, 262 },
		{ "no-cert", no_argument, NULL, 263 },
		{ "swan-dir", required_argument, NULL, 0x700 },
		{ "swan-ca", required_argument, NULL, 0x701 },
		{ "swan-vici", required_argument, NULL, 0x702 },
		{ "swan-no-reload", no_argument, NULL, 0x703 },
		{ "on-renew", required_argument, NULL, 0x704 },
		{ 0 }
	};
	uint32_t pa, pl;
	int c;

	while ((c = getopt_long(argc, argv, "d:g:r:P:a:R:M:xvhs:n:", lopts, NULL)) != -1) {
		switch (c) {
		case 'd': a->dev = optarg; break;
		case 'g':
			if (xd_parse_ipv4(optarg, &a->gaddr)) {
				xd_err("--global: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			break;
		case 'r':
			if (xd_parse_ipv4(optarg, &a->router)) {
				xd_err("--router: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			break;
		case 'P':
			if (xd_parse_range(optarg, 1, 65535, &a->port_first, &a->port_last)) {
				xd_err("--ports: '%s' is not a port range A-B within 1-65535", optarg);
				return -EINVAL;
			}
			a->ports_set = true;
			break;
		case 'a':
			if (xd_parse_ipv4(optarg, &a->lan_addr)) {
				xd_err("--lan-addr: '%s' is not an IPv4 address", optarg);
				return -EINVAL;
			}
			a->lan_set = true;
			break;
		case 'R':
			if (a->n_routes == MAX_ROUTES) {
				xd_err("--route: at most %d routes", MAX_ROUTES);
				return -E2BIG;
			}
			if (xd_parse_prefix(optarg, &pa, &pl)) {
				xd_err("--route: '%s' is not a prefix ADDR/LEN (host bits zero) or 'default'",
				       optarg);
				return -EINVAL;
			}
			snprintf(a->routes[a->n_routes++].cidr, sizeof(a->routes[0].cidr), "%s", optarg);
			break;
		case 'x': a->replace_routes = true; break;
		case 's': a->secret_file = optarg; break;
		case 'n': a->name = optarg; break;
		case 256: case 257: case 258: case 259: {
			static const char *const nm[] = { "rsip-port", "port-count", "spi-count", "lease" };
			static const uint32_t lo[] = { 1, 2, 0, 1 }, hi[] = { 65535, 65535, 1u << 24, 0x7fffffff };
			uint32_t *dst[] = { &a->rsip_port, &a->port_count, &a->spi_count, &a->lease };

			if (xd_parse_u32(optarg, lo[c - 256], hi[c - 256], dst[c - 256])) {
				xd_err("--%s: '%s' is not a number from %u to %u", nm[c - 256], optarg,
				       lo[c - 256], hi[c - 256]);
				return -EINVAL;
			}
			break;
		}
		case 260: a->info_file = optarg; break;
		case 0x800: case 0x801: {
			int want = c == 0x800 ? 1 : -1;

			if (a->shared_opt && a->shared_opt != want) {
				xd_err("--shared-ike and --no-shared-ike exclude each other");
				return -EINVAL;
			}
			a->shared_opt = want;
			break;
		}
		case 261: a->state_dir = optarg; break;
		case 262: a->key_type = optarg; break;
		case 263: a->no_cert = true; break;
		case 0x700: a->swan.dir = optarg; break;
		case 0x701: a->swan.ca_file = optarg; break;
		case 0x702: a->swan_vici = optarg; break;
		case 0x703: a->swan_no_reload = true; break;
		case 0x704: a->on_renew = optarg; break;
		case 'M':
			if (xd_parse_u32(optarg, 576, 65515, &a->tunnel_mtu)) {
				xd_err("--tunnel-mtu: '%s' is not a number in 576..65515", optarg);
				exit(2);
			}
			break;
		case 'v': xd_verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		default:
			fprintf(stderr, "Try 'xdnat-host --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		xd_err("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	a->rsip = !a->ports_set;
	if (!a->rsip && a->shared_opt > 0) {   /* static: no announcement to follow */
		a->shared_ike = true;
		a->ike_port = XDNAT_IKE_PORT;
		a->ike_port_natt = XDNAT_IKE_NATT_PORT;
	}
	if (!a->dev || !a->router || (!a->rsip && !a->gaddr)) {
		xd_err("--dev, --router and (with --ports) --global are required (see --help)");
		return -EINVAL;
	}
	if (a->rsip && !a->secret_file) {
		xd_err("without --ports, the blocks come from the router over RSIP: give this host's "
		       "secret with --secret-file (see xdnatctl enroll)");
		return -EINVAL;
	}
	if (a->n_routes == 0)
		snprintf(a->routes[a->n_routes++].cidr, sizeof(a->routes[0].cidr), "default");
	return 0;
}

/* ---------------------------------------------------------------- RSIP */

static void log_refusal(const char *what, int rc)
{
	if (rc > 0)
		xd_err("%s: the router refused: %s (%d)", what, rsip_error_name((uint16_t)rc), rc);
	else
		xd_err("%s: %s", what, strerror(-rc));
}

static int write_swan(struct agent *a);

static bool want_cert(const struct agent *a)
{
	return !a->no_cert && a->cert.csr;
}

/* Put the certificate the router just sent (if any) on disk. */
static void take_cert(struct agent *a)
{
	if (!a->cl.cert_new)
		return;
	a->cl.cert_new = false;
	if (host_cert_store(&a->cert, a->cl.cert, a->cl.cert_len, a->cl.cacert, a->cl.cacert_len))
		return;
	xd_info("certificate %s for %s, valid until %lld: %s", a->cert.serial, a->cert.identity,
		(long long)a->cert.not_after, a->cert.crt_path);
}

/* A request that carried our CSR and was refused: say why, and whether to
 * try again without it (the blocks matter more than the certificate). */
static bool cert_refused(struct agent *a, int rc)
{
	if (rc <= 0 || !want_cert(a) || rc == RSIP_E_BAD_BIND_ID || rc == RSIP_E_REGISTER_FIRST)
		return false;
	if (rc == RSIP_E_REGISTRATION_DENIED) {
		xd_err("the router refuses this host a certificate (%s, %d): the operator revoked "
		       "its certificate, and it gets none until it is enrolled again (xdnatctl "
		       "enroll); keeping the blocks", rsip_error_name((uint16_t)rc), rc);
		return true;
	}
	xd_warn("the router refused our certificate request (%s, %d): continuing without a "
		"new certificate", rsip_error_name((uint16_t)rc), rc);
	return true;
}

/*
 * Shared IKE ports in effect after a registration: forced (--shared-ike;
 * the announced ports if any, else 500/4500), refused (--no-shared-ike), or
 * as the router announced them.  From an announcement: port = the
 * plain-IKE port (500 preferred), port_nat_t = an RFC 3948 port (4500
 * preferred); without a plain-IKE port, a second RFC 3948 port serves as
 * charon.port (strongSwan frames IKE with the non-ESP marker on any port
 * but 500).  Returns true when the mode or its ports changed.
 */
static bool decide_shared_ike(struct agent *a)
{
	const struct rsip_shared_ike *o = &a->cl.shared_ike;
	bool was = a->shared_ike, on = false;
	uint16_t ike = 0, natt = 0, pw = a->ike_port, nw = a->ike_port_natt;

	for (unsigned i = 0; i < o->n; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_RFC3948 &&
		    (!natt || o->port[i] == XDNAT_IKE_NATT_PORT))
			natt = o->port[i];
	for (unsigned i = 0; i < o->n; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_IKE && (!ike || o->port[i] == XDNAT_IKE_PORT))
			ike = o->port[i];
	for (unsigned i = 0; i < o->n && !ike; i++)
		if (o->framing[i] == XDNAT_IKE_FRAMING_RFC3948 && o->port[i] != natt)
			ike = o->port[i];
	if (o->n && (!ike || !natt)) {
		if (a->shared_opt >= 0 && !a->n_grants)
			xd_warn("the router shares IKE ports this host cannot use (it needs an IKE "
				"port and a different RFC 3948 port)%s",
				a->shared_opt > 0 ? ": --shared-ike: using 500/4500" : "");
		ike = natt = 0;
	}
	if (a->shared_opt > 0) {
		on = true;
		if (!ike) {
			ike = XDNAT_IKE_PORT;
			natt = XDNAT_IKE_NATT_PORT;
		}
	} else if (a->shared_opt == 0 && ike) {
		on = true;
	}
	/* The router routes IKE on them by SPI: no SPI block, no use. */
	if (on && a->shared_opt == 0 && !a->spi_count)
		on = false;
	if (!on)
		ike = natt = 0;
	a->shared_ike = on;
	a->ike_port = ike;
	a->ike_port_natt = natt;
	a->shared_offered = o->n > 0;
	if (on == was && ike == pw && natt == nw)
		return false;
	/* After the start (a re-registration): the IKE daemon must follow. */
	if (a->n_grants && on)
		xd_warn("the router now shares IKE ports: IKE on %u, NAT-T on %u; the info file "
			"and fragment are rewritten, restart the IKE daemon", ike, natt);
	else if (a->n_grants)
		xd_warn("the router no longer shares IKE ports: this host's own ports again; the "
			"info file and fragment are rewritten, restart the IKE daemon");
	return true;
}

/* For the ready line: what became of shared IKE ports. */
static void print_shared_ike(const struct agent *a)
{
	if (a->shared_ike)
		printf(", shared IKE ports: IKE on %u, NAT-T on %u (%s)", a->ike_port, a->ike_port_natt,
		       a->shared_offered && a->shared_opt == 0 ? "announced by the router" : "--shared-ike");
	else if (a->shared_offered)
		printf(", shared IKE ports announced, not used (%s)",
		       a->shared_opt < 0 ? "--no-shared-ike" : !a->spi_count ? "no SPI block" :
		       "unusable");
}

/* Ask for @want more ports, in requests of at most 255 (RSIP's limit), into
 * a->grants; the router places each next to this host's ports when it can.
 * Returns 0, or -EIO (said why unless @quiet) with what was granted kept in
 * a->grants. */
static int ask_ports(struct agent *a, uint32_t want, bool quiet)
{
	uint32_t got = 0;

	while (got < want) {
		uint32_t n = want - got > 255 ? 255 : want - got;
		struct rsip_grant *g = &a->grants[a->n_grants];
		int rc;

		if (a->n_grants == MAX_GRANTS - 1) {   /* one slot stays for the SPIs */
			xd_err("asking for ports: more than %d grants", MAX_GRANTS - 1);
			return -EIO;
		}
		rsip_client_attach_csr(&a->cl, NULL, 0);
		rc = rsip_client_assign_ports(&a->cl, a->gaddr, (uint8_t)n, a->lease, g);
		if (rc) {
			if (!quiet)
				log_refusal("asking for ports", rc);
			else if (xd_verbose)
				xd_info("asking for ports again in one run: %s",
					rc > 0 ? rsip_error_name((uint16_t)rc) : strerror(-rc));
			return -EIO;
		}
		a->n_grants++;
		a->gaddr = g->gaddr_be;
		got += g->count;
	}
	return 0;
}

static int cmp_run(const void *x, const void *y)
{
	const struct xd_run *p = x, *q = y;

	return p->first < q->first ? -1 : p->first > q->first;
}

/* grants[from..to) as sorted runs of adjacent ports into @runs; their number. */
static int port_runs(const struct agent *a, int from, int to, struct xd_run *runs)
{
	int n = 0;

	for (int i = from; i < to; i++)
		runs[n++] = (struct xd_run){ a->grants[i].first, a->grants[i].first + a->grants[i].count - 1 };
	if (!n)
		return 0;
	qsort(runs, (size_t)n, sizeof(*runs), cmp_run);
	int k = 0;

	for (int i = 1; i < n; i++) {
		if (runs[i].first == runs[k].last + 1)
			runs[k].last = runs[i].last;
		else
			runs[++k] = runs[i];
	}
	return k + 1;
}

/* Free grants[from..to) (best effort: their leases end anyway). */
static void free_grants(struct agent *a, int from, int to)
{
	for (int i = from; i < to; i++) {
		int rc = rsip_client_free(&a->cl, a->grants[i].bind_id);

		if (rc)
			log_refusal("freeing a block", rc);
	}
}

/*
 * Hosts that start together get interleaved grants: the port after this
 * host's last grant went to another host meanwhile.  Ask once or twice more
 * for the whole count, after a random pause (the others do the same): new
 * grants that form one run replace the old ones, which are freed; otherwise
 * the new ones are freed and the host uses every run it holds (setup()).
 */
static void consolidate_ports(struct agent *a)
{
	struct xd_run runs[MAX_GRANTS];

	for (int attempt = 0; attempt < 2 && a->n_port_runs > 1; attempt++) {
		int old = a->n_grants;
		struct timespec pause = { 0, (long)(rand() % 200 + 20) * 1000000L };

		nanosleep(&pause, NULL);
		if (ask_ports(a, a->port_count, true) == 0 && port_runs(a, old, a->n_grants, runs) == 1) {
			free_grants(a, 0, old);
			memmove(a->grants, a->grants + old, (size_t)(a->n_grants - old) * sizeof(a->grants[0]));
			a->n_grants -= old;
			a->n_port_grants = a->n_grants;
			xd_info("ports %u-%u: one run instead of %d", runs[0].first, runs[0].last,
				a->n_port_runs);
		} else {
			free_grants(a, old, a->n_grants);
			a->n_grants = old;
		}
		a->n_port_runs = port_runs(a, 0, a->n_port_grants, a->port_runs);
	}
	if (!rsip_client_connected(&a->cl))   /* a failure above closed it */
		(void)rsip_client_register(&a->cl);
}

/* Register and obtain the global address, ports and SPIs. */
static int rsip_acquire(struct agent *a)
{
	int rc;

	rc = rsip_client_register(&a->cl);
	if (rc) {
		log_refusal("registering with the router", rc);
		return -EACCES;
	}
	decide_shared_ike(a);
	if (ask_ports(a, a->port_count, false))
		return -EIO;
	a->n_port_grants = a->n_grants;
	a->n_port_runs = port_runs(a, 0, a->n_port_grants, a->port_runs);
	consolidate_ports(a);
	if (a->n_port_runs > 1)
		xd_warn("the router granted %d port runs, not one: the local port range spans them "
			"and the ports between them are reserved (ip_local_reserved_ports)",
			a->n_port_runs);
	/* The IKE daemon's ports (--swan-dir, XDNAT_PORTS): the first run. */
	a->port_first = a->port_runs[0].first;
	a->port_last = a->port_runs[0].last;
	a->ports_set = true;
	if (a->spi_count) {
		struct rsip_grant *g = &a->grants[a->n_grants];

		uint16_t ns = (uint16_t)(a->spi_count > 0xffff ? 0xffff : a->spi_count);

		rsip_client_attach_csr(&a->cl, want_cert(a) ? a->cert.csr : NULL, a->cert.csr_len);
		rc = rsip_client_assign_spi(&a->cl, a->gaddr, ns, a->lease, g);
		if (cert_refused(a, rc)) {
			rsip_client_attach_csr(&a->cl, NULL, 0);
			rc = rsip_client_assign_spi(&a->cl, a->gaddr, ns, a->lease, g);
		}
		if (rc) {
			log_refusal("asking for SPIs", rc);
			return -EIO;
		}
		a->n_grants++;
		a->spi_first = g->first;
		a->spi_last = g->first + g->count - 1;
	} else if (want_cert(a)) {
		/* No SPI request to carry the CSR: the renewal of the last grant does. */
		uint32_t granted;
		struct rsip_grant *g = &a->grants[a->n_grants - 1];

		rsip_client_attach_csr(&a->cl, a->cert.csr, a->cert.csr_len);
		rc = rsip_client_extend(&a->cl, g->bind_id, a->lease, &granted);
		if (rc && !cert_refused(a, rc)) {
			log_refusal("asking for a certificate", rc);
			return -EIO;
		}
		if (!rc)
			g->lease = granted;
	}
	if (want_cert(a) && !a->cl.cert_new)
		xd_warn("the router issued no certificate (it runs no Local CA)");
	take_cert(a);
	return 0;
}

static uint32_t min_lease(const struct agent *a)
{
	uint32_t m = 0;

	for (int i = 0; i < a->n_grants; i++)
		if (!m || a->grants[i].lease < m)
			m = a->grants[i].lease;
	return m ? m : 60;
}

static int write_info(struct agent *a);

/* Renew every lease; reconnect (the registration resumes) if needed. */
static int rsip_renew(struct agent *a)
{
	int rc;

	if (!rsip_client_connected(&a->cl)) {
		rc = rsip_client_register(&a->cl);
		if (rc) {
			log_refusal("re-registering with the router", rc);
			return rc;
		}
		xd_info("re-registered with the router");
		/* A restarted router may share other ports now. */
		if (decide_shared_ike(a)) {
			if (a->info_written && write_info(a))
				xd_warn("the info file does not reflect the shared IKE ports");
			if (a->swan.dir && write_swan(a))
				xd_warn("--swan-dir: %s does not reflect the shared IKE ports", a->swan.dir);
		}
	}
	for (int i = 0; i < a->n_grants; i++) {
		uint32_t granted;

		/* A fresh certificate with the last renewal. */
		bool csr = want_cert(a) && i == a->n_grants - 1;

		rsip_client_attach_csr(&a->cl, csr ? a->cert.csr : NULL, a->cert.csr_len);
		rc = rsip_client_extend(&a->cl, a->grants[i].bind_id, a->lease, &granted);
		if (csr && cert_refused(a, rc)) {
			rsip_client_attach_csr(&a->cl, NULL, 0);
			rc = rsip_client_extend(&a->cl, a->grants[i].bind_id, a->lease, &granted);
		}
		if (rc) {
			log_refusal("renewing a lease", rc);
			return rc;
		}
		a->grants[i].lease = granted;
	}
	if (a->cl.cert_new) {
		take_cert(a);
		if (a->info_written && write_info(a))
			xd_warn("the info file does not name the new certificate");
		if (a->swan.dir && write_swan(a))
			xd_warn("--swan-dir: the new certificate is not in %s", a->swan.dir);
		else if (a->swan.dir && !a->swan_no_reload)
			host_swan_reload(a->swan.dir, a->swan_vici, false);
		if (a->on_renew && a->cert.have)
			host_cert_hook(&a->cert, a->on_renew, a->swan.dir, 30);
	}
	return 0;
}

/*
 * Free every block and de-register.  A router that restarted since our last
 * request has reset the connection ("Connection reset by peer" at the first
 * request): reconnect (the registration resumes) and go on, retrying for a
 * few seconds with growing pauses, so that the blocks do not stay mapped to
 * a host that is gone until their leases end.
 */
#define RELEASE_TRIES 5          /* at once, then pauses of 0.25, 0.5, 1 s */
static void rsip_release(struct agent *a)
{
	int done = 0, tries = 0, rc = 0;
	unsigned pause_ms = 250;

	while (a->n_grants && done <= a->n_grants) {   /* done == n_grants: de-register */
		if (!rsip_client_connected(&a->cl))
			rc = rsip_client_register(&a->cl);
		if (rsip_client_connected(&a->cl))
			rc = done < a->n_grants ? rsip_client_free(&a->cl, a->grants[done].bind_id)
						: rsip_client_deregister(&a->cl);
		if (rc < 0 && ++tries < RELEASE_TRIES) {
			struct timespec t = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L };

			/* The first time (a router restarted meanwhile) reconnect at
			 * once; then wait longer each time. */
			xd_warn("router unreachable while freeing the blocks (%s): %s", strerror(-rc),
				tries == 1 ? "reconnecting" : "retrying");
			if (tries > 1) {
				nanosleep(&t, NULL);
				pause_ms *= 2;
			}
			continue;
		}
		if (rc < 0) {
			xd_warn("cannot reach the router to free the blocks (%s): they expire with "
				"their leases", strerror(-rc));
			break;
		}
		if (rc > 0 && !rsip_client_connected(&a->cl)) {   /* registration refused */
			log_refusal("re-registering to free the blocks", rc);
			break;
		}
		if (rc > 0)   /* e.g. already gone: nothing more to do for this one */
			log_refusal(done < a->n_grants ? "freeing a block" : "de-registering", rc);
		done++;
	}
	rsip_client_close(&a->cl);
	a->n_grants = 0;
	/* The router revoked it with the blocks. */
	host_cert_remove(&a->cert);
}

/*
 * Shared IKE ports (docs/SHARED-IKE.md): the IKE daemon binds 500/4500 like
 * every other host; the router tells the hosts apart by SPI.  Inbound ESP
 * SPIs come from the block (spi_min/spi_max); the top 32 bits of every IKE
 * SPI must lie in it too: strongSwan's charon.spi_mask/spi_label force the
 * top bits of its 64-bit IKE SPIs (network byte order) to the label.  The
 * label covers the largest aligned power-of-two run at the block's start.
 */
static void write_shared_ike(FILE *f, const struct agent *a, uint32_t first, uint32_t last)
{
	unsigned k = 0;
	uint64_t mask;

	while (k < 31 && !(first & (1u << k)) && (uint64_t)first + (2ull << k) - 1 <= last)
		k++;
	mask = (~0ull << (32 + k));
	fprintf(f, "XDNAT_IKE_PORT=%u\nXDNAT_IKE_PORT_NAT_T=%u\n"
		"XDNAT_SPI_MIN=0x%08x\nXDNAT_SPI_MAX=0x%08x\n"
		"XDNAT_IKE_SPI_MASK=0x%016llx\nXDNAT_IKE_SPI_LABEL=0x%016llx\n",
		a->ike_port, a->ike_port_natt, first, last, (unsigned long long)mask,
		(unsigned long long)((uint64_t)first << 32));
}

/*
 * What tells this agent apart from the others on the machine: its interface
 * and, outside the initial network namespace, that namespace's name (as
 * `ip netns` knows it) or else its inode number.
 */
static void instance_id(const struct agent *a, char *buf, size_t len)
{
	struct stat self, init, st;
	char path[300], ns[NAME_MAX + 1] = "";
	DIR *d;
	struct dirent *e;

	if (stat("/proc/self/ns/net", &self) ||
	    (stat("/proc/1/ns/net", &init) == 0 && init.st_ino == self.st_ino && init.st_dev == self.st_dev)) {
		snprintf(buf, len, "%s", a->dev);
		return;
	}
	if ((d = opendir("/run/netns"))) {
		while (!*ns && (e = readdir(d))) {
			snprintf(path, sizeof(path), "/run/netns/%s", e->d_name);
			if (e->d_name[0] != '.' && stat(path, &st) == 0 && st.st_ino == self.st_ino &&
			    st.st_dev == self.st_dev && strlen(e->d_name) < 64 && !strchr(e->d_name, '/'))
				snprintf(ns, sizeof(ns), "%s", e->d_name);
		}
		closedir(d);
	}
	if (*ns)
		snprintf(buf, len, "%s-%s", ns, a->dev);
	else
		snprintf(buf, len, "netns%lu-%s", (unsigned long)self.st_ino, a->dev);
}

static int write_info(struct agent *a)
{
	char tmp[300], g[INET_ADDRSTRLEN], r[INET_ADDRSTRLEN], id[128];
	FILE *f;
	int fd;

	if (!a->info_file) {
		if (mkdir("/run/xdnat", 0755) && errno != EEXIST) {
			xd_err("cannot create /run/xdnat: %s", strerror(errno));
			return -errno;
		}
		instance_id(a, id, sizeof(id));
		snprintf(a->info_buf, sizeof(a->info_buf), "/run/xdnat/host-%s.env", id);
		a->info_file = a->info_buf;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->info_file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		xd_err("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	fprintf(f, "# written by xdnat-host: this host's share of the global address\n"
		"XDNAT_GLOBAL=%s\nXDNAT_ROUTER=%s\nXDNAT_PORTS=%u-%u\n", xd_ipstr(a->gaddr, g),
		xd_ipstr(a->router, r), a->port_first, a->port_last);
	fprintf(f, "XDNAT_PORT_RUNS=\"");
	for (int i = 0; i < a->n_port_runs; i++)
		fprintf(f, "%s%u-%u", i ? " " : "", a->port_runs[i].first, a->port_runs[i].last);
	fprintf(f, "\"\n");
	if (a->spi_last)
		fprintf(f, "XDNAT_SPIS=0x%08x-0x%08x\n", a->spi_first, a->spi_last);
	if (a->shared_ike && a->spi_last)
		write_shared_ike(f, a, a->spi_first, a->spi_last);
	host_cert_info(&a->cert, f);
	if (fclose(f) || rename(tmp, a->info_file)) {
		xd_err("cannot write %s: %s", a->info_file, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	a->info_written = true;
	return 0;
}

/* Read one signal from @sfd: its number, 0 if none was pending, -1 on error. */
static int read_signal(int sfd)
{
	struct signalfd_siginfo si;
	ssize_t n;

	do
		n = read(sfd, &si, sizeof(si));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n != (ssize_t)sizeof(si)) {
		xd_err("reading signals: %s", n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return (int)si.ssi_signo;
}

/* Renew leases until SIGTERM or SIGINT (returns 0 with *sig) or a failure
 * (returns 1 with *rc).  SIGHUP renews every lease at once, then the
 * schedule goes on. */
static int rsip_loop(struct agent *a, int sfd, int *rc, int *sig)
{
	uint64_t next = rsip_now_ms() + (uint64_t)min_lease(a) * 500, backoff = 1000;

	for (;;) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		uint64_t now = rsip_now_ms();
		int n, r;

		n = poll(&p, 1, next > now ? (int)(next - now > 60000 ? 60000 : next - now) : 0);
		if (n > 0) {
			int sg = read_signal(sfd);

			if (sg < 0) {
				*rc = 1;
				return 1;
			}
			if (sg == SIGHUP) {
				fprintf(stderr, "xdnat-host: SIGHUP: renewing the leases now\n");
				next = rsip_now_ms();
				backoff = 1000;
			} else if (sg) {
				*sig = sg;
				return 0;
			}
		}
		if (n < 0 && errno != EINTR) {
			xd_err("poll: %s", strerror(errno));
			*rc = 1;
			return 1;
		}
		if (rsip_now_ms() < next)
			continue;
		r = rsip_renew(a);
		if (r > 0) {
			/* The router no longer knows our blocks (lapsed, evicted): they
			 * may soon belong to someone else; stop using them. */
			xd_err("the router refused to renew our blocks: giving them up");
			*rc = 1;
			return 1;
		}
		if (r < 0) {
			xd_warn("router unreachable (%s): retrying in %llus", strerror(-r),
				(unsigned long long)(backoff / 1000));
			next = rsip_now_ms() + backoff;
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
			continue;
		}
		backoff = 1000;
		next = rsip_now_ms() + (uint64_t)min_lease(a) * 500;
	}
}

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

static int setup(struct agent *a)
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

static void teardown(struct agent *a)
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
static int write_swan(struct agent *a)
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

int main(int argc, char **argv)
{
	struct agent a = { 0 };
	char lan[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], r[INET_ADDRSTRLEN];
	sigset_t set;
	int sfd, rc = 0, sig = 0;

	xd_progname = "xdnat-host";
	a.rsip_port = RSIP_DEFAULT_PORT;
	a.port_count = 500;
	a.spi_count = 1;
	if (parse_args(argc, argv, &a))
		return 1;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	if (!a.rsip) {
		a.port_runs[0] = (struct xd_run){ a.port_first, a.port_last };
		a.n_port_runs = 1;
	}
	a.ifindex = xd_ifindex(a.dev);
	if (a.ifindex < 0) {
		xd_err("--dev: no interface '%s'", a.dev);
		return 1;
	}
	if (!a.lan_set && xd_if_first_ipv4(a.dev, &a.lan_addr)) {
		xd_err("--dev: %s has no IPv4 address; give it with --lan-addr", a.dev);
		return 1;
	}
	if (a.rsip) {
		uint8_t secret[RSIP_SECRET_LEN];

		if (!a.name) {
			if (gethostname(a.name_buf, sizeof(a.name_buf) - 1)) {
				xd_err("cannot get the hostname: give --name");
				return 1;
			}
			a.name = a.name_buf;
		}
		if (!rsip_valid_name(a.name, strlen(a.name))) {
			xd_err("--name: '%s' is not a valid name (1-%d of [A-Za-z0-9_.-])", a.name,
			       RSIP_KEYID_MAX);
			return 1;
		}
		if (rsip_secret_load(a.secret_file, secret))
			return 1;
		rsip_client_init(&a.cl, a.router, (uint16_t)a.rsip_port, a.name, secret, 5000);
		memset(secret, 0, sizeof(secret));
		if (!a.no_cert && host_cert_init(&a.cert, a.state_dir ? a.state_dir : XDNAT_HOST_STATE_DIR,
						 a.name, a.key_type))
			return 1;
		if (rsip_acquire(&a)) {
			rsip_release(&a);
			host_cert_free(&a.cert);
			rsip_client_free_certs(&a.cl);
			return 1;
		}
	}
	if (a.lan_addr == a.gaddr || a.router == a.gaddr) {
		xd_err("the global address must differ from the LAN addresses");
		if (a.rsip)
			rsip_release(&a);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		xd_err("signalfd: %s", strerror(errno));
		return 1;
	}
	if (setup(&a) || (a.rsip && write_info(&a)) || (a.swan.dir && write_swan(&a))) {
		if (a.swan.dir)
			swan_conf_remove(&a.swan);
		teardown(&a);
		if (a.rsip)
			rsip_release(&a);
		close(sfd);
		return 1;
	}
	/* A charon already running (xdnat-host restarted) takes the new
	 * certificate; none running yet is fine. */
	if (a.swan.dir && a.cert.have && !a.swan_no_reload)
		host_swan_reload(a.swan.dir, a.swan_vici, true);
	if (xd_reasm_start(a.gaddr, a.router, a.lan_addr))
		xd_warn("cannot open raw IP-in-IP sockets: tunnel packets the router had to "
			"fragment will be lost");
	printf("xdnat-host: ready: %s on lo, tunnel %s -> %s on %s", xd_ipstr(a.gaddr, g),
	       xd_ipstr(a.lan_addr, lan), xd_ipstr(a.router, r), a.dev);
	for (int i = 0; i < a.n_port_runs; i++)
		printf("%s%u-%u", i ? "," : ", ports ", a.port_runs[i].first, a.port_runs[i].last);
	if (a.spi_last)
		printf(", SPIs 0x%x-0x%x", a.spi_first, a.spi_last);
	if (a.rsip)
		printf(" (RSIP client %u, lease %us)", a.cl.client_id, min_lease(&a));
	print_shared_ike(&a);
	printf("\n");
	fflush(stdout);
	if (a.rsip) {
		if (rsip_loop(&a, sfd, &rc, &sig))
			goto out;
	} else {
		/* Nothing to renew: wait for SIGTERM or SIGINT (SIGHUP: nothing to do). */
		while ((sig = read_signal(sfd)) == SIGHUP || sig == 0)
			;
		if (sig < 0) {
			rc = 1;
			goto out;
		}
	}
	fprintf(stderr, "xdnat-host: %s, undoing configuration\n", strsignal(sig));
out:
	xd_reasm_stop(NULL);
	if (a.swan.dir)
		swan_conf_remove(&a.swan);
	teardown(&a);
	if (a.rsip) {
		rsip_release(&a);
		if (a.info_written && unlink(a.info_file))
			xd_warn("cannot remove %s", a.info_file);
	}
	close(sfd);
	host_cert_free(&a.cert);
	rsip_client_free_certs(&a.cl);
	return rc;
}
