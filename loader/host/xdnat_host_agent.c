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
#include "store.h"
#include "rsip_wire.h"
#include "host_reasm.h"
#include "opts.h"

/* Options (opts.h): getopt, --help and xdnat-host(8) come from this table;
 * the ids are parse_args()'s cases. */
static const struct xo_opt host_opts[] = {
	XO_HEAD("Required:"),
	{ "dev", 'd', "IFNAME", .help = "the host's LAN interface towards the router" },
	{ "router", 'r', "ADDR", .help = "the router's LAN address (tunnel endpoint)" },
	{ "global", 'g', "ADDR", .help = "the shared global address: required with --ports; in "
					 "RSIP mode the one to ask for (default: any)" },
	XO_HEAD("Options:"),
	{ "ports", 'P', "A-B", .help = "this host's port block: becomes the namespace's "
				       "ip_local_port_range (recommended: without it, outgoing "
				       "connections pick ports the router drops)" },
	{ "lan-addr", 'a', "ADDR", .help = "this host's LAN address (default: the first IPv4 "
					   "address of --dev)" },
	{ "route", 'R', "CIDR", .help = "route CIDR via the router with source ADDR; may be "
					"repeated (default: \"default\")" },
	{ "replace-routes", 'x', NULL, .help = "replace existing routes to those CIDRs (they are "
					       "restored on exit) instead of refusing" },
	{ "tunnel-mtu", 'M', "N", .help = "MTU of those routes (default: the MTU of --dev minus "
					  "20, the tunnel header), so TCP advertises an MSS and "
					  "sends segments that fit the tunnel" },
	XO_HEAD("RSIP mode (without --ports):"),
	{ "secret-file", 's', "PATH", .help = "this host's secret from 'xdnatctl enroll' (mode "
					      "0600)" },
	{ "name", 'n', "NAME", .help = "the name it was enrolled under (default: hostname)" },
	{ "rsip-port", 0, "N", 256, .help = "the router's RSIP port (default: "
					    XO_STR(RSIP_DEFAULT_PORT) ")" },
	{ "port-count", 0, "N", 257, .help = "ports to obtain, in requests of at most 255 (RSIP's "
					     "limit), each placed next to this host's ports when the "
					     "router can (default: 500).  Hosts starting together can "
					     "get runs that came apart: then the agent asks once or "
					     "twice more for one run, and else uses them all: "
					     "ip_local_port_range spans the runs, the ports between "
					     "go to ip_local_reserved_ports" },
	{ "spi-count", 0, "N", 258, .help = "SPIs to obtain, rounded up to whole router blocks; "
					    "0: none (default: 1, i.e. one block)" },
	{ "lease", 0, "S", 259, .help = "lease to ask for (default: the router's); renewed at half "
					"its length" },
	{ "info-file", 0, "PATH", 260, .help = "write XDNAT_GLOBAL, _ROUTER, _PORTS (the first "
					       "run), _PORT_RUNS (all), _SPIS (shell syntax) for IKE "
					       "daemons (default: /run/xdnat/host-ID.env, ID = IFNAME "
					       "in the initial network namespace, NETNS-IFNAME in one "
					       "named by ip netns, netnsINODE-IFNAME otherwise)" },
	{ "shared-ike", 0, NULL, 0x800, .help = "use the router's shared IKE ports even if it does "
						"not announce them (default: when the router "
						"announces them, xdnatd --shared-ike-ports): the "
						"info file also tells the IKE daemon to use them "
						"(500/4500), with IKE SPIs labelled from the SPI "
						"block (docs/SHARED-IKE.md)" },
	{ "no-shared-ike", 0, NULL, 0x801, .help = "keep to this host's own ports even if the "
						   "router announces shared IKE ports" },
	XO_HEAD("Certificate (docs/LCA.md): unless --no-cert, a key pair is made here (never "
		"sent anywhere) and its CSR goes with the last allocation request and with every "
		"renewal; the router's Local CA returns a certificate for this host's identity, "
		"ports and SPIs, valid for the lease.  It is written next to the key and its paths "
		"go into --info-file (XDNAT_CERT, XDNAT_CERT_CHAIN, XDNAT_KEY, XDNAT_CERT_SERIAL, "
		"XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY)."),
	{ "state-dir", 0, "DIR", 261, .help = "key and certificates: DIR/NAME.key (0600, reused), "
					      "DIR/NAME.crt, DIR/NAME-chain.pem (the LCA "
					      "certificate) (default: " XDNAT_HOST_STATE_DIR ")" },
	{ "key-type", 0, "T", 262, .help = "p256 (default), p384, ed25519 or rsa3072: for a new "
					   "key" },
	{ "no-cert", 0, NULL, 263, .help = "ask for no certificate" },
	{ "on-renew", 0, "CMD", 0x704, .help = "after each new certificate that replaces one "
					       "(every renewal), once the files (and --swan-dir's "
					       "copies) are in place: run CMD with /bin/sh -c, with "
					       "XDNAT_CERT, XDNAT_CERT_CHAIN, XDNAT_KEY, "
					       "XDNAT_CERT_SERIAL, XDNAT_CERT_PREVIOUS_SERIAL, "
					       "XDNAT_CERT_NOT_AFTER, XDNAT_CERT_IDENTITY and "
					       "XDNAT_SWAN_DIR in its environment (killed after 30 s)" },
	XO_HEAD("strongSwan (docs/STRONGSWAN.md):"),
	{ "swan-dir", 0, "DIR", 0x700, .help = "write a strongSwan fragment from the allocation: "
					       "DIR/strongswan.d/xdnat.conf (charon.port, "
					       "port_nat_t, spi_min/max, spi_mask/label; 500/4500 "
					       "with --shared-ike), DIR/swanctl/ (private/host.key, "
					       "x509/host.crt, x509ca/: copies of the key, the "
					       "certificate and the LCA chain obtained over RSIP; "
					       "with --no-cert a key made here and host.csr; "
					       "conf.d/xdnat.conf with the IKE identity)" },
	{ "swan-ca", 0, "FILE", 0x701, .help = "PEM certificates for DIR/swanctl/x509ca/ (root, "
					       "LCA) instead of the LCA chain received over RSIP" },
	{ "swan-vici", 0, "URI", 0x702, .help = "charon's vici socket (default: swanctl's, "
						"unix:///var/run/charon.vici); with each new "
						"certificate xdnat-host runs, with "
						"SWANCTL_DIR=DIR/swanctl, swanctl --load-creds --clear "
						"and (if DIR/swanctl/swanctl.conf exists) swanctl "
						"--load-conns, so the next authentication uses the new "
						"certificate; SAs are not touched" },
	{ "swan-no-reload", 0, NULL, 0x703, .help = "do not (reload charon yourself, e.g. "
						    "--on-renew)" },
	XO_HEAD(""),
	{ "verbose", 'v', NULL, .help = "show every command run" },
	XO_OPT_VERSION,
	XO_OPT_HELP,
	{ 0 }
};

