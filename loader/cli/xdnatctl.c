// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdnatctl: inspect a running xdnat router through its pinned maps and state
 * database, and change it through xdnatd (iproute2-style OBJECT COMMAND
 * syntax, -j for JSON).  The command groups live in cli_*.c (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "store.h"
#include "writer.h"
#include "opts.h"

struct cli cli = {
	.instance = XDNAT_DEFAULT_INSTANCE, .pin_base = XDNAT_PIN_BASE, .state_dir = XDNAT_STATE_DIR,
};

/* Global options (opts.h): getopt, --help and xdnatctl(8) come from this
 * table.  -p and -s are retired: iproute2 and bpftool use them for
 * --pretty and --statistics. */
static const struct xo_opt ctl_opts[] = {
	XO_HEAD("Options:"),
	{ "json", 'j', NULL, .help = "JSON output" },
	{ "instance", 'i', "NAME", .help = "router instance (default: " XDNAT_DEFAULT_INSTANCE ")" },
	{ "pin-base", 0, "DIR", 'p', .help = "bpffs directory of the pins (default: "
					      XDNAT_PIN_BASE ")" },
	{ "state-dir", 0, "DIR", 's', .help = "the state database to read, and to change when no "
					       "xdnatd runs (default: " XDNAT_STATE_DIR "); a running "
					       "xdnatd changes its own --state-dir's" },
	{ "direct", 'D', NULL, .help = "do not ask xdnatd: read the state database and the maps "
				       "directly; a change then needs the instance lock, so it is "
				       "refused while xdnatd runs" },
	{ "batch", 'b', "FILE", .help = "run the host/ports/spi/ike/stats/config/lookup commands in "
					"FILE ('-': stdin), one per line, '#' comments, in order "
					"(changes travel to xdnatd in batches); stops at the first "
					"failing line and names it" },
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
"Inspect a running xdnat router (its pinned maps and state database) and\n"
"change it: every change is a request to xdnatd, which applies it in order\n"
"with its own (docs/ARCHITECTURE.md, \"Who writes what\").  With no xdnatd\n"
"running, xdnatctl applies it itself under the instance lock.\n"
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
"/run/xdnat/INSTANCE.ctl, root only; without a running xdnatd, enroll,\n"
"unenroll and rsip list use the state database directly):\n"
"  enroll NAME [lan ADDR] [secret-file PATH]\n"
"                    allow host NAME to obtain blocks over RSIP; prints its\n"
"                    new secret (64 hex digits), or writes it to PATH (0600);\n"
"                    lan ADDR: accept it only from that LAN address.\n"
"                    Enrolling again replaces the secret.\n"
"  unenroll NAME     forget host NAME (it cannot register any more)\n"
"  rsip list         enrolled hosts, registrations and bindings with the\n"
"                    lease (or quarantine) time remaining\n"
"  rsip evict NAME   take all of host NAME's blocks at once: out of the maps\n"
"                    (needs the running xdnatd), into its quarantine;\n"
"                    its registration ends (unenroll it to keep it out);\n"
"                    the certificates that bind them are revoked first\n"
"  daemon stats      the running xdnatd's counters: per verdict reason, RSIP\n"
"                    hosts and bindings, control requests (needs xdnatd)\n"
"  daemon ping       does xdnatd answer on its control socket?\n"
"  mobile show       roaming hosts registered away from home (xdnatd --mobile,\n"
"                    docs/ROAMING.md): home and care-of address, the tunnel\n"
"                    endpoint (the NAT's address and port), encapsulation,\n"
"                    whether a NAT was detected, seconds left; without xdnatd\n"
"                    (or with -D) the host ids and tunnel endpoints in the maps\n"
"\n"
"Local CA (docs/LCA.md; the state database; revoke goes through xdnatd\n"
"when it runs):\n"
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
"A change refused by xdnatd prints its reason.  With no xdnatd answering,\n"
"xdnatctl waits up to 5 s while another process (xdnatd starting) holds the\n"
"instance lock /run/xdnat/INSTANCE.lock, then refuses.\n"
"Exit status: 0 success, 1 error (nothing changed), 2 usage error (bad\n"
"syntax or malformed value).\n",
};

static void usage(FILE *f)
{
	xo_help(&ctl_prog, f);
}

int cli_usage_err(const char *fmt, const char *arg)
{
	fprintf(stderr, "xdnatctl: ");
	fprintf(stderr, fmt, arg ? arg : "");
	fprintf(stderr, "\nTry 'xdnatctl --help'.\n");
	return 2;
}

int cli_parse_id(const char *s, uint32_t *id)
{
	if (xd_parse_u32(s, 1, XDNAT_LIMIT_MAX_HOSTS, id)) {
		xd_err("'%s' is not a host id", s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static bool known_object(const char *obj)
{
	static const char *const objs[] = { "host", "ports", "spi", "stats", "config", "lookup", "ike",
					    "help", "enroll", "unenroll", "rsip", "reload-programs",
					    "cert", "daemon", "mobile" };

	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		if (!strcmp(obj, objs[i]))
			return true;
	return false;
}

/* A view of the maps (host show, stats, ...): read here. */
static int view(int argc, char **argv)
{
	struct xd_maps m;
	int rc;

	if (!strcmp(argv[0], "host") && !cli_is_view(argc, argv))
		return cli_usage_err("host: expected add, del or show%s", NULL);
	if (!strcmp(argv[0], "ports") || !strcmp(argv[0], "spi"))
		return cli_usage_err("%s: expected 'add|del ID A-B'", argv[0]);
	if (!strcmp(argv[0], "ike") && argc > 1 && strcmp(argv[1], "list"))
		return cli_usage_err("ike: expected 'list' or 'default PORT HOST|none [global ADDR]'%s",
				     NULL);
	if (xd_maps_open(cli.pin_base, cli.instance, &m))
		return 1;
	rc = cli_view(&m, argc, argv);
	xd_maps_close(&m);
	return rc;
}

static int dispatch(int argc, char **argv)
{
	const char *obj = argv[0];

	if (!known_object(obj))
		return cli_usage_err("unknown object '%s'", obj);
	if (!strcmp(obj, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(obj, "cert"))
		return cli_cert(argc, argv);
	if (!strcmp(obj, "daemon"))
		return cli_daemon(argc, argv);
	if (!strcmp(obj, "mobile"))
		return cli_mobile(argc, argv);
	if (!strcmp(obj, "rsip"))
		return cli_rsip(argc, argv);
	if (!strcmp(obj, "enroll") || !strcmp(obj, "unenroll"))
		return cli_enroll(argc, argv);
	if (!strcmp(obj, "reload-programs"))
		return argc == 1 ? cli_reload() : cli_usage_err("reload-programs: unexpected '%s'", argv[1]);
	if (xd_change_kind(argc, argv) == XD_CHANGE_MAPS)
		return cli_change(argc, argv);
	return view(argc, argv);
}

int main(int argc, char **argv)
{
	struct xo_state st = { .prog = &ctl_prog };
	const char *batch = NULL;
	int c;

	xd_progname = "xdnatctl";
	while ((c = xo_getopt(&st, argc, argv)) != XO_END) {
		switch (c) {
		case 'j': cli.json = true; break;
		case 'i': cli.instance = optarg; break;
		case 'p': cli.pin_base = optarg; break;
		case 'b': batch = optarg; break;
		case 's': cli.state_dir = optarg; break;
		case 'D': cli.direct = true; break;
		case 'h': usage(stdout); return 0;
		case XO_ID_VERSION: xo_version(&ctl_prog); return 0;
		default: return 2; /* xo_getopt said why */
		}
	}
	argc -= optind;
	argv += optind;
	if (!xd_valid_instance(cli.instance))
		return cli_usage_err("invalid instance name '%s' (use 1-32 of [A-Za-z0-9_.-])",
				     cli.instance);
	if (batch)
		return argc ? cli_usage_err("--batch: unexpected '%s' (commands come from the file)",
					    argv[0]) : cli_batch(batch);
	if (argc < 1)
		return cli_usage_err("missing OBJECT%s", NULL);
	return dispatch(argc, argv);
}
