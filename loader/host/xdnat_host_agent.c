// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnat-host: make a LAN host a user of a shared global address behind an
 * xdnat router, with stock Linux means, and undo it all on exit:
 *   - the global address as a /32 on lo;
 *   - routes to global destinations via the router with "src GLOBAL";
 *   - the ephemeral ports of this network namespace = the ports it holds
 *     (ip_local_port_range, and ip_local_reserved_ports for gaps);
 *   - arp_announce=2 and arp_ignore=1 (ARP must neither use nor answer for
 *     the global address, which the router owns) and rp_filter=0 on the LAN
 *     interface;
 *   - tc programs on the LAN interface: egress packets from the global
 *     address are tunnelled (IP-in-IP) to the router, tunnel packets from
 *     the router are unwrapped on ingress.
 * This file: options, main, the renewal loop; the rest in host_rsip.c and
 * host_sys.c (host_agent.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <poll.h>
#include <time.h>
#include "host_agent.h"
#include "rsip_store.h"
#include "rsip_wire.h"
#include "host_reasm.h"

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
	uint64_t next = rsip_now_ms() + (uint64_t)agent_min_lease(a) * 500, backoff = 1000;

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
		r = agent_renew(a);
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
		next = rsip_now_ms() + (uint64_t)agent_min_lease(a) * 500;
	}
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
		if (agent_acquire(&a)) {
			agent_release(&a);
			host_cert_free(&a.cert);
			rsip_client_free_certs(&a.cl);
			return 1;
		}
	}
	if (a.lan_addr == a.gaddr || a.router == a.gaddr) {
		xd_err("the global address must differ from the LAN addresses");
		if (a.rsip)
			agent_release(&a);
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
	if (agent_setup(&a) || (a.rsip && agent_write_info(&a)) || (a.swan.dir && agent_write_swan(&a))) {
		if (a.swan.dir)
			swan_conf_remove(&a.swan);
		agent_teardown(&a);
		if (a.rsip)
			agent_release(&a);
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
		printf(" (RSIP client %u, lease %us)", a.cl.client_id, agent_min_lease(&a));
	agent_print_shared_ike(&a);
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
	agent_teardown(&a);
	if (a.rsip) {
		agent_release(&a);
		if (a.info_written && unlink(a.info_file))
			xd_warn("cannot remove %s", a.info_file);
	}
	close(sfd);
	host_cert_free(&a.cert);
	rsip_client_free_certs(&a.cl);
	return rc;
}