static const struct xo_prog host_prog = {
	.name = "xdnat-host", .opts = host_opts,
	.synopsis =
"Usage: xdnat-host --dev IFNAME --router ADDR --secret-file PATH [OPTIONS]\n"
"  or:  xdnat-host --dev IFNAME --router ADDR --global ADDR --ports A-B [OPTIONS]\n"
"  or:  xdnat-host mobile --home-agent G --secret-file PATH [OPTIONS]  (roaming:\n"
"       'xdnat-host mobile --help', docs/ROAMING.md)\n"
"\n"
"Configure this host to use a global address shared through an xdnat router\n"
"and keep it so until SIGTERM or SIGINT, then undo every change.  The host\n"
"obtains the global address, a port block and an SPI block from the router\n"
"over RSIP (RFC 3103/3104), renews their leases and frees them on exit; with\n"
"--ports it uses a static configuration instead (xdnatctl host add).  A\n"
"router that cannot answer now (INTERNAL_SERVER_ERROR: its store lost a race\n"
"with another router or has no quorum) is asked again for about 13 s at\n"
"start-up, and as long as it takes while renewing.\n",
	.epilog =
"\n"
"Exit status: 0 after a clean stop, 1 on error (changes already made are\n"
"undone), 2 on a usage error (unknown option, missing or malformed argument).\n",
};

static void usage(FILE *f)
{
	xo_help(&host_prog, f);
}

static int parse_args(int argc, char **argv, struct agent *a)
{
	struct xo_state st = { .prog = &host_prog };
	uint32_t pa, pl;
	int c;

	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
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
		case XO_ID_VERSION: xo_version(&host_prog); exit(0);
		default: /* xo_getopt said why */
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
		/* INTERNAL_SERVER_ERROR: the router's store cannot answer now (a
		 * cluster without quorum, docs/CLUSTER.md): retry, keep the blocks. */
		if (r == RSIP_E_INTERNAL_SERVER_ERROR) {
			xd_warn("the router cannot answer now (its store may have lost quorum): "
				"keeping the blocks, retrying in %llus", (unsigned long long)(backoff / 1000));
			next = rsip_now_ms() + backoff;
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
			continue;
		}
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

/* RSIP mode: name, secret, key and CSR, then the first blocks (and the
 * certificate).  0, or 1 with everything undone. */
static int start_rsip(struct agent *a)
{
	uint8_t secret[RSIP_SECRET_LEN];

	if (!a->name) {
		if (gethostname(a->name_buf, sizeof(a->name_buf) - 1)) {
			xd_err("cannot get the hostname: give --name");
			return 1;
		}
		a->name = a->name_buf;
	}
	if (!rsip_valid_name(a->name, strlen(a->name))) {
		xd_err("--name: '%s' is not a valid name (1-%d of [A-Za-z0-9_.-])", a->name,
		       RSIP_KEYID_MAX);
		return 1;
	}
	if (rsip_secret_load(a->secret_file, secret))
		return 1;
	rsip_client_init(&a->cl, a->router, (uint16_t)a->rsip_port, a->name, secret, 5000);
	memset(secret, 0, sizeof(secret));
	if (!a->no_cert && host_cert_init(&a->cert, a->state_dir ? a->state_dir : XDNAT_HOST_STATE_DIR,
					 a->name, a->key_type))
		return 1;
	if (agent_acquire(a)) {
		agent_release(a);
		host_cert_free(&a->cert);
		rsip_client_free_certs(&a->cl);
		return 1;
	}
	return 0;
}

/* The line scripts and tests wait for: what this host now is. */
static void print_ready(struct agent *a)
{
	char lan[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], r[INET_ADDRSTRLEN];

	printf("xdnat-host: ready: %s on lo, tunnel %s -> %s on %s", xd_ipstr(a->gaddr, g),
	       xd_ipstr(a->lan_addr, lan), xd_ipstr(a->router, r), a->dev);
	for (int i = 0; i < a->n_port_runs; i++)
		printf("%s%u-%u", i ? "," : ", ports ", a->port_runs[i].first, a->port_runs[i].last);
	if (a->spi_last)
		printf(", SPIs 0x%x-0x%x", a->spi_first, a->spi_last);
	if (a->rsip)
		printf(" (RSIP client %u, lease %us)", a->cl.client_id, agent_min_lease(a));
	agent_print_shared_ike(a);
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct agent a = { 0 };
	sigset_t set;
	int sfd, rc = 0, sig = 0;

	xd_progname = "xdnat-host";
	if (argc > 1 && !strcmp(argv[1], "mobile"))
		return host_mobile_main(argc - 1, argv + 1);  /* roaming (host_mobile.c) */
	a.rsip_port = RSIP_DEFAULT_PORT;
	a.port_count = 500;
	a.spi_count = 1;
	if (parse_args(argc, argv, &a))
		return 2; /* usage error */
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
	if (a.rsip && start_rsip(&a))
		return 1;
	if (a.lan_addr == a.gaddr || a.router == a.gaddr) {
		xd_err("the global address must differ from the LAN addresses");
		if (a.rsip) {
			agent_release(&a);
			host_cert_free(&a.cert);
			rsip_client_free_certs(&a.cl);
		}
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
	print_ready(&a);
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
